package h1

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// These tests follow the read and write buffers a Transport lends its
// connections: an idle connection holds none, and none is given back
// twice or used after it was given back.

// bufTracker follows a Transport's buffers through its bufHook. It fails
// the test when a buffer is given back while not lent (given back twice),
// lent while lent (it was in the pool and in use at once), or has the
// size of another Transport's buffers.
type bufTracker struct {
	t  testing.TB
	tr *Transport

	mu  sync.Mutex
	out map[any]bool
}

// newTracked returns a Transport whose buffers are tracked, and whose idle
// connections close when the test ends.
func newTracked(t testing.TB, cfg Config) (*Transport, *bufTracker) {
	t.Helper()
	tr := New(cfg)
	k := &bufTracker{t: t, tr: tr, out: make(map[any]bool)}
	tr.bufHook = k.hook
	t.Cleanup(tr.CloseIdleConnections)
	return tr, k
}

func (k *bufTracker) hook(buf any, taken bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if !taken {
		if !k.out[buf] {
			k.t.Errorf("%T %p given back twice", buf, buf)
		}
		delete(k.out, buf)
		return
	}
	if k.out[buf] {
		k.t.Errorf("%T %p lent while already lent", buf, buf)
	}
	k.out[buf] = true
	switch b := buf.(type) {
	case *bufio.Reader:
		if b.Size() != k.tr.rbuf {
			k.t.Errorf("read buffer of %d bytes, want %d", b.Size(), k.tr.rbuf)
		}
	case *bufio.Writer:
		if b.Size() != k.tr.wbuf {
			k.t.Errorf("write buffer of %d bytes, want %d", b.Size(), k.tr.wbuf)
		}
	}
}

// lent returns how many read and write buffers are out of the pools.
func (k *bufTracker) lent() (readers, writers int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for b := range k.out {
		if _, ok := b.(*bufio.Reader); ok {
			readers++
		} else {
			writers++
		}
	}
	return readers, writers
}

// checkIdle fails unless the Transport has want idle connections, none
// holding a buffer, and no buffer is lent.
func (k *bufTracker) checkIdle(want int) {
	k.t.Helper()
	tr := k.tr
	tr.mu.Lock()
	n := 0
	for _, list := range tr.idle {
		for _, c := range list {
			n++
			if c.br != nil || c.p.br != nil {
				k.t.Errorf("an idle connection holds a read buffer")
			}
		}
	}
	tr.mu.Unlock()
	if n != want {
		k.t.Errorf("%d idle connections, want %d", n, want)
	}
	if r, w := k.lent(); r != 0 || w != 0 {
		k.t.Errorf("%d read and %d write buffers lent with no exchange running, want none", r, w)
	}
}

// scriptServer accepts connections and hands each to serve, counting
// them; it closes the connection when serve returns.
func scriptServer(t testing.TB, serve func(c net.Conn, br *bufio.Reader)) (url string, accepted *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted = new(atomic.Int32)
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			wg.Go(func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				serve(c, bufio.NewReader(c))
			})
		}
	})
	return "http://" + ln.Addr().String(), accepted
}

// TestBuffersAcrossReplies sends requests one after another on one
// connection, with every kind of reply framing, and checks after each that
// the connection went idle without its buffers and comes back with one.
func TestBuffersAcrossReplies(t *testing.T) {
	// The replies by request path; a close-delimited one ends the
	// connection, so it comes last.
	steps := []struct {
		name, method, reqBody string
		reply                 string
		status                int
		body                  string
		trailer               string // the X-T trailer
		closes                bool
	}{
		{name: "content-length", method: "GET", reply: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", status: 200, body: "hello"},
		{name: "chunked", method: "GET", reply: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n" +
			"5\r\nhello\r\n6\r\n world\r\n0\r\nX-T: v\r\n\r\n", status: 200, body: "hello world", trailer: "v"},
		{name: "head", method: "HEAD", reply: "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", status: 200},
		{name: "post", method: "POST", reqBody: "request body", reply: "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok", status: 201, body: "ok"},
		{name: "no-content", method: "DELETE", reply: "HTTP/1.1 204 No Content\r\n\r\n", status: 204},
		{name: "interim", method: "GET", reply: "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" +
			"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nfin", status: 200, body: "fin"},
		{name: "empty-chunked", method: "GET", reply: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", status: 200},
		{name: "close-delimited", method: "GET", reply: "HTTP/1.1 200 OK\r\n\r\nuntil the end", status: 200, body: "until the end", closes: true},
		{name: "after-close", method: "GET", reply: "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext", status: 200, body: "next"},
	}
	modes := []struct {
		name   string
		noPeek bool // as on platforms without a liveness check
	}{{"peek", false}, {"no liveness check", true}}
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			got := make(chan string, len(steps))
			url, accepted := scriptServer(t, func(c net.Conn, br *bufio.Reader) {
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					body, _ := io.ReadAll(req.Body)
					got <- req.Method + " " + req.URL.Path + " " + string(body)
					for _, s := range steps {
						if "/"+s.name == req.URL.Path {
							io.WriteString(c, s.reply)
							if s.closes {
								return
							}
						}
					}
				}
			})
			tr, k := newTracked(t, Config{})
			conns := int32(1)
			for _, s := range steps {
				if mode.noPeek {
					tr.mu.Lock()
					for _, list := range tr.idle {
						for _, c := range list {
							c.rc, c.peekFn = nil, nil
						}
					}
					tr.mu.Unlock()
				}
				var body io.Reader
				if s.reqBody != "" {
					body = strings.NewReader(s.reqBody)
				}
				req, _ := http.NewRequest(s.method, url+"/"+s.name, body)
				resp, err := tr.RoundTrip(req)
				if err != nil {
					t.Fatalf("%s: %v", s.name, err)
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != s.status || string(b) != s.body || resp.Trailer.Get("X-T") != s.trailer {
					t.Fatalf("%s: status %d, body %q, trailer %q, err %v; want %d, %q, %q",
						s.name, resp.StatusCode, b, resp.Trailer.Get("X-T"), err, s.status, s.body, s.trailer)
				}
				if want := s.method + " /" + s.name + " " + s.reqBody; <-got != want {
					t.Fatalf("%s: the upstream did not read %q", s.name, want)
				}
				if n := accepted.Load(); n != conns {
					t.Fatalf("%s: %d connections, want %d", s.name, n, conns)
				}
				idle := 1
				if s.closes {
					idle, conns = 0, conns+1
				}
				k.checkIdle(idle)
			}
		})
	}
}

// TestLargeRequestBody: a body many times the write buffer goes out whole,
// with a length or chunked, and the buffer is back in the pool after.
func TestLargeRequestBody(t *testing.T) {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		if err != nil {
			w.WriteHeader(400)
			return
		}
		fmt.Fprintf(w, "%d %x", n, h.Sum(nil))
	}))
	t.Cleanup(s.Close)
	big := bytes.Repeat([]byte("0123456789abcdefghijklmnopqrstuvwxyz"), 10000) // 360,000 bytes
	sum := sha256.Sum256(big)
	want := strconv.Itoa(len(big)) + " " + hex.EncodeToString(sum[:])
	tests := []struct {
		name    string
		wbuf    int
		chunked bool
	}{
		{"smallest buffer, length", 512, false},
		{"smallest buffer, chunked", 512, true},
		{"default buffer, length", 0, false},
		{"default buffer, chunked", 0, true},
		{"buffer larger than the body, chunked", 1 << 20, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr, k := newTracked(t, Config{WriteBufferSize: tc.wbuf})
			for range 3 { // on a reused connection too
				var body io.Reader = bytes.NewReader(big)
				if tc.chunked {
					body = struct{ io.Reader }{body}
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				req, _ := http.NewRequestWithContext(ctx, "PUT", s.URL, body)
				resp, err := tr.RoundTrip(req)
				if err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || string(got) != want {
					t.Fatalf("the upstream read %q (%v), want %q", got, err, want)
				}
				k.checkIdle(1)
			}
		})
	}
}

// TestConcurrentBuffers runs many exchanges at once, with replies of every
// framing, and checks every reply: a buffer lent to two connections at once
// would mix them up. Run it with -race.
func TestConcurrentBuffers(t *testing.T) {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		reply := strings.Repeat(r.URL.Path+string(body)+";", len(body)%7*200+1)
		switch r.URL.Query().Get("kind") {
		case "chunked":
			io.WriteString(w, reply[:len(reply)/2])
			w.(http.Flusher).Flush()
			io.WriteString(w, reply[len(reply)/2:])
		case "close":
			w.Header().Set("Connection", "close")
			io.WriteString(w, reply)
		default:
			w.Header().Set("Content-Length", strconv.Itoa(len(reply)))
			io.WriteString(w, reply)
		}
	}))
	t.Cleanup(s.Close)
	tests := []struct {
		name string
		cfg  Config
	}{
		{"defaults", Config{}},
		{"small buffers", Config{ReadBufferSize: 512, WriteBufferSize: 512}},
		{"few idle connections", Config{MaxIdlePerHost: 3}},
	}
	kinds := []string{"length", "chunked", "length", "close"}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr, k := newTracked(t, tc.cfg)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			var wg sync.WaitGroup
			for g := range 50 {
				wg.Go(func() {
					for i := range 20 {
						path := fmt.Sprintf("/g%d/r%d", g, i)
						body := strings.Repeat("b", (g*20+i)%50)
						want := strings.Repeat(path+body+";", len(body)%7*200+1)
						req, _ := http.NewRequestWithContext(ctx, "POST", s.URL+path+"?kind="+kinds[(g+i)%len(kinds)], strings.NewReader(body))
						resp, err := tr.RoundTrip(req)
						if err != nil {
							t.Error(err)
							return
						}
						got, err := io.ReadAll(resp.Body)
						resp.Body.Close()
						if err != nil || string(got) != want {
							t.Errorf("%s: got %d bytes (%v), want %d", path, len(got), err, len(want))
							return
						}
					}
				})
			}
			wg.Wait()
			if r, w := k.lent(); r != 0 || w != 0 {
				t.Errorf("%d read and %d write buffers still lent", r, w)
			}
		})
	}
}

// TestBufferSizesPerTransport: Transports with different buffer sizes,
// used at once, each lend only buffers of their own size (the tracker
// checks the sizes).
func TestBufferSizesPerTransport(t *testing.T) {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(w, r.Body)
	}))
	t.Cleanup(s.Close)
	var wg sync.WaitGroup
	for _, size := range []int{512, 1000, 8 << 10, 64 << 10} {
		tr, k := newTracked(t, Config{ReadBufferSize: size, WriteBufferSize: 2 * size})
		for range 4 {
			wg.Go(func() {
				for range 25 {
					req, _ := http.NewRequest("POST", s.URL, strings.NewReader("ping"))
					resp, err := tr.RoundTrip(req)
					if err != nil {
						t.Error(err)
						return
					}
					got, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if string(got) != "ping" {
						t.Errorf("got %q", got)
					}
				}
			})
		}
		t.Cleanup(func() {
			if r, w := k.lent(); r != 0 || w != 0 {
				t.Errorf("%d read and %d write buffers still lent", r, w)
			}
		})
	}
	wg.Wait()
}

// TestBuffersOnFailure: exchanges that end with the connection closed give
// the write buffer back, and the read buffer too unless a body Read may
// still hold it; none is given back twice, and the next exchange works.
func TestBuffersOnFailure(t *testing.T) {
	url, _ := scriptServer(t, func(c net.Conn, br *bufio.Reader) {
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			switch req.URL.Path {
			case "/hang-up":
				return
			case "/malformed":
				io.WriteString(c, "HTTP/1.1 2000 Nope\r\n\r\n")
				return
			case "/trailing-bytes":
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n")
				continue
			case "/early":
				io.WriteString(c, "HTTP/1.1 413 Too Large\r\nContent-Length: 3\r\nConnection: close\r\n\r\nbig")
				c.(*net.TCPConn).CloseWrite()
				io.Copy(io.Discard, io.LimitReader(br, 1<<10)) // then reset by the close
				return
			case "/slow":
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\npart")
				br.ReadByte() // until the client gives up
				return
			}
			io.Copy(io.Discard, req.Body)
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	tests := []struct {
		name     string
		path     string
		body     func() io.Reader
		cancel   bool // cancel the context after the reply's header
		closeNow bool // close the body before its end
		readers  int  // read buffers left to the garbage collector
	}{
		{name: "upstream hangs up", path: "/hang-up"},
		{name: "malformed reply", path: "/malformed"},
		{name: "bytes after the reply", path: "/trailing-bytes"},
		{name: "request body fails", path: "/", body: func() io.Reader { return io.MultiReader(strings.NewReader("x"), errReaderFail{}) }},
		{name: "early reply", path: "/early", body: func() io.Reader { return bytes.NewReader(make([]byte, 8<<20)) }},
		{name: "body closed early", path: "/slow", closeNow: true, readers: 1},
		{name: "context cancelled while reading", path: "/slow", cancel: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr, k := newTracked(t, Config{})
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			var body io.Reader
			if tc.body != nil {
				body = tc.body()
			}
			req, _ := http.NewRequestWithContext(ctx, "POST", url+tc.path, body)
			if resp, err := tr.RoundTrip(req); err == nil {
				if tc.cancel {
					cancel()
				}
				if !tc.closeNow {
					io.ReadAll(resp.Body)
				}
				resp.Body.Close()
			}
			if r, w := k.lent(); r != tc.readers || w != 0 {
				t.Errorf("%d read and %d write buffers lent, want %d and 0", r, w, tc.readers)
			}
			req, _ = http.NewRequest("GET", url+"/", nil)
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatalf("the next exchange: %v", err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(got) != "ok" {
				t.Fatalf("the next exchange read %q", got)
			}
		})
	}
}

type errReaderFail struct{}

func (errReaderFail) Read([]byte) (int, error) { return 0, errors.New("the client went away") }

// TestCloseWhileReading: a body closed by another goroutine while a Read
// waits on the connection does not give the read buffer back under that
// Read: it is left to the garbage collector. Run it with -race.
func TestCloseWhileReading(t *testing.T) {
	url, _ := scriptServer(t, func(c net.Conn, br *bufio.Reader) {
		for {
			if _, err := http.ReadRequest(br); err != nil {
				return
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n")
		}
	})
	tr, k := newTracked(t, Config{})
	const n = 20
	for range n {
		req, _ := http.NewRequest("GET", url, nil)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		reading := make(chan struct{})
		done := make(chan error, 1)
		go func() {
			close(reading)
			_, err := io.ReadAll(resp.Body) // waits for a chunk that never comes
			done <- err
		}()
		<-reading
		resp.Body.Close()
		if err := <-done; err == nil {
			t.Fatal("a body closed before its end read to the end")
		}
	}
	if r, w := k.lent(); r != n || w != 0 {
		t.Errorf("%d read and %d write buffers lent, want %d (one per closed body) and 0", r, w, n)
	}
}
