package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatekit/gatekit/gateway"
)

// Defaults of a TrafficMirror; each is overridable by its MirrorConfig field.
const (
	// DefaultMirrorTimeout bounds one shadow request, reply included.
	DefaultMirrorTimeout = 5 * time.Second
	// DefaultMirrorMaxInFlight is how many shadow requests may run at once.
	DefaultMirrorMaxInFlight = 64
)

// MirrorConfig configures a TrafficMirror. Only Upstream is required.
type MirrorConfig struct {
	// Upstream receives the copies, typically an *HTTPUpstream to the
	// shadow deployment. Required.
	Upstream gateway.Handler
	// Percent is the share of requests copied, 0 to 100: 0 copies none,
	// 100 all. Requests are picked at random, each independently.
	Percent float64
	// Timeout bounds each shadow request, from its start to the end of
	// its reply. 0 means DefaultMirrorTimeout.
	Timeout time.Duration
	// MaxInFlight bounds the shadow requests running at once; a request
	// picked while that many run is not copied (Stats.Dropped). 0 means
	// DefaultMirrorMaxInFlight.
	MaxInFlight int
	// Logger receives shadow failures, at most one line a second with
	// the count since the last line. Nil means slog.Default().
	Logger *slog.Logger
}

// A TrafficMirror copies a share of a route's requests to a second
// upstream (shadow traffic), to try a new backend on real requests without
// the client noticing. Put it on a route with Stage.
//
// The shadow request is fire and forget: the client's request is served by
// the rest of the pipeline as if the mirror were not there, while the copy
// goes to MirrorConfig.Upstream on a goroutine of its own. Its reply is read
// to the end and discarded; its failures, timeouts and panics are counted
// and logged, never seen by the client. Its context keeps the values of the
// client's but not its cancellation, so a client that hangs up does not cut
// the shadow request short; Timeout bounds it instead.
//
// The copy is taken when the stage runs, so it is the request as the stages
// before the mirror left it: its own header, URL and trailer; the request's
// Principal and Version; not its path parameters, route or stage values.
// Requests that ask to upgrade the connection (WebSocket) are not copied.
// The body is copied only when it is buffered already, so that the copy
// never consumes the stream the primary request needs: when a stage before
// the mirror called Request.Body or Request.SetBody (or, for a request
// made in process, when http.Request.GetBody is set). Otherwise the copy
// is sent with an empty body (Content-Length: 0), and counted in
// Stats.BodyOmitted; put a stage that reads the body before the mirror
// to mirror bodies.
//
// Observers (access log, metrics, traces) see a shadow call only if it ends
// before the client's request does, which it usually does not: watch the
// shadow upstream through Stats, or give it observers of its own.
//
// Call Close when the route is retired or the gateway shuts down: it stops
// new copies and waits for those in flight.
type TrafficMirror struct {
	upstream  gateway.Handler
	threshold uint64 // a request is copied when a random uint64 is below it
	all       bool   // Percent is 100
	timeout   time.Duration
	max       int
	logger    *slog.Logger

	mu       sync.Mutex
	idle     sync.Cond // signalled when inFlight drops to 0
	inFlight int
	closed   bool

	sent, dropped, failed, omitted atomic.Uint64
	unlogged                       atomic.Uint64 // failures since the last log line
	lastLog                        atomic.Int64  // unix nanos of the last log line
}

// MirrorStats counts what a TrafficMirror did since it was made.
type MirrorStats struct {
	// Sent counts copies handed to the upstream.
	Sent uint64
	// Dropped counts requests picked for copying but not copied, because
	// MaxInFlight copies were running or the mirror was closed.
	Dropped uint64
	// Failed counts sent copies whose upstream returned an error
	// (including a timeout) or panicked, or whose reply could not be read.
	// A reply with any status code is not a failure.
	Failed uint64
	// BodyOmitted counts sent copies whose request had a body that was not
	// buffered, so the copy went without it.
	BodyOmitted uint64
}

// Mirror checks cfg and returns a TrafficMirror.
func Mirror(cfg MirrorConfig) (*TrafficMirror, error) {
	switch {
	case cfg.Upstream == nil:
		return nil, errors.New("proxy: mirror: Upstream is required")
	case math.IsNaN(cfg.Percent) || cfg.Percent < 0 || cfg.Percent > 100:
		return nil, fmt.Errorf("proxy: mirror: Percent %v: must be 0 to 100", cfg.Percent)
	case cfg.Timeout < 0:
		return nil, fmt.Errorf("proxy: mirror: Timeout %v: must not be negative (a shadow request must end)", cfg.Timeout)
	case cfg.MaxInFlight < 0:
		return nil, fmt.Errorf("proxy: mirror: MaxInFlight %d: must not be negative", cfg.MaxInFlight)
	}
	m := &TrafficMirror{
		upstream: cfg.Upstream,
		timeout:  cfg.Timeout,
		max:      cfg.MaxInFlight,
		logger:   cfg.Logger,
	}
	if f := cfg.Percent / 100 * (1 << 64); f >= 1<<64 {
		m.all = true // a Percent a hair under 100 rounds to it
	} else {
		m.threshold = uint64(f)
	}
	if m.timeout == 0 {
		m.timeout = DefaultMirrorTimeout
	}
	if m.max == 0 {
		m.max = DefaultMirrorMaxInFlight
	}
	m.idle.L = &m.mu
	return m, nil
}

// Stage returns the stage that copies requests; put it on a route before
// the upstream, after any stage whose effect the copies should see.
func (m *TrafficMirror) Stage() gateway.Stage {
	return func(next gateway.Handler) gateway.Handler {
		return &mirrorHandler{m: m, next: next}
	}
}

type mirrorHandler struct {
	m    *TrafficMirror
	next gateway.Handler
}

func (h *mirrorHandler) Serve(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
	// A connection upgrade (WebSocket) is never copied: its reply would
	// be a connection to hold open, not a reply to discard.
	if h.m.pick() && req.HTTP.Header.Get("Upgrade") == "" {
		h.m.send(ctx, req)
	}
	return h.next.Serve(ctx, req)
}

// Stats returns the mirror's counts.
func (m *TrafficMirror) Stats() MirrorStats {
	return MirrorStats{
		Sent:        m.sent.Load(),
		Dropped:     m.dropped.Load(),
		Failed:      m.failed.Load(),
		BodyOmitted: m.omitted.Load(),
	}
}

// Wait waits until no copy is in flight. Copies may start again afterwards;
// tests call it before reading Stats.
func (m *TrafficMirror) Wait() {
	m.mu.Lock()
	for m.inFlight > 0 {
		m.idle.Wait()
	}
	m.mu.Unlock()
}

// Close stops copying (later picks count as Dropped) and waits for the
// copies in flight, each at most Timeout. It always returns nil.
func (m *TrafficMirror) Close() error {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	m.Wait()
	return nil
}

func (m *TrafficMirror) pick() bool {
	return m.all || (m.threshold > 0 && rand.Uint64() < m.threshold)
}

// acquire reserves a slot for a copy, or reports that there is none.
func (m *TrafficMirror) acquire() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed || m.inFlight >= m.max {
		return false
	}
	m.inFlight++
	return true
}

func (m *TrafficMirror) release() {
	m.mu.Lock()
	m.inFlight--
	if m.inFlight == 0 {
		m.idle.Broadcast()
	}
	m.mu.Unlock()
}

// send copies req and sends the copy on a goroutine of its own.
func (m *TrafficMirror) send(ctx context.Context, req *gateway.Request) {
	if !m.acquire() {
		m.dropped.Add(1)
		return
	}
	in := req.HTTP
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.timeout)
	out := in.Clone(sctx) // its own header, URL and trailer
	out.Body, out.GetBody = http.NoBody, nil
	out.ContentLength = 0
	// The client's 100-continue was between it and the gateway; the copy
	// has its body in hand or none.
	out.Header.Del("Expect")
	switch {
	case in.Body == nil || in.Body == http.NoBody:
	case in.GetBody != nil:
		// Buffered: GetBody reads the bytes anew, leaving in.Body alone.
		if b, err := in.GetBody(); err == nil {
			out.Body, out.GetBody, out.ContentLength = b, in.GetBody, in.ContentLength
			break
		}
		fallthrough
	default:
		out.TransferEncoding, out.Trailer = nil, nil
		out.Header.Del("Content-Length")
		m.omitted.Add(1)
	}
	// The copy is the client's too: its address and trusted-proxy
	// standing carry over, so the shadow sees the same X-Forwarded-For.
	copied := gateway.NewSubRequest(req, out)
	m.sent.Add(1)
	go m.shadow(sctx, cancel, copied)
}

// shadow sends one copy and discards the reply.
func (m *TrafficMirror) shadow(ctx context.Context, cancel context.CancelFunc, req *gateway.Request) {
	defer m.release()
	defer cancel()
	defer func() {
		if v := recover(); v != nil {
			m.fail(fmt.Errorf("panic: %v", v))
		}
	}()
	resp, err := m.upstream.Serve(ctx, req)
	if err != nil {
		resp.Close()
		m.fail(err)
		return
	}
	if resp == nil || resp.Body == nil {
		return
	}
	if resp.Status == http.StatusSwitchingProtocols {
		resp.Body.Close() // a connection nobody asked for
		return
	}
	// Read to the end, so that the connection can carry another request;
	// the context's deadline bounds it.
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		m.fail(err)
	}
}

// fail counts a failed copy and logs it, at most one line a second.
func (m *TrafficMirror) fail(err error) {
	m.failed.Add(1)
	m.unlogged.Add(1)
	now := time.Now().UnixNano()
	last := m.lastLog.Load()
	if now-last < int64(time.Second) || !m.lastLog.CompareAndSwap(last, now) {
		return
	}
	n := m.unlogged.Swap(0)
	logger := m.logger
	if logger == nil {
		logger = slog.Default()
	}
	logger.Warn("proxy: mirror: shadow requests failed", "count", n, "last_err", err)
}
