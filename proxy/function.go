package proxy

import (
	"context"
	"errors"
	"fmt"
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

	// Timeout bounds one call of the function: past it the client gets
	// 504, whether or not the function has returned. The function's
	// context carries the deadline, and a function that honours it stops
	// then; one that ignores it keeps running on its own goroutine until it
	// returns, and what it returns is dropped (a reply body is closed).
	// 0 means DefaultTimeout; a negative value means no limit, and the
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
// The function's context ends when Serve returns, as an http.Handler's
// request context ends when ServeHTTP returns: a streamed reply Body must
// not depend on it.
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
	resp, err := fnRun(ctx, u.timeout, func(ctx context.Context) (*gateway.Response, error) {
		return u.fn(ctx, req)
	}, fnCloseResponse)
	if err != nil {
		resp.Close()
		return nil, fnFailure(ctx, u.name, err)
	}
	return resp, nil
}

// fnCloseResponse releases the reply of a call nobody waits for any more.
func fnCloseResponse(resp *gateway.Response) { resp.Close() }

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

// fnCall is one call of a function on a goroutine of its own. Whichever of
// the function and its caller moves the state on first decides who owns
// the result: the caller when the function returned first, else the
// function's goroutine, which then discards it.
type fnCall[T any] struct {
	state atomic.Int32
	done  chan struct{}
	v     T
	err   error
}

// fnRun calls call with a context that ends after timeout (0: never) and
// returns what it returns. It answers when the context ends even if call
// has not returned: the error is then the context's cause, fnErrTimeout
// for a timeout, and the result that call returns later is handed to
// discard, if not nil. An error call returns once the timeout has passed
// is wrapped with fnErrTimeout too. A panic in call is returned as an
// *fnPanicError.
func fnRun[T any](ctx context.Context, timeout time.Duration, call func(context.Context) (T, error), discard func(T)) (T, error) {
	if timeout <= 0 {
		return fnRecover(ctx, call)
	}
	cctx, cancel := context.WithTimeoutCause(ctx, timeout, fnErrTimeout)
	defer cancel()
	c := &fnCall[T]{done: make(chan struct{})}
	go func() {
		defer close(c.done)
		v, err := fnRecover(cctx, call)
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
	case <-cctx.Done():
		if c.state.CompareAndSwap(fnRunning, fnAbandoned) {
			var zero T
			return zero, context.Cause(cctx)
		}
		<-c.done // it returned just now: its answer stands
	}
	if c.err != nil && context.Cause(cctx) == fnErrTimeout {
		// Most likely the function gave up because of our deadline.
		return c.v, fmt.Errorf("%w: %w", fnErrTimeout, c.err)
	}
	return c.v, c.err
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
