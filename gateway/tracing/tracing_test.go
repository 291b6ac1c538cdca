package tracing_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"

	"github.com/gatekit/gatekit/gateway"
	"github.com/gatekit/gatekit/gateway/tracing"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// trusted is the network of the proxies the test gateways trust.
var trusted = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}

const (
	incomingTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	incomingSpanID  = "00f067aa0ba902b7"
	incoming        = "00-" + incomingTraceID + "-" + incomingSpanID + "-01"
)

// newTracer returns a Tracer whose spans go to the returned recorder, and
// checks when the test ends that every span started was ended.
func newTracer(t testing.TB, cfg tracing.Config) (*tracing.Tracer, *tracetest.SpanRecorder) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() {
		if started, ended := len(rec.Started()), len(rec.Ended()); started != ended {
			t.Errorf("%d spans started, %d ended", started, ended)
		}
		tp.Shutdown(context.Background())
	})
	cfg.TracerProvider = tp
	return tracing.New(cfg), rec
}

// lastRecord is an Observer that keeps the Record of the last request.
type lastRecord struct{ rec gateway.Record }

func (l *lastRecord) Begin(ctx context.Context, _ *gateway.Request) context.Context { return ctx }
func (l *lastRecord) End(_ context.Context, _ *gateway.Request, rec *gateway.Record) {
	l.rec = *rec
}

// newRouter returns a Router observed by the given observers, trusting
// the proxies in trusted and giving requests IDs.
func newRouter(t testing.TB, routes []gateway.Route, obs ...gateway.Observer) *gateway.Router {
	t.Helper()
	rt, err := gateway.NewRouter(gateway.RouterConfig{
		Options: gateway.Options{
			Observers:      obs,
			TrustedProxies: trusted,
			RequestIDs:     true,
			Logger:         slog.New(slog.DiscardHandler),
		},
		Routes: routes,
	})
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

func reply(status int, body string) gateway.Handler {
	return gateway.HandlerFunc(func(context.Context, *gateway.Request) (*gateway.Response, error) {
		return gateway.NewResponse(status, nil, []byte(body)), nil
	})
}

func fail(err error) gateway.Handler {
	return gateway.HandlerFunc(func(context.Context, *gateway.Request) (*gateway.Response, error) {
		return nil, err
	})
}

// spansOf returns the ended spans of the given kind.
func spansOf(rec *tracetest.SpanRecorder, kind trace.SpanKind) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.SpanKind() == kind {
			out = append(out, s)
		}
	}
	return out
}

// serverSpan returns the one server span recorded.
func serverSpan(t *testing.T, rec *tracetest.SpanRecorder) sdktrace.ReadOnlySpan {
	t.Helper()
	s := spansOf(rec, trace.SpanKindServer)
	if len(s) != 1 {
		t.Fatalf("%d server spans, want 1", len(s))
	}
	return s[0]
}

func attrsOf(s sdktrace.ReadOnlySpan) map[attribute.Key]attribute.Value {
	m := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes() {
		m[kv.Key] = kv.Value
	}
	return m
}

// checkAttrs reports the attributes of s that differ from want, and those
// present that are named in absent.
func checkAttrs(t *testing.T, s sdktrace.ReadOnlySpan, want []attribute.KeyValue, absent ...attribute.Key) {
	t.Helper()
	got := attrsOf(s)
	for _, kv := range want {
		if v, ok := got[kv.Key]; !ok {
			t.Errorf("span %q: no attribute %s, want %s", s.Name(), kv.Key, kv.Value.Emit())
		} else if v != kv.Value {
			t.Errorf("span %q: %s = %s, want %s", s.Name(), kv.Key, v.Emit(), kv.Value.Emit())
		}
	}
	for _, k := range absent {
		if v, ok := got[k]; ok {
			t.Errorf("span %q: %s = %s, want none", s.Name(), k, v.Emit())
		}
	}
}

// traceparent formats sc as a W3C traceparent field.
func traceparent(sc trace.SpanContext) string {
	h := http.Header{}
	propagation.TraceContext{}.Inject(trace.ContextWithSpanContext(context.Background(), sc), propagation.HeaderCarrier(h))
	return h.Get("Traceparent")
}

func TestServerSpan(t *testing.T) {
	routes := []gateway.Route{
		{Methods: []string{"GET"}, Path: "/users/{id}", Handler: reply(http.StatusOK, "ok")},
		{PathPrefix: "/files", Handler: reply(http.StatusOK, "")},
		{Path: "/unavailable", Handler: reply(http.StatusServiceUnavailable, "")},
		{Path: "/bad-gateway", Handler: fail(gateway.Errorf(http.StatusBadGateway, "upstream unreachable"))},
		{Path: "/missing", Handler: fail(gateway.Errorf(http.StatusNotFound, "no such user"))},
		{Path: "/internal", Handler: fail(errors.New("boom"))},
	}
	tests := []struct {
		name, method, target string
		wantName             string
		wantCode             codes.Code
		wantDesc             string // a part of the status description
		want                 []attribute.KeyValue
		absent               []attribute.Key
		wantException        bool
	}{
		{
			name: "routed", method: "GET", target: "http://api.example.com:8443/users/7",
			wantName: "GET /users/{id}", wantCode: codes.Unset,
			want: []attribute.KeyValue{
				attribute.String("http.request.method", "GET"),
				attribute.String("url.path", "/users/7"),
				attribute.String("url.scheme", "http"),
				attribute.String("server.address", "api.example.com"),
				attribute.Int("server.port", 8443),
				attribute.String("client.address", "203.0.113.5"),
				attribute.String("user_agent.original", "gatekit-test/1"),
				attribute.String("http.route", "/users/{id}"),
				attribute.Int("http.response.status_code", 200),
				attribute.Int("http.response.body.size", 2),
			},
			absent: []attribute.Key{"error.type", "http.request.method_original"},
		},
		{
			name: "prefix route", method: "GET", target: "http://api.example.com/files/a/b",
			wantName: "GET /files", wantCode: codes.Unset,
			want: []attribute.KeyValue{
				attribute.String("http.route", "/files"),
				attribute.String("server.address", "api.example.com"),
			},
			absent: []attribute.Key{"server.port"},
		},
		{
			name: "unknown method", method: "PURGE", target: "http://api.example.com/files/a",
			wantName: "HTTP /files", wantCode: codes.Unset,
			want: []attribute.KeyValue{
				attribute.String("http.request.method", "_OTHER"),
				attribute.String("http.request.method_original", "PURGE"),
			},
		},
		{
			name: "no route", method: "GET", target: "http://api.example.com/nowhere",
			wantName: "GET", wantCode: codes.Unset,
			want:   []attribute.KeyValue{attribute.Int("http.response.status_code", 404)},
			absent: []attribute.Key{"http.route"},
		},
		{
			name: "upstream replies 503", method: "GET", target: "http://api.example.com/unavailable",
			wantName: "GET /unavailable", wantCode: codes.Error,
			want: []attribute.KeyValue{
				attribute.Int("http.response.status_code", 503),
				attribute.String("error.type", "503"),
			},
		},
		{
			name: "problem 502", method: "GET", target: "http://api.example.com/bad-gateway",
			wantName: "GET /bad-gateway", wantCode: codes.Error, wantDesc: "upstream unreachable",
			want: []attribute.KeyValue{
				attribute.Int("http.response.status_code", 502),
				attribute.String("error.type", "502"),
			},
		},
		{
			name: "problem 404 is the client's", method: "GET", target: "http://api.example.com/missing",
			wantName: "GET /missing", wantCode: codes.Unset,
			want:   []attribute.KeyValue{attribute.Int("http.response.status_code", 404)},
			absent: []attribute.Key{"error.type"},
		},
		{
			name: "internal error", method: "POST", target: "http://api.example.com/internal",
			wantName: "POST /internal", wantCode: codes.Error, wantDesc: "boom", wantException: true,
			want: []attribute.KeyValue{
				attribute.Int("http.response.status_code", 500),
				attribute.String("error.type", "500"),
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr, rec := newTracer(t, tracing.Config{})
			last := new(lastRecord)
			rt := newRouter(t, routes, tr, last)
			r := httptest.NewRequest(tc.method, tc.target, nil)
			r.RemoteAddr = "203.0.113.5:40000"
			r.Header.Set("User-Agent", "gatekit-test/1")
			w := httptest.NewRecorder()
			rt.ServeHTTP(w, r)

			s := serverSpan(t, rec)
			if s.Name() != tc.wantName {
				t.Errorf("name %q, want %q", s.Name(), tc.wantName)
			}
			if st := s.Status(); st.Code != tc.wantCode || !strings.Contains(st.Description, tc.wantDesc) {
				t.Errorf("status %v %q, want %v containing %q", st.Code, st.Description, tc.wantCode, tc.wantDesc)
			}
			id := w.Header().Get(gateway.RequestIDHeader)
			checkAttrs(t, s, append(tc.want, tracing.RequestIDKey.String(id)), tc.absent...)
			if s.Parent().IsValid() {
				t.Errorf("parent %v, want a new trace", s.Parent())
			}
			if want := last.rec.Start.Add(last.rec.Duration); !s.EndTime().Equal(want) {
				t.Errorf("span ends at %v, want the reply's end %v", s.EndTime(), want)
			}
			gotException := false
			for _, e := range s.Events() {
				gotException = gotException || e.Name == "exception"
			}
			if gotException != tc.wantException {
				t.Errorf("exception event: %v, want %v", gotException, tc.wantException)
			}
		})
	}
}

// TestClientWentAway checks that a request the client abandoned, with
// nothing answered, is not marked as an error.
func TestClientWentAway(t *testing.T) {
	tr, rec := newTracer(t, tracing.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	gone := gateway.HandlerFunc(func(ctx context.Context, _ *gateway.Request) (*gateway.Response, error) {
		cancel()
		return nil, ctx.Err()
	})
	rt := newRouter(t, []gateway.Route{{Path: "/slow", Handler: gone}}, tr)
	rt.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/slow", nil).WithContext(ctx))

	s := serverSpan(t, rec)
	if s.Status().Code != codes.Unset {
		t.Errorf("status %v, want Unset", s.Status())
	}
	checkAttrs(t, s, []attribute.KeyValue{attribute.String("http.route", "/slow")}, "http.response.status_code", "error.type")
}

func TestUpstreamSpan(t *testing.T) {
	tests := []struct {
		name          string
		kind, target  string
		noHeader      bool
		status        int
		err           error
		wantName      string
		wantCode      codes.Code
		want          []attribute.KeyValue
		absent        []attribute.Key
		wantException bool
	}{
		{
			name: "http ok", kind: "http", target: "10.0.0.7:8080", status: 200,
			wantName: "http 10.0.0.7:8080", wantCode: codes.Unset,
			want: []attribute.KeyValue{
				attribute.String("gatekit.upstream.kind", "http"),
				attribute.String("server.address", "10.0.0.7"),
				attribute.Int("server.port", 8080),
				attribute.String("http.request.method", "GET"),
				attribute.Int("http.response.status_code", 200),
			},
			absent: []attribute.Key{"error.type"},
		},
		{
			name: "http 404", kind: "http", target: "users.internal:80", status: 404,
			wantName: "http users.internal:80", wantCode: codes.Error,
			want: []attribute.KeyValue{
				attribute.Int("http.response.status_code", 404),
				attribute.String("error.type", "404"),
			},
		},
		{
			name: "http 503", kind: "http", target: "[2001:db8::1]:8443", status: 503,
			wantName: "http [2001:db8::1]:8443", wantCode: codes.Error,
			want: []attribute.KeyValue{
				attribute.String("server.address", "2001:db8::1"),
				attribute.Int("server.port", 8443),
				attribute.String("error.type", "503"),
			},
		},
		{
			name: "bare IPv6", kind: "http", target: "2001:db8::2", status: 200,
			wantName: "http 2001:db8::2", wantCode: codes.Unset,
			want:   []attribute.KeyValue{attribute.String("server.address", "2001:db8::2")},
			absent: []attribute.Key{"server.port"},
		},
		{
			name: "timeout", kind: "http", target: "10.0.0.8:8080", err: context.DeadlineExceeded,
			wantName: "http 10.0.0.8:8080", wantCode: codes.Error, wantException: true,
			want:   []attribute.KeyValue{attribute.String("error.type", "timeout")},
			absent: []attribute.Key{"http.response.status_code"},
		},
		{
			name: "lambda without header", kind: "lambda", target: "resize", noHeader: true, err: errors.New("function error"),
			wantName: "lambda resize", wantCode: codes.Error, wantException: true,
			want: []attribute.KeyValue{
				attribute.String("gatekit.upstream.kind", "lambda"),
				attribute.String("server.address", "resize"),
				attribute.String("error.type", "_OTHER"),
			},
			absent: []attribute.Key{"server.port", "http.request.method"},
		},
		{
			name: "problem", kind: "function", target: "quote", err: gateway.Errorf(http.StatusBadGateway, "bad reply"),
			wantName: "function quote", wantCode: codes.Error, wantException: true,
			want: []attribute.KeyValue{attribute.String("error.type", "502")},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr, rec := newTracer(t, tracing.Config{})
			var h http.Header
			if !tc.noHeader {
				// A client's trace fields, forwarded as they came: the
				// call's own must replace them.
				h = http.Header{"Traceparent": {incoming}, "Tracestate": {"client=1"}, "Accept": {"*/*"}}
			}
			var callCtx context.Context
			var calls []gateway.UpstreamCall
			up := gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
				var done func(int, error)
				callCtx, done = req.StartUpstream(ctx, tc.kind, tc.target, h)
				done(tc.status, tc.err)
				calls = req.UpstreamCalls()
				return gateway.NewResponse(http.StatusOK, nil, nil), nil
			})
			rt := newRouter(t, []gateway.Route{{Path: "/", Handler: up}}, tr)
			rt.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))

			server := serverSpan(t, rec)
			clients := spansOf(rec, trace.SpanKindClient)
			if len(clients) != 1 {
				t.Fatalf("%d client spans, want 1", len(clients))
			}
			c := clients[0]
			if c.Parent().SpanID() != server.SpanContext().SpanID() || c.SpanContext().TraceID() != server.SpanContext().TraceID() {
				t.Errorf("client span's parent %v, want the server span %v", c.Parent(), server.SpanContext())
			}
			if c.Name() != tc.wantName {
				t.Errorf("name %q, want %q", c.Name(), tc.wantName)
			}
			if c.Status().Code != tc.wantCode {
				t.Errorf("status %v, want %v", c.Status(), tc.wantCode)
			}
			checkAttrs(t, c, tc.want, tc.absent...)
			if got := trace.SpanContextFromContext(callCtx); !got.Equal(c.SpanContext()) {
				t.Errorf("call's context has span %v, want the client span %v", got, c.SpanContext())
			}
			if h != nil {
				if got, want := h.Get("Traceparent"), traceparent(c.SpanContext()); got != want {
					t.Errorf("traceparent sent %q, want the client span's %q", got, want)
				}
				if _, ok := h["Tracestate"]; ok {
					t.Errorf("the client's tracestate %q was sent on", h["Tracestate"])
				}
				if h.Get("Accept") != "*/*" {
					t.Errorf("other fields changed: %v", h)
				}
			}
			if len(calls) != 1 {
				t.Fatalf("%d upstream calls recorded, want 1", len(calls))
			}
			if call := calls[0]; !c.StartTime().Equal(call.Start) || !c.EndTime().Equal(call.Start.Add(call.Duration)) {
				t.Errorf("client span from %v to %v, want the call's %v to %v", c.StartTime(), c.EndTime(), call.Start, call.Start.Add(call.Duration))
			}
			gotException := false
			for _, e := range c.Events() {
				gotException = gotException || e.Name == "exception"
			}
			if gotException != tc.wantException {
				t.Errorf("exception event: %v, want %v", gotException, tc.wantException)
			}
		})
	}
}

// TestBranchSpans runs an aggregate-like upstream whose branches call their
// backends from goroutines, each with its own sub-request, and checks that
// every branch's span is a child of the server span and that each branch
// sends its own span's context.
func TestBranchSpans(t *testing.T) {
	const branches = 3
	tr, rec := newTracer(t, tracing.Config{})
	sent := make([]string, branches)
	agg := gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		var wg sync.WaitGroup
		for i := range branches {
			wg.Go(func() {
				out, err := http.NewRequestWithContext(ctx, "GET", "http://backend/part", nil)
				if err != nil {
					t.Error(err)
					return
				}
				sub := gateway.NewSubRequest(req, out)
				_, done := sub.StartUpstream(sub.HTTP.Context(), "http", "10.0.1."+strconv.Itoa(i+1)+":8080", sub.HTTP.Header)
				sent[i] = sub.HTTP.Header.Get("Traceparent")
				done(http.StatusOK, nil)
			})
		}
		wg.Wait()
		return gateway.NewResponse(http.StatusOK, nil, []byte("{}")), nil
	})
	rt := newRouter(t, []gateway.Route{{Path: "/dashboard", Handler: agg}}, tr)
	rt.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/dashboard", nil))

	server := serverSpan(t, rec).SpanContext()
	clients := spansOf(rec, trace.SpanKindClient)
	if len(clients) != branches {
		t.Fatalf("%d client spans, want %d", len(clients), branches)
	}
	byTraceparent := map[string]sdktrace.ReadOnlySpan{}
	for _, c := range clients {
		if c.Parent().SpanID() != server.SpanID() || c.SpanContext().TraceID() != server.TraceID() {
			t.Errorf("span %q has parent %v, want the server span %v", c.Name(), c.Parent(), server)
		}
		byTraceparent[traceparent(c.SpanContext())] = c
	}
	for i, tp := range sent {
		if _, ok := byTraceparent[tp]; !ok {
			t.Errorf("branch %d sent traceparent %q, which is no client span's", i, tp)
		}
	}
	if len(byTraceparent) != branches {
		t.Errorf("%d distinct client span contexts, want %d", len(byTraceparent), branches)
	}
}

// TestPropagationToBackend sends an upstream call to a real server and
// checks the trace context it receives.
func TestPropagationToBackend(t *testing.T) {
	type seen struct{ traceparent, tracestate string }
	got := make(chan seen, 1)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- seen{r.Header.Get("traceparent"), r.Header.Get("tracestate")}
		io.WriteString(w, "ok")
	}))
	t.Cleanup(backend.Close)
	target := strings.TrimPrefix(backend.URL, "http://")

	tests := []struct {
		name           string
		remote         string
		wantContinued  bool
		wantTracestate string
	}{
		{name: "from a client", remote: "203.0.113.5:40000", wantContinued: false, wantTracestate: ""},
		{name: "from a trusted proxy", remote: "10.1.2.3:40000", wantContinued: true, wantTracestate: "vendor=x"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr, rec := newTracer(t, tracing.Config{})
			proxy := gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
				out, err := http.NewRequestWithContext(ctx, req.HTTP.Method, backend.URL+req.HTTP.URL.Path, nil)
				if err != nil {
					return nil, err
				}
				// Forward the client's fields as a proxy would.
				out.Header = req.HTTP.Header.Clone()
				callCtx, done := req.StartUpstream(ctx, "http", target, out.Header)
				resp, err := backend.Client().Do(out.WithContext(callCtx))
				if err != nil {
					done(0, err)
					return nil, gateway.Errorf(http.StatusBadGateway, "backend unreachable")
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				done(resp.StatusCode, err)
				return gateway.NewResponse(resp.StatusCode, nil, body), err
			})
			rt := newRouter(t, []gateway.Route{{Path: "/orders", Handler: proxy}}, tr)
			r := httptest.NewRequest("GET", "/orders", nil)
			r.RemoteAddr = tc.remote
			r.Header.Set("Traceparent", incoming)
			r.Header.Set("Tracestate", "vendor=x")
			w := httptest.NewRecorder()
			rt.ServeHTTP(w, r)
			if w.Code != http.StatusOK {
				t.Fatalf("status %d, want 200", w.Code)
			}
			s := <-got

			server := serverSpan(t, rec)
			clients := spansOf(rec, trace.SpanKindClient)
			if len(clients) != 1 {
				t.Fatalf("%d client spans, want 1", len(clients))
			}
			c := clients[0]
			if want := traceparent(c.SpanContext()); s.traceparent != want {
				t.Errorf("backend got traceparent %q, want the client span's %q", s.traceparent, want)
			}
			if s.tracestate != tc.wantTracestate {
				t.Errorf("backend got tracestate %q, want %q", s.tracestate, tc.wantTracestate)
			}
			hdr := http.Header{"Traceparent": {s.traceparent}}
			sc := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), propagation.HeaderCarrier(hdr)))
			if sc.TraceID() != server.SpanContext().TraceID() || !sc.IsSampled() {
				t.Errorf("backend's context %v is not in the server span's sampled trace %v", sc, server.SpanContext())
			}
			if continued := sc.TraceID().String() == incomingTraceID; continued != tc.wantContinued {
				t.Errorf("backend continues the client's trace: %v, want %v", continued, tc.wantContinued)
			}
			checkAttrs(t, c, []attribute.KeyValue{attribute.Int("http.response.status_code", 200)})
		})
	}
}

func TestTrustIncoming(t *testing.T) {
	appSpan := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{1, 2, 3},
		SpanID:     trace.SpanID{4, 5, 6},
		TraceFlags: trace.FlagsSampled,
	})
	always := func(*gateway.Request) bool { return true }
	never := func(*gateway.Request) bool { return false }
	tests := []struct {
		name        string
		trust       func(*gateway.Request) bool
		remote      string
		traceparent string
		ctx         context.Context
		want        string // "continued", "linked", "new" or "app"
	}{
		{name: "client", remote: "203.0.113.5:1", traceparent: incoming, want: "linked"},
		{name: "client asks not to sample", remote: "203.0.113.5:1", traceparent: "00-" + incomingTraceID + "-" + incomingSpanID + "-00", want: "linked"},
		{name: "trusted proxy", remote: "10.1.2.3:1", traceparent: incoming, want: "continued"},
		{name: "trusted proxy, no context", remote: "10.1.2.3:1", want: "new"},
		{name: "trusted proxy, malformed", remote: "10.1.2.3:1", traceparent: "00-xyz-" + incomingSpanID + "-01", want: "new"},
		{name: "client, TrustIncoming always", trust: always, remote: "203.0.113.5:1", traceparent: incoming, want: "continued"},
		{name: "trusted proxy, TrustIncoming never", trust: never, remote: "10.1.2.3:1", traceparent: incoming, want: "linked"},
		{name: "application's span", remote: "203.0.113.5:1", traceparent: incoming,
			ctx: trace.ContextWithSpanContext(context.Background(), appSpan), want: "app"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr, rec := newTracer(t, tracing.Config{TrustIncoming: tc.trust})
			rt := newRouter(t, []gateway.Route{{Path: "/", Handler: reply(http.StatusOK, "")}}, tr)
			r := httptest.NewRequest("GET", "/", nil)
			if tc.ctx != nil {
				r = r.WithContext(tc.ctx)
			}
			r.RemoteAddr = tc.remote
			if tc.traceparent != "" {
				r.Header.Set("Traceparent", tc.traceparent)
			}
			rt.ServeHTTP(httptest.NewRecorder(), r)

			s := serverSpan(t, rec) // recorded: sampled even when a client asked not to be
			parent, links := s.Parent(), s.Links()
			traceID := s.SpanContext().TraceID().String()
			switch tc.want {
			case "continued":
				if traceID != incomingTraceID || parent.SpanID().String() != incomingSpanID || !parent.IsRemote() {
					t.Errorf("trace %s, parent %v: want the incoming context continued", traceID, parent)
				}
				if len(links) != 0 {
					t.Errorf("links %v, want none", links)
				}
			case "linked":
				if traceID == incomingTraceID || parent.IsValid() {
					t.Errorf("trace %s, parent %v: want a new trace", traceID, parent)
				}
				if len(links) != 1 || links[0].SpanContext.TraceID().String() != incomingTraceID ||
					links[0].SpanContext.SpanID().String() != incomingSpanID {
					t.Errorf("links %v, want one to the incoming context", links)
				}
			case "new":
				if traceID == incomingTraceID || parent.IsValid() || len(links) != 0 {
					t.Errorf("trace %s, parent %v, links %v: want a new trace without links", traceID, parent, links)
				}
			case "app":
				if !parent.Equal(appSpan) || len(links) != 0 {
					t.Errorf("parent %v, links %v: want the application's span %v", parent, links, appSpan)
				}
			}
		})
	}
}

// TestConcurrentRequests serves requests in parallel, each with an
// upstream call, and checks that every client span is in its own
// request's trace. newTracer checks that no span is left open.
func TestConcurrentRequests(t *testing.T) {
	const n = 32
	tr, rec := newTracer(t, tracing.Config{})
	up := gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		_, done := req.StartUpstream(ctx, "http", "10.0.0.9:8080", http.Header{})
		done(http.StatusOK, nil)
		return gateway.NewResponse(http.StatusOK, nil, nil), nil
	})
	rt := newRouter(t, []gateway.Route{{Path: "/items/{id}", Handler: up}}, tr)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			rt.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/items/1", nil))
		})
	}
	wg.Wait()

	servers := map[trace.TraceID]trace.SpanID{}
	for _, s := range spansOf(rec, trace.SpanKindServer) {
		servers[s.SpanContext().TraceID()] = s.SpanContext().SpanID()
	}
	clients := spansOf(rec, trace.SpanKindClient)
	if len(servers) != n || len(clients) != n {
		t.Fatalf("%d traces with server spans and %d client spans, want %d of each", len(servers), len(clients), n)
	}
	for _, c := range clients {
		if servers[c.SpanContext().TraceID()] != c.Parent().SpanID() {
			t.Errorf("client span %v has parent %v, not its trace's server span", c.SpanContext(), c.Parent())
		}
	}
}

// secondObserver is an observer after the Tracer that starts a span of its
// own, as another tracer would.
type secondObserver struct{ tp trace.TracerProvider }

func (o secondObserver) Begin(ctx context.Context, _ *gateway.Request) context.Context {
	ctx, _ = o.tp.Tracer("other").Start(ctx, "other")
	return ctx
}

func (o secondObserver) End(ctx context.Context, _ *gateway.Request, _ *gateway.Record) {
	trace.SpanFromContext(ctx).End()
}

// TestEndsItsOwnSpan checks that End ends the Tracer's span, not whatever
// span an observer after it put in the context.
func TestEndsItsOwnSpan(t *testing.T) {
	tr, rec := newTracer(t, tracing.Config{})
	otherRec := tracetest.NewSpanRecorder()
	otherTP := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(otherRec))
	t.Cleanup(func() { otherTP.Shutdown(context.Background()) })
	rt := newRouter(t, []gateway.Route{{Path: "/a", Handler: reply(http.StatusOK, "")}}, tr, secondObserver{otherTP})
	rt.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/a", nil))

	s := serverSpan(t, rec)
	if s.Name() != "GET /a" {
		t.Errorf("name %q, want %q", s.Name(), "GET /a")
	}
	if o := otherRec.Ended(); len(o) != 1 || o[0].Name() != "other" {
		t.Errorf("the other observer's spans: %v", o)
	}
}
