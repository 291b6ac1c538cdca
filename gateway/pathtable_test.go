package gateway_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatekit/gatekit/gateway"
)

// pathCase is one raw request target and what the gateway must make of it.
type pathCase struct {
	name   string
	target string // sent verbatim in the request line
	status int
	// For 200, the route that served the request, the decoded path it was
	// matched on, and the escaped path and query the upstream is given.
	route string
	path  string
	uri   string
	// requestURI is the RequestURI the upstream is given, when not uri:
	// an unchanged absolute-form target is left as the client sent it.
	requestURI string
}

// longSegs is a path far longer than any route, but within the server's
// header limit.
var longSegs = strings.Repeat("/seg", 2000)

// pathCases are the encoding tricks behind path-confusion bypasses
// ("Breaking Parser Logic", Orange Tsai, Black Hat 2018; CVE-2021-41773;
// CVE-2020-1938-style ";" tricks): each must either be refused or be
// routed on exactly the path the upstream then receives. /admin is
// guarded by an authenticator that refuses everyone, so a 200 for any
// path that resolves under /admin would be a bypass.
var pathCases = []pathCase{
	// Plain.
	{name: "public", target: "/public/a", status: 200, route: "public", path: "/public/a", uri: "/public/a"},
	{name: "public root", target: "/public", status: 200, route: "public", path: "/public", uri: "/public"},
	{name: "admin guarded", target: "/admin/a", status: 401},
	{name: "admin root guarded", target: "/admin", status: 401},
	{name: "no route", target: "/other", status: 404},
	{name: "case matters", target: "/ADMIN/a", status: 404},

	// Dot segments, plain and encoded: resolved before routing.
	{name: "dotdot", target: "/public/../admin/a", status: 401},
	{name: "dotdot lower encoded", target: "/public/%2e%2e/admin/a", status: 401},
	{name: "dotdot upper encoded", target: "/public/%2E%2E/admin/a", status: 401},
	{name: "dotdot half encoded", target: "/public/.%2e/admin/a", status: 401},
	{name: "dotdot half encoded 2", target: "/public/%2e./admin/a", status: 401},
	{name: "dot", target: "/./admin/a", status: 401},
	{name: "encoded dot", target: "/public/%2e/a", status: 200, route: "public", path: "/public/a", uri: "/public/a"},
	{name: "dotdot above root", target: "/../../admin", status: 401},
	{name: "dotdot trailing", target: "/public/a/..", status: 200, route: "public", path: "/public/", uri: "/public/"},
	{name: "dotdot within public", target: "/public/a/../b", status: 200, route: "public", path: "/public/b", uri: "/public/b"},
	{name: "dotdot then public", target: "/admin/../public/a", status: 200, route: "public", path: "/public/a", uri: "/public/a"},

	// Duplicate slashes.
	{name: "double slash", target: "//admin/a", status: 401},
	{name: "triple slash", target: "///admin", status: 401},
	{name: "empty segments", target: "/public//a///b", status: 200, route: "public", path: "/public/a/b", uri: "/public/a/b"},
	{name: "trailing slash", target: "/public/a/", status: 200, route: "public", path: "/public/a/", uri: "/public/a/"},

	// ';' path parameters: Tomcat and friends strip them, then resolve.
	{name: "dotdot semicolon", target: "/public/..;/admin/a", status: 400},
	{name: "dot semicolon", target: "/public/.;/a", status: 400},
	{name: "encoded dotdot semicolon", target: "/public/%2e%2e;/admin/a", status: 400},
	{name: "dotdot encoded semicolon", target: "/public/..%3b/admin/a", status: 400},
	{name: "dotdot semicolon param", target: "/public/..;x=1/admin/a", status: 400},
	{name: "semicolon segment", target: "/admin;x/a", status: 404},
	{name: "semicolon then dotdot", target: "/public;x/../admin/a", status: 401},
	{name: "semicolon in public", target: "/public/a;b", status: 200, route: "public", path: "/public/a;b", uri: "/public/a;b"},

	// Encoded separators and backslashes.
	{name: "encoded slash lower", target: "/public/..%2fadmin/a", status: 400},
	{name: "encoded slash upper", target: "/public/..%2Fadmin/a", status: 400},
	{name: "encoded slash alone", target: "/public/a%2Fb", status: 400},
	{name: "encoded backslash", target: "/public/..%5cadmin/a", status: 400},
	{name: "encoded backslash upper", target: "/public/..%5Cadmin/a", status: 400},
	{name: "backslash", target: `/public/..\admin/a`, status: 400},
	{name: "encoded dots and slash", target: "/public/%2e%2e%2fadmin/a", status: 400},

	// Control characters and fragments.
	{name: "encoded NUL", target: "/public/a%00.txt", status: 400},
	{name: "encoded NUL before dotdot", target: "/public/%00/../admin", status: 400},
	{name: "encoded LF", target: "/public/a%0a", status: 400},
	{name: "encoded CR", target: "/public/a%0D", status: 400},
	{name: "encoded tab", target: "/public/..%09/admin", status: 400},
	{name: "encoded DEL", target: "/public/a%7f", status: 400},
	{name: "fragment", target: "/public/a#frag", status: 400},
	{name: "fragment hides dotdot", target: "/admin#/../public/a", status: 400},
	{name: "encoded hash", target: "/public/a%23b", status: 200, route: "public", path: "/public/a#b", uri: "/public/a%23b"},

	// Bad encodings.
	{name: "truncated escape", target: "/public/a%2", status: 400},
	{name: "invalid escape", target: "/public/a%zz", status: 400},

	// Double encoding is decoded once: the upstream gets it still encoded.
	{name: "double encoded dotdot", target: "/public/%252e%252e/admin/a", status: 200, route: "public", path: "/public/%2e%2e/admin/a", uri: "/public/%252e%252e/admin/a"},
	{name: "double encoded slash", target: "/public/..%252fadmin", status: 200, route: "public", path: "/public/..%2fadmin", uri: "/public/..%252fadmin"},

	// Overlong UTF-8 is not UTF-8: it stays an opaque byte string, never a
	// dot, and goes upstream in canonical (upper-case) escapes.
	// Overlong UTF-8 ('.' as %c0%ae, '/' as %c0%af) decodes to bytes that
	// are not UTF-8, which some decoders read as dots and slashes: 400.
	{name: "overlong 2-byte dots", target: "/public/%c0%ae%c0%ae/admin/a", status: 400},
	{name: "overlong 3-byte dot", target: "/public/%e0%80%ae%e0%80%ae/admin", status: 400},
	{name: "overlong slash", target: "/public/..%c0%afadmin", status: 400},

	// Canonical escaping: the upstream decodes exactly what was routed.
	{name: "unicode lower escapes", target: "/public/caf%c3%a9", status: 200, route: "public", path: "/public/café", uri: "/public/caf%C3%A9"},
	{name: "unicode raw", target: "/public/caf\xc3\xa9", status: 200, route: "public", path: "/public/café", uri: "/public/caf%C3%A9"},
	{name: "needless escape", target: "/public/%61b", status: 200, route: "public", path: "/public/ab", uri: "/public/ab"},
	{name: "encoded admin", target: "/%61dmin/a", status: 401},
	{name: "encoded space", target: "/public/a%20b", status: 200, route: "public", path: "/public/a b", uri: "/public/a%20b"},

	// The query is passed on untouched, dots, slashes and escapes included.
	{name: "query dotdot", target: "/public/a?next=../admin&p=%2F", status: 200, route: "public", path: "/public/a", uri: "/public/a?next=../admin&p=%2F"},
	{name: "query after dotdot", target: "/public/../public/a?x=%2e%2e", status: 200, route: "public", path: "/public/a", uri: "/public/a?x=%2e%2e"},
	{name: "empty query", target: "/public/a?", status: 200, route: "public", path: "/public/a", uri: "/public/a?"},

	// Absolute form (RFC 9112 §3.2.2) is normalised the same way.
	{name: "absolute form", target: "http://gw.test/public/a", status: 200, route: "public", path: "/public/a", uri: "/public/a", requestURI: "http://gw.test/public/a"},
	{name: "absolute form cleaned", target: "http://gw.test/public/a/../b", status: 200, route: "public", path: "/public/b", uri: "/public/b"},
	{name: "absolute form dotdot", target: "http://gw.test/public/../admin/a", status: 401},
	{name: "absolute form encoded slash", target: "http://gw.test/public/..%2fadmin", status: 400},
	{name: "absolute form fragment", target: "http://gw.test/public/a#x", status: 400},

	// Asterisk form is for OPTIONS only; for GET it is no path.
	{name: "asterisk", target: "*", status: 400},

	{name: "very long", target: "/public" + longSegs + "/../.." + "/x", status: 200, route: "public", path: "/public" + longSegs[:len(longSegs)-len("/seg/seg")] + "/x", uri: "/public" + longSegs[:len(longSegs)-len("/seg/seg")] + "/x"},
}

// seen is what a route's upstream was given.
type seen struct {
	route, path, uri, requestURI, rest string
}

// pathGateway starts a Router on a real socket with a public prefix route
// and an admin prefix route behind an authenticator that refuses everyone.
// It returns the server's address and a function that returns, and
// clears, what the upstreams were given.
func pathGateway(t *testing.T) (string, func() []seen) {
	t.Helper()
	var mu sync.Mutex
	var got []seen
	upstream := func(name string) gateway.Handler {
		return gateway.HandlerFunc(func(_ context.Context, req *gateway.Request) (*gateway.Response, error) {
			mu.Lock()
			got = append(got, seen{
				route:      name,
				path:       req.HTTP.URL.Path,
				uri:        req.HTTP.URL.RequestURI(),
				requestURI: req.HTTP.RequestURI,
				rest:       req.Param("rest"),
			})
			mu.Unlock()
			return &gateway.Response{Status: http.StatusOK}, nil
		})
	}
	refuse := gateway.AuthenticatorFunc(func(context.Context, *gateway.Request) (*gateway.Principal, error) {
		return nil, gateway.ErrNotResponsible
	})
	rt, err := gateway.NewRouter(gateway.RouterConfig{Routes: []gateway.Route{
		{Name: "public", Path: "/public/{rest...}", Handler: upstream("public")},
		{Name: "admin", Path: "/admin/{rest...}", Handler: gateway.Chain(upstream("admin"), gateway.Authenticate(refuse))},
	}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(rt)
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String(), func() []seen {
		mu.Lock()
		defer mu.Unlock()
		out := got
		got = nil
		return out
	}
}

// rawGet sends "GET target HTTP/1.1" on a new connection, so that no
// client cleans the target first, and returns the status.
func rawGet(t *testing.T, addr, target string) int {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c, "GET "+target+" HTTP/1.1\r\nHost: gw.test\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestPathTable sends each trick path over a real connection and checks
// that it is refused, or routed on exactly the path its upstream is given,
// and that the guarded admin upstream is never reached.
func TestPathTable(t *testing.T) {
	addr, upstreamSaw := pathGateway(t)
	for _, tc := range pathCases {
		t.Run(tc.name, func(t *testing.T) {
			status := rawGet(t, addr, tc.target)
			got := upstreamSaw()
			for _, s := range got {
				if s.route == "admin" {
					t.Fatalf("GET %q reached the admin upstream unauthenticated as %q", tc.target, s.uri)
				}
				if p := s.path; p == "/admin" || strings.HasPrefix(p, "/admin/") {
					t.Fatalf("GET %q reached an upstream on admin path %q", tc.target, p)
				}
			}
			if status != tc.status {
				t.Fatalf("GET %q: status %d, want %d (upstream saw %+v)", tc.target, status, tc.status, got)
			}
			if tc.status != http.StatusOK {
				if len(got) != 0 {
					t.Fatalf("GET %q: status %d, yet an upstream was called: %+v", tc.target, status, got)
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("GET %q: upstream called %d times, want 1", tc.target, len(got))
			}
			s := got[0]
			if s.route != tc.route {
				t.Errorf("GET %q: served by route %q, want %q", tc.target, s.route, tc.route)
			}
			if s.path != tc.path {
				t.Errorf("GET %q: routed on %q, want %q", tc.target, s.path, tc.path)
			}
			if s.uri != tc.uri {
				t.Errorf("GET %q: upstream URL %q, want %q", tc.target, s.uri, tc.uri)
			}
			// Whoever reads RequestURI must see the routed path too.
			wantURI := tc.requestURI
			if wantURI == "" {
				wantURI = tc.uri
			}
			if s.requestURI != wantURI {
				t.Errorf("GET %q: RequestURI %q, want %q", tc.target, s.requestURI, wantURI)
			}
			if want := strings.TrimPrefix(strings.TrimPrefix(tc.path, "/public"), "/"); s.rest != want {
				t.Errorf("GET %q: {rest...} = %q, want %q", tc.target, s.rest, want)
			}
		})
	}
}
