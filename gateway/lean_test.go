package gateway_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatekit/gatekit/gateway"
)

// serveTB serves srv on a loopback listener until tb ends, like startServer
// but for any testing.TB (a fuzz target starts its servers on its *F).
func serveTB(tb testing.TB, srv *gateway.Server) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ctx, ln) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			tb.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// needNetHTTP skips a test that compares the lean server with net/http's
// when GATEKIT_TEST_SERVER=lean makes every Server lean: there is then no
// net/http server to compare with.
func needNetHTTP(tb testing.TB) {
	if os.Getenv("GATEKIT_TEST_SERVER") == "lean" {
		tb.Skip("GATEKIT_TEST_SERVER=lean: every Server is lean, none to compare with")
	}
}

// rawReply is one reply as a client reads it off the wire.
type rawReply struct {
	Proto         string
	Status        int
	Header        http.Header // without Date
	Body          string
	BodyErr       bool // the body ended early (shorter than announced, or cut)
	Trailer       http.Header
	Chunked       bool
	ContentLength int64
}

// rawOutcome is what a client sees of a connection: the replies in order,
// and whether the server closed the connection after the last one.
type rawOutcome struct {
	Replies []rawReply
	Closed  bool
}

func (o rawOutcome) statuses() []int {
	var s []int
	for _, r := range o.Replies {
		s = append(s, r.Status)
	}
	return s
}

func (o rawOutcome) String() string {
	var b strings.Builder
	for i, r := range o.Replies {
		fmt.Fprintf(&b, "  reply %d: %s %d chunked=%v content-length=%d body-err=%v\n    header: %v\n    body: %q\n    trailer: %v\n",
			i, r.Proto, r.Status, r.Chunked, r.ContentLength, r.BodyErr, r.Header, truncate(r.Body, 200), r.Trailer)
	}
	fmt.Fprintf(&b, "  closed: %v", o.Closed)
	return b.String()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + fmt.Sprintf("...(%d bytes)", len(s))
}

// requestMethods is the method of each request in raw, as far as they
// parse, so that replies to HEAD are read without a body.
func requestMethods(raw string) []string {
	var methods []string
	br := bufio.NewReader(strings.NewReader(raw))
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return methods
		}
		methods = append(methods, req.Method)
		if _, err := io.Copy(io.Discard, req.Body); err != nil {
			return methods
		}
	}
}

// rawExchange writes raw on a new connection to addr (concurrently, since
// a server may answer before it has read everything) and reads replies
// until the server closes the connection or wait passes without a reply
// (half a second once every request has its reply).
func rawExchange(tb testing.TB, addr, raw string, wait time.Duration) rawOutcome {
	tb.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		tb.Fatal(err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer conn.Close()
	wg.Go(func() {
		conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(conn, raw) // the server may close before it has read all: not an error here
	})
	methods := requestMethods(raw)
	br := bufio.NewReader(conn)
	var out rawOutcome
	final := 0 // final (non-1xx) replies read, to know which request the next reply answers
	for {
		// Once every request is answered, only the close is awaited: a
		// server that closes does so right after its last reply.
		d := wait
		if final >= len(methods) {
			d = min(wait, 500*time.Millisecond)
		}
		conn.SetReadDeadline(time.Now().Add(d))
		method := "GET"
		if final < len(methods) {
			method = methods[final]
		}
		resp, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			var ne net.Error
			out.Closed = !(errors.As(err, &ne) && ne.Timeout())
			return out
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		h := resp.Header.Clone()
		delete(h, "Date")
		out.Replies = append(out.Replies, rawReply{
			Proto:         resp.Proto,
			Status:        resp.StatusCode,
			Header:        h,
			Body:          string(body),
			BodyErr:       err != nil,
			Trailer:       resp.Trailer,
			Chunked:       slices.Contains(resp.TransferEncoding, "chunked"),
			ContentLength: resp.ContentLength,
		})
		if resp.StatusCode >= 200 {
			final++
		}
		if err != nil {
			// A body cut short: the connection is unusable. Whether it
			// was closed is what ReadAll saw.
			var ne net.Error
			out.Closed = !(errors.As(err, &ne) && ne.Timeout())
			return out
		}
	}
}

// engines is the outcome of one exchange on each server.
type engines struct{ net, lean rawOutcome }

// exchangeBoth starts a net/http-based and a lean Server with the same
// handler and settings, and sends raw to each, both at once.
func exchangeBoth(t *testing.T, h http.Handler, configure func(*gateway.Server), raw string) engines {
	t.Helper()
	addrs := make([]string, 2)
	for i, lean := range []bool{false, true} {
		srv := &gateway.Server{Handler: h, Logger: quietLogger(), LeanHTTP1: lean, ShutdownTimeout: 5 * time.Second}
		if configure != nil {
			configure(srv)
		}
		addrs[i] = serveTB(t, srv)
	}
	var res engines
	var wg sync.WaitGroup
	wg.Go(func() { res.net = rawExchange(t, addrs[0], raw, 2*time.Second) })
	wg.Go(func() { res.lean = rawExchange(t, addrs[1], raw, 2*time.Second) })
	wg.Wait()
	return res
}

// expected is what one engine is expected to do where the two differ on
// purpose.
type expected struct {
	statuses []int
	closed   bool
}

// echo answers 200 with what it saw of the request in X- fields, and the
// request body as the reply body.
func echo(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	h := w.Header()
	h.Set("X-Method", r.Method)
	h.Set("X-URI", r.RequestURI)
	h.Set("X-Host", r.Host)
	h.Set("X-Proto", r.Proto)
	h.Set("X-Content-Length", strconv.FormatInt(r.ContentLength, 10))
	h.Set("X-Close", strconv.FormatBool(r.Close))
	h.Set("X-TE", strings.Join(r.TransferEncoding, ","))
	for _, k := range slices.Sorted(maps.Keys(r.Header)) {
		h.Add("X-Header", k+"="+strings.Join(r.Header[k], "|"))
	}
	for _, k := range slices.Sorted(maps.Keys(r.Trailer)) {
		h.Add("X-Trailer", k+"="+strings.Join(r.Trailer[k], "|"))
	}
	if err != nil {
		h.Set("X-Body-Error", err.Error())
	}
	w.Write(b)
}

func writeString(s string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, s) }
}

var (
	body3000 = strings.Repeat("0123456789", 300)
	body1MiB = strings.Repeat("x", 1<<20)
)

const (
	get     = "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"
	get2    = "GET /second HTTP/1.1\r\nHost: example.com\r\n\r\n"
	head    = "HEAD / HTTP/1.1\r\nHost: example.com\r\n\r\n"
	get10   = "GET / HTTP/1.0\r\n\r\n"
	get10KA = "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
)

func post(body string) string {
	return "POST /upload HTTP/1.1\r\nHost: example.com\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
}

func TestLeanMatchesNetHTTP(t *testing.T) {
	needNetHTTP(t)
	cases := []struct {
		name      string
		raw       string
		h         http.HandlerFunc
		configure func(*gateway.Server)
		// refusal, when set, says why only the statuses and the close are
		// compared: the request is refused before any handler, and the
		// lean server writes its refusals as problem+json where net/http
		// writes text/plain.
		refusal string
		// cut, when set, says why a reply is cut short by the handler (a
		// panic) at a point that depends on the servers' buffer sizes:
		// the statuses, the close and that each body is cut are compared,
		// and that one body is a prefix of the other.
		cut string
		// differs, when set, says why the engines answer differently on
		// purpose; each is then held to its own expected outcome.
		differs         string
		wantNet, wantLn expected
	}{
		// Reply framing.
		{name: "short body", raw: get + get2, h: writeString("hello")},
		{name: "3000-byte body is chunked", raw: get + get2, h: writeString(body3000)},
		{name: "3000-byte body in small writes", raw: get + get2, h: func(w http.ResponseWriter, r *http.Request) {
			for i := 0; i < 300; i++ {
				io.WriteString(w, "0123456789")
			}
		}},
		{name: "exactly 2048 bytes", raw: get + get2, h: writeString(strings.Repeat("a", 2048))},
		{name: "2049 bytes", raw: get + get2, h: writeString(strings.Repeat("a", 2049))},
		{name: "Content-Length set and written", raw: get + get2, h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "3000")
			io.WriteString(w, body3000)
		}},
		{name: "Content-Length set and less written", raw: get + get2, h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "10")
			io.WriteString(w, "short")
		}},
		{name: "Content-Length set and more written", raw: get + get2, h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "3")
			_, err := io.WriteString(w, "too long")
			w.Header().Set("X-Err", fmt.Sprint(err)) // too late to be seen, but harmless
		}},
		{name: "invalid Content-Length from the handler", raw: get + get2, h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "abc")
			io.WriteString(w, "hello")
		}},
		{name: "nothing written", raw: get + get2, h: func(w http.ResponseWriter, r *http.Request) {}},
		{name: "only WriteHeader 201", raw: get + get2, h: func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusCreated) }},
		{name: "WriteHeader twice", raw: get + get2, h: func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusAccepted)
			w.WriteHeader(http.StatusTeapot)
			io.WriteString(w, "x")
		}},
		{name: "unknown status code", raw: get + get2, h: func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(599) }},
		{name: "204 and a write", raw: get + get2, h: func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusNoContent)
			_, err := io.WriteString(w, "no")
			if !errors.Is(err, http.ErrBodyNotAllowed) {
				panic(fmt.Sprintf("write after 204: %v", err))
			}
		}},
		{name: "204 with Content-Length", raw: get + get2, h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "0")
			w.WriteHeader(http.StatusNoContent)
		}},
		{name: "304 and a write", raw: get + get2, h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("ETag", `"x"`)
			w.WriteHeader(http.StatusNotModified)
			io.WriteString(w, "no")
		}},
		{name: "304 with Content-Length", raw: get + get2, h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "100")
			w.WriteHeader(http.StatusNotModified)
		}},
		{name: "HEAD with a short body", raw: head + get2, h: writeString("hello")},
		{name: "HEAD with a 3000-byte body", raw: head + get2, h: writeString(body3000)},
		{name: "HEAD with nothing written", raw: head + get2, h: func(w http.ResponseWriter, r *http.Request) {}},
		{name: "HEAD with Content-Length set", raw: head + get2, h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "42")
		}},
		{name: "Flush in the middle", raw: get + get2, h: func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "first ")
			w.(http.Flusher).Flush()
			io.WriteString(w, "second")
		}},
		{name: "Flush before writing", raw: get + get2, h: func(w http.ResponseWriter, r *http.Request) {
			w.(http.Flusher).Flush()
		}},
		{name: "Flush through ResponseController", raw: get + get2, h: func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "a")
			if err := http.NewResponseController(w).Flush(); err != nil {
				panic(err)
			}
			io.WriteString(w, "b")
		}},
		{name: "Flush with Content-Length", raw: get + get2, h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "2")
			io.WriteString(w, "a")
			w.(http.Flusher).Flush()
			io.WriteString(w, "b")
		}},
		{name: "103 Early Hints then 200", raw: get + get2, h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Link", "</style.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			w.Header().Set("X-Final", "yes")
			io.WriteString(w, "done")
		}},
		{name: "handler sends 100 Continue itself", raw: get + get2, h: func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusContinue)
			io.WriteString(w, "done")
		}},
		{name: "Transfer-Encoding chunked set by the handler", raw: get + get2, h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Transfer-Encoding", "chunked")
			io.WriteString(w, "hello")
		}},
		{name: "Transfer-Encoding identity set by the handler", raw: get + get2, h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Transfer-Encoding", "identity")
			io.WriteString(w, "hello")
		}},
		{name: "Content-Type sniffed", raw: get + get2, h: writeString("<html><body>hi</body></html>")},
		{name: "Content-Type nil suppresses sniffing", raw: get + get2, h: func(w http.ResponseWriter, r *http.Request) {
			w.Header()["Content-Type"] = nil
			io.WriteString(w, "<html></html>")
		}},
		{name: "Content-Type set", raw: get + get2, h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, "{}")
		}},
		{name: "Date set by the handler", raw: get + get2, h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Date", "yesterday") // Date is ignored by the comparison; the reply must still be read alike
			io.WriteString(w, "x")
		}},
		{name: "header value with CRLF from the handler", raw: get + get2, h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Evil", "a\r\nInjected: yes")
			io.WriteString(w, "x")
		}},
		{name: "trailers declared with Trailer", raw: get + get2, h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Trailer", "X-Checksum, X-Count")
			w.WriteHeader(http.StatusOK)
			io.WriteString(w, "body")
			w.Header().Set("X-Checksum", "abc")
			w.Header().Set("X-Count", "1")
			w.Header().Set("X-Undeclared", "no")
		}},
		{name: "trailers declared and a 3000-byte body", raw: get + get2, h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Add("Trailer", "X-Checksum")
			io.WriteString(w, body3000)
			w.Header().Set("X-Checksum", "abc")
		}},
		{name: "trailers with TrailerPrefix", raw: get + get2, h: func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "body")
			w.Header().Set(http.TrailerPrefix+"X-Late", "late")
		}},
		{name: "trailers with TrailerPrefix and no body", raw: get + get2, h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set(http.TrailerPrefix+"X-Late", "late")
		}},
		{name: "trailers on HTTP/1.0", raw: get10KA, h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Trailer", "X-Checksum")
			io.WriteString(w, "body")
			w.Header().Set("X-Checksum", "abc")
		}},
		{name: "trailers on HEAD", raw: head + get2, h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Trailer", "X-Checksum")
			io.WriteString(w, "body")
			w.Header().Set("X-Checksum", "abc")
		}},

		// Request bodies.
		{name: "handler reads the body", raw: post("hello") + get2, h: echo},
		{name: "handler ignores a small body", raw: post("hello") + get2, h: writeString("ignored")},
		{name: "handler ignores a 1 MiB body", raw: post(body1MiB) + get2, h: writeString("ignored")},
		{name: "handler ignores a 200 KiB body", raw: post(strings.Repeat("y", 200<<10)) + get2, h: writeString("ignored")},
		{name: "handler reads part of a body", raw: post(body3000) + get2, h: func(w http.ResponseWriter, r *http.Request) {
			b := make([]byte, 10)
			io.ReadFull(r.Body, b)
			w.Write(b)
		}},
		{name: "handler closes the body unread", raw: post(body3000) + get2, h: func(w http.ResponseWriter, r *http.Request) {
			r.Body.Close()
			_, err := r.Body.Read(make([]byte, 1))
			fmt.Fprint(w, err)
		}},
		{name: "handler writes 3000 bytes then reads the body", raw: post("hello") + get2, h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Trailer", "X-Read")
			io.WriteString(w, body3000)
			b, err := io.ReadAll(r.Body)
			w.Header().Set("X-Read", fmt.Sprintf("%q %v", b, err))
		}},
		{name: "full duplex echo", raw: post(body3000) + get2, h: func(w http.ResponseWriter, r *http.Request) {
			if err := http.NewResponseController(w).EnableFullDuplex(); err != nil {
				panic(err)
			}
			w.Header().Set("Trailer", "X-Read")
			io.WriteString(w, body3000)
			b, err := io.ReadAll(r.Body)
			w.Header().Set("X-Read", fmt.Sprintf("%d %v", len(b), err))
		}},
		{name: "chunked request body read", raw: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n" + get2, h: echo},
		{name: "chunked request body with trailers", raw: "POST / HTTP/1.1\r\nHost: a\r\nTrailer: X-T\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-T: v\r\n\r\n" + get2, h: echo},
		{name: "chunked request body ignored", raw: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n" + get2, h: writeString("ignored")},
		{name: "chunked request body malformed", raw: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n" + get2, h: echo},
		{name: "POST body followed by a stray CRLF", raw: post("hello") + "\r\n" + get2, h: echo},
		{name: "GET with a body", raw: "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello" + get2, h: echo},
		{name: "Expect 100-continue, handler reads", raw: "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello" + get2, h: echo},
		{name: "Expect 100-continue, handler does not read", raw: "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello" + get2, h: writeString("ignored")},
		{name: "Expect 100-continue, handler writes 3000 bytes then reads", raw: "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello" + get2, h: func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, body3000)
			io.Copy(io.Discard, r.Body)
		}},
		{name: "Expect 100-continue without a body", raw: "GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n" + get2, h: echo},
		{name: "Expect 100-continue on HTTP/1.0", raw: "POST / HTTP/1.0\r\nConnection: keep-alive\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello", h: echo},
		{name: "Expect 100-Continue in another case", raw: "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 5\r\n\r\nhello" + get2, h: echo},
		{name: "Expect 100-continue among other expectations", raw: "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue, x-other\r\nContent-Length: 5\r\n\r\nhello" + get2, h: echo},
		{name: "Expect something else", raw: "POST / HTTP/1.1\r\nHost: a\r\nExpect: x-other\r\nContent-Length: 5\r\n\r\nhello" + get2, h: echo,
			refusal: "the lean server refuses with a problem+json body, net/http with an empty one"},

		// Keep-alive.
		{name: "HTTP/1.0 without keep-alive", raw: get10 + get10, h: writeString("hello")},
		{name: "HTTP/1.0 keep-alive", raw: get10KA + get10KA, h: writeString("hello")},
		{name: "HTTP/1.0 keep-alive, 3000-byte body", raw: get10KA + get10KA, h: writeString(body3000)},
		{name: "HTTP/1.0 keep-alive, nothing written", raw: get10KA + get10KA, h: func(w http.ResponseWriter, r *http.Request) {}},
		{name: "HTTP/1.0 keep-alive, flushed", raw: get10KA + get10KA, h: func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "a")
			w.(http.Flusher).Flush()
			io.WriteString(w, "b")
		}},
		{name: "HTTP/1.0 keep-alive, HEAD", raw: "HEAD / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" + get10KA, h: writeString(body3000)},
		{name: "HTTP/1.0 keep-alive, 204", raw: get10KA + get10KA, h: func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }},
		{name: "HTTP/1.0 keep-alive, handler sets Connection: close", raw: get10KA + get10KA, h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Connection", "close")
			io.WriteString(w, "x")
		}},
		{name: "HTTP/1.0 with a Host and a body", raw: "POST / HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\nContent-Length: 5\r\n\r\nhello" + get10KA, h: echo},
		{name: "Connection: close from the client", raw: "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n" + get2, h: writeString("hello")},
		{name: "Connection: keep-alive, close from the client", raw: "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, close\r\n\r\n" + get2, h: writeString("hello")},
		{name: "Connection: close, 3000-byte body", raw: "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", h: writeString(body3000)},
		{name: "handler sets Connection: close", raw: get + get2, h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Connection", "close")
			io.WriteString(w, "bye")
		}},
		{name: "handler sets Connection: keep-alive", raw: get + get2, h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Connection", "keep-alive")
			io.WriteString(w, "x")
		}},
		{name: "three pipelined requests", raw: get + head + get2, h: echo},
		{name: "HTTP/1.2", raw: "GET / HTTP/1.2\r\nHost: a\r\n\r\n" + get2, h: echo},

		// Request targets and Host.
		{name: "OPTIONS *", raw: "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n" + get2, h: echo},
		{name: "absolute-form with Host", raw: "GET http://example.org/x?y HTTP/1.1\r\nHost: other\r\n\r\n" + get2, h: echo},
		{name: "CONNECT", raw: "CONNECT example.org:443 HTTP/1.1\r\n\r\n", h: echo},
		{name: "HTTP/1.0 without Host", raw: get10, h: echo},
		{name: "missing Host in HTTP/1.1", raw: "GET / HTTP/1.1\r\n\r\n" + get2, h: echo,
			refusal: "refused before the handler: error bodies differ"},
		{name: "two Host fields", raw: "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n" + get2, h: echo,
			refusal: "refused before the handler: error bodies differ"},
		{name: "malformed Host", raw: "GET / HTTP/1.1\r\nHost: a b\r\n\r\n" + get2, h: echo,
			refusal: "refused before the handler: error bodies differ"},
		{name: "Host with a slash", raw: "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n" + get2, h: echo,
			refusal: "refused before the handler: error bodies differ"},
		{name: "empty Host in HTTP/1.1", raw: "GET / HTTP/1.1\r\nHost:\r\n\r\n" + get2, h: echo,
			differs: "RFC 9110 §4.2.1: an http URI's authority must not be empty; the lean server refuses what net/http accepts",
			wantNet: expected{[]int{200, 200}, false}, wantLn: expected{[]int{400}, true}},
		{name: "absolute-form without Host in HTTP/1.1", raw: "GET http://example.org/x HTTP/1.1\r\n\r\n" + get2, h: echo,
			differs: "the target names the host (RFC 9112 §3.2.2); the lean server accepts what net/http refuses",
			wantNet: expected{[]int{400}, true}, wantLn: expected{[]int{200, 200}, false}},
		{name: "request target too long", raw: "GET /" + strings.Repeat("a", 9000) + " HTTP/1.1\r\nHost: a\r\n\r\n" + get2, h: echo},
		{name: "too many header fields", raw: "GET / HTTP/1.1\r\nHost: a\r\n" + strings.Repeat("X-A: b\r\n", 101) + "\r\n" + get2, h: echo},

		// Malformed requests.
		{name: "invalid header name", raw: "GET / HTTP/1.1\r\nHost: a\r\nBad@Name: x\r\n\r\n" + get2, h: echo,
			refusal: "refused before the handler: error bodies differ"},
		{name: "header value with a control char", raw: "GET / HTTP/1.1\r\nHost: a\r\nX-A: a\x01b\r\n\r\n" + get2, h: echo,
			refusal: "refused before the handler: error bodies differ"},
		{name: "header value with DEL", raw: "GET / HTTP/1.1\r\nHost: a\r\nX-A: a\x7fb\r\n\r\n" + get2, h: echo,
			refusal: "refused before the handler: error bodies differ"},
		{name: "header value with a tab", raw: "GET / HTTP/1.1\r\nHost: a\r\nX-A: a\tb\r\n\r\n" + get2, h: echo},
		{name: "header value with obs-text", raw: "GET / HTTP/1.1\r\nHost: a\r\nX-A: caf\xc3\xa9\r\n\r\n" + get2, h: echo},
		{name: "space before the colon", raw: "GET / HTTP/1.1\r\nHost: a\r\nX-A : b\r\n\r\n" + get2, h: echo,
			refusal: "refused before the handler: error bodies differ"},
		{name: "folded header line", raw: "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n" + get2, h: echo},
		{name: "head bigger than MaxHeaderBytes", raw: "GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + strings.Repeat("b", 8000) + "\r\n\r\n" + get2, h: echo,
			configure: func(s *gateway.Server) { s.MaxHeaderBytes = 1024 },
			refusal:   "refused before the handler: error bodies differ"},
		{name: "head just under MaxHeaderBytes", raw: "GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + strings.Repeat("b", 900) + "\r\n\r\n" + get2, h: echo,
			configure: func(s *gateway.Server) { s.MaxHeaderBytes = 1024 }},
		{name: "PRI * HTTP/2.0", raw: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", h: echo},
		{name: "HTTP/2.0 request line", raw: "GET / HTTP/2.0\r\nHost: a\r\n\r\n", h: echo,
			refusal: "refused before the handler: error bodies differ"},
		{name: "HTTP/0.9 request line", raw: "GET /\r\n\r\n", h: echo,
			refusal: "refused before the handler: error bodies differ"},
		{name: "HTTP/3.0 request line", raw: "GET / HTTP/3.0\r\nHost: a\r\n\r\n", h: echo,
			refusal: "refused before the handler: error bodies differ"},
		{name: "malformed request line", raw: "GET  / HTTP/1.1 extra\r\nHost: a\r\n\r\n", h: echo,
			refusal: "refused before the handler: error bodies differ"},
		{name: "invalid method", raw: "G@T / HTTP/1.1\r\nHost: a\r\n\r\n", h: echo,
			refusal: "refused before the handler: error bodies differ"},
		{name: "unparsable request target", raw: "GET http://[::1/ HTTP/1.1\r\nHost: a\r\n\r\n" + get2, h: echo,
			refusal: "refused before the handler: error bodies differ"},
		{name: "empty request target", raw: "GET  HTTP/1.1\r\nHost: a\r\n\r\n" + get2, h: echo,
			refusal: "refused before the handler: error bodies differ"},
		{name: "leading CRLF", raw: "\r\n" + get, h: echo,
			refusal: "refused before the handler: error bodies differ"},
		{name: "bare LF line endings", raw: "GET / HTTP/1.1\nHost: a\n\n" + get2, h: echo},
		{name: "Transfer-Encoding gzip, chunked", raw: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n" + get2, h: echo,
			refusal: "refused before the handler: error bodies differ"},
		{name: "Transfer-Encoding identity", raw: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n" + get2, h: echo,
			refusal: "refused before the handler: error bodies differ"},
		{name: "invalid Content-Length", raw: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5x\r\n\r\nhello" + get2, h: echo,
			refusal: "refused before the handler: error bodies differ"},
		{name: "two different Content-Lengths", raw: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!" + get2, h: echo,
			refusal: "refused before the handler: error bodies differ"},
		{name: "Content-Length and Transfer-Encoding", raw: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + get2, h: echo},

		// Handler failures and take-overs.
		{name: "handler panics", raw: get + get2, h: func(w http.ResponseWriter, r *http.Request) { panic("boom") }},
		{name: "handler panics after a short write", raw: get + get2, h: func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "partial")
			panic("boom")
		}},
		{name: "handler panics after 3000 bytes", raw: get + get2, h: func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, body3000)
			panic("boom")
		}, cut: "net/http's reply buffer holds 2048 bytes, the lean server's 4096"},
		{name: "handler panics after a flush", raw: get + get2, h: func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "partial")
			w.(http.Flusher).Flush()
			panic("boom")
		}},
		{name: "handler panics with ErrAbortHandler", raw: get + get2, h: func(w http.ResponseWriter, r *http.Request) { panic(http.ErrAbortHandler) }},
		{name: "handler panics with ErrAbortHandler after a flush", raw: get + get2, h: func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "partial")
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		}},
		{name: "handler hijacks", raw: get + get2, h: func(w http.ResponseWriter, r *http.Request) {
			conn, bw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				panic(err)
			}
			defer conn.Close()
			n := bw.Reader.Buffered() // the pipelined request the server read ahead
			bw.WriteString("HTTP/1.1 200 OK\r\nContent-Length: " + strconv.Itoa(len(strconv.Itoa(n))) + "\r\nConnection: close\r\n\r\n" + strconv.Itoa(n))
			bw.Flush()
		}},
		{name: "write after hijack", raw: get, h: func(w http.ResponseWriter, r *http.Request) {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err != nil {
				panic(err)
			}
			_, werr := w.Write([]byte("x"))
			_, herr := w.Write(nil)
			fmt.Fprintf(conn, "HTTP/1.1 200 OK\r\nX-Write: %v\r\nX-Again: %v\r\nContent-Length: 0\r\n\r\n", werr, herr)
			conn.Close()
		}},
		{name: "write deadline through ResponseController", raw: get + get2, h: func(w http.ResponseWriter, r *http.Request) {
			rc := http.NewResponseController(w)
			err1 := rc.SetWriteDeadline(time.Now().Add(time.Minute))
			err2 := rc.SetReadDeadline(time.Now().Add(time.Minute))
			fmt.Fprint(w, err1, err2)
		}},
		{name: "context after the handler's client is still there", raw: get + get2, h: func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, r.Context().Err(), r.Context().Value(http.ServerContextKey) != nil, r.Context().Value(http.LocalAddrContextKey) != nil)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := exchangeBoth(t, tc.h, tc.configure, tc.raw)
			report := func() string {
				return fmt.Sprintf("request %q\nnet/http:\n%v\nlean:\n%v", truncate(tc.raw, 300), got.net, got.lean)
			}
			switch {
			case tc.differs != "":
				if !slices.Equal(got.net.statuses(), tc.wantNet.statuses) || got.net.Closed != tc.wantNet.closed {
					t.Errorf("net/http: statuses %v closed %v, want %v closed %v (deliberate difference: %s)\n%s",
						got.net.statuses(), got.net.Closed, tc.wantNet.statuses, tc.wantNet.closed, tc.differs, report())
				}
				if !slices.Equal(got.lean.statuses(), tc.wantLn.statuses) || got.lean.Closed != tc.wantLn.closed {
					t.Errorf("lean: statuses %v closed %v, want %v closed %v (deliberate difference: %s)\n%s",
						got.lean.statuses(), got.lean.Closed, tc.wantLn.statuses, tc.wantLn.closed, tc.differs, report())
				}
			case tc.cut != "":
				if !slices.Equal(got.net.statuses(), got.lean.statuses()) || got.net.Closed != got.lean.Closed || !got.net.Closed {
					t.Errorf("statuses or close differ, or the connection stayed open (%s)\n%s", tc.cut, report())
				}
				for i := range min(len(got.net.Replies), len(got.lean.Replies)) {
					a, b := got.net.Replies[i], got.lean.Replies[i]
					if !a.BodyErr || !b.BodyErr {
						t.Errorf("reply %d: a body not cut (%s)\n%s", i, tc.cut, report())
					}
					if !strings.HasPrefix(a.Body, b.Body) && !strings.HasPrefix(b.Body, a.Body) {
						t.Errorf("reply %d: neither body is a prefix of the other (%s)\n%s", i, tc.cut, report())
					}
				}
			case tc.refusal != "":
				if !slices.Equal(got.net.statuses(), got.lean.statuses()) || got.net.Closed != got.lean.Closed {
					t.Errorf("statuses or close differ (only these compared: %s)\n%s", tc.refusal, report())
				}
				if len(got.net.Replies) == 0 || got.net.Replies[len(got.net.Replies)-1].Status < 400 || !got.net.Closed {
					t.Errorf("not a refusal (a 4xx or 5xx, then the connection closed)\n%s", report())
				}
			default:
				if len(got.net.Replies) != len(got.lean.Replies) {
					t.Errorf("%d replies from net/http, %d from lean\n%s", len(got.net.Replies), len(got.lean.Replies), report())
				}
				for i := range min(len(got.net.Replies), len(got.lean.Replies)) {
					if d := diffReply(got.net.Replies[i], got.lean.Replies[i]); d != "" {
						t.Errorf("reply %d differs: %s\n%s", i, d, report())
					}
				}
				if got.net.Closed != got.lean.Closed {
					t.Errorf("connection closed: net/http %v, lean %v\n%s", got.net.Closed, got.lean.Closed, report())
				}
			}
		})
	}
}

// diffReply says how two replies differ, or "".
func diffReply(a, b rawReply) string {
	var d []string
	if a.Proto != b.Proto {
		d = append(d, fmt.Sprintf("proto %s vs %s", a.Proto, b.Proto))
	}
	if a.Status != b.Status {
		d = append(d, fmt.Sprintf("status %d vs %d", a.Status, b.Status))
	}
	if !headerEqual(a.Header, b.Header) {
		d = append(d, fmt.Sprintf("header %v vs %v", a.Header, b.Header))
	}
	if a.Body != b.Body {
		d = append(d, fmt.Sprintf("body %q vs %q", truncate(a.Body, 100), truncate(b.Body, 100)))
	}
	if a.BodyErr != b.BodyErr {
		d = append(d, fmt.Sprintf("body cut short %v vs %v", a.BodyErr, b.BodyErr))
	}
	if !headerEqual(a.Trailer, b.Trailer) {
		d = append(d, fmt.Sprintf("trailer %v vs %v", a.Trailer, b.Trailer))
	}
	if a.Chunked != b.Chunked {
		d = append(d, fmt.Sprintf("chunked %v vs %v", a.Chunked, b.Chunked))
	}
	if a.ContentLength != b.ContentLength {
		d = append(d, fmt.Sprintf("content length %d vs %d", a.ContentLength, b.ContentLength))
	}
	return strings.Join(d, "; ")
}

// headerEqual compares two headers as sets of names, each with its values
// in order; a nil and an empty header are equal.
func headerEqual(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, va := range a {
		vb, ok := b[k]
		if !ok || !slices.Equal(va, vb) {
			return false
		}
	}
	return true
}

func TestLeanConcurrentKeepAlive(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Path", r.URL.Path)
		io.Copy(w, r.Body)
	})
	addr := serveTB(t, &gateway.Server{Handler: h, Logger: quietLogger(), LeanHTTP1: true})
	tr := &http.Transport{MaxIdleConnsPerHost: 20}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}

	const goroutines, requests = 20, 50
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Go(func() {
			for i := range requests {
				// Every third body is long enough to be chunked back.
				body := fmt.Sprintf("g%d-r%d-", g, i)
				if i%3 == 0 {
					body += strings.Repeat("z", 3000)
				}
				path := fmt.Sprintf("/g%d/r%d", g, i)
				resp, err := client.Post("http://"+addr+path, "text/plain", strings.NewReader(body))
				if err != nil {
					errs <- err
					return
				}
				got, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				switch {
				case err != nil:
					errs <- fmt.Errorf("%s: read: %w", path, err)
					return
				case resp.StatusCode != http.StatusOK || string(got) != body || resp.Header.Get("X-Path") != path:
					errs <- fmt.Errorf("%s: %d %q (X-Path %q), want 200 %q", path, resp.StatusCode, truncate(string(got), 40), resp.Header.Get("X-Path"), truncate(body, 40))
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// readUntilClosed reads from conn until the server closes it, and reports
// whether it did within limit and what it read.
func readUntilClosed(conn net.Conn, limit time.Duration) (closed bool, read []byte) {
	conn.SetReadDeadline(time.Now().Add(limit))
	var buf bytes.Buffer
	_, err := io.Copy(&buf, conn)
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout()), buf.Bytes()
}

func TestLeanShutdownClosesIdleConnection(t *testing.T) {
	addr, shutdown := startServer(t, &gateway.Server{Handler: writeString("hi"), LeanHTTP1: true, Logger: quietLogger()})
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, get)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()

	start := time.Now()
	shutErr := make(chan error, 1)
	go func() { shutErr <- shutdown() }()
	// The default IdleTimeout is two minutes: only the shutdown closes it.
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := br.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("idle connection after shutdown: read %d bytes, %v; want EOF", n, err)
	}
	if err := <-shutErr; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("shutdown with an idle connection took %v", d)
	}
}

func TestLeanShutdownFinishesRequestInFlight(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(started)
			<-release
		}
		io.WriteString(w, "finished "+r.URL.Path)
	})
	addr, shutdown := startServer(t, &gateway.Server{Handler: h, LeanHTTP1: true, Logger: quietLogger()})
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// A pipelined second request must not be served once the shutdown began.
	io.WriteString(conn, "GET /slow HTTP/1.1\r\nHost: a\r\n\r\nGET /next HTTP/1.1\r\nHost: a\r\n\r\n")
	<-started
	shutErr := make(chan error, 1)
	go func() { shutErr <- shutdown() }()
	// Wait for the listener to close, so the shutdown has begun.
	for deadline := time.Now().Add(5 * time.Second); ; {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("server still accepts connections during shutdown")
		}
		time.Sleep(5 * time.Millisecond) // polling for the listener to close
	}
	select {
	case err := <-shutErr:
		t.Fatalf("shutdown returned (%v) before the request in flight finished", err)
	default:
	}
	close(release)

	br := bufio.NewReader(conn)
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(b) != "finished /slow" {
		t.Fatalf("request in flight: %q, %v", b, err)
	}
	if !resp.Close {
		t.Errorf("reply during shutdown has no Connection: close (header %v)", resp.Header)
	}
	if closed, rest := readUntilClosed(conn, 5*time.Second); !closed || len(rest) > 0 {
		t.Errorf("after the reply: closed %v, read %q; want the connection closed and nothing more", closed, rest)
	}
	if err := <-shutErr; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}

func TestLeanShutdownTimeoutCutsStuckHandler(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	defer close(release)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release // ignores its context: only closing the connection ends the exchange
	})
	const timeout = 200 * time.Millisecond
	addr, shutdown := startServer(t, &gateway.Server{Handler: h, LeanHTTP1: true, ShutdownTimeout: timeout, Logger: quietLogger()})
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, get)
	<-started
	start := time.Now()
	err = shutdown()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("shutdown: %v, want a DeadlineExceeded", err)
	}
	if d := time.Since(start); d < timeout || d > 5*time.Second {
		t.Errorf("shutdown took %v, want at least %v and well under 5s", d, timeout)
	}
	if closed, got := readUntilClosed(conn, 5*time.Second); !closed || len(got) > 0 {
		t.Errorf("stuck request's connection: closed %v, read %q; want closed without a reply", closed, got)
	}
}

func TestLeanTimeouts(t *testing.T) {
	needNetHTTP(t) // each case runs on both servers
	const timeout = 200 * time.Millisecond
	cases := []struct {
		name   string
		config func(*gateway.Server)
		// send is written first; then the test measures the time until
		// the server closes the connection.
		send string
		// replies is how many replies come before the close.
		replies int
		// refused: the close may come with a 400 reply, as net/http's does.
		refused bool
	}{
		{name: "ReadHeaderTimeout on half a head", config: func(s *gateway.Server) { s.ReadHeaderTimeout = timeout },
			send: "GET / HTTP/1.1\r\nHost: a\r\nX-Half", refused: true},
		{name: "ReadHeaderTimeout on nothing sent", config: func(s *gateway.Server) { s.ReadHeaderTimeout = timeout }},
		{name: "IdleTimeout after a reply", config: func(s *gateway.Server) { s.IdleTimeout = timeout },
			send: get, replies: 1},
		{name: "IdleTimeout between pipelined requests", config: func(s *gateway.Server) { s.IdleTimeout = timeout },
			send: get + get2, replies: 2},
	}
	for _, tc := range cases {
		// net/http's server runs the same cases, to show what the lean one
		// must match.
		for _, lean := range []bool{false, true} {
			t.Run(tc.name+"/"+engineName(lean), func(t *testing.T) {
				t.Parallel()
				srv := &gateway.Server{Handler: writeString("hi"), LeanHTTP1: lean, Logger: quietLogger()}
				tc.config(srv)
				addr := serveTB(t, srv)
				start := time.Now()
				conn, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				io.WriteString(conn, tc.send)
				br := bufio.NewReader(conn)
				conn.SetReadDeadline(time.Now().Add(5 * time.Second))
				for i := range tc.replies {
					resp, err := http.ReadResponse(br, nil)
					if err != nil {
						t.Fatalf("reply %d: %v", i, err)
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				min := timeout
				if tc.replies > 0 {
					// The idle time runs from the last reply, which the server
					// wrote a moment before the client read it.
					start, min = time.Now(), timeout/2
				}
				rest, err := io.ReadAll(br)
				d := time.Since(start)
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					t.Fatalf("read %q, %v; want the connection closed within 5s", rest, err)
				}
				if len(rest) > 0 {
					// net/http answers a head cut by the timeout with 400.
					resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(rest)), nil)
					if !tc.refused || err != nil || resp.StatusCode != http.StatusBadRequest {
						t.Fatalf("read %q before the close; want %s", rest, map[bool]string{false: "nothing", true: "nothing or a 400 reply"}[tc.refused])
					}
				}
				if d < min {
					t.Errorf("closed after %v, before the timeout of %v", d, timeout)
				}
			})
		}
	}
}

func engineName(lean bool) string {
	if lean {
		return "lean"
	}
	return "net-http"
}
