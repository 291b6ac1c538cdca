package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/gatekit/gatekit/gateway"
)

// Shared makes a Limiter or a Quota count in a Store that every replica of
// the gateway shares, instead of in the process.
type Shared struct {
	// Store holds the counts; required.
	Store Store
	// Timeout bounds each decision of the store, so that a slow store
	// cannot stall requests; past it, the decision fails (see FailOpen).
	// Default 50ms. The store must honour the context's deadline on its
	// sockets (redisstore refuses a client that would not).
	Timeout time.Duration
	// FailOpen admits requests the store cannot decide on (unreachable,
	// too slow), logging and counting them (Stats.FailedOpen). By default
	// they are refused with 503 and Retry-After: 1.
	FailOpen bool
	// PreCheck refuses, without asking the store, a key the store refused
	// and whose wait has not passed yet: a client hammering past its
	// limit costs no round trips. It never admits anything, so it cannot
	// let a key over its limit.
	PreCheck bool
	// Logger receives store failures, at most one line per second per
	// limiter with the count since the last line. Default slog.Default().
	Logger *slog.Logger
}

// Stats counts the decisions of a limiter since it was made, other than
// admissions (which would cost every request an atomic write to memory
// shared by all CPUs; count requests in the access log or metrics).
type Stats struct {
	Refused uint64 // requests refused for their limit (429)
	// StoreErrors counts decisions the store could not make; each was
	// either FailedOpen or FailedClosed.
	StoreErrors  uint64
	FailedOpen   uint64 // admitted without a decision
	FailedClosed uint64 // refused with 503 without a decision
	PreChecked   uint64 // refused by the pre-check, without a round trip
}

type counters struct {
	refused, storeErrors, failedOpen, failedClosed, preChecked atomic.Uint64
}

func (c *counters) stats() Stats {
	return Stats{
		Refused:     c.refused.Load(),
		StoreErrors: c.storeErrors.Load(), FailedOpen: c.failedOpen.Load(),
		FailedClosed: c.failedClosed.Load(), PreChecked: c.preChecked.Load(),
	}
}

// A sharedStore asks the store with the timeout, remembers refusals for
// the pre-check, and turns failures into admissions or 503s.
type sharedStore struct {
	Shared
	what     string // "limiter \"name\"", for logs and errors
	prefix   string // before every key: the limiter's name and what else tells its counts apart
	denied   *keyTable[denial]
	counters *counters
	unlogged atomic.Uint64 // failures since the last log line
	lastLog  atomic.Int64  // unix nanos of the last log line
}

// A denial is a refusal of the store, remembered for the pre-check.
type denial struct {
	until   time.Time // when a retry can succeed
	resetAt time.Time // when the key's quota is whole again
	limit   int64     // the limit the store refused against
}

func newSharedStore(s *Shared, what, prefix string, maxKeys int, c *counters) (*sharedStore, error) {
	if s.Store == nil {
		return nil, errors.New("Shared.Store is required")
	}
	if s.Timeout < 0 {
		return nil, errors.New("Shared.Timeout must not be negative")
	}
	ss := &sharedStore{Shared: *s, what: what, prefix: prefix, counters: c}
	if ss.Timeout == 0 {
		ss.Timeout = 50 * time.Millisecond
	}
	if ss.Logger == nil {
		ss.Logger = slog.Default()
	}
	if ss.PreCheck {
		ss.denied = newKeyTable[denial](maxKeys)
	}
	return ss, nil
}

// preChecked returns, when the pre-check is on and the store refused key
// against a limit at least as high as limit, a refusal that still holds at
// now for longer than slack (the longest the request may wait). A higher
// limit now (a plan upgraded) asks the store again.
func (s *sharedStore) preChecked(key []byte, now time.Time, limit int64, slack time.Duration) (res Result, refused bool) {
	if s.denied == nil {
		return res, false
	}
	s.denied.with(key, func(*denial) {}, func(d *denial) {
		if d.until.Sub(now) > slack && limit <= d.limit {
			refused = true
			res = Result{Limit: d.limit, Reset: max(d.resetAt.Sub(now), 0), RetryAfter: d.until.Sub(now)}
		}
	})
	if refused {
		s.counters.preChecked.Add(1)
		s.counters.refused.Add(1)
	}
	return res, refused
}

// decide asks the store through ask, with the timeout. failed is true
// when the store did not decide; err is then the reply to send: nil when
// failing open, a 503 when failing closed, or the context's error when the
// request itself ended (which is no failure of the store).
func (s *sharedStore) decide(ctx context.Context, key []byte, now time.Time, ask func(ctx context.Context, key string) (Result, error)) (res Result, failed bool, err error) {
	sctx, cancel := context.WithTimeout(ctx, s.Timeout)
	res, err = ask(sctx, s.prefix+string(key))
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return res, true, fmt.Errorf("ratelimit: %s: %w", s.what, ctx.Err())
		}
		return res, true, s.failure(err)
	}
	if !res.Allowed {
		s.counters.refused.Add(1)
		if s.denied != nil && res.RetryAfter > 0 {
			d := denial{until: now.Add(res.RetryAfter), resetAt: now.Add(res.Reset), limit: res.Limit}
			s.denied.with(key, func(*denial) {}, func(old *denial) { *old = d })
		}
	}
	return res, false, nil
}

// failure counts and logs a decision the store could not make, and
// returns what to answer: nil to admit, or a 503.
func (s *sharedStore) failure(err error) error {
	s.counters.storeErrors.Add(1)
	s.unlogged.Add(1)
	now := time.Now().UnixNano()
	if last := s.lastLog.Load(); now-last >= int64(time.Second) && s.lastLog.CompareAndSwap(last, now) {
		n := s.unlogged.Swap(0)
		s.Logger.Warn("ratelimit: the store cannot decide", "limiter", s.what, "failures", n, "fail_open", s.FailOpen, "err", err)
	}
	if s.FailOpen {
		s.counters.failedOpen.Add(1)
		return nil
	}
	s.counters.failedClosed.Add(1)
	return &gateway.Error{
		Status: http.StatusServiceUnavailable,
		Detail: "the rate limit cannot be checked right now; retry later",
		Header: http.Header{"Retry-After": {"1"}},
		Err:    fmt.Errorf("ratelimit: %s: %w", s.what, err),
	}
}
