package gateway_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatekit/gatekit/gateway"
)

// seenPaths is a handler that records each request it serves, reads the
// body, and answers 200 with the body's length; a body that cannot be read
// gets 400.
type seenPaths struct {
	mu    sync.Mutex
	paths []string
}

func (s *seenPaths) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.paths = append(s.paths, r.Method+" "+r.RequestURI)
	s.mu.Unlock()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	w.Header().Set("X-Body", string(b))
	w.WriteHeader(http.StatusOK)
}

func (s *seenPaths) get() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.paths...)
}

// exchange writes raw to a new connection and reads every reply until the
// server closes it (or a second passes without one). It returns the
// replies' status codes and whether the server closed the connection.
func exchange(t *testing.T, conn net.Conn, raw string) (statuses []int, closed bool) {
	t.Helper()
	defer conn.Close()
	if _, err := io.WriteString(conn, raw); raw != "" && err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	for {
		conn.SetReadDeadline(time.Now().Add(time.Second))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return statuses, false
			}
			return statuses, true // EOF or reset: closed
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		statuses = append(statuses, resp.StatusCode)
	}
}

const smuggled = "GET /admin HTTP/1.1\r\nHost: x\r\n\r\n"

func TestServerRefusesAmbiguousFraming(t *testing.T) {
	cases := []struct {
		name string
		raw  string
		// want is the status of each reply, in order; closed whether the
		// server must close the connection after them; served the requests
		// the handler must have seen.
		want   []int
		closed bool
		served []string
	}{
		{
			name: "content-length and chunked: the smuggled request is not served",
			raw: "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n" +
				"0\r\n\r\n" + smuggled,
			want: []int{400}, closed: true,
		},
		{
			name: "chunked then content-length, any case",
			raw: "POST /a HTTP/1.1\r\nHost: x\r\ntransfer-encoding: chunked\r\nCONTENT-LENGTH: 40\r\n\r\n" +
				"0\r\n\r\n" + smuggled,
			want: []int{400}, closed: true,
		},
		{
			name: "HTTP/1.0 with transfer-encoding",
			raw: "POST /a HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n" +
				"0\r\n\r\n" + smuggled,
			want: []int{400}, closed: true,
		},
		{
			name: "HTTP/1.0 with transfer-encoding and no content-length",
			raw:  "POST /a HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
			want: []int{400}, closed: true,
		},
		{
			name: "a folded header line",
			raw:  "GET /a HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n 2\r\n\r\n" + smuggled,
			want: []int{400}, closed: true,
		},
		{
			name:   "a good request, then content-length and chunked, pipelined",
			raw:    "GET /ok HTTP/1.1\r\nHost: x\r\n\r\n" + "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled,
			want:   []int{200, 400},
			closed: true,
			served: []string{"GET /ok"},
		},
		{
			name:   "chunk size that is not hex: body refused, nothing after it served",
			raw:    "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n" + smuggled,
			want:   []int{400},
			closed: true,
			served: []string{"POST /a"},
		},
		{
			name:   "chunk data longer than its size",
			raw:    "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n" + smuggled,
			want:   []int{400},
			closed: true,
			served: []string{"POST /a"},
		},
		{
			name:   "chunk-size line ended by a bare LF",
			raw:    "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n" + smuggled,
			want:   []int{400},
			closed: true,
			served: []string{"POST /a"},
		},
		{
			name:   "a folded trailer",
			raw:    "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-T: 1\r\n 2\r\n\r\n" + smuggled,
			want:   []int{200, 400},
			closed: true,
			served: []string{"POST /a"},
		},
		{
			name: "CR and LF after a POST, skipped as net/http does, then content-length and chunked",
			raw: "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n\r\n" +
				"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled,
			want: []int{200, 400}, closed: true,
			served: []string{"POST /a"},
		},
		{
			name: "a header line near net/http's limit, pipelined, then content-length and chunked",
			raw: "GET /a HTTP/1.1\r\nHost: x\r\n\r\n" +
				"GET /long HTTP/1.1\r\nHost: x\r\nX-Long: " + strings.Repeat("a", 71600) + "\r\n\r\n" +
				"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled,
			want: []int{200, 200, 400}, closed: true,
			served: []string{"GET /a", "GET /long"},
		},
		{
			name: "well-framed pipelined requests are all served, in order",
			raw: "POST /1 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello" +
				"POST /2 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n3  \r\nabc\r\n0\r\nX-Trailer: 1\r\n\r\n" +
				"POST /3 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n" +
				"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n" +
				"GET /4 HTTP/1.1\nHost: x\n\n" + // bare LF in headers is allowed (RFC 9112 §2.2)
				"GET /5 HTTP/1.0\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi",
			want:   []int{200, 200, 200, 200, 200, 200},
			closed: true, // the HTTP/1.0 request ends it
			served: []string{"POST /1", "POST /2", "POST /3", "OPTIONS *", "GET /4", "GET /5"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := new(seenPaths)
			addr, _ := startServer(t, &gateway.Server{Handler: h, Logger: quietLogger()})
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			got, closed := exchange(t, conn, tc.raw)
			if !slices.Equal(got, tc.want) || closed != tc.closed {
				t.Errorf("replies %v, closed %v; want %v, closed %v", got, closed, tc.want, tc.closed)
			}
			served := h.get()
			for _, p := range served {
				if strings.Contains(p, "/admin") {
					t.Errorf("the smuggled request was served: %v", served)
				}
			}
			if !slices.Equal(served, tc.served) {
				t.Errorf("served %q, want %q", served, tc.served)
			}
		})
	}
}

// TestServerLenientFraming shows what the check prevents: net/http alone
// serves the request smuggled after a chunked body that also claimed a
// Content-Length.
func TestServerLenientFraming(t *testing.T) {
	h := new(seenPaths)
	addr, _ := startServer(t, &gateway.Server{Handler: h, LenientFraming: true, Logger: quietLogger()})
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := exchange(t, conn, "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"+strings.Replace(smuggled, "\r\n\r\n", "\r\nConnection: close\r\n\r\n", 1))
	if !slices.Equal(got, []int{200, 200}) || !slices.Equal(h.get(), []string{"POST /a", "GET /admin"}) {
		t.Fatalf("replies %v, served %q; want net/http's behaviour: both served", got, h.get())
	}
}

func TestServerRefusesAmbiguousFramingOverTLS(t *testing.T) {
	pki := newTestPKI(t)
	h := new(seenPaths)
	addr, _ := startServer(t, &gateway.Server{Handler: h, TLSConfig: &tls.Config{Certificates: []tls.Certificate{pki.serverCert}}, Logger: quietLogger()})
	dial := func() net.Conn {
		conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pki.pool, NextProtos: []string{"http/1.1"}})
		if err != nil {
			t.Fatal(err)
		}
		return conn
	}
	got, closed := exchange(t, dial(), "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"+smuggled)
	if !slices.Equal(got, []int{400}) || !closed || len(h.get()) != 0 {
		t.Fatalf("replies %v, closed %v, served %q; want 400, closed, nothing served", got, closed, h.get())
	}

	// Well-framed requests over TLS still see their TLS state.
	var sawTLS bool
	addr2, _ := startServer(t, &gateway.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sawTLS = r.TLS != nil && r.TLS.HandshakeComplete && r.TLS.NegotiatedProtocol == "http/1.1"
	}), TLSConfig: &tls.Config{Certificates: []tls.Certificate{pki.serverCert}}, Logger: quietLogger()})
	addr = addr2
	got, _ = exchange(t, dial(), "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	if !slices.Equal(got, []int{200}) || !sawTLS {
		t.Fatalf("replies %v, handler saw TLS %v; want 200 with Request.TLS set", got, sawTLS)
	}
}

func TestServerURIAndHeaderCountLimits(t *testing.T) {
	h := new(seenPaths)
	addr, _ := startServer(t, &gateway.Server{Handler: h, MaxURIBytes: 100, MaxHeaderCount: 5, Logger: quietLogger()})
	many := func(n int) string {
		var b strings.Builder
		for i := range n {
			b.WriteString("X-H" + string(rune('a'+i)) + ": 1\r\n")
		}
		return b.String()
	}
	cases := []struct {
		name string
		raw  string
		want int
	}{
		{"uri at the limit", "GET /" + strings.Repeat("a", 99) + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 200},
		{"uri over the limit", "GET /" + strings.Repeat("a", 100) + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 414},
		{"query counts", "GET /?" + strings.Repeat("a", 99) + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 414},
		{"header fields at the limit", "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + many(4) + "\r\n", 200},
		{"header fields over the limit", "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + many(5) + "\r\n", 431},
		{"repeated fields count each", "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + strings.Repeat("X-Same: 1\r\n", 5) + "\r\n", 431},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := exchange(t, conn, tc.raw)
			if len(got) != 1 || got[0] != tc.want {
				t.Fatalf("replies %v, want [%d]", got, tc.want)
			}
		})
	}
}

// TestUnreadableBodyIsTheClientsFault: an upstream call that fails because
// the client's streamed body could not be read is answered 400, not as the
// upstream failure (502) the transport reports.
func TestUnreadableBodyIsTheClientsFault(t *testing.T) {
	upstream := gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		if _, err := io.Copy(io.Discard, req.HTTP.Body); err != nil { // what a transport does
			if req.HTTP.URL.Path == "/auth" {
				return nil, &gateway.Error{Status: http.StatusUnauthorized}
			}
			return nil, &gateway.Error{Status: http.StatusBadGateway, Detail: "the upstream failed before replying", Err: err}
		}
		return gateway.NewResponse(http.StatusOK, nil, nil), nil
	})
	cases := []struct {
		name, raw string
		want      int
	}{
		{"malformed chunk", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n", 400},
		{"body cut short", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", 400},
		{"a stage's own 4xx is kept", "POST /auth HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 401},
		{"a good body", "POST /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			addr, _ := startServer(t, &gateway.Server{Handler: gateway.NewPipeline(upstream), Logger: quietLogger()})
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			raw := tc.raw
			if tc.name == "body cut short" {
				io.WriteString(conn, raw)
				conn.(*net.TCPConn).CloseWrite() // the client stops sending mid-body
				raw = ""
			}
			got, _ := exchange(t, conn, raw)
			if len(got) == 0 || got[0] != tc.want {
				t.Fatalf("replies %v, want %d first", got, tc.want)
			}
		})
	}
}

// TestServerSlowClients: a client that sends its header, its body or its
// TLS handshake too slowly loses its connection (408 for a body that
// stalls once a handler is reading it), and no handler sees a header that
// never finished.
func TestServerSlowClients(t *testing.T) {
	pki := newTestPKI(t)
	reading := gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		if _, err := io.Copy(io.Discard, req.HTTP.Body); err != nil {
			return nil, &gateway.Error{Status: http.StatusBadGateway, Err: err} // what a transport reports
		}
		return gateway.NewResponse(http.StatusOK, nil, nil), nil
	})
	cases := []struct {
		name  string
		tls   bool
		send  string // sent at once; then the client stalls
		want  int    // the reply's status, or 0 for none
		calls int    // handler calls
	}{
		{"header never finished", false, "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: 1", 0, 0},
		{"body stalls", false, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nhalf", 408, 1},
		{"TLS handshake never starts", true, "", 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				calls.Add(1)
				gateway.NewPipeline(reading).ServeHTTP(w, r)
			})
			srv := &gateway.Server{Handler: h, ReadHeaderTimeout: 200 * time.Millisecond, ReadTimeout: 400 * time.Millisecond, Logger: quietLogger()}
			if tc.tls {
				srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{pki.serverCert}}
			}
			addr, _ := startServer(t, srv)
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			start := time.Now()
			io.WriteString(conn, tc.send)
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			br := bufio.NewReader(conn)
			status := 0
			if resp, err := http.ReadResponse(br, nil); err == nil {
				status = resp.StatusCode
				io.Copy(io.Discard, resp.Body)
			}
			if _, err := br.ReadByte(); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("the connection is still open after %v (err %v)", time.Since(start), err)
			}
			if status != tc.want || int(calls.Load()) != tc.calls {
				t.Fatalf("status %d, handler calls %d; want %d, %d", status, calls.Load(), tc.want, tc.calls)
			}
		})
	}
}

func TestServerTLSEdgeCases(t *testing.T) {
	pki := newTestPKI(t)
	t.Run("plain HTTP to the TLS port is told so", func(t *testing.T) {
		addr, _ := startServer(t, &gateway.Server{Handler: new(seenPaths), TLSConfig: &tls.Config{Certificates: []tls.Certificate{pki.serverCert}}, Logger: quietLogger()})
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		got, closed := exchange(t, conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		if !slices.Equal(got, []int{400}) || !closed {
			t.Fatalf("replies %v, closed %v; want 400, closed", got, closed)
		}
	})
	t.Run("a per-client config is held to TLS 1.2", func(t *testing.T) {
		weak := &tls.Config{Certificates: []tls.Certificate{pki.serverCert}, MinVersion: tls.VersionTLS10}
		addr, _ := startServer(t, &gateway.Server{Handler: new(seenPaths), Logger: quietLogger(), TLSConfig: &tls.Config{
			GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) { return weak, nil },
		}})
		for _, tc := range []struct {
			max uint16
			ok  bool
		}{{tls.VersionTLS11, false}, {tls.VersionTLS12, true}} {
			conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pki.pool, MinVersion: tls.VersionTLS10, MaxVersion: tc.max})
			if (err == nil) != tc.ok {
				t.Errorf("max version %x: handshake error %v, want success %v", tc.max, err, tc.ok)
			}
			if err == nil {
				conn.Close()
			}
		}
		if weak.MinVersion != tls.VersionTLS10 {
			t.Error("the application's config was changed")
		}
	})
}
