package ratelimit_test

import (
	"context"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/gatekit/gatekit/ratelimit"
)

// TestKeysBounded sends a million distinct keys through a limiter and a
// quota that may hold 10,000: both keep at most that many, and the heap
// stays at what 10,000 keys cost, not a million.
func TestKeysBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("a million keys")
	}
	const capacity, keys = 10_000, 1_000_000
	l := mustLimiter(t, ratelimit.Config{Name: "m", Rate: 1, Per: time.Hour, MaxKeys: capacity})
	q, err := ratelimit.NewQuota(ratelimit.QuotaConfig{Name: "m", Limit: 1, Window: ratelimit.Day, MaxKeys: capacity})
	if err != nil {
		t.Fatal(err)
	}
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	ctx := context.Background()
	buf := make([]byte, 0, 32)
	fill := func(from, to int) {
		for i := from; i < to; i++ {
			buf = strconv.AppendInt(append(buf[:0], "client-"...), int64(i), 10)
			if res, _ := l.Allow(ctx, buf); !res.Allowed {
				t.Fatalf("key %d: a new key was refused", i)
			}
			q.Allow(ctx, buf, 1)
		}
	}
	fill(0, capacity)
	atCapacity := heap()
	fill(capacity, keys)
	after := heap()
	if n := l.Keys(); n > capacity {
		t.Fatalf("limiter holds %d keys, want at most %d", n, capacity)
	}
	if n := q.Keys(); n > capacity {
		t.Fatalf("quota holds %d keys, want at most %d", n, capacity)
	}
	// Growth past the first 10,000 keys: a few per cent for maps that
	// were rehashed, not 100 times as much.
	if after > atCapacity+atCapacity/4 {
		t.Fatalf("heap grew from %d to %d bytes with %d keys over capacity", atCapacity, after, keys-capacity)
	}
	t.Logf("heap with %d keys held: %.1f MB; after %d keys: %.1f MB", capacity, float64(atCapacity)/1e6, keys, float64(after)/1e6)
	// The keys used most recently are the ones kept.
	if res, _ := l.Allow(ctx, []byte("client-"+strconv.Itoa(keys-1))); res.Allowed {
		t.Fatal("the most recent key was forgotten")
	}
}
