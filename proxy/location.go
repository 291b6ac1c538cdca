package proxy

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/gatekit/gatekit/gateway"
)

// locationFields are the reply fields whose URL rewriteLocation maps back to
// the client's address. Refresh is not among them: its URL sits inside a
// value of its own grammar, and it is rarely sent by an API.
var locationFields = [...]string{"Location", "Content-Location"}

// rewriteLocation rewrites, in h, the header of a reply from t, every
// location field that is an absolute URL on t to the same resource at the
// address the client used (see HTTPConfig.PreserveLocation).
func (u *HTTPUpstream) rewriteLocation(h http.Header, t *target, req *gateway.Request) {
	for _, k := range locationFields {
		vv := h[k]
		if len(vv) != 1 {
			continue // absent, or several values, which is no valid field
		}
		if v, ok := u.publicURL(vv[0], t, req); ok {
			vv[0] = v
		}
	}
}

// publicURL returns v, a URL an upstream wrote, rewritten to the client's
// scheme and host with its path mapped back through t's base path and
// StripPrefix; ok is false when v is not an absolute URL on t's origin
// under t's base path, or the request had no Host.
func (u *HTTPUpstream) publicURL(v string, t *target, req *gateway.Request) (string, bool) {
	// A cheap test on the string first: most locations are relative or
	// elsewhere, and this runs on every reply that has one.
	if len(v) <= len(t.scheme)+3 || !strings.EqualFold(v[:len(t.scheme)], t.scheme) || v[len(t.scheme):len(t.scheme)+3] != "://" {
		return "", false
	}
	rest := v[len(t.scheme)+3:]
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	authority, rest := rest[:end], rest[end:]
	if !sameHostPort(authority, t.host, t.scheme) {
		return "", false // another origin, or user information ("u@host")
	}
	in := req.HTTP
	if in.Host == "" {
		return "", false
	}
	if _, err := url.Parse(v); err != nil {
		return "", false // not a URL: left for the client to make sense of
	}
	end = strings.IndexAny(rest, "?#")
	if end < 0 {
		end = len(rest)
	}
	p, tail := rest[:end], rest[end:]
	// The path as the upstream escaped it, on the target's escaped base
	// path: mapping stays on the same bytes the request mapping used.
	p, ok := cutPrefix(p, t.pathEsc)
	if !ok {
		return "", false // outside the base path: no request path maps to it
	}
	if u.stripEsc != "" || p != "" {
		p = join(u.stripEsc, p)
	}
	scheme := publicScheme(in, req.FromTrustedProxy())
	var b strings.Builder
	b.Grow(len(scheme) + 3 + len(in.Host) + len(p) + len(tail))
	b.WriteString(scheme)
	b.WriteString("://")
	b.WriteString(in.Host)
	b.WriteString(p)
	b.WriteString(tail)
	return b.String(), true
}

// publicScheme is the scheme the client used, as the proxy reports it in
// X-Forwarded-Proto: the first value a trusted proxy sent, else that of the
// client's connection.
func publicScheme(in *http.Request, trusted bool) string {
	if vv := in.Header["X-Forwarded-Proto"]; trusted && len(vv) > 0 {
		first, _, _ := strings.Cut(vv[0], ",")
		switch first = strings.TrimSpace(first); {
		case strings.EqualFold(first, "https"):
			return "https"
		case strings.EqualFold(first, "http"):
			return "http"
		}
	}
	if in.TLS != nil {
		return "https"
	}
	return "http"
}

// sameHostPort reports whether the authorities a and b of scheme's URLs
// name the same host and port, a missing or empty port being the scheme's
// default; host names compare without regard to case.
func sameHostPort(a, b, scheme string) bool {
	ah, ap := splitHostPort(a, scheme)
	bh, bp := splitHostPort(b, scheme)
	return ap == bp && strings.EqualFold(ah, bh)
}

// splitHostPort splits an authority "host", "host:port" or "[v6]:port"
// without allocating; the port is the scheme's default when missing.
func splitHostPort(hp, scheme string) (host, port string) {
	host = hp
	if i := strings.LastIndexByte(hp, ':'); i >= 0 && !strings.Contains(hp[i:], "]") {
		host, port = hp[:i], hp[i+1:]
	}
	if port == "" {
		port = "80"
		if strings.EqualFold(scheme, "https") {
			port = "443"
		}
	}
	return host, port
}
