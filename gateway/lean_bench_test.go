package gateway_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/gatekit/gatekit/gateway"
)

// BenchmarkServer measures a Server's cost per keep-alive request, over
// loopback, on net/http's connection loop and on the lean one: a GET
// answered with 1 KiB and its Content-Length, as a proxied reply is. The client is a raw connection (one request
// written, one reply read per iteration), the same for both, so the
// difference between the two is the server's.
func BenchmarkServer(b *testing.B) {
	body := strings.Repeat("x", 1024)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "1024")
		io.WriteString(w, body)
	})
	for _, tc := range []struct {
		name string
		lean bool
	}{{"net-http", false}, {"lean", true}} {
		b.Run(tc.name, func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			srv := &gateway.Server{Handler: h, LeanHTTP1: tc.lean, Logger: quietLogger()}
			go func() { done <- srv.Serve(ctx, ln) }()
			defer func() {
				cancel()
				<-done
			}()
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			br := bufio.NewReader(c)
			req := []byte("GET /orders/123 HTTP/1.1\r\nHost: bench\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Write(req); err != nil {
					b.Fatal(err)
				}
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.Copy(io.Discard, resp.Body); err != nil {
					b.Fatal(err)
				}
				resp.Body.Close()
			}
		})
	}
}
