package ratelimit_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gatekit/gatekit/gateway"
	"github.com/gatekit/gatekit/ratelimit"
	"github.com/gatekit/gatekit/ratelimit/internal/redistest"
)

// Cases a review found; each failed before its fix.

// A reply without a header map gets the RateLimit fields, not a panic.
func TestHeadersOnReplyWithoutHeaderMap(t *testing.T) {
	l := mustLimiter(t, ratelimit.Config{Name: "h", Rate: 10, Headers: true})
	q, err := ratelimit.NewQuota(ratelimit.QuotaConfig{Name: "hq", Limit: 10, Window: ratelimit.Day, Headers: true})
	if err != nil {
		t.Fatal(err)
	}
	h := gateway.NewPipeline(gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		return &gateway.Response{Status: http.StatusOK}, nil
	}), gateway.Limit(q), gateway.Limit(l))
	rec := serve(h, httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Code != http.StatusOK || len(rec.Header().Values(ratelimit.RateLimitHeader)) != 2 {
		t.Fatalf("status %d, RateLimit %q", rec.Code, rec.Header().Values(ratelimit.RateLimitHeader))
	}
}

// A KeyFunc may return memory of its own; the limiter must never write
// to it afterwards.
func TestKeyFuncOwnMemory(t *testing.T) {
	tenants := map[string][]byte{"a": []byte("tenant-aaaaaaaa")}
	own := func(dst []byte, req *gateway.Request) ([]byte, bool) { return tenants["a"], true }
	l1 := mustLimiter(t, ratelimit.Config{Name: "own", Rate: 1000, Key: own})
	l2 := mustLimiter(t, ratelimit.Config{Name: "hdr", Rate: 1000, Key: ratelimit.ByHeader("X-K")})
	h := gateway.NewPipeline(gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		return nil, nil
	}), gateway.Limit(l1), gateway.Limit(l2))
	for range 50 {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("X-K", "EVIL")
		serve(h, r)
	}
	if got := string(tenants["a"]); got != "tenant-aaaaaaaa" {
		t.Fatalf("the KeyFunc's own memory was overwritten: %q", got)
	}
}

// A plan of 0 requests is a 429 until the window ends, with Retry-After
// and the RateLimit fields, like any other refusal.
func TestQuotaZeroLimit(t *testing.T) {
	clk := &clock{t: time.Date(2026, 11, 25, 23, 59, 30, 0, time.UTC)}
	q, err := ratelimit.NewQuota(ratelimit.QuotaConfig{Name: "z", Limit: 5, Window: ratelimit.Day, Now: clk.Now,
		LimitFor: func(*gateway.Request) (int64, bool) { return 0, true }})
	if err != nil {
		t.Fatal(err)
	}
	_, err = q.Limit(context.Background(), gateway.NewRequest(httptest.NewRequest(http.MethodGet, "/", nil)))
	var ge *gateway.Error
	if !errors.As(err, &ge) || ge.Status != http.StatusTooManyRequests || ge.Header.Get("Retry-After") != "30" ||
		ge.Header.Get(ratelimit.PolicyHeader) != `"z";q=0;w=86400` || ge.Header.Get(ratelimit.RateLimitHeader) != `"z";r=0;t=30` {
		t.Fatalf("err %v, header %v", err, ge.Header)
	}
}

func TestClientNetworkWithoutAddress(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = "not an address"
	if k, ok := ratelimit.ByClientNetwork(24, 64)(nil, gateway.NewRequest(r)); ok {
		t.Fatalf("a request without a client address has the key %q", k)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("ByClientNetwork(40, 64) did not panic")
		}
	}()
	ratelimit.ByClientNetwork(40, 64)
}

func TestSharedConfigErrors(t *testing.T) {
	srv := redistest.Start(t)
	store := replica(t, srv)
	for _, tc := range []struct {
		cfg  ratelimit.Config
		want string
	}{
		{ratelimit.Config{Rate: 1, Shared: &ratelimit.Shared{Store: store}}, "Name is required with Shared"},
		{ratelimit.Config{Name: "year", Rate: 1, Per: 365 * 24 * time.Hour, Burst: 100, Shared: &ratelimit.Shared{Store: store}}, "more than a store can count"},
		{ratelimit.Config{Name: "t", Rate: 1, Shared: &ratelimit.Shared{Store: store, Timeout: -1}}, "Timeout must not be negative"},
	} {
		if _, err := ratelimit.New(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v, want %q", tc.cfg, err, tc.want)
		}
	}
	if _, err := ratelimit.NewQuota(ratelimit.QuotaConfig{Limit: 1, Window: ratelimit.Day, Shared: &ratelimit.Shared{Store: store}}); err == nil || !strings.Contains(err.Error(), "Name is required") {
		t.Errorf("NewQuota without a name: %v", err)
	}
}

// Two limiters of one name but different shapes do not share counts.
func TestSharedShapesApart(t *testing.T) {
	srv := redistest.Start(t)
	fast := mustLimiter(t, ratelimit.Config{Name: "same", Rate: 1000, Shared: &ratelimit.Shared{Store: replica(t, srv), Timeout: time.Second}})
	slow := mustLimiter(t, ratelimit.Config{Name: "same", Rate: 1, Per: time.Hour, Burst: 1, Shared: &ratelimit.Shared{Store: replica(t, srv), Timeout: time.Second}})
	for range 5 {
		fast.Allow(context.Background(), nil)
	}
	if res, err := slow.Allow(context.Background(), nil); err != nil || !res.Allowed {
		t.Fatalf("the first request of a 1-per-hour limiter: %+v %v", res, err)
	}
}

// A request that ends while the store is asked is not a store failure.
func TestSharedCancelledIsNoStoreError(t *testing.T) {
	srv := redistest.Start(t)
	l := mustLimiter(t, ratelimit.Config{Name: "cx", Rate: 10, Shared: &ratelimit.Shared{Store: replica(t, srv), Timeout: time.Second, FailOpen: true}})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := l.Limit(ctx, gateway.NewRequest(httptest.NewRequest(http.MethodGet, "/", nil)))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want one wrapping context.Canceled", err)
	}
	if s := l.Stats(); s.StoreErrors != 0 || s.FailedOpen != 0 {
		t.Fatalf("stats %+v: a cancelled request counted as a store failure", s)
	}
}

// The pre-check does not hold a key to a limit its plan has outgrown.
func TestSharedPreCheckPlanUpgrade(t *testing.T) {
	srv := redistest.Start(t)
	limit := int64(1)
	q, err := ratelimit.NewQuota(ratelimit.QuotaConfig{Name: "plan", Limit: 1, Window: ratelimit.Month,
		LimitFor: func(*gateway.Request) (int64, bool) { return limit, true },
		Shared:   &ratelimit.Shared{Store: replica(t, srv), Timeout: time.Second, PreCheck: true}})
	if err != nil {
		t.Fatal(err)
	}
	req := gateway.NewRequest(httptest.NewRequest(http.MethodGet, "/", nil))
	ctx := context.Background()
	if _, err := q.Limit(ctx, req); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Limit(ctx, req); status(err) != http.StatusTooManyRequests {
		t.Fatalf("past the free plan: %v", err)
	}
	limit = 1000 // upgraded
	if _, err := q.Limit(ctx, req); err != nil {
		t.Fatalf("after the upgrade: %v", err)
	}
}

// A pre-checked refusal advertises the store's reset, not a guess.
func TestSharedPreCheckReset(t *testing.T) {
	srv := redistest.Start(t)
	l := mustLimiter(t, ratelimit.Config{Name: "pr", Rate: 1, Per: 10 * time.Minute, Burst: 1,
		Shared: &ratelimit.Shared{Store: replica(t, srv), Timeout: time.Second, PreCheck: true}})
	ctx := context.Background()
	l.Allow(ctx, []byte("k"))
	fromStore, _ := l.Allow(ctx, []byte("k"))
	preChecked, _ := l.Allow(ctx, []byte("k"))
	if l.Stats().PreChecked != 1 || preChecked.Reset > fromStore.Reset || fromStore.Reset-preChecked.Reset > time.Second {
		t.Fatalf("store said reset in %v, pre-check %v (stats %+v)", fromStore.Reset, preChecked.Reset, l.Stats())
	}
}

// Throttling through the store reserves: of 50 requests at once at 10 per
// second with MaxWait 1 s, the burst and the next second's tokens are
// admitted, and the rest are refused at once instead of polling.
func TestSharedWaitReserves(t *testing.T) {
	srv := redistest.Start(t)
	l := mustLimiter(t, ratelimit.Config{Name: "res", Rate: 10, Burst: 1, MaxWait: time.Second,
		Shared: &ratelimit.Shared{Store: replica(t, srv), Timeout: time.Second}})
	type outcome struct {
		ok   bool
		took time.Duration
	}
	out := make(chan outcome, 50)
	for range 50 {
		go func() {
			start := time.Now()
			_, err := l.Limit(context.Background(), gateway.NewRequest(httptest.NewRequest(http.MethodGet, "/", nil)))
			out <- outcome{err == nil, time.Since(start)}
		}()
	}
	admitted := 0
	for range 50 {
		o := <-out
		if o.ok {
			admitted++
		} else if o.took > 500*time.Millisecond {
			t.Errorf("a refused request was held %v", o.took)
		}
	}
	// 1 at once, then one every 100ms within the second: 11, or 10 when
	// the requests straddle a token.
	if admitted < 10 || admitted > 11 {
		t.Fatalf("admitted %d, want 10 or 11", admitted)
	}
	if s := l.Stats(); s.Refused != uint64(50-admitted) {
		t.Fatalf("stats %+v", s)
	}
}
