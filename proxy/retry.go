package proxy

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Defaults of a RetryPolicy.
const (
	DefaultRetryAttempts     = 2
	DefaultRetryBackoff      = 25 * time.Millisecond
	DefaultRetryMaxBackoff   = time.Second
	DefaultRetryBudget       = 0.2
	DefaultRetryMinPerSecond = 10
)

// A RetryPolicy sends a failed request again, to another target when there
// is one, after an exponential backoff with full jitter.
//
// What is retried: a request that got no reply or a reply whose status is
// in On. A connection that could not be opened counts as 502 (nothing was
// sent, so any method may be retried); a reply that did not come within
// HTTPConfig.Timeout counts as 504; a connection that failed after the
// request was sent counts as 502. Beyond connect failures, only idempotent
// methods (RFC 9110 §9.2.2: GET, HEAD, OPTIONS, TRACE, PUT, DELETE) are
// retried unless NonIdempotent is set.
//
// What never is: a reply that has been handed on, so a retry never follows
// a reply whose body began to stream to the client; a request whose client
// has gone or whose body was over its limit; a request whose body cannot be
// sent again. A body can be sent again when it is empty, when a stage
// buffered it (gateway.Request.Body or SetBody), or, after a connect
// failure, when nothing of it was read yet; a streamed body that was
// partly sent cannot.
//
// A budget bounds retries to a fraction of requests (as Finagle's and
// Envoy's retry budgets do), so that when a backend is down, retries do not
// multiply the load on it.
type RetryPolicy struct {
	// Attempts is the most tries of a request, the first included; 0
	// means DefaultRetryAttempts (one retry), 1 means none.
	Attempts int
	// On are the statuses that are retried; nil means 502, 503 and 504.
	On []int
	// NonIdempotent retries POST, PATCH and other methods that are not
	// idempotent, which a backend may then see twice. Set it only when the
	// backend deduplicates (for example with an Idempotency-Key).
	NonIdempotent bool
	// Backoff is the first retry's backoff ceiling: retry n waits a random
	// time between 0 and Backoff×2^(n-1), at most MaxBackoff ("full
	// jitter"). 0 means DefaultRetryBackoff, a negative value no wait.
	Backoff time.Duration
	// MaxBackoff caps the wait; 0 means DefaultRetryMaxBackoff.
	MaxBackoff time.Duration
	// Budget is the ratio of retries to requests: each request earns
	// Budget retries and each retry spends one, so over time at most that
	// fraction of requests are retried (at most 100 earned retries are
	// kept, so a long healthy spell does not bank a burst).
	// 0 means DefaultRetryBudget; a negative value means no budget.
	Budget float64
	// MinPerSecond are retries allowed every second beyond the budget, so
	// that an upstream with little traffic can still retry; 0 means
	// DefaultRetryMinPerSecond, a negative value none.
	MinPerSecond int
}

const retryBudgetMax = 100

type retryPolicy struct {
	attempts      int
	on            [8]int // statuses; spare room filled with 0
	onMore        []int  // when there are more than 8
	nonIdempotent bool
	backoff       time.Duration // 0: none
	maxBackoff    time.Duration
	budget        *retryBudget // nil: no budget
}

func (p *RetryPolicy) compile() (*retryPolicy, error) {
	c := &retryPolicy{attempts: p.Attempts, nonIdempotent: p.NonIdempotent, backoff: p.Backoff, maxBackoff: p.MaxBackoff}
	switch {
	case p.Attempts < 0:
		return nil, errors.New("proxy: HTTPConfig.Retry.Attempts must not be negative")
	case p.MaxBackoff < 0:
		return nil, errors.New("proxy: HTTPConfig.Retry.MaxBackoff must not be negative")
	case math.IsNaN(p.Budget) || math.IsInf(p.Budget, 0):
		return nil, errors.New("proxy: HTTPConfig.Retry.Budget must be a number")
	}
	if c.attempts == 0 {
		c.attempts = DefaultRetryAttempts
	}
	on := p.On
	if on == nil {
		on = []int{http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout}
	}
	for i, s := range on {
		if s < 100 || s > 599 {
			return nil, fmt.Errorf("proxy: HTTPConfig.Retry.On[%d]: %d is not an HTTP status", i, s)
		}
	}
	if len(on) > len(c.on) {
		c.onMore = on
	} else {
		copy(c.on[:], on)
	}
	switch {
	case c.backoff == 0:
		c.backoff = DefaultRetryBackoff
	case c.backoff < 0:
		c.backoff = 0
	}
	if c.maxBackoff == 0 {
		c.maxBackoff = DefaultRetryMaxBackoff
	}
	if p.Budget >= 0 {
		ratio := p.Budget
		if ratio == 0 {
			ratio = DefaultRetryBudget
		}
		minPS := p.MinPerSecond
		if minPS == 0 {
			minPS = DefaultRetryMinPerSecond
		}
		c.budget = &retryBudget{deposit: int64(ratio * retryToken), max: retryBudgetMax * retryToken}
		if minPS > 0 {
			c.budget.floor = rate.NewLimiter(rate.Limit(minPS), minPS)
		}
	}
	return c, nil
}

// retries reports whether status is one to retry.
func (p *retryPolicy) retries(status int) bool {
	for _, s := range p.on {
		if s == status {
			return true
		}
	}
	for _, s := range p.onMore {
		if s == status {
			return true
		}
	}
	return false
}

// retryIdempotent reports whether method is idempotent (RFC 9110 §9.2.2).
func retryIdempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// retryBackoff returns the wait before retry n (1 for the first retry):
// a random time in [0, min(max, base×2^(n-1))], from r, a uniformly random
// number.
func retryBackoff(base, max time.Duration, n int, r uint64) time.Duration {
	ceil := retryCeiling(base, max, n)
	if ceil <= 0 {
		return 0
	}
	return time.Duration(r % uint64(ceil+1))
}

// retryCeiling is the most retry n waits.
func retryCeiling(base, max time.Duration, n int) time.Duration {
	if base <= 0 {
		return 0
	}
	d := base
	for i := 1; i < n && d < max; i++ {
		d *= 2
	}
	return min(d, max)
}

func (p *retryPolicy) wait(n int) time.Duration {
	return retryBackoff(p.backoff, p.maxBackoff, n, rand.Uint64())
}

// A retryBudget is a token bucket in thousandths of a retry: every request
// deposits the budget ratio, every retry withdraws one whole token, and a
// rate limiter adds a floor of retries per second.
type retryBudget struct {
	deposit int64
	max     int64
	tokens  atomic.Int64
	floor   *rate.Limiter // nil: no floor
}

const retryToken = 1000

func (b *retryBudget) onRequest() {
	for {
		v := b.tokens.Load()
		if v >= b.max {
			return
		}
		if b.tokens.CompareAndSwap(v, min(v+b.deposit, b.max)) {
			return
		}
	}
}

// withdraw takes one retry from the budget, reporting whether there was one.
func (b *retryBudget) withdraw() bool {
	for {
		v := b.tokens.Load()
		if v < retryToken {
			break
		}
		if b.tokens.CompareAndSwap(v, v-retryToken) {
			return true
		}
	}
	return b.floor != nil && b.floor.Allow()
}
