package h1_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gatekit/gatekit/proxy/h1"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// newTransport returns a Transport whose idle connections close when the
// test ends.
func newTransport(t testing.TB, cfg h1.Config) *h1.Transport {
	t.Helper()
	tr := h1.New(cfg)
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

// countingServer is an httptest server that counts the connections it
// accepted and closed.
type countingServer struct {
	*httptest.Server
	opened, closed atomic.Int32
	closedCh       chan struct{} // one value per closed connection
}

func newServer(t testing.TB, h http.HandlerFunc) *countingServer {
	t.Helper()
	s := &countingServer{closedCh: make(chan struct{}, 100)}
	s.Server = httptest.NewUnstartedServer(h)
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			s.opened.Add(1)
		case http.StateClosed, http.StateHijacked:
			s.closed.Add(1)
			s.closedCh <- struct{}{}
		}
	}
	s.Start()
	t.Cleanup(s.Close)
	return s
}

// waitClosed waits for n connections of s to close.
func (s *countingServer) waitClosed(t testing.TB, n int) {
	t.Helper()
	for range n {
		select {
		case <-s.closedCh:
		case <-time.After(10 * time.Second):
			t.Fatalf("the server saw %d of %d connections closed", s.closed.Load(), n)
		}
	}
}

// rawServer accepts connections and hands each to serve; it closes the
// connection when serve returns.
func rawServer(t testing.TB, serve func(c net.Conn, br *bufio.Reader)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
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
			wg.Go(func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				serve(c, bufio.NewReader(c))
			})
		}
	})
	return "http://" + ln.Addr().String()
}

// readRequest reads one request's head and body from br.
func readRequest(br *bufio.Reader) (*http.Request, []byte, error) {
	req, err := http.ReadRequest(br)
	if err != nil {
		return nil, nil, err
	}
	body, err := io.ReadAll(req.Body)
	return req, body, err
}

// opaque hides a reader's length from http.NewRequest.
type opaque struct{ io.Reader }

func TestRoundTrip(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		w.Header().Set("X-Method", r.Method)
		w.Header().Set("X-Length", fmt.Sprint(r.ContentLength))
		w.Header().Set("X-TE", strings.Join(r.TransferEncoding, ","))
		w.Header().Set("X-Accept-Encoding", r.Header.Get("Accept-Encoding"))
		switch r.URL.Path {
		case "/204":
			w.WriteHeader(204)
		case "/304":
			w.WriteHeader(304)
		case "/chunked":
			w.Header().Set("Trailer", "X-Sum")
			io.WriteString(w, "part one,")
			w.(http.Flusher).Flush()
			io.WriteString(w, "part two")
			w.Header().Set("X-Sum", "42")
			w.Header().Set(http.TrailerPrefix+"X-Late", "late")
		default:
			w.Header().Set("Content-Length", fmt.Sprint(len(body)))
			w.Write(body)
		}
	})
	tr := newTransport(t, h1.Config{})
	tests := []struct {
		name    string
		method  string
		path    string
		body    io.Reader
		status  int
		wantLen string // the Content-Length the server saw
		wantTE  string
		reply   string
		replyCL int64
		trailer http.Header
	}{
		{name: "GET", method: "GET", path: "/", status: 200, wantLen: "0", replyCL: 0},
		{name: "POST known length", method: "POST", path: "/", body: strings.NewReader("hello"), status: 200, wantLen: "5", reply: "hello", replyCL: 5},
		{name: "POST unknown length", method: "POST", path: "/", body: opaque{strings.NewReader("streamed")}, status: 200, wantLen: "-1", wantTE: "chunked", reply: "streamed", replyCL: 8},
		{name: "POST empty", method: "POST", path: "/", status: 200, wantLen: "0", replyCL: 0},
		{name: "PUT large", method: "PUT", path: "/", body: strings.NewReader(strings.Repeat("x", 100<<10)), status: 200, wantLen: fmt.Sprint(100 << 10), reply: strings.Repeat("x", 100<<10), replyCL: 100 << 10},
		{name: "HEAD", method: "HEAD", path: "/", status: 200, wantLen: "0", replyCL: 0},
		{name: "204", method: "GET", path: "/204", status: 204, wantLen: "0", replyCL: 0},
		{name: "304", method: "GET", path: "/304", status: 304, wantLen: "0", replyCL: 0},
		{name: "chunked reply with trailers", method: "GET", path: "/chunked", status: 200, wantLen: "0", reply: "part one,part two", replyCL: -1,
			trailer: http.Header{"X-Sum": {"42"}, "X-Late": {"late"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, s.URL+tc.path, tc.body)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.status || string(body) != tc.reply {
				t.Errorf("reply %d %q, want %d %q", resp.StatusCode, body, tc.status, tc.reply)
			}
			if tc.status == 200 {
				if got := resp.Header.Get("X-Length"); got != tc.wantLen {
					t.Errorf("server saw Content-Length %s, want %s", got, tc.wantLen)
				}
				if got := resp.Header.Get("X-TE"); got != tc.wantTE {
					t.Errorf("server saw Transfer-Encoding %q, want %q", got, tc.wantTE)
				}
				if got := resp.Header.Get("X-Method"); got != tc.method {
					t.Errorf("server saw method %q", got)
				}
				if got := resp.Header.Get("X-Accept-Encoding"); got != "" {
					t.Errorf("the transport added Accept-Encoding %q", got)
				}
			}
			if resp.ContentLength != tc.replyCL {
				t.Errorf("ContentLength %d, want %d", resp.ContentLength, tc.replyCL)
			}
			if resp.Request != req || resp.Proto != "HTTP/1.1" || resp.ProtoMajor != 1 || resp.ProtoMinor != 1 || resp.Uncompressed {
				t.Errorf("Request, Proto or Uncompressed not set as net/http does: %+v", resp)
			}
			if tc.trailer != nil {
				if len(resp.Trailer) != len(tc.trailer) || resp.Trailer.Get("X-Sum") != "42" || resp.Trailer.Get("X-Late") != "late" {
					t.Errorf("trailer %v, want %v", resp.Trailer, tc.trailer)
				}
				if len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked" {
					t.Errorf("TransferEncoding %q", resp.TransferEncoding)
				}
			}
		})
	}
	if n := s.opened.Load(); n != 1 {
		t.Errorf("%d connections for %d sequential requests, want 1", n, len(tests))
	}
}

// TestRequestWire checks the bytes of a request: net/http's order, sorted
// fields, and nothing added that the proxy must pass through unchanged.
func TestRequestWire(t *testing.T) {
	got := make(chan string, 1)
	url := rawServer(t, func(c net.Conn, br *bufio.Reader) {
		var head strings.Builder
		for {
			line, err := br.ReadString('\n')
			head.WriteString(line)
			if err != nil || line == "\r\n" {
				break
			}
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
		got <- head.String()
	})
	tests := []struct {
		name string
		mod  func(r *http.Request)
		want string
	}{
		{"defaults", func(r *http.Request) {},
			"GET /p?q=1 HTTP/1.1\r\nHost: HOST\r\nUser-Agent: Go-http-client/1.1\r\nB: 2\r\nB: 3\r\nZ: 1\r\n\r\n"},
		{"empty User-Agent sends none; Host from Request.Host", func(r *http.Request) {
			r.Header.Set("User-Agent", "")
			r.Host = "api.example.com"
		}, "GET /p?q=1 HTTP/1.1\r\nHost: api.example.com\r\nB: 2\r\nB: 3\r\nZ: 1\r\n\r\n"},
		{"Close", func(r *http.Request) { r.Close = true },
			"GET /p?q=1 HTTP/1.1\r\nHost: HOST\r\nUser-Agent: Go-http-client/1.1\r\nConnection: close\r\nB: 2\r\nB: 3\r\nZ: 1\r\n\r\n"},
	}
	tr := newTransport(t, h1.Config{})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", url+"/p?q=1", nil)
			req.Header["Z"] = []string{"1"}
			req.Header["B"] = []string{" 2 ", "3"}
			tc.mod(req)
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			want := strings.ReplaceAll(tc.want, "HOST", strings.TrimPrefix(url, "http://"))
			if h := <-got; h != want {
				t.Errorf("request head\n%q\nwant\n%q", h, want)
			}
		})
	}
}

// trackedBody records whether it was closed.
type trackedBody struct {
	io.Reader
	closed atomic.Bool
}

func (b *trackedBody) Close() error { b.closed.Store(true); return nil }

// TestInvalidRequest: what would split the request, or cannot be sent, is
// refused before a connection is opened, and the body is closed.
func TestInvalidRequest(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {})
	tr := newTransport(t, h1.Config{})
	tests := []struct {
		name string
		mod  func(r *http.Request)
		want string
	}{
		{"CRLF in a value", func(r *http.Request) { r.Header.Set("X-A", "v\r\nInjected: 1") }, "invalid header field value"},
		{"LF in a value", func(r *http.Request) { r.Header["X-A"] = []string{"v\nX: y"} }, "invalid header field value"},
		{"NUL in a value", func(r *http.Request) { r.Header["X-A"] = []string{"v\x00"} }, "invalid header field value"},
		{"CRLF in a name", func(r *http.Request) { r.Header["X-A\r\nB"] = []string{"v"} }, "invalid header field name"},
		{"space in a name", func(r *http.Request) { r.Header["X A"] = []string{"v"} }, "invalid header field name"},
		{"empty name", func(r *http.Request) { r.Header[""] = []string{"v"} }, "invalid header field name"},
		{"CRLF in Host", func(r *http.Request) { r.Host = "a\r\nX: y" }, "invalid Host"},
		{"CRLF in the target", func(r *http.Request) { r.URL.Opaque = "/a\r\nX: y" }, "control character"},
		{"method", func(r *http.Request) { r.Method = "GET /x" }, "invalid method"},
		{"https", func(r *http.Request) { r.URL.Scheme = "https" }, "plain http:// URLs only"},
		{"no host", func(r *http.Request) { r.URL.Host = "" }, "no Host"},
		{"transfer encoding", func(r *http.Request) { r.TransferEncoding = []string{"gzip"} }, "unsupported transfer encoding"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := &trackedBody{Reader: strings.NewReader("x")}
			req, _ := http.NewRequest("POST", s.URL+"/", body)
			tc.mod(req)
			_, err := tr.RoundTrip(req)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one saying %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "Injected") {
				t.Errorf("the error quotes the value: %v", err)
			}
			if !body.closed.Load() {
				t.Error("the request body was not closed")
			}
		})
	}
	if n := s.opened.Load(); n != 0 {
		t.Errorf("%d connections opened for invalid requests", n)
	}
}

func TestInterimReplies(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</a.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("Link")
		body, _ := io.ReadAll(r.Body) // with Expect: 100-continue, sends 100 first
		io.WriteString(w, "got "+string(body))
	})
	tr := newTransport(t, h1.Config{})
	tests := []struct {
		name   string
		expect bool
		want   []int
	}{
		{"103", false, []int{103}},
		// The body goes at once, unwaited for; the server's 100 comes
		// anyway, when the handler reads.
		{"103 and 100 Continue", true, []int{103, 100}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []int
			var links []string
			trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
				got = append(got, code)
				links = append(links, h.Get("Link"))
				return nil
			}}
			req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "POST", s.URL, strings.NewReader("data"))
			if tc.expect {
				req.Header.Set("Expect", "100-continue")
			}
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(body) != "got data" {
				t.Errorf("final reply %d %q", resp.StatusCode, body)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) || links[0] != "</a.css>; rel=preload" {
				t.Errorf("interim replies %v %q, want %v", got, links, tc.want)
			}
		})
	}
}

// TestGot1xxError: an error from the trace hook fails the round trip.
func TestGot1xxError(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusEarlyHints)
		io.WriteString(w, "x")
	})
	tr := newTransport(t, h1.Config{})
	stop := errors.New("stop")
	trace := &httptrace.ClientTrace{Got1xxResponse: func(int, textproto.MIMEHeader) error { return stop }}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", s.URL, nil)
	if _, err := tr.RoundTrip(req); !errors.Is(err, stop) {
		t.Fatalf("error %v, want the hook's", err)
	}
}

// TestWroteRequest: the trace hears once that the request is written,
// body included, before the round trip returns; or why it was not.
func TestWroteRequest(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) { io.ReadAll(r.Body) })
	tr := newTransport(t, h1.Config{})
	boom := errors.New("boom")
	tests := []struct {
		name    string
		body    io.Reader
		wantErr bool
	}{
		{"no body", nil, false},
		{"chunked body", opaque{strings.NewReader("body")}, false},
		{"failing body", opaque{errReader{boom}}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var calls []error
			trace := &httptrace.ClientTrace{WroteRequest: func(info httptrace.WroteRequestInfo) { calls = append(calls, info.Err) }}
			req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "POST", s.URL, tc.body)
			resp, err := tr.RoundTrip(req)
			if err == nil {
				resp.Body.Close()
			}
			if len(calls) != 1 || (calls[0] != nil) != tc.wantErr || (err != nil) != tc.wantErr {
				t.Fatalf("WroteRequest calls %v, round trip error %v", calls, err)
			}
		})
	}
}

func TestUpgrade(t *testing.T) {
	url := rawServer(t, func(c net.Conn, br *bufio.Reader) {
		req, _, err := readRequest(br)
		if err != nil || req.Header.Get("Upgrade") != "echo" {
			return
		}
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\nhello,")
		io.Copy(c, br)
	})
	tr := newTransport(t, h1.Config{})
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "echo")
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 101 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	rwc, ok := resp.Body.(io.ReadWriteCloser)
	if !ok {
		t.Fatalf("the body of a 101 is a %T, not an io.ReadWriteCloser", resp.Body)
	}
	defer rwc.Close()
	if _, err := io.WriteString(rwc, "ping"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len("hello,ping"))
	if _, err := io.ReadFull(rwc, buf); err != nil || string(buf) != "hello,ping" {
		t.Fatalf("read %q, %v", buf, err)
	}
}

// TestReuse: a connection is reused only after an exchange that ended
// cleanly on both sides.
func TestReuse(t *testing.T) {
	big := strings.Repeat("b", 1<<20)
	tests := []struct {
		name   string
		path   string
		mod    func(r *http.Request)
		read   bool // read the body to its end, else close it at once
		reused bool
	}{
		{"body read to the end", "/", nil, true, true},
		{"empty body never read", "/empty", nil, false, true},
		{"HEAD", "/", func(r *http.Request) { r.Method = "HEAD" }, false, true},
		{"body closed early", "/big", nil, false, false},
		{"server said Connection: close", "/close", nil, true, false},
		{"client said Close", "/", func(r *http.Request) { r.Close = true }, true, false},
		{"client said Connection: close", "/", func(r *http.Request) { r.Header.Set("Connection", "close") }, true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				switch r.URL.Path {
				case "/big":
					io.WriteString(w, big)
				case "/empty":
				case "/close":
					w.Header().Set("Connection", "close")
					io.WriteString(w, "bye")
				default:
					io.WriteString(w, "ok")
				}
			})
			tr := newTransport(t, h1.Config{})
			for range 2 {
				req, _ := http.NewRequest("GET", s.URL+tc.path, nil)
				if tc.mod != nil {
					tc.mod(req)
				}
				resp, err := tr.RoundTrip(req)
				if err != nil {
					t.Fatal(err)
				}
				if tc.read {
					if _, err := io.ReadAll(resp.Body); err != nil {
						t.Fatal(err)
					}
				}
				resp.Body.Close()
			}
			want := int32(2)
			if tc.reused {
				want = 1
			}
			if n := s.opened.Load(); n != want {
				t.Errorf("%d connections for 2 requests, want %d", n, want)
			}
			if !tc.reused {
				s.waitClosed(t, 1) // the first one was not leaked
			}
		})
	}
}

// TestReadUntilClose: a reply without framing ends with its connection,
// which is then not reused.
func TestReadUntilClose(t *testing.T) {
	var conns atomic.Int32
	url := rawServer(t, func(c net.Conn, br *bufio.Reader) {
		conns.Add(1)
		if _, _, err := readRequest(br); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\n\r\nall of it")
	})
	tr := newTransport(t, h1.Config{})
	for range 2 {
		req, _ := http.NewRequest("GET", url, nil)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || string(body) != "all of it" || resp.ContentLength != -1 || !resp.Close {
			t.Fatalf("reply %q %v, ContentLength %d, Close %v", body, err, resp.ContentLength, resp.Close)
		}
	}
	if n := conns.Load(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
}

// TestStaleIdleConnection: an idle connection the server closed is not
// used, or, if the close comes too late to see, the request is sent again.
func TestStaleIdleConnection(t *testing.T) {
	var conns atomic.Int32
	url := rawServer(t, func(c net.Conn, br *bufio.Reader) {
		conns.Add(1)
		if _, _, err := readRequest(br); err != nil {
			return
		}
		// A keep-alive reply, then the server goes away all the same.
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	})
	tr := newTransport(t, h1.Config{})
	for i := range 3 {
		req, _ := http.NewRequest("GET", url, nil)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || string(body) != "ok" {
			t.Fatalf("request %d: %q %v", i, body, err)
		}
	}
	if n := conns.Load(); n != 3 {
		t.Errorf("%d connections, want 3", n)
	}
}

func TestIdleTimeout(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	tr := newTransport(t, h1.Config{IdleTimeout: time.Millisecond})
	req, _ := http.NewRequest("GET", s.URL, nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(resp.Body)
	resp.Body.Close()
	s.waitClosed(t, 1)
}

func TestMaxIdlePerHost(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	tr := newTransport(t, h1.Config{MaxIdlePerHost: 1})
	// Two replies open at once: both connections stay open until their
	// bodies end, then only one fits in the pool.
	var resps []*http.Response
	for range 2 {
		req, _ := http.NewRequest("GET", s.URL, nil)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resps = append(resps, resp)
	}
	for _, resp := range resps {
		io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	s.waitClosed(t, 1)
	if n := s.opened.Load(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
}

// TestMalformedReplies: replies that are not valid HTTP/1.1 fail the round
// trip, or the body's read, with an error, and their connection is closed.
func TestMalformedReplies(t *testing.T) {
	tests := []struct {
		name    string
		reply   string
		wantErr error // from RoundTrip; nil: from reading the body
	}{
		{"not HTTP", "SSH-2.0-OpenSSH\r\n\r\n", h1.ErrMalformedResponse},
		{"bad status code", "HTTP/1.1 abc\r\n\r\n", h1.ErrMalformedResponse},
		{"status code below 100", "HTTP/1.1 099 x\r\n\r\n", h1.ErrMalformedResponse},
		{"HTTP/2.0", "HTTP/2.0 200 OK\r\n\r\n", h1.ErrMalformedResponse},
		{"no space after the code", "HTTP/1.1 200OK\r\n\r\n", h1.ErrMalformedResponse},
		{"field without colon", "HTTP/1.1 200 OK\r\nBroken\r\n\r\n", h1.ErrMalformedResponse},
		{"space before colon", "HTTP/1.1 200 OK\r\nX-A : 1\r\n\r\n", h1.ErrMalformedResponse},
		{"obs-fold", "HTTP/1.1 200 OK\r\nX-A: 1\r\n 2\r\n\r\n", h1.ErrMalformedResponse},
		{"NUL in a value", "HTTP/1.1 200 OK\r\nX-A: a\x00b\r\n\r\n", h1.ErrMalformedResponse},
		{"negative Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", h1.ErrMalformedResponse},
		{"non-digit Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 1e3\r\n\r\n", h1.ErrMalformedResponse},
		{"signed Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: +3\r\n\r\nabc", h1.ErrMalformedResponse},
		{"differing Content-Lengths", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", h1.ErrMalformedResponse},
		{"list Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 3, 4\r\n\r\nabcd", h1.ErrMalformedResponse},
		{"huge Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n", h1.ErrMalformedResponse},
		{"gzip Transfer-Encoding", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", h1.ErrMalformedResponse},
		{"Transfer-Encoding in HTTP/1.0", "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", h1.ErrMalformedResponse},
		{"header too large", "HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("a", 2048) + "\r\n\r\n", h1.ErrHeaderTooLarge},
		{"too many 1xx", strings.Repeat("HTTP/1.1 103 Early Hints\r\n\r\n", 6) + "HTTP/1.1 200 OK\r\n\r\n", h1.ErrMalformedResponse},
		{"closed before the reply", "", io.ErrUnexpectedEOF},
		{"header cut short", "HTTP/1.1 200 OK\r\nX-A: 1\r\n", io.ErrUnexpectedEOF},
		{"body shorter than Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", nil},
		{"bad chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n", nil},
		{"chunk without CRLF", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n", nil},
		{"chunked cut short", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			closed := make(chan struct{})
			url := rawServer(t, func(c net.Conn, br *bufio.Reader) {
				defer close(closed)
				if _, _, err := readRequest(br); err != nil {
					return
				}
				io.WriteString(c, tc.reply)
				c.(*net.TCPConn).CloseWrite()
				io.Copy(io.Discard, br) // until the transport closes its end
			})
			tr := newTransport(t, h1.Config{MaxResponseHeaderBytes: 1024})
			req, _ := http.NewRequest("GET", url, nil)
			resp, err := tr.RoundTrip(req)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("error %v, want %v", err, tc.wantErr)
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				_, err = io.ReadAll(resp.Body)
				resp.Body.Close()
				if err == nil {
					t.Fatal("the body read as complete")
				}
			}
			select {
			case <-closed:
			case <-time.After(10 * time.Second):
				t.Fatal("the connection was not closed")
			}
		})
	}
}

// TestCancel: the request's context ends the exchange wherever it is, and
// the connection is closed.
func TestCancel(t *testing.T) {
	tests := []struct {
		name    string
		midBody bool // cancel once the header is in, while the body waits
	}{
		{"awaiting the header", false},
		{"mid-body", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			release := make(chan struct{})
			s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				if tc.midBody {
					io.WriteString(w, "first,")
					w.(http.Flusher).Flush()
				}
				select {
				case <-r.Context().Done():
				case <-release:
				}
			})
			defer close(release)
			tr := newTransport(t, h1.Config{})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "GET", s.URL, nil)
			if !tc.midBody {
				time.AfterFunc(50*time.Millisecond, cancel)
				if _, err := tr.RoundTrip(req); !errors.Is(err, context.Canceled) {
					t.Fatalf("error %v, want context.Canceled", err)
				}
			} else {
				resp, err := tr.RoundTrip(req)
				if err != nil {
					t.Fatal(err)
				}
				buf := make([]byte, len("first,"))
				if _, err := io.ReadFull(resp.Body, buf); err != nil {
					t.Fatal(err)
				}
				time.AfterFunc(50*time.Millisecond, cancel)
				if _, err := io.ReadAll(resp.Body); !errors.Is(err, context.Canceled) {
					t.Fatalf("body read error %v, want context.Canceled", err)
				}
				resp.Body.Close()
			}
			s.waitClosed(t, 1)
		})
	}
}

func TestDialFailure(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	tr := newTransport(t, h1.Config{})
	req, _ := http.NewRequest("GET", "http://"+addr, nil)
	_, err = tr.RoundTrip(req)
	if oe, ok := errors.AsType[*net.OpError](err); !ok || oe.Op != "dial" {
		t.Fatalf("error %v, want a *net.OpError from dial", err)
	}
}

// TestRequestBodyError: a failing body fails the round trip with its error.
func TestRequestBodyError(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) { io.ReadAll(r.Body) })
	tr := newTransport(t, h1.Config{})
	boom := &http.MaxBytesError{Limit: 3}
	req, _ := http.NewRequest("POST", s.URL, opaque{io.MultiReader(strings.NewReader("abc"), errReader{boom})})
	_, err := tr.RoundTrip(req)
	if e, ok := errors.AsType[*http.MaxBytesError](err); !ok || e != boom {
		t.Fatalf("error %v, want the body's", err)
	}
	s.waitClosed(t, 1)
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

// TestConcurrent runs many requests at once on one Transport (for -race).
func TestConcurrent(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Write(body)
	})
	tr := newTransport(t, h1.Config{MaxIdlePerHost: 4})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 20 {
				want := fmt.Sprintf("g%d-r%d", g, i)
				req, _ := http.NewRequest("POST", s.URL, strings.NewReader(want))
				resp, err := tr.RoundTrip(req)
				if err != nil {
					t.Error(err)
					return
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || string(body) != want {
					t.Errorf("got %q %v, want %q", body, err, want)
				}
			}
		})
	}
	wg.Wait()
}

// TestRequestTrailer: the trailer of a chunked request body follows it,
// with the values set while the body was read.
func TestRequestTrailer(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s", body, r.Trailer.Get("X-Sum"))
	})
	tr := newTransport(t, h1.Config{})
	req, _ := http.NewRequest("POST", s.URL, nil)
	req.Trailer = http.Header{"X-Sum": nil}
	req.Body = io.NopCloser(io.MultiReader(strings.NewReader("data"), readFunc(func() { req.Trailer.Set("X-Sum", "7") })))
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "data 7" {
		t.Errorf("server saw %q, want %q", body, "data 7")
	}
}

// readFunc is an empty reader that calls f when read.
type readFunc func()

func (f readFunc) Read([]byte) (int, error) { f(); return 0, io.EOF }

// TestRetryOnReusedConnection: a request that meets a reused connection
// closed before any byte of the reply is sent again on a new one when
// net/http would: it is idempotent (or says so with Idempotency-Key) and
// its body can be sent again.
func TestRetryOnReusedConnection(t *testing.T) {
	tests := []struct {
		name    string
		method  string
		body    func() io.Reader
		key     bool // send Idempotency-Key
		retried bool
	}{
		{"GET", "GET", nil, false, true},
		{"POST", "POST", func() io.Reader { return strings.NewReader("x") }, false, false},
		{"POST with Idempotency-Key", "POST", func() io.Reader { return strings.NewReader("x") }, true, true},
		{"POST with Idempotency-Key, body not rewindable", "POST", func() io.Reader { return opaque{strings.NewReader("x")} }, true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var conns atomic.Int32
			url := rawServer(t, func(c net.Conn, br *bufio.Reader) {
				first := conns.Add(1) == 1
				for i := 0; ; i++ {
					if _, _, err := readRequest(br); err != nil {
						return
					}
					if first && i == 1 {
						return // the second request on the first connection: gone
					}
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				}
			})
			tr := newTransport(t, h1.Config{})
			for i := range 2 {
				var body io.Reader
				if tc.body != nil && i == 1 {
					body = tc.body()
				}
				method := "GET"
				if i == 1 {
					method = tc.method
				}
				req, _ := http.NewRequest(method, url, body)
				if tc.key {
					req.Header.Set("Idempotency-Key", "k1")
				}
				resp, err := tr.RoundTrip(req)
				if i == 0 || tc.retried {
					if err != nil {
						t.Fatalf("request %d: %v", i, err)
					}
					io.ReadAll(resp.Body)
					resp.Body.Close()
					continue
				}
				if err == nil {
					resp.Body.Close()
					t.Fatal("the request was sent again")
				}
			}
		})
	}
}

// TestEarlyReply: an upstream that answers before the body is all sent,
// and closes, has its reply returned rather than the failed write.
func TestEarlyReply(t *testing.T) {
	url := rawServer(t, func(c net.Conn, br *bufio.Reader) {
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 413 Content Too Large\r\nConnection: close\r\nContent-Length: 3\r\n\r\nbig")
		c.(*net.TCPConn).CloseWrite()
	})
	tr := newTransport(t, h1.Config{})
	req, _ := http.NewRequest("POST", url, strings.NewReader(strings.Repeat("u", 64<<20)))
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 413 || string(body) != "big" {
		t.Errorf("reply %d %q", resp.StatusCode, body)
	}
}
