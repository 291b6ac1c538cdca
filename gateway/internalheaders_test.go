package gateway_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/gatekit/gatekit/gateway"
)

func TestClientCannotSupplyInternalHeaders(t *testing.T) {
	var seen http.Header
	p := gateway.NewPipeline(gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		seen = req.HTTP.Header.Clone()
		return gateway.NewResponse(http.StatusNoContent, nil, nil), nil
	}))
	p.Options.InternalHeaders = []string{"x-user-id", "X-Tenant"}
	p.Options.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}

	sent := http.Header{
		"X-User-Id":          {"admin"},
		"X-Tenant":           {"t1"},
		"X-Real-Ip":          {"127.0.0.1"},
		"X-Forwarded-For":    {"127.0.0.1"},
		"X-Forwarded-Host":   {"internal.example"},
		"X-Forwarded-Proto":  {"https"},
		"X-Forwarded-Prefix": {"/admin"},
		"X-Forwarded-Port":   {"443"},
		"Forwarded":          {"for=127.0.0.1"},
		"X-Forwarded":        {"kept: not a forwarding field of any proxy we know"},
		"Accept":             {"application/json"},
	}
	forwarding := []string{"X-Real-Ip", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Forwarded-Prefix", "X-Forwarded-Port", "Forwarded"}
	cases := []struct {
		name       string
		peer       string
		keepsProxy bool // the forwarding fields survive
	}{
		{"untrusted client", "203.0.113.7:5000", false},
		{"trusted proxy", "10.1.2.3:5000", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tc.peer
			r.Header = sent.Clone()
			p.ServeHTTP(httptest.NewRecorder(), r)
			for _, name := range []string{"X-User-Id", "X-Tenant"} {
				if v, ok := seen[name]; ok {
					t.Errorf("internal header %s reached the upstream: %q", name, v)
				}
			}
			for _, name := range forwarding {
				if _, ok := seen[name]; ok != tc.keepsProxy {
					t.Errorf("%s present = %v, want %v", name, ok, tc.keepsProxy)
				}
			}
			if seen.Get("Accept") != "application/json" || seen.Get("X-Forwarded") == "" {
				t.Errorf("other fields were dropped: %v", seen)
			}
		})
	}
}

// TestProblemHeaderCannotDuplicateItsOwn: an Error's extra header under a
// non-canonical name cannot add a second Content-Type or Content-Length.
func TestProblemHeaderCannotDuplicateItsOwn(t *testing.T) {
	w := httptest.NewRecorder()
	(&gateway.Error{Status: 429, Header: http.Header{"content-type": {"text/html"}, "content-length": {"1"}, "retry-after": {"3"}}}).Write(w)
	h := w.Result().Header
	if got := h.Values("Content-Type"); len(got) != 1 || got[0] != gateway.ProblemContentType {
		t.Errorf("Content-Type = %q", got)
	}
	if got := h.Values("Content-Length"); len(got) != 1 || got[0] != strconv.Itoa(w.Body.Len()) {
		t.Errorf("Content-Length = %q for %d bytes", got, w.Body.Len())
	}
	if h.Get("Retry-After") != "3" {
		t.Errorf("Retry-After = %q", h.Get("Retry-After"))
	}
	for k := range h {
		if k != http.CanonicalHeaderKey(k) {
			t.Errorf("non-canonical field %q written", k)
		}
	}
}

func TestRouterChecksInternalHeaders(t *testing.T) {
	route := gateway.Route{Path: "/", Handler: gateway.NewPipeline(gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		return gateway.NewResponse(http.StatusOK, http.Header{"X-Seen": {req.HTTP.Header.Get("X-User-Id")}}, nil), nil
	}))}
	for _, bad := range []string{"", "X User", "X-User:", "X-Ü"} {
		_, err := gateway.NewRouter(gateway.RouterConfig{Options: gateway.Options{InternalHeaders: []string{"X-Tenant", bad}}, Routes: []gateway.Route{route}})
		if err == nil || !strings.Contains(err.Error(), "InternalHeaders[1]") {
			t.Errorf("%q: err %v, want one naming InternalHeaders[1]", bad, err)
		}
	}
	rt, err := gateway.NewRouter(gateway.RouterConfig{Options: gateway.Options{InternalHeaders: []string{"x-user-id"}}, Routes: []gateway.Route{route}})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("X-User-Id", "admin")
	w := httptest.NewRecorder()
	rt.ServeHTTP(w, r)
	if got := w.Header().Get("X-Seen"); got != "" {
		t.Fatalf("the upstream saw X-User-Id %q through a Router", got)
	}
}
