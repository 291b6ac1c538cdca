package h1

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"time"
)

// max1xx is how many interim replies may precede the final one when
// nobody is told of them; max1xxRelayed when a Got1xxResponse hook relays
// them (net/http sets no count then: an upstream may send 102 Processing
// for as long as it works, bounded by the caller's deadline, and this
// bound only stops one that sends nothing else).
const (
	max1xx        = 5
	max1xxRelayed = 1000
)

// earlyReplyWait is how long a reply is waited for after the request failed
// to be written: an upstream that answered early and closed its end made
// the write fail, and its reply is the better error.
const earlyReplyWait = 50 * time.Millisecond

// exchange is one request on one connection.
type exchange struct {
	c     *conn
	req   *http.Request
	w     plan
	body  io.ReadCloser // nil: none
	trace *httptrace.ClientTrace
	bw    *bufio.Writer // lent by the Transport while the request is written

	probe [1]byte // reads past a body's announced length

	bodyTouched bool  // the body has been read from
	bodyClosed  bool  // and closed, once sent whole
	written0    int64 // the connection's byte count when the exchange began
	connFailed  bool  // the connection failed (not the body, nor the reply's syntax)
}

// run writes the request and reads the reply.
func (x *exchange) run(ctx context.Context) (*http.Response, error) {
	c := x.c
	var stop func() bool
	if ctx.Done() != nil {
		stop = context.AfterFunc(ctx, c.abort)
	}
	c.p.got = false
	x.written0 = c.nwrite

	x.bw = c.takeWriter()
	x.writeHead()
	var writeErr, bodyErr error
	if x.body == nil && (x.w.chunked || x.w.length > 0) {
		// A retry whose GetBody gave no body: the head announced one, so
		// end it (chunked) or fail (a length) rather than leave the
		// connection waiting for bytes that never come.
		x.body = http.NoBody
	}
	if x.body != nil {
		writeErr, bodyErr = x.writeBody()
	}
	if writeErr == nil && bodyErr == nil {
		writeErr = x.flush()
	}
	// Whatever happened, nothing more is written: the buffer is not kept
	// while the reply is awaited, nor while the connection is idle.
	c.releaseWriter(x.bw)
	x.bw = nil
	if x.trace != nil && x.trace.WroteRequest != nil {
		x.trace.WroteRequest(httptrace.WroteRequestInfo{Err: errors.Join(writeErr, bodyErr)})
	}
	switch {
	case bodyErr != nil:
		settle(c, stop, false)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("h1: reading the request body: %w", bodyErr)
	case writeErr != nil:
		if err := ctx.Err(); err != nil {
			settle(c, stop, false)
			return nil, err
		}
		x.connFailed = true
		if x.bodyTouched && x.wroteAny() {
			// The upstream may have replied without reading it all.
			c.nc.SetReadDeadline(time.Now().Add(earlyReplyWait))
			if resp, err := x.read(ctx, stop, false, true); err == nil {
				return resp, nil
			}
			return nil, fmt.Errorf("h1: writing the request: %w", writeErr)
		}
		settle(c, stop, false)
		return nil, fmt.Errorf("h1: writing the request: %w", writeErr)
	}
	if x.body != nil {
		x.body.Close()
		x.bodyClosed = true
	}
	return x.read(ctx, stop, !x.w.close, false)
}

// read reads the reply: the interim ones, relayed to the trace, then the
// final one. reuse says whether the request lets the connection be reused.
// early says the request was not written whole and the connection has a
// short read deadline to clear.
func (x *exchange) read(ctx context.Context, stop func() bool, reuse, early bool) (*http.Response, error) {
	c := x.c
	fail := func(err error) (*http.Response, error) {
		settle(c, stop, false)
		if cerr := ctx.Err(); cerr != nil {
			return nil, cerr
		}
		return nil, err
	}
	var h head
	for n := 0; ; n++ {
		var err error
		if h, err = c.p.readHead(); err != nil {
			if !errors.Is(err, ErrMalformedResponse) && !errors.Is(err, ErrHeaderTooLarge) {
				x.connFailed = true
			}
			if err == io.EOF {
				err = fmt.Errorf("h1: the connection closed before the reply: %w", io.ErrUnexpectedEOF)
			}
			return fail(err)
		}
		if h.code/100 != 1 || h.code == http.StatusSwitchingProtocols {
			break
		}
		limit := max1xx
		if x.trace != nil && x.trace.Got1xxResponse != nil {
			limit = max1xxRelayed
		}
		if n == limit {
			return fail(malformed("too many 1xx informational responses"))
		}
		if h.code == http.StatusContinue && x.trace != nil && x.trace.Got100Continue != nil {
			x.trace.Got100Continue()
		}
		if x.trace != nil && x.trace.Got1xxResponse != nil {
			if err := x.trace.Got1xxResponse(h.code, textproto.MIMEHeader(h.header)); err != nil {
				return fail(err)
			}
		}
	}
	if early {
		c.nc.SetReadDeadline(time.Time{})
		if ctx.Err() != nil {
			c.abort() // the context may have ended while the deadline was cleared
		}
	}
	r, err := frame(h, x.req, &c.p)
	if err != nil {
		return fail(err)
	}
	resp := &r.resp
	if h.code == http.StatusSwitchingProtocols && isProtocolSwitch(resp.Header) {
		// The connection is the caller's now; the context no longer
		// governs it.
		if stop != nil && !stop() {
			c.nc.Close()
			return nil, ctx.Err()
		}
		resp.Body = &upgraded{c: c}
		return resp, nil
	}
	b := &r.body
	// A 101 that names no protocol leaves the connection in no known state.
	b.reuse = b.reuse && reuse && !early && h.code != http.StatusSwitchingProtocols
	if b.mode == modeNone {
		b.state.Store(1)
		settle(c, stop, b.reuse)
		return resp, nil
	}
	b.c, b.ctx, b.stop = c, ctx, stop
	return resp, nil
}

// isProtocolSwitch reports whether a 101 reply's header names the protocol
// switched to, as net/http requires before it hands over the connection.
func isProtocolSwitch(h http.Header) bool {
	_, ok := h["Upgrade"]
	return ok && hasTokenIn(h["Connection"], "upgrade")
}

// retryable reports whether the failed exchange may be sent again on
// another connection, by net/http's rule: the connection was a reused one
// that failed before any byte of the reply, and the request is idempotent
// or was not written at all, and its body can be sent again.
func (x *exchange) retryable(ctx context.Context) bool {
	switch {
	case !x.c.reused || !x.connFailed || x.c.p.got || ctx.Err() != nil:
		return false
	case x.wroteAny() && !isIdempotent(x.req):
		return false
	case x.bodyTouched && x.req.GetBody == nil:
		return false
	}
	return true
}

// wroteAny reports whether any byte of the request went out on the
// connection.
func (x *exchange) wroteAny() bool { return x.c.nwrite > x.written0 }
