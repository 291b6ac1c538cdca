package proxy_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sort"
	"sync"
	"testing"

	"github.com/gatekit/gatekit/gateway"
	"github.com/gatekit/gatekit/proxy"
)

// TestSubRequestsKeepTheClient checks that an aggregate's sub-request and a
// mirrored copy reach the backend as the client's, like the direct
// request: the client behind a trusted proxy keeps its X-Forwarded-For.
func TestSubRequestsKeepTheClient(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.URL.Path+" "+r.Header.Get("X-Forwarded-For"))
		mu.Unlock()
		io.WriteString(w, `{"a":1}`)
	}))
	defer backend.Close()
	up, err := proxy.HTTP(proxy.HTTPConfig{Targets: []string{backend.URL}})
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	agg, err := proxy.Aggregate(proxy.AggregateConfig{Backends: []proxy.AggregateBackend{{Name: "x", Upstream: up, Path: "/sub", Key: "x"}}})
	if err != nil {
		t.Fatal(err)
	}
	mirror, err := proxy.Mirror(proxy.MirrorConfig{Upstream: up, Percent: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer mirror.Close()
	for _, h := range []gateway.Handler{up, agg} {
		p := gateway.NewPipeline(h, mirror.Stage())
		p.Options.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
		r := httptest.NewRequest(http.MethodGet, "/direct", nil)
		r.RemoteAddr = "10.0.0.1:1234"
		r.Header.Set("X-Forwarded-For", "1.2.3.4")
		rec := httptest.NewRecorder()
		p.ServeHTTP(rec, r)
		if rec.Code != http.StatusOK {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		mirror.Wait()
	}
	mu.Lock()
	defer mu.Unlock()
	sort.Strings(seen)
	// direct, its mirror copy, the aggregate's sub-request, and the
	// mirror copy of the aggregate's request.
	want := []string{"/direct 1.2.3.4, 10.0.0.1", "/direct 1.2.3.4, 10.0.0.1", "/direct 1.2.3.4, 10.0.0.1", "/sub 1.2.3.4, 10.0.0.1"}
	if len(seen) != len(want) {
		t.Fatalf("backend saw %q, want %q", seen, want)
	}
	for i := range want {
		if seen[i] != want[i] {
			t.Fatalf("backend saw %q, want %q", seen, want)
		}
	}
}
