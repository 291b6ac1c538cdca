package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Defaults of service discovery.
const (
	// DefaultRefresh is how often targets are resolved again when a
	// Resolver gives no TTL.
	DefaultRefresh = 30 * time.Second
	// DefaultResolveTimeout bounds one call of Resolver.Resolve.
	DefaultResolveTimeout = 5 * time.Second
)

// MaxWeight is the largest Target.Weight: about a million to one between
// two targets is finer than any traffic split needs, and the bound keeps
// the balancers' arithmetic (sums of weights, in-flight counts times
// weights) far from overflowing.
const MaxWeight = 1 << 20

// discMinRefresh keeps a Resolver that returns a tiny TTL from spinning.
const discMinRefresh = 10 * time.Millisecond

// A Target is one instance of a backend, as a Resolver reports it.
type Target struct {
	// URL is the target's base URL, as in HTTPConfig.Targets.
	URL string
	// Weight is the target's share of the traffic under Weighted,
	// LeastInFlight and HashBy; 0 means 1, and at most MaxWeight. A URL
	// listed twice has the sum of its weights, within the same bound.
	Weight int
}

// A Resolver tells an HTTPUpstream where its targets are. Resolve returns
// the current targets and how long they stay valid (0 means DefaultRefresh);
// the upstream calls it again then, in the background, and swaps the new set
// in without a restart. A target that stays in the set keeps its health,
// breaker and in-flight count.
//
// An error, an empty list or a list with an invalid URL or weight keeps the
// previous set; the upstream logs why (HTTPConfig.Logger) and asks again
// after min(TTL, 5s). So does a panic in Resolve, which never takes the
// process down. Resolve must return when ctx is done, which happens when
// the upstream is closed.
type Resolver interface {
	Resolve(ctx context.Context) (targets []Target, ttl time.Duration, err error)
}

// ResolverFunc adapts a function to a Resolver, for discovery the
// application does itself (a service registry, a configuration file).
type ResolverFunc func(ctx context.Context) ([]Target, time.Duration, error)

// Resolve calls f(ctx).
func (f ResolverFunc) Resolve(ctx context.Context) ([]Target, time.Duration, error) { return f(ctx) }

// StaticTargets returns a Resolver with a fixed set of targets, which is
// how targets get weights without a discovery service. Its targets are
// checked when the upstream is built, and never resolved again.
func StaticTargets(targets ...Target) Resolver { return discStatic(slices.Clone(targets)) }

type discStatic []Target

func (s discStatic) Resolve(context.Context) ([]Target, time.Duration, error) {
	return s, 0, nil
}

// A DNSResolver finds targets in DNS: the addresses of a host name (A and
// AAAA records), or the hosts and ports of an SRV record. Make one with DNS
// or DNSSRV.
//
// Go's resolver does not report record TTLs, so the names are looked up
// again every Refresh rather than when the records expire.
type DNSResolver struct {
	// Scheme is "http" or "https"; DNS and DNSSRV set it.
	Scheme string
	// Path is the targets' base path, such as "/api"; "" for none.
	Path string
	// Refresh is how often the name is looked up again; 0 means
	// DefaultRefresh.
	Refresh time.Duration
	// Resolver does the lookups; nil means net.DefaultResolver.
	Resolver *net.Resolver

	host, port           string // A/AAAA
	service, proto, name string // SRV
}

// DNS returns a Resolver whose targets are scheme://addr:port for each
// address of host (A and AAAA records). An https target is then called by
// address, so its certificate must name the address, or the Transport must
// say which name to check.
func DNS(scheme, host, port string) *DNSResolver {
	return &DNSResolver{Scheme: scheme, host: host, port: port}
}

// DNSSRV returns a Resolver whose targets are the hosts and ports of the
// SRV record _service._proto.name (RFC 2782), weighted by the records'
// weights. Only the records of the best (lowest) priority are used.
func DNSSRV(scheme, service, proto, name string) *DNSResolver {
	return &DNSResolver{Scheme: scheme, service: service, proto: proto, name: name}
}

// Resolve looks the name up.
func (d *DNSResolver) Resolve(ctx context.Context) ([]Target, time.Duration, error) {
	r := d.Resolver
	if r == nil {
		r = net.DefaultResolver
	}
	ttl := d.Refresh
	if ttl <= 0 {
		ttl = DefaultRefresh
	}
	if d.service == "" && d.name == "" {
		ips, err := r.LookupIPAddr(ctx, d.host)
		if err != nil {
			return nil, ttl, err
		}
		ts := make([]Target, 0, len(ips))
		for _, ip := range ips {
			ts = append(ts, Target{URL: d.Scheme + "://" + net.JoinHostPort(ip.IP.String(), d.port) + d.Path})
		}
		return ts, ttl, nil
	}
	_, srvs, err := r.LookupSRV(ctx, d.service, d.proto, d.name)
	if err != nil {
		return nil, ttl, err
	}
	var ts []Target
	for _, s := range srvs { // sorted by priority, then randomised by weight
		if s.Priority != srvs[0].Priority {
			break
		}
		host := strings.TrimSuffix(s.Target, ".")
		ts = append(ts, Target{
			URL:    d.Scheme + "://" + net.JoinHostPort(host, strconv.Itoa(int(s.Port))) + d.Path,
			Weight: max(int(s.Weight), 1),
		})
	}
	return ts, ttl, nil
}

func (d *DNSResolver) check() error {
	if d.Scheme != "http" && d.Scheme != "https" {
		return fmt.Errorf("proxy: HTTPConfig.Discovery: DNS scheme %q: must be http or https", d.Scheme)
	}
	if d.service == "" && d.name == "" && (d.host == "" || d.port == "") {
		return errors.New("proxy: HTTPConfig.Discovery: DNS needs a host and a port")
	}
	if d.Path != "" {
		if _, err := url.Parse(d.Scheme + "://h" + d.Path); err != nil || d.Path[0] != '/' {
			return fmt.Errorf("proxy: HTTPConfig.Discovery: DNS path %q: must be a path beginning with '/'", d.Path)
		}
	}
	return nil
}

// discBuild returns the set for targets, reusing the live state of targets
// the previous set had. Only the constructor and the discovery goroutine
// call it, one at a time.
func (u *HTTPUpstream) discBuild(list []Target) (*lbSet, error) {
	if len(list) == 0 {
		return nil, errors.New("no targets")
	}
	prev := make(map[string]*lbTarget)
	if s := u.set.Load(); s != nil {
		for _, t := range s.targets {
			prev[t.key] = t
		}
	}
	targets := make([]*lbTarget, 0, len(list))
	weights := make([]int, 0, len(list))
	seen := make(map[string]int, len(list))
	for i, e := range list {
		if e.Weight < 0 || e.Weight > MaxWeight {
			return nil, fmt.Errorf("[%d] %q: weight %d is not between 0 and %d (MaxWeight)", i, redact(e.URL), e.Weight, MaxWeight)
		}
		p, err := parseTarget(e.URL)
		if err != nil {
			return nil, fmt.Errorf("[%d] %q: %w", i, redact(e.URL), err)
		}
		w := max(e.Weight, 1)
		key := p.scheme + "://" + p.host + p.pathEsc
		if j, ok := seen[key]; ok {
			if weights[j] += w; weights[j] > MaxWeight {
				return nil, fmt.Errorf("[%d] %q: the weights of this URL add up to %d, over %d (MaxWeight)", i, redact(e.URL), weights[j], MaxWeight)
			}
			continue
		}
		seen[key] = len(targets)
		t := prev[key]
		if t == nil {
			t = &lbTarget{target: p, key: key}
			if u.breaker != nil {
				u.cbNew(t)
			}
		}
		targets = append(targets, t)
		weights = append(weights, w)
	}
	return lbNewSet(u.balance, targets, weights), nil
}

// discRun resolves the targets again when their TTL runs out, until ctx is
// done.
func (u *HTTPUpstream) discRun(ctx context.Context, r Resolver, ttl time.Duration) {
	timer := time.NewTimer(discWait(ttl, false))
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		next, err := u.discResolve(ctx, r)
		if next > 0 || err == nil {
			ttl = next // a failure without a TTL (a panic) keeps the last one
		}
		timer.Reset(discWait(ttl, err != nil))
	}
}

// discResolve calls r once and swaps in the targets it returns. A failure,
// a panic included, keeps the current set and is logged: the discovery
// goroutine has nobody to return it to, and a panic there would end the
// process.
func (u *HTTPUpstream) discResolve(ctx context.Context, r Resolver) (ttl time.Duration, err error) {
	defer func() {
		if p := recover(); p != nil {
			buf := make([]byte, 16<<10)
			buf = buf[:runtime.Stack(buf, false)]
			ttl, err = 0, fmt.Errorf("panic: %v", p)
			u.logger.Error("proxy: discovery panicked; keeping the current targets", "panic", p, "stack", string(buf))
			return
		}
		if err != nil && ctx.Err() == nil {
			u.logger.Warn("proxy: discovery failed; keeping the current targets", "err", err)
		}
	}()
	rctx, cancel := context.WithTimeout(ctx, DefaultResolveTimeout)
	defer cancel()
	list, ttl, err := r.Resolve(rctx)
	if err != nil {
		return ttl, err
	}
	set, err := u.discBuild(list)
	if err != nil {
		return ttl, fmt.Errorf("targets rejected: %w", err)
	}
	u.set.Store(set)
	return ttl, nil
}

func discWait(ttl time.Duration, failed bool) time.Duration {
	if ttl <= 0 {
		ttl = DefaultRefresh
	}
	if failed {
		ttl = min(ttl, 5*time.Second)
	}
	return max(ttl, discMinRefresh)
}
