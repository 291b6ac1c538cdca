package proxy

import (
	"errors"
	"math"
	"time"

	"github.com/sony/gobreaker/v2"
)

// Defaults of a BreakerPolicy.
const (
	DefaultBreakerFailureRatio = 0.5
	DefaultBreakerMinRequests  = 20
	DefaultBreakerOpenFor      = 30 * time.Second
	DefaultBreakerWindow       = 10 * time.Second
)

// A BreakerPolicy gives every target a circuit breaker
// (github.com/sony/gobreaker/v2). A closed breaker counts the target's
// requests over a rolling Window; when at least MinRequests have been made
// and FailureRatio of them failed, it opens: the target gets no requests
// for OpenFor. Then it is half-open: HalfOpenProbes requests go through,
// and if they all succeed it closes, while one failure opens it again.
// Failures are as for PassiveHealth: no reply, or a 502, 503 or 504.
//
// While a target's breaker is open, requests go to the other targets; when
// every breaker is open, the client gets 503 with Retry-After, the seconds
// until the first one turns half-open.
type BreakerPolicy struct {
	// FailureRatio opens the breaker, between 0 and 1; 0 means
	// DefaultBreakerFailureRatio.
	FailureRatio float64
	// MinRequests is how many requests the window must hold before the
	// ratio counts; 0 means DefaultBreakerMinRequests.
	MinRequests uint32
	// OpenFor is how long an open breaker rejects requests; 0 means
	// DefaultBreakerOpenFor.
	OpenFor time.Duration
	// HalfOpenProbes is how many requests a half-open breaker lets
	// through, and how many must succeed to close it; 0 means 1.
	HalfOpenProbes uint32
	// Window is the span over which a closed breaker counts, in ten
	// rolling buckets; 0 means DefaultBreakerWindow.
	Window time.Duration
	// OnStateChange, when set, is told each change of a target's breaker
	// ("closed", "half-open", "open"), such as for metrics
	// (gateway/metrics' BreakerStateChanged). It runs on the request's
	// goroutine and must be quick.
	OnStateChange func(target, from, to string)
}

// cbExcluded is reported to a breaker for a request that says nothing about
// the target: the client went away, or its body was over the limit.
var cbExcluded = errors.New("proxy: outcome not counted")

// cbFailed is reported to a breaker for a failed request.
var cbFailed = errors.New("proxy: upstream failure")

func (p *BreakerPolicy) normalize() (BreakerPolicy, error) {
	c := *p
	if math.IsNaN(c.FailureRatio) || c.FailureRatio < 0 || c.FailureRatio > 1 {
		return c, errors.New("proxy: HTTPConfig.Breaker.FailureRatio must be between 0 and 1")
	}
	if c.OpenFor < 0 || c.Window < 0 {
		return c, errors.New("proxy: HTTPConfig.Breaker: OpenFor and Window must not be negative")
	}
	if c.FailureRatio == 0 {
		c.FailureRatio = DefaultBreakerFailureRatio
	}
	if c.MinRequests == 0 {
		c.MinRequests = DefaultBreakerMinRequests
	}
	if c.OpenFor == 0 {
		c.OpenFor = DefaultBreakerOpenFor
	}
	if c.HalfOpenProbes == 0 {
		c.HalfOpenProbes = 1
	}
	if c.Window == 0 {
		c.Window = DefaultBreakerWindow
	}
	return c, nil
}

// cbNew returns the breaker of t. Its state changes are mirrored into
// t.cbOpenUntil, so that picking a target reads one atomic value instead of
// taking the breaker's lock.
func (u *HTTPUpstream) cbNew(t *lbTarget) {
	p := u.breaker
	t.breaker = gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
		Name:         t.key,
		MaxRequests:  p.HalfOpenProbes,
		Interval:     p.Window,
		BucketPeriod: p.Window / 10,
		Timeout:      p.OpenFor,
		ReadyToTrip: func(c gobreaker.Counts) bool {
			return c.Requests >= p.MinRequests && float64(c.TotalFailures) >= p.FailureRatio*float64(c.Requests)
		},
		IsExcluded: func(err error) bool { return err == cbExcluded },
		OnStateChange: func(_ string, from, to gobreaker.State) {
			if to == gobreaker.StateOpen {
				t.cbOpenUntil.Store(u.now() + int64(p.OpenFor))
			} else {
				t.cbOpenUntil.Store(0)
			}
			if p.OnStateChange != nil {
				p.OnStateChange(t.host, from.String(), to.String())
			}
		},
	})
}

// cbAllow asks t's breaker to let a request through. It returns the
// function that reports the outcome, or nil when the breaker refuses.
func cbAllow(t *lbTarget) (done func(error), ok bool) {
	if t.breaker == nil {
		return nil, true
	}
	done, err := t.breaker.Allow()
	return done, err == nil
}
