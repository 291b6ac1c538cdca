package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// syncBuffer collects the log, which requests write concurrently.
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

// shape is the JSON document a reply must be, whichever upstream serves it.
type shape int

const (
	none     shape = iota
	one            // an account
	list           // {"items": [account...]}
	notFound       // {"error", "id"}
)

// TestMockFirst runs the example as `go run` would and tries the curl
// commands it documents, in their order: the mocks, the switch to the
// service, the service, the switch back.
func TestMockFirst(t *testing.T) {
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
		name, method, path string
		wantStatus         int
		wantShape          shape // in either phase
		wantBody           []string
		wantServedBy       string
		slow               bool // the mock's latency applies
	}{
		{"mock account", "GET", "/api/accounts/42", 200, one,
			[]string{`"id": "42"`, `"owner": "Mock Owner 42"`}, "mock", true},
		{"mock list", "GET", "/api/accounts?currency=USD", 200, list,
			[]string{`"currency": "USD"`, `"owner": "Mock Owner 2"`}, "mock", true},
		{"mock 404", "GET", "/api/accounts/missing", 404, notFound,
			[]string{`"error": "no such account"`, `"id": "missing"`}, "mock", false},
		{"mock escapes", "GET", "/api/accounts?currency=%22%7D", 200, list,
			[]string{`"currency": "\"}"`}, "mock", true},
		{"mock escapes path", "GET", "/api/accounts/%22%3Cx%3E", 200, one,
			[]string{`"id": "\"\u003cx\u003e"`}, "mock", true},
		{"switch", "POST", "/admin/switch", 200, none,
			[]string{`{"serving":"backend"}`}, "", false},
		{"service account", "GET", "/api/accounts/1", 200, one,
			[]string{`"owner":"Ada Lovelace"`}, "accounts-service", false},
		{"service list", "GET", "/api/accounts?currency=USD", 200, list,
			[]string{`"owner":"Grace Hopper"`}, "accounts-service", false},
		{"service 404", "GET", "/api/accounts/missing", 404, notFound,
			[]string{`"error":"no such account"`, `"id":"missing"`}, "accounts-service", false},
		{"bad switch", "POST", "/admin/switch?to=nowhere", 400, none,
			[]string{`"status":400`}, "", false},
		{"still the service", "GET", "/api/accounts/1", 200, one,
			[]string{`"owner":"Ada Lovelace"`}, "accounts-service", false},
		{"switch back", "POST", "/admin/switch?to=mock", 200, none,
			[]string{`{"serving":"mock"}`}, "", false},
		{"mock again", "GET", "/api/accounts/1", 200, one,
			[]string{`"owner": "Mock Owner 1"`}, "mock", true},
		{"no such method", "DELETE", "/api/accounts/1", 405, none,
			[]string{`"status":405`}, "", false},
	}
	for _, tc := range tests {
		// Not t.Run subtests: the steps depend on each other's order.
		req, err := http.NewRequest(tc.method, base+tc.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		elapsed := time.Since(start)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if resp.StatusCode != tc.wantStatus {
			t.Fatalf("%s: status %d, want %d; body %q", tc.name, resp.StatusCode, tc.wantStatus, b)
		}
		for _, want := range tc.wantBody {
			if !bytes.Contains(b, []byte(want)) {
				t.Errorf("%s: body %q does not contain %q", tc.name, b, want)
			}
		}
		if got := resp.Header.Get("X-Served-By"); got != tc.wantServedBy {
			t.Errorf("%s: X-Served-By = %q, want %q", tc.name, got, tc.wantServedBy)
		}
		if tc.wantShape != none {
			if got := resp.Header.Get("Content-Type"); got != "application/json" {
				t.Errorf("%s: Content-Type = %q", tc.name, got)
			}
			checkShape(t, tc.name, b, tc.wantShape)
		}
		// Only a lower bound: a loaded machine may be slower, never faster.
		if tc.slow && elapsed < mockLatency {
			t.Errorf("%s: answered in %v, before the mock's latency %v", tc.name, elapsed, mockLatency)
		}
	}

	client.CloseIdleConnections()
	cancel()
	if err := <-errc; err != nil {
		t.Errorf("run: %v", err)
	}
	if !strings.Contains(out.String(), "curl -i -X POST "+base+"/admin/switch") {
		t.Errorf("printed commands:\n%s", out.String())
	}
	for _, want := range []string{"upstream.0.kind=mock", "upstream.0.kind=http", `msg="route table replaced" phase=backend`, "phase=mock"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
}

// checkShape fails unless b is exactly the JSON the API specifies, with no
// field missing or extra, so the client cannot tell the mock from the service.
func checkShape(t *testing.T, name string, b []byte, want shape) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var err error
	switch want {
	case list:
		var v struct{ Items []account }
		if err = dec.Decode(&v); err == nil && len(v.Items) == 0 {
			t.Errorf("%s: no items in %s", name, b)
		}
		for _, a := range v.Items {
			checkAccount(t, name, a)
		}
	case notFound:
		var v struct{ Error, ID string }
		if err = dec.Decode(&v); err == nil && (v.Error == "" || v.ID == "") {
			t.Errorf("%s: incomplete error %s", name, b)
		}
	default:
		var a account
		if err = dec.Decode(&a); err == nil {
			checkAccount(t, name, a)
		}
	}
	if err != nil {
		t.Errorf("%s: reply %s is not the API's JSON: %v", name, b, err)
	}
}

func checkAccount(t *testing.T, name string, a account) {
	t.Helper()
	if a.ID == "" || a.Owner == "" || a.Currency == "" || a.Balance == "" {
		t.Errorf("%s: incomplete account %+v", name, a)
	}
}
