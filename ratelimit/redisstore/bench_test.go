package redisstore

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatekit/gatekit/ratelimit"
	"github.com/gatekit/gatekit/ratelimit/internal/redistest"
)

// concurrency is the number of goroutines deciding at once in the
// benchmarks: a busy gateway replica.
const concurrency = 64

// BenchmarkTake64 measures Take from 64 goroutines of one process against
// a local redis-server, each goroutine with its own keys. It reports
// decisions per second and the round trips each took (target: exactly 1;
// the throughput is bounded by the single-threaded Redis, not the store).
func BenchmarkTake64(b *testing.B) {
	bucket := ratelimit.Bucket{Interval: time.Microsecond, Burst: 1 << 20}
	benchmarkDecisions(b, func(s *Store, ctx context.Context, key string) (ratelimit.Result, error) {
		return s.Take(ctx, key, bucket, 1)
	})
}

// BenchmarkCount64 is BenchmarkTake64 for Count.
func BenchmarkCount64(b *testing.B) {
	benchmarkDecisions(b, func(s *Store, ctx context.Context, key string) (ratelimit.Result, error) {
		return s.Count(ctx, key, ratelimit.MaxUnits, ratelimit.Minute, 1)
	})
}

func benchmarkDecisions(b *testing.B, decide func(s *Store, ctx context.Context, key string) (ratelimit.Result, error)) {
	srv := redistest.Start(b)
	c := srv.Client(b, patient, func(o *redis.Options) { o.PoolSize = concurrency })
	hook := new(countingHook)
	c.AddHook(hook)
	st := newStore(b, c)
	ctx := context.Background()

	keys := make([][]string, concurrency)
	for g := range keys {
		for k := range 16 {
			keys[g] = append(keys[g], "bench-"+strconv.Itoa(g)+"-"+strconv.Itoa(k))
		}
	}
	// Warm up: load the script and fill the pool, so that the measured
	// round trips are the decisions' own.
	run := func(perGoroutine func(g int) int) {
		var wg sync.WaitGroup
		for g := range concurrency {
			wg.Go(func() {
				for i := range perGoroutine(g) {
					if _, err := decide(st, ctx, keys[g][i%len(keys[g])]); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
	}
	run(func(int) int { return 4 })
	hook.reset()

	// b.Loop cannot be shared by goroutines, and RunParallel runs a
	// multiple of GOMAXPROCS goroutines, not 64; so split b.N by hand.
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	for g := range concurrency {
		wg.Go(func() {
			for i := 0; next.Add(1) <= int64(b.N); i++ {
				if _, err := decide(st, ctx, keys[g][i%len(keys[g])]); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
	b.ReportMetric(float64(hook.roundTrips.Load())/float64(b.N), "roundtrips/op")
}
