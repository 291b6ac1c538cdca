package gateway_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gatekit/gatekit/gateway"
)

// nopWriter is a ResponseWriter that keeps nothing, so benchmarks measure
// the gateway, not a recorder.
type nopWriter struct{ h http.Header }

func (w *nopWriter) Header() http.Header         { return w.h }
func (w *nopWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *nopWriter) WriteHeader(int)             {}

var benchReplyHeader = http.Header{"Content-Type": {"application/json"}}
var benchBody = []byte(`{"ok":true}`)

// benchUpstream is an in-process upstream answering a small reply.
var benchUpstream = gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
	return &gateway.Response{Status: 200, Header: benchReplyHeader}, nil
})

func nopStage(next gateway.Handler) gateway.Handler {
	return gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		return next.Serve(ctx, req)
	})
}

func benchPipeline(b *testing.B, p *gateway.Pipeline) {
	r := httptest.NewRequest("GET", "/users/42?x=1", nil)
	w := &nopWriter{h: make(http.Header)}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		p.ServeHTTP(w, r)
	}
}

// Target: the pipeline's own overhead under 1 µs and under 10 allocations
// per request (issue 2).
func BenchmarkPipelineNoStages(b *testing.B) {
	benchPipeline(b, gateway.NewPipeline(benchUpstream))
}

func BenchmarkPipelineFiveStages(b *testing.B) {
	benchPipeline(b, gateway.NewPipeline(benchUpstream, nopStage, nopStage, nopStage, nopStage, nopStage))
}

func TestPipelineAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation guard")
	}
	p := gateway.NewPipeline(benchUpstream, nopStage, nopStage, nopStage, nopStage, nopStage)
	r := httptest.NewRequest("GET", "/users/42?x=1", nil)
	w := &nopWriter{h: make(http.Header)}
	allocs := testing.AllocsPerRun(200, func() {
		clear(w.h)
		p.ServeHTTP(w, r)
	})
	if allocs >= 10 {
		t.Fatalf("pipeline with 5 stages allocates %.0f times per request, want < 10", allocs)
	}
}
