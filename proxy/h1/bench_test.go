package h1_test

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatekit/gatekit/proxy/h1"
)

// reply1K is the benchmarks' reply body.
var reply1K = strings.Repeat("x", 1024)

func newBenchServer(tb testing.TB) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Type"] = []string{"text/plain"}
		w.Header()["Content-Length"] = []string{strconv.Itoa(len(reply1K))}
		io.WriteString(w, reply1K)
	}))
	tb.Cleanup(s.Close)
	return s
}

// transports are the two under comparison: h1 and net/http's tuned as
// proxy.HTTP tunes its own.
func transports(tb testing.TB) []struct {
	name string
	rt   http.RoundTripper
} {
	tr := h1.New(h1.Config{})
	tb.Cleanup(tr.CloseIdleConnections)
	std := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	tb.Cleanup(std.CloseIdleConnections)
	return []struct {
		name string
		rt   http.RoundTripper
	}{{"h1", tr}, {"net-http", std}}
}

func roundTrip(tb testing.TB, rt http.RoundTripper, req *http.Request, buf []byte) {
	resp, err := rt.RoundTrip(req)
	if err != nil {
		tb.Fatal(err)
	}
	n, err := io.ReadFull(resp.Body, buf)
	if err != nil || n != len(reply1K) {
		tb.Fatalf("read %d: %v", n, err)
	}
	if _, err := resp.Body.Read(buf[:1]); err != io.EOF {
		tb.Fatalf("reply longer than expected: %v", err)
	}
	resp.Body.Close()
}

// BenchmarkRoundTrip: a GET with a 1 KiB reply on a kept-alive connection,
// one at a time. Target for h1: at most 12 allocs/op (TestRoundTripAllocs).
func BenchmarkRoundTrip(b *testing.B) {
	s := newBenchServer(b)
	for _, tc := range transports(b) {
		b.Run(tc.name, func(b *testing.B) {
			req, _ := http.NewRequest("GET", s.URL+"/bench", nil)
			buf := make([]byte, len(reply1K))
			b.ReportAllocs()
			for b.Loop() {
				roundTrip(b, tc.rt, req, buf)
			}
		})
	}
}

// BenchmarkRoundTripParallel: the same from GOMAXPROCS goroutines at once.
func BenchmarkRoundTripParallel(b *testing.B) {
	s := newBenchServer(b)
	for _, tc := range transports(b) {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				req, _ := http.NewRequest("GET", s.URL+"/bench", nil)
				buf := make([]byte, len(reply1K))
				for pb.Next() {
					roundTrip(b, tc.rt, req, buf)
				}
			})
		})
	}
}

// TestRoundTripAllocs guards the client side's allocations per exchange
// (the server's are counted too, as they run in the same process, hence
// the margin).
func TestRoundTripAllocs(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("allocation counts are not stable under -race")
	}
	s := newBenchServer(t)
	tr := newTransport(t, h1.Config{})
	req, _ := http.NewRequest("GET", s.URL+"/bench", nil)
	buf := make([]byte, len(reply1K))
	roundTrip(t, tr, req, buf) // dial outside the count
	allocs := testing.AllocsPerRun(200, func() { roundTrip(t, tr, req, buf) })
	const limit = 30 // h1 ~10 + the httptest server's ~15; net/http's transport alone is ~20
	t.Logf("%.1f allocs per round trip, client and server", allocs)
	if allocs > limit {
		t.Errorf("%.1f allocs per round trip, want at most %d", allocs, limit)
	}
}
