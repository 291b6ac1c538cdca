package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// SecurityHeadersConfig configures the SecurityHeaders stage. Every field
// is off when zero; at least one must be set.
type SecurityHeadersConfig struct {
	// HSTS is the max-age of Strict-Transport-Security (RFC 6797), rounded
	// down to whole seconds; 0 sends none. The field is sent only on
	// replies to requests that came over TLS, to the gateway or, per
	// X-Forwarded-Proto, to a trusted proxy (RFC 6797 §7.2).
	HSTS time.Duration
	// HSTSIncludeSubDomains adds includeSubDomains to Strict-Transport-Security.
	HSTSIncludeSubDomains bool
	// HSTSPreload adds preload; it requires HSTSIncludeSubDomains and an
	// HSTS of at least a year, as the browsers' preload lists do.
	HSTSPreload bool

	// FrameOptions is X-Frame-Options: "DENY" or "SAMEORIGIN"; "" sends none.
	FrameOptions string

	// ContentTypeOptions sends X-Content-Type-Options: nosniff.
	ContentTypeOptions bool

	// ReferrerPolicy is Referrer-Policy, such as
	// "strict-origin-when-cross-origin", or a comma-separated list of
	// policies with fallbacks first; "" sends none.
	ReferrerPolicy string

	// RemoveHeaders are fields removed from every reply, such as "Server"
	// and "X-Powered-By", which tell attackers what runs behind the
	// gateway. Nil removes none.
	RemoveHeaders []string

	// Override replaces the fields above when the reply already has them.
	// By default a field the upstream set is kept: the upstream knows its
	// content best (a page meant to be framed, say).
	Override bool
}

const hstsPreloadMin = 365 * 24 * time.Hour

var referrerPolicies = []string{
	"no-referrer", "no-referrer-when-downgrade", "origin", "origin-when-cross-origin",
	"same-origin", "strict-origin", "strict-origin-when-cross-origin", "unsafe-url",
}

// SecurityHeaders returns a Stage that adds security header fields to
// every reply of the rest of the pipeline and removes the fields listed in
// RemoveHeaders.
//
// Problem replies to errors of later stages get the same treatment (on a
// copy of the *Error, which wraps the same cause but is not the same
// pointer), except internal
// errors, which the pipeline answers with a generic 500; every problem
// reply carries X-Content-Type-Options: nosniff anyway. A problem's own
// fields count as set by the upstream for Override.
func SecurityHeaders(c SecurityHeadersConfig) (Stage, error) {
	s := &secHeaders{override: c.Override}
	switch {
	case c.HSTS < 0:
		return nil, errors.New("secheaders: HSTS is negative")
	case c.HSTS > 0 && c.HSTS < time.Second:
		return nil, errors.New("secheaders: HSTS is less than a second")
	case c.HSTS == 0 && (c.HSTSIncludeSubDomains || c.HSTSPreload):
		return nil, errors.New("secheaders: HSTS flags are set but HSTS is 0")
	case c.HSTSPreload && (!c.HSTSIncludeSubDomains || c.HSTS < hstsPreloadMin):
		return nil, errors.New("secheaders: HSTSPreload needs HSTSIncludeSubDomains and an HSTS of at least a year")
	}
	if c.HSTS > 0 {
		v := "max-age=" + strconv.FormatInt(int64(c.HSTS/time.Second), 10)
		if c.HSTSIncludeSubDomains {
			v += "; includeSubDomains"
		}
		if c.HSTSPreload {
			v += "; preload"
		}
		s.hsts = []string{v}
	}
	switch fo := strings.ToUpper(c.FrameOptions); fo {
	case "":
	case "DENY", "SAMEORIGIN":
		s.set = append(s.set, field{"X-Frame-Options", []string{fo}})
	default:
		return nil, fmt.Errorf("secheaders: FrameOptions %q: want DENY or SAMEORIGIN", c.FrameOptions)
	}
	if c.ContentTypeOptions {
		s.set = append(s.set, field{"X-Content-Type-Options", []string{"nosniff"}})
	}
	if c.ReferrerPolicy != "" {
		for pol := range strings.SplitSeq(c.ReferrerPolicy, ",") {
			pol = strings.TrimSpace(pol)
			found := false
			for _, k := range referrerPolicies {
				found = found || strings.EqualFold(k, pol)
			}
			if !found {
				return nil, fmt.Errorf("secheaders: ReferrerPolicy %q: unknown policy %q", c.ReferrerPolicy, pol)
			}
		}
		s.set = append(s.set, field{"Referrer-Policy", []string{strings.ToLower(c.ReferrerPolicy)}})
	}
	for i, h := range c.RemoveHeaders {
		if !IsToken(h) {
			return nil, fmt.Errorf("secheaders: RemoveHeaders[%d] %q: not a header field name", i, h)
		}
		s.remove = append(s.remove, http.CanonicalHeaderKey(h))
	}
	if s.hsts == nil && len(s.set) == 0 && len(s.remove) == 0 {
		return nil, errors.New("secheaders: the configuration sets and removes no header field")
	}
	return s.stage, nil
}

type field struct {
	name  string
	value []string
}

type secHeaders struct {
	hsts     []string
	set      []field
	remove   []string
	override bool
}

func (s *secHeaders) stage(next Handler) Handler {
	return HandlerFunc(func(ctx context.Context, req *Request) (*Response, error) {
		// Decided before next runs: later stages may rewrite the request's
		// forwarding fields for the upstream.
		hsts := s.hsts != nil && secureRequest(req)
		resp, err := next.Serve(ctx, req)
		if err != nil {
			return nil, addErrorHeaders(err, func(h http.Header) { s.apply(h, hsts) })
		}
		if resp == nil {
			resp = &Response{Status: http.StatusNoContent}
		}
		if resp.Header == nil {
			resp.Header = make(http.Header)
		}
		s.apply(resp.Header, hsts)
		return resp, nil
	})
}

func (s *secHeaders) apply(h http.Header, hsts bool) {
	for _, k := range s.remove {
		delete(h, k)
	}
	if hsts {
		s.put(h, "Strict-Transport-Security", s.hsts)
	}
	for _, f := range s.set {
		s.put(h, f.name, f.value)
	}
}

func (s *secHeaders) put(h http.Header, k string, v []string) {
	if _, ok := h[k]; ok && !s.override {
		return
	}
	// A fresh slice: the configured one is shared by every reply.
	h[k] = []string{v[0]}
}

// secureRequest reports whether the client used HTTPS: to the gateway, or
// to a trusted proxy that says so in X-Forwarded-Proto.
func secureRequest(req *Request) bool {
	if req.HTTP.TLS != nil {
		return true
	}
	if !req.FromTrustedProxy() {
		return false
	}
	v := req.HTTP.Header.Get("X-Forwarded-Proto")
	if i := strings.LastIndexByte(v, ','); i >= 0 { // the nearest proxy's word
		v = v[i+1:]
	}
	return strings.EqualFold(strings.TrimSpace(v), "https")
}
