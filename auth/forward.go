package auth

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/gatekit/gatekit/gateway"
)

// ForwardConfig says which parts of the caller's identity go to the
// upstream, and which credentials do not.
type ForwardConfig struct {
	// Headers maps a request header to the claim path whose value it
	// carries, such as {"X-User-Id": "sub", "X-Tenant": "tenant.id",
	// "X-Roles": "realm_access.roles"}. Array values are joined with ", ".
	// Every one of these headers is deleted from the client's request
	// first, so a client cannot send its own: the upstream sees only what
	// the gateway vouches for.
	Headers map[string]string
	// StripAuthorization deletes the Authorization header, so the
	// upstream never sees the client's credentials.
	StripAuthorization bool
	// StripHeaders are more headers to delete, such as "X-API-Key" or a
	// header a JWTConfig reads its token from.
	StripHeaders []string
	// StripQuery are query parameters to delete, such as one a JWTConfig
	// or APIKeyConfig was told to read credentials from.
	StripQuery []string
}

// A Forwarder passes the authenticated identity to the upstream as request
// headers. It is a gateway.RequestTransformer; put it after authentication:
//
//	gateway.TransformRequest(fwd)
type Forwarder struct {
	headers    []forwardedHeader
	strip      []string
	stripQuery []string
}

type forwardedHeader struct{ name, path string }

var _ gateway.RequestTransformer = (*Forwarder)(nil)

// Forward checks cfg and returns a Forwarder.
func Forward(cfg ForwardConfig) (*Forwarder, error) {
	f := &Forwarder{}
	for name, path := range cfg.Headers {
		if !validHeaderName(name) {
			return nil, fmt.Errorf("auth: ForwardConfig.Headers: %q is not a header name", name)
		}
		if path == "" {
			return nil, fmt.Errorf("auth: ForwardConfig.Headers[%q]: empty claim path", name)
		}
		f.headers = append(f.headers, forwardedHeader{http.CanonicalHeaderKey(name), path})
	}
	if cfg.StripAuthorization {
		f.strip = append(f.strip, "Authorization")
	}
	for _, name := range cfg.StripHeaders {
		if !validHeaderName(name) {
			return nil, fmt.Errorf("auth: ForwardConfig.StripHeaders: %q is not a header name", name)
		}
		f.strip = append(f.strip, http.CanonicalHeaderKey(name))
	}
	for _, name := range cfg.StripQuery {
		if name == "" {
			return nil, fmt.Errorf("auth: ForwardConfig.StripQuery: empty parameter name")
		}
		f.stripQuery = append(f.stripQuery, name)
	}
	return f, nil
}

// TransformRequest deletes the client's copies of the forwarded headers and
// the stripped ones, then sets the forwarded headers from req.Principal. A
// claim the principal lacks leaves its header unset; a value with a line
// break or other control character is not forwarded.
func (f *Forwarder) TransformRequest(ctx context.Context, req *gateway.Request) error {
	h := req.HTTP.Header
	for _, name := range f.strip {
		delete(h, name)
	}
	for _, fh := range f.headers {
		delete(h, fh.name)
	}
	if len(f.stripQuery) > 0 && req.HTTP.URL.RawQuery != "" {
		q := req.HTTP.URL.Query()
		n := len(q)
		for _, name := range f.stripQuery {
			delete(q, name)
		}
		if len(q) != n {
			req.HTTP.URL.RawQuery = q.Encode()
		}
	}
	if req.Principal == nil {
		return nil
	}
	for _, fh := range f.headers {
		vals := claimValues(req.Principal, fh.path)
		if len(vals) == 0 {
			continue
		}
		v := strings.Join(vals, ", ")
		if !safeHeaderValue(v) {
			continue
		}
		h[fh.name] = []string{v}
	}
	return nil
}

func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

func safeHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}
