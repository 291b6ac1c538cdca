package gateway

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// An Observer watches every request a Router or Pipeline serves: access
// logs, metrics and traces hang off it (Options.Observers). Observers run
// on the request's goroutine, in order, and must be quick; one that needs
// to do slow work (ship a log line) hands it off.
type Observer interface {
	// Begin is called as the request enters, after its path is normalised
	// and before routing. The context it returns is the request's from
	// then on: a tracer starts its span here so that upstream calls are
	// its children. An observer with nothing to add returns ctx.
	Begin(ctx context.Context, req *Request) context.Context
	// End is called once the reply has been written, or given up on.
	End(ctx context.Context, req *Request, rec *Record)
}

// A Record is what became of a request, for Observer.End.
type Record struct {
	Start    time.Time
	Duration time.Duration
	// Status is the status written to the client; 0 when nothing was
	// written (the client went away first).
	Status int
	// BytesIn and BytesOut count the request body read and the reply
	// body written.
	BytesIn, BytesOut int64
	// Err is the error the reply answered (a problem), or nil.
	Err error
}

// StatusFor returns the status the Record of req stands for: the status written, or,
// when none was, StatusClientClosedRequest for a client that went away
// and otherwise the status of the problem answered; 0 when there is
// neither. Access logs and metrics use it so that they agree.
func (rec *Record) StatusFor(req *Request) int {
	switch {
	case rec.Status != 0 || rec.Err == nil:
		return rec.Status
	case errors.Is(rec.Err, context.Canceled) && req.HTTP.Context().Err() != nil:
		return StatusClientClosedRequest
	}
	p, _ := ProblemFor(rec.Err)
	return p.status()
}

// An UpstreamCall is one call an upstream made for a request, recorded
// with Request.AddUpstreamCall for observers (the access log's upstream
// fields, metrics per target, traces).
type UpstreamCall struct {
	// Upstream names the kind of upstream: "http", "function", "lambda",
	// "mock", "aggregate".
	Upstream string
	// Target is where the call went: a target's host:port, a function's
	// name.
	Target   string
	Start    time.Time
	Duration time.Duration
	// Status is the reply's status, 0 when there was none.
	Status int
	// Err is why the call failed, or nil.
	Err error
}

// An UpstreamObserver is an Observer that also watches each upstream call
// as it starts (Request.StartUpstream): a tracer starts a client span there
// and injects its context into the header the call sends.
type UpstreamObserver interface {
	Observer
	// StartUpstream is called as call begins, before h is sent; it may add
	// fields to h and returns the context for the call and a function the
	// gateway calls with the finished call.
	StartUpstream(ctx context.Context, req *Request, call *UpstreamCall, h http.Header) (context.Context, func(*UpstreamCall))
}

// StartUpstream records the start of a call an upstream makes for req: kind
// names the upstream ("http", "lambda"), target where the call goes, h the
// header it will send (nil when there is none), which observers may add to
// (W3C trace context). It returns the context for the call and the function
// to call when the call ends, which records it (AddUpstreamCall). Without
// observers it costs nothing. It is safe for concurrent use.
func (req *Request) StartUpstream(ctx context.Context, kind, target string, h http.Header) (context.Context, func(status int, err error)) {
	if !req.Observed() {
		return ctx, noUpstreamEnd
	}
	call := &UpstreamCall{Upstream: kind, Target: target, Start: time.Now()}
	var ends []func(*UpstreamCall)
	for _, o := range req.opts.Observers {
		if uo, ok := o.(UpstreamObserver); ok {
			var end func(*UpstreamCall)
			ctx, end = uo.StartUpstream(ctx, req, call, h)
			if end != nil {
				ends = append(ends, end)
			}
		}
	}
	return ctx, func(status int, err error) {
		call.Duration, call.Status, call.Err = time.Since(call.Start), status, err
		for i := len(ends) - 1; i >= 0; i-- {
			ends[i](call)
		}
		req.AddUpstreamCall(*call)
	}
}

func noUpstreamEnd(int, error) {}

// A Note is a fact a stage records about a request for observers, such as
// a rate limiter's decision.
type Note struct {
	Key, Value string
}

// observations is what stages and upstreams record on a Request. Calls
// may come from the goroutines of an aggregate, hence the lock.
type observations struct {
	mu    sync.Mutex
	calls []UpstreamCall
	notes []Note
}

// root is the request a chain of sub-requests serves.
func (req *Request) root() *Request {
	for req.parent != nil {
		req = req.parent
	}
	return req
}

// Observed reports whether observers watch req (Options.Observers), so
// that a stage records notes and calls only when someone reads them.
func (req *Request) Observed() bool {
	return req.opts != nil && len(req.opts.Observers) > 0
}

// AddUpstreamCall records a call an upstream made for req. It is safe for
// concurrent use.
func (req *Request) AddUpstreamCall(c UpstreamCall) {
	o := &req.root().obs
	o.mu.Lock()
	o.calls = append(o.calls, c)
	o.mu.Unlock()
}

// UpstreamCalls returns the calls recorded so far, oldest first. The caller
// must not modify the slice.
func (req *Request) UpstreamCalls() []UpstreamCall {
	o := &req.root().obs
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.calls[:len(o.calls):len(o.calls)]
}

// Note records a fact about req for observers, such as
// req.Note("ratelimit", "per-client refused"). It is safe for concurrent
// use.
func (req *Request) Note(key, value string) {
	o := &req.root().obs
	o.mu.Lock()
	o.notes = append(o.notes, Note{key, value})
	o.mu.Unlock()
}

// Notes returns the notes recorded so far, oldest first. The caller must
// not modify the slice.
func (req *Request) Notes() []Note {
	o := &req.root().obs
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.notes[:len(o.notes):len(o.notes)]
}

// observe runs the observers around serving req: Begin before, End after,
// with the status and sizes seen on the way out. It returns the writer and
// context to serve with and the function that ends the observation.
func observe(w http.ResponseWriter, req *Request, obs []Observer) (http.ResponseWriter, func(err error)) {
	start := time.Now()
	ctx := req.HTTP.Context()
	for _, o := range obs {
		ctx = o.Begin(ctx, req)
	}
	if ctx != req.HTTP.Context() {
		req.httpReq = *req.httpReq.WithContext(ctx)
		req.HTTP = &req.httpReq
	}
	ow := &observedWriter{ResponseWriter: w}
	var in *countingBody
	if b := req.HTTP.Body; b != nil && b != http.NoBody {
		in = &countingBody{ReadCloser: b}
		req.HTTP.Body = in
	}
	return ow, func(err error) {
		rec := Record{Start: start, Duration: time.Since(start), Status: ow.status, BytesOut: ow.n, Err: err}
		if in != nil {
			rec.BytesIn = in.n
		} else if req.bodyRead {
			rec.BytesIn = int64(len(req.body))
		}
		for i := len(obs) - 1; i >= 0; i-- {
			obs[i].End(ctx, req, &rec)
		}
	}
}

// observedWriter notes the status and counts the body written through it.
type observedWriter struct {
	http.ResponseWriter
	status int
	n      int64
}

func (w *observedWriter) WriteHeader(code int) {
	if w.status == 0 || w.status < 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *observedWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.n += int64(n)
	return n, err
}

// ReadFrom keeps the underlying writer's sendfile path when it has one.
func (w *observedWriter) ReadFrom(r io.Reader) (int64, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	var n int64
	var err error
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(r)
	} else {
		n, err = io.Copy(writerOnly{w.ResponseWriter}, r)
	}
	w.n += n
	return n, err
}

// writerOnly hides ReadFrom so io.Copy does not loop back to it.
type writerOnly struct{ io.Writer }

// Flush sends what was written; before anything was, net/http sends a 200
// header, which the record must show.
func (w *observedWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *observedWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("gateway: the connection cannot be hijacked")
	}
	if w.status == 0 {
		w.status = http.StatusSwitchingProtocols
	}
	return h.Hijack()
}

// Unwrap lets http.ResponseController reach the server's writer.
func (w *observedWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

type countingBody struct {
	io.ReadCloser
	n int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	return n, err
}
