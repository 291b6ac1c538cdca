package redisstore

import (
	"context"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/gatekit/gatekit/ratelimit"
	"github.com/gatekit/gatekit/ratelimit/internal/redistest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// patient gives a client timeouts long enough that a loaded test machine
// cannot make a decision fail; the tests of failures use the short
// defaults of redistest instead.
func patient(o *redis.Options) {
	o.DialTimeout = 5 * time.Second
	o.ReadTimeout = 5 * time.Second
	o.WriteTimeout = 5 * time.Second
	o.PoolTimeout = 10 * time.Second
}

func newStore(t testing.TB, c redis.UniversalClient) *Store {
	t.Helper()
	s, err := New(Config{Client: c})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

// us is a duration of n microseconds, for expected values.
func us(n int64) time.Duration { return time.Duration(n) * time.Microsecond }

// wrapped is a redis.UniversalClient of another type than go-redis's own,
// as a wrapper or a test double would be.
type wrapped struct{ redis.UniversalClient }

func TestNew(t *testing.T) {
	srv, cluster := redistest.Start(t), redistest.StartCluster(t)
	c := srv.Client(t, patient)
	defaults := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { _ = defaults.Close() })
	clusterDefaults := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{cluster.Addr}})
	t.Cleanup(func() { _ = clusterDefaults.Close() })
	ringDefaults := redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"shard": srv.Addr}})
	t.Cleanup(func() { _ = ringDefaults.Close() })
	const noDeadlines = "must set ContextTimeoutEnabled: true"
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
		wantKey string // the bucket key of "k", when New succeeds
	}{
		{name: "default prefix", cfg: Config{Client: c}, wantKey: "gatekit:rl:{b:k}"},
		{name: "own prefix", cfg: Config{Client: c, Prefix: "app1:"}, wantKey: "app1:{b:k}"},
		{name: "prefix with a hash tag", cfg: Config{Client: c, Prefix: "{app1}:"}, wantKey: "{app1}:{b:k}"},
		{name: "no client", cfg: Config{}, wantErr: "Client is required"},
		{name: "empty hash tag in prefix", cfg: Config{Client: c, Prefix: "x{}:"}, wantErr: "empty hash tag"},
		{name: "client with default options", cfg: Config{Client: defaults}, wantErr: noDeadlines},
		{name: "cluster client with default options", cfg: Config{Client: clusterDefaults}, wantErr: noDeadlines},
		{
			name:    "cluster client honouring deadlines",
			cfg:     Config{Client: cluster.ClusterClient(t, func(o *redis.ClusterOptions) { o.ReadTimeout, o.WriteTimeout = 5*time.Second, 5*time.Second })},
			wantKey: "gatekit:rl:{b:k}",
		},
		{name: "ring with default options", cfg: Config{Client: ringDefaults}, wantErr: noDeadlines},
		{
			name:    "ring honouring deadlines",
			cfg:     Config{Client: srv.RingClient(t, func(o *redis.RingOptions) { o.ReadTimeout, o.WriteTimeout = 5*time.Second, 5*time.Second }), Prefix: "ring:"},
			wantKey: "ring:{b:k}",
		},
		// A client New cannot inspect is taken on trust (see Config.Client).
		{name: "other client", cfg: Config{Client: wrapped{defaults}, Prefix: "other:"}, wantKey: "other:{b:k}"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(tc.cfg)
			if tc.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), "redisstore: ") || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("New error = %v; want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			ctx := context.Background()
			if _, err := s.Take(ctx, "k", ratelimit.Bucket{Interval: time.Hour, Burst: 1}, 1); err != nil {
				t.Fatalf("Take: %v", err)
			}
			if n, err := tc.cfg.Client.Exists(ctx, tc.wantKey).Result(); err != nil || n != 1 {
				t.Errorf("EXISTS %s = %d, %v; want 1", tc.wantKey, n, err)
			}
		})
	}
}

// A takeStep is one Take at an injected Redis time, t0 + at.
type takeStep struct {
	at   time.Duration
	n    int64
	want ratelimit.Result
}

// TestTake checks GCRA's decisions step by step, with the Redis clock
// replaced by injected times so that every value is exact. The intervals
// are long because a bucket key's TTL runs on the real clock: a short one
// could expire between two steps on a loaded machine.
func TestTake(t *testing.T) {
	t0 := time.Date(2024, 5, 17, 12, 0, 10, 0, time.UTC)
	const s = time.Second
	tests := []struct {
		name   string
		bucket ratelimit.Bucket
		steps  []takeStep
	}{
		{
			name:   "burst back to back, then one per interval",
			bucket: ratelimit.Bucket{Interval: 100 * s, Burst: 3},
			steps: []takeStep{
				{0, 1, ratelimit.Result{Allowed: true, Limit: 3, Remaining: 2, Reset: 100 * s}},
				{0, 1, ratelimit.Result{Allowed: true, Limit: 3, Remaining: 1, Reset: 200 * s}},
				{0, 1, ratelimit.Result{Allowed: true, Limit: 3, Remaining: 0, Reset: 300 * s}},
				{0, 1, ratelimit.Result{Allowed: false, Limit: 3, Remaining: 0, Reset: 300 * s, RetryAfter: 100 * s}},
				{99 * s, 1, ratelimit.Result{Allowed: false, Limit: 3, Remaining: 0, Reset: 201 * s, RetryAfter: 1 * s}},
				{100 * s, 1, ratelimit.Result{Allowed: true, Limit: 3, Remaining: 0, Reset: 300 * s}},
				{150 * s, 1, ratelimit.Result{Allowed: false, Limit: 3, Remaining: 0, Reset: 250 * s, RetryAfter: 50 * s}},
				{250 * s, 1, ratelimit.Result{Allowed: true, Limit: 3, Remaining: 0, Reset: 250 * s}},
			},
		},
		{
			name:   "n tokens at once",
			bucket: ratelimit.Bucket{Interval: 10 * s, Burst: 10},
			steps: []takeStep{
				{0, 4, ratelimit.Result{Allowed: true, Limit: 10, Remaining: 6, Reset: 40 * s}},
				{0, 7, ratelimit.Result{Allowed: false, Limit: 10, Remaining: 6, Reset: 40 * s, RetryAfter: 10 * s}},
				{10 * s, 7, ratelimit.Result{Allowed: true, Limit: 10, Remaining: 0, Reset: 100 * s}},
				{10 * s, 10, ratelimit.Result{Allowed: false, Limit: 10, Remaining: 0, Reset: 100 * s, RetryAfter: 100 * s}},
				{10 * s, 10, ratelimit.Result{Allowed: false, Limit: 10, Remaining: 0, Reset: 100 * s, RetryAfter: 100 * s}},
			},
		},
		{
			name:   "n = 0 reports whole tokens without taking",
			bucket: ratelimit.Bucket{Interval: 100 * s, Burst: 5},
			steps: []takeStep{
				{0, 0, ratelimit.Result{Allowed: true, Limit: 5, Remaining: 5, Reset: 0}},
				{0, 5, ratelimit.Result{Allowed: true, Limit: 5, Remaining: 0, Reset: 500 * s}},
				{150 * s, 0, ratelimit.Result{Allowed: true, Limit: 5, Remaining: 1, Reset: 350 * s}},
				{150 * s, 0, ratelimit.Result{Allowed: true, Limit: 5, Remaining: 1, Reset: 350 * s}},
			},
		},
		{
			name:   "a bucket left alone fills up again",
			bucket: ratelimit.Bucket{Interval: 100 * s, Burst: 2},
			steps: []takeStep{
				{0, 2, ratelimit.Result{Allowed: true, Limit: 2, Remaining: 0, Reset: 200 * s}},
				{200 * s, 0, ratelimit.Result{Allowed: true, Limit: 2, Remaining: 2, Reset: 0}},
				{time.Hour, 1, ratelimit.Result{Allowed: true, Limit: 2, Remaining: 1, Reset: 100 * s}},
			},
		},
		{
			name:   "burst of one",
			bucket: ratelimit.Bucket{Interval: 1000 * s, Burst: 1},
			steps: []takeStep{
				{0, 1, ratelimit.Result{Allowed: true, Limit: 1, Remaining: 0, Reset: 1000 * s}},
				{999*s + 999999*time.Microsecond, 1, ratelimit.Result{Allowed: false, Limit: 1, Remaining: 0, Reset: us(1), RetryAfter: us(1)}},
				{1000 * s, 1, ratelimit.Result{Allowed: true, Limit: 1, Remaining: 0, Reset: 1000 * s}},
			},
		},
		{
			name:   "interval rounded up to whole microseconds",
			bucket: ratelimit.Bucket{Interval: 1500 * time.Nanosecond, Burst: 2},
			steps: []takeStep{
				{0, 1, ratelimit.Result{Allowed: true, Limit: 2, Remaining: 1, Reset: us(2)}},
			},
		},
		{
			// Past the burst, the k-th reservation waits k intervals; one
			// past MaxDelay is refused, told when its tokens are earned,
			// and takes nothing (the next step fits in just behind the
			// queue, which it would not if the refusal had taken a token).
			name:   "reservations queue up past the burst",
			bucket: ratelimit.Bucket{Interval: 100 * s, Burst: 2, MaxDelay: 300 * s},
			steps: []takeStep{
				{0, 1, ratelimit.Result{Allowed: true, Limit: 2, Remaining: 1, Reset: 100 * s}},
				{0, 1, ratelimit.Result{Allowed: true, Limit: 2, Remaining: 0, Reset: 200 * s}},
				{0, 1, ratelimit.Result{Allowed: true, Limit: 2, Remaining: 0, Reset: 300 * s, Delay: 100 * s}},
				{0, 1, ratelimit.Result{Allowed: true, Limit: 2, Remaining: 0, Reset: 400 * s, Delay: 200 * s}},
				{0, 1, ratelimit.Result{Allowed: true, Limit: 2, Remaining: 0, Reset: 500 * s, Delay: 300 * s}},
				{0, 1, ratelimit.Result{Allowed: false, Limit: 2, Remaining: 0, Reset: 500 * s, RetryAfter: 400 * s}},
				{100 * s, 1, ratelimit.Result{Allowed: true, Limit: 2, Remaining: 0, Reset: 500 * s, Delay: 300 * s}},
			},
		},
		{
			name:   "the delay shrinks as time passes",
			bucket: ratelimit.Bucket{Interval: 100 * s, Burst: 1, MaxDelay: 1000 * s},
			steps: []takeStep{
				{0, 1, ratelimit.Result{Allowed: true, Limit: 1, Remaining: 0, Reset: 100 * s}},
				{0, 1, ratelimit.Result{Allowed: true, Limit: 1, Remaining: 0, Reset: 200 * s, Delay: 100 * s}},
				{50 * s, 1, ratelimit.Result{Allowed: true, Limit: 1, Remaining: 0, Reset: 250 * s, Delay: 150 * s}},
				{250 * s, 1, ratelimit.Result{Allowed: true, Limit: 1, Remaining: 0, Reset: 150 * s, Delay: 50 * s}},
				{400 * s, 1, ratelimit.Result{Allowed: true, Limit: 1, Remaining: 0, Reset: 100 * s}},
				{600 * s, 0, ratelimit.Result{Allowed: true, Limit: 1, Remaining: 1, Reset: 0}},
			},
		},
		{
			name:   "n tokens reserved at once",
			bucket: ratelimit.Bucket{Interval: 10 * s, Burst: 4, MaxDelay: 25 * s},
			steps: []takeStep{
				{0, 4, ratelimit.Result{Allowed: true, Limit: 4, Remaining: 0, Reset: 40 * s}},
				{0, 2, ratelimit.Result{Allowed: true, Limit: 4, Remaining: 0, Reset: 60 * s, Delay: 20 * s}},
				{0, 1, ratelimit.Result{Allowed: false, Limit: 4, Remaining: 0, Reset: 60 * s, RetryAfter: 30 * s}},
				{30 * s, 3, ratelimit.Result{Allowed: true, Limit: 4, Remaining: 0, Reset: 60 * s, Delay: 20 * s}},
				{30 * s, 0, ratelimit.Result{Allowed: true, Limit: 4, Remaining: 0, Reset: 60 * s, Delay: 20 * s}},
				{70 * s, 0, ratelimit.Result{Allowed: true, Limit: 4, Remaining: 2, Reset: 20 * s}},
				{90 * s, 0, ratelimit.Result{Allowed: true, Limit: 4, Remaining: 4, Reset: 0}},
			},
		},
		{
			// 10s less 500ns would be refused at 9.999999s; rounded up to
			// 10s it admits the reservation of exactly one interval.
			name:   "max delay rounded up to whole microseconds",
			bucket: ratelimit.Bucket{Interval: 10 * s, Burst: 1, MaxDelay: 10*s - 500*time.Nanosecond},
			steps: []takeStep{
				{0, 1, ratelimit.Result{Allowed: true, Limit: 1, Remaining: 0, Reset: 10 * s}},
				{0, 1, ratelimit.Result{Allowed: true, Limit: 1, Remaining: 0, Reset: 20 * s, Delay: 10 * s}},
				{0, 1, ratelimit.Result{Allowed: false, Limit: 1, Remaining: 0, Reset: 20 * s, RetryAfter: 20 * s}},
			},
		},
		{
			name:   "negative max delay reserves nothing",
			bucket: ratelimit.Bucket{Interval: 100 * s, Burst: 1, MaxDelay: -time.Hour},
			steps: []takeStep{
				{0, 1, ratelimit.Result{Allowed: true, Limit: 1, Remaining: 0, Reset: 100 * s}},
				{0, 1, ratelimit.Result{Allowed: false, Limit: 1, Remaining: 0, Reset: 100 * s, RetryAfter: 100 * s}},
			},
		},
		{
			// Interval × burst + max delay = ratelimit.MaxUnits µs exactly:
			// the largest bucket accepted, and its arithmetic is exact.
			name:   "at the bound",
			bucket: ratelimit.Bucket{Interval: time.Microsecond, Burst: 1 << 49, MaxDelay: us(1 << 49)},
			steps: []takeStep{
				{0, 1 << 49, ratelimit.Result{Allowed: true, Limit: 1 << 49, Remaining: 0, Reset: us(1 << 49)}},
				{0, 1 << 49, ratelimit.Result{Allowed: true, Limit: 1 << 49, Remaining: 0, Reset: us(1 << 50), Delay: us(1 << 49)}},
				{0, 1, ratelimit.Result{Allowed: false, Limit: 1 << 49, Remaining: 0, Reset: us(1 << 50), RetryAfter: us(1<<49 + 1)}},
				{us(1<<50 - 3), 0, ratelimit.Result{Allowed: true, Limit: 1 << 49, Remaining: 1<<49 - 3, Reset: us(3)}},
			},
		},
	}
	srv := redistest.Start(t)
	st := newStore(t, srv.Client(t, patient))
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for i, step := range tc.steps {
				got, err := st.takeAt(context.Background(), tc.name, tc.bucket, step.n, t0.Add(step.at))
				if err != nil {
					t.Fatalf("step %d: take %d at +%v: %v", i, step.n, step.at, err)
				}
				if got != step.want {
					t.Errorf("step %d: take %d at +%v\n got %+v\nwant %+v", i, step.n, step.at, got, step.want)
				}
			}
		})
	}
}

// TestTakeRealClock runs a bucket on the Redis clock: the burst is exact,
// the next request is told to come back about one interval later, and it
// is admitted once that time has passed.
func TestTakeRealClock(t *testing.T) {
	srv := redistest.Start(t)
	st := newStore(t, srv.Client(t, patient))
	ctx := context.Background()

	b := ratelimit.Bucket{Interval: time.Second, Burst: 3}
	start := time.Now()
	for i := range b.Burst {
		res, err := st.Take(ctx, "burst", b, 1)
		if err != nil || !res.Allowed || res.Remaining != b.Burst-1-i {
			t.Fatalf("take %d of the burst = %+v, %v; want admitted with %d left", i+1, res, err, b.Burst-1-i)
		}
	}
	res, err := st.Take(ctx, "burst", b, 1)
	if err != nil || res.Allowed {
		t.Fatalf("take after the burst = %+v, %v; want refused", res, err)
	}
	// RetryAfter is the interval less the time the burst took, Reset
	// three intervals less that time. (The Redis clock and the test's are
	// the same host's; the millisecond allows for rounding.)
	took := time.Since(start)
	if lo, hi := b.Interval-took-time.Millisecond, b.Interval; res.RetryAfter < lo || res.RetryAfter > hi {
		t.Errorf("RetryAfter after the burst = %v; want [%v, %v]", res.RetryAfter, lo, hi)
	}
	if lo, hi := 3*b.Interval-took-time.Millisecond, 3*b.Interval; res.Reset < lo || res.Reset > hi {
		t.Errorf("Reset after the burst = %v; want [%v, %v]", res.Reset, lo, hi)
	}

	// Refill: wait as told, and the request is admitted. The Redis clock
	// and the test's clock are the same host's, so after waiting the
	// RetryAfter Redis has seen at least that much time pass.
	b = ratelimit.Bucket{Interval: 50 * time.Millisecond, Burst: 2}
	start = time.Now()
	if res, err := st.Take(ctx, "refill", b, 2); err != nil || !res.Allowed {
		t.Fatalf("take the burst = %+v, %v", res, err)
	}
	var waited time.Duration
	deadline := start.Add(5 * time.Second)
	for {
		res, err := st.Take(ctx, "refill", b, 1)
		if err != nil {
			t.Fatalf("take while refilling: %v", err)
		}
		if res.Allowed {
			break
		}
		if waited == 0 && res.RetryAfter > b.Interval {
			t.Fatalf("RetryAfter = %v; want at most the interval %v", res.RetryAfter, b.Interval)
		}
		if time.Now().After(deadline) {
			t.Fatalf("not admitted %v after the burst; last %+v", time.Since(start), res)
		}
		waited += res.RetryAfter
		time.Sleep(res.RetryAfter) // waiting as the store says is the behaviour under test
	}
	if since := time.Since(start); since < b.Interval-time.Millisecond {
		t.Errorf("admitted %v after the burst; want at least one interval (%v)", since, b.Interval)
	}
}

// TestReservationsRealClock makes reservations on the Redis clock from
// three clients, like three gateway replicas: 30 requests at once on a
// bucket of burst 1, a 10ms interval and up to 1s of delay are all
// admitted, and queue up one interval apart. The k-th decision Redis runs
// waits k intervals less the time since the first decision, so the sorted
// delays lie in [k·T - spread, k·T], where spread bounds the time all the
// decisions took. When that is under an interval, the delays rounded up to
// whole intervals are exactly 0, T, ..., 29T; a loaded machine can spread
// the decisions wider, and the test then tries again on a new key.
func TestReservationsRealClock(t *testing.T) {
	const (
		replicas = 3
		requests = 30 // in all
		attempts = 10
	)
	b := ratelimit.Bucket{Interval: 10 * time.Millisecond, Burst: 1, MaxDelay: time.Second}
	srv := redistest.Start(t)
	var stores []*Store
	for range replicas {
		stores = append(stores, newStore(t, srv.Client(t, patient)))
	}
	// reserve sends the requests at once, spread over the stores, and
	// returns their results and an upper bound on the time they took.
	reserve := func(key string) ([]ratelimit.Result, time.Duration) {
		results := make([]ratelimit.Result, requests)
		begin := make(chan struct{})
		var wg sync.WaitGroup
		for i := range requests {
			wg.Go(func() {
				<-begin
				res, err := stores[i%replicas].Take(context.Background(), key, b, 1)
				if err != nil {
					t.Error(err)
				}
				results[i] = res
			})
		}
		start := time.Now()
		close(begin)
		wg.Wait()
		return results, time.Since(start)
	}
	reserve("warm-up") // load the script and fill the clients' pools
	for attempt := range attempts {
		results, spread := reserve(fmt.Sprint("reserve-", attempt))
		if t.Failed() {
			return
		}
		delays := make([]time.Duration, 0, requests)
		for i, res := range results {
			if !res.Allowed || res.Remaining != 0 || res.RetryAfter != 0 || res.Reset != res.Delay+b.Interval {
				t.Errorf("request %d = %+v; want admitted, none left, Reset = Delay + one interval", i, res)
			}
			delays = append(delays, res.Delay)
		}
		slices.Sort(delays)
		// The Redis clock and the test's are the same host's; the
		// millisecond allows for rounding.
		slack := spread + time.Millisecond
		for k, d := range delays {
			if hi := time.Duration(k) * b.Interval; d < hi-slack || d > hi {
				t.Errorf("attempt %d: delay %d of %d (sorted) = %v; want [%v, %v]", attempt, k, requests, d, hi-slack, hi)
			}
		}
		if t.Failed() {
			t.Logf("delays: %v", delays)
			return
		}
		if slack >= b.Interval {
			t.Logf("attempt %d: the decisions took up to %v, too long to tell the intervals apart; trying again", attempt, spread)
			continue
		}
		for k, d := range delays {
			if got, want := (d+b.Interval-1)/b.Interval, time.Duration(k); got != want {
				t.Fatalf("attempt %d: delays %v, rounded up to whole intervals, are not 0 to %d intervals", attempt, delays, requests-1)
			}
		}
		t.Logf("attempt %d: %d reservations in %v", attempt, requests, spread)
		return
	}
	t.Errorf("in all %d attempts the decisions took longer than an interval", attempts)
}

// TestTakeExpiry checks that a bucket key lives until the bucket is full
// again, and that a vanished key means a full bucket.
func TestTakeExpiry(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client(t, patient)
	st := newStore(t, c)
	ctx := context.Background()
	const key = "gatekit:rl:{b:expiry}"
	b := ratelimit.Bucket{Interval: 500 * time.Millisecond, Burst: 3}

	if _, err := st.Take(ctx, "expiry", b, 2); err != nil {
		t.Fatal(err)
	}
	ttl, err := c.PTTL(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	if ttl <= 0 || ttl > 2*b.Interval {
		t.Errorf("PTTL after taking 2 tokens of a %v bucket = %v; want (0, %v]", b.Interval, ttl, 2*b.Interval)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		n, err := c.Exists(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still exists 5s after its bucket was full again", key)
		}
		time.Sleep(5 * time.Millisecond)
	}
	res, err := st.Take(ctx, "expiry", b, 1)
	if err != nil || !res.Allowed || res.Remaining != 2 {
		t.Errorf("take after the key expired = %+v, %v; want a full bucket (2 left)", res, err)
	}
}

// TestErrors checks the requests a store refuses to send to Redis at all.
func TestErrors(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client(t, patient)
	hook := new(countingHook)
	c.AddHook(hook)
	st := newStore(t, c)
	ctx := context.Background()
	ok := ratelimit.Bucket{Interval: time.Second, Burst: 5}
	tests := []struct {
		name    string
		call    func() (ratelimit.Result, error)
		wantIs  error
		wantMsg string
	}{
		{"take more than the burst", func() (ratelimit.Result, error) { return st.Take(ctx, "k", ok, 6) }, ErrTooMany, "take 6 tokens from a bucket of 5"},
		{"take negative", func() (ratelimit.Result, error) { return st.Take(ctx, "k", ok, -1) }, nil, "negative n"},
		{"zero interval", func() (ratelimit.Result, error) {
			return st.Take(ctx, "k", ratelimit.Bucket{Burst: 1}, 1)
		}, nil, "invalid bucket"},
		{"zero burst", func() (ratelimit.Result, error) {
			return st.Take(ctx, "k", ratelimit.Bucket{Interval: time.Second}, 1)
		}, nil, "invalid bucket"},
		{"bucket beyond 35 years", func() (ratelimit.Result, error) {
			return st.Take(ctx, "k", ratelimit.Bucket{Interval: 24 * time.Hour, Burst: 20000}, 1)
		}, nil, "bucket too large"},
		{"bucket and max delay beyond 35 years", func() (ratelimit.Result, error) {
			return st.Take(ctx, "k", ratelimit.Bucket{Interval: 24 * time.Hour, Burst: 10000, MaxDelay: 10 * 365 * 24 * time.Hour}, 1)
		}, nil, "bucket too large"},
		{"max delay 1µs past the bound", func() (ratelimit.Result, error) {
			return st.Take(ctx, "k", ratelimit.Bucket{Interval: time.Microsecond, Burst: 1 << 49, MaxDelay: us(1<<49 + 1)}, 1)
		}, nil, "bucket too large"},
		{"longest interval", func() (ratelimit.Result, error) {
			return st.Take(ctx, "k", ratelimit.Bucket{Interval: time.Duration(math.MaxInt64), Burst: 1}, 1)
		}, nil, "bucket too large"},
		{"longest max delay", func() (ratelimit.Result, error) {
			return st.Take(ctx, "k", ratelimit.Bucket{Interval: time.Second, Burst: 1, MaxDelay: time.Duration(math.MaxInt64)}, 1)
		}, nil, "bucket too large"},
		{"count more than the limit", func() (ratelimit.Result, error) { return st.Count(ctx, "k", 5, ratelimit.Minute, 6) }, ErrTooMany, "count 6 against a limit of 5"},
		{"count negative", func() (ratelimit.Result, error) { return st.Count(ctx, "k", 5, ratelimit.Minute, -1) }, nil, "negative n"},
		{"zero limit", func() (ratelimit.Result, error) { return st.Count(ctx, "k", 0, ratelimit.Minute, 1) }, nil, "limit 0 out of range"},
		{"zero window", func() (ratelimit.Result, error) { return st.Count(ctx, "k", 5, ratelimit.Window{}, 1) }, nil, "invalid window"},
		{"window of a fraction of a second", func() (ratelimit.Result, error) {
			return st.Count(ctx, "k", 5, ratelimit.Every(1500*time.Millisecond), 1)
		}, nil, "invalid window"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := hook.commands()
			_, err := tc.call()
			if err == nil {
				t.Fatal("no error")
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("error %v is not %v", err, tc.wantIs)
			}
			if !strings.HasPrefix(err.Error(), "redisstore: ") || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("error %q; want it to start with \"redisstore: \" and contain %q", err, tc.wantMsg)
			}
			if sent := hook.commands() - before; sent != 0 {
				t.Errorf("%d commands sent to Redis for a request rejected up front", sent)
			}
		})
	}
}

// A countStep is one Count at an injected Redis time, t0 + at.
type countStep struct {
	at   time.Duration
	n    int64
	want ratelimit.Result
}

// TestCount checks the fixed-window counter step by step at injected
// times. Keys outlive their windows on the real clock, so the windows are
// long enough for the steps of a loaded machine.
func TestCount(t *testing.T) {
	t0 := time.Date(2024, 5, 17, 12, 0, 10, 0, time.UTC)
	const s = time.Second
	tests := []struct {
		name   string
		limit  int64
		window ratelimit.Window
		start  time.Time // t0 unless set
		steps  []countStep
	}{
		{
			name: "limit is exact and refusals are not counted", limit: 3, window: ratelimit.Minute,
			steps: []countStep{
				{0, 1, ratelimit.Result{Allowed: true, Limit: 3, Remaining: 2, Reset: 50 * s}},
				{0, 1, ratelimit.Result{Allowed: true, Limit: 3, Remaining: 1, Reset: 50 * s}},
				{10 * s, 1, ratelimit.Result{Allowed: true, Limit: 3, Remaining: 0, Reset: 40 * s}},
				{10 * s, 1, ratelimit.Result{Allowed: false, Limit: 3, Remaining: 0, Reset: 40 * s, RetryAfter: 40 * s}},
				{20 * s, 1, ratelimit.Result{Allowed: false, Limit: 3, Remaining: 0, Reset: 30 * s, RetryAfter: 30 * s}},
				{20 * s, 0, ratelimit.Result{Allowed: true, Limit: 3, Remaining: 0, Reset: 30 * s}},
				// The next minute starts from zero.
				{50 * s, 1, ratelimit.Result{Allowed: true, Limit: 3, Remaining: 2, Reset: 60 * s}},
			},
		},
		{
			name: "n at once", limit: 10, window: ratelimit.Hour,
			steps: []countStep{
				{0, 6, ratelimit.Result{Allowed: true, Limit: 10, Remaining: 4, Reset: 3590 * s}},
				{0, 5, ratelimit.Result{Allowed: false, Limit: 10, Remaining: 4, Reset: 3590 * s, RetryAfter: 3590 * s}},
				{0, 4, ratelimit.Result{Allowed: true, Limit: 10, Remaining: 0, Reset: 3590 * s}},
				{0, 10, ratelimit.Result{Allowed: false, Limit: 10, Remaining: 0, Reset: 3590 * s, RetryAfter: 3590 * s}},
			},
		},
		{
			// 1_700_000_000 = 18_888_888 × 90 + 80: the window started 80s ago.
			name: "every 90 seconds, aligned to the epoch", limit: 2, window: ratelimit.Every(90 * time.Second),
			start: time.Unix(1_700_000_000, 0),
			steps: []countStep{
				{0, 2, ratelimit.Result{Allowed: true, Limit: 2, Remaining: 0, Reset: 10 * s}},
				{9 * s, 1, ratelimit.Result{Allowed: false, Limit: 2, Remaining: 0, Reset: 1 * s, RetryAfter: 1 * s}},
				{10 * s, 1, ratelimit.Result{Allowed: true, Limit: 2, Remaining: 1, Reset: 90 * s}},
			},
		},
		{
			name: "a minute and an hour on one key count apart", limit: 1, window: ratelimit.Hour,
			start: time.Date(2024, 5, 17, 12, 0, 0, 0, time.UTC),
			steps: []countStep{
				{0, 1, ratelimit.Result{Allowed: true, Limit: 1, Remaining: 0, Reset: 3600 * s}},
			},
		},
	}
	srv := redistest.Start(t)
	st := newStore(t, srv.Client(t, patient))
	ctx := context.Background()
	// The minute window that starts with the hour above must not see the
	// hour's count.
	if res, err := st.countAt(ctx, "a minute and an hour on one key count apart", 1, ratelimit.Minute, 1,
		time.Date(2024, 5, 17, 12, 0, 0, 0, time.UTC)); err != nil || !res.Allowed {
		t.Fatalf("count a minute = %+v, %v", res, err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			start := t0
			if !tc.start.IsZero() {
				start = tc.start
			}
			for i, step := range tc.steps {
				got, err := st.countAt(ctx, tc.name, tc.limit, tc.window, step.n, start.Add(step.at))
				if err != nil {
					t.Fatalf("step %d: count %d at +%v: %v", i, step.n, step.at, err)
				}
				if got != step.want {
					t.Errorf("step %d: count %d at +%v\n got %+v\nwant %+v", i, step.n, step.at, got, step.want)
				}
			}
		})
	}
}

// TestCountWindowBounds compares the windows that the script computes from
// the Redis clock with Window.Bounds in Go, at the edges where calendar
// arithmetic goes wrong: ends of months and years, February in leap and
// non-leap years (2000 is a leap year, 2100 is not), and every month start
// from 1970 to 2200.
func TestCountWindowBounds(t *testing.T) {
	type instant struct {
		w  ratelimit.Window
		at time.Time
	}
	date := func(y int, m time.Month, d, h, min, s, usec int) time.Time {
		return time.Date(y, m, d, h, min, s, usec*1000, time.UTC)
	}
	var cases []instant
	for _, at := range []time.Time{
		date(1970, 1, 1, 0, 0, 0, 0),
		date(1970, 1, 31, 23, 59, 59, 999999),
		date(1999, 12, 31, 23, 59, 59, 999999),
		date(2000, 1, 1, 0, 0, 0, 0),
		date(2000, 2, 28, 12, 0, 0, 0),
		date(2000, 2, 29, 23, 59, 59, 999999),
		date(2000, 3, 1, 0, 0, 0, 0),
		date(2023, 2, 28, 23, 59, 59, 999999),
		date(2023, 3, 1, 0, 0, 0, 0),
		date(2023, 12, 31, 23, 59, 59, 999999),
		date(2024, 1, 1, 0, 0, 0, 0),
		date(2024, 2, 29, 23, 59, 59, 999999),
		date(2024, 3, 1, 0, 0, 0, 0),
		date(2038, 1, 19, 3, 14, 8, 0),
		date(2100, 2, 28, 23, 59, 59, 999999),
		date(2100, 3, 1, 0, 0, 0, 0),
		date(2096, 2, 29, 12, 0, 0, 0),
	} {
		for _, w := range []ratelimit.Window{
			ratelimit.Month, ratelimit.Day, ratelimit.Hour, ratelimit.Minute,
			ratelimit.Every(90 * time.Second), ratelimit.Every(7 * 24 * time.Hour),
		} {
			cases = append(cases, instant{w, at})
		}
	}
	for y := 1970; y <= 2200; y++ {
		for m := time.January; m <= time.December; m++ {
			first := date(y, m, 1, 0, 0, 0, 0)
			cases = append(cases, instant{ratelimit.Month, first}, instant{ratelimit.Month, first.Add(15 * 24 * time.Hour)})
			if y > 1970 || m > time.January {
				cases = append(cases, instant{ratelimit.Month, first.Add(-time.Microsecond)})
			}
		}
	}

	srv := redistest.Start(t)
	c := srv.Client(t, patient)
	st := newStore(t, c)
	ctx := context.Background()
	for i, tc := range cases {
		key := fmt.Sprint("bounds-", i)
		start, end := tc.w.Bounds(tc.at)
		res, err := st.countAt(ctx, key, 1<<40, tc.w, 1, tc.at)
		if err != nil {
			t.Fatalf("%v window at %v: %v", tc.w, tc.at, err)
		}
		if want := end.Sub(tc.at); res.Reset != want {
			t.Errorf("%v window at %v: Reset %v, want %v (window end %v)", tc.w, tc.at, res.Reset, want, end)
		}
		// The key names the start the script computed. A key lives a
		// second past its window's end on the real clock, so for windows
		// about to end it may be gone by now; other instants of those
		// windows check their start.
		if end.Sub(tc.at) < 10*time.Second {
			continue
		}
		name := "month"
		if d, months := tc.w.Fixed(); !months {
			name = fmt.Sprint(int64(d / time.Second))
		}
		full := fmt.Sprintf("gatekit:rl:{w:%s}:%s:%d", key, name, start.Unix())
		if n, err := c.Exists(ctx, full).Result(); err != nil || n != 1 {
			t.Errorf("%v window at %v: EXISTS %s = %d, %v; want 1 (window start %v)", tc.w, tc.at, full, n, err, start)
		}
	}
}

// TestCountRealClock checks Reset and RetryAfter against the window end
// as the Redis clock sees it, and the key's expiry.
func TestCountRealClock(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client(t, patient)
	st := newStore(t, c)
	ctx := context.Background()
	w := ratelimit.Every(time.Hour)

	for attempt := 0; ; attempt++ {
		key := fmt.Sprint("real-", attempt)
		before, err := c.Time(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		first, err1 := st.Count(ctx, key, 1, w, 1)
		second, err2 := st.Count(ctx, key, 1, w, 1)
		start, end := w.Bounds(before)
		full := fmt.Sprintf("gatekit:rl:{w:%s}:3600:%d", key, start.Unix())
		ttl, err3 := c.PTTL(ctx, full).Result()
		after, err := c.Time(ctx).Result()
		if err := errors.Join(err, err1, err2, err3); err != nil {
			t.Fatal(err)
		}
		if _, end2 := w.Bounds(after); end2 != end {
			if attempt < 3 {
				continue // an hour began in between; try again in the new one
			}
			t.Fatal("the window changed in every attempt")
		}
		if !first.Allowed || first.Remaining != 0 || first.RetryAfter != 0 {
			t.Errorf("first count = %+v; want admitted, none left", first)
		}
		if second.Allowed || second.Remaining != 0 || second.RetryAfter != second.Reset {
			t.Errorf("second count = %+v; want refused, RetryAfter = Reset", second)
		}
		for _, res := range []ratelimit.Result{first, second} {
			if lo, hi := end.Sub(after), end.Sub(before); res.Reset < lo || res.Reset > hi {
				t.Errorf("Reset = %v; want the time to the end of the hour by Redis's clock, in [%v, %v]", res.Reset, lo, hi)
			}
		}
		if lo, hi := end.Sub(after)+time.Second-time.Millisecond, end.Sub(before)+time.Second+time.Millisecond; ttl < lo || ttl > hi {
			t.Errorf("PTTL %s = %v; want the window end plus a second, in [%v, %v]", full, ttl, lo, hi)
		}
		return
	}
}

// TestDecisionsFollowRedisClock shows that decisions depend only on the
// time the script reads: with injected Redis times decades away from the
// test's clock, windows and buckets follow the injected time.
func TestDecisionsFollowRedisClock(t *testing.T) {
	srv := redistest.Start(t)
	st := newStore(t, srv.Client(t, patient))
	ctx := context.Background()
	tests := []struct {
		name      string
		redisTime time.Time
		wantReset time.Duration // of a month quota
	}{
		{"Redis in 1999", time.Date(1999, 2, 27, 0, 0, 0, 0, time.UTC), 2 * 24 * time.Hour},
		{"Redis in 2087", time.Date(2087, 4, 30, 12, 0, 0, 0, time.UTC), 12 * time.Hour},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := st.countAt(ctx, tc.name, 10, ratelimit.Month, 1, tc.redisTime)
			if err != nil || res.Reset != tc.wantReset {
				t.Errorf("month quota Reset = %v, %v; want %v", res.Reset, err, tc.wantReset)
			}
			b := ratelimit.Bucket{Interval: time.Minute, Burst: 1}
			if res, err := st.takeAt(ctx, tc.name, b, 1, tc.redisTime); err != nil || !res.Allowed {
				t.Fatalf("take = %+v, %v", res, err)
			}
			// Refused until the injected clock has moved on one interval,
			// whatever the test's own clock says.
			if res, err := st.takeAt(ctx, tc.name, b, 1, tc.redisTime.Add(time.Minute-time.Microsecond)); err != nil || res.Allowed {
				t.Errorf("take 1µs early = %+v, %v; want refused", res, err)
			}
			if res, err := st.takeAt(ctx, tc.name, b, 1, tc.redisTime.Add(time.Minute)); err != nil || !res.Allowed {
				t.Errorf("take one interval later = %+v, %v; want admitted", res, err)
			}
		})
	}
}

// TestNoGoClock guards the other half of the clock rule: the package's
// code never reads the gateway's clock, so it cannot decide on it.
func TestNoGoClock(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if id, ok := sel.X.(*ast.Ident); ok && id.Name == "time" {
				switch sel.Sel.Name {
				case "Now", "Since", "Until":
					t.Errorf("%s: time.%s: the store must decide on the Redis clock only", fset.Position(sel.Pos()), sel.Sel.Name)
				}
			}
			return true
		})
	}
}

// TestReplicasShareOneLimit runs three stores on three clients, like
// three gateway replicas, against one key from many goroutines at once.
// The limit must hold exactly: 50 admitted, not one more or less. The
// bucket refills once an hour and the window is 2^30 seconds long (it runs
// from 2004 to 2038), so no refill or new window can happen during the test.
func TestReplicasShareOneLimit(t *testing.T) {
	const (
		replicas   = 3
		goroutines = 16 // per replica
		attempts   = 25 // per goroutine: 1200 in all
		limit      = 50
	)
	tests := []struct {
		name   string
		decide func(s *Store) (ratelimit.Result, error)
	}{
		{"take", func(s *Store) (ratelimit.Result, error) {
			return s.Take(context.Background(), "shared", ratelimit.Bucket{Interval: time.Hour, Burst: limit}, 1)
		}},
		{"count", func(s *Store) (ratelimit.Result, error) {
			return s.Count(context.Background(), "shared", limit, ratelimit.Every(1<<30*time.Second), 1)
		}},
	}
	srv := redistest.Start(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stores []*Store
			for range replicas {
				stores = append(stores, newStore(t, srv.Client(t, patient)))
			}
			var admitted, refused atomic.Int64
			begin := make(chan struct{})
			var wg sync.WaitGroup
			for _, s := range stores {
				for range goroutines {
					wg.Go(func() {
						<-begin
						for range attempts {
							res, err := tc.decide(s)
							if err != nil {
								t.Error(err)
								return
							}
							if res.Allowed {
								admitted.Add(1)
							} else {
								refused.Add(1)
							}
						}
					})
				}
			}
			close(begin)
			wg.Wait()
			if got := admitted.Load(); got != limit {
				t.Errorf("admitted %d of %d; want exactly %d", got, admitted.Load()+refused.Load(), limit)
			}
		})
	}
}

// TestCluster runs the store through a cluster client on a Redis Cluster
// (of one node). In a cluster, every key a script touches must be in the
// slot of the keys it declared, or on a cluster of several nodes it may
// be on another node. The window keys, which the script names itself,
// are in the declared key's slot because they share its hash tag,
// whatever the limit key holds; CLUSTER KEYSLOT checks that directly,
// since one node serving every slot would not notice.
func TestCluster(t *testing.T) {
	srv := redistest.StartCluster(t)
	c := srv.ClusterClient(t, func(o *redis.ClusterOptions) {
		o.ReadTimeout, o.WriteTimeout = 5*time.Second, 5*time.Second
	})
	st := newStore(t, c)
	ctx := context.Background()
	b := ratelimit.Bucket{Interval: time.Hour, Burst: 1}
	for _, key := range []string{"client-42", "", "}", "}x", "a}b", "{x}", "{", "a{b}c", "ключ"} {
		t.Run(fmt.Sprintf("%q", key), func(t *testing.T) {
			declared := st.window + key + "}:60"
			want, err := c.ClusterKeySlot(ctx, declared).Result()
			if err != nil {
				t.Fatal(err)
			}
			if got, err := c.ClusterKeySlot(ctx, declared+":1700000040").Result(); err != nil || got != want {
				t.Errorf("slot of the window key = %d, %v; want %d, the slot of %q", got, err, want, declared)
			}
			for _, w := range []ratelimit.Window{ratelimit.Minute, ratelimit.Month} {
				first, err := st.Count(ctx, key, 1, w, 1)
				if err != nil || !first.Allowed {
					t.Fatalf("first count per %v = %+v, %v; want admitted", w, first, err)
				}
				second, err := st.Count(ctx, key, 1, w, 1)
				if err != nil || second.Allowed {
					t.Fatalf("second count per %v = %+v, %v; want refused", w, second, err)
				}
			}
			first, err := st.Take(ctx, key, b, 1)
			if err != nil || !first.Allowed {
				t.Fatalf("first take = %+v, %v; want admitted", first, err)
			}
			second, err := st.Take(ctx, key, b, 1)
			if err != nil || second.Allowed {
				t.Fatalf("second take = %+v, %v; want refused", second, err)
			}
		})
	}
}

// TestRedisKilled kills Redis under a store: decisions fail fast with an
// error, and succeed again once Redis is back (having forgotten every
// limit, since the test server keeps no data).
func TestRedisKilled(t *testing.T) {
	srv := redistest.Start(t)
	st := newStore(t, srv.Client(t)) // short timeouts
	ctx := context.Background()
	b := ratelimit.Bucket{Interval: time.Hour, Burst: 5}
	calls := []struct {
		name string
		call func() (ratelimit.Result, error)
	}{
		{"take", func() (ratelimit.Result, error) { return st.Take(ctx, "killed", b, 1) }},
		{"count", func() (ratelimit.Result, error) { return st.Count(ctx, "killed", 5, ratelimit.Day, 1) }},
	}
	for _, c := range calls {
		if _, err := c.call(); err != nil {
			t.Fatalf("%s before the kill: %v", c.name, err)
		}
	}

	srv.Stop()
	for _, c := range calls {
		start := time.Now()
		_, err := c.call()
		if err == nil {
			t.Fatalf("%s with Redis killed succeeded", c.name)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%s with Redis killed took %v to fail", c.name, d)
		}
		if !strings.HasPrefix(err.Error(), "redisstore: "+c.name+": ") {
			t.Errorf("%s error %q lacks the redisstore context", c.name, err)
		}
	}

	srv.Restart()
	for _, c := range calls {
		var res ratelimit.Result
		err := eventually(func() (err error) { res, err = c.call(); return err })
		if err != nil {
			t.Fatalf("%s after the restart: %v", c.name, err)
		}
		if !res.Allowed || res.Remaining != 4 {
			t.Errorf("%s after the restart = %+v; want a fresh limit, 4 left", c.name, res)
		}
	}
}

// TestSlowRedis stalls Redis: a decision gives up when its context's
// deadline passes rather than waiting for Redis.
func TestSlowRedis(t *testing.T) {
	tests := []struct {
		name  string
		stall func(t *testing.T, srv *redistest.Server) (resume func())
	}{
		{"stopped process", func(t *testing.T, srv *redistest.Server) func() {
			srv.Pause()
			return srv.Resume
		}},
		{"CLIENT PAUSE", func(t *testing.T, srv *redistest.Server) func() {
			// The server holds every command until the pause ends; it is in
			// force as soon as CLIENT PAUSE has answered. (DEBUG SLEEP from
			// another goroutine would leave no way to know it has begun.)
			admin := srv.Client(t, patient)
			if err := admin.Do(context.Background(), "CLIENT", "PAUSE", "2000", "ALL").Err(); err != nil {
				t.Fatal(err)
			}
			return func() {} // the pause ends by itself
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := redistest.Start(t)
			st := newStore(t, srv.Client(t))
			b := ratelimit.Bucket{Interval: time.Hour, Burst: 5}
			if _, err := st.Take(context.Background(), "slow", b, 1); err != nil {
				t.Fatal(err)
			}

			resume := tc.stall(t, srv)
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			start := time.Now()
			_, err := st.Take(ctx, "slow", b, 1)
			elapsed := time.Since(start)
			resume()
			if err == nil {
				t.Fatal("take on a stalled Redis succeeded")
			}
			if elapsed > time.Second {
				t.Errorf("take with a 50ms deadline on a stalled Redis returned after %v", elapsed)
			}
			if err := eventually(func() error {
				_, err := st.Take(context.Background(), "slow", b, 1)
				return err
			}); err != nil {
				t.Fatalf("take after Redis recovered: %v", err)
			}
		})
	}
}

// TestOneRoundTripPerDecision counts the commands a client sends: after
// the scripts are cached on the server, each decision is one EVALSHA.
// Before that, the first decision of each kind costs EVALSHA + EVAL.
func TestOneRoundTripPerDecision(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client(t, patient)
	hook := &countingHook{logNames: true}
	c.AddHook(hook)
	st := newStore(t, c)
	ctx := context.Background()
	b := ratelimit.Bucket{Interval: time.Millisecond, Burst: 1000}

	if err := c.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	hook.reset()
	if _, err := st.Take(ctx, "rt", b, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Count(ctx, "rt", 1000, ratelimit.Minute, 1); err != nil {
		t.Fatal(err)
	}
	if got, want := hook.names(), "evalsha eval evalsha eval"; got != want {
		t.Errorf("first decisions sent %q; want %q", got, want)
	}

	const n = 50
	hook.reset()
	for i := range n {
		if _, err := st.Take(ctx, fmt.Sprint("rt-", i%7), b, 1); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Count(ctx, fmt.Sprint("rt-", i%7), 1000, ratelimit.Minute, 1); err != nil {
			t.Fatal(err)
		}
	}
	if got := hook.commands(); got != 2*n {
		t.Errorf("%d decisions sent %d commands; want %d", 2*n, got, 2*n)
	}
	if got := hook.roundTrips.Load(); got != 2*n {
		t.Errorf("%d decisions took %d round trips; want %d", 2*n, got, 2*n)
	}
	if got, want := hook.names(), strings.TrimSpace(strings.Repeat("evalsha ", 2*n)); got != want {
		t.Errorf("decisions sent %q; want only evalsha", got)
	}
}

// countingHook counts the commands a client sends and the round trips
// they take (a pipeline is one), and with logNames their names.
type countingHook struct {
	logNames   bool
	cmds       atomic.Int64
	roundTrips atomic.Int64
	mu         sync.Mutex
	sent       []string
}

func (h *countingHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *countingHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.roundTrips.Add(1)
		h.record(cmd)
		return next(ctx, cmd)
	}
}

func (h *countingHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.roundTrips.Add(1)
		for _, cmd := range cmds {
			h.record(cmd)
		}
		return next(ctx, cmds)
	}
}

func (h *countingHook) record(cmd redis.Cmder) {
	h.cmds.Add(1)
	if !h.logNames {
		return
	}
	h.mu.Lock()
	h.sent = append(h.sent, cmd.Name())
	h.mu.Unlock()
}

func (h *countingHook) commands() int64 { return h.cmds.Load() }

func (h *countingHook) names() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return strings.Join(h.sent, " ")
}

func (h *countingHook) reset() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.cmds.Store(0)
	h.roundTrips.Store(0)
	h.sent = h.sent[:0]
}

// eventually calls f until it succeeds or 5 seconds pass, and returns its
// last error. A client's pool can hold connections to a server that was
// killed or stalled; the first calls on them fail.
func eventually(f func() error) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := f()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(10 * time.Millisecond)
	}
}
