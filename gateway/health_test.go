package gateway_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatekit/gatekit/gateway"
)

// probeHealth sends method to h and returns the status and body.
func probeHealth(h http.Handler, method string) (int, string, http.Header) {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, "/", nil))
	return rec.Code, rec.Body.String(), rec.Header()
}

func TestHealthLive(t *testing.T) {
	failing, err := gateway.NewHealth(gateway.HealthConfig{Checks: []gateway.ReadinessCheck{
		{Name: "db", Check: func(context.Context) error { return errors.New("down") }},
	}})
	if err != nil {
		t.Fatal(err)
	}
	draining := new(gateway.Health)
	draining.SetDraining(true)
	tests := []struct {
		name       string
		h          *gateway.Health
		method     string
		wantStatus int
		wantBody   string
	}{
		{"zero value", new(gateway.Health), "GET", 200, `{"status":"ok"}`},
		{"failing check does not matter", failing, "GET", 200, `{"status":"ok"}`},
		{"draining does not matter", draining, "GET", 200, `{"status":"ok"}`},
		{"head", new(gateway.Health), "HEAD", 200, ``},
		{"post", new(gateway.Health), "POST", 405, `{"status":"method not allowed"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body, hdr := probeHealth(tc.h.Live(), tc.method)
			if status != tc.wantStatus || strings.TrimSpace(body) != tc.wantBody {
				t.Fatalf("got %d %q, want %d %q", status, body, tc.wantStatus, tc.wantBody)
			}
			if ct, cc := hdr.Get("Content-Type"), hdr.Get("Cache-Control"); ct != "application/json" || cc != "no-store" {
				t.Fatalf("Content-Type %q, Cache-Control %q", ct, cc)
			}
		})
	}
}

func TestHealthReady(t *testing.T) {
	pass := func(context.Context) error { return nil }
	fail := func(msg string) func(context.Context) error {
		return func(context.Context) error { return errors.New(msg) }
	}
	waitForDeadline := func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
	stuck := make(chan struct{})
	t.Cleanup(func() { close(stuck) }) // lets the check that ignores ctx end
	ignoreDeadline := func(context.Context) error { <-stuck; return nil }

	tests := []struct {
		name       string
		cfg        gateway.HealthConfig
		draining   bool
		method     string
		wantStatus int
		wantBody   string
	}{
		{
			name:       "no checks",
			wantStatus: 200, wantBody: `{"status":"ready"}`,
		},
		{
			name:       "passing checks",
			cfg:        gateway.HealthConfig{Checks: []gateway.ReadinessCheck{{Name: "users", Check: pass}, {Name: "jwks", Check: pass}}},
			wantStatus: 200, wantBody: `{"status":"ready","checks":{"jwks":"ok","users":"ok"}}`,
		},
		{
			name:       "failing check is named",
			cfg:        gateway.HealthConfig{Checks: []gateway.ReadinessCheck{{Name: "users", Check: pass}, {Name: "orders", Check: fail("no healthy backend")}}},
			wantStatus: 503, wantBody: `{"status":"not ready","checks":{"orders":"no healthy backend","users":"ok"}}`,
		},
		{
			name:       "check that honours the deadline times out",
			cfg:        gateway.HealthConfig{Timeout: 20 * time.Millisecond, Checks: []gateway.ReadinessCheck{{Name: "slow", Check: waitForDeadline}, {Name: "users", Check: pass}}},
			wantStatus: 503, wantBody: `{"status":"not ready","checks":{"slow":"timed out after 20ms","users":"ok"}}`,
		},
		{
			name:       "check that ignores the deadline times out",
			cfg:        gateway.HealthConfig{Timeout: 20 * time.Millisecond, Checks: []gateway.ReadinessCheck{{Name: "stuck", Check: ignoreDeadline}}},
			wantStatus: 503, wantBody: `{"status":"not ready","checks":{"stuck":"timed out after 20ms"}}`,
		},
		{
			name:       "panicking check fails",
			cfg:        gateway.HealthConfig{Logger: quietLogger(), Checks: []gateway.ReadinessCheck{{Name: "bad", Check: func(context.Context) error { panic("boom") }}}},
			wantStatus: 503, wantBody: `{"status":"not ready","checks":{"bad":"check failed"}}`,
		},
		{
			name:       "long error text is cut",
			cfg:        gateway.HealthConfig{Checks: []gateway.ReadinessCheck{{Name: "chatty", Check: fail(strings.Repeat("é", 150))}}},
			wantStatus: 503, wantBody: `{"status":"not ready","checks":{"chatty":"` + strings.Repeat("é", 98) + `..."}}`,
		},
		{
			name:       "draining",
			cfg:        gateway.HealthConfig{Checks: []gateway.ReadinessCheck{{Name: "users", Check: pass}}},
			draining:   true,
			wantStatus: 503, wantBody: `{"status":"draining"}`,
		},
		{
			name:       "head",
			cfg:        gateway.HealthConfig{Checks: []gateway.ReadinessCheck{{Name: "users", Check: fail("down")}}},
			method:     "HEAD",
			wantStatus: 503, wantBody: ``,
		},
		{
			name:       "post",
			method:     "POST",
			wantStatus: 405, wantBody: `{"status":"method not allowed"}`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, err := gateway.NewHealth(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			h.SetDraining(tc.draining)
			method := tc.method
			if method == "" {
				method = "GET"
			}
			status, body, _ := probeHealth(h.Ready(), method)
			if status != tc.wantStatus || strings.TrimSpace(body) != tc.wantBody {
				t.Fatalf("got %d %s, want %d %s", status, body, tc.wantStatus, tc.wantBody)
			}
		})
	}
}

func TestHealthReadyCaches(t *testing.T) {
	tests := []struct {
		name      string
		cacheFor  time.Duration
		wantCalls int64
	}{
		{"cached", time.Hour, 1},
		{"not cached", -1, 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int64
			h, err := gateway.NewHealth(gateway.HealthConfig{CacheFor: tc.cacheFor, Checks: []gateway.ReadinessCheck{
				{Name: "count", Check: func(context.Context) error { calls.Add(1); return nil }},
			}})
			if err != nil {
				t.Fatal(err)
			}
			for range 5 {
				if status, body, _ := probeHealth(h.Ready(), "GET"); status != 200 {
					t.Fatalf("got %d %s", status, body)
				}
			}
			if n := calls.Load(); n != tc.wantCalls {
				t.Fatalf("check ran %d times, want %d", n, tc.wantCalls)
			}
			// Draining shows at once, whatever is cached.
			h.SetDraining(true)
			if status, _, _ := probeHealth(h.Ready(), "GET"); status != 503 {
				t.Fatalf("draining: got %d", status)
			}
			h.SetDraining(false)
			if status, _, _ := probeHealth(h.Ready(), "GET"); status != 200 {
				t.Fatalf("no longer draining: got %d", status)
			}
		})
	}
}

// TestHealthReadyCacheExpires polls until a result older than CacheFor is
// replaced by a new run.
func TestHealthReadyCacheExpires(t *testing.T) {
	var up atomic.Bool
	up.Store(true)
	h, err := gateway.NewHealth(gateway.HealthConfig{CacheFor: time.Millisecond, Checks: []gateway.ReadinessCheck{
		{Name: "flag", Check: func(context.Context) error {
			if !up.Load() {
				return errors.New("down")
			}
			return nil
		}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if status, _, _ := probeHealth(h.Ready(), "GET"); status != 200 {
		t.Fatalf("got %d, want 200", status)
	}
	up.Store(false)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if status, _, _ := probeHealth(h.Ready(), "GET"); status == 503 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("readiness still served the cached result after 10s")
		}
		time.Sleep(time.Millisecond) // polling for the cache to expire
	}
}

// TestHealthReadyConcurrent sends many readiness requests at once over real
// connections: they share one run of the checks, and all get its answer.
func TestHealthReadyConcurrent(t *testing.T) {
	var calls atomic.Int64
	started, release := make(chan struct{}), make(chan struct{})
	h, err := gateway.NewHealth(gateway.HealthConfig{CacheFor: time.Hour, Checks: []gateway.ReadinessCheck{
		{Name: "once", Check: func(ctx context.Context) error {
			if calls.Add(1) == 1 {
				close(started)
			}
			<-release
			return errors.New("warming up")
		}},
		{Name: "other", Check: func(context.Context) error { return nil }},
	}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h.Ready())
	defer srv.Close()
	client := srv.Client()
	defer client.CloseIdleConnections()

	const n = 20
	var wg sync.WaitGroup
	errc := make(chan error, n)
	for range n {
		wg.Go(func() {
			resp, err := client.Get(srv.URL)
			if err != nil {
				errc <- err
				return
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			want := `{"status":"not ready","checks":{"once":"warming up","other":"ok"}}`
			if err != nil || resp.StatusCode != 503 || strings.TrimSpace(string(b)) != want {
				errc <- fmt.Errorf("got %d %s %v", resp.StatusCode, b, err)
			}
		})
	}
	<-started
	close(release)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	if c := calls.Load(); c != 1 {
		t.Fatalf("the check ran %d times for concurrent requests, want 1", c)
	}
}

func TestNewHealthConfigErrors(t *testing.T) {
	ok := func(context.Context) error { return nil }
	tests := []struct {
		name   string
		checks []gateway.ReadinessCheck
	}{
		{"no name", []gateway.ReadinessCheck{{Check: ok}}},
		{"no func", []gateway.ReadinessCheck{{Name: "a"}}},
		{"duplicate name", []gateway.ReadinessCheck{{Name: "a", Check: ok}, {Name: "a", Check: ok}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := gateway.NewHealth(gateway.HealthConfig{Checks: tc.checks}); err == nil {
				t.Fatal("NewHealth accepted a bad configuration")
			}
		})
	}
}

// Liveness and readiness next to the gateway. A readiness check is a plain
// function; here one stands in for an upstream's health, as an application
// would write with its proxy upstream.
func ExampleHealth() {
	var backendUp atomic.Bool // in an application: the upstream's health
	backendUp.Store(true)
	health, err := gateway.NewHealth(gateway.HealthConfig{
		Checks: []gateway.ReadinessCheck{{
			Name: "users-api",
			Check: func(ctx context.Context) error {
				if !backendUp.Load() {
					return errors.New("no healthy backend") // shown to the prober: short, no secrets
				}
				return nil
			},
		}},
		CacheFor: -1, // so that the example sees every change at once
	})
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /livez", health.Live())
	mux.Handle("GET /readyz", health.Ready())
	// mux.Handle("/", router)
	// srv := &gateway.Server{Addr: ":8080", Handler: mux, Health: health, DrainDelay: 5 * time.Second}

	get := func(path string) {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		fmt.Println(path, rec.Code, strings.TrimSpace(rec.Body.String()))
	}
	get("/livez")
	get("/readyz")
	backendUp.Store(false)
	get("/readyz")
	health.SetDraining(true) // what Server does when its shutdown begins
	get("/readyz")
	get("/livez")
	// Output:
	// /livez 200 {"status":"ok"}
	// /readyz 200 {"status":"ready","checks":{"users-api":"ok"}}
	// /readyz 503 {"status":"not ready","checks":{"users-api":"no healthy backend"}}
	// /readyz 503 {"status":"draining"}
	// /livez 200 {"status":"ok"}
}
