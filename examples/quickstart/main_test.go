package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

// TestQuickstart runs the example as `go run` would and tries the curl
// commands it prints.
func TestQuickstart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- run(ctx, ln, io.Discard) }()
	defer func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	base := "http://" + ln.Addr().String()
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()

	tests := []struct {
		method, path, key, body string
		wantStatus              int
		wantBody                string
		wantType                string
	}{
		{"GET", "/api/users/1", "", "", 200, `"name":"Ada Lovelace"`, "application/json"},
		{"GET", "/api/users/99", "", "", 404, `no such user`, "application/json"},
		{"GET", "/hello/ada", "", "", 200, `hello, ada`, "application/json"},
		{"POST", "/api/echo", "demo", `{"a":1}`, 200, `{"a":1}`, ""},
		{"POST", "/api/echo", "", `{"a":1}`, 401, `"status":401`, "application/problem+json"},
		{"POST", "/api/echo", "demo", strings.Repeat("x", 2048), 413, `"status":413`, "application/problem+json"},
		{"DELETE", "/api/users/1", "", "", 405, `"status":405`, "application/problem+json"},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, base+tc.path, strings.NewReader(tc.body))
			if tc.key != "" {
				req.Header.Set("X-Api-Key", tc.key)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.wantStatus || !strings.Contains(string(b), tc.wantBody) {
				t.Fatalf("got %d %q, want %d containing %q", resp.StatusCode, b, tc.wantStatus, tc.wantBody)
			}
			if tc.wantType != "" && resp.Header.Get("Content-Type") != tc.wantType {
				t.Errorf("Content-Type = %q, want %q", resp.Header.Get("Content-Type"), tc.wantType)
			}
		})
	}

	t.Run("events stream", func(t *testing.T) {
		resp, err := client.Get(base + "/api/events")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		line, err := bufio.NewReader(resp.Body).ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "data: tick 1") {
			t.Fatalf("first event %q, %v", line, err)
		}
	})
}
