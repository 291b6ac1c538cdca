package gateway_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatekit/gatekit/gateway"
)

// These tests hold the lean HTTP/1.x loop to what a review of it found.

// A request body read after its handler returned (a transport still
// sending it upstream, a goroutine the handler left) must fail: the
// connection's reader has moved on to the next request, or to another
// connection through its pool, and would hand over another client's bytes.
func TestLeanStaleBodyRead(t *testing.T) {
	type result struct {
		n   int
		err error
	}
	late := make(chan result, 1)
	readNow := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/upload" {
			body := r.Body
			go func() {
				<-readNow
				buf := make([]byte, 64<<10)
				n, err := body.Read(buf)
				late <- result{n, err}
			}()
			w.WriteHeader(http.StatusRequestEntityTooLarge)
			return
		}
		io.WriteString(w, "ok "+r.URL.Path)
	})
	addr, _ := startServer(t, &gateway.Server{Handler: h, LeanHTTP1: true, Logger: quietLogger()})

	// Client 1 announces far more than it sends, then waits: the server
	// answers 413 without reading, and closes the connection.
	c1, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	io.WriteString(c1, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n"+strings.Repeat("a", 300<<10))
	resp, err := http.ReadResponse(bufio.NewReader(c1), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d", resp.StatusCode)
	}

	// Client 2 pipelines requests that a reader taken from the pool would
	// hold.
	c2, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	io.WriteString(c2, "GET /first HTTP/1.1\r\nHost: x\r\n\r\nGET /second HTTP/1.1\r\nHost: x\r\nCookie: session=secret\r\n\r\n")
	br := bufio.NewReader(c2)
	resp, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()

	close(readNow)
	res := <-late
	if res.n != 0 || res.err == nil || res.err == io.EOF {
		t.Fatalf("a body read after the handler returned got %d bytes, %v; want none and an error", res.n, res.err)
	}
	c2.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("client 2's second request: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "ok /second" {
		t.Fatalf("client 2's second reply: %q", b)
	}
}

// What a handler does to the header after WriteHeader is not sent, as with
// net/http: a Content-Length set then must not sit beside the one the
// server computes, nor beside chunked framing.
func TestLeanHeaderAfterWriteHeader(t *testing.T) {
	for _, size := range []int{10, 3000} {
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusOK)
			w.Header().Set("Content-Length", "5")
			w.Header().Set("X-Late", "1")
			io.WriteString(w, strings.Repeat("b", size))
		})
		addr, _ := startServer(t, &gateway.Server{Handler: h, LeanHTTP1: true, Logger: quietLogger()})
		raw := rawRoundTrip(t, addr, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		head, body, _ := strings.Cut(raw, "\r\n\r\n")
		if strings.Count(head, "Content-Length") > 1 || strings.Contains(head, "Content-Length: 5") || strings.Contains(head, "X-Late") {
			t.Errorf("%d bytes: head sent the header as changed after WriteHeader:\n%s", size, head)
		}
		resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(raw)), nil)
		if err != nil {
			t.Fatalf("%d bytes: %v\n%s", size, err, head)
		}
		got, err := io.ReadAll(resp.Body)
		if err != nil || len(got) != size {
			t.Errorf("%d bytes: read %d, %v (body %d bytes on the wire)", size, len(got), err, len(body))
		}
	}
}

// A trailer name a handler set cannot split the trailer section, and a
// field that must not be a trailer is not sent as one.
func TestLeanTrailerNames(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "Host, X-Sum")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		io.WriteString(w, "body")
		w.Header().Set("Host", "elsewhere")
		w.Header().Set("X-Sum", "42")
		w.Header().Set(http.TrailerPrefix+"X-T\r\nInjected", "v")
	})
	addr, _ := startServer(t, &gateway.Server{Handler: h, LeanHTTP1: true, Logger: quietLogger()})
	raw := rawRoundTrip(t, addr, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(raw)), nil)
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(resp.Body)
	if strings.Contains(raw, "Injected") {
		t.Errorf("a trailer name split the trailers:\n%s", raw)
	}
	if resp.Trailer.Get("X-Sum") != "42" || resp.Trailer.Get("Host") != "" {
		t.Errorf("trailers %v, want X-Sum only", resp.Trailer)
	}
}

// A reply whose connection closes anyway is not held back to read the
// client's upload first.
func TestLeanReplyNotHeldForBody(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusUnauthorized) })
	addr, _ := startServer(t, &gateway.Server{Handler: h, LeanHTTP1: true, ReadTimeout: 30 * time.Second, Logger: quietLogger()})
	for _, req := range []string{
		"POST /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 300000\r\n\r\nabc",
		"POST /x HTTP/1.0\r\nContent-Length: 300000\r\n\r\nabc",
	} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, req)
		// Far below ReadTimeout: the reply must not wait for the body.
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		c.Close()
		if err != nil {
			t.Fatalf("%q: %v", req[:20], err)
		}
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%q: status %d", req[:20], resp.StatusCode)
		}
	}
}

// With no ReadHeaderTimeout, ReadTimeout bounds the wait for a head, as
// with net/http.
func TestLeanHeaderTimeoutFallsBack(t *testing.T) {
	addr, _ := startServer(t, &gateway.Server{Handler: http.NotFoundHandler(), LeanHTTP1: true,
		ReadHeaderTimeout: -1, ReadTimeout: 300 * time.Millisecond, Logger: quietLogger()})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET / HTTP/1.1\r\n")
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = c.Read(make([]byte, 1))
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the server kept a silent connection open")
	}
}

// rawRoundTrip sends raw on a new connection and returns all the server
// wrote until it closed the connection.
func rawRoundTrip(t *testing.T, addr, raw string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, raw)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("reading the reply: %v", err)
	}
	return string(b)
}

// The findings of a second review.

// A header map kept from before WriteHeader and changed after it cannot
// make the head announce a length other than the one the reply keeps to.
func TestLeanHeldHeaderMap(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hdr := w.Header()
		hdr.Set("Content-Length", "5")
		w.WriteHeader(http.StatusOK)
		hdr.Set("Content-Length", "50")
		io.WriteString(w, "hello")
	})
	addr, _ := startServer(t, &gateway.Server{Handler: h, LeanHTTP1: true, Logger: quietLogger()})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	for _, path := range []string{"/a", "/b"} {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || string(b) != "hello" || resp.ContentLength != 5 {
			t.Fatalf("%s: Content-Length %d, body %q, %v", path, resp.ContentLength, b, err)
		}
	}
}

// A reply to a request whose unread body is 256 KiB or more goes at once,
// and the connection closes, rather than after reading that much (or
// after ReadTimeout, for a client that waits for the reply first).
func TestLeanLargeUnreadBody(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusUnauthorized) })
	addr, _ := startServer(t, &gateway.Server{Handler: h, LeanHTTP1: true, ReadTimeout: -1, Logger: quietLogger()})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n"+strings.Repeat("a", 1000))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no reply while the client waits: %v", err)
	}
	if resp.StatusCode != http.StatusUnauthorized || !resp.Close {
		t.Fatalf("status %d, close %v; want 401 and Connection: close", resp.StatusCode, resp.Close)
	}
}

// A write deadline a handler set does not outlive its request.
func TestLeanWriteDeadlineIsPerRequest(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/a" {
			http.NewResponseController(w).SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		}
		io.WriteString(w, "ok "+r.URL.Path)
	})
	addr, _ := startServer(t, &gateway.Server{Handler: h, LeanHTTP1: true, Logger: quietLogger()})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	for _, path := range []string{"/a", "/b"} {
		if path == "/b" {
			time.Sleep(300 * time.Millisecond) // past /a's deadline
		}
		io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "ok "+path {
			t.Fatalf("%s: %q", path, b)
		}
	}
}

// An automatic 100 Continue, written by a body read on another goroutine,
// does not race the end of a reply cut by a panic, nor a Hijack (run with
// -race).
func TestLeanContinueRaces(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    http.HandlerFunc
	}{
		{"panic", func(w http.ResponseWriter, r *http.Request) {
			go io.ReadAll(r.Body)
			time.Sleep(5 * time.Millisecond)
			panic(http.ErrAbortHandler)
		}},
		{"hijack", func(w http.ResponseWriter, r *http.Request) {
			go io.ReadAll(r.Body)
			conn, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			brw.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
			brw.Flush()
			conn.Close()
		}},
		{"103", func(w http.ResponseWriter, r *http.Request) {
			go io.ReadAll(r.Body)
			w.Header().Set("Link", "</a.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			io.WriteString(w, "ok")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, _ := startServer(t, &gateway.Server{Handler: tc.h, LeanHTTP1: true, Logger: quietLogger()})
			for range 20 {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
				time.Sleep(time.Millisecond)
				io.WriteString(c, "hello")
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				io.Copy(io.Discard, c)
				c.Close()
			}
		})
	}
}

// As net/http, a request that follows another is awaited until 4 bytes
// have come: a stray byte or two after a request is not answered.
func TestLeanStrayBytesAfterRequest(t *testing.T) {
	addr, _ := startServer(t, &gateway.Server{Handler: http.NotFoundHandler(), LeanHTTP1: true,
		IdleTimeout: 300 * time.Millisecond, Logger: quietLogger()})
	raw := rawRoundTrip(t, addr, "GET / HTTP/1.1\r\nHost: x\r\n\r\n0\n")
	if n := strings.Count(raw, "HTTP/1.1 "); n != 1 {
		t.Fatalf("%d replies, want 1 (the stray bytes unanswered):\n%s", n, raw)
	}
}

// The Content-Length sent is the handler's value when that is the length
// the reply keeps to, and the length itself otherwise: one field, always.
func TestLeanContentLengthValue(t *testing.T) {
	for _, tc := range []struct{ set, want string }{
		{"5", "5"},
		{"+5", "5"},
		{"05", "5"},
	} {
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", tc.set)
			io.WriteString(w, "hello")
		})
		addr, _ := startServer(t, &gateway.Server{Handler: h, LeanHTTP1: true, Logger: quietLogger()})
		raw := rawRoundTrip(t, addr, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		head, _, _ := strings.Cut(raw, "\r\n\r\n")
		if strings.Count(head, "Content-Length:") != 1 || !strings.Contains(head, "\r\nContent-Length: "+tc.want+"\r\n") {
			t.Errorf("handler's %q: head\n%s", tc.set, head)
		}
	}
}
