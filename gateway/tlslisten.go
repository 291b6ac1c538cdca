package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"
)

// tlsListener completes the TLS handshake of each connection itself, so
// that HTTP/1.x connections can be checked for ambiguous framing after
// decryption: net/http reads through the checkedConn that wraps the
// *tls.Conn, and the server's handler restores Request.TLS from it.
// Connections that negotiated HTTP/2 go to net/http as the *tls.Conn they
// are, for its HTTP/2 server (whose framing has no such ambiguity).
//
// Handshakes run on their own goroutines, bounded by timeout, so a slow
// client holds up nobody else's Accept.
type tlsListener struct {
	net.Listener
	config         *tls.Config
	timeout        time.Duration
	maxHeaderBytes int
	log            *slog.Logger

	ctx    context.Context // ends at Close, aborting handshakes
	cancel context.CancelFunc
	conns  chan net.Conn
	errc   chan error
	once   sync.Once
}

func newTLSListener(ln net.Listener, config *tls.Config, timeout time.Duration, maxHeaderBytes int, log *slog.Logger) *tlsListener {
	ctx, cancel := context.WithCancel(context.Background())
	l := &tlsListener{
		Listener: ln, config: config, timeout: timeout, maxHeaderBytes: maxHeaderBytes, log: log,
		ctx: ctx, cancel: cancel, conns: make(chan net.Conn), errc: make(chan error, 1),
	}
	go l.acceptLoop()
	return l
}

func (l *tlsListener) acceptLoop() {
	var delay time.Duration
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if l.ctx.Err() == nil && backOff(err, &delay, l.ctx.Done()) {
				continue
			}
			l.errc <- err
			return
		}
		delay = 0
		go l.handshake(c)
	}
}

func (l *tlsListener) handshake(c net.Conn) {
	tc := tls.Server(c, l.config)
	ctx, cancel := context.WithTimeout(l.ctx, l.timeout)
	err := tc.HandshakeContext(ctx)
	cancel()
	if err != nil {
		if re, ok := errors.AsType[tls.RecordHeaderError](err); ok && re.Conn != nil && looksLikeHTTP(re.RecordHeader) {
			// As net/http does: say why, rather than just hang up.
			re.Conn.SetWriteDeadline(time.Now().Add(time.Second))
			io.WriteString(re.Conn, "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
		}
		if l.ctx.Err() == nil {
			l.log.Debug("gateway: TLS handshake failed", "remote", c.RemoteAddr().String(), "err", err)
		}
		c.Close()
		return
	}
	var out net.Conn = tc
	if tc.ConnectionState().NegotiatedProtocol != "h2" {
		out = &checkedTLSConn{checkedConn{Conn: tc, scan: newFramingScanner(l.maxHeaderBytes)}, tc}
	}
	select {
	case l.conns <- out:
	case <-l.ctx.Done():
		out.Close()
	}
}

// backOff waits after a temporary Accept error (out of file descriptors
// and the like), as net/http does, instead of spinning or giving up: 5ms,
// doubling to a second, or until done. It reports whether err was
// temporary; delay carries the wait from one error to the next.
func backOff(err error, delay *time.Duration, done <-chan struct{}) bool {
	var te interface{ Temporary() bool }
	if !errors.As(err, &te) || !te.Temporary() {
		return false
	}
	*delay = min(max(2**delay, 5*time.Millisecond), time.Second)
	t := time.NewTimer(*delay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-done:
	}
	return true
}

// looksLikeHTTP reports whether the first bytes of what should have been
// a TLS record are the start of a plain-text HTTP request.
func looksLikeHTTP(hdr [5]byte) bool {
	switch string(hdr[:]) {
	case "GET /", "HEAD ", "POST ", "PUT /", "OPTIO", "DELET", "PATCH", "CONNE", "TRACE":
		return true
	}
	return false
}

func (l *tlsListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case err := <-l.errc:
		l.errc <- err // for the next caller
		return nil, err
	case <-l.ctx.Done():
		return nil, net.ErrClosed
	}
}

func (l *tlsListener) Close() error {
	var err error
	l.once.Do(func() {
		l.cancel()
		err = l.Listener.Close()
	})
	return err
}
