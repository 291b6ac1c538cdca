package transform_test

import (
	"context"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/gatekit/gatekit/gateway"
	. "github.com/gatekit/gatekit/transform"
)

func TestRequestHeaders(t *testing.T) {
	tests := []struct {
		name   string
		ops    []Op
		in     http.Header
		target string
		want   http.Header // nil value: must be absent
		status int
	}{
		{"set constant", []Op{SetHeader("X-Env", String("prod"))}, nil, "/a/1", http.Header{"X-Env": {"prod"}}, 200},
		{"set replaces all values", []Op{SetHeader("x-env", String("prod"))}, http.Header{"X-Env": {"a", "b"}}, "/a/1", http.Header{"X-Env": {"prod"}}, 200},
		{"set from param", []Op{SetHeader("X-Id", Param("id"))}, nil, "/a/42", http.Header{"X-Id": {"42"}}, 200},
		{"set from query", []Op{SetHeader("X-Q", Query("q"))}, nil, "/a/1?q=hello+world&q=2", http.Header{"X-Q": {"hello world"}}, 200},
		{"set from header", []Op{SetHeader("X-Copy", Header("X-Orig"))}, http.Header{"X-Orig": {"o"}}, "/a/1", http.Header{"X-Copy": {"o"}, "X-Orig": {"o"}}, 200},
		{"set from body field", []Op{SetHeader("X-Kind", Field("kind"))}, http.Header{"Content-Type": {"application/json"}}, "/a/1", http.Header{"X-Kind": {"order"}}, 200},
		{"set from body array", []Op{SetHeader("X-Skus", Field("items.#.sku"))}, nil, "/a/1", http.Header{"X-Skus": {"a, b"}}, 200},
		{"set missing removes", []Op{SetHeader("X-Id", Query("nope"))}, http.Header{"X-Id": {"client"}}, "/a/1", http.Header{"X-Id": nil}, 200},
		{"add", []Op{AddHeader("Via", String("gatekit"))}, http.Header{"Via": {"1.1 edge"}}, "/a/1", http.Header{"Via": {"1.1 edge", "gatekit"}}, 200},
		{"add missing does nothing", []Op{AddHeader("Via", Query("nope"))}, http.Header{"Via": {"1.1 edge"}}, "/a/1", http.Header{"Via": {"1.1 edge"}}, 200},
		{"delete", []Op{DeleteHeader("Cookie", "x-debug")}, http.Header{"Cookie": {"a=b"}, "X-Debug": {"1"}, "X-Keep": {"k"}}, "/a/1", http.Header{"Cookie": nil, "X-Debug": nil, "X-Keep": {"k"}}, 200},
		{"control characters refused", []Op{SetHeader("X-Q", Query("q"))}, nil, "/a/1?q=a%0d%0aX-Evil:%201", nil, 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var saw upstreamSaw
			h := routed(t, "/a/{id}", pipe(echoUpstream(&saw, 200, nil, ""), mustRequest(t, tc.ops...).Stage()))
			rec := do(h, "POST", tc.target, `{"kind":"order","items":[{"sku":"a"},{"sku":"b"}]}`, tc.in)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.status, rec.Body)
			}
			for k, want := range tc.want {
				got := saw.header[k]
				if strings.Join(got, "|") != strings.Join(want, "|") || (want == nil) != (got == nil) {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
		})
	}
}

func TestResponseHeaders(t *testing.T) {
	tr := mustResponse(t, Config{Ops: []Op{
		SetHeader("X-Request-Id", RequestID()),
		SetHeader("X-Backend", ReplyHeader("Server")),
		DeleteHeader("Server", "X-Powered-By"),
		AddHeader("Cache-Control", String("no-transform")),
		SetHeader("X-Total", Field("total")),
	}})
	in := mustRequest(t, AssignRequestID(RequestIDConfig{Generate: func() string { return "id-1" }}))
	var saw upstreamSaw
	up := echoUpstream(&saw, 200, http.Header{"Server": {"legacy/1.0"}, "X-Powered-By": {"php"}, "Cache-Control": {"max-age=5"}}, `{"total":3}`)
	p := pipe(up, in.Stage(), tr.Stage())
	rec := do(p, "GET", "/", "", http.Header{"X-Request-Id": {"client-id"}})
	h := rec.Header()
	if got := saw.header.Get("X-Request-Id"); got != "id-1" {
		t.Errorf("upstream X-Request-Id = %q, want id-1", got)
	}
	for k, want := range map[string]string{"X-Request-Id": "id-1", "X-Backend": "legacy/1.0", "Server": "", "X-Powered-By": "", "Cache-Control": "max-age=5|no-transform", "X-Total": "3"} {
		if got := strings.Join(h[k], "|"); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if rec.Body.String() != `{"total":3}` {
		t.Errorf("body %q", rec.Body)
	}
}

// TestEnrichmentNotSpoofable sends, as the client, every header the gateway
// sets, and checks that the upstream sees only the gateway's values, with a
// principal and without one.
func TestEnrichmentNotSpoofable(t *testing.T) {
	ops := []Op{
		AssignRequestID(RequestIDConfig{Generate: func() string { return "gw-id" }}),
		SetHeader("X-User-Id", Subject()),
		SetHeader("X-Tenant", Claim("tenant.id")),
		SetHeader("X-Roles", Claim("roles")),
		SetHeader("X-Client-Ip", ClientIP()),
		SetHeader("X-Request-Id-Copy", RequestID()),
		Set("owner", Subject()),
		Set("meta.requestId", RequestID()),
		SetQuery("tenant", Claim("tenant.id")),
	}
	spoof := http.Header{
		"X-Request-Id":      {"evil-id"},
		"X-User-Id":         {"admin", "root"},
		"X-Tenant":          {"other"},
		"X-Roles":           {"admin"},
		"X-Client-Ip":       {"10.0.0.1"},
		"X-Request-Id-Copy": {"evil"},
		"X-Forwarded-For":   {"10.0.0.1"},
		"Content-Type":      {"application/json"},
	}
	body := `{"owner":"admin","meta":{"requestId":"evil"}}`
	principals := []struct {
		name string
		p    *gateway.Principal
		want map[string]string
		body string
		q    string
	}{
		{"with principal", &gateway.Principal{Subject: "ada", ClaimsJSON: []byte(`{"tenant":{"id":"t1"},"roles":["reader","writer"]}`)},
			map[string]string{"X-Request-Id": "gw-id", "X-User-Id": "ada", "X-Tenant": "t1", "X-Roles": "reader, writer", "X-Client-Ip": "192.0.2.1", "X-Request-Id-Copy": "gw-id"},
			`{"owner":"ada","meta":{"requestId":"gw-id"}}`, "tenant=t1&x=1"},
		{"without principal", nil,
			map[string]string{"X-Request-Id": "gw-id", "X-User-Id": "", "X-Tenant": "", "X-Roles": "", "X-Client-Ip": "192.0.2.1", "X-Request-Id-Copy": "gw-id"},
			`{"meta":{"requestId":"gw-id"}}`, "x=1"},
	}
	for _, pc := range principals {
		t.Run(pc.name, func(t *testing.T) {
			var saw upstreamSaw
			auth := gateway.AuthenticatorFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Principal, error) {
				if pc.p == nil {
					return nil, gateway.ErrNotResponsible
				}
				return pc.p, nil
			})
			stages := []gateway.Stage{mustRequest(t, ops...).Stage()}
			if pc.p != nil {
				stages = append([]gateway.Stage{gateway.Authenticate(auth)}, stages...)
			}
			p := pipe(echoUpstream(&saw, 200, nil, ""), stages...)
			rec := do(p, "POST", "/?tenant=evil&x=1&tenant=evil2", body, spoof.Clone())
			if rec.Code != 200 {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			for k, want := range pc.want {
				if got := strings.Join(saw.header[k], "|"); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
			if string(saw.body) != pc.body {
				t.Errorf("body %s, want %s", saw.body, pc.body)
			}
			if saw.query != pc.q {
				t.Errorf("query %q, want %q", saw.query, pc.q)
			}
		})
	}
}

func TestClientIPBehindTrustedProxy(t *testing.T) {
	var saw upstreamSaw
	p := pipe(echoUpstream(&saw, 200, nil, ""), mustRequest(t, SetHeader("X-Client-Ip", ClientIP())).Stage())
	p.Options.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}
	do(p, "GET", "/", "", http.Header{"X-Forwarded-For": {"203.0.113.7"}})
	if got := saw.header.Get("X-Client-Ip"); got != "203.0.113.7" {
		t.Errorf("X-Client-Ip = %q, want the forwarded client", got)
	}
}

func TestRequestID(t *testing.T) {
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	tests := []struct {
		name   string
		cfg    RequestIDConfig
		client []string
		want   string // "uuid" for a fresh random one
	}{
		{"generated", RequestIDConfig{}, nil, "uuid"},
		{"client ignored", RequestIDConfig{}, []string{"abc"}, "uuid"},
		{"client trusted", RequestIDConfig{TrustClient: true}, []string{"abc-123"}, "abc-123"},
		{"trusted but malformed", RequestIDConfig{TrustClient: true}, []string{"has space"}, "uuid"},
		{"trusted but too long", RequestIDConfig{TrustClient: true}, []string{strings.Repeat("a", 129)}, "uuid"},
		{"trusted but repeated", RequestIDConfig{TrustClient: true}, []string{"a", "b"}, "uuid"},
		{"custom header", RequestIDConfig{Header: "x-correlation-id", TrustClient: true}, nil, "uuid"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var saw upstreamSaw
			out := mustResponse(t, Config{Ops: []Op{SetHeader("X-Request-Id", RequestID())}})
			p := pipe(echoUpstream(&saw, 200, nil, ""), mustRequest(t, AssignRequestID(tc.cfg)).Stage(), out.Stage())
			name := tc.cfg.Header
			if name == "" {
				name = DefaultRequestIDHeader
			}
			hdr := http.Header{}
			if tc.client != nil {
				hdr[http.CanonicalHeaderKey(name)] = tc.client
			}
			rec := do(p, "GET", "/", "", hdr)
			got := saw.header.Values(name)
			if len(got) != 1 {
				t.Fatalf("upstream %s = %q, want one value", name, got)
			}
			if tc.want == "uuid" {
				if !uuid.MatchString(got[0]) {
					t.Errorf("ID %q is not a random UUID", got[0])
				}
			} else if got[0] != tc.want {
				t.Errorf("ID %q, want %q", got[0], tc.want)
			}
			if echoed := rec.Header().Get("X-Request-Id"); echoed != got[0] {
				t.Errorf("reply carries %q, upstream saw %q", echoed, got[0])
			}
		})
	}
	// Two requests get two IDs.
	var saw upstreamSaw
	p := pipe(echoUpstream(&saw, 200, nil, ""), mustRequest(t, AssignRequestID(RequestIDConfig{})).Stage())
	do(p, "GET", "/", "", nil)
	first := saw.header.Get(DefaultRequestIDHeader)
	do(p, "GET", "/", "", nil)
	if second := saw.header.Get(DefaultRequestIDHeader); first == second {
		t.Errorf("two requests share the ID %s", first)
	}
}

func TestRewritePath(t *testing.T) {
	tests := []struct {
		name, route, pattern, tmpl, target string
		want                               string // upstream path; "" means 4xx/5xx
		status                             int
	}{
		{"template", "/accounts/{id}", "/accounts/{id}", "/v2/customers/{id}/account", "/accounts/42", "/v2/customers/42/account", 200},
		{"params from the route", "/accounts/{id}", "", "/v2/customers/{id}/account", "/accounts/42", "/v2/customers/42/account", 200},
		{"pattern with own params", "/api/{rest...}", "/api/users/{uid}/orders/{oid}", "/orders/{oid}?user={uid}", "/api/users/7/orders/9", "/orders/9?user=7", 200},
		{"rest parameter", "/files/{p...}", "/files/{p...}", "/static/{p...}", "/files/a/b/c.txt", "/static/a/b/c.txt", 200},
		{"no match is left alone", "/{any...}", "/accounts/{id}", "/v2/{id}", "/other/1", "/other/1", 200},
		{"no match, extra segment", "/{any...}", "/accounts/{id}", "/v2/{id}", "/accounts/1/x", "/accounts/1/x", 200},
		{"unicode value", "/accounts/{id}", "", "/c/{id}", "/accounts/%C3%A9t%C3%A9", "/c/été", 200},
		{"empty rest makes an empty segment", "/files/{p...}", "/files/{p...}", "/static/{p...}/raw", "/files", "", 400},
		{"unknown route param", "/accounts/{id}", "", "/c/{nope}", "/accounts/1", "", 500},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var saw upstreamSaw
			h := routed(t, tc.route, pipe(echoUpstream(&saw, 200, nil, ""), mustRequest(t, RewritePath(tc.pattern, tc.tmpl)).Stage()))
			rec := do(h, "GET", tc.target, "", nil)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.status, rec.Body)
			}
			if tc.status != 200 {
				return
			}
			got := saw.path
			if saw.query != "" {
				got += "?" + saw.query
			}
			// A '?' in a template is part of the path: it is escaped
			// on the wire, and the query is left alone.
			if strings.Contains(tc.tmpl, "?") {
				got = saw.path
			}
			if got != tc.want {
				t.Errorf("upstream path %q, want %q", got, tc.want)
			}
			if want := (&url.URL{Path: saw.path, RawQuery: saw.query}).RequestURI(); saw.requestURI != want {
				t.Errorf("RequestURI %q, want %q", saw.requestURI, want)
			}
		})
	}
}

func TestReplacePathPrefix(t *testing.T) {
	tests := []struct{ prefix, repl, in, want string }{
		{"/api", "/internal", "/api/users", "/internal/users"},
		{"/api", "/internal", "/api", "/internal"},
		{"/api/", "/internal/", "/api/users/", "/internal/users/"},
		{"/api", "", "/api/users", "/users"},
		{"/api", "", "/api", "/"},
		{"/api", "/internal", "/apix/users", "/apix/users"},
		{"/api", "/internal", "/other", "/other"},
		{"/", "/v1", "/users", "/v1/users"},
	}
	for _, tc := range tests {
		t.Run(tc.prefix+"→"+tc.repl+" "+tc.in, func(t *testing.T) {
			var saw upstreamSaw
			p := pipe(echoUpstream(&saw, 200, nil, ""), mustRequest(t, ReplacePathPrefix(tc.prefix, tc.repl)).Stage())
			do(p, "GET", tc.in+"?a=1", "", nil)
			if saw.path != tc.want || saw.query != "a=1" {
				t.Errorf("upstream %q?%s, want %q?a=1", saw.path, saw.query, tc.want)
			}
		})
	}
}

func TestQueryOps(t *testing.T) {
	tests := []struct {
		name  string
		ops   []Op
		query string
		want  string
	}{
		{"set new", []Op{SetQuery("page", String("1"))}, "a=1&b=2", "a=1&b=2&page=1"},
		{"set replaces in place, once", []Op{SetQuery("b", String("x y"))}, "a=1&b=2&c=3&b=4", "a=1&b=x+y&c=3"},
		{"set from param", []Op{SetQuery("id", Param("id"))}, "", "id=42"},
		{"set missing removes", []Op{SetQuery("b", Header("X-Nope"))}, "a=1&b=2", "a=1"},
		{"set encodes", []Op{SetQuery("q", String("a&b=c#d"))}, "", "q=a%26b%3Dc%23d"},
		{"add", []Op{AddQuery("b", String("3"))}, "b=1&a=2", "b=1&a=2&b=3"},
		{"add missing does nothing", []Op{AddQuery("b", Query("nope"))}, "b=1", "b=1"},
		{"delete", []Op{DeleteQuery("token", "debug")}, "token=s3cr3t&a=%20x&debug&b=2&token=2", "a=%20x&b=2"},
		{"delete encoded name", []Op{DeleteQuery("a b")}, "a+b=1&a%20b=2&c=3", "c=3"},
		{"rename", []Op{RenameQuery("q", "search")}, "x=1&q=a%2Bb&y=2&q=c", "x=1&search=a%2Bb&y=2&search=c"},
		{"rename drops client values of new name", []Op{RenameQuery("q", "search")}, "search=evil&q=ok", "search=ok"},
		{"untouched order and encoding kept", []Op{DeleteQuery("z")}, "b=%41&a=1&c", "b=%41&a=1&c"},
		{"several in order", []Op{RenameQuery("p", "page"), DeleteQuery("x"), AddQuery("v", String("2"))}, "x=0&p=3", "page=3&v=2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var saw upstreamSaw
			h := routed(t, "/items/{id}", pipe(echoUpstream(&saw, 200, nil, ""), mustRequest(t, tc.ops...).Stage()))
			target := "/items/42"
			if tc.query != "" {
				target += "?" + tc.query
			}
			if rec := do(h, "GET", target, "", nil); rec.Code != 200 {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			if saw.query != tc.want {
				t.Errorf("query %q, want %q", saw.query, tc.want)
			}
			if want := (&url.URL{Path: saw.path, RawQuery: saw.query}).RequestURI(); saw.requestURI != want {
				t.Errorf("RequestURI %q, want %q", saw.requestURI, want)
			}
		})
	}
}
