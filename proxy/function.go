package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/gatekit/gatekit/gateway"
)

// FunctionConfig configures a function upstream. Every zero field means the
// documented default.
type FunctionConfig struct {
	// Name identifies the function in logged errors; "" is allowed.
	Name string

	// Timeout bounds one call of the function, until it returns its reply:
	// past it the client gets 504, whether or not the function has
	// returned. The function's context carries the deadline, and a
	// function that honours it stops then; one that ignores it keeps
	// running on its own goroutine until it returns, and what it returns is
	// dropped (a reply body is closed). Like HTTPConfig.Timeout, it does not
	// bound the reply body: once the function has returned in time, its
	// context no longer ends at the deadline, so a streamed body is not
	// cut. 0 means DefaultTimeout; a negative value means no limit, and the
	// function then runs on the goroutine serving the request.
	Timeout time.Duration
}

// A FunctionUpstream serves requests with an in-process Go function, with no
// network in between: the gateway's Handler contract, plus the isolation an
// upstream owes the gateway. It is safe for concurrent use if the function
// is. Build it with Function.
//
// Every call is bounded by FunctionConfig.Timeout (504 past it), and a
// failure of the function costs one request, never the gateway:
//   - an error that is (or wraps) a *gateway.Error passes through, so a
//     function can answer 404 or 409 on purpose;
//   - any other error, and a panic, answer 502 with a generic detail; the
//     error or the panic value and its stack go into the problem's Err,
//     which the gateway logs and never sends;
//   - when the client has gone, or a stage's deadline has passed, Serve
//     returns the context's error.
//
// The function's context lasts as long as its reply: it ends when the reply
// Body is closed, so a Body may stream from work bound to that context (the
// reply of an HTTPUpstream's Serve, for one). When the reply has no Body, or
// one held in memory (gateway.NewResponse), or the call fails, it ends when
// Serve returns. It also ends when the request's context does.
type FunctionUpstream struct {
	fn      func(ctx context.Context, req *gateway.Request) (*gateway.Response, error)
	name    string
	timeout time.Duration // 0: none
}

var _ gateway.Handler = (*FunctionUpstream)(nil)

// Function returns an upstream that serves each request by calling fn. A
// gateway.HandlerFunc, a func literal of that shape, or the Serve method of
// any gateway.Handler will do.
//
// When fn overruns its Timeout and ignores its context, it is left running
// while the client gets 504. It must then leave req alone: the gateway has
// moved on and may reuse or change it.
func Function(fn func(ctx context.Context, req *gateway.Request) (*gateway.Response, error), cfg FunctionConfig) (*FunctionUpstream, error) {
	if fn == nil {
		return nil, fmt.Errorf("proxy: function %q: the function is nil", cfg.Name)
	}
	return &FunctionUpstream{fn: fn, name: cfg.Name, timeout: fnTimeout(cfg.Timeout)}, nil
}

// Serve calls the function with req and returns its reply. An error is a
// *gateway.Error (the function's own, 502 or 504), or the context's error
// when the client has gone.
func (u *FunctionUpstream) Serve(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
	ctx, called := req.StartUpstream(ctx, "function", u.name, nil)
	resp, err := u.serve(ctx, req)
	called(callStatus(resp, err), err)
	return resp, err
}

func (u *FunctionUpstream) serve(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
	resp, c, err := fnStart(ctx, u.timeout, func(ctx context.Context) (*gateway.Response, error) {
		return u.fn(ctx, req)
	}, fnCloseResponse)
	if err != nil {
		resp.Close()
		return nil, fnFailure(ctx, u.name, err)
	}
	if c == nil {
		return resp, nil // no timeout: the call ran with the request's own context
	}
	if resp == nil || resp.Body == nil || resp.Body == http.NoBody || fnInMemory(resp.Body) {
		c.end()
		return resp, nil
	}
	return fnHold(resp, c), nil
}

// fnCloseResponse releases the reply of a call nobody waits for any more.
func fnCloseResponse(resp *gateway.Response) { resp.Close() }

// fnInMemory reports whether body is held in memory, as gateway.NewResponse's
// is (a bytes.Reader underneath): such a body cannot depend on the call's
// context, and passed on as it is, it keeps Response.Bytes from copying it.
func fnInMemory(body io.ReadCloser) bool {
	_, ok := body.(interface {
		io.ReaderAt
		io.Seeker
		Len() int
		Size() int64
	})
	return ok
}

// fnReply is the reply of a function, in one allocation with its body,
// which ends the call's context when it is closed.
type fnReply struct {
	resp gateway.Response
	body fnBody
	rw   fnUpgradedBody
}

// fnHold returns a copy of resp whose body ends c's context when closed. A
// body that can be written, such as the connection of a 101 reply, stays
// writable.
func fnHold(resp *gateway.Response, c *fnCall[*gateway.Response]) *gateway.Response {
	r := &fnReply{resp: *resp}
	if rwc, ok := resp.Body.(io.ReadWriteCloser); ok {
		r.rw = fnUpgradedBody{ReadWriteCloser: rwc, c: c}
		r.resp.Body = &r.rw
	} else {
		r.body = fnBody{ReadCloser: resp.Body, c: c}
		r.resp.Body = &r.body
	}
	return &r.resp
}

type fnBody struct {
	io.ReadCloser
	c *fnCall[*gateway.Response]
}

func (b *fnBody) Close() error {
	err := b.ReadCloser.Close()
	b.c.end()
	return err
}

type fnUpgradedBody struct {
	io.ReadWriteCloser
	c *fnCall[*gateway.Response]
}

func (b *fnUpgradedBody) Close() error {
	err := b.ReadWriteCloser.Close()
	b.c.end()
	return err
}

// fnTimeout turns a configured timeout into the one to apply; 0 means none.
func fnTimeout(d time.Duration) time.Duration {
	switch {
	case d == 0:
		return DefaultTimeout
	case d < 0:
		return 0
	}
	return d
}

// fnErrTimeout is the cause with which a call's context ends when the call
// takes longer than its timeout.
var fnErrTimeout = errors.New("proxy: the function did not return in time")

// fnPanicError is a panic recovered from a function, with its stack.
type fnPanicError struct {
	value any
	stack []byte
}

func (e *fnPanicError) Error() string {
	return fmt.Sprintf("panic: %v\n%s", e.value, e.stack)
}

// States of an fnCall: the function is running and awaited, it has
// returned, or the caller stopped waiting for it.
const (
	fnRunning int32 = iota
	fnReturned
	fnAbandoned
)

// fnCall is one call of a function on a goroutine of its own, and the
// context the function runs with, which ends at the deadline only while the
// function runs: once it has returned in time, the context ends when end is
// called, so that what it returned may go on using it. Whichever of the
// function and its caller moves the state on first decides who owns the
// result: the caller when the function returned first, else the function's
// goroutine, which then discards it.
type fnCall[T any] struct {
	context.Context // ended by cancel
	cancel          context.CancelCauseFunc
	deadline        time.Time
	timer           *time.Timer // calls expire at the deadline, unless stopped in time

	state atomic.Int32
	done  chan struct{}
	v     T
	err   error
}

// Deadline reports the call's deadline, which bounds it until the function
// returns.
func (c *fnCall[T]) Deadline() (time.Time, bool) { return c.deadline, true }

// Err reports context.DeadlineExceeded once the deadline has ended the
// context, as for a context of context.WithDeadline. (A context derived from
// this one reports context.Canceled, with fnErrTimeout as its cause.)
func (c *fnCall[T]) Err() error {
	err := c.Context.Err()
	if err != nil && context.Cause(c.Context) == fnErrTimeout {
		return context.DeadlineExceeded
	}
	return err
}

func (c *fnCall[T]) expire() { c.cancel(fnErrTimeout) }

// end ends the call's context. A nil c, a call without a timeout, has no
// context of its own.
func (c *fnCall[T]) end() {
	if c != nil {
		c.cancel(nil)
	}
}

// fnRun calls call with a context that ends after timeout (0: never), or
// when fnRun returns, and returns what call returns; see fnStart.
func fnRun[T any](ctx context.Context, timeout time.Duration, call func(context.Context) (T, error), discard func(T)) (T, error) {
	v, c, err := fnStart(ctx, timeout, call, discard)
	c.end()
	return v, err
}

// fnStart calls call with a context that ends after timeout (0: never) and
// returns what it returns. It answers when the context ends even if call
// has not returned: the error is then the context's cause, fnErrTimeout
// for a timeout, and the result that call returns later is handed to
// discard, if not nil. A result call returns once the timeout has passed
// counts as late too: an error is wrapped with fnErrTimeout, and a value
// is discarded, since its context has ended. A panic in call is returned
// as an *fnPanicError.
//
// When call returns in time, without error, its context lives on: the
// caller ends it with c.end once it is done with the result. c is nil when
// there is no timeout (call then ran with ctx, on the caller's goroutine)
// or when the call failed (its context has ended).
func fnStart[T any](ctx context.Context, timeout time.Duration, call func(context.Context) (T, error), discard func(T)) (T, *fnCall[T], error) {
	if timeout <= 0 {
		v, err := fnRecover(ctx, call)
		return v, nil, err
	}
	c := &fnCall[T]{done: make(chan struct{}), deadline: time.Now().Add(timeout)}
	if d, ok := ctx.Deadline(); ok && d.Before(c.deadline) {
		c.deadline = d
	}
	c.Context, c.cancel = context.WithCancelCause(ctx)
	c.timer = time.AfterFunc(timeout, c.expire)
	go func() {
		defer close(c.done)
		v, err := fnRecover(context.Context(c), call)
		c.timer.Stop() // if it fired, the context's cause says so
		if !c.state.CompareAndSwap(fnRunning, fnReturned) {
			if discard != nil {
				discard(v)
			}
			return
		}
		c.v, c.err = v, err
	}()
	select {
	case <-c.done:
	case <-c.Done():
		if c.state.CompareAndSwap(fnRunning, fnAbandoned) {
			c.timer.Stop()
			var zero T
			return zero, nil, context.Cause(c)
		}
		<-c.done // it returned just now; whether in time, the cause tells
	}
	if context.Cause(c) == fnErrTimeout {
		if c.err != nil {
			// Most likely the function gave up because of our deadline.
			return c.v, nil, fmt.Errorf("%w: %w", fnErrTimeout, c.err)
		}
		// The reply came just as the deadline passed: its context has
		// ended, which may cut what it streams, so it is lost anyway.
		if discard != nil {
			discard(c.v)
		}
		var zero T
		return zero, nil, fnErrTimeout
	}
	if c.err != nil {
		c.end()
		return c.v, nil, c.err
	}
	return c.v, c, nil
}

// fnRecover calls call and turns a panic into an *fnPanicError.
func fnRecover[T any](ctx context.Context, call func(context.Context) (T, error)) (v T, err error) {
	defer func() {
		if p := recover(); p != nil {
			var zero T
			v, err = zero, &fnPanicError{value: p, stack: debug.Stack()}
		}
	}()
	return call(ctx)
}

// fnFailure turns the error of a failed call into the error Serve returns.
// ctx is the request's context and name the function's.
func fnFailure(ctx context.Context, name string, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return cerr // the client has gone, or a stage's deadline passed
	}
	if ge, ok := errors.AsType[*gateway.Error](err); ok {
		return ge
	}
	if errors.Is(err, fnErrTimeout) {
		return &gateway.Error{
			Status: http.StatusGatewayTimeout,
			Detail: "the function did not reply in time",
			Err:    fmt.Errorf("proxy: function %q: %w", name, err),
		}
	}
	if _, ok := errors.AsType[*fnPanicError](err); ok {
		return &gateway.Error{
			Status: http.StatusBadGateway,
			Detail: "the function failed",
			Err:    fmt.Errorf("proxy: function %q panicked: %w", name, err),
		}
	}
	return &gateway.Error{
		Status: http.StatusBadGateway,
		Detail: "the function failed",
		Err:    fmt.Errorf("proxy: function %q: %w", name, err),
	}
}
