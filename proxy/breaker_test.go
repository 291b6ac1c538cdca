package proxy

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sony/gobreaker/v2"
)

// cbBackend answers 503 while failing is set, else its name.
type cbBackend struct {
	failing atomic.Bool
	hits    atomic.Int64
	url     string
}

func newCBBackend(t testing.TB, name string) *cbBackend {
	b := &cbBackend{}
	b.url = lbBackend(t, name, func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		if b.failing.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, name)
	}).URL
	return b
}

func TestBreakerOpensHalfOpensCloses(t *testing.T) {
	b := newCBBackend(t, "a")
	u := lbUpstream(t, HTTPConfig{Targets: []string{b.url}, Breaker: &BreakerPolicy{
		FailureRatio: 0.5, MinRequests: 4, OpenFor: 100 * time.Millisecond,
	}})
	cb := u.set.Load().targets[0].breaker

	// 2 of 4 failed: the ratio is reached once MinRequests is.
	for i, fail := range []bool{false, true, false, true} {
		b.failing.Store(fail)
		lbGet(t, u)
		if st := cb.State(); (i < 3) != (st == gobreaker.StateClosed) {
			t.Fatalf("after request %d: breaker %v", i, st)
		}
	}
	// Open: rejected without reaching the backend.
	hits := b.hits.Load()
	r := lbGet(t, u)
	if r.status != http.StatusServiceUnavailable || r.err == nil {
		t.Fatalf("status %d (%v), want the gateway's 503", r.status, r.err)
	}
	if ra := r.header.Get("Retry-After"); ra != "1" {
		t.Errorf("Retry-After %q, want 1 (100ms rounded up)", ra)
	}
	if b.hits.Load() != hits {
		t.Error("an open breaker let a request through")
	}

	// Half-open: one probe; it fails, and the breaker opens again.
	lbEventually(t, "the breaker lets a probe through", func() bool { return lbGet(t, u).err == nil })
	if st := cb.State(); st != gobreaker.StateOpen {
		t.Fatalf("after a failed probe: %v, want open", st)
	}

	// The next probe succeeds and closes it.
	b.failing.Store(false)
	lbEventually(t, "the breaker closes", func() bool { return lbGet(t, u).body == "a" })
	if st := cb.State(); st != gobreaker.StateClosed {
		t.Fatalf("after a good probe: %v, want closed", st)
	}
	for range 10 {
		if r := lbGet(t, u); r.body != "a" {
			t.Fatalf("closed breaker: %d %q", r.status, r.body)
		}
	}
}

// TestBreakerPerTarget: one target's open breaker sends its traffic to the
// others; with a retry policy no request fails meanwhile beyond the first.
func TestBreakerPerTarget(t *testing.T) {
	a, b := newCBBackend(t, "a"), newCBBackend(t, "b")
	b.failing.Store(true)
	u := lbUpstream(t, HTTPConfig{
		Targets: []string{a.url, b.url},
		Breaker: &BreakerPolicy{MinRequests: 3, OpenFor: time.Hour},
	})
	for range 10 {
		lbGet(t, u)
	}
	if n := b.hits.Load(); n != 3 {
		t.Errorf("the failing target got %d requests, want 3 before its breaker opened", n)
	}
	for range 20 {
		if r := lbGet(t, u); r.body != "a" {
			t.Fatalf("got %d %q", r.status, r.body)
		}
	}
	// Every breaker open: 503 with the time until the first half-opens.
	a.failing.Store(true)
	for range 100 { // a's window holds 27 successes: it takes as many failures
		lbGet(t, u)
	}
	r := lbGet(t, u)
	secs, _ := strconv.Atoi(r.header.Get("Retry-After"))
	if r.status != http.StatusServiceUnavailable || secs < 3590 || secs > 3600 {
		t.Errorf("reply %d, Retry-After %q: want 503 and about an hour", r.status, r.header.Get("Retry-After"))
	}
}

// TestBreakerHalfOpenProbes: a half-open breaker lets HalfOpenProbes
// requests through at a time; the others go elsewhere.
func TestBreakerHalfOpenProbes(t *testing.T) {
	u := lbUpstream(t, HTTPConfig{Targets: []string{"http://a.invalid", "http://b.invalid"}, Breaker: &BreakerPolicy{HalfOpenProbes: 2, OpenFor: time.Millisecond}})
	tg := u.set.Load().targets[0]
	// Trip it by hand: 20 failures.
	for range 20 {
		done, ok := cbAllow(tg)
		if !ok {
			t.Fatal("refused while closed")
		}
		done(cbFailed)
	}
	lbEventually(t, "half-open", func() bool { return tg.breaker.State() == gobreaker.StateHalfOpen })
	var dones []func(error)
	for range 2 {
		done, ok := cbAllow(tg)
		if !ok {
			t.Fatal("probe refused")
		}
		dones = append(dones, done)
	}
	if _, ok := cbAllow(tg); ok {
		t.Fatal("a third request let through with HalfOpenProbes 2")
	}
	// choose moves on to the other target.
	f := lbFilter{now: u.now()}
	got, _, ok := u.choose(nil, u.set.Load(), &f)
	for got == tg && !ok {
		f.refused = append(f.refused, got)
		got, _, ok = u.choose(nil, u.set.Load(), &f)
	}
	if got == tg || got == nil {
		t.Errorf("chose %v, want the other target", got)
	}
	for _, d := range dones {
		d(nil)
	}
	if st := tg.breaker.State(); st != gobreaker.StateClosed {
		t.Errorf("after 2 good probes: %v", st)
	}
}

func TestBreakerConfigErrors(t *testing.T) {
	for _, p := range []BreakerPolicy{{FailureRatio: 1.5}, {FailureRatio: -0.1}, {OpenFor: -1}} {
		u, err := HTTP(HTTPConfig{Targets: []string{"http://a"}, Breaker: &p})
		if err == nil {
			u.Close()
			t.Errorf("%+v: no error", p)
		} else if !strings.Contains(err.Error(), "HTTPConfig.Breaker") {
			t.Errorf("%+v: error %q", p, err)
		}
	}
}

// cbPanicTransport panics on its first round trip, as a buggy Transport
// might, and sends the others on.
type cbPanicTransport struct {
	calls atomic.Int64
	next  *http.Transport
}

func (p *cbPanicTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if p.calls.Add(1) == 1 {
		panic("transport bug")
	}
	return p.next.RoundTrip(r)
}

// TestPanicInAttemptIsSettled: a panic in an attempt goes on up to the
// gateway (which answers 500), but first releases the target's in-flight
// count and reports a failure to its breaker: a leaked count would keep
// LeastInFlight away from the target for ever, and a half-open breaker that
// never hears of its probe would refuse every request for ever.
func TestPanicInAttemptIsSettled(t *testing.T) {
	for _, tc := range []struct {
		name    string
		breaker bool
		trip    bool // open the breaker first, and panic in its probe
		total   time.Duration
	}{
		{name: "no breaker"},
		{name: "closed breaker", breaker: true},
		{name: "half-open breaker", breaker: true, trip: true},
		{name: "half-open breaker, total timeout", breaker: true, trip: true, total: time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := lbBackend(t, "ok", nil)
			rt := &cbPanicTransport{next: &http.Transport{}}
			t.Cleanup(rt.next.CloseIdleConnections)
			cfg := HTTPConfig{Targets: []string{b.URL}, Transport: rt, Balance: LeastInFlight(), TotalTimeout: tc.total}
			if tc.breaker {
				cfg.Breaker = &BreakerPolicy{MinRequests: 1, FailureRatio: 1, OpenFor: 20 * time.Millisecond}
			}
			u := lbUpstream(t, cfg)
			tg := u.set.Load().targets[0]
			if tc.trip {
				done, _ := cbAllow(tg)
				done(cbFailed)
				lbEventually(t, "half-open", func() bool { return tg.breaker.State() == gobreaker.StateHalfOpen })
			}

			var recovered any
			func() {
				defer func() { recovered = recover() }()
				lbGet(t, u)
			}()
			if recovered != "transport bug" {
				t.Fatalf("Serve's panic: %v, want the transport's", recovered)
			}
			if n := tg.inflight.Load(); n != 0 {
				t.Errorf("in flight after the panic: %d, want 0", n)
			}
			if tc.breaker {
				// The failure counts: with MinRequests 1 it opens a closed
				// breaker, and a half-open one opens again. (cbOpenUntil,
				// not State, which may have moved on to half-open under
				// load.)
				if tg.cbOpenUntil.Load() == 0 {
					t.Errorf("breaker after the panic: %v, want it to have opened", tg.breaker.State())
				}
				lbEventually(t, "a request succeeds", func() bool { return lbGet(t, u).body == "ok" })
				if st := tg.breaker.State(); st != gobreaker.StateClosed {
					t.Errorf("breaker after a good request: %v, want closed", st)
				}
			} else if r := lbGet(t, u); r.body != "ok" {
				t.Errorf("next request: %d %q", r.status, r.body)
			}
			if n := tg.inflight.Load(); n != 0 {
				t.Errorf("in flight at the end: %d, want 0", n)
			}
		})
	}
}

// TestBreakerStateHook checks that OnStateChange hears each change of a
// target's breaker, named as metrics expect.
func TestBreakerStateHook(t *testing.T) {
	b := newCBBackend(t, "a")
	var mu sync.Mutex
	var changes []string
	u := lbUpstream(t, HTTPConfig{Targets: []string{b.url}, Breaker: &BreakerPolicy{
		FailureRatio: 0.5, MinRequests: 2, OpenFor: 50 * time.Millisecond,
		OnStateChange: func(target, from, to string) {
			mu.Lock()
			changes = append(changes, target+" "+from+"->"+to)
			mu.Unlock()
		},
	}})
	host := strings.TrimPrefix(b.url, "http://")
	b.failing.Store(true)
	lbGet(t, u)
	lbGet(t, u)
	b.failing.Store(false)
	lbEventually(t, "the breaker closes again", func() bool { return lbGet(t, u).err == nil && lbGet(t, u).err == nil })
	mu.Lock()
	defer mu.Unlock()
	want := []string{host + " closed->open", host + " open->half-open", host + " half-open->closed"}
	if len(changes) < 3 || changes[0] != want[0] || changes[1] != want[1] || changes[2] != want[2] {
		t.Fatalf("changes %q, want %q", changes, want)
	}
}
