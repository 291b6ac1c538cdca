package redisstore

import (
	"context"
	"testing"
	"time"

	"github.com/gatekit/gatekit/ratelimit"
	"github.com/gatekit/gatekit/ratelimit/internal/redistest"
)

// TestDecisionAllocs guards the allocations of a decision. Most belong to
// go-redis (the command, its arguments, the reply); the store's own are
// the key and the argument list. Measured on Go 1.26 with go-redis
// v9.23.0: 16 for Take, 18 for Count.
func TestDecisionAllocs(t *testing.T) {
	srv := redistest.Start(t)
	st := newStore(t, srv.Client(t, patient))
	ctx := context.Background()
	b := ratelimit.Bucket{Interval: time.Microsecond, Burst: 1 << 20}
	tests := []struct {
		name   string
		max    float64
		decide func() error
	}{
		{"take", 20, func() error { _, err := st.Take(ctx, "allocs", b, 1); return err }},
		{"count", 22, func() error { _, err := st.Count(ctx, "allocs", ratelimit.MaxUnits, ratelimit.Minute, 1); return err }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.decide(); err != nil { // load the script
				t.Fatal(err)
			}
			var err error
			got := testing.AllocsPerRun(200, func() {
				if e := tc.decide(); e != nil {
					err = e
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %.0f allocations per decision", tc.name, got)
			if got > tc.max {
				t.Errorf("%s: %.0f allocations per decision; want at most %.0f", tc.name, got, tc.max)
			}
		})
	}
}
