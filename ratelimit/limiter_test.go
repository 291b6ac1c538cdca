package ratelimit_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatekit/gatekit/gateway"
	"github.com/gatekit/gatekit/ratelimit"
)

// clock is a clock the test moves by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func mustLimiter(t testing.TB, cfg ratelimit.Config) *ratelimit.Limiter {
	t.Helper()
	l, err := ratelimit.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestLimiterRateAndBurst(t *testing.T) {
	tests := []struct {
		name       string
		rate       int
		per        time.Duration
		burst      int
		interval   time.Duration // time to earn one token
		wantWindow int64         // w: seconds to fill from empty, rounded up
	}{
		{"10 per second, burst 5", 10, time.Second, 5, 100 * time.Millisecond, 1},
		{"100 per minute, burst 20", 100, time.Minute, 20, 600 * time.Millisecond, 12},
		{"1 per hour, burst 1", 1, time.Hour, 1, time.Hour, 3600},
		{"3 per second, default burst", 3, time.Second, 0, time.Second / 3, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock()
			l := mustLimiter(t, ratelimit.Config{Name: "t", Rate: tc.rate, Per: tc.per, Burst: tc.burst, Now: clk.Now})
			burst := tc.burst
			if burst == 0 {
				burst = tc.rate
			}
			ctx := context.Background()
			// A new key starts full: burst requests back to back.
			for i := range burst {
				res, _ := l.Allow(ctx, []byte("k"))
				if !res.Allowed {
					t.Fatalf("request %d of the burst refused", i+1)
				}
				if want := int64(burst - i - 1); res.Remaining != want {
					t.Fatalf("request %d: Remaining %d, want %d", i+1, res.Remaining, want)
				}
				if res.Limit != int64(burst) {
					t.Fatalf("Limit %d, want %d", res.Limit, burst)
				}
			}
			res, _ := l.Allow(ctx, []byte("k"))
			if res.Allowed {
				t.Fatal("request past the burst admitted")
			}
			if res.RetryAfter < tc.interval || res.RetryAfter > tc.interval+time.Microsecond {
				t.Fatalf("RetryAfter %v, want %v", res.RetryAfter, tc.interval)
			}
			if want := time.Duration(burst) * tc.interval; res.Reset < want-time.Microsecond || res.Reset > want+time.Microsecond {
				t.Fatalf("Reset %v, want %v", res.Reset, want)
			}
			// Just before the token is earned: still refused.
			clk.Advance(tc.interval - time.Millisecond)
			if res, _ := l.Allow(ctx, []byte("k")); res.Allowed {
				t.Fatal("admitted before a token was earned")
			}
			clk.Advance(time.Millisecond)
			if res, _ := l.Allow(ctx, []byte("k")); !res.Allowed {
				t.Fatal("refused once a token was earned")
			}
			if res, _ := l.Allow(ctx, []byte("k")); res.Allowed {
				t.Fatal("one token earned, two spent")
			}
			// Another key has a bucket of its own.
			if res, _ := l.Allow(ctx, []byte("other")); !res.Allowed {
				t.Fatal("another key was refused")
			}
			// After a long idle time the bucket is full again, not fuller.
			clk.Advance(100 * time.Duration(burst) * tc.interval)
			for i := range burst {
				if res, _ := l.Allow(ctx, []byte("k")); !res.Allowed {
					t.Fatalf("after idling, request %d refused", i+1)
				}
			}
			if res, _ := l.Allow(ctx, []byte("k")); res.Allowed {
				t.Fatal("after idling, the bucket held more than its burst")
			}
			if s := l.Stats(); s.Refused != 4 {
				t.Fatalf("Stats %+v, want 4 refused", s)
			}
		})
	}
}

// TestRetryAfterNeverEarly checks, across many arrival patterns, that a
// client that waits exactly Retry-After (whole seconds) is admitted, and
// that the RateLimit fields match the limiter's state.
func TestRetryAfterNeverEarly(t *testing.T) {
	for _, tc := range []struct {
		rate, burst int
		per         time.Duration
	}{{1, 1, 1500 * time.Millisecond}, {7, 3, time.Minute}, {5, 5, time.Second}, {2, 10, 3 * time.Second}} {
		t.Run(strconv.Itoa(tc.rate)+"/"+tc.per.String(), func(t *testing.T) {
			clk := newClock()
			l := mustLimiter(t, ratelimit.Config{Name: "r", Rate: tc.rate, Per: tc.per, Burst: tc.burst, Now: clk.Now})
			h := limitHandler(l)
			for step := range 200 {
				clk.Advance(time.Duration(step%13) * 37 * time.Millisecond)
				rec := serve(h, httptest.NewRequest(http.MethodGet, "/", nil))
				if rec.Code == http.StatusOK {
					continue
				}
				if rec.Code != http.StatusTooManyRequests {
					t.Fatalf("status %d", rec.Code)
				}
				retry, err := strconv.Atoi(rec.Header().Get("Retry-After"))
				if err != nil || retry < 1 {
					t.Fatalf("Retry-After %q", rec.Header().Get("Retry-After"))
				}
				checkRateLimitFields(t, rec.Header(), "r", 0)
				clk.Advance(time.Duration(retry) * time.Second)
				if rec := serve(h, httptest.NewRequest(http.MethodGet, "/", nil)); rec.Code != http.StatusOK {
					t.Fatalf("step %d: refused again after waiting Retry-After %d s", step, retry)
				}
			}
		})
	}
}

// checkRateLimitFields checks the RateLimit fields name the policy and, when
// wantR >= 0, that r is wantR.
func checkRateLimitFields(t *testing.T, h http.Header, name string, wantR int) {
	t.Helper()
	pol, rl := h.Get(ratelimit.PolicyHeader), h.Get(ratelimit.RateLimitHeader)
	if !strings.HasPrefix(pol, `"`+name+`";q=`) || !strings.Contains(pol, ";w=") {
		t.Fatalf("RateLimit-Policy %q", pol)
	}
	if !strings.HasPrefix(rl, `"`+name+`";r=`+strconv.Itoa(wantR)+";t=") && wantR >= 0 {
		t.Fatalf("RateLimit %q, want r=%d", rl, wantR)
	}
}

func limitHandler(l gateway.Limiter) http.Handler {
	return gateway.NewPipeline(gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		return gateway.NewResponse(http.StatusOK, nil, []byte("ok")), nil
	}), gateway.Limit(l))
}

func serve(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}

func TestLimiterReplies(t *testing.T) {
	clk := newClock()
	l := mustLimiter(t, ratelimit.Config{Name: "per-client", Rate: 100, Per: time.Minute, Burst: 3, Headers: true, Key: ratelimit.ByClientIP(), Now: clk.Now})
	h := limitHandler(l)
	for i := range 3 {
		rec := serve(h, httptest.NewRequest(http.MethodGet, "/", nil))
		if rec.Code != http.StatusOK {
			t.Fatalf("request %d: %d", i, rec.Code)
		}
		if got, want := rec.Header().Get(ratelimit.PolicyHeader), `"per-client";q=3;w=2`; got != want {
			t.Fatalf("RateLimit-Policy %q, want %q", got, want)
		}
		// 2-i tokens left; the bucket is full again in (i+1)*0.6 s.
		want := `"per-client";r=` + strconv.Itoa(2-i) + ";t=" + strconv.Itoa(int(ceil(time.Duration(i+1)*600*time.Millisecond)))
		if got := rec.Header().Get(ratelimit.RateLimitHeader); got != want {
			t.Fatalf("request %d: RateLimit %q, want %q", i, got, want)
		}
	}
	rec := serve(h, httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Code != http.StatusTooManyRequests {
		t.Fatalf("status %d, want 429", rec.Code)
	}
	if ct := rec.Header().Get("Content-Type"); ct != gateway.ProblemContentType {
		t.Fatalf("Content-Type %q", ct)
	}
	if got := rec.Header().Get("Retry-After"); got != "1" {
		t.Fatalf("Retry-After %q, want 1 (0.6 s rounded up)", got)
	}
	if got, want := rec.Header().Get(ratelimit.RateLimitHeader), `"per-client";r=0;t=2`; got != want {
		t.Fatalf("RateLimit %q, want %q", got, want)
	}
	if !strings.Contains(rec.Body.String(), `"status":429`) {
		t.Fatalf("body %s", rec.Body)
	}
	// Another client is not affected.
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = "198.51.100.9:4000"
	if rec := serve(h, r); rec.Code != http.StatusOK {
		t.Fatalf("another client: %d", rec.Code)
	}
}

func ceil(d time.Duration) int64 { return int64((d + time.Second - 1) / time.Second) }

// TestSeveralPolicies checks that two limiters on one route each add their
// member to the RateLimit fields.
func TestSeveralPolicies(t *testing.T) {
	burst := mustLimiter(t, ratelimit.Config{Name: "burst", Rate: 10, Burst: 10, Headers: true})
	daily, err := ratelimit.NewQuota(ratelimit.QuotaConfig{Name: "daily", Limit: 1000, Window: ratelimit.Day, Headers: true})
	if err != nil {
		t.Fatal(err)
	}
	h := gateway.NewPipeline(gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		return gateway.NewResponse(http.StatusOK, nil, nil), nil
	}), gateway.Limit(daily), gateway.Limit(burst))
	rec := serve(h, httptest.NewRequest(http.MethodGet, "/", nil))
	pols := rec.Header().Values(ratelimit.PolicyHeader)
	if len(pols) != 2 || !strings.HasPrefix(pols[0]+pols[1], `"burst";q=10;w=1"daily";q=1000;w=86400`) {
		t.Fatalf("RateLimit-Policy %q", pols)
	}
}

func TestLimiterWait(t *testing.T) {
	// 20 per second, burst 1: the second request waits about 50ms.
	l := mustLimiter(t, ratelimit.Config{Name: "w", Rate: 20, Burst: 1, MaxWait: time.Second})
	ctx := context.Background()
	req := gateway.NewRequest(httptest.NewRequest(http.MethodGet, "/", nil))
	if _, err := l.Limit(ctx, req); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := l.Limit(ctx, req); err != nil {
		t.Fatalf("a request within MaxWait was refused: %v", err)
	}
	if waited := time.Since(start); waited < 40*time.Millisecond {
		t.Fatalf("waited %v, want about 50ms", waited)
	}

	// A turn later than MaxWait is refused at once.
	slow := mustLimiter(t, ratelimit.Config{Name: "slow", Rate: 1, Per: time.Hour, Burst: 1, MaxWait: 100 * time.Millisecond})
	if _, err := slow.Limit(ctx, req); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	_, err := slow.Limit(ctx, req)
	var ge *gateway.Error
	if !errors.As(err, &ge) || ge.Status != http.StatusTooManyRequests {
		t.Fatalf("err %v, want 429", err)
	}
	if time.Since(start) > 50*time.Millisecond {
		t.Fatal("a request that could not be served within MaxWait waited anyway")
	}
}

func TestLimiterWaitCancelled(t *testing.T) {
	clk := newClock()
	// 1 per minute, burst 1, MaxWait 2 minutes: the second request waits.
	l := mustLimiter(t, ratelimit.Config{Name: "c", Rate: 1, Per: time.Minute, Burst: 1, MaxWait: 2 * time.Minute, Now: clk.Now})
	req := gateway.NewRequest(httptest.NewRequest(http.MethodGet, "/", nil))
	if _, err := l.Limit(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := l.Limit(ctx, req)
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond) // let it start waiting; the test holds either way
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err %v, want one wrapping context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a cancelled wait did not return")
	}
	// The abandoned turn was given back: one minute later there is a
	// token again (had it been kept, the next would come after two).
	clk.Advance(time.Minute)
	res, _ := l.Allow(context.Background(), nil)
	if !res.Allowed {
		t.Fatal("the cancelled request kept its token")
	}
}

func TestLimiterConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		cfg  ratelimit.Config
		want string
	}{
		{ratelimit.Config{}, `limiter "rate": Rate must be at least 1`},
		{ratelimit.Config{Name: "x", Rate: -1}, `limiter "x": Rate`},
		{ratelimit.Config{Name: "x", Rate: 1, Burst: -1}, "Burst must not be negative"},
		{ratelimit.Config{Name: "x", Rate: 1, Per: -time.Second}, "Per must not be negative"},
		{ratelimit.Config{Name: "x", Rate: 1, MaxWait: -1}, "MaxWait"},
		{ratelimit.Config{Name: "x", Rate: 1, MaxKeys: -1}, "MaxKeys"},
		{ratelimit.Config{Name: "two words", Rate: 1}, `Name "two words"`},
		{ratelimit.Config{Name: `q"`, Rate: 1}, `Name "q\""`},
		{ratelimit.Config{Name: "x", Rate: 1, Shared: &ratelimit.Shared{}}, `limiter "x": Shared.Store is required`},
		{ratelimit.Config{Name: "x", Rate: 2_000_000_000, Per: time.Nanosecond}, "finer than a nanosecond"},
	} {
		_, err := ratelimit.New(tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v, want an error containing %q", tc.cfg, err, tc.want)
		}
	}
}

func TestSkipMissingKey(t *testing.T) {
	ctx := context.Background()
	req := gateway.NewRequest(httptest.NewRequest(http.MethodGet, "/", nil)) // no principal
	shared := mustLimiter(t, ratelimit.Config{Name: "s", Rate: 1, Per: time.Hour, Key: ratelimit.BySubject()})
	if _, err := shared.Limit(ctx, req); err != nil {
		t.Fatal(err)
	}
	if _, err := shared.Limit(ctx, req); err == nil {
		t.Fatal("requests without a key do not share one bucket")
	}
	skip := mustLimiter(t, ratelimit.Config{Name: "s", Rate: 1, Per: time.Hour, Key: ratelimit.BySubject(), SkipMissingKey: true})
	for range 3 {
		if _, err := skip.Limit(ctx, req); err != nil {
			t.Fatalf("SkipMissingKey limited a request without a key: %v", err)
		}
	}
}

// noteCatcher is an observer that keeps the notes of the last request.
type noteCatcher struct{ notes []gateway.Note }

func (n *noteCatcher) Begin(ctx context.Context, req *gateway.Request) context.Context { return ctx }
func (n *noteCatcher) End(ctx context.Context, req *gateway.Request, rec *gateway.Record) {
	n.notes = append([]gateway.Note(nil), req.Notes()...)
}

// TestDecisionNotes checks that limiters leave their decision for the
// gateway's observers (access log, metrics), and only when observed.
func TestDecisionNotes(t *testing.T) {
	l := mustLimiter(t, ratelimit.Config{Name: "per-client", Rate: 1, Per: time.Hour})
	p := gateway.NewPipeline(gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		return nil, nil
	}), gateway.Limit(l))
	nc := &noteCatcher{}
	p.Options.Observers = []gateway.Observer{nc}
	for _, want := range []string{"per-client admitted", "per-client refused"} {
		serve(p, httptest.NewRequest(http.MethodGet, "/", nil))
		if len(nc.notes) != 1 || nc.notes[0] != (gateway.Note{Key: "ratelimit", Value: want}) {
			t.Fatalf("notes %v, want ratelimit %q", nc.notes, want)
		}
	}
	// Unobserved, a request carries no notes (and the limiter allocates
	// nothing for them).
	req := gateway.NewRequest(httptest.NewRequest(http.MethodGet, "/", nil))
	l.Limit(context.Background(), req)
	if len(req.Notes()) != 0 {
		t.Fatalf("unobserved request has notes %v", req.Notes())
	}
}
