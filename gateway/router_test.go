package gateway_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/gatekit/gatekit/gateway"
)

// routeEcho answers 200 with the matched route's name as the body, and
// reports in reply headers what the upstream saw: path, escaped path,
// version and path parameters.
var routeEcho = gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
	ps := make([]string, 0, len(req.Params()))
	for _, p := range req.Params() {
		ps = append(ps, p.Name+"="+p.Value)
	}
	// Quoted, since paths may hold bytes that cannot travel in a field.
	h := http.Header{
		"X-Path":         {strconv.Quote(req.HTTP.URL.Path)},
		"X-Escaped-Path": {strconv.Quote(req.HTTP.URL.EscapedPath())},
		"X-Version":      {strconv.Quote(req.Version)},
		"X-Params":       {strconv.Quote(strings.Join(ps, "&"))},
	}
	return gateway.NewResponse(http.StatusOK, h, []byte(req.Route().Name)), nil
})

// echoed returns what routeEcho reported in the reply header field key.
func echoed(t testing.TB, h http.Header, key string) string {
	t.Helper()
	s, err := strconv.Unquote(h.Get(key))
	if err != nil {
		t.Fatalf("reply field %s = %q: %v", key, h.Get(key), err)
	}
	return s
}

// newTestRouter builds a Router, giving routeEcho to every route without a
// Handler.
func newTestRouter(t testing.TB, cfg gateway.RouterConfig) *gateway.Router {
	t.Helper()
	cfg.Routes = withEcho(cfg.Routes)
	rt, err := gateway.NewRouter(cfg)
	if err != nil {
		t.Fatalf("NewRouter: %v", err)
	}
	return rt
}

func withEcho(routes []gateway.Route) []gateway.Route {
	out := slices.Clone(routes)
	for i := range out {
		if out[i].Handler == nil {
			out[i].Handler = routeEcho
		}
	}
	return out
}

// routerRequest describes one request sent through a Router in process.
type routerRequest struct {
	method string // "" means GET
	target string
	host   string // "" means example.com
	header map[string][]string
}

func (rr routerRequest) serve(t testing.TB, h http.Handler) *httptest.ResponseRecorder {
	t.Helper()
	method := rr.method
	if method == "" {
		method = http.MethodGet
	}
	r := httptest.NewRequest(method, rr.target, nil)
	if rr.host != "" {
		r.Host = rr.host
	}
	for k, vs := range rr.header {
		for _, v := range vs {
			r.Header.Add(k, v)
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}

// outcome is the route name for a 200, or the status code of a problem.
func outcome(t testing.TB, rec *httptest.ResponseRecorder) string {
	t.Helper()
	if rec.Code == http.StatusOK {
		return rec.Body.String()
	}
	checkProblem(t, rec.Code, rec.Header(), rec.Body.Bytes())
	return strconv.Itoa(rec.Code)
}

// checkProblem fails unless the reply is a problem+json document whose
// status member agrees with the status code.
func checkProblem(t testing.TB, code int, h http.Header, body []byte) {
	t.Helper()
	if ct := h.Get("Content-Type"); ct != gateway.ProblemContentType {
		t.Fatalf("status %d: Content-Type = %q, want %q (body %q)", code, ct, gateway.ProblemContentType, body)
	}
	var p struct {
		Type   string `json:"type"`
		Title  string `json:"title"`
		Status int    `json:"status"`
		Detail string `json:"detail"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("problem body %q: %v", body, err)
	}
	if p.Status != code || p.Title == "" || p.Type == "" || p.Detail == "" {
		t.Fatalf("problem %+v does not describe status %d", p, code)
	}
}

func TestRouterMatchers(t *testing.T) {
	get := []string{http.MethodGet}
	type check struct {
		name string
		req  routerRequest
		want string // route name, or status code
		// when set, what the upstream must see
		wantVersion, wantParams string
	}
	groups := []struct {
		name   string
		cfg    gateway.RouterConfig
		checks []check
	}{
		{
			name: "method",
			cfg: gateway.RouterConfig{Routes: []gateway.Route{
				{Name: "get", Methods: get, Path: "/m"},
				{Name: "post-put", Methods: []string{"post", " PUT "}, Path: "/m"},
			}},
			checks: []check{
				{name: "GET", req: routerRequest{target: "/m"}, want: "get"},
				{name: "HEAD implied by GET", req: routerRequest{method: "HEAD", target: "/m"}, want: "200"},
				{name: "POST lower-case in route", req: routerRequest{method: "POST", target: "/m"}, want: "post-put"},
				{name: "PUT trimmed in route", req: routerRequest{method: "PUT", target: "/m"}, want: "post-put"},
				{name: "DELETE not served", req: routerRequest{method: "DELETE", target: "/m"}, want: "405"},
			},
		},
		{
			name: "host exact",
			cfg: gateway.RouterConfig{Routes: []gateway.Route{
				{Name: "api", Host: "API.example.com", Path: "/h"},
			}},
			checks: []check{
				{name: "same", req: routerRequest{target: "/h", host: "api.example.com"}, want: "api"},
				{name: "upper case", req: routerRequest{target: "/h", host: "API.EXAMPLE.COM"}, want: "api"},
				{name: "port ignored", req: routerRequest{target: "/h", host: "api.example.com:8443"}, want: "api"},
				{name: "trailing dot", req: routerRequest{target: "/h", host: "api.example.com."}, want: "api"},
				{name: "other host", req: routerRequest{target: "/h", host: "www.example.com"}, want: "404"},
				{name: "sub-domain", req: routerRequest{target: "/h", host: "x.api.example.com"}, want: "404"},
				{name: "suffix only", req: routerRequest{target: "/h", host: "myapi.example.com"}, want: "404"},
			},
		},
		{
			name: "host wildcard",
			cfg: gateway.RouterConfig{Routes: []gateway.Route{
				{Name: "wild", Host: "*.example.com", Path: "/h"},
			}},
			checks: []check{
				{name: "one label", req: routerRequest{target: "/h", host: "a.example.com"}, want: "wild"},
				{name: "one label with port, upper case", req: routerRequest{target: "/h", host: "A.Example.COM:8080"}, want: "wild"},
				{name: "bare domain", req: routerRequest{target: "/h", host: "example.com"}, want: "404"},
				{name: "two labels", req: routerRequest{target: "/h", host: "a.b.example.com"}, want: "404"},
				{name: "not on a label boundary", req: routerRequest{target: "/h", host: "aexample.com"}, want: "404"},
				{name: "empty label", req: routerRequest{target: "/h", host: ".example.com"}, want: "404"},
				{name: "other domain", req: routerRequest{target: "/h", host: "a.example.org"}, want: "404"},
			},
		},
		{
			name: "path exact",
			cfg: gateway.RouterConfig{Routes: []gateway.Route{
				{Name: "users", Path: "/users"},
				{Name: "root", Path: "/"},
			}},
			checks: []check{
				{name: "same", req: routerRequest{target: "/users"}, want: "users"},
				{name: "trailing slash is another path", req: routerRequest{target: "/users/"}, want: "404"},
				{name: "below", req: routerRequest{target: "/users/1"}, want: "404"},
				{name: "longer segment", req: routerRequest{target: "/usersx"}, want: "404"},
				{name: "case matters", req: routerRequest{target: "/Users"}, want: "404"},
				{name: "root", req: routerRequest{target: "/"}, want: "root"},
				{name: "query ignored", req: routerRequest{target: "/users?x=1"}, want: "users"},
			},
		},
		{
			name: "path prefix",
			cfg: gateway.RouterConfig{Routes: []gateway.Route{
				{Name: "v2", PathPrefix: "/v2"},
				{Name: "docs", PathPrefix: "/docs/"},
			}},
			checks: []check{
				{name: "itself", req: routerRequest{target: "/v2"}, want: "v2"},
				{name: "itself with slash", req: routerRequest{target: "/v2/"}, want: "v2"},
				{name: "below", req: routerRequest{target: "/v2/x"}, want: "v2"},
				{name: "deep below", req: routerRequest{target: "/v2/x/y/z/"}, want: "v2"},
				{name: "not a segment boundary", req: routerRequest{target: "/v2example"}, want: "404"},
				{name: "shorter", req: routerRequest{target: "/v"}, want: "404"},
				{name: "trailing slash in prefix is dropped", req: routerRequest{target: "/docs"}, want: "docs"},
				{name: "trailing slash prefix, below", req: routerRequest{target: "/docs/a"}, want: "docs"},
			},
		},
		{
			name: "params",
			cfg: gateway.RouterConfig{Routes: []gateway.Route{
				{Name: "user", Path: "/users/{id}"},
				{Name: "order", Path: "/users/{id}/orders/{order}"},
				{Name: "files", Path: "/files/{path...}"},
				{Name: "tenant", PathPrefix: "/t/{tenant}"},
			}},
			checks: []check{
				{name: "one", req: routerRequest{target: "/users/42"}, want: "user", wantParams: "id=42"},
				{name: "empty segment does not match", req: routerRequest{target: "/users/"}, want: "404"},
				{name: "extra segment", req: routerRequest{target: "/users/42/x"}, want: "404"},
				{name: "two", req: routerRequest{target: "/users/42/orders/7"}, want: "order", wantParams: "id=42&order=7"},
				{name: "decoded", req: routerRequest{target: "/users/j%C3%B6rg%20x/orders/%41"}, want: "order", wantParams: "id=jörg x&order=A"},
				{name: "rest", req: routerRequest{target: "/files/a/b/c.txt"}, want: "files", wantParams: "path=a/b/c.txt"},
				{name: "rest one segment", req: routerRequest{target: "/files/a"}, want: "files", wantParams: "path=a"},
				{name: "rest with trailing slash", req: routerRequest{target: "/files/a/"}, want: "files", wantParams: "path=a/"},
				{name: "rest empty after slash", req: routerRequest{target: "/files/"}, want: "files", wantParams: "path="},
				{name: "rest empty", req: routerRequest{target: "/files"}, want: "files", wantParams: "path="},
				{name: "rest after normalisation", req: routerRequest{target: "/files/a/../b//c"}, want: "files", wantParams: "path=b/c"},
				{name: "param in prefix", req: routerRequest{target: "/t/acme/x/y"}, want: "tenant", wantParams: "tenant=acme"},
				{name: "param in prefix, itself", req: routerRequest{target: "/t/acme"}, want: "tenant", wantParams: "tenant=acme"},
				{name: "param in prefix, empty", req: routerRequest{target: "/t/"}, want: "404"},
			},
		},
		{
			name: "headers",
			cfg: gateway.RouterConfig{Routes: []gateway.Route{
				{Name: "tenant", Path: "/h", Headers: map[string]string{"x-tenant": "acme"}},
				{Name: "debug", Path: "/d", Headers: map[string]string{"X-DEBUG": ""}},
			}},
			checks: []check{
				{name: "value", req: routerRequest{target: "/h", header: map[string][]string{"X-Tenant": {"acme"}}}, want: "tenant"},
				{name: "one of several values", req: routerRequest{target: "/h", header: map[string][]string{"X-Tenant": {"other", "acme"}}}, want: "tenant"},
				{name: "other value", req: routerRequest{target: "/h", header: map[string][]string{"X-Tenant": {"other"}}}, want: "404"},
				{name: "value case matters", req: routerRequest{target: "/h", header: map[string][]string{"X-Tenant": {"ACME"}}}, want: "404"},
				{name: "absent", req: routerRequest{target: "/h"}, want: "404"},
				{name: "presence", req: routerRequest{target: "/d", header: map[string][]string{"x-debug": {"1"}}}, want: "debug"},
				{name: "presence with empty value", req: routerRequest{target: "/d", header: map[string][]string{"X-Debug": {""}}}, want: "debug"},
				{name: "presence, absent", req: routerRequest{target: "/d", header: map[string][]string{"X-Debugger": {"1"}}}, want: "404"},
			},
		},
		{
			name: "query",
			cfg: gateway.RouterConfig{Routes: []gateway.Route{
				{Name: "json", Path: "/q", Query: map[string]string{"format": "json"}},
				{Name: "debug", Path: "/d", Query: map[string]string{"debug": ""}},
				{Name: "space", Path: "/s", Query: map[string]string{"q": "a b", "k k": ""}},
			}},
			checks: []check{
				{name: "value", req: routerRequest{target: "/q?format=json"}, want: "json"},
				{name: "among others", req: routerRequest{target: "/q?a=1&format=json&b"}, want: "json"},
				{name: "one of repeated", req: routerRequest{target: "/q?format=xml&format=json"}, want: "json"},
				{name: "encoded", req: routerRequest{target: "/q?%66ormat=j%73on"}, want: "json"},
				{name: "other value", req: routerRequest{target: "/q?format=xml"}, want: "404"},
				{name: "longer value", req: routerRequest{target: "/q?format=jsonx"}, want: "404"},
				{name: "name case matters", req: routerRequest{target: "/q?Format=json"}, want: "404"},
				{name: "semicolon pair is ignored", req: routerRequest{target: "/q?format=json;x=1"}, want: "404"},
				{name: "absent", req: routerRequest{target: "/q"}, want: "404"},
				{name: "presence bare", req: routerRequest{target: "/d?debug"}, want: "debug"},
				{name: "presence empty", req: routerRequest{target: "/d?debug="}, want: "debug"},
				{name: "presence valued", req: routerRequest{target: "/d?x=1&debug=0"}, want: "debug"},
				{name: "presence, invalid escape is ignored", req: routerRequest{target: "/d?debug=%zz"}, want: "404"},
				{name: "presence, longer name", req: routerRequest{target: "/d?debugx=1"}, want: "404"},
				{name: "plus and %20 are spaces", req: routerRequest{target: "/s?q=a+b&k%20k"}, want: "space"},
				{name: "plus is a space in names", req: routerRequest{target: "/s?q=a%20b&k+k=1"}, want: "space"},
			},
		},
		{
			name: "version in path",
			cfg: gateway.RouterConfig{
				Versioning: gateway.Versioning{PathPrefix: true},
				Routes: []gateway.Route{
					{Name: "users-v1", Version: "v1", Path: "/users/{id}"},
					{Name: "users-v2", Version: "v2", Path: "/users/{id}"},
					{Name: "root-v2", Version: "v2", Path: "/"},
					{Name: "static-v2", Version: "v2", PathPrefix: "/static"},
					{Name: "health", Path: "/health"},
				},
			},
			checks: []check{
				{name: "v1", req: routerRequest{target: "/v1/users/7"}, want: "users-v1", wantVersion: "v1", wantParams: "id=7"},
				{name: "v2", req: routerRequest{target: "/v2/users/7"}, want: "users-v2", wantVersion: "v2", wantParams: "id=7"},
				{name: "unknown version", req: routerRequest{target: "/v3/users/7"}, want: "404"},
				{name: "no version", req: routerRequest{target: "/users/7"}, want: "404"},
				{name: "root of a version", req: routerRequest{target: "/v2/"}, want: "root-v2", wantVersion: "v2"},
				{name: "prefix of a version", req: routerRequest{target: "/v2/static/a.css"}, want: "static-v2", wantVersion: "v2"},
				{name: "unversioned route", req: routerRequest{target: "/health"}, want: "health", wantVersion: ""},
				{name: "header is not looked at", req: routerRequest{target: "/v1/users/7", header: map[string][]string{"Api-Version": {"v2"}}}, want: "users-v1", wantVersion: "v1"},
			},
		},
		{
			name: "version in header",
			cfg: gateway.RouterConfig{
				Versioning: gateway.Versioning{Header: "api-version", Default: "v1"},
				Routes: []gateway.Route{
					{Name: "users-v1", Version: "v1", Path: "/users"},
					{Name: "users-v2", Version: "v2", Path: "/users"},
					{Name: "health", Path: "/health"},
				},
			},
			checks: []check{
				{name: "v2", req: routerRequest{target: "/users", header: map[string][]string{"Api-Version": {"v2"}}}, want: "users-v2", wantVersion: "v2"},
				{name: "v2 upper case", req: routerRequest{target: "/users", header: map[string][]string{"Api-Version": {"V2"}}}, want: "users-v2", wantVersion: "v2"},
				{name: "v1", req: routerRequest{target: "/users", header: map[string][]string{"Api-Version": {"v1"}}}, want: "users-v1", wantVersion: "v1"},
				{name: "default", req: routerRequest{target: "/users"}, want: "users-v1", wantVersion: "v1"},
				{name: "empty means default", req: routerRequest{target: "/users", header: map[string][]string{"Api-Version": {""}}}, want: "users-v1", wantVersion: "v1"},
				{name: "unknown", req: routerRequest{target: "/users", header: map[string][]string{"Api-Version": {"v9"}}}, want: "404"},
				{name: "any-version route sees the version", req: routerRequest{target: "/health", header: map[string][]string{"Api-Version": {"v9"}}}, want: "health", wantVersion: "v9"},
				{name: "any-version route sees the default", req: routerRequest{target: "/health"}, want: "health", wantVersion: "v1"},
				{name: "media type is not looked at", req: routerRequest{target: "/users", header: map[string][]string{"Accept": {"application/vnd.acme.v2+json"}}}, want: "users-v1", wantVersion: "v1"},
			},
		},
		{
			name: "version in media type",
			cfg: gateway.RouterConfig{
				Versioning: gateway.Versioning{MediaType: "application/vnd.acme", Default: "v1"},
				Routes: []gateway.Route{
					{Name: "users-v1", Version: "v1", Path: "/users"},
					{Name: "users-v2", Version: "v2", Path: "/users"},
				},
			},
			checks: []check{
				{name: "Accept v2", req: routerRequest{target: "/users", header: map[string][]string{"Accept": {"application/vnd.acme.v2+json"}}}, want: "users-v2", wantVersion: "v2"},
				{name: "Accept v2 without suffix", req: routerRequest{target: "/users", header: map[string][]string{"Accept": {"application/vnd.acme.v2"}}}, want: "users-v2", wantVersion: "v2"},
				{name: "Accept v2 with parameters", req: routerRequest{target: "/users", header: map[string][]string{"Accept": {"application/vnd.acme.v2+json; q=0.9"}}}, want: "users-v2", wantVersion: "v2"},
				{name: "Accept list", req: routerRequest{target: "/users", header: map[string][]string{"Accept": {"text/html, Application/VND.Acme.v2+json"}}}, want: "users-v2", wantVersion: "v2"},
				{name: "Accept second field", req: routerRequest{target: "/users", header: map[string][]string{"Accept": {"text/html", "application/vnd.acme.v2+json"}}}, want: "users-v2", wantVersion: "v2"},
				{name: "Content-Type", req: routerRequest{method: "POST", target: "/users", header: map[string][]string{"Content-Type": {"application/vnd.acme.v2+json"}}}, want: "users-v2", wantVersion: "v2"},
				{name: "vendor type without version", req: routerRequest{target: "/users", header: map[string][]string{"Accept": {"application/vnd.acme+json"}}}, want: "users-v1", wantVersion: "v1"},
				{name: "other vendor", req: routerRequest{target: "/users", header: map[string][]string{"Accept": {"application/vnd.acmex.v2+json"}}}, want: "users-v1", wantVersion: "v1"},
				{name: "plain json is the default", req: routerRequest{target: "/users", header: map[string][]string{"Accept": {"application/json"}}}, want: "users-v1", wantVersion: "v1"},
				{name: "no Accept is the default", req: routerRequest{target: "/users"}, want: "users-v1", wantVersion: "v1"},
				{name: "unknown", req: routerRequest{target: "/users", header: map[string][]string{"Accept": {"application/vnd.acme.v7+json"}}}, want: "404"},
			},
		},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			rt := newTestRouter(t, g.cfg)
			for _, c := range g.checks {
				t.Run(c.name, func(t *testing.T) {
					rec := c.req.serve(t, rt)
					got := outcome(t, rec)
					if c.req.method == http.MethodHead && rec.Code == http.StatusOK {
						got = "200"
					}
					if got != c.want {
						t.Fatalf("%s %s: got %q, want %q", c.req.method, c.req.target, got, c.want)
					}
					if rec.Code != http.StatusOK {
						return
					}
					if c.wantVersion != "" || strings.HasPrefix(g.name, "version") {
						if v := echoed(t, rec.Header(), "X-Version"); v != c.wantVersion {
							t.Errorf("req.Version = %q, want %q", v, c.wantVersion)
						}
					}
					if c.wantParams != "" {
						if p := echoed(t, rec.Header(), "X-Params"); p != c.wantParams {
							t.Errorf("params = %q, want %q", p, c.wantParams)
						}
					}
				})
			}
		})
	}
}

// precedenceRoutes is one routing table that exercises every precedence rule
// documented on gateway.Router.
var precedenceRoutes = []gateway.Route{
	// Rules 1 and 2: paths.
	{Name: "users", Path: "/users"},
	{Name: "users-slash", Path: "/users/"},
	{Name: "users-me", Path: "/users/me"},
	{Name: "users-id", Path: "/users/{id}"},
	{Name: "users-id-orders", Path: "/users/{id}/orders"},
	{Name: "users-me-any", Path: "/users/me/{x}"},
	{Name: "users-files", Path: "/users/{id}/files/{path...}"},
	{Name: "users-prefix", PathPrefix: "/users"},
	{Name: "p-param-first", Path: "/p/{a}/x"}, // declared first, loses to a literal
	{Name: "p-literal-second", Path: "/p/y/{b}"},
	{Name: "docs-page", Path: "/docs/{page}"},
	{Name: "docs-intro-prefix", PathPrefix: "/docs/intro"},
	{Name: "api", PathPrefix: "/api"},
	{Name: "api-v1", PathPrefix: "/api/v1"},
	{Name: "api-ver-admin", PathPrefix: "/api/{ver}/admin"},
	{Name: "api-v1-admin", PathPrefix: "/api/v1/admin"},
	{Name: "api-v1-status", Path: "/api/v1/status"},
	{Name: "root", PathPrefix: "/"},

	// Rule 3: hosts.
	{Name: "h-any", Path: "/h"},
	{Name: "h-wild", Host: "*.example.com", Path: "/h"},
	{Name: "h-exact", Host: "api.example.com", Path: "/h"},

	// Rule 3 before 4: an exact host serving any method beats a wildcard
	// host naming the method.
	{Name: "m-get-wild", Methods: []string{"GET"}, Host: "*.example.com", Path: "/m"},
	{Name: "m-any-exact", Host: "api.example.com", Path: "/m"},

	// Rule 4 before 5: a method beats a version.
	{Name: "ver-any", Path: "/ver"},
	{Name: "ver-v2", Version: "v2", Path: "/ver"},
	{Name: "ver-get", Methods: []string{"GET"}, Path: "/ver"},

	// Rule 5 before 6: a version beats headers.
	{Name: "vh-header", Path: "/vh", Headers: map[string]string{"X-A": ""}},
	{Name: "vh-v2", Version: "v2", Path: "/vh"},

	// Rule 6: more header matchers.
	{Name: "hd-0", Path: "/hd"},
	{Name: "hd-2", Path: "/hd", Headers: map[string]string{"X-A": "1", "X-B": ""}},
	{Name: "hd-1", Path: "/hd", Headers: map[string]string{"X-A": "1"}},

	// Rule 6 before 7: one header beats two query matchers.
	{Name: "q-0", Path: "/q"},
	{Name: "q-1", Path: "/q", Query: map[string]string{"a": "1"}},
	{Name: "q-2", Path: "/q", Query: map[string]string{"a": "1", "b": ""}},
	{Name: "q-header", Path: "/q", Headers: map[string]string{"X-Q": ""}},

	// Rule 8: declaration order.
	{Name: "tie-first", Path: "/tie", Headers: map[string]string{"X-A": ""}},
	{Name: "tie-second", Path: "/tie", Headers: map[string]string{"X-B": ""}},
	{Name: "tq-first", Path: "/tq", Query: map[string]string{"b": ""}},
	{Name: "tq-second", Path: "/tq", Query: map[string]string{"a": ""}},
	{Name: "th-first", Host: "*.example.com", Path: "/th"},
	{Name: "th-second", Host: "*.b.example.com", Path: "/th"},
}

func TestRouterPrecedence(t *testing.T) {
	rt := newTestRouter(t, gateway.RouterConfig{
		Versioning: gateway.Versioning{Header: "Api-Version"},
		Routes:     precedenceRoutes,
	})
	a := map[string][]string{"X-A": {"1"}}
	ab := map[string][]string{"X-A": {"1"}, "X-B": {"1"}}
	v2 := map[string][]string{"Api-Version": {"v2"}}
	tests := []struct {
		name string
		req  routerRequest
		want string
	}{
		// Rule 1: a Path route beats a prefix route.
		{"exact beats prefix", routerRequest{target: "/users"}, "users"},
		{"exact with trailing slash beats prefix", routerRequest{target: "/users/"}, "users-slash"},
		{"exact param beats longer prefix", routerRequest{target: "/docs/intro"}, "docs-page"},
		{"prefix below exact", routerRequest{target: "/docs/intro/more"}, "docs-intro-prefix"},
		{"exact beats prefix of same path", routerRequest{target: "/api/v1/status"}, "api-v1-status"},
		{"prefix when no exact route", routerRequest{target: "/users/me/a/b"}, "users-prefix"},
		{"rest route is a prefix route", routerRequest{target: "/users/7/files"}, "users-files"},
		// Rule 2: literal beats param, segment by segment from the left.
		{"literal beats param", routerRequest{target: "/users/me"}, "users-me"},
		{"param when no literal", routerRequest{target: "/users/7"}, "users-id"},
		{"literal on the left wins", routerRequest{target: "/users/me/orders"}, "users-me-any"},
		{"param path with literal tail", routerRequest{target: "/users/7/orders"}, "users-id-orders"},
		{"literal in second segment beats earlier declaration", routerRequest{target: "/p/y/x"}, "p-literal-second"},
		{"param path when literal path fails", routerRequest{target: "/p/z/x"}, "p-param-first"},
		{"literal path when param path fails", routerRequest{target: "/p/y/z"}, "p-literal-second"},
		{"longer prefix wins", routerRequest{target: "/api/v1/users"}, "api-v1"},
		{"longer prefix with a param wins", routerRequest{target: "/api/v2/admin/x"}, "api-ver-admin"},
		{"same length prefix: literal beats param", routerRequest{target: "/api/v1/admin/x"}, "api-v1-admin"},
		{"shortest prefix", routerRequest{target: "/api/v2"}, "api"},
		{"longest rest route beats prefix", routerRequest{target: "/users/7/files/a/b"}, "users-files"},
		{"catch-all", routerRequest{target: "/nothing/here"}, "root"},
		{"catch-all on root", routerRequest{target: "/"}, "root"},
		// Rule 3: exact host beats wildcard beats none.
		{"exact host", routerRequest{target: "/h", host: "api.example.com"}, "h-exact"},
		{"wildcard host", routerRequest{target: "/h", host: "www.example.com"}, "h-wild"},
		{"no host", routerRequest{target: "/h", host: "example.org"}, "h-any"},
		{"exact host beats named method", routerRequest{target: "/m", host: "api.example.com"}, "m-any-exact"},
		{"wildcard when exact host does not match", routerRequest{target: "/m", host: "www.example.com"}, "m-get-wild"},
		// Rule 4: named method beats any method.
		{"method beats version", routerRequest{target: "/ver", header: v2}, "ver-get"},
		{"version when method does not match", routerRequest{method: "POST", target: "/ver", header: v2}, "ver-v2"},
		{"any when neither", routerRequest{method: "POST", target: "/ver"}, "ver-any"},
		// Rule 5: version beats any version.
		{"version beats header", routerRequest{target: "/vh", header: map[string][]string{"X-A": {"1"}, "Api-Version": {"v2"}}}, "vh-v2"},
		{"header when no version", routerRequest{target: "/vh", header: a}, "vh-header"},
		// Rule 6: more header matchers.
		{"two headers beat one", routerRequest{target: "/hd", header: ab}, "hd-2"},
		{"one header beats none", routerRequest{target: "/hd", header: a}, "hd-1"},
		{"none", routerRequest{target: "/hd"}, "hd-0"},
		{"header value must match", routerRequest{target: "/hd", header: map[string][]string{"X-A": {"2"}, "X-B": {"1"}}}, "hd-0"},
		// Rule 7: more query matchers.
		{"header beats two query matchers", routerRequest{target: "/q?a=1&b", header: map[string][]string{"X-Q": {""}}}, "q-header"},
		{"two query matchers beat one", routerRequest{target: "/q?a=1&b"}, "q-2"},
		{"one query matcher beats none", routerRequest{target: "/q?a=1"}, "q-1"},
		{"query value must match", routerRequest{target: "/q?a=2&b"}, "q-0"},
		// Rule 8: declaration order.
		{"tie on headers: first declared", routerRequest{target: "/tie", header: ab}, "tie-first"},
		{"tie on headers: second when first fails", routerRequest{target: "/tie", header: map[string][]string{"X-B": {""}}}, "tie-second"},
		{"tie on query: first declared", routerRequest{target: "/tq?a&b"}, "tq-first"},
		{"tie on query: second when first fails", routerRequest{target: "/tq?a"}, "tq-second"},
		{"wildcard is one label", routerRequest{target: "/th", host: "a.example.com"}, "th-first"},
		{"longer wildcard", routerRequest{target: "/th", host: "a.b.example.com"}, "th-second"},
		{"tie fails: catch-all", routerRequest{target: "/tie"}, "root"},
	}
	if len(tests) < 30 {
		t.Fatalf("only %d cases", len(tests))
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := outcome(t, tc.req.serve(t, rt))
			if got != tc.want {
				t.Fatalf("%s %s (host %q, header %v): got %q, want %q", tc.req.method, tc.req.target, tc.req.host, tc.req.header, got, tc.want)
			}
		})
	}
}

// TestRouterPrecedenceIgnoresDeclarationOrder checks that rules 1 to 7 do
// not depend on the order of the table: reversed, every case but the
// declaration-order ties must pick the same route.
func TestRouterPrecedenceIgnoresDeclarationOrder(t *testing.T) {
	fwd := newTestRouter(t, gateway.RouterConfig{Versioning: gateway.Versioning{Header: "Api-Version"}, Routes: precedenceRoutes})
	rev := slices.Clone(precedenceRoutes)
	slices.Reverse(rev)
	bwd := newTestRouter(t, gateway.RouterConfig{Versioning: gateway.Versioning{Header: "Api-Version"}, Routes: rev})
	for _, target := range []string{"/users", "/users/", "/users/me", "/users/7", "/users/me/orders", "/users/7/orders",
		"/users/7/files/a", "/p/y/x", "/docs/intro", "/docs/intro/x", "/api/v1/x", "/api/v2/admin/x", "/api/v1/admin/x",
		"/api/v1/status", "/x", "/hd", "/q?a=1&b", "/q?a=1"} {
		for _, host := range []string{"example.org", "api.example.com", "www.example.com"} {
			rr := routerRequest{target: target, host: host, header: map[string][]string{"X-A": {"1"}, "X-B": {""}, "Api-Version": {"v2"}}}
			t.Run(host+target, func(t *testing.T) {
				if a, b := outcome(t, rr.serve(t, fwd)), outcome(t, rr.serve(t, bwd)); a != b {
					t.Fatalf("declared forwards: %q; backwards: %q", a, b)
				}
			})
		}
	}
}

func TestRouterNotFoundAndMethodNotAllowed(t *testing.T) {
	rt := newTestRouter(t, gateway.RouterConfig{Routes: []gateway.Route{
		{Name: "r-get", Methods: []string{"GET"}, Path: "/r"},
		{Name: "r-post", Methods: []string{"POST"}, Path: "/r"},
		{Name: "r-host", Methods: []string{"put", "Delete"}, Host: "api.example.com", Path: "/r"},
		{Name: "r-header", Methods: []string{"PATCH"}, Path: "/r", Headers: map[string]string{"X-Patch": ""}},
		{Name: "p-prefix", Methods: []string{"OPTIONS"}, PathPrefix: "/p"},
		{Name: "p-param", Methods: []string{"POST"}, Path: "/p/{id}"},
		{Name: "any", Path: "/any"},
		{Name: "trace", Methods: []string{"TRACE"}, Path: "/trace"},
		{Name: "connect", Methods: []string{"CONNECT"}, Path: "/connect"},
	}})
	tests := []struct {
		name      string
		req       routerRequest
		want      int
		wantAllow string
	}{
		{"no route for the path", routerRequest{target: "/nope"}, 404, ""},
		{"no route for the host", routerRequest{method: "PUT", target: "/nope", host: "api.example.com"}, 404, ""},
		{"method not allowed", routerRequest{method: "PATCH", target: "/r"}, 405, "GET, HEAD, POST"},
		{"Allow lists routes for the host", routerRequest{method: "PATCH", target: "/r", host: "api.example.com"}, 405, "DELETE, GET, HEAD, POST, PUT"},
		{"Allow lists routes whose headers match", routerRequest{method: "PUT", target: "/r", header: map[string][]string{"X-Patch": {"1"}}}, 405, "GET, HEAD, PATCH, POST"},
		{"Allow lists prefix and exact routes", routerRequest{method: "GET", target: "/p/1"}, 405, "OPTIONS, POST"},
		{"Allow lists the prefix route alone", routerRequest{method: "GET", target: "/p/1/2"}, 405, "OPTIONS"},
		{"CONNECT is not served by an any-method route", routerRequest{method: "CONNECT", target: "/any"}, 405, "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT"},
		{"TRACE is not served by an any-method route", routerRequest{method: "TRACE", target: "/any"}, 405, "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT"},
		{"any method", routerRequest{method: "PROPFIND", target: "/any"}, 200, ""},
		{"TRACE when named", routerRequest{method: "TRACE", target: "/trace"}, 200, ""},
		{"CONNECT when named", routerRequest{method: "CONNECT", target: "/connect"}, 200, ""},
		{"HEAD implied by GET", routerRequest{method: "HEAD", target: "/r"}, 200, ""},
		{"HEAD not implied by POST", routerRequest{method: "HEAD", target: "/p/1"}, 405, "OPTIONS, POST"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := tc.req.serve(t, rt)
			if rec.Code != tc.want {
				t.Fatalf("status %d, want %d (body %q)", rec.Code, tc.want, rec.Body)
			}
			if tc.want != 200 {
				checkProblem(t, rec.Code, rec.Header(), rec.Body.Bytes())
			}
			if got := rec.Header().Get("Allow"); got != tc.wantAllow {
				t.Errorf("Allow = %q, want %q", got, tc.wantAllow)
			}
			// (Problem replies to HEAD keep their body in a recorder; net/http
			// drops it on the wire.)
			if tc.req.method == http.MethodHead && rec.Code == http.StatusOK && rec.Body.Len() != 0 {
				t.Errorf("HEAD reply has a body %q", rec.Body)
			}
		})
	}
}

func TestRouterWithoutRoutes(t *testing.T) {
	for _, tc := range []struct {
		name string
		rt   *gateway.Router
	}{
		{"zero value", new(gateway.Router)},
		{"empty table", newTestRouter(t, gateway.RouterConfig{})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := routerRequest{target: "/x"}.serve(t, tc.rt)
			if got := outcome(t, rec); got != "404" {
				t.Fatalf("got %q, want 404", got)
			}
			if n := len(tc.rt.Routes()); n != 0 {
				t.Fatalf("Routes() has %d routes", n)
			}
		})
	}
}

// serveRaw sends one request with the given request target over a real
// connection, so that the target reaches the gateway byte for byte.
func serveRaw(t *testing.T, srv *httptest.Server, method, target string) (*http.Response, []byte) {
	t.Helper()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n", method, target); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%s %q: %v", method, target, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func TestRouterNormalisesPath(t *testing.T) {
	rt := newTestRouter(t, gateway.RouterConfig{Routes: []gateway.Route{
		{Name: "user", Path: "/users/{id}"},
		{Name: "users-slash", Path: "/users/"},
		{Name: "root", Path: "/"},
		{Name: "all", PathPrefix: "/"},
	}})
	srv := httptest.NewServer(rt)
	t.Cleanup(srv.Close)
	tests := []struct {
		name, target         string
		want                 string // route
		wantPath, wantEsc    string // what the upstream sees
		wantParams           string
		notInProcess, notRaw bool
	}{
		{name: "clean", target: "/users/42", want: "user", wantPath: "/users/42", wantEsc: "/users/42", wantParams: "id=42"},
		{name: "double slashes", target: "//users//42", want: "user", wantPath: "/users/42", wantEsc: "/users/42", wantParams: "id=42"},
		{name: "many slashes", target: "///users///42", want: "user", wantPath: "/users/42", wantEsc: "/users/42", wantParams: "id=42"},
		{name: "dot segments", target: "/./users/./42", want: "user", wantPath: "/users/42", wantEsc: "/users/42", wantParams: "id=42"},
		{name: "dot-dot segments", target: "/admin/../users/x/../42", want: "user", wantPath: "/users/42", wantEsc: "/users/42", wantParams: "id=42"},
		{name: "encoded dot-dot", target: "/admin/%2e%2e/users/42", want: "user", wantPath: "/users/42", wantEsc: "/users/42", wantParams: "id=42"},
		{name: "encoded dot-dot upper case", target: "/admin/%2E%2E/users/%2E/42", want: "user", wantPath: "/users/42", wantEsc: "/users/42", wantParams: "id=42"},
		{name: "half-encoded dot-dot", target: "/admin/.%2e/users/42", want: "user", wantPath: "/users/42", wantEsc: "/users/42", wantParams: "id=42"},
		{name: "dot-dot above root is clamped", target: "/../../users/42", want: "user", wantPath: "/users/42", wantEsc: "/users/42", wantParams: "id=42"},
		{name: "encoded dot-dot above root", target: "/%2e%2e/%2e%2e/users/42", want: "user", wantPath: "/users/42", wantEsc: "/users/42", wantParams: "id=42"},
		{name: "trailing slash kept", target: "/users/", want: "users-slash", wantPath: "/users/", wantEsc: "/users/"},
		{name: "trailing slash after collapse", target: "/users//", want: "users-slash", wantPath: "/users/", wantEsc: "/users/"},
		{name: "trailing dot leaves a slash", target: "/users/.", want: "users-slash", wantPath: "/users/", wantEsc: "/users/"},
		{name: "trailing dot-dot leaves a slash", target: "/users/42/..", want: "users-slash", wantPath: "/users/", wantEsc: "/users/"},
		{name: "root", target: "/", want: "root", wantPath: "/", wantEsc: "/"},
		{name: "dot-dot to root", target: "/..", want: "root", wantPath: "/", wantEsc: "/"},
		{name: "slashes to root", target: "//", want: "root", wantPath: "/", wantEsc: "/"},
		{name: "param is decoded", target: "/users/a%20b", want: "user", wantPath: "/users/a b", wantEsc: "/users/a%20b", wantParams: "id=a b"},
		{name: "needless escape made canonical", target: "/users/%41%62c", want: "user", wantPath: "/users/Abc", wantEsc: "/users/Abc", wantParams: "id=Abc"},
		{name: "lower-case escape made canonical", target: "/users/%c3%a9", want: "user", wantPath: "/users/é", wantEsc: "/users/%C3%A9", wantParams: "id=é"},
		{name: "escaped percent", target: "/users/100%25", want: "user", wantPath: "/users/100%", wantEsc: "/users/100%25", wantParams: "id=100%"},
		{name: "dot segment name is not special", target: "/users/...", want: "user", wantPath: "/users/...", wantEsc: "/users/...", wantParams: "id=..."},
		{name: "query kept", target: "/users/./42?a=1", want: "user", wantPath: "/users/42", wantEsc: "/users/42", wantParams: "id=42"},
		{name: "absolute form", target: "http://example.com/a/../users//42", want: "user", wantPath: "/users/42", wantEsc: "/users/42", wantParams: "id=42"},
		{name: "absolute form without path", target: "http://example.com", want: "root", wantPath: "/", wantEsc: "/", notInProcess: true},
	}
	for _, tc := range tests {
		check := func(t *testing.T, code int, h http.Header, body []byte) {
			t.Helper()
			if code != http.StatusOK {
				t.Fatalf("status %d, body %q", code, body)
			}
			if string(body) != tc.want {
				t.Errorf("route %q, want %q", body, tc.want)
			}
			if got := echoed(t, h, "X-Path"); got != tc.wantPath {
				t.Errorf("upstream URL.Path = %q, want %q", got, tc.wantPath)
			}
			if got := echoed(t, h, "X-Escaped-Path"); got != tc.wantEsc {
				t.Errorf("upstream URL.EscapedPath() = %q, want %q", got, tc.wantEsc)
			}
			if got := echoed(t, h, "X-Params"); got != tc.wantParams {
				t.Errorf("params = %q, want %q", got, tc.wantParams)
			}
		}
		t.Run(tc.name, func(t *testing.T) {
			if !tc.notInProcess {
				t.Run("in process", func(t *testing.T) {
					rec := routerRequest{target: tc.target}.serve(t, rt)
					check(t, rec.Code, rec.Header(), rec.Body.Bytes())
				})
			}
			t.Run("raw", func(t *testing.T) {
				resp, body := serveRaw(t, srv, "GET", tc.target)
				check(t, resp.StatusCode, resp.Header, body)
			})
		})
	}
}

// TestRouterPathWithoutSlash covers requests built in process whose URL has
// no path, or a relative one.
func TestRouterPathWithoutSlash(t *testing.T) {
	rt := newTestRouter(t, gateway.RouterConfig{Routes: []gateway.Route{{Name: "root", Path: "/"}}})
	tests := []struct {
		name       string
		url        *url.URL
		requestURI string
		want       string
	}{
		{"empty path", &url.URL{Scheme: "http", Host: "example.com"}, "", "root"},
		{"empty path, absolute form", &url.URL{Scheme: "http", Host: "example.com"}, "http://example.com", "root"},
		{"relative path", &url.URL{Path: "users"}, "", "400"},
		{"asterisk", &url.URL{Path: "*"}, "*", "400"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &http.Request{Method: "GET", URL: tc.url, RequestURI: tc.requestURI, Host: "example.com", Header: http.Header{}, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}
			rec := httptest.NewRecorder()
			rt.ServeHTTP(rec, r)
			if got := outcome(t, rec); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
			if tc.want == "root" && echoed(t, rec.Header(), "X-Path") != "/" {
				t.Fatalf("upstream path %q, want \"/\"", echoed(t, rec.Header(), "X-Path"))
			}
		})
	}
}

func TestRouterRejectsAmbiguousPaths(t *testing.T) {
	routes := []gateway.Route{{Name: "all", PathPrefix: "/"}}
	strict := newTestRouter(t, gateway.RouterConfig{Routes: routes})
	lenient := newTestRouter(t, gateway.RouterConfig{Options: gateway.Options{AllowAmbiguousPaths: true}, Routes: routes})
	strictSrv := httptest.NewServer(strict)
	t.Cleanup(strictSrv.Close)
	lenientSrv := httptest.NewServer(lenient)
	t.Cleanup(lenientSrv.Close)

	// raw: the target goes over a socket, because net/http lets it
	// through; otherwise net/http itself refuses it and the request is
	// built in process with RequestURI set.
	tests := []struct {
		name, target string
		raw          bool
		always       bool // refused even with AllowAmbiguousPaths
		// what the upstream sees when ambiguous paths are allowed
		lenientPath, lenientEsc string
	}{
		{name: "encoded slash", target: "/a%2Fb", raw: true, lenientPath: "/a/b", lenientEsc: "/a%2Fb"},
		{name: "encoded slash lower case", target: "/a%2fb", raw: true, lenientPath: "/a/b", lenientEsc: "/a%2fb"},
		{name: "encoded slash in absolute form", target: "http://example.com/a%2Fb", raw: true, lenientPath: "/a/b", lenientEsc: "/a%2Fb"},
		{name: "encoded backslash", target: "/a%5Cb", raw: true, lenientPath: `/a\b`, lenientEsc: "/a%5Cb"},
		{name: "encoded backslash lower case", target: "/a%5cb", raw: true, lenientPath: `/a\b`, lenientEsc: "/a%5cb"},
		{name: "backslash", target: `/a\b`, raw: true, lenientPath: `/a\b`, lenientEsc: "/a%5Cb"},
		{name: "backslash dot-dot", target: `/a/..\..\b`, raw: true, lenientPath: `/a/..\..\b`, lenientEsc: "/a/..%5C..%5Cb"},
		{name: "encoded NUL", target: "/a%00b", raw: true, lenientPath: "/a\x00b", lenientEsc: "/a%00b"},
		{name: "encoded newline", target: "/a%0Ab", raw: true, lenientPath: "/a\nb", lenientEsc: "/a%0Ab"},
		{name: "encoded CR", target: "/a%0db", raw: true, lenientPath: "/a\rb", lenientEsc: "/a%0db"},
		{name: "encoded DEL", target: "/a%7Fb", raw: true, lenientPath: "/a\x7fb", lenientEsc: "/a%7Fb"},
		{name: "hash", target: "/a#b", raw: true, lenientPath: "/a#b", lenientEsc: "/a%23b"},
		{name: "hash in absolute form", target: "http://example.com/a#b", raw: true, lenientPath: "/a#b", lenientEsc: "/a%23b"},
		{name: "backslash in absolute form", target: `http://example.com/a\b`, raw: true, lenientPath: `/a\b`, lenientEsc: "/a%5Cb"},
		// "..;" is refused even with AllowAmbiguousPaths: Tomcat and
		// Spring drop the parameter and climb out of the routed prefix.
		{name: "dot-dot with a parameter", target: "/public/..;/admin", raw: true, always: true},
		{name: "dot with a parameter", target: "/public/.;x/admin", raw: true, always: true},
		{name: "encoded dot-dot with a parameter", target: "/public/%2e%2e;/admin", raw: true, always: true},
		{name: "overlong UTF-8 dot-dot", target: "/public/%c0%ae%c0%ae/admin", raw: true, lenientPath: "/public/\xc0\xae\xc0\xae/admin", lenientEsc: "/public/%c0%ae%c0%ae/admin"},
		{name: "control character", target: "/a\x01b"},
		{name: "DEL", target: "/a\x7fb"},
		{name: "tab", target: "/a\tb"},
		{name: "invalid percent-encoding", target: "/a%zzb"},
		{name: "half-invalid percent-encoding", target: "/a%2gb"},
		{name: "truncated percent-encoding", target: "/a%2"},
		{name: "lone percent", target: "/a%"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.raw {
				resp, body := serveRaw(t, strictSrv, "GET", tc.target)
				if resp.StatusCode != http.StatusBadRequest {
					t.Fatalf("strict: status %d, want 400 (body %q)", resp.StatusCode, body)
				}
				checkProblem(t, resp.StatusCode, resp.Header, body)

				resp, body = serveRaw(t, lenientSrv, "GET", tc.target)
				if tc.always {
					if resp.StatusCode != http.StatusBadRequest {
						t.Fatalf("AllowAmbiguousPaths: status %d, want 400 (body %q)", resp.StatusCode, body)
					}
					return
				}
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("AllowAmbiguousPaths: status %d, want 200 (body %q)", resp.StatusCode, body)
				}
				if got := echoed(t, resp.Header, "X-Path"); got != tc.lenientPath {
					t.Errorf("AllowAmbiguousPaths: upstream path %q, want %q", got, tc.lenientPath)
				}
				if got := echoed(t, resp.Header, "X-Escaped-Path"); got != tc.lenientEsc {
					t.Errorf("AllowAmbiguousPaths: upstream escaped path %q, want %q", got, tc.lenientEsc)
				}
				return
			}
			// net/http refuses these on the wire; a request built in process
			// (or by another front end) still must not get through.
			u, err := url.Parse("http://example.com/")
			if err != nil {
				t.Fatal(err)
			}
			u.Path = tc.target // as decoded as it gets
			r := &http.Request{Method: "GET", URL: u, RequestURI: tc.target, Host: "example.com", Header: http.Header{}, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}
			rec := httptest.NewRecorder()
			strict.ServeHTTP(rec, r)
			if rec.Code != http.StatusBadRequest {
				t.Fatalf("status %d, want 400 (body %q)", rec.Code, rec.Body)
			}
			checkProblem(t, rec.Code, rec.Header(), rec.Body.Bytes())
		})
	}

	t.Run("query is not looked at", func(t *testing.T) {
		resp, body := serveRaw(t, strictSrv, "GET", "/a?next=%2F%5C%00")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d, body %q", resp.StatusCode, body)
		}
	})
}

func TestNewRouterErrors(t *testing.T) {
	h := routeEcho
	tests := []struct {
		name   string
		cfg    gateway.RouterConfig
		want   []string // substrings of the error
		wantOK bool
		// keepNil leaves nil Handlers nil; otherwise they get routeEcho.
		keepNil bool
	}{
		{
			name: "same path and method",
			cfg: gateway.RouterConfig{Routes: []gateway.Route{
				{Name: "one", Methods: []string{"GET"}, Path: "/a"},
				{Name: "two", Methods: []string{"POST", "get"}, Path: "/a"},
			}},
			want: []string{`"two"`, `"one"`, "conflicts"},
		},
		{
			name: "same path, any method",
			cfg: gateway.RouterConfig{Routes: []gateway.Route{
				{Name: "one", Path: "/a"},
				{Name: "two", Path: "/a"},
			}},
			want: []string{`"two"`, `"one"`, "conflicts"},
		},
		{
			name: "HEAD named and implied by GET",
			cfg: gateway.RouterConfig{Routes: []gateway.Route{
				{Name: "get", Methods: []string{"GET"}, Path: "/a"},
				{Name: "head", Methods: []string{"HEAD"}, Path: "/a"},
			}},
			want: []string{`"head"`, `"get"`},
		},
		{
			name: "params with different names",
			cfg: gateway.RouterConfig{Routes: []gateway.Route{
				{Name: "by-id", Path: "/u/{id}"},
				{Name: "by-name", Path: "/u/{name}"},
			}},
			want: []string{`"by-name"`, `"by-id"`},
		},
		{
			name: "prefix and rest route",
			cfg: gateway.RouterConfig{Routes: []gateway.Route{
				{Name: "prefix", PathPrefix: "/files/"},
				{Name: "rest", Path: "/files/{p...}"},
			}},
			want: []string{`"rest"`, `"prefix"`},
		},
		{
			name: "host case and trailing dot",
			cfg: gateway.RouterConfig{Routes: []gateway.Route{
				{Name: "one", Host: "API.example.com", Path: "/a"},
				{Name: "two", Host: "api.example.com.", Path: "/a"},
			}},
			want: []string{`"two"`, `"one"`},
		},
		{
			name: "header name case",
			cfg: gateway.RouterConfig{Routes: []gateway.Route{
				{Name: "one", Path: "/a", Headers: map[string]string{"x-a": "1", "X-B": ""}},
				{Name: "two", Path: "/a", Headers: map[string]string{"X-B": "", "X-A": "1"}},
			}},
			want: []string{`"two"`, `"one"`},
		},
		{
			name: "version case",
			cfg: gateway.RouterConfig{Versioning: gateway.Versioning{Header: "Api-Version"}, Routes: []gateway.Route{
				{Name: "one", Version: "v2", Path: "/a"},
				{Name: "two", Version: "V2", Path: "/a"},
			}},
			want: []string{`"two"`, `"one"`},
		},
		{
			name: "default names",
			cfg: gateway.RouterConfig{Routes: []gateway.Route{
				{Methods: []string{"GET"}, Path: "/a"},
				{Methods: []string{"GET"}, Path: "/a"},
			}},
			want: []string{`"GET /a"`},
		},
		{
			name: "no conflict: different methods, hosts, matchers, versions, shapes",
			cfg: gateway.RouterConfig{Versioning: gateway.Versioning{Header: "Api-Version"}, Routes: []gateway.Route{
				{Methods: []string{"GET"}, Path: "/a"},
				{Methods: []string{"POST"}, Path: "/a"},
				{Path: "/a"},
				{Host: "a.example.com", Path: "/a"},
				{Host: "*.example.com", Path: "/a"},
				{Path: "/a", Headers: map[string]string{"X-A": "1"}},
				{Path: "/a", Headers: map[string]string{"X-A": "2"}},
				{Path: "/a", Headers: map[string]string{"X-A": ""}},
				{Path: "/a", Query: map[string]string{"x": "1"}},
				{Path: "/a", Version: "v2"},
				{Path: "/a/"},
				{PathPrefix: "/a"},
				{Path: "/{x}"},
				{Path: "/a/{x...}", Methods: []string{"GET"}},
			}},
			wantOK: true,
		},
		{
			name: "no conflict: a header value that looks like another matcher",
			cfg: gateway.RouterConfig{Routes: []gateway.Route{
				{Path: "/a", Headers: map[string]string{"X-A": "1} {X-B 2"}},
				{Path: "/a", Headers: map[string]string{"X-A": "1", "X-B": "2"}},
			}},
			wantOK: true,
		},
		{
			name:    "missing handler",
			cfg:     gateway.RouterConfig{Routes: []gateway.Route{{Name: "users", Path: "/users", Handler: nil}}},
			want:    []string{`route "users"`, "Handler"},
			keepNil: true,
		},
		{
			name:    "missing handler, unnamed",
			cfg:     gateway.RouterConfig{Routes: []gateway.Route{{Path: "/ok", Handler: h}, {Methods: []string{"GET"}, Path: "/users"}}},
			want:    []string{"route #1", "GET /users", "Handler"},
			keepNil: true,
		},
		{
			name: "Path and PathPrefix",
			cfg:  gateway.RouterConfig{Routes: []gateway.Route{{Name: "both", Path: "/a", PathPrefix: "/b", Handler: h}}},
			want: []string{`route "both"`, "Path", "PathPrefix"},
		},
		{
			name: "no path",
			cfg:  gateway.RouterConfig{Routes: []gateway.Route{{Name: "none", Handler: h}}},
			want: []string{`route "none"`, "Path"},
		},
		{name: "relative path", cfg: oneRoute(gateway.Route{Name: "r", Path: "users"}), want: []string{`route "r"`, `Path "users"`, "begin with '/'"}},
		{name: "unclean path", cfg: oneRoute(gateway.Route{Name: "r", Path: "/a//b"}), want: []string{`route "r"`, `Path "/a//b"`, "clean"}},
		{name: "dot segment", cfg: oneRoute(gateway.Route{Name: "r", Path: "/a/../b"}), want: []string{`route "r"`, "clean"}},
		{name: "unclean prefix", cfg: oneRoute(gateway.Route{Name: "r", PathPrefix: "/a/./b"}), want: []string{`route "r"`, `PathPrefix "/a/./b"`}},
		{name: "unclosed param", cfg: oneRoute(gateway.Route{Name: "r", Path: "/a/{id"}), want: []string{`route "r"`, `Path "/a/{id"`, "whole segment"}},
		{name: "param in a segment", cfg: oneRoute(gateway.Route{Name: "r", Path: "/a/x{id}"}), want: []string{`route "r"`, "whole segment"}},
		{name: "two params in a segment", cfg: oneRoute(gateway.Route{Name: "r", Path: "/a/{x}{y}"}), want: []string{`route "r"`, "whole segment"}},
		{name: "empty param name", cfg: oneRoute(gateway.Route{Name: "r", Path: "/a/{}"}), want: []string{`route "r"`, "invalid parameter name"}},
		{name: "empty rest name", cfg: oneRoute(gateway.Route{Name: "r", Path: "/a/{...}"}), want: []string{`route "r"`, "invalid parameter name"}},
		{name: "param twice", cfg: oneRoute(gateway.Route{Name: "r", Path: "/{id}/x/{id}"}), want: []string{`route "r"`, `"id" appears twice`}},
		{name: "rest not last", cfg: oneRoute(gateway.Route{Name: "r", Path: "/{p...}/x"}), want: []string{`route "r"`, "last segment"}},
		{name: "rest in prefix", cfg: oneRoute(gateway.Route{Name: "r", PathPrefix: "/a/{p...}"}), want: []string{`route "r"`, "PathPrefix", "use Path"}},
		{name: "host with port", cfg: oneRoute(gateway.Route{Name: "r", Host: "api.example.com:8080", Path: "/"}), want: []string{`route "r"`, `Host "api.example.com:8080"`, "port"}},
		{name: "wildcard inside", cfg: oneRoute(gateway.Route{Name: "r", Host: "a.*.example.com", Path: "/"}), want: []string{`route "r"`, "Host", "first label"}},
		{name: "bare wildcard", cfg: oneRoute(gateway.Route{Name: "r", Host: "*", Path: "/"}), want: []string{`route "r"`, "Host"}},
		{name: "wildcard without domain", cfg: oneRoute(gateway.Route{Name: "r", Host: "*.", Path: "/"}), want: []string{`route "r"`, "Host"}},
		{name: "two wildcards", cfg: oneRoute(gateway.Route{Name: "r", Host: "*.*.example.com", Path: "/"}), want: []string{`route "r"`, "Host"}},
		{name: "invalid method", cfg: oneRoute(gateway.Route{Name: "r", Methods: []string{"GE T"}, Path: "/"}), want: []string{`route "r"`, "Methods", `"GE T"`}},
		{name: "empty method", cfg: oneRoute(gateway.Route{Name: "r", Methods: []string{""}, Path: "/"}), want: []string{`route "r"`, "Methods"}},
		{name: "empty header name", cfg: oneRoute(gateway.Route{Name: "r", Path: "/", Headers: map[string]string{"": "x"}}), want: []string{`route "r"`, "Headers"}},
		{name: "empty query name", cfg: oneRoute(gateway.Route{Name: "r", Path: "/", Query: map[string]string{"": "x"}}), want: []string{`route "r"`, "Query"}},
		{
			name: "version with a slash in the path",
			cfg:  gateway.RouterConfig{Versioning: gateway.Versioning{PathPrefix: true}, Routes: []gateway.Route{{Name: "r", Version: "v1/x", Path: "/", Handler: h}}},
			want: []string{`route "r"`, "Version", `"v1/x"`},
		},
		{
			name: "dot-dot version in the path",
			cfg:  gateway.RouterConfig{Versioning: gateway.Versioning{PathPrefix: true}, Routes: []gateway.Route{{Name: "r", Version: "..", Path: "/", Handler: h}}},
			want: []string{`route "r"`, "Version"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			if !tc.keepNil {
				cfg.Routes = withEcho(cfg.Routes)
			}
			rt, err := gateway.NewRouter(cfg)
			if tc.wantOK {
				if err != nil {
					t.Fatalf("NewRouter: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("NewRouter succeeded, want an error containing %q", tc.want)
			}
			if rt != nil {
				t.Errorf("NewRouter returned a Router with its error")
			}
			for _, s := range tc.want {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
		})
	}
}

func oneRoute(r gateway.Route) gateway.RouterConfig {
	if r.Handler == nil {
		r.Handler = routeEcho
	}
	return gateway.RouterConfig{Routes: []gateway.Route{r}}
}

func TestRouterRoutes(t *testing.T) {
	rt := newTestRouter(t, gateway.RouterConfig{Routes: []gateway.Route{
		{Name: "named", Path: "/a"},
		{Methods: []string{"GET", "POST"}, Host: "api.example.com", Path: "/b/{id}"},
		{PathPrefix: "/c"},
	}})
	var names []string
	for _, r := range rt.Routes() {
		names = append(names, r.Name)
	}
	want := []string{"named", "GET,POST api.example.com/b/{id}", "* /c"}
	if !slices.Equal(names, want) {
		t.Fatalf("Routes() names = %q, want %q", names, want)
	}
	// The default name is what the handler sees too.
	rec := routerRequest{target: "/b/1", host: "api.example.com"}.serve(t, rt)
	if got := outcome(t, rec); got != want[1] {
		t.Fatalf("req.Route().Name = %q, want %q", got, want[1])
	}
}

func TestRouterReplaceErrorKeepsTable(t *testing.T) {
	rt := newTestRouter(t, gateway.RouterConfig{Routes: []gateway.Route{{Name: "old", Path: "/x"}}})
	err := rt.Replace(withEcho([]gateway.Route{{Name: "new", Path: "/x"}, {Name: "bad", Path: "no-slash"}}))
	if err == nil || !strings.Contains(err.Error(), `"bad"`) {
		t.Fatalf("Replace error = %v, want one naming route \"bad\"", err)
	}
	if got := outcome(t, routerRequest{target: "/x"}.serve(t, rt)); got != "old" {
		t.Fatalf("after a failed Replace: got %q, want \"old\"", got)
	}
	if err := rt.Replace(withEcho([]gateway.Route{{Name: "new", Path: "/x"}})); err != nil {
		t.Fatal(err)
	}
	if got := outcome(t, routerRequest{target: "/x"}.serve(t, rt)); got != "new" {
		t.Fatalf("after Replace: got %q, want \"new\"", got)
	}
}

// TestRouterReplaceSwapsAtomically hammers a Router from several goroutines
// while another swaps its table back and forth: every request must be
// served wholly by one table or the other, never fail and never mix them.
func TestRouterReplaceSwapsAtomically(t *testing.T) {
	const (
		clients  = 8
		requests = 300
		swaps    = 200
	)
	// Table A serves /a/{id} and /shared; table B serves /b/{id} and
	// /shared. A request for /shared must carry the name of a route of the
	// table that also has the version the reply reports.
	tableA := withEcho([]gateway.Route{
		{Name: "a-item", Path: "/a/{id}"},
		{Name: "a-shared", Path: "/shared", Version: "va"},
		{Name: "a-all", PathPrefix: "/"},
	})
	tableB := withEcho([]gateway.Route{
		{Name: "b-item", Path: "/b/{id}"},
		{Name: "b-shared", Path: "/shared", Version: "vb"},
		{Name: "b-all", PathPrefix: "/"},
	})
	rt, err := gateway.NewRouter(gateway.RouterConfig{Versioning: gateway.Versioning{Header: "Api-Version"}, Routes: tableA})
	if err != nil {
		t.Fatal(err)
	}
	// Versioned routes need the request to name the version, so /shared
	// requests are sent for both; exactly one of them matches the live table.
	valid := map[string]map[string]bool{
		"/a/1":       {"a-item": true, "b-all": true},
		"/b/1":       {"b-item": true, "a-all": true},
		"/other":     {"a-all": true, "b-all": true},
		"/shared?va": {"a-shared": true, "b-all": true},
		"/shared?vb": {"b-shared": true, "a-all": true},
	}
	targets := slices.Sorted(func(yield func(string) bool) {
		for k := range valid {
			if !yield(k) {
				return
			}
		}
	})

	var wg sync.WaitGroup
	errs := make(chan error, clients+1)
	start := make(chan struct{})
	for c := range clients {
		wg.Go(func() {
			<-start
			for i := range requests {
				target := targets[(c+i)%len(targets)]
				r := httptest.NewRequest("GET", target, nil)
				if path, ver, ok := strings.Cut(target, "?"); ok {
					r = httptest.NewRequest("GET", path, nil)
					r.Header.Set("Api-Version", ver)
				}
				rec := httptest.NewRecorder()
				rt.ServeHTTP(rec, r)
				if rec.Code != http.StatusOK || !valid[target][rec.Body.String()] {
					errs <- fmt.Errorf("request %s: status %d, route %q", target, rec.Code, rec.Body)
					return
				}
			}
		})
	}
	wg.Go(func() {
		<-start
		for i := range swaps {
			next := tableA
			if i%2 == 0 {
				next = tableB
			}
			if err := rt.Replace(next); err != nil {
				errs <- err
				return
			}
			// Routes must be one whole table too.
			if rs := rt.Routes(); len(rs) != 3 || rs[0].Name[0] != rs[1].Name[0] || rs[1].Name[0] != rs[2].Name[0] {
				errs <- fmt.Errorf("Routes() mixes tables: %v, %v, %v", rs[0].Name, rs[1].Name, rs[2].Name)
				return
			}
		}
	})
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// swaps is even: the last swap put back table A.
	if got := outcome(t, routerRequest{target: "/a/1"}.serve(t, rt)); got != "a-item" {
		t.Fatalf("after the swaps: got %q, want \"a-item\"", got)
	}
}

// TestRouterThroughServer checks the whole path over a real socket with a
// client: host routing, params and a 405 with Allow.
func TestRouterThroughServer(t *testing.T) {
	rt := newTestRouter(t, gateway.RouterConfig{Routes: []gateway.Route{
		{Name: "item", Methods: []string{"GET"}, Host: "*.example.com", Path: "/items/{id}"},
	}})
	srv := httptest.NewServer(rt)
	t.Cleanup(srv.Close)
	client := srv.Client()
	t.Cleanup(client.CloseIdleConnections)
	tests := []struct {
		name, method, host, path string
		want                     int
		wantBody, wantAllow      string
	}{
		{"served", "GET", "shop.example.com", "/items/42", 200, "item", ""},
		{"other host", "GET", "example.org", "/items/42", 404, "", ""},
		{"method", "DELETE", "shop.example.com", "/items/42", 405, "", "GET, HEAD"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, srv.URL+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Host = tc.host
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d (body %q)", resp.StatusCode, tc.want, body)
			}
			if tc.want == 200 {
				if string(body) != tc.wantBody {
					t.Errorf("route %q, want %q", body, tc.wantBody)
				}
				if p := echoed(t, resp.Header, "X-Params"); p != "id=42" {
					t.Errorf("params %q", p)
				}
				return
			}
			checkProblem(t, resp.StatusCode, resp.Header, body)
			if got := resp.Header.Get("Allow"); got != tc.wantAllow {
				t.Errorf("Allow = %q, want %q", got, tc.wantAllow)
			}
		})
	}
}

// FuzzRouterMatch sends arbitrary request targets, hosts and methods
// through a Router. It must never panic, must answer only with a route or a
// problem, and a route's upstream must see a clean path that, sent again,
// reaches the same route.
func FuzzRouterMatch(f *testing.F) {
	rt := newTestRouter(f, gateway.RouterConfig{
		Versioning: gateway.Versioning{Header: "Api-Version"},
		Routes:     precedenceRoutes,
	})
	for _, s := range []struct{ method, target, host string }{
		{"GET", "/users/me", "api.example.com"},
		{"POST", "/users/7/files/a/../b", "x.example.com"},
		{"GET", "//api//v1/./admin/%2e%2e/status", "example.com"},
		{"TRACE", "/h", "api.example.com:80"},
		{"GET", "/q?a=1&b", "[::1]:8080"},
		{"DELETE", "/p/y/x/..", ""},
		{"GET", "/a%2Fb", "example.com"},
		{"GET", "/users/%00", "example.com"},
		{"PUT", "*", "example.com"},
		{"GET", "http://example.com/users/..%2f..", "example.com"},
	} {
		f.Add(s.method, s.target, s.host)
	}
	f.Fuzz(func(t *testing.T, method, target, host string) {
		if !validMethod(method) {
			return
		}
		u, err := url.ParseRequestURI(target)
		if err != nil {
			return
		}
		r := &http.Request{Method: method, URL: u, RequestURI: target, Host: host, Header: http.Header{"X-A": {"1"}}, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Body: http.NoBody}
		rec := httptest.NewRecorder()
		rt.ServeHTTP(rec, r)
		switch rec.Code {
		case 200:
		case 400, 404, 405:
			checkProblem(t, rec.Code, rec.Header(), rec.Body.Bytes())
			return
		default:
			t.Fatalf("%s %q: status %d (body %q)", method, target, rec.Code, rec.Body)
		}
		path := echoed(t, rec.Header(), "X-Path")
		if path == "" || path[0] != '/' || strings.Contains(path, "//") || strings.Contains(path, "/./") || strings.Contains(path, "/../") ||
			strings.HasSuffix(path, "/.") || strings.HasSuffix(path, "/..") {
			t.Fatalf("%q: upstream path %q is not clean", target, path)
		}
		// Sending what the upstream received must reach the same route.
		again := echoed(t, rec.Header(), "X-Escaped-Path")
		if u.RawQuery != "" {
			again += "?" + u.RawQuery
		}
		u2, err := url.ParseRequestURI(again)
		if err != nil {
			t.Fatalf("%q: upstream target %q does not parse: %v", target, again, err)
		}
		r2 := &http.Request{Method: method, URL: u2, RequestURI: again, Host: host, Header: http.Header{"X-A": {"1"}}, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Body: http.NoBody}
		rec2 := httptest.NewRecorder()
		rt.ServeHTTP(rec2, r2)
		if rec2.Code != 200 || rec2.Body.String() != rec.Body.String() || echoed(t, rec2.Header(), "X-Path") != path {
			t.Fatalf("%q reached %q with path %q; the upstream's %q reached %d %q with path %q",
				target, rec.Body, path, again, rec2.Code, rec2.Body, echoed(t, rec2.Header(), "X-Path"))
		}
	})
}

// validMethod reports whether m is an HTTP token, as net/http requires.
func validMethod(m string) bool {
	if m == "" {
		return false
	}
	for i := 0; i < len(m); i++ {
		c := m[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// TestRouterDeepPrefixes matches a path below more prefix routes than the
// router keeps on its stack, so that their order must survive the spill.
func TestRouterDeepPrefixes(t *testing.T) {
	var routes []gateway.Route
	path := ""
	for depth := 1; depth <= 12; depth++ {
		path += "/" + strconv.Itoa(depth)
		r := gateway.Route{Name: "depth-" + strconv.Itoa(depth), PathPrefix: path}
		if depth > 2 {
			r.Headers = map[string]string{"X-Deep": ""}
		}
		routes = append(routes, r)
		// A parameter prefix at the same depth loses to the literal one.
		routes = append(routes, gateway.Route{Name: "param-" + strconv.Itoa(depth), PathPrefix: strings.TrimSuffix(path, "/"+strconv.Itoa(depth)) + "/{p}", Methods: []string{"POST"}})
	}
	routes = append(routes, gateway.Route{Name: "root", PathPrefix: "/"})
	rt := newTestRouter(t, gateway.RouterConfig{Routes: routes})
	deep := map[string][]string{"X-Deep": {"1"}}
	tests := []struct {
		name string
		req  routerRequest
		want string
	}{
		{"deepest", routerRequest{target: "/1/2/3/4/5/6/7/8/9/10/11/12/13", header: deep}, "depth-12"},
		{"middle", routerRequest{target: "/1/2/3/4/5/6/7/x", header: deep}, "depth-7"},
		{"deep ones need the header", routerRequest{target: "/1/2/3/4/5/6/7/8/9/10/11/12/13"}, "depth-2"},
		{"parameter prefix for POST", routerRequest{method: "POST", target: "/1/2/3/4/5/6/7/8/9/10/11/12/13"}, "param-12"},
		{"parameter prefix below a literal", routerRequest{method: "POST", target: "/1/2/x/y"}, "param-3"},
		{"root", routerRequest{target: "/2"}, "root"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := outcome(t, tc.req.serve(t, rt)); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestReplaceKeepsRequestsInFlight: a request that matched the old table
// finishes on it even though the table is replaced while it runs.
func TestReplaceKeepsRequestsInFlight(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	slow := gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		close(started)
		<-release
		return gateway.NewResponse(200, nil, []byte("old")), nil
	})
	fresh := gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		return gateway.NewResponse(200, nil, []byte("new")), nil
	})
	rt, err := gateway.NewRouter(gateway.RouterConfig{Routes: []gateway.Route{{Path: "/x", Handler: slow}}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(rt)
	defer srv.Close()
	type result struct {
		body string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := srv.Client().Get(srv.URL + "/x")
		if err != nil {
			done <- result{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		done <- result{string(b), err}
	}()
	<-started
	if err := rt.Replace([]gateway.Route{{Path: "/x", Handler: fresh}}); err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client().Get(srv.URL + "/x")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "new" {
		t.Errorf("request after Replace got %q, want new", b)
	}
	close(release)
	if r := <-done; r.err != nil || r.body != "old" {
		t.Fatalf("in-flight request: %q %v, want old", r.body, r.err)
	}
}
