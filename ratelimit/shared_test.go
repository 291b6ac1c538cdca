package ratelimit_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatekit/gatekit/gateway"
	"github.com/gatekit/gatekit/ratelimit"
	"github.com/gatekit/gatekit/ratelimit/internal/redistest"
	"github.com/gatekit/gatekit/ratelimit/redisstore"
)

// replica is one gateway replica's view of a shared Redis: a client and a
// store of its own.
func replica(t *testing.T, srv *redistest.Server) ratelimit.Store {
	t.Helper()
	s, err := redisstore.New(redisstore.Config{Client: srv.Client(t)})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestSharedClockSkew runs two replicas whose clocks are 30 s apart
// against one Redis: they still enforce one limit, because decisions use
// Redis's clock.
func TestSharedClockSkew(t *testing.T) {
	srv := redistest.Start(t)
	base := time.Now()
	clocks := []func() time.Time{
		func() time.Time { return base },
		func() time.Time { return base.Add(30 * time.Second) },
	}
	var limiters []*ratelimit.Limiter
	var quotas []*ratelimit.Quota
	for _, now := range clocks {
		shared := &ratelimit.Shared{Store: replica(t, srv), Timeout: time.Second}
		limiters = append(limiters, mustLimiter(t, ratelimit.Config{Name: "skew", Rate: 1, Per: time.Hour, Burst: 5, Shared: shared, Now: now}))
		q, err := ratelimit.NewQuota(ratelimit.QuotaConfig{Name: "skewq", Limit: 7, Window: ratelimit.Minute, Shared: shared, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		quotas = append(quotas, q)
	}
	ctx := context.Background()
	admitted, counted := 0, 0
	for i := range 40 {
		if res, err := limiters[i%2].Allow(ctx, []byte("client")); err != nil {
			t.Fatal(err)
		} else if res.Allowed {
			admitted++
		}
		if res, err := quotas[i%2].Allow(ctx, []byte("client"), 7); err != nil {
			t.Fatal(err)
		} else if res.Allowed {
			counted++
		}
	}
	// A quota window can end during the loop; then at most one more
	// window's worth.
	if admitted != 5 || counted != 7 && counted != 14 {
		t.Fatalf("two skewed replicas admitted %d (bucket of 5) and counted %d (quota of 7)", admitted, counted)
	}
}

// TestSharedReplicas hammers one key from three replicas at once: exactly
// the burst is admitted in all.
func TestSharedReplicas(t *testing.T) {
	srv := redistest.Start(t)
	const burst = 50
	var replicas []*ratelimit.Limiter
	for range 3 {
		shared := &ratelimit.Shared{Store: replica(t, srv), Timeout: 2 * time.Second}
		replicas = append(replicas, mustLimiter(t, ratelimit.Config{Name: "replicas", Rate: 1, Per: time.Hour, Burst: burst, Shared: shared}))
	}
	var admitted atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 48)
	for g := range 48 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := replicas[g%3]
			for range 10 {
				res, err := l.Allow(context.Background(), []byte("hot"))
				if err != nil {
					errs <- err
					return
				}
				if res.Allowed {
					admitted.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := admitted.Load(); n != burst {
		t.Fatalf("3 replicas admitted %d of 480 requests, want exactly %d", n, burst)
	}
}

// TestSharedStoreDown kills Redis mid-test: failing open admits and
// counts, failing closed answers 503; both recover when Redis is back.
func TestSharedStoreDown(t *testing.T) {
	for _, failOpen := range []bool{true, false} {
		name := "fail closed"
		if failOpen {
			name = "fail open"
		}
		t.Run(name, func(t *testing.T) {
			srv := redistest.Start(t)
			l := mustLimiter(t, ratelimit.Config{Name: "down", Rate: 1, Per: time.Hour, Burst: 2,
				Shared: &ratelimit.Shared{Store: replica(t, srv), Timeout: 200 * time.Millisecond, FailOpen: failOpen}})
			req := gateway.NewRequest(httptest.NewRequest(http.MethodGet, "/", nil))
			ctx := context.Background()
			for range 2 {
				if _, err := l.Limit(ctx, req); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := l.Limit(ctx, req); status(err) != http.StatusTooManyRequests {
				t.Fatalf("past the burst: %v, want 429", err)
			}

			srv.Stop()
			start := time.Now()
			_, err := l.Limit(ctx, req)
			if took := time.Since(start); took > 2*time.Second {
				t.Fatalf("a decision with Redis down took %v", took)
			}
			s := l.Stats()
			if failOpen {
				if err != nil || s.FailedOpen != 1 {
					t.Fatalf("fail open: %v, stats %+v", err, s)
				}
			} else {
				var ge *gateway.Error
				if !errors.As(err, &ge) || ge.Status != http.StatusServiceUnavailable || ge.Header.Get("Retry-After") == "" || s.FailedClosed != 1 {
					t.Fatalf("fail closed: %v, stats %+v", err, s)
				}
			}
			if s.StoreErrors != 1 {
				t.Fatalf("StoreErrors %d, want 1", s.StoreErrors)
			}

			// Redis is back (empty: no persistence): decisions come from
			// it again.
			srv.Restart()
			deadline := time.Now().Add(10 * time.Second)
			for {
				_, err := l.Limit(ctx, req)
				if err == nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("no recovery after Redis came back: %v", err)
				}
				time.Sleep(50 * time.Millisecond)
			}
			if _, err := l.Limit(ctx, req); err != nil {
				t.Fatalf("second request after recovery: %v", err)
			}
			if _, err := l.Limit(ctx, req); status(err) != http.StatusTooManyRequests {
				t.Fatalf("after recovery the limit does not hold: %v", err)
			}
		})
	}
}

// TestSharedSlowStore pauses Redis: decisions give up after the timeout
// instead of stalling requests.
func TestSharedSlowStore(t *testing.T) {
	srv := redistest.Start(t)
	l := mustLimiter(t, ratelimit.Config{Name: "slow", Rate: 10, Burst: 10,
		Shared: &ratelimit.Shared{Store: replica(t, srv), Timeout: 100 * time.Millisecond}})
	req := gateway.NewRequest(httptest.NewRequest(http.MethodGet, "/", nil))
	if _, err := l.Limit(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	srv.Pause()
	defer srv.Resume()
	start := time.Now()
	_, err := l.Limit(context.Background(), req)
	took := time.Since(start)
	if status(err) != http.StatusServiceUnavailable {
		t.Fatalf("with Redis paused: %v, want 503", err)
	}
	if took < 100*time.Millisecond || took > time.Second {
		t.Fatalf("the decision took %v, want about the 100ms timeout", took)
	}
}

// TestSharedPreCheck shows the pre-check answering a refused key without
// Redis: with Redis paused, the key is still refused at once.
func TestSharedPreCheck(t *testing.T) {
	srv := redistest.Start(t)
	l := mustLimiter(t, ratelimit.Config{Name: "pre", Rate: 1, Per: time.Hour, Burst: 1,
		Shared: &ratelimit.Shared{Store: replica(t, srv), Timeout: time.Second, PreCheck: true}})
	ctx := context.Background()
	if res, err := l.Allow(ctx, []byte("k")); err != nil || !res.Allowed {
		t.Fatalf("first: %+v %v", res, err)
	}
	res, err := l.Allow(ctx, []byte("k"))
	if err != nil || res.Allowed || res.RetryAfter < 59*time.Minute {
		t.Fatalf("second: %+v %v, want refused for about an hour", res, err)
	}
	srv.Pause()
	defer srv.Resume()
	start := time.Now()
	res, err = l.Allow(ctx, []byte("k"))
	if err != nil || res.Allowed || time.Since(start) > 50*time.Millisecond {
		t.Fatalf("pre-checked: %+v %v after %v, want an immediate refusal", res, err, time.Since(start))
	}
	if s := l.Stats(); s.PreChecked != 1 || s.StoreErrors != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// TestSharedWait throttles through Redis: the second request waits for
// its token instead of being refused.
func TestSharedWait(t *testing.T) {
	srv := redistest.Start(t)
	l := mustLimiter(t, ratelimit.Config{Name: "wait", Rate: 10, Burst: 1, MaxWait: time.Second,
		Shared: &ratelimit.Shared{Store: replica(t, srv), Timeout: time.Second}})
	req := gateway.NewRequest(httptest.NewRequest(http.MethodGet, "/", nil))
	if _, err := l.Limit(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := l.Limit(context.Background(), req); err != nil {
		t.Fatalf("a request within MaxWait: %v", err)
	}
	if took := time.Since(start); took < 80*time.Millisecond {
		t.Fatalf("admitted after %v, want about 100ms", took)
	}
}

func status(err error) int {
	var ge *gateway.Error
	if errors.As(err, &ge) {
		return ge.Status
	}
	return 0
}
