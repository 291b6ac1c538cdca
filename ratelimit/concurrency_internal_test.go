package ratelimit

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/gatekit/gatekit/gateway"
)

// TestConcurrencyGrantRacesGiveUp covers a waiter that is granted a slot at
// the moment its wait runs out or its client leaves. Which select case wins
// is up to the runtime, so each case runs many times; whichever wins, the
// slot must end up used or passed on, never lost or counted twice.
func TestConcurrencyGrantRacesGiveUp(t *testing.T) {
	closed := make(chan time.Time)
	close(closed)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()

	tests := []struct {
		name    string
		granted bool
		ctx     context.Context
		expired <-chan time.Time
		// what may come out: a slot, a 503, the context's error
		mayAdmit, mayRefuse, mayGiveUp bool
	}{
		{name: "granted as the wait runs out", granted: true, ctx: context.Background(), expired: closed, mayAdmit: true},
		{name: "granted as the client leaves", granted: true, ctx: cancelled, mayAdmit: true, mayGiveUp: true},
		{name: "wait runs out", ctx: context.Background(), expired: closed, mayRefuse: true},
		{name: "client leaves", ctx: cancelled, mayGiveUp: true},
	}
	const max = 2
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := NewConcurrency(ConcurrencyConfig{Max: max, Queue: 1, MaxWait: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			for range max {
				if _, err := c.Limit(context.Background(), nil); err != nil {
					t.Fatal(err)
				}
			}
			for range 200 {
				w := &slotWaiter{ready: make(chan struct{})}
				c.mu.Lock()
				c.enqueue(w)
				c.mu.Unlock()
				if tc.granted {
					c.release() // one of the max finishes and hands its slot to w
				}
				done, err := c.wait(tc.ctx, w, tc.expired)
				_, refused := errors.AsType[*gateway.Error](err)
				switch {
				case err == nil && tc.mayAdmit:
					if done == nil {
						t.Fatal("admitted without a done function")
					}
					if got := c.InFlight(); got != max {
						t.Fatalf("admitted: InFlight() = %d, want %d", got, max)
					}
				case refused && tc.mayRefuse:
					if got := c.InFlight(); got != max {
						t.Fatalf("refused: InFlight() = %d, want %d", got, max)
					}
				case errors.Is(err, context.Canceled) && tc.mayGiveUp:
					want := max
					if tc.granted {
						want = max - 1 // the granted slot was given back
					}
					if got := c.InFlight(); got != want {
						t.Fatalf("gave up: InFlight() = %d, want %d", got, want)
					}
				default:
					t.Fatalf("outcome: done %v, err %v", done != nil, err)
				}
				if got := c.Waiting(); got != 0 {
					t.Fatalf("Waiting() = %d, want 0", got)
				}
				if c.head != nil || c.tail != nil {
					t.Fatal("the queue is not empty")
				}
				// Back to max in flight for the next round.
				for c.InFlight() < max {
					if _, err := c.Limit(context.Background(), nil); err != nil {
						t.Fatal(err)
					}
				}
			}
		})
	}
}

// TestConcurrencyFinishNoBody checks that a reply that has nothing to send
// does not allocate a body wrapper.
func TestConcurrencyFinishNoBody(t *testing.T) {
	c, err := NewConcurrency(ConcurrencyConfig{Max: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, resp := range []*gateway.Response{nil, {}, {Body: http.NoBody}} {
		if _, err := c.Limit(context.Background(), nil); err != nil {
			t.Fatal(err)
		}
		c.finish(resp)
		if resp != nil && resp.Body != nil && resp.Body != http.NoBody {
			t.Errorf("body replaced by %T", resp.Body)
		}
		if c.InFlight() != 0 {
			t.Fatalf("InFlight() = %d after a reply without body", c.InFlight())
		}
	}
}
