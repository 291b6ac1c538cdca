package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// Defaults of a Health; each is overridable by its HealthConfig field.
const (
	DefaultReadinessTimeout  = 2 * time.Second
	DefaultReadinessCacheFor = time.Second
)

// maxCheckErrorBytes bounds the error text of a check in a readiness reply.
const maxCheckErrorBytes = 200

// A ReadinessCheck is one condition the gateway needs to take traffic, such
// as "the users upstream has a healthy backend" or "the key set is loaded".
type ReadinessCheck struct {
	// Name identifies the check in the readiness reply. Required, unique.
	Name string
	// Check reports nil when the condition holds. It must return soon
	// after ctx is done; one that does not is reported as timed out and
	// left to finish on its own.
	//
	// The text of a non-nil error is shown in the readiness reply to
	// whoever can reach the endpoint, cut to 200 bytes: keep it short and
	// free of secrets, addresses and credentials ("no healthy backend",
	// not a connection string).
	Check func(ctx context.Context) error
}

// HealthConfig configures a Health.
type HealthConfig struct {
	// Checks run, in parallel, for a readiness request; all must pass for
	// the gateway to be ready. None means ready unless draining.
	Checks []ReadinessCheck
	// Timeout bounds one run of all the checks together; a check still
	// running then fails as timed out. 0 means DefaultReadinessTimeout.
	Timeout time.Duration
	// CacheFor is how long the result of a run answers further readiness
	// requests, so that many probes (one per load balancer node) do not
	// each run the checks. Requests that arrive during a run wait for it
	// rather than start their own. 0 means DefaultReadinessCacheFor;
	// negative means every request runs the checks (still one run at a
	// time).
	CacheFor time.Duration
	// Logger receives panics of checks; nil means slog.Default().
	Logger *slog.Logger
}

// A Health serves the liveness and readiness endpoints of a gateway:
//
//   - Live answers 200 as long as the process serves HTTP at all. It does
//     not look at upstreams, so an orchestrator does not restart a gateway
//     because a backend is down.
//   - Ready answers 200 when every ReadinessCheck passes and 503 otherwise,
//     and 503 "draining" from the moment a shutdown begins (SetDraining, or
//     a Server whose Health field is set), so load balancers stop sending
//     new requests while those in flight finish.
//
// Both reply with a small JSON document and "Cache-Control: no-store".
// Mount them where probes reach them, usually next to the gateway on a
// mux or on a separate admin listener. The zero value has no checks and is
// ready.
type Health struct {
	checks   []ReadinessCheck
	timeout  time.Duration
	cacheFor time.Duration
	logger   *slog.Logger

	draining atomic.Bool

	mu     sync.Mutex
	last   *readiness // result of the latest run, nil before the first
	flight *flight    // the run in progress, nil when none
}

// readiness is the reply to a readiness request, encoded once per run.
type readiness struct {
	status int
	body   []byte
	at     time.Time
}

type flight struct {
	done chan struct{} // closed when res is set
	res  *readiness
}

// NewHealth checks cfg and returns a Health that runs its checks.
func NewHealth(cfg HealthConfig) (*Health, error) {
	seen := make(map[string]bool, len(cfg.Checks))
	for i, c := range cfg.Checks {
		switch {
		case c.Name == "":
			return nil, fmt.Errorf("gateway: HealthConfig.Checks[%d]: Name is required", i)
		case seen[c.Name]:
			return nil, fmt.Errorf("gateway: HealthConfig.Checks[%d]: duplicate name %q", i, c.Name)
		case c.Check == nil:
			return nil, fmt.Errorf("gateway: HealthConfig.Checks[%d] (%q): Check is required", i, c.Name)
		}
		seen[c.Name] = true
	}
	return &Health{
		checks:   append([]ReadinessCheck(nil), cfg.Checks...),
		timeout:  cfg.Timeout,
		cacheFor: cfg.CacheFor,
		logger:   cfg.Logger,
	}, nil
}

// SetDraining marks the gateway as draining (or, with false, no longer):
// while it is, Ready answers 503 "draining" without running the checks.
// A Server with this Health marks it when its shutdown begins.
func (h *Health) SetDraining(draining bool) { h.draining.Store(draining) }

// Draining reports whether the gateway is marked as draining.
func (h *Health) Draining() bool { return h.draining.Load() }

var (
	liveBody     = []byte(`{"status":"ok"}` + "\n")
	drainingBody = []byte(`{"status":"draining"}` + "\n")
	readyBody    = []byte(`{"status":"ready"}` + "\n")
)

// Live returns the liveness handler: 200 {"status":"ok"} to GET and HEAD,
// whatever the checks say and even while draining, since restarting a
// gateway that is finishing its requests would only cut them.
func (h *Health) Live() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeHealth(w, r, http.StatusOK, liveBody)
	})
}

// Ready returns the readiness handler for GET and HEAD: 200
// {"status":"ready","checks":{"name":"ok",...}} when every check passes; 503
// {"status":"not ready","checks":{...}} with each failing check's error text
// when one fails; 503 {"status":"draining"} while draining.
func (h *Health) Ready() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h.Draining() {
			writeHealth(w, r, http.StatusServiceUnavailable, drainingBody)
			return
		}
		if len(h.checks) == 0 {
			writeHealth(w, r, http.StatusOK, readyBody)
			return
		}
		res := h.readiness(r.Context())
		if res == nil {
			return // the client left while waiting for the run of another
		}
		if h.Draining() { // the shutdown began during the run
			writeHealth(w, r, http.StatusServiceUnavailable, drainingBody)
			return
		}
		writeHealth(w, r, res.status, res.body)
	})
}

func writeHealth(w http.ResponseWriter, r *http.Request, status int, body []byte) {
	h := w.Header()
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		status = http.StatusMethodNotAllowed
		body = []byte(`{"status":"method not allowed"}` + "\n")
	}
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}

// readiness returns the cached result when fresh, else the result of a run
// of the checks: the one in progress, or a new one. It returns nil when ctx
// ends while it waits for another request's run.
func (h *Health) readiness(ctx context.Context) *readiness {
	cacheFor := h.cacheFor
	if cacheFor == 0 {
		cacheFor = DefaultReadinessCacheFor
	}
	h.mu.Lock()
	if r := h.last; r != nil && cacheFor > 0 && time.Since(r.at) < cacheFor {
		h.mu.Unlock()
		return r
	}
	if f := h.flight; f != nil {
		h.mu.Unlock()
		select {
		case <-f.done:
			return f.res
		case <-ctx.Done():
			return nil
		}
	}
	f := &flight{done: make(chan struct{})}
	h.flight = f
	h.mu.Unlock()

	// The run answers other requests too, so it must not end when this
	// request's client leaves.
	f.res = h.run(context.WithoutCancel(ctx))

	h.mu.Lock()
	h.last, h.flight = f.res, nil
	h.mu.Unlock()
	close(f.done)
	return f.res
}

type checkResult struct {
	i   int
	err error
}

// run runs every check in parallel, bounded by the timeout, and encodes the
// reply.
func (h *Health) run(ctx context.Context) *readiness {
	timeout := h.timeout
	if timeout <= 0 {
		timeout = DefaultReadinessTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	// Buffered, so that a check finishing after the timeout does not block.
	resc := make(chan checkResult, len(h.checks))
	for i, c := range h.checks {
		go func() { resc <- checkResult{i, h.check(ctx, c)} }()
	}
	errs := make([]error, len(h.checks))
	finished := make([]bool, len(h.checks))
	timedOut := errors.New("timed out after " + timeout.String())
collect:
	for range h.checks {
		select {
		case r := <-resc:
			errs[r.i], finished[r.i] = r.err, true
			if r.err != nil && ctx.Err() != nil && errors.Is(r.err, context.DeadlineExceeded) {
				errs[r.i] = timedOut
			}
		case <-ctx.Done():
			break collect
		}
	}

	doc := struct {
		Status string            `json:"status"`
		Checks map[string]string `json:"checks"`
	}{Status: "ready", Checks: make(map[string]string, len(h.checks))}
	status := http.StatusOK
	for i, c := range h.checks {
		err := errs[i]
		if !finished[i] {
			err = timedOut
		}
		if err == nil {
			doc.Checks[c.Name] = "ok"
			continue
		}
		status, doc.Status = http.StatusServiceUnavailable, "not ready"
		doc.Checks[c.Name] = shortText(err.Error())
	}
	body, err := json.Marshal(doc)
	if err != nil { // cannot happen: strings only
		body = []byte(`{"status":"not ready"}`)
		status = http.StatusServiceUnavailable
	}
	return &readiness{status: status, body: append(body, '\n'), at: time.Now()}
}

// check runs c and turns a panic into a failure of the check.
func (h *Health) check(ctx context.Context, c ReadinessCheck) (err error) {
	defer func() {
		if v := recover(); v != nil {
			buf := make([]byte, 16<<10)
			buf = buf[:runtime.Stack(buf, false)]
			log := h.logger
			if log == nil {
				log = slog.Default()
			}
			log.Error("gateway: panic in readiness check", "check", c.Name, "panic", v, "stack", string(buf))
			err = errors.New("check failed")
		}
	}()
	return c.Check(ctx)
}

// shortText cuts s to maxCheckErrorBytes on a rune boundary.
func shortText(s string) string {
	if len(s) <= maxCheckErrorBytes {
		return s
	}
	n := maxCheckErrorBytes - len("...")
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}
