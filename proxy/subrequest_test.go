package proxy_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/gatekit/gatekit/gateway"
	"github.com/gatekit/gatekit/proxy"
)

// TestSubRequestsKeepTheClient checks that an aggregate's sub-request and a
// mirrored copy reach the backend as the client's, like the direct
// request: the client behind a trusted proxy keeps its X-Forwarded-For.
func TestSubRequestsKeepTheClient(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.URL.Path+" "+r.Header.Get("X-Forwarded-For"))
		mu.Unlock()
		io.WriteString(w, `{"a":1}`)
	}))
	defer backend.Close()
	up, err := proxy.HTTP(proxy.HTTPConfig{Targets: []string{backend.URL}})
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	agg, err := proxy.Aggregate(proxy.AggregateConfig{Backends: []proxy.AggregateBackend{{Name: "x", Upstream: up, Path: "/sub", Key: "x"}}})
	if err != nil {
		t.Fatal(err)
	}
	mirror, err := proxy.Mirror(proxy.MirrorConfig{Upstream: up, Percent: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer mirror.Close()
	for _, h := range []gateway.Handler{up, agg} {
		p := gateway.NewPipeline(h, mirror.Stage())
		p.Options.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
		r := httptest.NewRequest(http.MethodGet, "/direct", nil)
		r.RemoteAddr = "10.0.0.1:1234"
		r.Header.Set("X-Forwarded-For", "1.2.3.4")
		rec := httptest.NewRecorder()
		p.ServeHTTP(rec, r)
		if rec.Code != http.StatusOK {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		mirror.Wait()
	}
	mu.Lock()
	defer mu.Unlock()
	sort.Strings(seen)
	// direct, its mirror copy, the aggregate's sub-request, and the
	// mirror copy of the aggregate's request.
	want := []string{"/direct 1.2.3.4, 10.0.0.1", "/direct 1.2.3.4, 10.0.0.1", "/direct 1.2.3.4, 10.0.0.1", "/sub 1.2.3.4, 10.0.0.1"}
	if len(seen) != len(want) {
		t.Fatalf("backend saw %q, want %q", seen, want)
	}
	for i := range want {
		if seen[i] != want[i] {
			t.Fatalf("backend saw %q, want %q", seen, want)
		}
	}
}

// callCatcher is an UpstreamObserver: it adds a header to each call and
// keeps the calls the request made.
type callCatcher struct {
	mu    sync.Mutex
	calls []gateway.UpstreamCall
}

func (c *callCatcher) Begin(ctx context.Context, req *gateway.Request) context.Context { return ctx }
func (c *callCatcher) End(ctx context.Context, req *gateway.Request, rec *gateway.Record) {
	c.mu.Lock()
	c.calls = append([]gateway.UpstreamCall(nil), req.UpstreamCalls()...)
	c.mu.Unlock()
}
func (c *callCatcher) StartUpstream(ctx context.Context, req *gateway.Request, call *gateway.UpstreamCall, h http.Header) (context.Context, func(*gateway.UpstreamCall)) {
	if h != nil {
		h.Set("X-Call-Target", call.Target)
	}
	return ctx, nil
}

// TestUpstreamCallsObserved checks that HTTP upstream calls, an
// aggregate's branches included, reach the request's observers, and that
// an observer's header goes out with each call.
func TestUpstreamCallsObserved(t *testing.T) {
	var mu sync.Mutex
	var injected []string
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		injected = append(injected, r.Header.Get("X-Call-Target"))
		mu.Unlock()
		io.WriteString(w, `{"ok":true}`)
	}))
	defer backend.Close()
	up, err := proxy.HTTP(proxy.HTTPConfig{Targets: []string{backend.URL}})
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	agg, err := proxy.Aggregate(proxy.AggregateConfig{Backends: []proxy.AggregateBackend{
		{Name: "a", Upstream: up, Path: "/a", Key: "a"},
		{Name: "b", Upstream: up, Path: "/b", Key: "b"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	host := strings.TrimPrefix(backend.URL, "http://")
	for _, tc := range []struct {
		name  string
		h     gateway.Handler
		calls int
	}{{"direct", up, 1}, {"aggregate", agg, 2}} {
		t.Run(tc.name, func(t *testing.T) {
			cc := &callCatcher{}
			p := gateway.NewPipeline(tc.h)
			p.Options.Observers = []gateway.Observer{cc}
			mu.Lock()
			injected = nil
			mu.Unlock()
			rec := httptest.NewRecorder()
			p.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/x", nil))
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d", rec.Code)
			}
			if len(cc.calls) != tc.calls {
				t.Fatalf("observed %d calls, want %d: %+v", len(cc.calls), tc.calls, cc.calls)
			}
			for _, c := range cc.calls {
				if c.Upstream != "http" || c.Target != host || c.Status != http.StatusOK || c.Err != nil {
					t.Fatalf("call %+v", c)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if len(injected) != tc.calls || injected[0] != host {
				t.Fatalf("backend saw X-Call-Target %q", injected)
			}
		})
	}
}

// TestInProcessCallsObserved checks that function, Lambda and mock
// upstreams record their calls for observers too.
func TestInProcessCallsObserved(t *testing.T) {
	fn, err := proxy.Function(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		return gateway.NewResponse(http.StatusAccepted, nil, nil), nil
	}, proxy.FunctionConfig{Name: "greet"})
	if err != nil {
		t.Fatal(err)
	}
	lambda, err := proxy.Lambda(proxy.LambdaHandlerFunc(func(ctx context.Context, payload []byte) ([]byte, error) {
		return []byte(`{"statusCode":201}`), nil
	}), proxy.LambdaConfig{Name: "orders"})
	if err != nil {
		t.Fatal(err)
	}
	mock, err := proxy.Mock(proxy.MockConfig{Default: &proxy.MockResponse{Status: http.StatusTeapot}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		h            gateway.Handler
		kind, target string
		status       int
	}{{fn, "function", "greet", 202}, {lambda, "lambda", "orders", 201}, {mock, "mock", "mock", 418}} {
		cc := &callCatcher{}
		p := gateway.NewPipeline(tc.h)
		p.Options.Observers = []gateway.Observer{cc}
		p.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
		if len(cc.calls) != 1 || cc.calls[0].Upstream != tc.kind || cc.calls[0].Target != tc.target || cc.calls[0].Status != tc.status {
			t.Errorf("%s: calls %+v", tc.kind, cc.calls)
		}
	}
}
