package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatekit/gatekit/ratelimit"
)

// DefaultPrefix starts every key the Store writes unless Config.Prefix says
// otherwise.
const DefaultPrefix = "gatekit:rl:"

// ErrTooMany is returned (wrapped) by Take when n exceeds the bucket's
// burst and by Count when n exceeds the window's limit: such a request
// could never be admitted, however long the caller waited, so it is a
// mistake in the configuration or the caller rather than a refusal.
var ErrTooMany = errors.New("redisstore: n exceeds the burst or the limit, so it can never be admitted")

// Config configures a Store.
type Config struct {
	// Client is the Redis client: a *redis.Client, *redis.ClusterClient
	// or *redis.Ring all work. Required. The Store does not close it.
	//
	// Two of the client's options matter here. ContextTimeoutEnabled
	// must be true: it makes the client honour the deadline of the ctx
	// given to Take and Count on its socket reads and writes. Without it
	// go-redis only checks ctx between steps, so a stalled Redis holds a
	// call for ReadTimeout (3s by default, and more with retries), past
	// any timeout the limiter sets (ratelimit's Shared.Timeout). New
	// refuses a *redis.Client, *redis.ClusterClient or *redis.Ring without
	// it; another implementation of redis.UniversalClient (a wrapper, an
	// AutoPipeliner) cannot be inspected, and New accepts it on trust.
	// MaxRetries (3 by default) makes go-redis resend a command whose
	// reply timed out; for a decision whose script did run, that counts
	// it twice, which errs on the side of refusing. Set MaxRetries to -1
	// to count every decision exactly once and see the errors instead.
	Client redis.UniversalClient

	// Prefix starts every key, so that several gateways or limits can
	// share a Redis. Default DefaultPrefix. It may contain a hash tag
	// ("{gatekit}:") to put all keys in one Redis Cluster slot; an empty
	// one ("{}") is refused because it would stop the per-key tags from
	// working (see the package comment on keys).
	Prefix string
}

// A Store is a ratelimit.Store in Redis: every gateway replica that uses
// the same Redis and Prefix shares the limits. It is safe for concurrent
// use. The zero value is not usable; call New.
type Store struct {
	client redis.UniversalClient
	bucket string // Prefix + "{b:", the start of every bucket key
	window string // Prefix + "{w:", the start of every window key
	take   *redis.Script
	count  *redis.Script
}

var _ ratelimit.Store = (*Store)(nil)

// New returns a Store for cfg. It does not contact Redis: the scripts are
// loaded on first use (see the package comment), so a gateway can start
// while Redis is still coming up.
func New(cfg Config) (*Store, error) {
	if cfg.Client == nil {
		return nil, errors.New("redisstore: Config.Client is required")
	}
	prefix := cfg.Prefix
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if i := strings.IndexByte(prefix, '{'); i >= 0 && strings.HasPrefix(prefix[i+1:], "}") {
		return nil, fmt.Errorf("redisstore: Config.Prefix %q holds an empty hash tag {}", prefix)
	}
	if !honoursDeadlines(cfg.Client) {
		return nil, errors.New("redisstore: Config.Client must set ContextTimeoutEnabled: true, or a slow Redis stalls requests past the limiter's timeout")
	}
	return &Store{
		client: cfg.Client,
		bucket: prefix + "{b:",
		window: prefix + "{w:",
		take:   redis.NewScript(takeScript),
		count:  redis.NewScript(countScript),
	}, nil
}

// honoursDeadlines reports whether c bounds its socket I/O by the deadline
// of a call's ctx (see Config.Client). Clients it cannot inspect pass.
func honoursDeadlines(c redis.UniversalClient) bool {
	switch c := c.(type) {
	case *redis.Client:
		return c.Options().ContextTimeoutEnabled
	case *redis.ClusterClient:
		return c.Options().ContextTimeoutEnabled
	case *redis.Ring:
		return c.Options().ContextTimeoutEnabled
	}
	return true
}

// Take takes n tokens from key's bucket if it holds them (see
// ratelimit.Store), deciding on the Redis clock in one round trip. With a
// positive b.MaxDelay it reserves tokens that will be earned within
// MaxDelay, and Result.Delay says how long the caller must wait. n = 0
// reports the bucket's state without taking anything. It returns an error
// wrapping ErrTooMany if n exceeds b.Burst, and an error if b is invalid
// or Redis does not answer before ctx is done. An error does not prove the
// decision was not taken: Redis may have run it and lost the reply.
func (s *Store) Take(ctx context.Context, key string, b ratelimit.Bucket, n int64) (ratelimit.Result, error) {
	return s.takeAt(ctx, key, b, n, time.Time{})
}

// Count adds n to key's count in the current window of w if it stays
// within limit (see ratelimit.Store), deciding on the Redis clock in one
// round trip. n = 0 reports the window's state without counting. It
// returns an error wrapping ErrTooMany if n exceeds limit, and an error if
// limit or w is invalid or Redis does not answer before ctx is done. An
// error does not prove nothing was counted: Redis may have counted and
// lost the reply.
func (s *Store) Count(ctx context.Context, key string, limit int64, w ratelimit.Window, n int64) (ratelimit.Result, error) {
	return s.countAt(ctx, key, limit, w, n, time.Time{})
}

// takeAt is Take; a non-zero at replaces the Redis clock, for tests only.
func (s *Store) takeAt(ctx context.Context, key string, b ratelimit.Bucket, n int64, at time.Time) (ratelimit.Result, error) {
	if b.Interval <= 0 || b.Burst < 1 {
		return ratelimit.Result{}, fmt.Errorf("redisstore: take: invalid bucket (interval %v, burst %d): the interval must be positive and the burst at least 1", b.Interval, b.Burst)
	}
	interval := micros(b.Interval)
	var maxDelay int64 // a negative MaxDelay means none, as 0 does
	if b.MaxDelay > 0 {
		maxDelay = micros(b.MaxDelay)
	}
	// The script's times reach interval × burst + max delay ahead of now.
	if interval > ratelimit.MaxUnits/b.Burst || maxDelay > ratelimit.MaxUnits-interval*b.Burst {
		return ratelimit.Result{}, fmt.Errorf("redisstore: take: bucket too large: interval %v × burst %d + max delay %v exceeds %v", b.Interval, b.Burst, max(b.MaxDelay, 0), time.Duration(ratelimit.MaxUnits)*time.Microsecond)
	}
	switch {
	case n < 0:
		return ratelimit.Result{}, fmt.Errorf("redisstore: take: negative n %d", n)
	case n > b.Burst:
		return ratelimit.Result{}, fmt.Errorf("%w: take %d tokens from a bucket of %d", ErrTooMany, n, b.Burst)
	}
	args := []any{interval, b.Burst, n, maxDelay}
	if !at.IsZero() {
		args = append(args, at.UnixMicro())
	}
	vals, err := s.take.Run(ctx, s.client, []string{s.bucket + key + "}"}, args...).Int64Slice()
	if err != nil {
		return ratelimit.Result{}, fmt.Errorf("redisstore: take: %w", err)
	}
	return result(vals, b.Burst, 5)
}

// micros is d in whole microseconds, the unit of the scripts, rounded up:
// a bucket may then refill a little slower than asked, never faster, and
// a reservation never waits less than asked.
func micros(d time.Duration) int64 {
	us := int64(d / time.Microsecond) // d + 999ns could overflow
	if d%time.Microsecond != 0 {
		us++
	}
	return us
}

// countAt is Count; a non-zero at replaces the Redis clock, for tests only.
func (s *Store) countAt(ctx context.Context, key string, limit int64, w ratelimit.Window, n int64, at time.Time) (ratelimit.Result, error) {
	if limit < 1 || limit > ratelimit.MaxUnits {
		return ratelimit.Result{}, fmt.Errorf("redisstore: count: limit %d out of range [1, 2^50]", limit)
	}
	d, months := w.Fixed()
	var length, name string // the window's length in seconds for the script, and in the key
	switch {
	case months:
		length, name = "0", "month"
	case d >= time.Second && d%time.Second == 0 && d/time.Microsecond <= ratelimit.MaxUnits:
		length = strconv.FormatInt(int64(d/time.Second), 10)
		name = length
	default:
		return ratelimit.Result{}, fmt.Errorf("redisstore: count: invalid window %v: want calendar months or whole seconds up to 35 years", w)
	}
	switch {
	case n < 0:
		return ratelimit.Result{}, fmt.Errorf("redisstore: count: negative n %d", n)
	case n > limit:
		return ratelimit.Result{}, fmt.Errorf("%w: count %d against a limit of %d", ErrTooMany, n, limit)
	}
	args := []any{limit, n, length}
	if !at.IsZero() {
		args = append(args, at.UnixMicro())
	}
	// The window's length is part of the key, so that, say, a per-minute
	// and a per-hour quota on one key do not share a counter in the
	// windows that start at the same instant.
	vals, err := s.count.Run(ctx, s.client, []string{s.window + key + "}:" + name}, args...).Int64Slice()
	if err != nil {
		return ratelimit.Result{}, fmt.Errorf("redisstore: count: %w", err)
	}
	return result(vals, limit, 4)
}

// result turns a script's reply into a Result: {allowed, remaining,
// reset, retry after} and, from Take's script (want 5), the delay; times
// in microseconds.
func result(vals []int64, limit int64, want int) (ratelimit.Result, error) {
	if len(vals) != want {
		return ratelimit.Result{}, fmt.Errorf("redisstore: the script answered %d values, want %d", len(vals), want)
	}
	res := ratelimit.Result{
		Allowed:    vals[0] == 1,
		Limit:      limit,
		Remaining:  vals[1],
		Reset:      time.Duration(vals[2]) * time.Microsecond,
		RetryAfter: time.Duration(vals[3]) * time.Microsecond,
	}
	if want == 5 {
		res.Delay = time.Duration(vals[4]) * time.Microsecond
	}
	return res, nil
}
