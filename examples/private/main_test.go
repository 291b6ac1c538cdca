package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestPrivate runs the example as `go run` would and tries the curl
// commands it prints.
func TestPrivate(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, ln, pw)
		pw.Close()
	}()
	defer func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("run: %v", err)
		}
	}()

	// The banner names the payments backend's port; read up to its last
	// line, then keep draining the log so that run never blocks on it.
	var paymentsAddr string
	out := bufio.NewScanner(pr)
	for out.Scan() {
		line := out.Text()
		if a, ok := strings.CutPrefix(strings.TrimSpace(line), "payments on https://"); ok {
			paymentsAddr, _, _ = strings.Cut(a, " ")
		}
		if strings.HasPrefix(line, "Ctrl-C") {
			break
		}
	}
	go io.Copy(io.Discard, pr)
	if paymentsAddr == "" {
		t.Fatal("the banner does not name the payments backend")
	}
	gw := ln.Addr().String()
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()

	tests := []struct {
		name, path, host string
		wantBody         []string
	}{
		{"ledger over the unix socket", "/ledger/entries/7", "",
			[]string{`"service":"ledger"`, `"via":"unix socket"`, `"host":"ledger"`, `"uri":"/entries/7"`}},
		{"payments over mutual TLS", "/payments/charges/ch_1", "",
			[]string{`"service":"payments"`, `"client_cert":"gatekit-gateway"`, `"sni":"payments.internal"`, `"uri":"/charges/ch_1"`}},
		{"a Host field does not steer", "/ledger/entries/7", "payments.internal",
			[]string{`"service":"ledger"`, `"host":"ledger"`, `"uri":"/entries/7"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", "http://"+gw+tc.path, nil)
			req.Host = tc.host
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("got %d %s, want 200", resp.StatusCode, b)
			}
			for _, want := range tc.wantBody {
				if !strings.Contains(string(b), want) {
					t.Errorf("body %s lacks %s", b, want)
				}
			}
			if resp.Header.Get("X-Request-Id") == "" {
				t.Error("no X-Request-Id")
			}
		})
	}

	// What curl sends for --request-target and for -p -x (a proxy tunnel).
	rawTests := []struct {
		name, request string
		wantStatus    int
		wantBody      string
	}{
		{"an absolute-form target does not steer",
			"GET http://evil.example:6379/ledger/x HTTP/1.1\r\nHost: evil.example:6379\r\nConnection: close\r\n\r\n",
			http.StatusOK, `"uri":"/x","via":"unix socket"`},
		{"no CONNECT tunnel",
			"CONNECT 127.0.0.1:6379 HTTP/1.1\r\nHost: 127.0.0.1:6379\r\n\r\n",
			http.StatusNotFound, `"status":404`},
	}
	for _, tc := range rawTests {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", gw)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			fmt.Fprint(conn, tc.request)
			resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: "GET"})
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.wantStatus || !strings.Contains(string(b), tc.wantBody) {
				t.Fatalf("got %d %s, want %d containing %s", resp.StatusCode, b, tc.wantStatus, tc.wantBody)
			}
		})
	}

	t.Run("payments refuses a client without a certificate", func(t *testing.T) {
		tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} // as curl -k
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr}).Get("https://" + paymentsAddr + "/charges/ch_1")
		if err == nil {
			resp.Body.Close()
			t.Fatalf("got %d, want a TLS alert", resp.StatusCode)
		}
		// crypto/tls reports a received alert with an unexported type, so
		// only its text tells which alert it was.
		if !strings.Contains(err.Error(), "certificate required") {
			t.Errorf("got %v, want the TLS alert certificate_required", err)
		}
	})
}
