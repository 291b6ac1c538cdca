package ratelimit

import (
	"context"
	"fmt"
	"maps"
	"time"

	"github.com/gatekit/gatekit/gateway"
)

// QuotaConfig configures a Quota: N requests per fixed window per key.
type QuotaConfig struct {
	// Name names the policy in the RateLimit header fields, logs and
	// store keys. Default "quota". Quotas that share a Store must have
	// different names.
	Name string
	// Limit is the number of requests a key may make in one window.
	// Required unless LimitFor gives every request its limit.
	Limit int64
	// LimitFor, when set, gives the limit of the request's key, such as
	// the limit of the plan of its API key (see LimitByClaim); ok false
	// falls back to Limit. A key's limit should not change within a
	// window: the requests already counted stay counted.
	LimitFor func(req *gateway.Request) (limit int64, ok bool)
	// Window is the period: Minute, Hour, Day, Month, or Every(d).
	// Required.
	Window Window
	// Key partitions the quota. Default Global().
	Key KeyFunc
	// SkipMissingKey lets requests without a key through uncounted; by
	// default they share the key "".
	SkipMissingKey bool
	// Headers adds RateLimit-Policy and RateLimit to admitted replies.
	Headers bool
	// MaxKeys bounds the keys held in memory (default 100,000). A key
	// forgotten within its window starts again from zero: in memory, a
	// quota is exact only while its active keys fit. With Shared, nothing
	// is forgotten (the store holds the counts) and MaxKeys bounds the
	// pre-check.
	MaxKeys int
	// Shared counts in a store that all replicas share.
	Shared *Shared
	// Now is the clock; default time.Now. With Shared, windows follow the
	// store's clock and Now only times the pre-check.
	Now func() time.Time
}

// A Quota admits N requests per key in each fixed window (a minute, a
// day, a calendar month) and refuses the rest with 429 until the window
// ends. It is a gateway.Limiter.
type Quota struct {
	pol      policy
	limit    int64
	limitFor func(*gateway.Request) (int64, bool)
	window   Window
	key      KeyFunc
	skip     bool
	headers  bool
	now      func() time.Time
	counts   *keyTable[windowCount]
	shared   *sharedStore
	counters counters
}

type windowCount struct {
	start time.Time
	n     int64
}

// NewQuota returns a Quota for cfg. Mistakes in cfg are errors naming the
// quota and the field.
func NewQuota(cfg QuotaConfig) (*Quota, error) {
	pol, err := newPolicy(cfg.Name, "quota")
	if err != nil {
		return nil, fmt.Errorf("ratelimit: quota: %w", err)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("ratelimit: quota %q: "+format, append([]any{pol.name}, args...)...)
	}
	switch {
	case cfg.Window == Window{}:
		return nil, bad("Window is required (Minute, Hour, Day, Month or Every)")
	case cfg.Limit < 0:
		return nil, bad("Limit must not be negative")
	case cfg.Limit == 0 && cfg.LimitFor == nil:
		return nil, bad("Limit must be at least 1 (or LimitFor set)")
	case cfg.MaxKeys < 0:
		return nil, bad("MaxKeys must not be negative")
	}
	if err := cfg.Window.validate(); err != nil {
		return nil, bad("Window: %v", err)
	}
	q := &Quota{
		pol: pol, limit: cfg.Limit, limitFor: cfg.LimitFor, window: cfg.Window,
		key: cfg.Key, skip: cfg.SkipMissingKey, headers: cfg.Headers, now: cfg.Now,
	}
	if q.key == nil {
		q.key = Global()
	}
	if q.now == nil {
		q.now = time.Now
	}
	maxKeys := cfg.MaxKeys
	if maxKeys == 0 {
		maxKeys = 100_000
	}
	if cfg.Shared != nil {
		if cfg.Name == "" {
			return nil, bad("Name is required with Shared: it names the quota's counts in the store, which no other limiter may share")
		}
		if d, _ := cfg.Window.Fixed(); d/time.Microsecond >= MaxUnits || cfg.Limit > MaxUnits {
			return nil, bad("Limit %d per %v is more than a store can count (2^50)", cfg.Limit, cfg.Window)
		}
		if q.shared, err = newSharedStore(cfg.Shared, fmt.Sprintf("quota %q", pol.name), pol.name+":", maxKeys, &q.counters); err != nil {
			return nil, bad("%v", err)
		}
	} else {
		q.counts = newKeyTable[windowCount](maxKeys)
	}
	return q, nil
}

// LimitByClaim returns a QuotaConfig.LimitFor that reads the principal's
// claim (such as the "plan" of an API key) and looks its value up in
// limits. A request whose claim is missing or not in limits gets the
// quota's Limit.
func LimitByClaim(claim string, limits map[string]int64) func(*gateway.Request) (int64, bool) {
	limits = maps.Clone(limits)
	return func(req *gateway.Request) (int64, bool) {
		v, ok := req.Principal.Claim(claim)
		if !ok {
			return 0, false
		}
		s, ok := v.(string)
		if !ok {
			return 0, false
		}
		n, ok := limits[s]
		return n, ok
	}
}

// Name returns the quota's policy name.
func (q *Quota) Name() string { return q.pol.name }

// Stats returns the counts of the quota's decisions.
func (q *Quota) Stats() Stats { return q.counters.stats() }

// Limit admits req or refuses it with 429 until its window ends. It is
// the gateway.Limiter method.
func (q *Quota) Limit(ctx context.Context, req *gateway.Request) (func(*gateway.Response), error) {
	buf := getKeyBuf()
	defer putKeyBuf(buf)
	key, ok := q.key((*buf)[:0], req)
	if !ok {
		if q.skip {
			return nil, nil
		}
		key = key[:0]
	}
	keepKeyBuf(buf, key)
	limit := q.limit
	if q.limitFor != nil {
		if n, ok := q.limitFor(req); ok {
			limit = n
		}
	}
	if limit > MaxUnits {
		return nil, fmt.Errorf("ratelimit: quota %q: LimitFor gave %d, more than a store can count (MaxUnits)", q.pol.name, limit)
	}
	now := q.now()
	res, err := q.allow(ctx, key, limit, now)
	if req.Observed() {
		req.Note("ratelimit", q.pol.name+" "+decision(res, err))
	}
	if err != nil {
		return nil, err
	}
	w := q.windowOf(now, res)
	if !res.Allowed {
		return nil, q.pol.refuse(res, w)
	}
	if !q.headers || res.Limit == 0 {
		return nil, nil
	}
	return func(resp *gateway.Response) {
		if resp != nil {
			q.pol.annotate(resp, res, w)
		}
	}, nil
}

// Allow counts a request of key against limit in the current window, if
// it fits, and reports the decision. A limit of 0 or less admits nothing
// (a plan without access): the request is refused until the window ends.
func (q *Quota) Allow(ctx context.Context, key []byte, limit int64) (Result, error) {
	return q.allow(ctx, key, limit, q.now())
}

func (q *Quota) allow(ctx context.Context, key []byte, limit int64, now time.Time) (Result, error) {
	if limit <= 0 {
		_, end := q.window.Bounds(now)
		q.counters.refused.Add(1)
		return Result{Reset: end.Sub(now), RetryAfter: end.Sub(now)}, nil
	}
	if q.shared != nil {
		return q.allowShared(ctx, key, limit, now)
	}
	start, end := q.window.Bounds(now)
	var res Result
	q.counts.with(key, func(*windowCount) {}, func(c *windowCount) {
		if !c.start.Equal(start) {
			c.start, c.n = start, 0
		}
		res = Result{Limit: limit, Reset: end.Sub(now)}
		if c.n < limit {
			c.n++
			res.Allowed = true
		} else {
			res.RetryAfter = end.Sub(now)
		}
		res.Remaining = max(limit-c.n, 0)
	})
	if !res.Allowed {
		q.counters.refused.Add(1)
	}
	return res, nil
}

func (q *Quota) allowShared(ctx context.Context, key []byte, limit int64, now time.Time) (Result, error) {
	s := q.shared
	if res, refused := s.preChecked(key, now, limit, 0); refused {
		return res, nil
	}
	res, failed, err := s.decide(ctx, key, now, func(ctx context.Context, key string) (Result, error) {
		return s.Store.Count(ctx, key, limit, q.window, 1)
	})
	switch {
	case failed && err != nil:
		return res, err
	case failed:
		// Admitted without a decision: no state to advertise.
		return Result{Allowed: true, failedOpen: true}, nil
	}
	return res, nil
}

// windowOf is the length of the window a decision at now was taken in,
// advertised as w: the window that ends when the decision says the quota
// resets (the store's window, when the store decided).
func (q *Quota) windowOf(now time.Time, res Result) time.Duration {
	at := now
	if res.Reset > 0 {
		at = now.Add(res.Reset - time.Nanosecond)
	}
	start, end := q.window.Bounds(at)
	return end.Sub(start)
}

// Keys returns the number of keys the quota holds in memory.
func (q *Quota) Keys() int {
	if q.shared != nil {
		if q.shared.denied == nil {
			return 0
		}
		return q.shared.denied.len()
	}
	return q.counts.len()
}
