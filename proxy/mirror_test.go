package proxy_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gatekit/gatekit/gateway"
	"github.com/gatekit/gatekit/proxy"
)

// mirrorNew builds a mirror, closed (and its copies awaited) when the test
// ends.
func mirrorNew(t testing.TB, cfg proxy.MirrorConfig) *proxy.TrafficMirror {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	m, err := proxy.Mirror(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// mirrorPrimary is a primary upstream that answers at once.
var mirrorPrimary = gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
	return gateway.NewResponse(http.StatusOK, nil, []byte("primary")), nil
})

// mirrorSeen is what a shadow backend saw.
type mirrorSeen struct {
	method, path  string
	header        http.Header
	body          string
	contentLength int64
	ctxErr        error // of the backend's request context, when it replied
}

// mirrorBackend starts a backend that reports each request on the
// returned channel. With release not nil, it first reports arrival on
// arrived and waits for release to be closed before reading and replying.
func mirrorBackend(t testing.TB, arrived chan<- struct{}, release <-chan struct{}) (*httptest.Server, <-chan mirrorSeen) {
	t.Helper()
	seen := make(chan mirrorSeen, 100)
	s := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if release != nil {
			arrived <- struct{}{}
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
		body, _ := io.ReadAll(r.Body)
		seen <- mirrorSeen{r.Method, r.URL.Path, r.Header.Clone(), string(body), r.ContentLength, r.Context().Err()}
		io.WriteString(w, strings.Repeat("shadow reply ", 1000))
	})
	return s, seen
}

func mirrorServe(t *testing.T, h gateway.Handler, req *http.Request) *gateway.Response {
	t.Helper()
	resp, err := h.Serve(req.Context(), gateway.NewRequest(req))
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestMirrorShare(t *testing.T) {
	const n = 10_000
	for _, pct := range []float64{0, 0.5, 10, 25, 50, 99.9, 100} {
		t.Run(fmt.Sprint(pct), func(t *testing.T) {
			var got atomic.Int64
			m := mirrorNew(t, proxy.MirrorConfig{
				Percent:     pct,
				MaxInFlight: n,
				Upstream: gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
					got.Add(1)
					return nil, nil
				}),
			})
			h := gateway.Chain(mirrorPrimary, m.Stage())
			req := gateway.NewRequest(httptest.NewRequest("GET", "/", nil))
			for range n {
				if _, err := h.Serve(context.Background(), req); err != nil {
					t.Fatal(err)
				}
			}
			m.Wait()
			st := m.Stats()
			if st.Dropped != 0 || st.Failed != 0 || int64(st.Sent) != got.Load() {
				t.Fatalf("stats %+v, upstream saw %d", st, got.Load())
			}
			// Six standard deviations of a binomial: a false alarm about
			// once in 500 million runs.
			p := pct / 100
			want := p * n
			tol := 6 * math.Sqrt(n*p*(1-p))
			if d := math.Abs(float64(st.Sent) - want); d > tol {
				t.Errorf("copied %d of %d at %v%%, want %.0f ± %.0f", st.Sent, n, pct, want, tol)
			}
		})
	}
}

// A slow shadow does not delay the client's reply, nor a failing one break
// it.
func TestMirrorDoesNotDelayPrimary(t *testing.T) {
	arrived := make(chan struct{}, 1)
	release := make(chan struct{})
	shadow, seen := mirrorBackend(t, arrived, release)
	m := mirrorNew(t, proxy.MirrorConfig{Percent: 100, Upstream: newProxy(t, proxy.HTTPConfig{Targets: []string{shadow.URL}})})
	gw := newGateway(t, gateway.Options{}, gateway.Route{Path: "/x", Handler: gateway.NewPipeline(mirrorPrimary, m.Stage())})

	// The shadow is held until the client has its reply: if the primary
	// waited for it, this would never return.
	done := make(chan struct{})
	var status int
	var body []byte
	go func() {
		defer close(done)
		resp, err := gw.Client().Get(gw.URL + "/x")
		if err != nil {
			t.Error(err)
			return
		}
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		status = resp.StatusCode
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		close(release)
		t.Fatal("the client's reply waited for the shadow")
	}
	if status != 200 || string(body) != "primary" {
		t.Errorf("client got %d %q", status, body)
	}
	<-arrived
	close(release)
	m.Wait()
	if s := <-seen; s.path != "/x" || s.ctxErr != nil {
		t.Errorf("shadow saw %+v", s)
	}
	if st := m.Stats(); st != (proxy.MirrorStats{Sent: 1}) {
		t.Errorf("stats %+v", st)
	}
}

// A client that hangs up does not cut its shadow request short.
func TestMirrorDetachedContext(t *testing.T) {
	arrived := make(chan struct{}, 1)
	release := make(chan struct{})
	shadow, seen := mirrorBackend(t, arrived, release)
	type ctxKey struct{}
	var valueSeen atomic.Value
	shadowUp := newProxy(t, proxy.HTTPConfig{Targets: []string{shadow.URL}})
	m := mirrorNew(t, proxy.MirrorConfig{Percent: 100, Upstream: gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		valueSeen.Store(fmt.Sprint(ctx.Value(ctxKey{})))
		return shadowUp.Serve(ctx, req)
	})})
	// The primary answers only when its client has gone.
	primaryDone := make(chan error, 1)
	primary := gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		<-ctx.Done()
		primaryDone <- ctx.Err()
		return nil, ctx.Err()
	})
	h := gateway.Chain(primary, m.Stage())

	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), ctxKey{}, "kept"))
	go h.Serve(ctx, gateway.NewRequest(httptest.NewRequestWithContext(ctx, "GET", "/orders", nil)))
	<-arrived // the shadow request is at its backend
	cancel()  // the client hangs up
	if err := <-primaryDone; !errors.Is(err, context.Canceled) {
		t.Fatalf("primary: %v", err)
	}
	close(release)
	m.Wait()
	s := <-seen
	if s.ctxErr != nil || s.path != "/orders" {
		t.Errorf("shadow saw %+v", s)
	}
	if st := m.Stats(); st != (proxy.MirrorStats{Sent: 1}) {
		t.Errorf("stats %+v: the shadow failed", st)
	}
	if v := valueSeen.Load(); v != "kept" {
		t.Errorf("the shadow's context lost the client's values: %v", v)
	}
}

// mirrorFailingBody is a reply body that fails.
type mirrorFailingBody struct{}

func (mirrorFailingBody) Read([]byte) (int, error) { return 0, errors.New("connection reset") }
func (mirrorFailingBody) Close() error             { return nil }

// mirrorLog is a concurrency-safe log buffer.
type mirrorLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *mirrorLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *mirrorLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func TestMirrorFailuresDoNotReachClient(t *testing.T) {
	fn := func(f func(ctx context.Context) (*gateway.Response, error)) gateway.Handler {
		return gateway.HandlerFunc(func(ctx context.Context, _ *gateway.Request) (*gateway.Response, error) { return f(ctx) })
	}
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	hang := newBackend(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	tests := []struct {
		name       string
		upstream   gateway.Handler
		timeout    time.Duration
		wantFailed uint64
	}{
		{"error", fn(func(context.Context) (*gateway.Response, error) { return nil, errors.New("boom") }), 0, 1},
		{"problem", fn(func(context.Context) (*gateway.Response, error) {
			return nil, &gateway.Error{Status: http.StatusBadGateway}
		}), 0, 1},
		{"panic", fn(func(context.Context) (*gateway.Response, error) { panic("shadow bug") }), 0, 1},
		{"panic ErrAbortHandler", fn(func(context.Context) (*gateway.Response, error) { panic(http.ErrAbortHandler) }), 0, 1},
		{"reply body fails", fn(func(context.Context) (*gateway.Response, error) {
			return &gateway.Response{Body: mirrorFailingBody{}, ContentLength: -1}, nil
		}), 0, 1},
		{"unreachable", newProxy(t, proxy.HTTPConfig{Targets: []string{gone.URL}}), 0, 1},
		{"timeout", newProxy(t, proxy.HTTPConfig{Targets: []string{hang.URL}}), 20 * time.Millisecond, 1},
		{"timeout of a handler that honours its context", fn(func(ctx context.Context) (*gateway.Response, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		}), 20 * time.Millisecond, 1},
		{"5xx reply is no failure", fn(func(context.Context) (*gateway.Response, error) {
			return gateway.NewResponse(http.StatusServiceUnavailable, nil, []byte("down")), nil
		}), 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var logs mirrorLog
			m := mirrorNew(t, proxy.MirrorConfig{
				Percent: 100, Upstream: tc.upstream, Timeout: tc.timeout,
				Logger: slog.New(slog.NewTextHandler(&logs, nil)),
			})
			gw := newGateway(t, gateway.Options{}, gateway.Route{Path: "/x", Handler: gateway.NewPipeline(mirrorPrimary, m.Stage())})
			resp, body := get(t, gw, "/x")
			if resp.StatusCode != 200 || string(body) != "primary" {
				t.Errorf("client got %d %q", resp.StatusCode, body)
			}
			m.Wait()
			if st := m.Stats(); st.Sent != 1 || st.Failed != tc.wantFailed {
				t.Errorf("stats %+v, want 1 sent, %d failed", st, tc.wantFailed)
			}
			if logged := strings.Contains(logs.String(), "shadow requests failed"); logged != (tc.wantFailed > 0) {
				t.Errorf("log: %q", logs.String())
			}
		})
	}
}

func TestMirrorMaxInFlight(t *testing.T) {
	release := make(chan struct{})
	var calls atomic.Int64
	m := mirrorNew(t, proxy.MirrorConfig{
		Percent:     100,
		MaxInFlight: 2,
		Upstream: gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
			calls.Add(1)
			<-release
			return nil, nil
		}),
	})
	h := gateway.Chain(mirrorPrimary, m.Stage())
	serve := func() {
		t.Helper()
		mirrorServe(t, h, httptest.NewRequest("GET", "/", nil))
	}
	for range 5 {
		serve()
	}
	if st := m.Stats(); st != (proxy.MirrorStats{Sent: 2, Dropped: 3}) {
		t.Errorf("while 2 are held: stats %+v, want 2 sent, 3 dropped", st)
	}
	close(release)
	m.Wait()
	serve() // a slot is free again
	m.Wait()
	if st := m.Stats(); st != (proxy.MirrorStats{Sent: 3, Dropped: 3}) {
		t.Errorf("after release: stats %+v, want 3 sent, 3 dropped", st)
	}
	m.Close()
	serve() // closed: the primary is served, the copy dropped
	if st := m.Stats(); st != (proxy.MirrorStats{Sent: 3, Dropped: 4}) {
		t.Errorf("after Close: stats %+v, want 3 sent, 4 dropped", st)
	}
	if calls.Load() != 3 {
		t.Errorf("upstream called %d times, want 3", calls.Load())
	}
}

func TestMirrorBody(t *testing.T) {
	buffer := func(next gateway.Handler) gateway.Handler {
		return gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
			if _, err := req.Body(); err != nil {
				return nil, err
			}
			return next.Serve(ctx, req)
		})
	}
	replace := func(next gateway.Handler) gateway.Handler {
		return gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
			req.SetBody([]byte("replaced"))
			return next.Serve(ctx, req)
		})
	}
	setHeader := func(name string) gateway.Stage {
		return func(next gateway.Handler) gateway.Handler {
			return gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
				req.HTTP.Header.Set(name, "1")
				return next.Serve(ctx, req)
			})
		}
	}
	tests := []struct {
		name        string
		before      []gateway.Stage // stages before the mirror
		method      string
		body        io.Reader
		chunked     bool
		wantPrimary string
		wantShadow  string
		wantOmitted uint64
	}{
		{"buffered", []gateway.Stage{buffer}, "POST", strings.NewReader("hello"), false, "hello", "hello", 0},
		{"buffered chunked", []gateway.Stage{buffer}, "POST", strings.NewReader("hello"), true, "hello", "hello", 0},
		{"replaced", []gateway.Stage{replace}, "POST", strings.NewReader("hello"), false, "replaced", "replaced", 0},
		{"streamed", nil, "POST", strings.NewReader("hello"), false, "hello", "", 1},
		{"streamed chunked", nil, "POST", strings.NewReader("hello"), true, "hello", "", 1},
		{"no body", nil, "GET", nil, false, "", "", 0},
		{"empty body", nil, "POST", strings.NewReader(""), false, "", "", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			primaryBackend, primarySeen := mirrorBackend(t, nil, nil)
			shadowBackend, shadowSeen := mirrorBackend(t, nil, nil)
			m := mirrorNew(t, proxy.MirrorConfig{Percent: 100, Upstream: newProxy(t, proxy.HTTPConfig{Targets: []string{shadowBackend.URL}})})
			stages := append(append([]gateway.Stage{}, tc.before...), setHeader("X-Before"), m.Stage(), setHeader("X-After"))
			pipeline := gateway.NewPipeline(newProxy(t, proxy.HTTPConfig{Targets: []string{primaryBackend.URL}}), stages...)
			gw := newGateway(t, gateway.Options{}, gateway.Route{PathPrefix: "/", Handler: pipeline})

			body := tc.body
			if tc.chunked && body != nil {
				body = io.MultiReader(body) // no length known: sent chunked
			}
			req, err := http.NewRequest(tc.method, gw.URL+"/orders", body)
			if err != nil {
				t.Fatal(err)
			}
			if body != nil {
				req.Header.Set("Expect", "100-continue")
			}
			resp, _ := do(t, gw.Client(), req)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			m.Wait()
			p, s := <-primarySeen, <-shadowSeen
			if p.body != tc.wantPrimary {
				t.Errorf("primary got body %q, want %q", p.body, tc.wantPrimary)
			}
			if s.body != tc.wantShadow || s.method != tc.method || s.path != "/orders" {
				t.Errorf("shadow got %s %s with body %q, want body %q", s.method, s.path, s.body, tc.wantShadow)
			}
			if s.contentLength != int64(len(tc.wantShadow)) {
				t.Errorf("shadow Content-Length %d, body %q", s.contentLength, s.body)
			}
			if s.header.Get("X-Before") != "1" || s.header.Get("X-After") != "" {
				t.Errorf("shadow header X-Before %q, X-After %q: want the request as the mirror saw it", s.header.Get("X-Before"), s.header.Get("X-After"))
			}
			if s.header.Get("Expect") != "" {
				t.Errorf("shadow got Expect: %s", s.header.Get("Expect"))
			}
			if p.header.Get("X-Before") != "1" || p.header.Get("X-After") != "1" {
				t.Errorf("primary header: %v", p.header)
			}
			if st := m.Stats(); st != (proxy.MirrorStats{Sent: 1, BodyOmitted: tc.wantOmitted}) {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// A WebSocket handshake is served but not copied.
func TestMirrorSkipsUpgrade(t *testing.T) {
	var calls atomic.Int64
	m := mirrorNew(t, proxy.MirrorConfig{Percent: 100, Upstream: gateway.HandlerFunc(func(context.Context, *gateway.Request) (*gateway.Response, error) {
		calls.Add(1)
		return nil, nil
	})})
	h := gateway.Chain(mirrorPrimary, m.Stage())
	r := httptest.NewRequest("GET", "/ws", nil)
	r.Header.Set("Connection", "Upgrade")
	r.Header.Set("Upgrade", "websocket")
	if resp := mirrorServe(t, h, r); resp.Status != 200 {
		t.Errorf("status %d", resp.Status)
	}
	mirrorServe(t, h, httptest.NewRequest("GET", "/plain", nil))
	m.Wait()
	if calls.Load() != 1 || m.Stats() != (proxy.MirrorStats{Sent: 1}) {
		t.Errorf("%d copies, stats %+v; want only the plain request copied", calls.Load(), m.Stats())
	}
}

// After Wait, and after Close, no goroutine of the mirror is left.
func TestMirrorNoLeak(t *testing.T) {
	for _, end := range []string{"Wait", "Close"} {
		t.Run(end, func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			release := make(chan struct{})
			m, err := proxy.Mirror(proxy.MirrorConfig{Percent: 100, Upstream: gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
				<-release
				return gateway.NewResponse(200, nil, []byte("x")), nil
			})})
			if err != nil {
				t.Fatal(err)
			}
			h := gateway.Chain(mirrorPrimary, m.Stage())
			for range 10 {
				mirrorServe(t, h, httptest.NewRequest("GET", "/", nil))
			}
			close(release)
			if end == "Wait" {
				m.Wait()
			} else {
				m.Close()
			}
			if st := m.Stats(); st != (proxy.MirrorStats{Sent: 10}) {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

func TestMirrorConfigErrors(t *testing.T) {
	up := gateway.HandlerFunc(func(context.Context, *gateway.Request) (*gateway.Response, error) { return nil, nil })
	tests := []struct {
		name string
		cfg  proxy.MirrorConfig
		want string
	}{
		{"no upstream", proxy.MirrorConfig{Percent: 10}, "Upstream"},
		{"negative percent", proxy.MirrorConfig{Upstream: up, Percent: -1}, "Percent"},
		{"percent over 100", proxy.MirrorConfig{Upstream: up, Percent: 100.5}, "Percent"},
		{"NaN percent", proxy.MirrorConfig{Upstream: up, Percent: math.NaN()}, "Percent"},
		{"negative timeout", proxy.MirrorConfig{Upstream: up, Timeout: -1}, "Timeout"},
		{"negative max in flight", proxy.MirrorConfig{Upstream: up, MaxInFlight: -1}, "MaxInFlight"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := proxy.Mirror(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one naming %s", err, tc.want)
			}
		})
	}
}

// Shadow traffic: every request to /orders is also sent to a new version
// of the backend, whose replies the client never sees.
func ExampleMirror() {
	current := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "v1 served", r.URL.Path)
	}))
	defer current.Close()
	saw := make(chan string, 1)
	next := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		saw <- "v2 saw " + r.Method + " " + r.URL.Path
		w.WriteHeader(http.StatusInternalServerError) // the client never knows
	}))
	defer next.Close()

	v1, err := proxy.HTTP(proxy.HTTPConfig{Targets: []string{current.URL}})
	if err != nil {
		log.Fatal(err)
	}
	defer v1.Close()
	v2, err := proxy.HTTP(proxy.HTTPConfig{Targets: []string{next.URL}})
	if err != nil {
		log.Fatal(err)
	}
	defer v2.Close()
	mirror, err := proxy.Mirror(proxy.MirrorConfig{Upstream: v2, Percent: 100})
	if err != nil {
		log.Fatal(err)
	}
	defer mirror.Close()

	router, err := gateway.NewRouter(gateway.RouterConfig{Routes: []gateway.Route{
		{PathPrefix: "/orders", Handler: gateway.NewPipeline(v1, mirror.Stage())},
	}})
	if err != nil {
		log.Fatal(err)
	}
	gw := httptest.NewServer(router)
	defer gw.Close()

	resp, err := gw.Client().Get(gw.URL + "/orders/7")
	if err != nil {
		log.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Print(resp.StatusCode, " ", string(body))

	mirror.Wait()
	fmt.Println(<-saw)
	fmt.Printf("%+v\n", mirror.Stats())
	// Output:
	// 200 v1 served /orders/7
	// v2 saw GET /orders/7
	// {Sent:1 Dropped:0 Failed:0 BodyOmitted:0}
}
