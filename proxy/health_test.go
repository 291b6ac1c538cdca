package proxy

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatekit/gatekit/gateway"
)

// hcBackend is a backend whose /healthz answers 200 or 503 as told, and
// whose other paths answer with its name; it counts both.
type hcBackend struct {
	*httptest.Server
	sick   atomic.Bool
	probes atomic.Int64
	hits   atomic.Int64
}

func newHCBackend(t testing.TB, name string) *hcBackend {
	b := &hcBackend{}
	b.Server = lbBackend(t, name, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			b.probes.Add(1)
			if b.sick.Load() {
				w.WriteHeader(http.StatusServiceUnavailable)
			}
			return
		}
		b.hits.Add(1)
		io.WriteString(w, name)
	})
	return b
}

// hcAllFrom reports whether the next n requests are all served by name.
func hcAllFrom(t testing.TB, u *HTTPUpstream, name string, n int) bool {
	for range n {
		if r := lbGet(t, u); r.body != name {
			return false
		}
	}
	return true
}

func TestHealthCheckEjectsAndReturns(t *testing.T) {
	a, b := newHCBackend(t, "a"), newHCBackend(t, "b")
	u := lbUpstream(t, HTTPConfig{
		Targets:     []string{a.URL, b.URL},
		HealthCheck: &HealthCheck{Path: "/healthz", Interval: 20 * time.Millisecond, Timeout: time.Second, Healthy: 2, Unhealthy: 2},
	})
	if r1, r2 := lbGet(t, u), lbGet(t, u); r1.body == r2.body {
		t.Fatalf("replies %q and %q: both targets should serve while healthy", r1.body, r2.body)
	}

	b.sick.Store(true)
	lbEventually(t, "b is taken out", func() bool { return hcAllFrom(t, u, "a", 10) })
	hits := b.hits.Load()
	if !hcAllFrom(t, u, "a", 50) || b.hits.Load() != hits {
		t.Error("an unhealthy target got traffic")
	}

	b.sick.Store(false)
	lbEventually(t, "b is back", func() bool { return lbGet(t, u).body == "b" })

	a.sick.Store(true)
	b.sick.Store(true)
	lbEventually(t, "both are out", func() bool { return lbGet(t, u).status == http.StatusServiceUnavailable })
	r := lbGet(t, u)
	if ra := r.header.Get("Retry-After"); ra == "" {
		t.Errorf("503 without Retry-After")
	}
}

// TestHealthCheckThresholds: a target goes down after Unhealthy failed
// probes in a row and comes back after Healthy good ones.
func TestHealthCheckThresholds(t *testing.T) {
	u := &HTTPUpstream{health: &HealthCheck{Healthy: 2, Unhealthy: 3}}
	tg := &lbTarget{}
	steps := []struct {
		ok   bool
		down bool
	}{
		{false, false}, {false, false}, {true, false}, // a good probe resets the count
		{false, false}, {false, false}, {false, true},
		{true, true}, {false, true}, {true, true}, {true, false},
	}
	for i, st := range steps {
		u.hcRecord(tg, st.ok)
		if got := tg.hcDown.Load(); got != st.down {
			t.Fatalf("after probe %d (ok %v): down = %v, want %v", i, st.ok, got, st.down)
		}
	}
}

func TestHealthCheckExpectStatusAndTimeout(t *testing.T) {
	tests := []struct {
		name   string
		hc     HealthCheck
		status int
		delay  bool
		down   bool
	}{
		{"204 is healthy by default", HealthCheck{}, 204, false, false},
		{"404 is not", HealthCheck{}, 404, false, true},
		{"custom expectation", HealthCheck{ExpectStatus: func(s int) bool { return s == 418 }}, 418, false, false},
		{"slow probe fails", HealthCheck{Timeout: 20 * time.Millisecond}, 200, true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stop := make(chan struct{})
			t.Cleanup(func() { close(stop) })
			s := lbBackend(t, "", func(w http.ResponseWriter, r *http.Request) {
				if tc.delay {
					select {
					case <-r.Context().Done():
					case <-stop:
					}
				}
				w.WriteHeader(tc.status)
			})
			hc := tc.hc
			hc.Path, hc.Interval, hc.Unhealthy, hc.Healthy = "/healthz", 10*time.Millisecond, 1, 1
			u := lbUpstream(t, HTTPConfig{Targets: []string{s.URL}, HealthCheck: &hc})
			u.hcRound(t.Context())
			if got := u.set.Load().targets[0].hcDown.Load(); got != tc.down {
				t.Errorf("down = %v, want %v", got, tc.down)
			}
		})
	}
}

func TestPassiveEjection(t *testing.T) {
	const failures = 3
	var failing atomic.Bool
	failing.Store(true)
	a := newHCBackend(t, "a")
	var bHits atomic.Int64
	b := lbBackend(t, "b", func(w http.ResponseWriter, r *http.Request) {
		bHits.Add(1)
		if failing.Load() {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		io.WriteString(w, "b")
	})

	t.Run("ejected after consecutive failures", func(t *testing.T) {
		bHits.Store(0)
		u := lbUpstream(t, HTTPConfig{Targets: []string{a.URL, b.URL}, Passive: &PassiveHealth{Failures: failures, Cooldown: time.Hour}})
		for range 100 {
			lbGet(t, u)
		}
		if n := bHits.Load(); n != failures {
			t.Errorf("the failing target got %d requests, want %d", n, failures)
		}
	})

	t.Run("a success resets the count", func(t *testing.T) {
		u := lbUpstream(t, HTTPConfig{Targets: []string{b.URL}, Passive: &PassiveHealth{Failures: failures, Cooldown: time.Hour}})
		for i := range 20 {
			failing.Store(i%failures != 0) // never 3 failures in a row
			if r := lbGet(t, u); r.status == http.StatusServiceUnavailable && r.err != nil {
				t.Fatalf("request %d: ejected though the failures were not consecutive", i)
			}
		}
		failing.Store(true)
	})

	t.Run("back after the cool-down", func(t *testing.T) {
		bHits.Store(0)
		u := lbUpstream(t, HTTPConfig{Targets: []string{a.URL, b.URL}, Passive: &PassiveHealth{Failures: failures, Cooldown: 50 * time.Millisecond}})
		lbEventually(t, "b is ejected", func() bool {
			lbGet(t, u)
			return u.set.Load().targets[1].ejectedUntil.Load() > u.now()
		})
		failing.Store(false)
		lbEventually(t, "b serves again", func() bool { return lbGet(t, u).body == "b" })
		failing.Store(true)
	})

	t.Run("connection refused counts", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		down := "http://" + ln.Addr().String()
		ln.Close()
		u := lbUpstream(t, HTTPConfig{Targets: []string{a.URL, down}, Passive: &PassiveHealth{Failures: 1, Cooldown: time.Hour}})
		bad := 0
		for range 20 {
			if r := lbGet(t, u); r.body != "a" {
				bad++
			}
		}
		if bad != 1 {
			t.Errorf("%d requests failed, want 1 before the dead target was ejected", bad)
		}
	})
}

// TestAllUnavailable answers 503 problem with Retry-After through a
// pipeline.
func TestAllUnavailable(t *testing.T) {
	b := lbBackend(t, "", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusBadGateway) })
	u := lbUpstream(t, HTTPConfig{Targets: []string{b.URL}, Passive: &PassiveHealth{Failures: 1, Cooldown: 90 * time.Second}})
	p := gateway.NewPipeline(u)
	serve := func() *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		p.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
		return w
	}
	if w := serve(); w.Code != http.StatusBadGateway {
		t.Fatalf("first reply %d, want the backend's 502", w.Code)
	}
	w := serve()
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Content-Type") != gateway.ProblemContentType {
		t.Fatalf("reply %d %s, want a 503 problem", w.Code, w.Header().Get("Content-Type"))
	}
	if s, err := strconv.Atoi(w.Header().Get("Retry-After")); err != nil || s < 89 || s > 90 {
		t.Errorf("Retry-After %q, want the 90s cool-down", w.Header().Get("Retry-After"))
	}
}

// TestCloseStopsHealthChecks: no probe is sent after Close (goleak in
// TestMain checks that the goroutines are gone).
func TestCloseStopsHealthChecks(t *testing.T) {
	a := newHCBackend(t, "a")
	u, err := HTTP(HTTPConfig{Targets: []string{a.URL}, HealthCheck: &HealthCheck{Path: "/healthz", Interval: 5 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	lbEventually(t, "probes run", func() bool { return a.probes.Load() >= 3 })
	u.Close()
	// A probe sent just before Close may reach the backend just after it
	// (its context is cancelled, but the request was on the wire): let
	// the arrivals settle, a quiet spell of twenty intervals, first.
	n := a.probes.Load()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		m := a.probes.Load()
		if m == n {
			break
		}
		n = m
	}
	time.Sleep(50 * time.Millisecond) // ten intervals: any probe would show
	if m := a.probes.Load(); m != n {
		t.Errorf("%d probes after Close", m-n)
	}
	if r := lbGet(t, u); r.body != "a" {
		t.Errorf("after Close: %d %q, want the upstream still usable", r.status, r.body)
	}
	u.Close()
}

func TestHealthConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  HTTPConfig
		want string
	}{
		{"relative path", HTTPConfig{Targets: []string{"http://a"}, HealthCheck: &HealthCheck{Path: "healthz"}}, "HealthCheck.Path"},
		{"no path", HTTPConfig{Targets: []string{"http://a"}, HealthCheck: &HealthCheck{}}, "HealthCheck.Path"},
		{"negative interval", HTTPConfig{Targets: []string{"http://a"}, HealthCheck: &HealthCheck{Path: "/", Interval: -1}}, "must not be negative"},
		{"negative failures", HTTPConfig{Targets: []string{"http://a"}, Passive: &PassiveHealth{Failures: -1}}, "Passive"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u, err := HTTP(tc.cfg)
			if err == nil {
				u.Close()
				t.Fatal("no error")
			}
			if !strings.HasPrefix(err.Error(), "proxy: ") && strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

// TestReady checks the readiness an upstream reports: ready while a
// target can take requests, ErrNoTarget once every target is ejected.
func TestReady(t *testing.T) {
	down := lbBackend(t, "down", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusBadGateway) })
	u := lbUpstream(t, HTTPConfig{Targets: []string{down.URL}, Passive: &PassiveHealth{Failures: 1, Cooldown: time.Hour}})
	if err := u.Ready(); err != nil {
		t.Fatalf("before any failure: %v", err)
	}
	lbGet(t, u)
	if err := u.Ready(); !errors.Is(err, ErrNoTarget) {
		t.Fatalf("with its only target ejected: %v, want ErrNoTarget", err)
	}
}
