package proxy

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// Defaults of HealthCheck and PassiveHealth.
const (
	DefaultHealthInterval  = 10 * time.Second
	DefaultHealthTimeout   = 2 * time.Second
	DefaultHealthyAfter    = 2
	DefaultUnhealthyAfter  = 3
	DefaultPassiveFailures = 5
	DefaultPassiveCooldown = 30 * time.Second
)

// A HealthCheck probes every target in the background with a GET and takes
// a target out of rotation after Unhealthy failed probes in a row, back
// after Healthy good ones. Targets start healthy; the first round of probes
// runs as soon as the upstream is built. The probes stop when the upstream
// is closed.
type HealthCheck struct {
	// Path is the path (and optional query) probed on each target's host,
	// such as "/healthz"; the target's base path is not prepended. It must
	// begin with '/'.
	Path string
	// Interval is the time between rounds of probes; 0 means
	// DefaultHealthInterval.
	Interval time.Duration
	// Timeout bounds one probe, from connecting to the reply's header;
	// 0 means DefaultHealthTimeout.
	Timeout time.Duration
	// Healthy is how many good probes in a row bring an unhealthy target
	// back; 0 means DefaultHealthyAfter.
	Healthy int
	// Unhealthy is how many failed probes in a row take a target out;
	// 0 means DefaultUnhealthyAfter.
	Unhealthy int
	// ExpectStatus reports whether a probe's status means healthy; nil
	// means 200 to 399. A probe that gets no reply in time fails.
	ExpectStatus func(status int) bool
}

// PassiveHealth ejects a target that fails Failures requests in a row for
// Cooldown, watching real traffic rather than probing. A failure is a
// request that got no reply (connection refused or reset, header timeout)
// or a 502, 503 or 504 reply: the signs of a broken or overloaded instance.
// Other replies, 500 included, are the application's answers and count as
// successes, so one bad endpoint does not eject every target. A client that
// hangs up, or a body over its limit, counts as neither. After the cool-down
// the target gets traffic again and is ejected anew after Failures more.
type PassiveHealth struct {
	// Failures is how many failures in a row eject a target; 0 means
	// DefaultPassiveFailures.
	Failures int
	// Cooldown is how long an ejected target gets no traffic; 0 means
	// DefaultPassiveCooldown.
	Cooldown time.Duration
}

func (hc *HealthCheck) normalize() (HealthCheck, error) {
	c := *hc
	if c.Path == "" || c.Path[0] != '/' {
		return c, fmt.Errorf("proxy: HTTPConfig.HealthCheck.Path %q: must begin with '/'", c.Path)
	}
	if _, err := url.ParseRequestURI(c.Path); err != nil {
		return c, fmt.Errorf("proxy: HTTPConfig.HealthCheck.Path %q: not a path", c.Path)
	}
	if c.Interval < 0 || c.Timeout < 0 || c.Healthy < 0 || c.Unhealthy < 0 {
		return c, errors.New("proxy: HTTPConfig.HealthCheck: Interval, Timeout, Healthy and Unhealthy must not be negative")
	}
	c.Interval = cmp.Or(c.Interval, DefaultHealthInterval)
	c.Timeout = cmp.Or(c.Timeout, DefaultHealthTimeout)
	c.Healthy = cmp.Or(c.Healthy, DefaultHealthyAfter)
	c.Unhealthy = cmp.Or(c.Unhealthy, DefaultUnhealthyAfter)
	if c.ExpectStatus == nil {
		c.ExpectStatus = hcDefaultExpect
	}
	return c, nil
}

func hcDefaultExpect(status int) bool { return status >= 200 && status <= 399 }

func (p *PassiveHealth) normalize() (PassiveHealth, error) {
	c := *p
	if c.Failures < 0 || c.Cooldown < 0 {
		return c, errors.New("proxy: HTTPConfig.Passive: Failures and Cooldown must not be negative")
	}
	c.Failures = cmp.Or(c.Failures, DefaultPassiveFailures)
	c.Cooldown = cmp.Or(c.Cooldown, DefaultPassiveCooldown)
	return c, nil
}

// hcRun probes the current targets every interval until ctx is done.
func (u *HTTPUpstream) hcRun(ctx context.Context) {
	tick := time.NewTicker(u.health.Interval)
	defer tick.Stop()
	for {
		u.hcRound(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// hcRound probes every target of the current set at once and waits for all.
func (u *HTTPUpstream) hcRound(ctx context.Context) {
	var wg sync.WaitGroup
	for _, t := range u.set.Load().targets {
		wg.Go(func() { u.hcRecord(t, u.hcProbe(ctx, t)) })
	}
	wg.Wait()
}

func (u *HTTPUpstream) hcProbe(ctx context.Context, t *lbTarget) bool {
	ctx, cancel := context.WithTimeout(ctx, u.health.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.scheme+"://"+t.host+u.health.Path, nil)
	if err != nil {
		return false
	}
	req.Header.Set("User-Agent", "gatekit-health-check")
	resp, err := u.rt.RoundTrip(req)
	if err != nil {
		return false
	}
	// Read a little so that the connection can be reused.
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	resp.Body.Close()
	return u.health.ExpectStatus(resp.StatusCode)
}

func (u *HTTPUpstream) hcRecord(t *lbTarget, ok bool) {
	if ok {
		t.hcFails.Store(0)
		if n := t.hcOK.Add(1); n >= int32(u.health.Healthy) {
			t.hcDown.Store(false)
		}
		return
	}
	t.hcOK.Store(0)
	if n := t.hcFails.Add(1); n >= int32(u.health.Unhealthy) {
		t.hcDown.Store(true)
	}
}

// passiveRecord counts a request's outcome on t.
func (u *HTTPUpstream) passiveRecord(t *lbTarget, failed bool, now int64) {
	if u.passive == nil {
		return
	}
	if !failed {
		if t.fails.Load() != 0 {
			t.fails.Store(0)
		}
		return
	}
	if t.fails.Add(1) >= int32(u.passive.Failures) {
		t.fails.Store(0)
		t.ejectedUntil.Store(now + int64(u.passive.Cooldown))
	}
}

// ErrNoTarget is what Ready reports when no target can take a request.
var ErrNoTarget = errors.New("proxy: no upstream target is available")

// Ready reports whether the upstream has a target that can take a request
// now (not failing its health checks, not ejected, its breaker not open),
// or ErrNoTarget: a readiness check for gateway.Health, so that a gateway
// whose backends are all down stops receiving traffic.
//
//	health, err := gateway.NewHealth(gateway.HealthConfig{Checks: []gateway.ReadinessCheck{
//		{Name: "users", Check: func(context.Context) error { return users.Ready() }},
//	}})
func (u *HTTPUpstream) Ready() error {
	set := u.set.Load()
	if set == nil {
		return ErrNoTarget
	}
	f := lbFilter{now: u.now()}
	for _, t := range set.targets {
		if f.available(t) {
			return nil
		}
	}
	return ErrNoTarget
}
