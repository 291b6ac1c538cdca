package metrics

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/gatekit/gatekit/gateway"
)

// DefaultBuckets are the default latency buckets, in seconds: 1ms to 10s,
// where a gateway's and its upstreams' replies fall.
var DefaultBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// MaxLabelValues bounds the distinct values of the route and target labels
// and of the rate-limit notes; past it new values are counted as "other".
const MaxLabelValues = 1000

const (
	unmatched = "unmatched"
	other     = "other"
)

// Config configures Metrics (New). The zero Config is ready to use.
type Config struct {
	// Registerer receives the metrics. Nil means a registry of their own,
	// which also holds the Go runtime and process collectors, served by
	// Handler. Nothing is ever registered with prometheus.DefaultRegisterer
	// unless it is passed here.
	Registerer prometheus.Registerer
	// Gatherer is what Handler serves. Nil means Registerer when it is also
	// a Gatherer (a *prometheus.Registry is, as is the default registry);
	// otherwise New fails.
	Gatherer prometheus.Gatherer
	// Namespace prefixes every metric name; "" means "gatekit".
	Namespace string
	// Buckets are the upper bounds, in seconds, of the request and
	// upstream latency histograms, in increasing order; nil means
	// DefaultBuckets.
	Buckets []float64
}

// Metrics records what a gateway does as Prometheus metrics. It is a
// gateway.Observer; put it in Options.Observers. Its methods are safe for
// concurrent use. See the package comment for the metrics and labels.
type Metrics struct {
	requests     *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	inFlight     prometheus.Gauge
	bytesIn      *prometheus.CounterVec
	bytesOut     *prometheus.CounterVec
	upDuration   *prometheus.HistogramVec
	upErrors     *prometheus.CounterVec
	rateLimit    *prometheus.CounterVec
	breaker      *prometheus.GaugeVec
	breakerMoves *prometheus.CounterVec
	jwks         *prometheus.CounterVec
	handler      http.Handler

	// Prometheus vecs hash their label values on every lookup; these
	// caches resolve the children once per label set, so that End does a
	// map read without locks or allocations.
	routes    cache[routeKey, *routeSeries]
	upstreams cache[upstreamKey, *upstreamSeries]
	notes     cache[string, prometheus.Counter]
}

var _ gateway.Observer = (*Metrics)(nil)

type routeKey struct {
	route  string
	method uint8
}

type upstreamKey struct{ upstream, target string }

// routeSeries holds the children of one route and method.
type routeSeries struct {
	duration          prometheus.Observer
	bytesIn, bytesOut prometheus.Counter
	requests          *prometheus.CounterVec
	route, method     string

	mu     sync.Mutex
	status atomic.Pointer[[]statusCounter] // copy on write
}

type statusCounter struct {
	code int
	c    prometheus.Counter
}

type upstreamSeries struct {
	duration prometheus.Observer
	errors   prometheus.Counter
}

// New returns Metrics registered with cfg.Registerer. It fails on invalid
// buckets or namespace, and when a metric of the same name is already
// registered there (one Metrics per registry, or distinct Namespaces).
func New(cfg Config) (*Metrics, error) {
	ns := cfg.Namespace
	if ns == "" {
		ns = "gatekit"
	}
	buckets := cfg.Buckets
	if buckets == nil {
		buckets = DefaultBuckets
	}
	if err := checkBuckets(buckets); err != nil {
		return nil, err
	}
	buckets = append([]float64(nil), buckets...)

	reg, gat := cfg.Registerer, cfg.Gatherer
	if reg == nil {
		r := prometheus.NewRegistry()
		r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		reg = r
		if gat == nil {
			gat = r
		}
	}
	if gat == nil {
		g, ok := reg.(prometheus.Gatherer)
		if !ok {
			return nil, errors.New("metrics: Config.Gatherer is nil and Config.Registerer is not a prometheus.Gatherer: set Gatherer to what Handler should serve")
		}
		gat = g
	}

	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "requests_total",
			Help: "Requests served, by route, method and status code.",
		}, []string{"route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Name: "request_duration_seconds",
			Help:    "Time from a request's arrival to the end of its reply, by route and method.",
			Buckets: buckets,
		}, []string{"route", "method"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Name: "requests_in_flight",
			Help: "Requests being served.",
		}),
		bytesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "request_body_bytes_total",
			Help: "Request body bytes read, by route.",
		}, []string{"route"}),
		bytesOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "response_body_bytes_total",
			Help: "Reply body bytes written, by route.",
		}, []string{"route"}),
		upDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Name: "upstream_duration_seconds",
			Help:    "Duration of calls to upstreams, by kind of upstream and target.",
			Buckets: buckets,
		}, []string{"upstream", "target"}),
		upErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "upstream_errors_total",
			Help: "Calls to upstreams that failed without a reply, by kind of upstream and target.",
		}, []string{"upstream", "target"}),
		rateLimit: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "ratelimit_decisions_total",
			Help: "Rate-limit and quota decisions, by policy and decision (admitted, refused, failed-open, error).",
		}, []string{"policy", "decision"}),
		breaker: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: ns, Name: "breaker_state",
			Help: "State of the circuit breaker of an upstream target: 0 closed, 1 half-open, 2 open.",
		}, []string{"target"}),
		breakerMoves: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "breaker_transitions_total",
			Help: "Circuit breaker state changes, by target and new state.",
		}, []string{"target", "to"}),
		jwks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "jwks_refreshes_total",
			Help: "JWKS refreshes, by key set source and result (ok, error).",
		}, []string{"source", "result"}),
	}
	for _, c := range []prometheus.Collector{
		m.requests, m.duration, m.inFlight, m.bytesIn, m.bytesOut,
		m.upDuration, m.upErrors, m.rateLimit, m.breaker, m.breakerMoves, m.jwks,
	} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: register: %w", err)
		}
	}
	m.handler = promhttp.HandlerFor(gat, promhttp.HandlerOpts{})
	return m, nil
}

// checkBuckets rejects what the Prometheus client would panic on when it
// creates a histogram, which here would be on a request.
func checkBuckets(b []float64) error {
	for i, v := range b {
		if math.IsNaN(v) {
			return errors.New("metrics: Config.Buckets: NaN bucket")
		}
		if i > 0 && v <= b[i-1] {
			return fmt.Errorf("metrics: Config.Buckets: %v follows %v: buckets must increase", v, b[i-1])
		}
	}
	return nil
}

// Handler serves the metrics in the Prometheus text or OpenMetrics format,
// for an admin port or path.
func (m *Metrics) Handler() http.Handler { return m.handler }

// Begin counts req in flight. It is the gateway.Observer method.
func (m *Metrics) Begin(ctx context.Context, req *gateway.Request) context.Context {
	m.inFlight.Inc()
	return ctx
}

// End records req and its upstream calls and rate-limit notes. It is the
// gateway.Observer method.
func (m *Metrics) End(ctx context.Context, req *gateway.Request, rec *gateway.Record) {
	m.inFlight.Dec()

	route := unmatched
	if r := req.Route(); r != nil {
		switch {
		case r.Name != "":
			route = r.Name
		case r.Path != "":
			route = r.Path
		case r.PathPrefix != "":
			route = r.PathPrefix
		}
	}
	rs := m.routes.get(routeKey{route, methodIndex(req.HTTP.Method)}, m.newRouteSeries)
	status := rec.StatusFor(req) // 499 for a client gone, as the access log says
	rs.counter(status).Inc()
	rs.duration.Observe(rec.Duration.Seconds())
	if rec.BytesIn > 0 {
		rs.bytesIn.Add(float64(rec.BytesIn))
	}
	if rec.BytesOut > 0 {
		rs.bytesOut.Add(float64(rec.BytesOut))
	}

	for _, c := range req.UpstreamCalls() {
		us := m.upstreams.get(upstreamKey{c.Upstream, c.Target}, m.newUpstreamSeries)
		us.duration.Observe(c.Duration.Seconds())
		if c.Err != nil {
			us.errors.Inc()
		}
	}
	for _, n := range req.Notes() {
		if n.Key == "ratelimit" {
			m.notes.get(n.Value, m.newRateLimitCounter).Inc()
		}
	}
}

// methods are the method label's values, by methodIndex.
var methods = [...]string{"OTHER", "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"}

func methodIndex(method string) uint8 {
	switch method {
	case http.MethodGet:
		return 1
	case http.MethodHead:
		return 2
	case http.MethodPost:
		return 3
	case http.MethodPut:
		return 4
	case http.MethodPatch:
		return 5
	case http.MethodDelete:
		return 6
	case http.MethodOptions:
		return 7
	case http.MethodConnect:
		return 8
	case http.MethodTrace:
		return 9
	}
	return 0
}

func (m *Metrics) newRouteSeries(k routeKey, full bool) (routeKey, *routeSeries) {
	if full {
		k.route = other
	}
	method := methods[k.method]
	return k, &routeSeries{
		duration: m.duration.WithLabelValues(k.route, method),
		bytesIn:  m.bytesIn.WithLabelValues(k.route),
		bytesOut: m.bytesOut.WithLabelValues(k.route),
		requests: m.requests,
		route:    k.route,
		method:   method,
	}
}

// counter returns the requests counter of status, creating it on first use.
// A route sees a handful of status codes, so a scan of a short slice beats
// a map.
func (rs *routeSeries) counter(status int) prometheus.Counter {
	if p := rs.status.Load(); p != nil {
		for _, sc := range *p {
			if sc.code == status {
				return sc.c
			}
		}
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	var cur []statusCounter
	if p := rs.status.Load(); p != nil {
		cur = *p
		for _, sc := range cur {
			if sc.code == status {
				return sc.c
			}
		}
	}
	c := rs.requests.WithLabelValues(rs.route, rs.method, strconv.Itoa(status))
	next := append(cur[:len(cur):len(cur)], statusCounter{status, c})
	rs.status.Store(&next)
	return c
}

func (m *Metrics) newUpstreamSeries(k upstreamKey, full bool) (upstreamKey, *upstreamSeries) {
	if full {
		k.target = other
	}
	return k, &upstreamSeries{
		duration: m.upDuration.WithLabelValues(k.upstream, k.target),
		errors:   m.upErrors.WithLabelValues(k.upstream, k.target),
	}
}

func (m *Metrics) newRateLimitCounter(note string, full bool) (string, prometheus.Counter) {
	policy, decision := other, other
	if !full {
		if i := strings.LastIndexByte(note, ' '); i >= 0 {
			policy, decision = note[:i], note[i+1:]
		} else {
			decision = note
		}
	} else {
		note = other
	}
	return note, m.rateLimit.WithLabelValues(policy, decision)
}

// BreakerStateChanged records that the circuit breaker of target went from
// one state to another: "closed", "half-open" or "open" (the names
// gobreaker's State.String gives). Wire it to the proxy's breaker
// state-change hook; target should be the same as UpstreamCall.Target.
// Other state names count as transitions to "other" and leave the gauge
// unchanged.
func (m *Metrics) BreakerStateChanged(target, from, to string) {
	var v float64
	switch to {
	case "closed":
		v = 0
	case "half-open":
		v = 1
	case "open":
		v = 2
	default:
		m.breakerMoves.WithLabelValues(target, other).Inc()
		return
	}
	m.breaker.WithLabelValues(target).Set(v)
	m.breakerMoves.WithLabelValues(target, to).Inc()
}

// JWKSRefreshed records a refresh of the key set fetched from source (its
// URL, or any stable name; it must not carry credentials), which failed
// when err is not nil. Wire it to auth's JWKS refresh.
func (m *Metrics) JWKSRefreshed(source string, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.jwks.WithLabelValues(source, result).Inc()
}

// cache maps label values to resolved children. Reads are a map lookup
// on an immutable map behind an atomic pointer; a miss copies the map
// under a lock. Label sets are few and fixed after warm-up, so the copies
// stop early.
type cache[K comparable, V any] struct {
	mu sync.Mutex
	m  atomic.Pointer[map[K]V]
	n  int // distinct keys given their own value, at most MaxLabelValues
}

// get returns the value for k, made by mk on first use. mk is told when
// the cache is full, and then returns the key of the overflow value
// ("other") to store it under as well.
func (c *cache[K, V]) get(k K, mk func(k K, full bool) (K, V)) V {
	if p := c.m.Load(); p != nil {
		if v, ok := (*p)[k]; ok {
			return v
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.m.Load()
	if old != nil {
		if v, ok := (*old)[k]; ok {
			return v
		}
	}
	full := c.n >= MaxLabelValues
	key, v := mk(k, full)
	if full {
		// k is not stored: the map must not grow with the values past
		// the bound. Share one value for them all.
		if old != nil {
			if ov, ok := (*old)[key]; ok {
				return ov
			}
		}
		k = key
	} else {
		c.n++
	}
	next := make(map[K]V, 1)
	if old != nil {
		next = make(map[K]V, len(*old)+1)
		for ek, ev := range *old {
			next[ek] = ev
		}
	}
	next[k] = v
	c.m.Store(&next)
	return v
}
