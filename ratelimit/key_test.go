package ratelimit_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/gatekit/gatekit/gateway"
	"github.com/gatekit/gatekit/ratelimit"
)

func TestKeyFuncs(t *testing.T) {
	apiKey := &gateway.Principal{Subject: "acme", Issuer: ratelimit.APIKeyIssuer, Claims: map[string]any{ratelimit.APIKeyIDClaim: "key-1", "plan": "gold"}}
	jwt := &gateway.Principal{Subject: "alice", Issuer: "https://idp.example", Claims: map[string]any{"tenant": "t-9", "org": float64(42), "roles": []any{"a"}}}
	tests := []struct {
		name      string
		key       ratelimit.KeyFunc
		remote    string
		xff       string // X-Forwarded-For
		header    http.Header
		principal *gateway.Principal
		want      string
		wantOK    bool
	}{
		{name: "global", key: ratelimit.Global(), want: "", wantOK: true},
		{name: "client IP", key: ratelimit.ByClientIP(), remote: "203.0.113.7:5000", want: "203.0.113.7", wantOK: true},
		{name: "client IP ignores X-Forwarded-For from an untrusted peer", key: ratelimit.ByClientIP(), remote: "203.0.113.7:5000", xff: "198.51.100.1", want: "203.0.113.7", wantOK: true},
		{name: "client IP from a trusted proxy", key: ratelimit.ByClientIP(), remote: "10.0.0.2:5000", xff: "198.51.100.1", want: "198.51.100.1", wantOK: true},
		{name: "client IPv6", key: ratelimit.ByClientIP(), remote: "[2001:db8::1]:5000", want: "2001:db8::1", wantOK: true},
		{name: "client network v6 /64", key: ratelimit.ByClientNetwork(24, 64), remote: "[2001:db8:1:2:aaaa::1]:5000", want: "2001:db8:1:2::/64", wantOK: true},
		{name: "client network v4 /24", key: ratelimit.ByClientNetwork(24, 64), remote: "203.0.113.7:5000", want: "203.0.113.0/24", wantOK: true},
		{name: "API key", key: ratelimit.ByAPIKey(), principal: apiKey, want: "key-1", wantOK: true},
		{name: "API key: a JWT principal has none", key: ratelimit.ByAPIKey(), principal: jwt, wantOK: false},
		{name: "API key: anonymous", key: ratelimit.ByAPIKey(), wantOK: false},
		{name: "subject", key: ratelimit.BySubject(), principal: jwt, want: "https://idp.example|alice", wantOK: true},
		{name: "subject escapes separators", key: ratelimit.BySubject(), principal: &gateway.Principal{Subject: "b|c", Issuer: `a\`}, want: `a\\|b\|c`, wantOK: true},
		{name: "subject: anonymous", key: ratelimit.BySubject(), wantOK: false},
		{name: "claim string", key: ratelimit.ByClaim("tenant"), principal: jwt, want: "t-9", wantOK: true},
		{name: "claim number", key: ratelimit.ByClaim("org"), principal: jwt, want: "42", wantOK: true},
		{name: "claim array is no key", key: ratelimit.ByClaim("roles"), principal: jwt, wantOK: false},
		{name: "claim missing", key: ratelimit.ByClaim("nope"), principal: jwt, wantOK: false},
		{name: "header", key: ratelimit.ByHeader("x-tenant"), header: http.Header{"X-Tenant": {"t-1", "t-2"}}, want: "t-1", wantOK: true},
		{name: "header missing", key: ratelimit.ByHeader("X-Tenant"), wantOK: false},
		{name: "combined", key: ratelimit.Combine(ratelimit.ByClaim("tenant"), ratelimit.ByClientIP()), principal: jwt, remote: "203.0.113.7:1", want: "t-9|203.0.113.7", wantOK: true},
		{name: "combined escapes", key: ratelimit.Combine(ratelimit.ByHeader("A"), ratelimit.ByHeader("B")), header: http.Header{"A": {"x|y"}, "B": {"z"}}, want: `x\|y|z`, wantOK: true},
		{name: "combined needs every part", key: ratelimit.Combine(ratelimit.ByClaim("tenant"), ratelimit.ByAPIKey()), principal: jwt, wantOK: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			if tc.remote != "" {
				r.RemoteAddr = tc.remote
			}
			if tc.xff != "" {
				r.Header.Set("X-Forwarded-For", tc.xff)
			}
			for k, v := range tc.header {
				r.Header[k] = v
			}
			var got []byte
			var ok bool
			p := gateway.NewPipeline(gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
				req.Principal = tc.principal
				got, ok = tc.key(nil, req)
				return nil, nil
			}))
			p.Options.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
			p.ServeHTTP(httptest.NewRecorder(), r)
			if ok != tc.wantOK || ok && string(got) != tc.want {
				t.Fatalf("key = %q, %v; want %q, %v", got, ok, tc.want, tc.wantOK)
			}
		})
	}
}

func TestByRoute(t *testing.T) {
	var got []string
	h := gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		k, ok := ratelimit.ByRoute()(nil, req)
		if ok {
			got = append(got, string(k))
		}
		return nil, nil
	})
	router, err := gateway.NewRouter(gateway.RouterConfig{Routes: []gateway.Route{
		{Name: "orders", Path: "/orders/{id}", Handler: h},
		{Name: "users", PathPrefix: "/users", Handler: h},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/orders/1", "/orders/2", "/users/x"} {
		router.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, p, nil))
	}
	if want := []string{"orders", "orders", "users"}; len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("route keys %q, want %q", got, want)
	}
	if _, ok := ratelimit.ByRoute()(nil, gateway.NewRequest(httptest.NewRequest(http.MethodGet, "/", nil))); ok {
		t.Fatal("a request outside a router has a route key")
	}
}
