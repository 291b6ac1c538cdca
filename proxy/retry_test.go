package proxy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatekit/gatekit/gateway"
)

// retryBackend answers every request with status and counts them; a 200
// echoes the request body's SHA-256.
func retryBackend(t testing.TB, status int, hits *atomic.Int64) *httptest.Server {
	return lbBackend(t, "", func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		body, _ := io.ReadAll(r.Body)
		w.WriteHeader(status)
		fmt.Fprintf(w, "%x", sha256.Sum256(body))
	})
}

func retryDownURL(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return "http://" + ln.Addr().String()
}

// TestRetryMethodsAndBodies: which requests are retried on a 503, by
// method and body; the first target always answers 503, the second 200.
func TestRetryMethodsAndBodies(t *testing.T) {
	payload := bytes.Repeat([]byte("payload;"), 1000)
	sum := fmt.Sprintf("%x", sha256.Sum256(payload))
	empty := fmt.Sprintf("%x", sha256.Sum256(nil))
	tests := []struct {
		name          string
		method        string
		body          []byte
		buffered      bool // a stage called Request.Body
		nonIdempotent bool
		retried       bool
	}{
		{name: "GET", method: "GET", retried: true},
		{name: "HEAD", method: "HEAD", retried: true},
		{name: "PUT, buffered body", method: "PUT", body: payload, buffered: true, retried: true},
		{name: "DELETE", method: "DELETE", retried: true},
		{name: "POST is not retried", method: "POST", body: payload, buffered: true},
		{name: "PATCH is not retried", method: "PATCH", body: payload, buffered: true},
		{name: "POST with NonIdempotent, buffered body", method: "POST", body: payload, buffered: true, nonIdempotent: true, retried: true},
		{name: "POST with NonIdempotent, empty body", method: "POST", nonIdempotent: true, retried: true},
		{name: "PUT, streamed body: cannot be sent again", method: "PUT", body: payload},
		{name: "POST with NonIdempotent, streamed body", method: "POST", body: payload, nonIdempotent: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var busyHits, okHits atomic.Int64
			busy := retryBackend(t, http.StatusServiceUnavailable, &busyHits)
			ok := retryBackend(t, http.StatusOK, &okHits)
			u := lbUpstream(t, HTTPConfig{
				Targets: []string{busy.URL, ok.URL},
				Retry:   &RetryPolicy{Attempts: 3, NonIdempotent: tc.nonIdempotent, Backoff: -1, Budget: -1},
			})
			var body io.Reader
			if tc.body != nil {
				body = io.MultiReader(bytes.NewReader(tc.body)) // hides the type: a stream
			}
			req := gateway.NewRequest(httptest.NewRequest(tc.method, "/", body))
			if tc.buffered {
				if _, err := req.Body(); err != nil {
					t.Fatal(err)
				}
			}
			r := lbServe(t, u, req)
			wantStatus, wantOK := http.StatusServiceUnavailable, int64(0)
			if tc.retried {
				wantStatus, wantOK = http.StatusOK, 1
			}
			if r.status != wantStatus || busyHits.Load() != 1 || okHits.Load() != wantOK {
				t.Fatalf("status %d after %d+%d tries, want %d after 1+%d", r.status, busyHits.Load(), okHits.Load(), wantStatus, wantOK)
			}
			if tc.retried && tc.method != "HEAD" {
				want := empty
				if tc.body != nil {
					want = sum
				}
				if r.body != want {
					t.Errorf("the retried body arrived as %s, want %s", r.body, want)
				}
			}
		})
	}
}

// TestRetryConnectFailure: a target that refuses the connection got
// nothing, so even a POST with a streamed body goes to the next one.
func TestRetryConnectFailure(t *testing.T) {
	var hits atomic.Int64
	ok := retryBackend(t, http.StatusOK, &hits)
	payload := strings.Repeat("x", 100<<10)
	u := lbUpstream(t, HTTPConfig{Targets: []string{retryDownURL(t), ok.URL}, Retry: &RetryPolicy{Backoff: -1}})
	r := lbDo(t, u, httptest.NewRequest("POST", "/", io.MultiReader(strings.NewReader(payload))))
	if want := fmt.Sprintf("%x", sha256.Sum256([]byte(payload))); r.status != 200 || r.body != want {
		t.Errorf("reply %d %s, want 200 with the body intact", r.status, r.body)
	}

	// Without a retry policy the failure is the client's 502.
	u = lbUpstream(t, HTTPConfig{Targets: []string{retryDownURL(t), ok.URL}})
	if r := lbGet(t, u); r.status != http.StatusBadGateway {
		t.Errorf("without retries: %d, want 502", r.status)
	}
}

// TestRetryStatuses: only the statuses in On are retried, and retries stop
// after Attempts.
func TestRetryStatuses(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		on       []int
		attempts int
		tries    int64
	}{
		{"503 by default", 503, nil, 3, 3},
		{"500 not by default", 500, nil, 3, 1},
		{"429 when asked", 429, []int{429}, 4, 4},
		{"default attempts: one retry", 502, nil, 0, 2},
		{"Attempts 1: none", 502, nil, 1, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var hits atomic.Int64
			b := retryBackend(t, tc.status, &hits)
			u := lbUpstream(t, HTTPConfig{Targets: []string{b.URL}, Retry: &RetryPolicy{Attempts: tc.attempts, On: tc.on, Backoff: -1, Budget: -1}})
			if r := lbGet(t, u); r.status != tc.status {
				t.Errorf("status %d, want the last reply's %d", r.status, tc.status)
			}
			if n := hits.Load(); n != tc.tries {
				t.Errorf("%d tries, want %d", n, tc.tries)
			}
		})
	}
}

// TestRetryBudget: against a backend that always fails, retries stay within
// the budget's share of requests.
func TestRetryBudget(t *testing.T) {
	const requests = 1000
	tests := []struct {
		name   string
		budget float64
		minPS  int
	}{
		{"10%, no floor", 0.1, -1},
		{"10% and 5 a second", 0.1, 5},
		{"20%, no floor", 0.2, -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var hits atomic.Int64
			b := retryBackend(t, http.StatusServiceUnavailable, &hits)
			u := lbUpstream(t, HTTPConfig{Targets: []string{b.URL}, Retry: &RetryPolicy{
				Attempts: 3, Backoff: -1, Budget: tc.budget, MinPerSecond: tc.minPS,
			}})
			start := time.Now()
			for range requests {
				lbGet(t, u)
			}
			elapsed := time.Since(start)
			retries := hits.Load() - requests
			want := int64(tc.budget * requests)
			extra := int64(0)
			if tc.minPS > 0 {
				// The floor's burst, and what it refills meanwhile.
				extra = int64(tc.minPS) + int64(float64(tc.minPS)*elapsed.Seconds()) + 1
			}
			if retries < want-1 || retries > want+extra {
				t.Errorf("%d retries for %d requests, want %d (+ up to %d from the floor)", retries, requests, want, extra)
			}
		})
	}
	t.Run("no budget", func(t *testing.T) {
		var hits atomic.Int64
		b := retryBackend(t, http.StatusServiceUnavailable, &hits)
		u := lbUpstream(t, HTTPConfig{Targets: []string{b.URL}, Retry: &RetryPolicy{Attempts: 3, Backoff: -1, Budget: -1}})
		for range 100 {
			lbGet(t, u)
		}
		if n := hits.Load(); n != 300 {
			t.Errorf("%d tries, want 300", n)
		}
	})
}

func TestRetryBudgetCap(t *testing.T) {
	b := &retryBudget{deposit: retryToken / 2, max: retryBudgetMax * retryToken}
	for range 10_000 {
		b.onRequest()
	}
	n := 0
	for b.withdraw() {
		n++
	}
	if n != retryBudgetMax {
		t.Errorf("%d retries banked, want the cap of %d", n, retryBudgetMax)
	}
}

func TestRetryBackoffGrows(t *testing.T) {
	const base, ceiling = 25 * time.Millisecond, time.Second
	want := []time.Duration{25, 50, 100, 200, 400, 800, 1000, 1000}
	for i, w := range want {
		if got := retryCeiling(base, ceiling, i+1); got != w*time.Millisecond {
			t.Errorf("retry %d: ceiling %v, want %v", i+1, got, w*time.Millisecond)
		}
	}
	// Full jitter: uniform below the ceiling, so the mean doubles.
	prev := time.Duration(0)
	for n := 1; n <= 5; n++ {
		var sum time.Duration
		for i := range uint64(10_000) {
			d := retryBackoff(base, ceiling, n, i*0x9e3779b97f4a7c15)
			if d < 0 || d > retryCeiling(base, ceiling, n) {
				t.Fatalf("retry %d waits %v, outside [0, %v]", n, d, retryCeiling(base, ceiling, n))
			}
			sum += d
		}
		mean := sum / 10_000
		if mean <= prev*3/2 {
			t.Errorf("retry %d: mean wait %v, not well above the previous %v", n, mean, prev)
		}
		prev = mean
	}
	if d := retryBackoff(0, ceiling, 3, 12345); d != 0 {
		t.Errorf("no backoff: waits %v", d)
	}
}

// TestRetryWaitsBackoff: a retry really waits, on the real clock.
func TestRetryWaitsBackoff(t *testing.T) {
	var hits atomic.Int64
	b := retryBackend(t, http.StatusServiceUnavailable, &hits)
	// Backoff equal to MaxBackoff: retry n waits a random time up to 40ms.
	u := lbUpstream(t, HTTPConfig{Targets: []string{b.URL}, Retry: &RetryPolicy{Attempts: 2, Backoff: 40 * time.Millisecond, MaxBackoff: 40 * time.Millisecond, Budget: -1}})
	start := time.Now()
	for range 20 {
		lbGet(t, u)
	}
	// 20 waits of mean 20ms: well over 100ms unless the backoff is skipped.
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Errorf("20 retried requests took %v: no backoff?", d)
	}
}

// TestRetryNeverAfterBodyStarted: a reply that failed mid-body was already
// on its way to the client; it is not retried.
func TestRetryNeverAfterBodyStarted(t *testing.T) {
	var hits atomic.Int64
	b := lbBackend(t, "", func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Length", "100")
		io.WriteString(w, "partial")
		w.(http.Flusher).Flush()
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	})
	u := lbUpstream(t, HTTPConfig{Targets: []string{b.URL}, Retry: &RetryPolicy{Attempts: 5, Backoff: -1, Budget: -1}})
	r := lbGet(t, u)
	if r.status != 200 || r.err == nil || !strings.HasPrefix(r.body, "partial") {
		t.Errorf("reply %d %q (%v), want 200 cut short", r.status, r.body, r.err)
	}
	if n := hits.Load(); n != 1 {
		t.Errorf("%d tries, want 1", n)
	}
}

// TestTotalTimeout bounds all attempts together.
func TestTotalTimeout(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	var hits atomic.Int64
	slow := lbBackend(t, "", func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	u := lbUpstream(t, HTTPConfig{
		Targets:      []string{slow.URL},
		Timeout:      40 * time.Millisecond,
		TotalTimeout: 100 * time.Millisecond,
		Retry:        &RetryPolicy{Attempts: 100, Backoff: -1, Budget: -1},
	})
	start := time.Now()
	r := lbGet(t, u)
	if r.status != http.StatusGatewayTimeout {
		t.Errorf("status %d, want 504", r.status)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
	if n := hits.Load(); n < 1 || n > 10 {
		t.Errorf("%d attempts in 100ms of 40ms each", n)
	}

	// A reply in time streams its body past TotalTimeout.
	b := lbBackend(t, "", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "begin,")
		w.(http.Flusher).Flush()
		time.Sleep(150 * time.Millisecond)
		io.WriteString(w, "end")
	})
	u = lbUpstream(t, HTTPConfig{Targets: []string{b.URL}, TotalTimeout: 100 * time.Millisecond})
	if r := lbGet(t, u); r.status != 200 || r.body != "begin,end" {
		t.Errorf("reply %d %q (%v)", r.status, r.body, r.err)
	}
}

// TestRetryClientGone: no retry for a client that has left.
func TestRetryClientGone(t *testing.T) {
	var hits atomic.Int64
	b := retryBackend(t, http.StatusServiceUnavailable, &hits)
	u := lbUpstream(t, HTTPConfig{Targets: []string{b.URL}, Retry: &RetryPolicy{Attempts: 5, Backoff: time.Hour, MaxBackoff: time.Hour, Budget: -1}})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	r := lbDo(t, u, httptest.NewRequest("GET", "/", nil).WithContext(ctx))
	if r.status != http.StatusServiceUnavailable {
		t.Errorf("status %d, want the last reply's 503", r.status)
	}
	if hits.Load() > 2 {
		t.Errorf("%d tries", hits.Load())
	}
}

func TestRetryConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  HTTPConfig
		want string
	}{
		{"negative attempts", HTTPConfig{Targets: []string{"http://a"}, Retry: &RetryPolicy{Attempts: -1}}, "Retry.Attempts"},
		{"bad status", HTTPConfig{Targets: []string{"http://a"}, Retry: &RetryPolicy{On: []int{503, 42}}}, "Retry.On[1]"},
		{"negative total", HTTPConfig{Targets: []string{"http://a"}, TotalTimeout: -1}, "TotalTimeout"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u, err := HTTP(tc.cfg)
			if err == nil {
				u.Close()
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to contain %q", err, tc.want)
			}
		})
	}
}
