package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// A Store keeps limiter state outside the process, so that every replica
// of a gateway counts against one limit. Each call is one atomic decision,
// taken on the store's own clock, never the caller's: replicas whose clocks
// disagree still agree on the limit. The redisstore subpackage implements
// it on Redis.
//
// A Store returns an error when it cannot decide (unreachable, too slow:
// ctx carries the deadline); the Limiter or Quota that calls it then fails
// open or closed as configured (see Shared).
type Store interface {
	// Take takes n tokens from key's bucket if it holds them, with the
	// generic cell rate algorithm: the bucket earns one token per
	// b.Interval up to b.Burst tokens, and starts full.
	Take(ctx context.Context, key string, b Bucket, n int64) (Result, error)
	// Count adds n to key's count in the current window of w if the count
	// stays within limit, and admits the request then; a refused request
	// is not counted.
	Count(ctx context.Context, key string, limit int64, w Window, n int64) (Result, error)
}

// A Bucket is a token bucket for Store.Take.
type Bucket struct {
	// Interval is the time to earn one token: the period of the rate
	// divided by its number of events (100 per minute: 600ms).
	Interval time.Duration
	// Burst is the most tokens the bucket holds, and what it starts with.
	Burst int64
	// MaxDelay, when positive, makes Take reserve rather than refuse: a
	// request whose tokens will be earned within MaxDelay is admitted at
	// once with the tokens taken in advance, and Result.Delay says how long
	// the caller must wait before going on (throttling). A request whose
	// tokens come later is refused as without MaxDelay.
	MaxDelay time.Duration
}

func (b Bucket) validate() error {
	switch {
	case b.Interval <= 0:
		return errors.New("the interval of a bucket must be positive")
	case b.Burst < 1:
		return errors.New("the burst of a bucket must be at least 1")
	}
	return nil
}

// A Result is one decision of a limiter or a Store.
type Result struct {
	// Allowed reports whether the request was admitted (and counted).
	Allowed bool
	// Limit is the quota of the policy: a bucket's burst, a window's
	// limit.
	Limit int64
	// Remaining is what is left after this decision: whole tokens in a
	// bucket, requests left in a window.
	Remaining int64
	// Reset is the time until Remaining is back to Limit: the bucket is
	// full again, the window ends.
	Reset time.Duration
	// RetryAfter, when the request was refused, is the time until the same
	// request would be admitted without waiting (if nothing else takes the
	// tokens first); 0 when it was admitted.
	RetryAfter time.Duration
	// Delay, for a request admitted by a reservation (Bucket.MaxDelay),
	// is the time the caller must wait before going on; 0 otherwise.
	Delay time.Duration

	failedOpen bool // admitted because the store could not decide
}

// MaxUnits bounds what a Store must represent exactly: counts, and times
// in microseconds (about 35 years). Limiters refuse configurations past it
// at start-up.
const MaxUnits = 1 << 50

// A Window is the period of a quota: fixed windows of a duration, aligned
// to the Unix epoch (so a day runs from midnight to midnight UTC), or
// calendar months in UTC.
type Window struct {
	d      time.Duration // 0 for calendar months
	months bool
}

// The windows of quotas. Months are calendar months in UTC; the others
// are aligned to the Unix epoch, so they start on the minute, the hour, or
// at midnight UTC.
var (
	Minute = Window{d: time.Minute}
	Hour   = Window{d: time.Hour}
	Day    = Window{d: 24 * time.Hour}
	Month  = Window{months: true}
)

// Every returns fixed windows of d, which must be a whole number of
// seconds, aligned to the Unix epoch.
func Every(d time.Duration) Window { return Window{d: d} }

func (w Window) validate() error {
	if w.months {
		return nil
	}
	if w.d < time.Second || w.d%time.Second != 0 {
		return fmt.Errorf("a window must be a whole number of seconds, at least one; got %v", w.d)
	}
	return nil
}

// Fixed returns the length of the windows, or 0 and true for calendar
// months.
func (w Window) Fixed() (d time.Duration, months bool) { return w.d, w.months }

// Bounds returns the window that holds t: its start (inclusive) and end
// (exclusive), in UTC.
func (w Window) Bounds(t time.Time) (start, end time.Time) {
	t = t.UTC()
	if w.months {
		start = time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
		return start, start.AddDate(0, 1, 0)
	}
	unix, d := t.UnixNano(), int64(w.d)
	s := unix - unix%d
	if unix%d < 0 {
		s -= d
	}
	start = time.Unix(0, s).UTC()
	return start, start.Add(w.d)
}

// String names the window, as "minute", "month" or "90s".
func (w Window) String() string {
	switch {
	case w.months:
		return "month"
	case w.d == time.Minute:
		return "minute"
	case w.d == time.Hour:
		return "hour"
	case w.d == 24*time.Hour:
		return "day"
	}
	return w.d.String()
}
