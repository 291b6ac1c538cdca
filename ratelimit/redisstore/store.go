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

// maxMicros bounds every duration the scripts handle: 2^50 µs, about 35
// years. With a Unix time in µs (about 2^51 today) added, the sums stay
// below 2^53, the largest integer a Lua number (a double) holds exactly.
const maxMicros = 1 << 50

// Config configures a Store.
type Config struct {
	// Client is the Redis client: a *redis.Client, *redis.ClusterClient
	// or *redis.Ring all work. Required. The Store does not close it.
	//
	// Two of the client's options matter here. ContextTimeoutEnabled
	// makes the client honour the deadline of the ctx given to Take and
	// Count on its socket reads; without it go-redis only checks ctx
	// between steps and a stalled Redis holds the call for ReadTimeout.
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
	return &Store{
		client: cfg.Client,
		bucket: prefix + "{b:",
		window: prefix + "{w:",
		take:   redis.NewScript(takeScript),
		count:  redis.NewScript(countScript),
	}, nil
}

// Take takes n tokens from key's bucket if it holds them (see
// ratelimit.Store), deciding on the Redis clock in one round trip. n = 0
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
	// Round up to whole microseconds, the unit of the script: a bucket
	// may then refill a little slower than asked, never faster.
	interval := int64((b.Interval + time.Microsecond - 1) / time.Microsecond)
	if interval > maxMicros/b.Burst {
		return ratelimit.Result{}, fmt.Errorf("redisstore: take: bucket too large: interval %v × burst %d exceeds %v", b.Interval, b.Burst, time.Duration(maxMicros)*time.Microsecond)
	}
	switch {
	case n < 0:
		return ratelimit.Result{}, fmt.Errorf("redisstore: take: negative n %d", n)
	case n > b.Burst:
		return ratelimit.Result{}, fmt.Errorf("%w: take %d tokens from a bucket of %d", ErrTooMany, n, b.Burst)
	}
	args := []any{interval, b.Burst, n}
	if !at.IsZero() {
		args = append(args, at.UnixMicro())
	}
	vals, err := s.take.Run(ctx, s.client, []string{s.bucket + key + "}"}, args...).Int64Slice()
	if err != nil {
		return ratelimit.Result{}, fmt.Errorf("redisstore: take: %w", err)
	}
	return result(vals, b.Burst)
}

// countAt is Count; a non-zero at replaces the Redis clock, for tests only.
func (s *Store) countAt(ctx context.Context, key string, limit int64, w ratelimit.Window, n int64, at time.Time) (ratelimit.Result, error) {
	if limit < 1 || limit > maxMicros {
		return ratelimit.Result{}, fmt.Errorf("redisstore: count: limit %d out of range [1, 2^50]", limit)
	}
	d, months := w.Fixed()
	var length, name string // the window's length in seconds for the script, and in the key
	switch {
	case months:
		length, name = "0", "month"
	case d >= time.Second && d%time.Second == 0 && d/time.Microsecond <= maxMicros:
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
	return result(vals, limit)
}

// result turns a script's reply into a Result.
func result(vals []int64, limit int64) (ratelimit.Result, error) {
	if len(vals) != 4 {
		return ratelimit.Result{}, fmt.Errorf("redisstore: the script answered %d values, want 4", len(vals))
	}
	return ratelimit.Result{
		Allowed:    vals[0] == 1,
		Limit:      limit,
		Remaining:  vals[1],
		Reset:      time.Duration(vals[2]) * time.Microsecond,
		RetryAfter: time.Duration(vals[3]) * time.Microsecond,
	}, nil
}
