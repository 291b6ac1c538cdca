package ratelimit

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/gatekit/gatekit/gateway"
	"golang.org/x/time/rate"
)

// Config configures a Limiter: a token bucket per key.
type Config struct {
	// Name names the policy in the RateLimit header fields, logs and
	// store keys; letters, digits, '-', '_' and '.'. Default "rate".
	// Limiters that share a Store must have different names.
	Name string
	// Rate events per Per is the rate at which a key earns tokens: Rate
	// 100, Per time.Minute is 100 requests a minute. Rate is required;
	// Per defaults to a second.
	Rate int
	Per  time.Duration
	// Burst is the most tokens a key holds, and what a new key starts
	// with: how many requests may come back to back. Default Rate.
	Burst int
	// Key partitions the limit. Default Global(): one bucket for all.
	Key KeyFunc
	// SkipMissingKey lets requests that have no key (no API key, no
	// principal) through unlimited. By default they share one bucket,
	// the key "".
	SkipMissingKey bool
	// MaxWait, when positive, makes the limiter throttle rather than
	// refuse: a request that would be refused waits up to MaxWait for its
	// token (smoothing bursts), and is refused only when its turn would
	// come later than that, or when its context ends first. With Shared,
	// the store reserves the token at once and the request waits here
	// (one round trip); a request that gives up waiting keeps its token
	// spent.
	MaxWait time.Duration
	// Headers adds the RateLimit-Policy and RateLimit fields to admitted
	// replies; refusals always carry them.
	Headers bool
	// MaxKeys bounds the keys held in memory (default 100,000); past it,
	// the key used longest ago is forgotten, and starts again with a full
	// bucket if it returns. Keep it above the number of keys active within
	// Burst×Per/Rate. With Shared, it bounds the pre-check's memory.
	MaxKeys int
	// Shared counts in a store that all replicas share, instead of in
	// the process.
	Shared *Shared
	// Now is the clock; default time.Now. Tests inject one. With Shared,
	// decisions use the store's clock, and Now only times the pre-check.
	Now func() time.Time
}

// A Limiter is a token bucket per key, on golang.org/x/time/rate, or in a
// Store shared by the gateway's replicas (Config.Shared). It is a
// gateway.Limiter: put it on a route with gateway.Limit.
type Limiter struct {
	pol      policy
	limit    rate.Limit
	burst    int
	interval time.Duration // time to earn one token
	window   time.Duration // time to earn a full bucket, advertised as w
	key      KeyFunc
	skip     bool
	maxWait  time.Duration
	headers  bool
	now      func() time.Time
	buckets  *keyTable[*rate.Limiter]
	single   *rate.Limiter // the bucket, when Config.Key is nil
	shared   *sharedStore
	counters counters
}

// New returns a Limiter for cfg. Mistakes in cfg are errors naming the
// limiter and the field.
func New(cfg Config) (*Limiter, error) {
	pol, err := newPolicy(cfg.Name, "rate")
	if err != nil {
		return nil, fmt.Errorf("ratelimit: limiter: %w", err)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("ratelimit: limiter %q: "+format, append([]any{pol.name}, args...)...)
	}
	switch {
	case cfg.Rate < 1:
		return nil, bad("Rate must be at least 1 (events per Per)")
	case cfg.Per < 0:
		return nil, bad("Per must not be negative")
	case cfg.Burst < 0:
		return nil, bad("Burst must not be negative")
	case cfg.MaxWait < 0:
		return nil, bad("MaxWait must not be negative")
	case cfg.MaxKeys < 0:
		return nil, bad("MaxKeys must not be negative")
	}
	l := &Limiter{
		pol:     pol,
		key:     cfg.Key,
		skip:    cfg.SkipMissingKey,
		maxWait: cfg.MaxWait,
		headers: cfg.Headers,
		now:     cfg.Now,
		burst:   cfg.Burst,
	}
	per := cfg.Per
	if per == 0 {
		per = time.Second
	}
	if l.burst == 0 {
		l.burst = cfg.Rate
	}
	l.interval = per / time.Duration(cfg.Rate)
	if l.interval <= 0 {
		return nil, bad("Rate %d per %v is finer than a nanosecond per event", cfg.Rate, per)
	}
	l.limit = rate.Limit(float64(cfg.Rate) / per.Seconds())
	l.window = time.Duration(l.burst) * l.interval
	if l.now == nil {
		l.now = time.Now
	}
	maxKeys := cfg.MaxKeys
	if maxKeys == 0 {
		maxKeys = 100_000
	}
	if cfg.Shared != nil {
		if cfg.Name == "" {
			return nil, bad("Name is required with Shared: it names the limiter's counts in the store, which no other limiter may share")
		}
		if span := l.window + l.maxWait; span/time.Microsecond >= MaxUnits || span < 0 {
			return nil, bad("Burst %d at %d per %v with MaxWait %v spans more than a store can count (2^50 µs)", l.burst, cfg.Rate, per, l.maxWait)
		}
		// The bucket's shape is part of its keys: a limiter whose rate
		// or burst changes starts afresh rather than misreading counts
		// kept for another shape.
		prefix := fmt.Sprintf("%s:%d/%d:", pol.name, l.interval.Microseconds(), l.burst)
		if l.shared, err = newSharedStore(cfg.Shared, fmt.Sprintf("limiter %q", pol.name), prefix, maxKeys, &l.counters); err != nil {
			return nil, bad("%v", err)
		}
	} else {
		// Allow takes any key; Limit without a Key uses one bucket.
		l.buckets = newKeyTable[*rate.Limiter](maxKeys)
		if l.key == nil {
			l.single = rate.NewLimiter(l.limit, l.burst)
		}
	}
	if l.key == nil {
		l.key = Global()
	}
	return l, nil
}

// Name returns the limiter's policy name.
func (l *Limiter) Name() string { return l.pol.name }

// Stats returns the counts of the limiter's decisions.
func (l *Limiter) Stats() Stats { return l.counters.stats() }

// Limit admits req or refuses it with 429 (or, with Shared and a store
// that cannot decide, 503 unless failing open). It is the
// gateway.Limiter method.
func (l *Limiter) Limit(ctx context.Context, req *gateway.Request) (func(*gateway.Response), error) {
	var key []byte
	if l.single == nil {
		buf := getKeyBuf()
		defer putKeyBuf(buf)
		var ok bool
		if key, ok = l.key((*buf)[:0], req); !ok {
			if l.skip {
				return nil, nil
			}
			key = key[:0]
		}
		keepKeyBuf(buf, key)
	}
	res, err := l.take(ctx, key)
	if req.Observed() {
		req.Note("ratelimit", l.pol.name+" "+decision(res, err))
	}
	if err != nil {
		return nil, err
	}
	if !res.Allowed {
		return nil, l.pol.refuse(res, l.window)
	}
	if !l.headers || res.Limit == 0 {
		return nil, nil
	}
	return func(resp *gateway.Response) {
		if resp != nil {
			l.pol.annotate(resp, res, l.window)
		}
	}, nil
}

// Allow takes a token from key's bucket if it has one, and reports the
// decision. It is Limit without a request: for a key the caller computed,
// and for benchmarks. It never waits.
func (l *Limiter) Allow(ctx context.Context, key []byte) (Result, error) {
	if l.shared != nil {
		return l.takeShared(ctx, key, false)
	}
	return l.takeLocal(l.bucket(key), l.now(), true), nil
}

// take decides for key, waiting for a token when MaxWait allows it.
// With no Key configured, Limit passes key nil and the one bucket is used.
func (l *Limiter) take(ctx context.Context, key []byte) (Result, error) {
	b := l.single
	if b == nil && l.shared == nil {
		b = l.bucket(key)
	}
	switch {
	case l.shared != nil:
		return l.takeShared(ctx, key, l.maxWait > 0)
	case l.maxWait > 0:
		return l.waitLocal(ctx, b)
	}
	return l.takeLocal(b, l.now(), l.headers), nil
}

func (l *Limiter) bucket(key []byte) *rate.Limiter {
	return *l.buckets.get(key, l.newBucket)
}

func (l *Limiter) newBucket(b **rate.Limiter) { *b = rate.NewLimiter(l.limit, l.burst) }

// takeLocal is a decision on the local bucket of key at now. Only a
// refusal or full asks for the bucket's state (Remaining, Reset): an
// admission without RateLimit fields needs none.
func (l *Limiter) takeLocal(b *rate.Limiter, now time.Time, full bool) Result {
	if b.AllowN(now, 1) {
		if !full {
			return Result{Allowed: true}
		}
		res := l.state(b.TokensAt(now))
		res.Allowed = true
		return res
	}
	l.counters.refused.Add(1)
	tokens := b.TokensAt(now)
	res := l.state(tokens)
	res.RetryAfter = l.untilTokens(1 - tokens)
	return res
}

// state describes a bucket holding tokens.
func (l *Limiter) state(tokens float64) Result {
	return Result{
		Limit:     int64(l.burst),
		Remaining: int64(math.Floor(max(tokens, 0))),
		Reset:     l.untilTokens(float64(l.burst) - tokens),
	}
}

// untilTokens is the time to earn n more tokens, rounded up to the
// nanosecond so that it is never short.
func (l *Limiter) untilTokens(n float64) time.Duration {
	if n <= 0 {
		return 0
	}
	return time.Duration(math.Ceil(n / float64(l.limit) * float64(time.Second)))
}

// waitLocal reserves a token and waits for it, up to MaxWait.
func (l *Limiter) waitLocal(ctx context.Context, b *rate.Limiter) (Result, error) {
	now := l.now()
	r := b.ReserveN(now, 1)
	delay := r.DelayFrom(now)
	if !r.OK() || delay > l.maxWait {
		r.CancelAt(now)
		res := l.state(b.TokensAt(now))
		res.RetryAfter = l.untilTokens(1 - b.TokensAt(now))
		l.counters.refused.Add(1)
		return res, nil
	}
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			r.CancelAt(l.now()) // give the token back
			return Result{}, waitAbandoned(ctx)
		}
	}
	now = l.now()
	res := l.state(b.TokensAt(now))
	res.Allowed = true
	return res, nil
}

// takeShared is a decision of the store. With wait, the store reserves
// a token due within MaxWait, and the request waits for it here. A request
// that gives up waiting does not give its token back: the store cannot
// undo a reservation without another round trip.
func (l *Limiter) takeShared(ctx context.Context, key []byte, wait bool) (Result, error) {
	s := l.shared
	bucket := Bucket{Interval: l.interval, Burst: int64(l.burst)}
	if wait {
		bucket.MaxDelay = l.maxWait
	}
	now := l.now()
	if res, refused := s.preChecked(key, now, int64(l.burst), bucket.MaxDelay); refused {
		return res, nil
	}
	res, failed, err := s.decide(ctx, key, now, func(ctx context.Context, key string) (Result, error) {
		return s.Store.Take(ctx, key, bucket, 1)
	})
	switch {
	case failed && err != nil:
		return res, err
	case failed:
		// Admitted without a decision: no state to advertise (Limit 0
		// keeps the RateLimit fields off).
		return Result{Allowed: true, failedOpen: true}, nil
	case res.Allowed && res.Delay > 0:
		t := time.NewTimer(res.Delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return Result{}, waitAbandoned(ctx)
		}
	}
	return res, nil
}

// waitAbandoned is the error of a request whose context ended while it
// waited for its turn: the gateway writes nothing to a client that went
// away, and 504 for a deadline.
func waitAbandoned(ctx context.Context) error {
	return fmt.Errorf("ratelimit: gave up waiting for a token: %w", ctx.Err())
}

// Keys returns the number of keys the limiter holds in memory: buckets,
// or, with Shared and PreCheck, keys under a refusal.
func (l *Limiter) Keys() int {
	if l.shared != nil {
		if l.shared.denied == nil {
			return 0
		}
		return l.shared.denied.len()
	}
	n := l.buckets.len()
	if l.single != nil {
		n++
	}
	return n
}
