package metrics_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gatekit/gatekit/gateway"
	"github.com/gatekit/gatekit/gateway/metrics"
)

// routedRequest returns a request that a Router matched to a route, with
// one upstream call and one rate-limit note recorded, and a Record for it.
func routedRequest(tb testing.TB) (*gateway.Request, *gateway.Record) {
	tb.Helper()
	var got *gateway.Request
	h := gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		req.AddUpstreamCall(gateway.UpstreamCall{Upstream: "http", Target: "10.0.0.1:8080", Duration: 3 * time.Millisecond, Status: 200})
		req.Note("ratelimit", "per-client admitted")
		got = req
		return gateway.NewResponse(http.StatusOK, nil, nil), nil
	})
	rt, err := gateway.NewRouter(gateway.RouterConfig{Routes: []gateway.Route{{Name: "get-user", Methods: []string{"GET"}, Path: "/users/{id}", Handler: h}}})
	if err != nil {
		tb.Fatal(err)
	}
	rt.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/users/42", nil))
	if got == nil || got.Route() == nil {
		tb.Fatal("the request was not routed")
	}
	return got, &gateway.Record{Start: time.Now(), Duration: 4 * time.Millisecond, Status: 200, BytesOut: 120}
}

// BenchmarkEnd measures Begin and End for a routed request with one
// upstream call and one rate-limit note, once its series exist. Target:
// no allocations.
func BenchmarkEnd(b *testing.B) {
	m, err := metrics.New(metrics.Config{})
	if err != nil {
		b.Fatal(err)
	}
	req, rec := routedRequest(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		m.End(m.Begin(ctx, req), req, rec)
	}
}

// BenchmarkEndParallel is BenchmarkEnd from all Ps at once, where a lock
// or a shared cache line would show.
func BenchmarkEndParallel(b *testing.B) {
	m, err := metrics.New(metrics.Config{})
	if err != nil {
		b.Fatal(err)
	}
	req, rec := routedRequest(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.End(m.Begin(ctx, req), req, rec)
		}
	})
}

// TestEndAllocs guards BenchmarkEnd's target.
func TestEndAllocs(t *testing.T) {
	m, err := metrics.New(metrics.Config{})
	if err != nil {
		t.Fatal(err)
	}
	req, rec := routedRequest(t)
	ctx := context.Background()
	m.End(m.Begin(ctx, req), req, rec)
	if n := testing.AllocsPerRun(100, func() { m.End(m.Begin(ctx, req), req, rec) }); n != 0 {
		t.Errorf("Begin+End allocate %v times, want 0", n)
	}
}
