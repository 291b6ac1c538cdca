package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/gatekit/gatekit/gateway"
	"github.com/gatekit/gatekit/gateway/metrics"
)

// ended is an Observer placed before the Metrics in Options.Observers:
// observers end in reverse order, so it learns that Metrics.End has run
// for a request, which the client's reading the reply does not tell.
type ended chan struct{}

func (e ended) Begin(ctx context.Context, _ *gateway.Request) context.Context { return ctx }
func (e ended) End(context.Context, *gateway.Request, *gateway.Record)        { e <- struct{}{} }

// testRoutes is a route table that exercises each kind of metric.
func testRoutes(release <-chan struct{}, entered chan<- struct{}) []gateway.Route {
	ok := gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		return gateway.NewResponse(http.StatusOK, nil, []byte("user "+req.Param("id"))), nil
	})
	orders := gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		if _, err := req.Body(); err != nil {
			return nil, err
		}
		if strings.HasSuffix(req.HTTP.URL.Path, "/fail") {
			req.AddUpstreamCall(gateway.UpstreamCall{Upstream: "http", Target: "10.0.0.2:8080", Duration: 2 * time.Millisecond, Err: errors.New("connection refused")})
			return nil, gateway.Errorf(http.StatusBadGateway, "upstream unreachable")
		}
		req.AddUpstreamCall(gateway.UpstreamCall{Upstream: "http", Target: "10.0.0.1:8080", Duration: 30 * time.Millisecond, Status: http.StatusOK})
		return gateway.NewResponse(http.StatusOK, nil, []byte("[]")), nil
	})
	limited := gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		if req.HTTP.Header.Get("X-Over") != "" {
			req.Note("ratelimit", "per-client refused")
			return nil, gateway.Errorf(http.StatusTooManyRequests, "slow down")
		}
		req.Note("ratelimit", "per-client admitted")
		req.Note("other", "ignored")
		return gateway.NewResponse(http.StatusNoContent, nil, nil), nil
	})
	boom := gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		return nil, errors.New("database on fire")
	})
	slow := gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		entered <- struct{}{}
		<-release
		return gateway.NewResponse(http.StatusOK, nil, nil), nil
	})
	return []gateway.Route{
		{Methods: []string{"GET"}, Path: "/users/{id}", Handler: ok},
		{Name: "orders", PathPrefix: "/orders", Handler: orders},
		{Name: "limited", Path: "/limited", Handler: limited},
		{Name: "boom", Path: "/boom", Handler: boom},
		{Name: "slow", Path: "/slow", Handler: slow},
	}
}

// newGateway serves routes observed by m and returns its URL and the
// channel that receives once per ended request.
func newGateway(t *testing.T, m *metrics.Metrics, routes []gateway.Route) (string, ended) {
	t.Helper()
	done := make(ended, 100)
	rt, err := gateway.NewRouter(gateway.RouterConfig{
		Options: gateway.Options{Observers: []gateway.Observer{done, m}, Logger: slog.New(slog.DiscardHandler)},
		Routes:  routes,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(rt)
	t.Cleanup(srv.Close)
	return srv.URL, done
}

// do sends a request and waits until the observers have ended it.
func do(t *testing.T, done ended, method, url string, header http.Header, body string) int {
	t.Helper()
	r, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	maps.Copy(r.Header, header)
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	<-done
	return resp.StatusCode
}

// scrape fetches the text format from h and flattens it: one entry per
// series, keyed `name{label="value",...}` with the labels sorted, holding
// a counter's or gauge's value or a histogram's sample count. It also
// returns each family's label names.
func scrape(t *testing.T, h http.Handler) (map[string]float64, map[string][]string) {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("Content-Type = %q, want the text format", ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	series := map[string]float64{}
	labels := map[string][]string{}
	for name, f := range families {
		for _, m := range f.Metric {
			var names, pairs []string
			for _, l := range m.Label {
				names = append(names, l.GetName())
				pairs = append(pairs, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			slices.Sort(names)
			slices.Sort(pairs)
			labels[name] = names
			key := name + "{" + strings.Join(pairs, ",") + "}"
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				series[key] = m.Counter.GetValue()
			case dto.MetricType_GAUGE:
				series[key] = m.Gauge.GetValue()
			case dto.MetricType_HISTOGRAM:
				series[key] = float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return series, labels
}

func TestRequestMetrics(t *testing.T) {
	m, err := metrics.New(metrics.Config{})
	if err != nil {
		t.Fatal(err)
	}
	url, done := newGateway(t, m, testRoutes(nil, nil))
	for _, r := range []struct {
		method, path string
		header       http.Header
		body         string
		want         int
	}{
		{"GET", "/users/1", nil, "", 200},
		{"GET", "/users/2", nil, "", 200},
		{"HEAD", "/users/3", nil, "", 200},
		{"GET", "/users/4/../5", nil, "", 200},
		{"GET", "/nope/7", nil, "", 404},
		{"DELETE", "/users/1", nil, "", 405},
		{"POST", "/orders", nil, `{"item":1}`, 200},
		{"POST", "/orders/fail", nil, `{}`, 502},
		{"PURGE", "/orders/1", nil, "", 200},
		{"GET", "/limited", nil, "", 204},
		{"GET", "/limited", http.Header{"X-Over": {"1"}}, "", 429},
		{"GET", "/boom", nil, "", 500},
	} {
		if got := do(t, done, r.method, url+r.path, r.header, r.body); got != r.want {
			t.Fatalf("%s %s: status %d, want %d", r.method, r.path, got, r.want)
		}
	}
	series, labels := scrape(t, m.Handler())

	t.Run("labels", func(t *testing.T) {
		for name, want := range map[string][]string{
			"gatekit_requests_total":            {"method", "route", "status"},
			"gatekit_request_duration_seconds":  {"method", "route"},
			"gatekit_requests_in_flight":        nil,
			"gatekit_request_body_bytes_total":  {"route"},
			"gatekit_response_body_bytes_total": {"route"},
			"gatekit_upstream_duration_seconds": {"target", "upstream"},
			"gatekit_upstream_errors_total":     {"target", "upstream"},
			"gatekit_ratelimit_decisions_total": {"decision", "policy"},
		} {
			got, ok := labels[name]
			if !ok {
				t.Errorf("%s is missing from the scrape", name)
				continue
			}
			if !slices.Equal(got, want) {
				t.Errorf("%s labels = %q, want %q", name, got, want)
			}
		}
	})

	tests := []struct {
		name   string
		series string
		want   float64
	}{
		{"pattern not path", `gatekit_requests_total{method="GET",route="GET /users/{id}",status="200"}`, 3},
		{"HEAD on a GET route", `gatekit_requests_total{method="HEAD",route="GET /users/{id}",status="200"}`, 1},
		{"latency by route and method", `gatekit_request_duration_seconds{method="GET",route="GET /users/{id}"}`, 3},
		{"unmatched", `gatekit_requests_total{method="GET",route="unmatched",status="404"}`, 1},
		{"wrong method", `gatekit_requests_total{method="DELETE",route="unmatched",status="405"}`, 1},
		{"upstream ok", `gatekit_requests_total{method="POST",route="orders",status="200"}`, 1},
		{"upstream failed", `gatekit_requests_total{method="POST",route="orders",status="502"}`, 1},
		{"method outside the standard set", `gatekit_requests_total{method="OTHER",route="orders",status="200"}`, 1},
		{"rate-limited", `gatekit_requests_total{method="GET",route="limited",status="429"}`, 1},
		{"no content", `gatekit_requests_total{method="GET",route="limited",status="204"}`, 1},
		{"internal error", `gatekit_requests_total{method="GET",route="boom",status="500"}`, 1},
		{"request bytes", `gatekit_request_body_bytes_total{route="orders"}`, float64(len(`{"item":1}`) + len(`{}`))},
		{"response bytes", `gatekit_response_body_bytes_total{route="GET /users/{id}"}`, float64(3 * len("user 1"))},
		{"upstream latency", `gatekit_upstream_duration_seconds{target="10.0.0.1:8080",upstream="http"}`, 2},
		{"upstream error latency", `gatekit_upstream_duration_seconds{target="10.0.0.2:8080",upstream="http"}`, 1},
		{"upstream errors", `gatekit_upstream_errors_total{target="10.0.0.2:8080",upstream="http"}`, 1},
		{"upstream without errors", `gatekit_upstream_errors_total{target="10.0.0.1:8080",upstream="http"}`, 0},
		{"admitted", `gatekit_ratelimit_decisions_total{decision="admitted",policy="per-client"}`, 1},
		{"refused", `gatekit_ratelimit_decisions_total{decision="refused",policy="per-client"}`, 1},
		{"in flight back to zero", `gatekit_requests_in_flight{}`, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := series[tc.series]
			if !ok {
				t.Fatalf("no series %s in the scrape", tc.series)
			}
			if got != tc.want {
				t.Errorf("%s = %v, want %v", tc.series, got, tc.want)
			}
		})
	}

	t.Run("no raw paths", func(t *testing.T) {
		n := 0
		for s := range series {
			if !strings.HasPrefix(s, "gatekit_") {
				continue
			}
			n++
			for _, raw := range []string{"/users/1", "/users/2", "/nope", "/orders/fail", "PURGE"} {
				if strings.Contains(s, raw) {
					t.Errorf("series %s carries %q from the request", s, raw)
				}
			}
		}
		// 10 requests_total, 8 duration, 1 in flight, 5+5 bytes (a route's
		// byte counters appear with its first request), 2+2 upstream, 2
		// rate limit.
		if want := 35; n != want {
			t.Errorf("%d gatekit series, want %d:\n%s", n, want, strings.Join(slices.Sorted(maps.Keys(series)), "\n"))
		}
	})

	t.Run("runtime collectors", func(t *testing.T) {
		if _, ok := labels["go_goroutines"]; !ok {
			t.Error("the registry of its own lacks the Go collector")
		}
	})
}

func TestInFlight(t *testing.T) {
	m, err := metrics.New(metrics.Config{})
	if err != nil {
		t.Fatal(err)
	}
	release, entered := make(chan struct{}), make(chan struct{})
	url, done := newGateway(t, m, testRoutes(release, entered))
	const n = 3
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			resp, err := http.Get(url + "/slow")
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
		})
	}
	for range n {
		<-entered
	}
	series, _ := scrape(t, m.Handler())
	if got := series["gatekit_requests_in_flight{}"]; got != n {
		t.Errorf("in flight while serving = %v, want %d", got, n)
	}
	close(release)
	wg.Wait()
	for range n {
		<-done
	}
	series, _ = scrape(t, m.Handler())
	if got := series["gatekit_requests_in_flight{}"]; got != 0 {
		t.Errorf("in flight after = %v, want 0", got)
	}
	if got := series[`gatekit_requests_total{method="GET",route="slow",status="200"}`]; got != n {
		t.Errorf("requests = %v, want %d", got, n)
	}
}

func TestHooks(t *testing.T) {
	m, err := metrics.New(metrics.Config{Namespace: "gw"})
	if err != nil {
		t.Fatal(err)
	}
	m.BreakerStateChanged("10.0.0.1:8080", "closed", "open")
	m.BreakerStateChanged("10.0.0.1:8080", "open", "half-open")
	m.BreakerStateChanged("10.0.0.2:8080", "closed", "open")
	m.BreakerStateChanged("10.0.0.2:8080", "open", "half-open")
	m.BreakerStateChanged("10.0.0.2:8080", "half-open", "closed")
	m.BreakerStateChanged("10.0.0.3:8080", "closed", "sideways")
	m.JWKSRefreshed("https://idp.example/jwks.json", nil)
	m.JWKSRefreshed("https://idp.example/jwks.json", nil)
	m.JWKSRefreshed("https://idp.example/jwks.json", errors.New("503"))
	series, _ := scrape(t, m.Handler())

	tests := []struct {
		name   string
		series string
		want   float64
	}{
		{"half-open", `gw_breaker_state{target="10.0.0.1:8080"}`, 1},
		{"closed again", `gw_breaker_state{target="10.0.0.2:8080"}`, 0},
		{"opened", `gw_breaker_transitions_total{target="10.0.0.2:8080",to="open"}`, 1},
		{"closed", `gw_breaker_transitions_total{target="10.0.0.2:8080",to="closed"}`, 1},
		{"unknown state", `gw_breaker_transitions_total{target="10.0.0.3:8080",to="other"}`, 1},
		{"refresh ok", `gw_jwks_refreshes_total{result="ok",source="https://idp.example/jwks.json"}`, 2},
		{"refresh failed", `gw_jwks_refreshes_total{result="error",source="https://idp.example/jwks.json"}`, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := series[tc.series]
			if !ok {
				t.Fatalf("no series %s in the scrape", tc.series)
			}
			if got != tc.want {
				t.Errorf("%s = %v, want %v", tc.series, got, tc.want)
			}
		})
	}
	if _, ok := series[`gw_breaker_state{target="10.0.0.3:8080"}`]; ok {
		t.Error("an unknown state set the gauge")
	}
}

func TestNew(t *testing.T) {
	reg := prometheus.NewRegistry()
	wrapped := prometheus.WrapRegistererWith(prometheus.Labels{"gateway": "edge"}, reg)
	tests := []struct {
		name    string
		cfg     func() metrics.Config
		wantErr string
	}{
		{"zero", func() metrics.Config { return metrics.Config{} }, ""},
		{"own registry", func() metrics.Config { return metrics.Config{Registerer: prometheus.NewRegistry()} }, ""},
		{"buckets", func() metrics.Config { return metrics.Config{Buckets: []float64{.1, 1}} }, ""},
		{"unsorted buckets", func() metrics.Config { return metrics.Config{Buckets: []float64{1, .1}} }, "buckets must increase"},
		{"repeated bucket", func() metrics.Config { return metrics.Config{Buckets: []float64{1, 1}} }, "buckets must increase"},
		{"bad namespace", func() metrics.Config { return metrics.Config{Namespace: "gate\xffkit"} }, "register"},
		{"registerer without gatherer", func() metrics.Config { return metrics.Config{Registerer: wrapped} }, "Gatherer"},
		{"wrapped with gatherer", func() metrics.Config { return metrics.Config{Registerer: wrapped, Gatherer: reg} }, ""},
		{"twice in one registry", func() metrics.Config { return metrics.Config{Registerer: wrapped, Gatherer: reg} }, "register"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := metrics.New(tc.cfg())
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				if m.Handler() == nil {
					t.Fatal("nil Handler")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("New: error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

// TestSharedRegistry checks that Metrics registered with a caller's
// registry appear in its scrape, with the caller's constant labels.
func TestSharedRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(metrics.Config{
		Registerer: prometheus.WrapRegistererWith(prometheus.Labels{"gateway": "edge"}, reg),
		Gatherer:   reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	url, done := newGateway(t, m, testRoutes(nil, nil))
	do(t, done, "GET", url+"/users/9", nil, "")
	series, _ := scrape(t, m.Handler())
	if got := series[`gatekit_requests_total{gateway="edge",method="GET",route="GET /users/{id}",status="200"}`]; got != 1 {
		t.Errorf("requests = %v, want 1; scrape:\n%s", got, strings.Join(slices.Sorted(maps.Keys(series)), "\n"))
	}
	if _, ok := series["go_goroutines{}"]; ok {
		t.Error("a caller's registry got the Go collector")
	}
}

// TestLabelBound checks that an upstream naming a new target on every
// request cannot grow the series without bound.
func TestLabelBound(t *testing.T) {
	m, err := metrics.New(metrics.Config{})
	if err != nil {
		t.Fatal(err)
	}
	const extra = 50
	for i := range metrics.MaxLabelValues + extra {
		req := gateway.NewRequest(httptest.NewRequest("GET", "/", nil))
		req.AddUpstreamCall(gateway.UpstreamCall{Upstream: "http", Target: fmt.Sprintf("10.0.%d.%d:80", i/256, i%256)})
		m.Begin(context.Background(), req)
		m.End(context.Background(), req, &gateway.Record{Status: 200})
	}
	series, _ := scrape(t, m.Handler())
	n := 0
	for s := range series {
		if strings.HasPrefix(s, "gatekit_upstream_errors_total{") {
			n++
		}
	}
	if want := metrics.MaxLabelValues + 1; n != want {
		t.Errorf("%d upstream series, want %d", n, want)
	}
	if got := series[`gatekit_upstream_duration_seconds{target="other",upstream="http"}`]; got != extra {
		t.Errorf(`target="other" has %v calls, want %d`, got, extra)
	}
}

// TestConcurrent serves requests from many goroutines, for the race
// detector, and checks that none is lost.
func TestConcurrent(t *testing.T) {
	m, err := metrics.New(metrics.Config{})
	if err != nil {
		t.Fatal(err)
	}
	routes := testRoutes(nil, nil)
	rt, err := gateway.NewRouter(gateway.RouterConfig{
		Options: gateway.Options{Observers: []gateway.Observer{m}, Logger: slog.New(slog.DiscardHandler)},
		Routes:  routes,
	})
	if err != nil {
		t.Fatal(err)
	}
	const workers, each = 8, 50
	paths := []string{"/users/1", "/orders", "/orders/fail", "/limited", "/nope"}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				p := paths[(w+i)%len(paths)]
				rt.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", p, nil))
			}
		})
	}
	wg.Wait()
	series, _ := scrape(t, m.Handler())
	var total float64
	for s, v := range series {
		if strings.HasPrefix(s, "gatekit_requests_total{") {
			total += v
		}
	}
	if total != workers*each {
		t.Errorf("requests_total sums to %v, want %d", total, workers*each)
	}
	if got := series["gatekit_requests_in_flight{}"]; got != 0 {
		t.Errorf("in flight = %v, want 0", got)
	}
}
