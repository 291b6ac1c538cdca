// Package h1 is a lean HTTP/1.1 client transport for plain-HTTP upstreams:
// an http.RoundTripper that a proxy.HTTPConfig can use in place of
// net/http's Transport when every target is an http:// URL.
//
//	tr := h1.New(h1.Config{})
//	defer tr.CloseIdleConnections()
//	up, err := proxy.HTTP(proxy.HTTPConfig{
//		Targets:   []string{"http://10.0.0.5:8080"},
//		Transport: tr,
//	})
//
// # Why
//
// net/http's Transport runs two goroutines per connection (persistConn's
// readLoop and writeLoop) and hands every request and reply between them
// and the caller over channels. Under load that hand-off, its selects and
// its allocations show up as a large share of a gateway's CPU. A Transport
// here does the whole exchange on the caller's goroutine: it takes an idle
// connection (or dials one), writes the request, then parses the reply from
// the connection's bufio.Reader; the reply body reads from that same
// reader, and the connection goes back to the pool when the body reaches
// its end.
//
// A connection borrows its buffers from pools of its Transport: a write
// buffer only while a request is written, a read buffer until the reply's
// body ends. An idle connection holds neither, only its socket and a few
// hundred bytes of state, so a thousand idle upstream connections do not
// pin 8 MiB of buffers.
//
// # Semantics
//
// It keeps net/http's client semantics where the proxy relies on them:
//   - Host from Request.Host, else URL.Host; User-Agent "Go-http-client/1.1"
//     unless the header has one (an empty value sends none); no
//     Accept-Encoding is ever added and bodies are never decompressed.
//   - Invalid header names and values (a CR or LF in a value, say: response
//     splitting) are refused before anything is sent, as net/http does.
//   - A body of known length goes with Content-Length, one of unknown length
//     (ContentLength 0 or -1 with a non-nil Body) chunked, with
//     Request.Trailer after it. The body streams: every chunk read from it
//     is flushed to the connection before the next read.
//   - httptrace: GetConn, GotConn, WroteRequest (after the body, or with the
//     error that stopped it), Got100Continue, and Got1xxResponse for every
//     1xx but 101 (up to 1,000 in a row; 5 without the hook); an error from
//     Got1xxResponse fails the round trip.
//   - A 101 Switching Protocols reply with Upgrade and Connection: upgrade
//     fields has a Body that is an io.ReadWriteCloser over the connection.
//   - Reply framing follows RFC 9112 §6.3; trailers of a chunked reply fill
//     Response.Trailer once the body has been read to its end.
//   - The request's context cancels everything: the dial, the write, the
//     wait for the header and the reply body's reads, which then return the
//     context's error.
//
// # Differences from net/http
//
//   - Plain http:// only; any other scheme is an error. No proxies, no TLS,
//     no HTTP/2.
//   - Expect: 100-continue is not waited for: the body is sent right after
//     the header, as net/http does with ExpectContinueTimeout 0 (the
//     proxy's default transport). A 100 Continue that comes is skipped like
//     any 1xx.
//   - The request and the reply are not full-duplex: the reply is read once
//     the request body is written. If writing fails because the upstream
//     replied early and closed, a reply already on the wire (within 50ms)
//     is still returned. An upstream that sends a reply larger than the
//     socket buffers without reading a large request body stalls the
//     exchange until the request's context ends; net/http's Transport,
//     which reads while it writes, does not.
//   - The request body is read on the caller's goroutine: the context ends
//     the connection's I/O at once, but a body Read that blocks is waited
//     for (net/http returns at once and leaves that Read behind).
//   - A reply header (status line and fields) is limited to
//     Config.MaxResponseHeaderBytes, 1 MiB by default (net/http: 10 MiB), and
//     so are trailers (net/http: about 4 KiB).
//   - The parser is stricter than net/http's: the status line must be
//     "HTTP/1.0" or "HTTP/1.1", one space, three digits (100 to 999), then
//     the end or a space and a reason; obs-fold in fields is refused (RFC 9112
//     §5.2 lets a proxy answer 502 instead of unfolding); a Transfer-Encoding
//     other than exactly "chunked", or any in an HTTP/1.0 reply, is refused;
//     an empty or malformed Content-Length is refused even where net/http
//     ignores it (204, 304).
//   - A connection is reused only when the reply body was read exactly to its
//     end, the request body was sent whole, neither side asked for
//     Connection: close, the reply did not carry both Transfer-Encoding and
//     Content-Length, and nothing follows the reply on the connection.
//     Closing a body before its end closes the connection (no draining).
//   - An idle connection is checked with a non-blocking peek before reuse;
//     one the server has closed is dropped. A request that still meets a
//     connection closed under it, before any byte of the reply, is sent again
//     on a new one when it can be (an idempotent method or an
//     Idempotency-Key field, and a body that is empty, unread or rewindable
//     with GetBody), as net/http does.
package h1
