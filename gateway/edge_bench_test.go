package gateway_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gatekit/gatekit/gateway"
)

// BenchmarkEdgeStages: what each edge stage adds to a request that it lets
// through (a simple CORS request from an allowed origin, an allowed client
// address, the security headers on a reply), measured through the stage
// alone with an in-process upstream.
func BenchmarkEdgeStages(b *testing.B) {
	upstream := gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		return gateway.NewResponse(http.StatusOK, http.Header{"Server": {"backend/1.2"}}, nil), nil
	})
	must := func(s gateway.Stage, err error) gateway.Stage {
		if err != nil {
			b.Fatal(err)
		}
		return s
	}
	stages := []struct {
		name  string
		stage gateway.Stage
		setup func(r *http.Request)
	}{
		{"none", func(h gateway.Handler) gateway.Handler { return h }, func(*http.Request) {}},
		{"CORS", must(gateway.CORS(gateway.CORSConfig{AllowOrigins: []string{"https://app.example.com", "https://*.example.org"}, AllowMethods: []string{"GET", "POST"}})),
			func(r *http.Request) { r.Header.Set("Origin", "https://shop.example.org") }},
		{"IPFilter", must(gateway.IPFilter(gateway.IPFilterConfig{Allow: []string{"10.0.0.0/8", "192.0.2.0/24", "2001:db8::/32"}, Deny: []string{"192.0.2.66/32"}})),
			func(*http.Request) {}},
		{"SecurityHeaders", must(gateway.SecurityHeaders(gateway.SecurityHeadersConfig{ContentTypeOptions: true, FrameOptions: "DENY", ReferrerPolicy: "no-referrer", RemoveHeaders: []string{"Server", "X-Powered-By"}})),
			func(*http.Request) {}},
	}
	for _, s := range stages {
		b.Run(s.name, func(b *testing.B) {
			h := s.stage(upstream)
			r := httptest.NewRequest(http.MethodGet, "/x", nil)
			r.RemoteAddr = "192.0.2.10:5000"
			s.setup(r)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				req := gateway.NewRequest(r)
				resp, err := h.Serve(ctx, req)
				if err != nil || resp.Status != http.StatusOK {
					b.Fatalf("status %v, err %v", resp, err)
				}
			}
		})
	}
}
