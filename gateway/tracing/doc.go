// Package tracing traces a gateway's requests with OpenTelemetry: a server
// span per request and a client span per upstream call, each branch of an
// aggregate included, with the W3C trace context sent to the upstreams so
// that their spans join the trace. A *Tracer is a gateway.Observer; it
// exports through whatever TracerProvider the application configures:
//
//	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exporter))
//	defer tp.Shutdown(ctx)
//	router, err := gateway.NewRouter(gateway.RouterConfig{
//		Options: gateway.Options{
//			Observers:      []gateway.Observer{tracing.New(tracing.Config{TracerProvider: tp})},
//			TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
//		},
//		Routes: routes,
//	})
//
// # Spans
//
// The server span starts as the request enters, before routing, named after
// its method ("GET"), and is renamed "GET /users/{id}" once a route matched,
// as the OpenTelemetry HTTP semantic conventions ask: the route's pattern,
// never the raw path, so span names stay few. Its attributes are
// http.request.method, url.path, url.scheme, server.address, server.port,
// client.address (gateway.Request.ClientIP), user_agent.original,
// http.route, http.response.status_code, the body sizes, and
// gatekit.request_id when Options.RequestIDs is on. Its status is Error for
// a 5xx reply; a 4xx is the client's error, not the gateway's.
//
// Each upstream call an upstream reports with gateway.Request.StartUpstream
// gets a client span, a child of the server span, named "<kind> <target>"
// ("http 10.0.0.7:8080", "lambda resize"), with gatekit.upstream.kind,
// server.address and server.port, and http.response.status_code. Its status
// is Error when the call failed or was answered 4xx or 5xx, as the
// conventions ask of client spans.
//
// # Whose trace context is believed
//
// A traceparent sent by a client is not continued unless Config.TrustIncoming
// says so (by default: only from a trusted proxy, Options.TrustedProxies).
// Otherwise a client could pick the trace ID its request is filed under, or
// mark it sampled and so choose what the tracing backend stores. A request
// from anyone else starts a new trace, linked to the context the client sent
// so the two can still be found together. A span the application's own
// middleware put in the request's context is always the parent.
//
// The propagator's fields (traceparent and tracestate for W3C) in the header
// an upstream call sends are replaced with the call's own context, so a
// client's fields never reach an upstream under the gateway's name.
package tracing
