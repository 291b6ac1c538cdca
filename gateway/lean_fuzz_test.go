package gateway_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatekit/gatekit/gateway"
)

// fuzzHandler answers by path, so that inputs reach the framing choices of
// the reply: /big writes 3000 bytes (chunked), /flush flushes, /panic
// panics, /ignore leaves the body unread; anything else reads the body and
// echoes its length.
func fuzzHandler(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/big":
		io.WriteString(w, body3000)
	case "/flush":
		io.WriteString(w, "a")
		w.(http.Flusher).Flush()
		io.WriteString(w, "b")
	case "/panic":
		panic("fuzz")
	case "/ignore":
		io.WriteString(w, "ignored")
	default:
		b, err := io.ReadAll(r.Body)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
		}
		fmt.Fprint(w, len(b))
	}
}

// FuzzLeanServer sends each input on a fresh connection to a lean Server
// and a net/http-based one, and compares the status of each reply, in
// order, and whether each server closed the connection. The deliberate
// differences of TestLeanMatchesNetHTTP (an empty Host, an absolute-form
// target without Host) end the comparison where they occur.
func FuzzLeanServer(f *testing.F) {
	needNetHTTP(f)
	for _, seed := range []string{
		get,
		get + head + get2,
		post("hello") + get2,
		post("hello") + "\r\n" + get2,
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n" + get2,
		"POST /ignore HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello" + get2,
		"GET /big HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /flush HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /panic HTTP/1.1\r\nHost: a\r\n\r\n" + get2,
		"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n" + get2,
		"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\nGET http://x/y HTTP/1.1\r\nHost: b\r\n\r\n",
		"GET / HTTP/1.1\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + get2,
		"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
		"GET / HTTP/2.0\r\nHost: a\r\n\r\n",
		"GET /\r\n\r\n",
	} {
		f.Add([]byte(seed))
	}
	// Both servers serve every input of this worker; each input gets its
	// own connections.
	var addrs [2]string
	for i, lean := range []bool{false, true} {
		addrs[i] = serveTB(f, &gateway.Server{
			Handler:         http.HandlerFunc(fuzzHandler),
			Logger:          quietLogger(),
			LeanHTTP1:       lean,
			ShutdownTimeout: 5 * time.Second,
		})
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if len(raw) > 256<<10 {
			t.Skip() // beyond every limit of interest; keeps each exchange short
		}
		var got engines
		var wg sync.WaitGroup
		// A second without a reply ends the wait; a head left incomplete
		// keeps both servers waiting (ReadHeaderTimeout is 10s), alike.
		wg.Go(func() { got.net = rawExchange(t, addrs[0], string(raw), time.Second) })
		wg.Go(func() { got.lean = rawExchange(t, addrs[1], string(raw), time.Second) })
		wg.Wait()

		ns, ls := got.net.statuses(), got.lean.statuses()
		for i := range min(len(ns), len(ls)) {
			if ns[i] == ls[i] {
				continue
			}
			if why := deliberateDifference(raw, ns[:i], ns[i], ls[i]); why != "" {
				return // the connections go separate ways from here
			}
			t.Fatalf("reply %d: net/http %d, lean %d\nrequest %q\nnet/http:\n%v\nlean:\n%v", i, ns[i], ls[i], raw, got.net, got.lean)
		}
		if !slices.Equal(ns, ls) || got.net.Closed != got.lean.Closed {
			t.Fatalf("net/http: %v closed %v; lean: %v closed %v\nrequest %q\nnet/http:\n%v\nlean:\n%v",
				ns, got.net.Closed, ls, got.lean.Closed, raw, got.net, got.lean)
		}
	})
}

// deliberateDifference says which documented difference explains the
// servers' answering a request with netStatus and leanStatus after the
// replies before, or "" if none does.
func deliberateDifference(raw []byte, before []int, netStatus, leanStatus int) string {
	n := 0 // the request answered: final replies before this one
	for _, s := range before {
		if s >= 200 {
			n++
		}
	}
	br := bufio.NewReader(bytes.NewReader(raw))
	var req *http.Request
	for i := 0; i <= n; i++ {
		if i > 0 {
			// net/http tolerates a CRLF after a POST body (RFC 9112 §2.2).
			for {
				b, err := br.Peek(1)
				if err != nil || (b[0] != '\r' && b[0] != '\n') || req.Method != "POST" {
					break
				}
				br.Discard(1)
			}
		}
		var err error
		if req, err = http.ReadRequest(br); err != nil {
			return ""
		}
		if _, err := io.Copy(io.Discard, req.Body); err != nil && i < n {
			return ""
		}
	}
	switch {
	case !req.ProtoAtLeast(1, 1) || req.ProtoMajor != 1:
		return ""
	case req.Host == "" && leanStatus == http.StatusBadRequest:
		return "an empty Host (RFC 9110 §4.2.1): lean refuses"
	case req.URL.Host != "" && strings.Contains(req.RequestURI, "://") && netStatus == http.StatusBadRequest:
		// http.ReadRequest takes the Host field out of the header, so a
		// Host field that was absent cannot be told from one that named
		// the same host; net/http refuses only the former.
		return "an absolute-form target without Host: lean accepts"
	}
	return ""
}
