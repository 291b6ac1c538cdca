package auth

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
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
	// or APIKeyConfig was told to read credentials from. The rest of the
	// query goes on byte for byte, in its order.
	StripQuery []string
	// StripCookies are cookies to delete from the Cookie header, such as
	// one a JWTConfig reads its token from.
	StripCookies []string
}

// A Forwarder passes the authenticated identity to the upstream as request
// headers. It is a gateway.RequestTransformer; put it after authentication:
//
//	gateway.TransformRequest(fwd)
type Forwarder struct {
	headers      []forwardedHeader
	strip        []string
	stripQuery   []string
	stripCookies []string
}

type forwardedHeader struct{ name, path string }

var _ gateway.RequestTransformer = (*Forwarder)(nil)

// Forward checks cfg and returns a Forwarder.
func Forward(cfg ForwardConfig) (*Forwarder, error) {
	f := &Forwarder{}
	seen := map[string]string{}
	for name, path := range cfg.Headers {
		if !gateway.IsToken(name) {
			return nil, fmt.Errorf("auth: ForwardConfig.Headers: %q is not a header name", name)
		}
		if path == "" {
			return nil, fmt.Errorf("auth: ForwardConfig.Headers[%q]: empty claim path", name)
		}
		canon := http.CanonicalHeaderKey(name)
		switch canon {
		case "Host", "Connection", "Content-Length", "Transfer-Encoding", "Authorization", "Cookie", "Upgrade", "Te", "Trailer":
			return nil, fmt.Errorf("auth: ForwardConfig.Headers[%q]: a header the gateway or HTTP itself controls cannot carry a claim", name)
		}
		if other, ok := seen[canon]; ok {
			return nil, fmt.Errorf("auth: ForwardConfig.Headers: %q and %q name the same header", other, name)
		}
		seen[canon] = name
		f.headers = append(f.headers, forwardedHeader{canon, path})
	}
	slices.SortFunc(f.headers, func(a, b forwardedHeader) int { return strings.Compare(a.name, b.name) })
	if cfg.StripAuthorization {
		f.strip = append(f.strip, "Authorization")
	}
	for _, name := range cfg.StripHeaders {
		if !gateway.IsToken(name) {
			return nil, fmt.Errorf("auth: ForwardConfig.StripHeaders: %q is not a header name", name)
		}
		f.strip = append(f.strip, http.CanonicalHeaderKey(name))
	}
	for i, name := range cfg.StripQuery {
		if name == "" {
			return nil, fmt.Errorf("auth: ForwardConfig.StripQuery[%d]: empty parameter name", i)
		}
		f.stripQuery = append(f.stripQuery, name)
	}
	for i, name := range cfg.StripCookies {
		if !gateway.IsToken(name) {
			return nil, fmt.Errorf("auth: ForwardConfig.StripCookies[%d] %q: not a cookie name", i, name)
		}
		f.stripCookies = append(f.stripCookies, name)
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
	for k := range h {
		// With Options.AllowUnderscoreHeaders a client's X_User_Id could
		// reach a backend that reads it as X-User-Id.
		if strings.IndexByte(k, '_') >= 0 && f.forwards(strings.ReplaceAll(k, "_", "-")) {
			delete(h, k)
		}
	}
	if len(f.stripQuery) > 0 && req.HTTP.URL.RawQuery != "" {
		req.HTTP.URL.RawQuery = removeQueryParams(req.HTTP.URL.RawQuery, f.stripQuery)
	}
	if len(f.stripCookies) > 0 {
		if cs, ok := h["Cookie"]; ok {
			if kept := removeCookies(cs, f.stripCookies); len(kept) > 0 {
				h["Cookie"] = kept
			} else {
				delete(h, "Cookie")
			}
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

func safeHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

func (f *Forwarder) forwards(name string) bool {
	for _, fh := range f.headers {
		if strings.EqualFold(fh.name, name) {
			return true
		}
	}
	return false
}

// removeQueryParams deletes the pairs whose (decoded) name is in names from
// a raw query, leaving every other byte as the client sent it: re-encoding
// through url.Values would reorder the query and drop pairs it cannot
// parse, which breaks signed URLs.
func removeQueryParams(raw string, names []string) string {
	var b strings.Builder
	changed := false
	rest := raw
	for rest != "" {
		var pair string
		pair, rest, _ = strings.Cut(rest, "&")
		k, _, _ := strings.Cut(pair, "=")
		if uk, err := url.QueryUnescape(k); err == nil && slices.Contains(names, uk) {
			changed = true
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(pair)
	}
	if !changed {
		return raw
	}
	return b.String()
}

// removeCookies deletes the named cookies from Cookie header values,
// keeping the others as sent.
func removeCookies(values, names []string) []string {
	var out []string
	for _, v := range values {
		var kept []string
		for _, part := range strings.Split(v, ";") {
			name, _, _ := strings.Cut(strings.TrimSpace(part), "=")
			if slices.Contains(names, name) {
				continue
			}
			if p := strings.TrimSpace(part); p != "" {
				kept = append(kept, p)
			}
		}
		if len(kept) > 0 {
			out = append(out, strings.Join(kept, "; "))
		}
	}
	return out
}
