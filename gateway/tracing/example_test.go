package tracing_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/gatekit/gatekit/gateway"
	"github.com/gatekit/gatekit/gateway/tracing"
)

func Example() {
	// Any exporter works; a recorder keeps the spans in memory.
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	defer tp.Shutdown(context.Background())

	// An upstream reports its call, so the call gets a span and the
	// header it sends carries the trace.
	users := gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		h := http.Header{}
		_, done := req.StartUpstream(ctx, "http", "users.internal:8080", h)
		fmt.Println("traceparent sent:", h.Get("Traceparent") != "")
		done(http.StatusOK, nil)
		return gateway.NewResponse(http.StatusOK, nil, []byte(`{"id":"7"}`)), nil
	})
	router, err := gateway.NewRouter(gateway.RouterConfig{
		Options: gateway.Options{Observers: []gateway.Observer{tracing.New(tracing.Config{TracerProvider: tp})}},
		Routes:  []gateway.Route{{Methods: []string{"GET"}, Path: "/users/{id}", Handler: users}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	router.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/users/7", nil))

	for _, s := range spans.Ended() {
		fmt.Printf("%s span %q\n", s.SpanKind(), s.Name())
	}
	// Output:
	// traceparent sent: true
	// client span "http users.internal:8080"
	// server span "GET /users/{id}"
}
