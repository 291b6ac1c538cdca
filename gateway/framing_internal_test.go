package gateway

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// FuzzFramingScanner checks the framing scanner against net/http's own
// request reader on the same bytes, fed in three uneven pieces: every
// request the scanner vouches for (those before the first it refuses) is
// the request net/http reads at that place, and, unless the scanner refused
// something, net/http reads no request the scanner did not see. A drift
// between the two would let a request be judged by another's verdict.
func FuzzFramingScanner(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET /b HTTP/1.1\r\n\r\n",
		"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\nT: 1\r\n\r\nGET /b HTTP/1.1\r\n\r\n",
		"POST /a HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\n\r\n",
		"POST /a HTTP/1.0\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\nabcGET /b HTTP/1.0\r\n\r\n",
		"GET /a HTTP/1.1\nX: 1\n 2\n\n",
		"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3 \r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\n\r\n",
		"POST /a HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nxGET / HTTP/1.1\r\n\r\n",
		"GET /a HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
		"POST /a HTTP/1.1\r\nContent-Length: 0\r\n\r\n\r\nPOST /b HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /c HTTP/1.1\r\n\r\n",
		"POST /a HTTP/1.1\r\n\r\n\n\r\n\r\nGET /b HTTP/1.1\r\n\r\n",
	} {
		f.Add([]byte(s), uint16(7), uint16(40))
	}
	f.Fuzz(func(t *testing.T, raw []byte, cut1, cut2 uint16) {
		var ours []string
		s := newFramingScanner(1 << 20)
		s.onHead = func(line []byte) { ours = append(ours, string(line)) }
		a, b := int(cut1)%(len(raw)+1), int(cut2)%(len(raw)+1)
		if a > b {
			a, b = b, a
		}
		s.feed(raw[:a])
		s.feed(raw[a:b])
		s.feed(raw[b:])

		var theirs []string
		br := bufio.NewReader(bytes.NewReader(raw))
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				break
			}
			theirs = append(theirs, req.Method+" "+req.RequestURI)
			if _, err := io.Copy(io.Discard, req.Body); err != nil {
				break
			}
			if req.Method == "POST" {
				// What net/http's server does before the next request.
				peek, _ := br.Peek(4)
				n := 0
				for n < len(peek) && (peek[n] == '\r' || peek[n] == '\n') {
					n++
				}
				br.Discard(n)
			}
		}
		if s.state == scanStopped && s.badFrom < 0 {
			t.Fatalf("the scanner stopped following the connection without refusing anything")
		}

		vouched := s.heads
		if s.badFrom >= 0 {
			vouched = s.badFrom
		}
		for i := 0; i < vouched && i < len(theirs); i++ {
			if ours[i] != theirs[i] {
				t.Fatalf("request %d: the scanner saw %q, net/http read %q", i, ours[i], theirs[i])
			}
		}
		if s.badFrom < 0 && len(theirs) > s.heads {
			t.Fatalf("net/http read %d requests %q, the scanner counted %d heads", len(theirs), theirs, s.heads)
		}
	})
}

// BenchmarkFramingScanner is what the framing check costs a request: a
// browser-sized head and a 1 KiB body, read in one piece as net/http
// usually does.
func BenchmarkFramingScanner(b *testing.B) {
	req := []byte("POST /v1/orders?expand=items HTTP/1.1\r\nHost: api.example.com\r\n" +
		"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)\r\n" +
		"Accept: application/json\r\nAccept-Encoding: gzip, deflate, br\r\nAccept-Language: en-GB,en;q=0.9\r\n" +
		"Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJl\r\n" +
		"Content-Type: application/json\r\nContent-Length: 1024\r\n\r\n" + string(bytes.Repeat([]byte("x"), 1024)))
	s := newFramingScanner(DefaultMaxHeaderBytes)
	b.SetBytes(int64(len(req)))
	b.ReportAllocs()
	for b.Loop() {
		s.feed(req)
	}
	if s.heads != b.N || s.badFrom >= 0 {
		b.Fatalf("heads %d after %d requests, refused from %d", s.heads, b.N, s.badFrom)
	}
}

// flakyListener fails its first Accept with a temporary error, as accept
// does when the process is out of file descriptors.
type flakyListener struct {
	net.Listener
	calls atomic.Int32
}

func (l *flakyListener) Accept() (net.Conn, error) {
	if l.calls.Add(1) == 1 {
		return nil, temporaryError{}
	}
	return l.Listener.Accept()
}

type temporaryError struct{}

func (temporaryError) Error() string   { return "accept: too many open files" }
func (temporaryError) Temporary() bool { return true }
func (temporaryError) Timeout() bool   { return false }

func TestTLSListenerOutlivesTemporaryErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fl := &flakyListener{Listener: ln}
	tl := newTLSListener(fl, &tls.Config{}, time.Second, DefaultMaxHeaderBytes, slog.New(slog.DiscardHandler))
	defer tl.Close()
	deadline := time.Now().Add(5 * time.Second)
	for fl.calls.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the listener stopped accepting after a temporary error")
		}
		time.Sleep(time.Millisecond)
	}
	select {
	case err := <-tl.errc:
		t.Fatalf("a temporary error reached Serve: %v", err)
	default:
	}
}

// The lean loop's accept loop, too, backs off a temporary error and goes on.
func TestLeanServerOutlivesTemporaryErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fl := &flakyListener{Listener: ln}
	srv := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }),
		LeanHTTP1: true, Logger: slog.New(slog.DiscardHandler)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, fl) }()
	client := &http.Client{Transport: &http.Transport{}, Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + ln.Addr().String() + "/")
	if err != nil {
		t.Fatalf("after a temporary accept error: %v", err)
	}
	resp.Body.Close()
	client.CloseIdleConnections()
	select {
	case err := <-done:
		t.Fatalf("Serve returned after a temporary error: %v", err)
	default:
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestHijackStopsScanning: once any handler takes a connection over (a
// WebSocket library, say), its bytes are no longer HTTP/1.x and the scanner
// stops reading them.
func TestHijackStopsScanning(t *testing.T) {
	hs, err := (&Server{Handler: http.NotFoundHandler()}).httpServer(new(upgrades))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []net.Conn{
		&checkedConn{scan: newFramingScanner(DefaultMaxHeaderBytes)},
		&checkedTLSConn{checkedConn: checkedConn{scan: newFramingScanner(DefaultMaxHeaderBytes)}},
	} {
		scan := scanner(c)
		scan.feed([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
		hs.ConnState(c, http.StateActive)
		if scan.state == scanStopped {
			t.Fatal("stopped while still HTTP")
		}
		hs.ConnState(c, http.StateHijacked)
		scan.feed(bytes.Repeat([]byte{0x81}, 100<<10)) // WebSocket frames, no newline
		if scan.state != scanStopped || scan.badFrom >= 0 || len(scan.line) != 0 {
			t.Fatalf("after hijack: state %v, refused from %d, %d bytes held", scan.state, scan.badFrom, len(scan.line))
		}
	}
}
