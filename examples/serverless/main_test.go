package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

// syncBuffer collects the access log, which requests write concurrently.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestServerless runs the example as `go run` would and tries the curl
// commands it documents.
func TestServerless(t *testing.T) {
	defer goleak.VerifyNone(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var out, logs syncBuffer
	errc := make(chan error, 1)
	go func() { errc <- run(ctx, ln, &out, &logs) }()
	base := "http://" + ln.Addr().String()
	client := &http.Client{Transport: &http.Transport{}}

	tests := []struct {
		name, method, path, cookie, body string
		wantStatus                       int
		wantBody                         []string
		wantHeader                       map[string][]string
	}{
		{
			name: "v2 path and query", method: "GET", path: "/hello/ada?greeting=hi",
			wantStatus: 200,
			wantBody:   []string{`"message":"hi, ada"`, `"visits":1`, `"routeKey":"GET /hello/{name}"`, `"requestId":"`},
			wantHeader: map[string][]string{"Content-Type": {"application/json"}, "Set-Cookie": {"visits=1; Path=/; HttpOnly"}},
		},
		{
			name: "v2 cookie in", method: "GET", path: "/hello/ada", cookie: "visits=41",
			wantStatus: 200,
			wantBody:   []string{`"message":"hello, ada"`, `"visits":42`},
			wantHeader: map[string][]string{"Set-Cookie": {"visits=42; Path=/; HttpOnly"}},
		},
		{
			name: "v1 order created", method: "POST", path: "/orders", body: `{"item":"book","quantity":2}`,
			wantStatus: 201,
			wantBody:   []string{`"id":"ord-1"`, `"item":"book"`, `"quantity":2`, `"status":"accepted"`},
			wantHeader: map[string][]string{
				"Content-Type": {"application/json"},
				"Location":     {"/orders/ord-1"},
				"Set-Cookie":   {"last_order=ord-1; Path=/; HttpOnly", "cart=; Path=/; Max-Age=0"},
			},
		},
		{
			name: "v1 bad body", method: "POST", path: "/orders", body: "not json",
			wantStatus: 400,
			wantBody:   []string{`{"error":"body must be a JSON object"}`},
			wantHeader: map[string][]string{"Content-Type": {"application/json"}},
		},
		{
			name: "binary", method: "GET", path: "/logo.png",
			wantStatus: 200,
			wantBody:   []string{"\x89PNG\r\n\x1a\n"},
			wantHeader: map[string][]string{"Content-Type": {"image/png"}},
		},
		{
			name: "readiness", method: "GET", path: "/readyz",
			wantStatus: 200,
			wantBody:   []string{`"status":"ready"`},
		},
		{
			name: "no route", method: "GET", path: "/nope",
			wantStatus: 404,
			wantHeader: map[string][]string{"Content-Type": {"application/problem+json"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, base+tc.path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if tc.cookie != "" {
				req.Header.Set("Cookie", tc.cookie)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d; body %q", resp.StatusCode, tc.wantStatus, b)
			}
			for _, want := range tc.wantBody {
				if !bytes.Contains(b, []byte(want)) {
					t.Errorf("body %q does not contain %q", b, want)
				}
			}
			for name, want := range tc.wantHeader {
				if got := resp.Header.Values(name); strings.Join(got, "\n") != strings.Join(want, "\n") {
					t.Errorf("%s = %q, want %q", name, got, want)
				}
			}
		})
	}

	client.CloseIdleConnections()
	cancel()
	if err := <-errc; err != nil {
		t.Errorf("run: %v", err)
	}
	// The curl commands printed are the documented ones, and every request
	// through the route table left an access-log line.
	if !strings.Contains(out.String(), "curl -i '"+base+"/hello/ada?greeting=hi'") {
		t.Errorf("printed commands:\n%s", out.String())
	}
	for _, want := range []string{"route=hello", "route=orders", "status=201", "route=logo", "upstream.0.kind=lambda", "status=404"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("access log lacks %q:\n%s", want, logs.String())
		}
	}
}
