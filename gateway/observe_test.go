package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gatekit/gatekit/gateway"
)

// logLines decodes the JSON log lines in buf.
func logLines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func TestAccessLog(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	h := gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		if req.Param("id") == "boom" {
			return nil, &gateway.Error{Status: http.StatusBadGateway, Detail: "upstream down"}
		}
		body, _ := req.Body()
		req.Principal = &gateway.Principal{Subject: "alice"}
		req.AddUpstreamCall(gateway.UpstreamCall{Upstream: "http", Target: "10.0.0.5:8080", Duration: 3 * time.Millisecond, Status: 200})
		req.Note("ratelimit", "per-client admitted")
		return gateway.NewResponse(http.StatusOK, nil, append([]byte("echo:"), body...)), nil
	})
	router, err := gateway.NewRouter(gateway.RouterConfig{
		Options: gateway.Options{
			Observers: []gateway.Observer{gateway.NewAccessLog(gateway.AccessLogConfig{
				Logger: logger, Headers: []string{"User-Agent", "Authorization", "X-Secret"}, Redact: []string{"X-Secret", "session"},
			})},
			RequestIDs: true,
			Logger:     slog.New(slog.DiscardHandler),
		},
		Routes: []gateway.Route{{Name: "users", Path: "/users/{id}", Handler: h}},
	})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodPost, "/users/42?token=abc&session=s3&page=2", strings.NewReader("hello"))
	r.Header.Set("Authorization", "Bearer secret-token")
	r.Header.Set("X-Secret", "hush")
	r.Header.Set("User-Agent", "curl/8")
	router.ServeHTTP(httptest.NewRecorder(), r)
	router.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/users/boom", nil))
	router.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/nowhere", nil))

	lines := logLines(t, &buf)
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3:\n%s", len(lines), buf.String())
	}
	ok := lines[0]
	for k, want := range map[string]any{
		"msg": "request", "method": "POST", "route": "users", "path": "/users/42", "status": float64(200),
		"bytes_in": float64(5), "bytes_out": float64(10), "subject": "alice", "ratelimit": "per-client admitted",
		"query":                "token=[redacted]&session=[redacted]&page=2",
		"header.Authorization": "[redacted]", "header.X-Secret": "[redacted]", "header.User-Agent": "curl/8",
		"client": "192.0.2.1",
	} {
		if ok[k] != want {
			t.Errorf("%s = %v, want %v", k, ok[k], want)
		}
	}
	if id, _ := ok["request_id"].(string); len(id) != 32 {
		t.Errorf("request_id %q", ok["request_id"])
	}
	up, _ := ok["upstream"].(map[string]any)
	first, _ := up["0"].(map[string]any)
	if first["target"] != "10.0.0.5:8080" || first["status"] != float64(200) {
		t.Errorf("upstream %v", ok["upstream"])
	}
	if strings.Contains(buf.String(), "secret-token") || strings.Contains(buf.String(), "abc") || strings.Contains(buf.String(), "hush") {
		t.Fatalf("a secret reached the log:\n%s", buf.String())
	}
	if l := lines[1]; l["status"] != float64(502) || l["level"] != "WARN" || !strings.Contains(l["error"].(string), "upstream down") {
		t.Errorf("failed request logged as %v", l)
	}
	if l := lines[2]; l["status"] != float64(404) || l["route"] != "" {
		t.Errorf("unmatched request logged as %v", l)
	}
}

func TestAccessLogSampling(t *testing.T) {
	var buf bytes.Buffer
	p := gateway.NewPipeline(gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		if req.HTTP.URL.Path == "/fail" {
			return nil, errors.New("broken")
		}
		return nil, nil
	}))
	p.Options.Logger = slog.New(slog.DiscardHandler)
	p.Options.Observers = []gateway.Observer{gateway.NewAccessLog(gateway.AccessLogConfig{Logger: slog.New(slog.NewJSONHandler(&buf, nil)), Sample: 0.1})}
	for range 1000 {
		p.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	}
	for range 20 {
		p.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/fail", nil))
	}
	n, failed := 0, 0
	for _, l := range logLines(t, &buf) {
		if l["status"] == float64(500) {
			failed++
		} else {
			n++
		}
	}
	if failed != 20 {
		t.Errorf("%d of 20 failures logged, want all", failed)
	}
	if n < 50 || n > 150 { // 100 expected; 5 standard deviations is about ±47
		t.Errorf("%d of 1000 successes logged at 10%%", n)
	}
}

func TestRequestIDs(t *testing.T) {
	tests := []struct {
		name                string
		remote              string
		id, traceparent     string
		wantSame, wantTrace bool
	}{
		{name: "generated", remote: "203.0.113.9:1"},
		{name: "client's id replaced", remote: "203.0.113.9:1", id: "client-chosen"},
		{name: "trusted proxy's id kept", remote: "10.0.0.1:1", id: "req-123", wantSame: true},
		{name: "trusted proxy's bad id replaced", remote: "10.0.0.1:1", id: "bad id\"<>"},
		{name: "trace id from a trusted traceparent", remote: "10.0.0.1:1", traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", wantTrace: true},
		{name: "all-zero trace id ignored", remote: "10.0.0.1:1", traceparent: "00-00000000000000000000000000000000-00f067aa0ba902b7-01"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var seenID, seenHeader string
			p := gateway.NewPipeline(gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
				seenID, seenHeader = req.ID(), req.HTTP.Header.Get(gateway.RequestIDHeader)
				return nil, nil
			}))
			p.Options.RequestIDs = true
			p.Options.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tc.remote
			if tc.id != "" {
				r.Header.Set("X-Request-Id", tc.id)
			}
			if tc.traceparent != "" {
				r.Header.Set("Traceparent", tc.traceparent)
			}
			rec := httptest.NewRecorder()
			p.ServeHTTP(rec, r)
			got := rec.Header().Get(gateway.RequestIDHeader)
			if got == "" || got != seenID || got != seenHeader {
				t.Fatalf("reply %q, request %q, upstream header %q", got, seenID, seenHeader)
			}
			switch {
			case tc.wantSame && got != tc.id:
				t.Fatalf("id %q, want the proxy's %q", got, tc.id)
			case tc.wantTrace && got != "4bf92f3577b34da6a3ce929d0e0e4736":
				t.Fatalf("id %q, want the trace id", got)
			case !tc.wantSame && !tc.wantTrace && (got == tc.id || len(got) != 32):
				t.Fatalf("id %q, want a new one", got)
			}
		})
	}
}

// countingObserver checks the order of Begin and End and that Begin's
// context reaches the handler.
type countingObserver struct {
	begun, ended int
	last         gateway.Record
}

type ctxKey struct{}

func (o *countingObserver) Begin(ctx context.Context, req *gateway.Request) context.Context {
	o.begun++
	return context.WithValue(ctx, ctxKey{}, "observed")
}

func (o *countingObserver) End(ctx context.Context, req *gateway.Request, rec *gateway.Record) {
	o.ended++
	o.last = *rec
}

func TestObserverSeesEveryRequest(t *testing.T) {
	obs := &countingObserver{}
	var sawCtx any
	p := gateway.NewPipeline(gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		sawCtx = ctx.Value(ctxKey{})
		io.Copy(io.Discard, req.HTTP.Body)
		return gateway.NewResponse(http.StatusCreated, nil, []byte("made")), nil
	}))
	p.Options.Observers = []gateway.Observer{obs}
	p.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPut, "/x", strings.NewReader("abc")))
	if sawCtx != "observed" {
		t.Fatal("the context from Begin did not reach the handler")
	}
	if obs.last.Status != http.StatusCreated || obs.last.BytesIn != 3 || obs.last.BytesOut != 4 || obs.last.Err != nil || obs.last.Duration <= 0 {
		t.Fatalf("record %+v", obs.last)
	}
	// A path refused before routing is observed too.
	p.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/a%2Fb", nil))
	if obs.begun != 2 || obs.ended != 2 || obs.last.Status != http.StatusBadRequest || obs.last.Err == nil {
		t.Fatalf("begun %d ended %d, record %+v", obs.begun, obs.ended, obs.last)
	}
}

// injector is an UpstreamObserver that adds a field to each upstream call's
// header and remembers the calls it saw end.
type injector struct {
	countingObserver
	ended []gateway.UpstreamCall
}

func (in *injector) StartUpstream(ctx context.Context, req *gateway.Request, call *gateway.UpstreamCall, h http.Header) (context.Context, func(*gateway.UpstreamCall)) {
	h.Set("X-Injected", call.Target)
	return context.WithValue(ctx, ctxKey{}, "call"), func(c *gateway.UpstreamCall) { in.ended = append(in.ended, *c) }
}

func TestStartUpstream(t *testing.T) {
	in := &injector{}
	var sent http.Header
	var callCtx any
	p := gateway.NewPipeline(gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		sent = http.Header{}
		cctx, done := req.StartUpstream(ctx, "http", "10.0.0.5:80", sent)
		callCtx = cctx.Value(ctxKey{})
		done(http.StatusTeapot, nil)
		return nil, nil
	}))
	p.Options.Observers = []gateway.Observer{in}
	p.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	if sent.Get("X-Injected") != "10.0.0.5:80" || callCtx != "call" {
		t.Fatalf("header %v, context value %v", sent, callCtx)
	}
	if len(in.ended) != 1 || in.ended[0].Status != http.StatusTeapot || in.ended[0].Upstream != "http" || in.ended[0].Duration < 0 {
		t.Fatalf("ended %+v", in.ended)
	}
	// Unobserved, StartUpstream hands back the context and does nothing.
	req := gateway.NewRequest(httptest.NewRequest(http.MethodGet, "/", nil))
	ctx := context.Background()
	got, done := req.StartUpstream(ctx, "http", "x", http.Header{})
	done(200, nil)
	if got != ctx || len(req.UpstreamCalls()) != 0 {
		t.Fatal("an unobserved request recorded a call")
	}
	if n := testing.AllocsPerRun(100, func() { _, d := req.StartUpstream(ctx, "http", "x", nil); d(200, nil) }); n != 0 {
		t.Fatalf("%v allocations unobserved, want 0", n)
	}
}

// failingBody gives some bytes, then fails: an upstream that resets
// mid-reply.
type failingBody struct{ sent bool }

func (b *failingBody) Read(p []byte) (int, error) {
	if !b.sent {
		b.sent = true
		return copy(p, "partial"), nil
	}
	return 0, errors.New("connection reset by upstream")
}
func (b *failingBody) Close() error { return nil }

// TestObserverEndOnAbort checks that a reply cut off mid-body, which the
// gateway aborts with http.ErrAbortHandler, still ends its observation.
func TestObserverEndOnAbort(t *testing.T) {
	obs := &countingObserver{}
	p := gateway.NewPipeline(gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		return &gateway.Response{Status: http.StatusOK, Body: &failingBody{}, ContentLength: -1}, nil
	}))
	p.Options.Observers = []gateway.Observer{obs}
	p.Options.Logger = slog.New(slog.DiscardHandler)
	func() {
		defer func() {
			if v := recover(); v != http.ErrAbortHandler {
				t.Fatalf("recovered %v, want http.ErrAbortHandler", v)
			}
		}()
		p.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	}()
	if obs.begun != 1 || obs.ended != 1 || obs.last.Err == nil || obs.last.Status != http.StatusOK {
		t.Fatalf("begun %d ended %d, record %+v", obs.begun, obs.ended, obs.last)
	}
}

// TestObservedTraceAndConnect checks that refused methods are observed.
func TestObservedTraceAndConnect(t *testing.T) {
	obs := &countingObserver{}
	p := gateway.NewPipeline(gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) { return nil, nil }))
	p.Options.Observers = []gateway.Observer{obs}
	rec := httptest.NewRecorder()
	p.ServeHTTP(rec, httptest.NewRequest(http.MethodTrace, "/", nil))
	if rec.Code != http.StatusMethodNotAllowed || obs.ended != 1 || obs.last.Status != http.StatusMethodNotAllowed {
		t.Fatalf("status %d, ended %d, record %+v", rec.Code, obs.ended, obs.last)
	}
}

// TestObservedBodyLimitClosesConnection checks that a body over the limit
// still makes the server close the connection when observers wrap the
// writer (http.MaxBytesReader needs the server's own).
func TestObservedBodyLimitClosesConnection(t *testing.T) {
	p := gateway.NewPipeline(gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		_, err := req.Body()
		return nil, err
	}))
	p.Options.MaxBodyBytes = 10
	p.Options.Observers = []gateway.Observer{&countingObserver{}}
	srv := httptest.NewServer(p)
	defer srv.Close()
	body := io.MultiReader(strings.NewReader(strings.Repeat("x", 100))) // no length: chunked
	resp, err := http.Post(srv.URL, "text/plain", body)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !resp.Close {
		t.Fatalf("status %d, Connection: close %v; want 413 and the connection closed", resp.StatusCode, resp.Close)
	}
}

func TestAccessLogRedactsCredentialNames(t *testing.T) {
	var buf bytes.Buffer
	p := gateway.NewPipeline(gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) { return nil, nil }))
	p.Options.Observers = []gateway.Observer{gateway.NewAccessLog(gateway.AccessLogConfig{
		Logger: slog.New(slog.NewJSONHandler(&buf, nil)), Headers: []string{"X-Auth-Token", "X-Amz-Security-Token", "Accept"},
	})}
	r := httptest.NewRequest(http.MethodGet, "/s3?X-Amz-Signature=SIG1&X-Amz-Credential=CRED&accessToken=AT&jwt=JWT&client_assertion=CA&session_id=SID&token%5B%5D=TOKEN2&page=7", nil)
	r.Header.Set("X-Auth-Token", "HDR1")
	r.Header.Set("X-Amz-Security-Token", "HDR2")
	r.Header.Set("Accept", "text/plain")
	p.ServeHTTP(httptest.NewRecorder(), r)
	out := buf.String()
	for _, secret := range []string{"SIG1", "CRED", "AT&", "JWT&", "CA&", "SID", "TOKEN2", "HDR1", "HDR2"} {
		if strings.Contains(out, secret) {
			t.Errorf("%q reached the log: %s", secret, out)
		}
	}
	if !strings.Contains(out, "page=7") || !strings.Contains(out, "text/plain") {
		t.Errorf("harmless values were redacted: %s", out)
	}
}
