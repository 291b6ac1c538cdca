package proxy_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gatekit/gatekit/gateway"
	"github.com/gatekit/gatekit/proxy"
)

// The fault tests put a misbehaving upstream behind a real gateway, call it
// with a keep-alive client, and check the status the client gets, that its
// connection stays usable, and that nothing leaks: no goroutine and no file
// descriptor outlives the test.

// faultWait bounds every wait for something that should happen at once;
// only a broken proxy ever reaches it.
const faultWait = 5 * time.Second

// noLeaks checks, when t ends and after every cleanup registered later
// (cleanups run last-registered first), that t left no goroutine behind
// (goleak) and no more open file descriptors than it found.
func noLeaks(t *testing.T) {
	t.Helper()
	// Open the network poller's descriptors (epoll and its wake-up
	// eventfd, opened once per process on first use) before counting, so
	// that a test that happens to be the process's first network user is
	// not charged with them.
	if ln, err := net.Listen("tcp", "127.0.0.1:0"); err == nil {
		ln.Close()
	}
	before, ok := openFDs()
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() {
		// Connections end in goroutines of their own (a transport's read
		// loop, a server's conn), which can take a moment after a Close on
		// a loaded machine: goleak.Find retries for about half a second,
		// and this for up to faultWait.
		deadline := time.Now().Add(faultWait)
		for {
			err := goleak.Find(ignore)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Error(err)
				return
			}
		}
		if !ok {
			return // no /proc: goroutines are checked, descriptors cannot be
		}
		// The sockets' goroutines are gone, and with them the sockets; no
		// tolerance is needed: the tests run one at a time, and the
		// poller's descriptors are open before the first count. The loop
		// is for a socket another goroutine is closing at this moment.
		for {
			after, _ := openFDs()
			if after <= before {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("open file descriptors: %d before, %d after the test", before, after)
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// openFDs counts this process's open file descriptors.
func openFDs() (int, bool) {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0, false
	}
	return len(ents), true
}

// rawUpstream is a TCP server on loopback that serves every connection
// with serve, which gets the connection and a reader on it. When the test
// ends it closes the listener and every connection, and waits for serve to
// return.
func rawUpstream(t *testing.T, serve func(c net.Conn, br *bufio.Reader)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		closed bool
		conns  = map[net.Conn]struct{}{}
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			if closed {
				mu.Unlock()
				c.Close()
				return
			}
			conns[c] = struct{}{}
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				serve(c, bufio.NewReader(c))
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		closed = true
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return "http://" + ln.Addr().String()
}

// readRequest consumes one request, body included, from br.
func readRequest(br *bufio.Reader) error {
	r, err := http.ReadRequest(br)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, r.Body)
	return err
}

// faultClient is a keep-alive client whose connections are closed when the
// test ends; get reports whether its connection was a reused one.
type faultClient struct {
	tr *http.Transport
	c  *http.Client
}

func newFaultClient(t *testing.T) *faultClient {
	tr := &http.Transport{MaxIdleConnsPerHost: 4}
	t.Cleanup(tr.CloseIdleConnections)
	return &faultClient{tr: tr, c: &http.Client{Transport: tr}}
}

// get sends a GET; conn is the connection it went on, and reused tells
// whether that connection had served an earlier request.
func (fc *faultClient) get(t *testing.T, url string) (resp *http.Response, conn net.Conn, reused bool) {
	t.Helper()
	trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
		conn, reused = info.Conn, info.Reused
	}}
	ctx, cancel := context.WithTimeout(context.Background(), faultWait)
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err = fc.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp, conn, reused
}

// once closes a channel once, however often it is called.
type once struct {
	ch chan struct{}
	o  sync.Once
}

func newOnce() *once   { return &once{ch: make(chan struct{})} }
func (o *once) close() { o.o.Do(func() { close(o.ch) }) }
func (o *once) wait(t *testing.T, what string) {
	t.Helper()
	select {
	case <-o.ch:
	case <-time.After(faultWait):
		t.Fatalf("%s did not happen within %v", what, faultWait)
	}
}

// TestUpstreamFaults: each way an upstream can fail gives the client the
// status HTTPUpstream documents, or, once the reply has begun, a reply the
// client can tell is truncated; the client's connection stays usable, and
// the upstream's is closed rather than leaked.
func TestUpstreamFaults(t *testing.T) {
	// The proxy's header timeout: short, so that the test is quick, yet
	// far above the time a loopback upstream takes to answer.
	const timeout = 300 * time.Millisecond
	const bodyLen = 1 << 20
	chunk := strings.Repeat("x", 64<<10)

	type fault struct {
		name string
		// upstream starts the faulty upstream and returns its URL. gone,
		// when the fault needs it, is closed by the upstream once the
		// proxy has closed the connection to it; cut, closed by the test,
		// tells the upstream to fail mid-body.
		upstream func(t *testing.T, gone, cut *once) string
		status   int
		problem  bool   // the reply is a problem+json document
		body     string // a complete reply's body
		cut      bool   // the reply is cut mid-body: the test closes cut after reading readFirst bytes, and the rest must fail to read
		stop     bool   // the client stops reading after readFirst bytes and closes the body
		gone     bool   // the upstream must see its connection closed
		reused   bool   // the next request reuses the client's connection
	}
	const readFirst = 16 << 10
	faults := []fault{
		{
			name: "connection refused",
			upstream: func(t *testing.T, _, _ *once) string {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				ln.Close() // nothing listens there now
				return "http://" + ln.Addr().String()
			},
			status: http.StatusBadGateway, problem: true, reused: true,
		},
		{
			name: "reset before the reply",
			upstream: func(t *testing.T, _, _ *once) string {
				return rawUpstream(t, func(c net.Conn, br *bufio.Reader) {
					readRequest(br)
					c.(*net.TCPConn).SetLinger(0) // close with a TCP RST
				})
			},
			status: http.StatusBadGateway, problem: true, reused: true,
		},
		{
			name: "closed before the reply",
			upstream: func(t *testing.T, _, _ *once) string {
				return rawUpstream(t, func(c net.Conn, br *bufio.Reader) { readRequest(br) })
			},
			status: http.StatusBadGateway, problem: true, reused: true,
		},
		{
			name: "invalid HTTP",
			upstream: func(t *testing.T, _, _ *once) string {
				return rawUpstream(t, func(c net.Conn, br *bufio.Reader) {
					readRequest(br)
					io.WriteString(c, "HTTP/1.1 abc\r\n\r\n")
				})
			},
			status: http.StatusBadGateway, problem: true, reused: true,
		},
		{
			name: "TLS certificate not trusted",
			upstream: func(t *testing.T, _, _ *once) string {
				s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					t.Error("the proxy sent a request over an untrusted connection")
				}))
				s.Config.ErrorLog = log.New(io.Discard, "", 0) // the failed handshake is expected
				s.StartTLS()
				t.Cleanup(s.Close)
				return s.URL
			},
			status: http.StatusBadGateway, problem: true, reused: true,
		},
		{
			name: "slow header",
			upstream: func(t *testing.T, gone, _ *once) string {
				return rawUpstream(t, func(c net.Conn, br *bufio.Reader) {
					readRequest(br)
					io.Copy(io.Discard, br) // no reply; returns when the proxy hangs up
					gone.close()
				})
			},
			status: http.StatusGatewayTimeout, problem: true, gone: true, reused: true,
		},
		{
			// Timeout bounds the header only: a body slower than it is
			// relayed whole.
			name: "slow body",
			upstream: func(t *testing.T, _, _ *once) string {
				return rawUpstream(t, func(c net.Conn, br *bufio.Reader) {
					readRequest(br)
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n")
					for i := range 10 {
						time.Sleep(timeout / 5) // the body takes twice Timeout
						fmt.Fprint(c, i)
					}
					io.Copy(io.Discard, br) // keep the connection for the next request
				})
			},
			status: http.StatusOK, body: "0123456789", reused: true,
		},
		{
			name: "reset mid-body, with Content-Length",
			upstream: func(t *testing.T, gone, cut *once) string {
				return rawUpstream(t, func(c net.Conn, br *bufio.Reader) {
					readRequest(br)
					fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", bodyLen, chunk)
					<-cut.ch
					c.(*net.TCPConn).SetLinger(0)
				})
			},
			status: http.StatusOK, cut: true,
		},
		{
			// A chunked reply that just stopped would look complete to
			// the client if the gateway ended it with the last chunk.
			name: "reset mid-body, chunked",
			upstream: func(t *testing.T, gone, cut *once) string {
				return rawUpstream(t, func(c net.Conn, br *bufio.Reader) {
					readRequest(br)
					fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n", len(chunk), chunk)
					<-cut.ch
					c.(*net.TCPConn).SetLinger(0)
				})
			},
			status: http.StatusOK, cut: true,
		},
		{
			name: "closed mid-body, with Content-Length",
			upstream: func(t *testing.T, gone, cut *once) string {
				return rawUpstream(t, func(c net.Conn, br *bufio.Reader) {
					readRequest(br)
					fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", bodyLen, chunk)
					<-cut.ch
				})
			},
			status: http.StatusOK, cut: true,
		},
		{
			// A reply body is not bounded (event streams are endless too):
			// it flows while the client reads, and the upstream's
			// connection is closed when the client goes.
			name: "infinite body",
			upstream: func(t *testing.T, gone, _ *once) string {
				return rawUpstream(t, func(c net.Conn, br *bufio.Reader) {
					defer gone.close()
					readRequest(br)
					if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"); err != nil {
						return
					}
					frame := fmt.Sprintf("%x\r\n%s\r\n", len(chunk), chunk)
					for {
						if _, err := io.WriteString(c, frame); err != nil {
							return // the proxy hung up
						}
					}
				})
			},
			status: http.StatusOK, stop: true, gone: true,
		},
	}

	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			noLeaks(t)
			healthy := newBackend(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
			gone, cut := newOnce(), newOnce()
			t.Cleanup(cut.close) // before the upstream closes: release it
			target := f.upstream(t, gone, cut)
			gw := newGateway(t, gateway.Options{},
				gateway.Route{PathPrefix: "/fault", Handler: newProxy(t, proxy.HTTPConfig{Targets: []string{target}, Timeout: timeout})},
				gateway.Route{PathPrefix: "/ok", Handler: newProxy(t, proxy.HTTPConfig{Targets: []string{healthy.URL}})},
			)
			fc := newFaultClient(t)

			resp, conn, _ := fc.get(t, gw.URL+"/fault")
			if resp.StatusCode != f.status {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				t.Fatalf("status %d, want %d; body %q", resp.StatusCode, f.status, b)
			}
			switch {
			case f.cut, f.stop:
				first := make([]byte, readFirst)
				if _, err := io.ReadFull(resp.Body, first); err != nil {
					t.Fatalf("reading the reply's beginning: %v", err)
				}
				if f.stop {
					resp.Body.Close() // the client goes away mid-reply
					break
				}
				cut.close()
				n, err := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err == nil {
					t.Fatalf("a reply cut after %d bytes read as complete", readFirst+n)
				}
				if !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Logf("reading the cut reply: %v", err) // any error will do; this is the usual one
				}
			default:
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					t.Fatalf("reading the reply: %v", err)
				}
				if f.problem {
					checkProblem(t, resp, body, f.status)
				} else if string(body) != f.body {
					t.Fatalf("body %q, want %q", body, f.body)
				}
			}
			if f.gone {
				gone.wait(t, "closing the upstream connection")
			}

			// The client carries on, on the same connection when the
			// previous reply was complete.
			resp, conn2, reused := fc.get(t, gw.URL+"/ok")
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != 200 || string(body) != "ok" {
				t.Fatalf("the next request: %d %q %v", resp.StatusCode, body, err)
			}
			if f.reused && (!reused || conn2 != conn) {
				t.Errorf("the next request went on a new connection, want the first one reused")
			}
			if !f.reused && reused {
				t.Errorf("the next request reused the connection of a reply that was cut")
			}
		})
	}
}

// TestClientDisconnect: a client that hangs up in the middle of its request
// or of the reply has its upstream request cancelled: the upstream handler
// sees its context end.
func TestClientDisconnect(t *testing.T) {
	t.Run("mid-request", func(t *testing.T) {
		noLeaks(t)
		reached, cancelled := newOnce(), newOnce()
		var readErr error
		backend := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
			reached.close()
			_, readErr = io.Copy(io.Discard, r.Body)
			select {
			case <-r.Context().Done():
				cancelled.close()
			case <-time.After(faultWait):
			}
		})
		gw := proxyTo(t, proxy.HTTPConfig{Targets: []string{backend.URL}})

		c, err := net.Dial("tcp", gw.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// Headers and the first 1000 of 100000 bytes, then nothing.
		fmt.Fprintf(c, "POST /upload HTTP/1.1\r\nHost: gw\r\nContent-Length: 100000\r\n\r\n%s", strings.Repeat("x", 1000))
		reached.wait(t, "the upstream receiving the request")
		c.Close()
		cancelled.wait(t, "the upstream request's cancellation")
		if readErr == nil {
			t.Error("the upstream read a whole body the client never sent")
		}
	})

	t.Run("mid-response", func(t *testing.T) {
		noLeaks(t)
		cancelled := newOnce()
		backend := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
			tick := time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
			deadline := time.After(faultWait)
			for {
				io.WriteString(w, "data: tick\n\n")
				w.(http.Flusher).Flush()
				select {
				case <-r.Context().Done():
					cancelled.close()
					return
				case <-deadline:
					return
				case <-tick.C:
				}
			}
		})
		gw := proxyTo(t, proxy.HTTPConfig{Targets: []string{backend.URL}})
		fc := newFaultClient(t)
		resp, _, _ := fc.get(t, gw.URL+"/events")
		first := make([]byte, len("data: tick\n\n"))
		if _, err := io.ReadFull(resp.Body, first); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close() // unread reply: closes the connection
		cancelled.wait(t, "the upstream request's cancellation")
	})
}

// TestMalformedClientBody: a chunked request body that breaks off in a
// malformed chunk is the client's fault. The part before it has already
// streamed upstream (the proxy does not buffer), but the reply is 400, not
// the 502 the failed upstream call would otherwise give.
func TestMalformedClientBody(t *testing.T) {
	noLeaks(t)
	backend := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
	})
	gw := proxyTo(t, proxy.HTTPConfig{Targets: []string{backend.URL}})
	c, err := net.Dial("tcp", gw.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "POST /upload HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n")
	c.SetReadDeadline(time.Now().Add(faultWait))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Content-Type") != gateway.ProblemContentType {
		t.Fatalf("status %d %q, want 400 problem+json", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}
