package tracing

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/gatekit/gatekit/gateway"
)

// instrumentation names this package to the TracerProvider.
const instrumentation = "github.com/gatekit/gatekit/gateway/tracing"

// Attributes of gatekit's own, beside the semantic conventions'.
const (
	// RequestIDKey is the request's ID (gateway.Request.ID) on the server
	// span.
	RequestIDKey = attribute.Key("gatekit.request_id")
	// UpstreamKindKey is the kind of upstream (gateway.UpstreamCall.Upstream:
	// "http", "lambda", "function") on a client span.
	UpstreamKindKey = attribute.Key("gatekit.upstream.kind")
)

// Config configures a Tracer (New). The zero value traces with the global
// TracerProvider and propagates W3C trace context.
type Config struct {
	// TracerProvider makes the spans; nil means otel.GetTracerProvider(),
	// which hands over to a provider the application sets later with
	// otel.SetTracerProvider.
	TracerProvider trace.TracerProvider

	// Propagator reads the incoming trace context and writes it into the
	// header of upstream calls; nil means propagation.TraceContext{} (W3C
	// traceparent and tracestate). The global propagator is not used unless
	// passed here, so that what reaches upstreams is decided in one place.
	Propagator propagation.TextMapPropagator

	// TrustIncoming reports whether the trace context req carries may be
	// continued: its trace becomes the request's and its sampling decision
	// stands. nil means req.FromTrustedProxy(): only proxies the gateway
	// trusts (Options.TrustedProxies) choose trace IDs. An untrusted
	// request starts a new trace with a link to the context it sent.
	TrustIncoming func(req *gateway.Request) bool
}

// A Tracer traces the requests of the Router or Pipeline it observes
// (Options.Observers) and their upstream calls. It is safe for concurrent
// use, and one Tracer may observe several gateways.
type Tracer struct {
	tracer trace.Tracer
	prop   propagation.TextMapPropagator
	fields []string // the header fields prop reads and writes, canonical
	trust  func(*gateway.Request) bool

	// Built once: each option costs an allocation.
	serverKind, clientKind trace.SpanStartOption
}

var _ gateway.UpstreamObserver = (*Tracer)(nil)

// New returns a Tracer configured by cfg.
func New(cfg Config) *Tracer {
	t := &Tracer{
		prop:       cfg.Propagator,
		trust:      cfg.TrustIncoming,
		serverKind: trace.WithSpanKind(trace.SpanKindServer),
		clientKind: trace.WithSpanKind(trace.SpanKindClient),
	}
	tp := cfg.TracerProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	t.tracer = tp.Tracer(instrumentation, trace.WithSchemaURL(semconv.SchemaURL))
	if t.prop == nil {
		t.prop = propagation.TraceContext{}
	}
	for _, f := range t.prop.Fields() {
		t.fields = append(t.fields, http.CanonicalHeaderKey(f))
	}
	if t.trust == nil {
		t.trust = (*gateway.Request).FromTrustedProxy
	}
	return t
}

// serverKey finds, in a request's context, the server span of the Tracer t,
// which may not be the context's current span: another observer after t
// may have started one of its own.
type serverKey struct{ t *Tracer }

// Begin starts the server span of req and returns ctx with it as the
// current span.
func (t *Tracer) Begin(ctx context.Context, req *gateway.Request) context.Context {
	r := req.HTTP
	var opts [3]trace.SpanStartOption
	opt := opts[:0]
	if !trace.SpanContextFromContext(ctx).IsValid() && t.carriesContext(r.Header) {
		// Nobody in the process started a trace: look at what came in.
		carrier := propagation.HeaderCarrier(r.Header)
		if t.trust(req) {
			ctx = t.prop.Extract(ctx, carrier)
		} else if sc := trace.SpanContextFromContext(t.prop.Extract(context.Background(), carrier)); sc.IsValid() {
			opt = append(opt, trace.WithLinks(trace.Link{SpanContext: sc}))
		}
	}

	method, known := normalizeMethod(r.Method)
	name := method
	var attrs [8]attribute.KeyValue
	a := append(attrs[:0],
		semconv.HTTPRequestMethodKey.String(method),
		semconv.URLPathKey.String(r.URL.Path),
		semconv.URLSchemeKey.String(scheme(r)),
	)
	if !known {
		name = "HTTP"
		a = append(a, semconv.HTTPRequestMethodOriginalKey.String(r.Method))
	}
	if host, port := splitHostPort(r.Host); host != "" {
		a = append(a, semconv.ServerAddressKey.String(host))
		if port > 0 {
			a = append(a, semconv.ServerPortKey.Int(port))
		}
	}
	if ip := req.ClientIP(); ip.IsValid() {
		a = append(a, semconv.ClientAddressKey.String(ip.String()))
	}
	if ua := r.UserAgent(); ua != "" {
		a = append(a, semconv.UserAgentOriginalKey.String(ua))
	}
	opt = append(opt, t.serverKind, trace.WithAttributes(a...))
	ctx, span := t.tracer.Start(ctx, name, opt...)
	return context.WithValue(ctx, serverKey{t}, span)
}

// End ends the server span of req with what became of it. The span ends
// when the reply did (rec.Start + rec.Duration), not when End runs.
func (t *Tracer) End(ctx context.Context, req *gateway.Request, rec *gateway.Record) {
	span, _ := ctx.Value(serverKey{t}).(trace.Span)
	if span == nil {
		return
	}
	if !span.IsRecording() {
		span.End()
		return
	}
	defer span.End(trace.WithTimestamp(rec.Start.Add(rec.Duration)))
	var attrs [6]attribute.KeyValue
	a := attrs[:0]
	if route := req.Route(); route != nil {
		pattern := route.Path
		if pattern == "" {
			pattern = route.PathPrefix
		}
		a = append(a, semconv.HTTPRouteKey.String(pattern))
		method, known := normalizeMethod(req.HTTP.Method)
		if !known {
			method = "HTTP"
		}
		span.SetName(method + " " + pattern)
	}
	status := rec.Status
	var problem *gateway.Error
	internal := false
	if rec.Err != nil {
		if status == 0 && errors.Is(rec.Err, context.Canceled) {
			// The client went away: nothing was answered, and no
			// fault of the gateway's.
			span.SetAttributes(a...)
			return
		}
		problem, internal = gateway.ProblemFor(rec.Err)
		if status == 0 {
			status = problemStatus(problem)
		}
	}
	if status != 0 {
		a = append(a, semconv.HTTPResponseStatusCodeKey.Int(status))
	}
	if rec.BytesIn > 0 {
		a = append(a, semconv.HTTPRequestBodySizeKey.Int64(rec.BytesIn))
	}
	if rec.BytesOut > 0 {
		a = append(a, semconv.HTTPResponseBodySizeKey.Int64(rec.BytesOut))
	}
	if id := req.ID(); id != "" {
		a = append(a, RequestIDKey.String(id))
	}
	switch {
	case internal:
		// The log has this error too (Options.Logger); the client got
		// only a generic 500.
		span.RecordError(rec.Err)
		span.SetStatus(codes.Error, rec.Err.Error())
		a = append(a, semconv.ErrorTypeKey.String(strconv.Itoa(status)))
	case status >= 500:
		desc := ""
		if problem != nil {
			desc = problem.Error()
		}
		span.SetStatus(codes.Error, desc)
		a = append(a, semconv.ErrorTypeKey.String(strconv.Itoa(status)))
	}
	span.SetAttributes(a...)
}

// StartUpstream starts the client span of an upstream call, a child of the
// span in ctx, and writes its context into h (when h is not nil), replacing
// whatever the propagator's fields held. It returns ctx with the client
// span and the function that ends it.
func (t *Tracer) StartUpstream(ctx context.Context, req *gateway.Request, call *gateway.UpstreamCall, h http.Header) (context.Context, func(*gateway.UpstreamCall)) {
	name := call.Upstream
	if call.Target != "" {
		name += " " + call.Target
	}
	var attrs [4]attribute.KeyValue
	a := append(attrs[:0], UpstreamKindKey.String(call.Upstream))
	if host, port := splitHostPort(call.Target); host != "" {
		a = append(a, semconv.ServerAddressKey.String(host))
		if port > 0 {
			a = append(a, semconv.ServerPortKey.Int(port))
		}
	}
	if call.Upstream == "http" && req != nil && req.HTTP != nil {
		if m, _ := normalizeMethod(req.HTTP.Method); m != "" {
			a = append(a, semconv.HTTPRequestMethodKey.String(m))
		}
	}
	ctx, span := t.tracer.Start(ctx, name,
		t.clientKind,
		trace.WithTimestamp(call.Start),
		trace.WithAttributes(a...),
	)
	if h != nil {
		for _, f := range t.fields {
			delete(h, f)
		}
		t.prop.Inject(ctx, propagation.HeaderCarrier(h))
	}
	return ctx, func(c *gateway.UpstreamCall) {
		if !span.IsRecording() {
			span.End()
			return
		}
		defer span.End(trace.WithTimestamp(c.Start.Add(c.Duration)))
		if c.Status != 0 {
			span.SetAttributes(semconv.HTTPResponseStatusCodeKey.Int(c.Status))
		}
		switch {
		case c.Err != nil:
			span.RecordError(c.Err)
			span.SetStatus(codes.Error, c.Err.Error())
			span.SetAttributes(semconv.ErrorTypeKey.String(errorType(c.Err)))
		case c.Status >= 400:
			span.SetStatus(codes.Error, "")
			span.SetAttributes(semconv.ErrorTypeKey.String(strconv.Itoa(c.Status)))
		}
	}
}

// normalizeMethod returns the method as the semantic conventions name it:
// itself when it is one of RFC 9110's (and PATCH), else "_OTHER", so that
// clients cannot make up span names.
func normalizeMethod(m string) (string, bool) {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m, true
	}
	return "_OTHER", false
}

func scheme(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	return "http"
}

// carriesContext reports whether h has any of the propagator's fields,
// which spares extracting (and canonicalizing field names) when none is
// there, as for most requests.
func (t *Tracer) carriesContext(h http.Header) bool {
	for _, f := range t.fields {
		if _, ok := h[f]; ok {
			return true
		}
	}
	return false
}

// splitHostPort splits "host:port", "[v6]:port", "[v6]", "v6" or a bare
// host; port is 0 when there is none or it is not a port number. Unlike
// net.SplitHostPort it does not allocate for a host without a port.
func splitHostPort(s string) (host string, port int) {
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return s, 0
		}
		host, s = s[1:end], s[end+1:]
		if p, ok := strings.CutPrefix(s, ":"); ok {
			port = portNumber(p)
		}
		return host, port
	}
	i := strings.LastIndexByte(s, ':')
	if i < 0 || strings.IndexByte(s[:i], ':') >= 0 {
		return s, 0 // no port, or an IPv6 address without brackets
	}
	return s[:i], portNumber(s[i+1:])
}

func portNumber(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 65535 {
		return 0
	}
	return n
}

// problemStatus is the status the pipeline answers p with.
func problemStatus(p *gateway.Error) int {
	if p.Status < 400 || p.Status > 599 {
		return http.StatusInternalServerError
	}
	return p.Status
}

// errorType is the error.type of a failed upstream call: a value of few
// kinds, as the semantic conventions ask, the message being in the span's
// exception event.
func errorType(err error) string {
	if e, ok := errors.AsType[*gateway.Error](err); ok {
		return strconv.Itoa(problemStatus(e))
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timeout"
	}
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		return "timeout"
	}
	if errors.Is(err, context.Canceled) {
		return "canceled"
	}
	return "_OTHER"
}
