package h1_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatekit/gatekit/proxy/h1"
)

// These tests come from a review of the transport; each failed before its
// fix.

// TestRetryWithEmptyGetBody: a retry whose GetBody gives http.NoBody still
// ends the chunked body its head announced, so the connection is not left
// waiting for chunks (and the next request read as one).
func TestRetryWithEmptyGetBody(t *testing.T) {
	var conns atomic.Int32
	got := make(chan string, 4)
	url := rawServer(t, func(c net.Conn, br *bufio.Reader) {
		if conns.Add(1) == 1 {
			readRequest(br)
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			readRequest(br)
			return // closed without a reply: the POST is retried
		}
		for {
			req, body, err := readRequest(br)
			if err != nil {
				got <- "error: " + err.Error()
				return
			}
			got <- req.Method + " " + string(body)
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	tr := newTransport(t, h1.Config{})
	do := func(method string, body io.ReadCloser) error {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, method, url, nil)
		if body != nil {
			req.Body, req.ContentLength = body, 0 // unknown length: chunked
			req.GetBody = func() (io.ReadCloser, error) { return http.NoBody, nil }
			req.Header.Set("Idempotency-Key", "k")
		}
		resp, err := tr.RoundTrip(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		return resp.Body.Close()
	}
	if err := do("GET", nil); err != nil {
		t.Fatal(err)
	}
	if err := do("POST", io.NopCloser(strings.NewReader(""))); err != nil {
		t.Fatalf("retried POST: %v", err)
	}
	if err := do("DELETE", nil); err != nil {
		t.Fatalf("the request after it: %v", err)
	}
	for _, want := range []string{"POST ", "DELETE "} {
		select {
		case s := <-got:
			if s != want {
				t.Fatalf("the upstream read %q, want %q", s, want)
			}
		case <-time.After(3 * time.Second):
			t.Fatalf("the upstream never read %q", want)
		}
	}
}

// TestBodyLongerThanContentLength is refused, as net/http refuses it, not
// cut short without a word.
func TestBodyLongerThanContentLength(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body) })
	tr := newTransport(t, h1.Config{})
	req, _ := http.NewRequest("POST", s.URL, strings.NewReader("hello world"))
	req.ContentLength = 5
	resp, err := tr.RoundTrip(req)
	if err == nil {
		resp.Body.Close()
		t.Fatal("a body longer than its ContentLength was sent")
	}
	if !strings.Contains(err.Error(), "ContentLength=5") {
		t.Fatalf("err %v", err)
	}
}

// TestManyInterimReplies: an upstream that sends 102 Processing while it
// works is relayed as long as a hook takes the replies.
func TestManyInterimReplies(t *testing.T) {
	url := rawServer(t, func(c net.Conn, br *bufio.Reader) {
		readRequest(br)
		for range 8 {
			io.WriteString(c, "HTTP/1.1 102 Processing\r\n\r\n")
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	})
	tr := newTransport(t, h1.Config{})
	var n int
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, _ textproto.MIMEHeader) error { n++; return nil }}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", url, nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || n != 8 {
		t.Fatalf("status %d after %d interim replies, want 200 after 8", resp.StatusCode, n)
	}
}

// TestInvalidTrailerRefusedBeforeSending: nothing reaches the upstream.
func TestInvalidTrailerRefusedBeforeSending(t *testing.T) {
	var reached atomic.Bool
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) { reached.Store(true) })
	tr := newTransport(t, h1.Config{})
	req, _ := http.NewRequest("POST", s.URL, opaque{strings.NewReader("x")})
	req.Trailer = http.Header{"X-T": {"a\r\nInjected: 1"}}
	if resp, err := tr.RoundTrip(req); err == nil {
		resp.Body.Close()
		t.Fatal("an invalid trailer value was sent")
	}
	if reached.Load() {
		t.Fatal("the request reached the upstream")
	}
}

// TestFramingFieldsInAnySpelling: a header map holding a non-canonical
// "transfer-encoding" or "content-length" does not get written beside the
// transport's own framing.
func TestFramingFieldsInAnySpelling(t *testing.T) {
	heads := make(chan string, 1)
	url := rawServer(t, func(c net.Conn, br *bufio.Reader) {
		tp := textproto.NewReader(br)
		tp.ReadLine()
		h, _ := tp.ReadMIMEHeader()
		heads <- fmt.Sprint(h["Transfer-Encoding"], h["Content-Length"])
		io.WriteString(c, "HTTP/1.1 204 No Content\r\n\r\n")
	})
	tr := newTransport(t, h1.Config{})
	req, _ := http.NewRequest("POST", url, strings.NewReader("hello"))
	req.Header["transfer-encoding"] = []string{"chunked"}
	req.Header["content-length"] = []string{"99"}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := <-heads; got != "[] [5]" {
		t.Fatalf("Transfer-Encoding and Content-Length on the wire: %s, want [] [5]", got)
	}
}
