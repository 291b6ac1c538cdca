package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// CORSConfig configures the CORS stage. AllowOrigins must not be empty.
type CORSConfig struct {
	// AllowOrigins are the origins that may read replies, each one of:
	//   - an exact origin, "https://app.example.com" or "http://localhost:8080";
	//   - a pattern whose leftmost host label is "*", "https://*.example.com",
	//     which matches one or more labels ("a.example.com",
	//     "a.b.example.com") but not "example.com" itself, with the same
	//     scheme and port; at least two labels must follow "*." so a
	//     pattern cannot cover a whole top-level domain;
	//   - "*", any origin, which is a configuration error together with
	//     AllowCredentials (the Fetch standard forbids it).
	// Origins are compared as browsers serialise them: scheme and host in
	// lower case (configured ones are lowered), no default port (":443" on
	// https and ":80" on http are dropped from the configuration). The
	// opaque origin "null" cannot be allowed: sandboxed frames and local
	// files all send it.
	AllowOrigins []string

	// AllowMethods are the methods a preflight may ask for; nil means GET,
	// HEAD and POST. "*" allows any method (and is a configuration error
	// with AllowCredentials). Methods are case-sensitive.
	AllowMethods []string

	// AllowHeaders are the request header fields a preflight may ask for,
	// beyond the ones browsers never ask about (the CORS-safelisted ones);
	// nil allows none. "*" allows whatever is asked for (and is a
	// configuration error with AllowCredentials). Names are compared
	// without regard to case.
	AllowHeaders []string

	// ExposeHeaders are the reply header fields, beyond the CORS-safelisted
	// ones, that scripts may read; sent on replies to allowed origins.
	ExposeHeaders []string

	// AllowCredentials lets browsers send cookies and HTTP authentication
	// with cross-origin requests and scripts read the replies.
	AllowCredentials bool

	// MaxAge is how long a browser may cache a preflight answer, rounded
	// down to whole seconds. 0 omits Access-Control-Max-Age (browsers then
	// use 5 seconds); a negative value sends 0, which disables caching.
	MaxAge time.Duration
}

// CORS returns a Stage implementing cross-origin resource sharing (the
// Fetch standard's CORS protocol) for a route.
//
// A preflight (OPTIONS with Origin and Access-Control-Request-Method) is
// answered by the stage and never reaches the rest of the pipeline: 204
// with the Access-Control-Allow-* fields when the origin, the method and
// every requested header are allowed, and otherwise a 403 problem without
// them (the browser fails the preflight on any non-2xx status; the problem
// tells a developer looking at the network log why). The route must accept
// OPTIONS for preflights to reach the stage.
//
// Any other request from an allowed origin goes on, and its reply (an error
// reply included, so scripts can read it) gets Access-Control-Allow-Origin
// and, as configured, Access-Control-Allow-Credentials and
// Access-Control-Expose-Headers; those fields from the upstream are
// replaced, so the route's configuration is the one that counts. A request
// from another origin goes on as well, since same-origin POSTs carry Origin
// too and the browser, not the gateway, withholds the reply from a script;
// its reply gets no Access-Control-Allow-* field (the upstream's are
// removed). Requests without Origin pass untouched.
//
// Every reply gets Vary: Origin, merged into the fields already there, so
// that a cache never serves one origin's answer to another; preflight
// answers also vary on Access-Control-Request-Method and
// Access-Control-Request-Headers.
//
// Internal errors (those the pipeline answers with a generic 500) get no
// CORS fields.
func CORS(c CORSConfig) (Stage, error) {
	s, err := newCORS(c)
	if err != nil {
		return nil, err
	}
	return s.stage, nil
}

type corsPolicy struct {
	anyOrigin    bool
	origins      map[string]struct{}
	patterns     []originPattern
	anyMethod    bool
	methods      []string
	allowMethods string
	anyHeader    bool
	headers      []string
	allowHeaders string
	expose       string
	credentials  bool
	maxAge       string
}

// An originPattern matches prefix + one or more host labels + suffix.
type originPattern struct{ prefix, suffix string }

func newCORS(c CORSConfig) (*corsPolicy, error) {
	p := &corsPolicy{origins: make(map[string]struct{}), credentials: c.AllowCredentials}
	if len(c.AllowOrigins) == 0 {
		return nil, errors.New("cors: AllowOrigins is empty")
	}
	for i, o := range c.AllowOrigins {
		if o == "*" {
			if c.AllowCredentials {
				return nil, errors.New(`cors: AllowOrigins: "*" cannot be used with AllowCredentials`)
			}
			p.anyOrigin = true
			continue
		}
		norm, pat, err := parseOrigin(o)
		if err != nil {
			return nil, fmt.Errorf("cors: AllowOrigins[%d] %q: %w", i, o, err)
		}
		if pat {
			pre, suf, _ := strings.Cut(norm, "*")
			p.patterns = append(p.patterns, originPattern{pre, suf})
		} else {
			p.origins[norm] = struct{}{}
		}
	}

	methods := c.AllowMethods
	if methods == nil {
		methods = []string{http.MethodGet, http.MethodHead, http.MethodPost}
	}
	for i, m := range methods {
		if m == "*" {
			if c.AllowCredentials {
				return nil, errors.New(`cors: AllowMethods: "*" cannot be used with AllowCredentials`)
			}
			p.anyMethod = true
			continue
		}
		if !IsToken(m) {
			return nil, fmt.Errorf("cors: AllowMethods[%d] %q: not a method name", i, m)
		}
		p.methods = append(p.methods, m)
	}
	p.allowMethods = strings.Join(p.methods, ", ")

	for i, h := range c.AllowHeaders {
		if h == "*" {
			if c.AllowCredentials {
				return nil, errors.New(`cors: AllowHeaders: "*" cannot be used with AllowCredentials`)
			}
			p.anyHeader = true
			continue
		}
		if !IsToken(h) {
			return nil, fmt.Errorf("cors: AllowHeaders[%d] %q: not a header field name", i, h)
		}
		p.headers = append(p.headers, strings.ToLower(h))
	}
	p.allowHeaders = strings.Join(p.headers, ", ")

	for i, h := range c.ExposeHeaders {
		if !IsToken(h) {
			return nil, fmt.Errorf("cors: ExposeHeaders[%d] %q: not a header field name", i, h)
		}
	}
	p.expose = strings.Join(c.ExposeHeaders, ", ")

	switch {
	case c.MaxAge < 0:
		p.maxAge = "0"
	case c.MaxAge >= time.Second:
		p.maxAge = strconv.FormatInt(int64(c.MaxAge/time.Second), 10)
	}
	return p, nil
}

// parseOrigin checks a configured origin and returns it normalised, and
// whether it is a pattern.
func parseOrigin(s string) (norm string, pattern bool, err error) {
	s = strings.ToLower(s)
	if s == "null" {
		return "", false, errors.New(`the opaque origin "null" cannot be allowed`)
	}
	check := s
	if i := strings.Index(s, "://*."); i > 0 {
		pattern = true
		check = s[:i] + "://x." + s[i+len("://*."):]
	}
	if strings.Contains(check, "*") {
		return "", false, errors.New(`"*" may only stand for the leftmost host label`)
	}
	u, err := url.Parse(check)
	if err != nil || u.Scheme == "" || u.Host == "" || u.Opaque != "" || u.User != nil ||
		u.Path != "" || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.HasSuffix(check, "#") {
		return "", false, errors.New("not an origin (scheme://host[:port], no path)")
	}
	if pattern && strings.Count(u.Hostname(), ".") < 2 {
		return "", false, errors.New(`a pattern needs at least two labels after "*."`)
	}
	switch {
	case u.Scheme == "https" && u.Port() == "443", u.Scheme == "http" && u.Port() == "80":
		s = s[:strings.LastIndexByte(s, ':')]
	}
	return s, pattern, nil
}

func (p *corsPolicy) originAllowed(o string) bool {
	if p.anyOrigin {
		return true
	}
	if _, ok := p.origins[o]; ok {
		return true
	}
	for _, pat := range p.patterns {
		if len(o) > len(pat.prefix)+len(pat.suffix) && strings.HasPrefix(o, pat.prefix) &&
			strings.HasSuffix(o, pat.suffix) && hostLabels(o[len(pat.prefix):len(o)-len(pat.suffix)]) {
			return true
		}
	}
	return false
}

// hostLabels reports whether s is one or more dot-separated DNS labels of
// lower-case letters, digits and hyphens.
func hostLabels(s string) bool {
	prev := byte('.')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-':
		case c == '.' && prev != '.':
		default:
			return false
		}
		prev = c
	}
	return prev != '.'
}

func (p *corsPolicy) methodAllowed(m string) bool {
	if p.anyMethod {
		return true
	}
	for _, a := range p.methods {
		if a == m {
			return true
		}
	}
	return false
}

// headersAllowed reports whether every name in the Access-Control-Request-
// Headers values vs is allowed.
func (p *corsPolicy) headersAllowed(vs []string) bool {
	if p.anyHeader {
		return true
	}
	for _, v := range vs {
		for v != "" {
			var name string
			name, v, _ = strings.Cut(v, ",")
			name = strings.TrimSpace(name)
			if name == "" {
				continue
			}
			ok := false
			for _, a := range p.headers {
				if strings.EqualFold(a, name) {
					ok = true
					break
				}
			}
			if !ok {
				return false
			}
		}
	}
	return true
}

const preflightVary = "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"

func (p *corsPolicy) stage(next Handler) Handler {
	return HandlerFunc(func(ctx context.Context, req *Request) (*Response, error) {
		r := req.HTTP
		origin := r.Header.Get("Origin")
		if origin != "" {
			if acrm := r.Header.Get("Access-Control-Request-Method"); r.Method == http.MethodOptions && acrm != "" {
				return p.preflight(origin, acrm, r.Header["Access-Control-Request-Headers"])
			}
			if !p.originAllowed(origin) {
				origin = ""
			}
		}
		resp, err := next.Serve(ctx, req)
		if err != nil {
			if origin != "" {
				return nil, addErrorHeaders(err, func(h http.Header) { p.setAllowed(h, origin); addVary(h, "Origin") })
			}
			return nil, addErrorHeaders(err, func(h http.Header) { addVary(h, "Origin") })
		}
		return p.decorate(resp, origin), nil
	})
}

func (p *corsPolicy) preflight(origin, method string, reqHeaders []string) (*Response, error) {
	h := make(http.Header, 7)
	h["Vary"] = []string{preflightVary}
	var why string
	switch {
	case !p.originAllowed(origin):
		why = "origin"
	case !p.methodAllowed(method):
		why = "method"
	case !p.headersAllowed(reqHeaders):
		why = "request header fields"
	}
	if why != "" {
		return nil, &Error{Status: http.StatusForbidden, Detail: "the CORS preflight was refused: its " + why + " is not allowed on this route", Header: h}
	}
	p.setAllowed(h, origin)
	if p.anyMethod {
		h["Access-Control-Allow-Methods"] = []string{method}
	} else {
		h["Access-Control-Allow-Methods"] = []string{p.allowMethods}
	}
	if len(reqHeaders) > 0 {
		if p.anyHeader {
			h["Access-Control-Allow-Headers"] = []string{strings.Join(reqHeaders, ", ")}
		} else if p.allowHeaders != "" {
			h["Access-Control-Allow-Headers"] = []string{p.allowHeaders}
		}
	}
	if p.maxAge != "" {
		h["Access-Control-Max-Age"] = []string{p.maxAge}
	}
	return &Response{Status: http.StatusNoContent, Header: h}, nil
}

// setAllowed sets the fields that let a script from origin read a reply.
func (p *corsPolicy) setAllowed(h http.Header, origin string) {
	if p.anyOrigin && !p.credentials {
		h["Access-Control-Allow-Origin"] = []string{"*"}
	} else {
		h["Access-Control-Allow-Origin"] = []string{origin}
	}
	if p.credentials {
		h["Access-Control-Allow-Credentials"] = []string{"true"}
	}
	if p.expose != "" {
		h["Access-Control-Expose-Headers"] = []string{p.expose}
	}
}

// decorate prepares a reply for origin ("" when there is none or it is not
// allowed).
func (p *corsPolicy) decorate(resp *Response, origin string) *Response {
	if resp == nil {
		resp = &Response{Status: http.StatusNoContent}
	}
	if resp.Header == nil {
		resp.Header = make(http.Header)
	}
	h := resp.Header
	delete(h, "Access-Control-Allow-Origin")
	delete(h, "Access-Control-Allow-Credentials")
	delete(h, "Access-Control-Expose-Headers")
	if origin != "" {
		p.setAllowed(h, origin)
	}
	addVary(h, "Origin")
	return resp
}

// addVary adds name to the Vary field of h unless it is listed there
// already or Vary is "*" (RFC 9110 §12.5.5), keeping one field line.
func addVary(h http.Header, name string) {
	vs := h["Vary"]
	if len(vs) == 0 {
		h["Vary"] = []string{name}
		return
	}
	for _, v := range vs {
		for v != "" {
			var tok string
			tok, v, _ = strings.Cut(v, ",")
			tok = strings.TrimSpace(tok)
			if tok == "*" || strings.EqualFold(tok, name) {
				return
			}
		}
	}
	h["Vary"] = []string{strings.Join(vs, ", ") + ", " + name}
}

// addErrorHeaders returns err with set applied to the header fields of the
// problem that answers it. The *Error is copied rather than changed, since
// it may be shared (a package-level value); the copy keeps its cause, so
// errors.Is and errors.As still find what it wraps, but not the original
// *Error itself. Internal errors, answered with a generic 500, are
// returned as they are.
func addErrorHeaders(err error, set func(h http.Header)) error {
	pr, internal := ProblemFor(err)
	if internal {
		return err
	}
	cp := *pr
	cp.Header = make(http.Header, len(pr.Header)+4)
	for k, v := range pr.Header {
		cp.Header[k] = v
	}
	set(cp.Header)
	return &cp
}
