package proxy_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/gatekit/gatekit/gateway"
	"github.com/gatekit/gatekit/proxy"
)

// locBackend replies 302 with the Location (and Content-Location) that
// loc computes from the backend's own URL.
func locBackend(t *testing.T, loc func(self string) string) *httptest.Server {
	t.Helper()
	var self string
	s := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		v := loc(self)
		w.Header().Set("Location", v)
		w.Header().Set("Content-Location", v)
		w.WriteHeader(http.StatusFound)
	})
	self = s.URL
	return s
}

// noRedirect is a client of gw that reports redirects rather than follows
// them.
func noRedirect(gw *httptest.Server) *http.Client {
	c := *gw.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

// TestLocationRewrite: a Location or Content-Location on the target that
// served the request is rewritten to the client's address, path mapped
// back; anything else passes unchanged.
func TestLocationRewrite(t *testing.T) {
	tests := []struct {
		name    string
		loc     func(self string) string // the upstream's Location, from its URL
		base    string                   // the target's base path
		strip   string                   // StripPrefix
		keep    bool                     // PreserveLocation
		tls     bool                     // the gateway serves https
		trusted bool                     // the gateway trusts loopback and the client sends X-Forwarded-Proto: https
		xfp     string                   // X-Forwarded-Proto the client sends
		path    string                   // requested path
		want    string                   // "" for unchanged; "GW" stands for the gateway's origin
	}{
		{name: "absolute to target", loc: func(s string) string { return s + "/users/42?x=1#top" }, want: "GW/users/42?x=1#top"},
		{name: "target root without path", loc: func(s string) string { return s }, want: "GW"},
		{name: "other host", loc: func(string) string { return "http://login.example.com/users/42" }},
		{name: "same host other port", loc: func(s string) string { return s[:strings.LastIndexByte(s, ':')] + ":1/x" }},
		{name: "relative", loc: func(string) string { return "/users/42" }},
		{name: "scheme-relative", loc: func(s string) string { return strings.TrimPrefix(s, "http:") + "/x" }},
		{name: "https upstream scheme is another origin", loc: func(s string) string { return "https" + strings.TrimPrefix(s, "http") + "/x" }},
		{name: "user information", loc: func(s string) string { return "http://u@" + strings.TrimPrefix(s, "http://") + "/x" }},
		{name: "opt out", keep: true, loc: func(s string) string { return s + "/users/42" }},
		{name: "https gateway, http upstream", tls: true, loc: func(s string) string { return s + "/users/42" }, want: "GW/users/42"},
		{name: "trusted X-Forwarded-Proto", trusted: true, xfp: "https", loc: func(s string) string { return s + "/a" }, want: "https://HOST/a"},
		{name: "untrusted X-Forwarded-Proto ignored", xfp: "https", loc: func(s string) string { return s + "/a" }, want: "GW/a"},
		{name: "strip prefix mapped back", strip: "/api", path: "/api/users", loc: func(s string) string { return s + "/users/42" }, want: "GW/api/users/42"},
		{name: "base path mapped back", base: "/v1", strip: "/api", path: "/api/users", loc: func(s string) string { return s + "/v1/users/42?q=%2F" }, want: "GW/api/users/42?q=%2F"},
		{name: "base path only", base: "/v1", loc: func(s string) string { return s + "/v1/users/42" }, want: "GW/users/42"},
		{name: "base path, segment boundary", base: "/v1", loc: func(s string) string { return s + "/v10/users" }},
		{name: "outside base path", base: "/v1", strip: "/api", path: "/api/x", loc: func(s string) string { return s + "/login" }},
		{name: "escaped path kept as written", strip: "/api", path: "/api/x", loc: func(s string) string { return s + "/a%2Fb/%C3%A9" }, want: "GW/api/a%2Fb/%C3%A9"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			backend := locBackend(t, tc.loc)
			up := newProxy(t, proxy.HTTPConfig{
				Targets: []string{backend.URL + tc.base}, StripPrefix: tc.strip, PreserveLocation: tc.keep,
			})
			var opts gateway.Options
			if tc.trusted {
				opts.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
			}
			var gw *httptest.Server
			if tc.tls {
				rt, err := gateway.NewRouter(gateway.RouterConfig{Routes: []gateway.Route{{PathPrefix: "/", Handler: up}}})
				if err != nil {
					t.Fatal(err)
				}
				gw = httptest.NewTLSServer(rt)
				t.Cleanup(gw.Close)
			} else {
				gw = newGateway(t, opts, gateway.Route{PathPrefix: "/", Handler: up})
			}
			path := tc.path
			if path == "" {
				path = "/users"
			}
			req, _ := http.NewRequest("GET", gw.URL+path, nil)
			if tc.xfp != "" {
				req.Header.Set("X-Forwarded-Proto", tc.xfp)
			}
			resp, _ := do(t, noRedirect(gw), req)
			if resp.StatusCode != http.StatusFound {
				t.Fatalf("status %d", resp.StatusCode)
			}
			want := tc.loc(backend.URL)
			if tc.want != "" {
				want = strings.ReplaceAll(tc.want, "GW", gw.URL)
				want = strings.ReplaceAll(want, "HOST", strings.TrimPrefix(gw.URL, "http://"))
			}
			for _, k := range []string{"Location", "Content-Location"} {
				if got := resp.Header.Values(k); len(got) != 1 || got[0] != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
		})
	}
}

// locTransport answers every request with a redirect to loc, and records
// nothing: the in-process tests need no network.
type locTransport struct{ loc string }

func (lt locTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{
		StatusCode: http.StatusSeeOther, Header: http.Header{"Location": {lt.loc}},
		Body: http.NoBody, Request: r,
	}, nil
}

// TestLocationOrigins: default ports, case and IPv6 literals compare as
// the same origin; anything else does not.
func TestLocationOrigins(t *testing.T) {
	tests := []struct {
		target, loc string
		want        string // "" for unchanged
	}{
		{"http://backend.internal", "http://backend.internal:80/x", "http://api.example.com/x"},
		{"http://backend.internal:80", "http://backend.internal/x", "http://api.example.com/x"},
		{"https://backend.internal", "https://backend.internal:443/x", "http://api.example.com/x"},
		{"https://backend.internal", "http://backend.internal/x", ""},
		{"http://backend.internal", "HTTP://Backend.Internal/x", "http://api.example.com/x"},
		{"http://backend.internal", "http://backend.internal:8080/x", ""},
		{"http://backend.internal", "http://backend.internal.evil.com/x", ""},
		{"http://[::1]:8080", "http://[::1]:8080/x?y", "http://api.example.com/x?y"},
		{"http://[::1]:8080", "http://[::1]/x", ""},
		{"http://[::1]", "http://[::1]:80/x", "http://api.example.com/x"},
		{"http://backend.internal", "http://backend.internal/%zz", ""}, // not a URL
		{"http://backend.internal", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.target+" "+tc.loc, func(t *testing.T) {
			up := newProxy(t, proxy.HTTPConfig{Targets: []string{tc.target}, Transport: locTransport{tc.loc}})
			r := httptest.NewRequest("GET", "http://api.example.com/", nil)
			resp, err := up.Serve(context.Background(), gateway.NewRequest(r))
			if err != nil {
				t.Fatal(err)
			}
			resp.Close()
			want := tc.want
			if want == "" {
				want = tc.loc
			}
			if got := resp.Header.Get("Location"); got != want {
				t.Errorf("Location = %q, want %q", got, want)
			}
		})
	}
}

// TestLocationPool: with several targets, only a location on the target
// that served the request is rewritten; one on a sibling target passes
// unchanged (the gateway does not know that it is the same service).
func TestLocationPool(t *testing.T) {
	var urls [2]string
	var backends [2]*httptest.Server
	for i := range backends {
		backends[i] = newBackend(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Backend", string(rune('0'+i)))
			if r.URL.Path == "/sibling" {
				w.Header().Set("Location", urls[1-i]+"/x")
			} else {
				w.Header().Set("Location", urls[i]+"/x")
			}
			w.WriteHeader(http.StatusFound)
		})
		urls[i] = backends[i].URL
	}
	gw := proxyTo(t, proxy.HTTPConfig{Targets: urls[:]})
	c := noRedirect(gw)
	seen := map[string]bool{}
	for range 4 {
		for _, path := range []string{"/self", "/sibling"} {
			req, _ := http.NewRequest("GET", gw.URL+path, nil)
			resp, _ := do(t, c, req)
			i := int(resp.Header.Get("X-Backend")[0] - '0')
			seen[resp.Header.Get("X-Backend")] = true
			want := gw.URL + "/x"
			if path == "/sibling" {
				want = urls[1-i] + "/x"
			}
			if got := resp.Header.Get("Location"); got != want {
				t.Errorf("%s served by %d: Location = %q, want %q", path, i, got, want)
			}
		}
	}
	if len(seen) != 2 {
		t.Errorf("only backends %v served", seen)
	}
}

// BenchmarkServeLocation is the cost of rewriting a reply's Location:
// "rewrite" against "preserve" (PreserveLocation), the same redirect passed
// on as it came. A reply without a Location pays two header lookups only
// (BenchmarkServe). Target: at most 3 allocations for the rewrite (measured:
// 2, the URL check and the new value).
func BenchmarkServeLocation(b *testing.B) {
	const loc = "http://backend.internal:8080/users/42?x=1"
	for _, keep := range []bool{false, true} {
		name := "rewrite"
		if keep {
			name = "preserve"
		}
		b.Run(name, func(b *testing.B) {
			up := newProxy(b, proxy.HTTPConfig{
				Targets:          []string{"http://backend.internal:8080"},
				Transport:        locTransport{loc},
				PreserveLocation: keep,
			})
			r := httptest.NewRequest("GET", "http://api.example.com/users/42?x=1", nil)
			req := gateway.NewRequest(r)
			want := "http://api.example.com/users/42?x=1"
			if keep {
				want = loc
			}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				resp, err := up.Serve(ctx, req)
				if err != nil {
					b.Fatal(err)
				}
				if got := resp.Header.Get("Location"); got != want {
					b.Fatalf("Location = %q, want %q", got, want)
				}
				resp.Close()
			}
		})
	}
}
