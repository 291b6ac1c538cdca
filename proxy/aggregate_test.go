package proxy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gatekit/gatekit/gateway"
	"github.com/gatekit/gatekit/proxy"
)

// aggReply is an in-process upstream that answers status with body.
func aggReply(status int, body string) gateway.Handler {
	return gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		return gateway.NewResponse(status, http.Header{"Content-Type": {"application/json"}}, []byte(body)), nil
	})
}

// aggWait is an in-process upstream that answers body after d, or fails
// when its context is done first. A closed cancelled channel, if given,
// reports the latter.
func aggWait(d time.Duration, body string, cancelled chan<- struct{}) gateway.Handler {
	return gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			return gateway.NewResponse(http.StatusOK, nil, []byte(body)), nil
		case <-ctx.Done():
			if cancelled != nil {
				close(cancelled)
			}
			return nil, ctx.Err()
		}
	})
}

// aggServe serves target through a router whose one route has pattern and
// h, without a socket, so that the test can check for goroutines left
// behind.
func aggServe(t testing.TB, pattern string, h gateway.Handler, target string, hdr http.Header) *httptest.ResponseRecorder {
	t.Helper()
	rt, err := gateway.NewRouter(gateway.RouterConfig{
		Options: gateway.Options{Logger: slog.New(slog.DiscardHandler)},
		Routes:  []gateway.Route{{Path: pattern, Handler: h}},
	})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", target, nil)
	for k, v := range hdr {
		r.Header[k] = v
	}
	w := httptest.NewRecorder()
	rt.ServeHTTP(w, r)
	return w
}

// aggNoLeaks fails the test if goroutines other than those running when
// aggNoLeaks was called are still running when the test ends.
func aggNoLeaks(t *testing.T) {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
}

func aggNew(t testing.TB, cfg proxy.AggregateConfig) *proxy.AggregateUpstream {
	t.Helper()
	a, err := proxy.Aggregate(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// aggJSONEqual reports whether a and b hold the same JSON value.
func aggJSONEqual(t testing.TB, a, b string) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal([]byte(a), &va); err != nil {
		t.Fatalf("%s: %v", a, err)
	}
	if err := json.Unmarshal([]byte(b), &vb); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	ja, _ := json.Marshal(va)
	jb, _ := json.Marshal(vb)
	return string(ja) == string(jb)
}

func TestAggregateMerge(t *testing.T) {
	tests := []struct {
		name     string
		backends []proxy.AggregateBackend
		want     string // exactly: the order is the configuration's
	}{
		{
			name: "under keys",
			backends: []proxy.AggregateBackend{
				{Name: "user", Key: "user", Upstream: aggReply(200, `{"name":"ann","id":7}`)},
				{Name: "orders", Key: "orders", Upstream: aggReply(200, `[{"id":1},{"id":2}]`)},
				{Name: "count", Key: "count", Upstream: aggReply(200, `3`)},
			},
			want: `{"user":{"name":"ann","id":7},"orders":[{"id":1},{"id":2}],"count":3}`,
		},
		{
			name: "nested keys",
			backends: []proxy.AggregateBackend{
				{Name: "a", Key: "data.customer", Upstream: aggReply(200, `{"id":1}`)},
				{Name: "b", Key: "data.orders", Upstream: aggReply(200, `[]`)},
				{Name: "c", Key: `odd\.name`, Upstream: aggReply(200, `true`)},
			},
			want: `{"data":{"customer":{"id":1},"orders":[]},"odd.name":true}`,
		},
		{
			name: "top level, later backend wins",
			backends: []proxy.AggregateBackend{
				{Name: "a", Upstream: aggReply(200, `{"a":1,"shared":"from a"}`)},
				{Name: "b", Upstream: aggReply(200, `{"b":2,"shared":"from b"}`)},
			},
			want: `{"a":1,"shared":"from b","b":2}`,
		},
		{
			name: "top level and keyed",
			backends: []proxy.AggregateBackend{
				{Name: "a", Upstream: aggReply(200, `{"id":1,"name":"x"}`)},
				{Name: "b", Key: "orders", Upstream: aggReply(200, `[1,2]`)},
			},
			want: `{"id":1,"name":"x","orders":[1,2]}`,
		},
		{
			name: "top level keeps awkward member names",
			backends: []proxy.AggregateBackend{
				{Name: "a", Upstream: aggReply(200, `{"a.b":1,"0":2,"*":3,"-1":4,"x|y":5,"é":6}`)},
			},
			want: `{"a.b":1,"0":2,"*":3,"-1":4,"x|y":5,"é":6}`,
		},
		{
			name: "fields of an object",
			backends: []proxy.AggregateBackend{
				{Name: "user", Key: "user", Fields: []string{"name", "address.city", "absent"},
					Upstream: aggReply(200, `{"id":7,"name":"ann","password":"x","address":{"city":"Oslo","street":"s"}}`)},
			},
			want: `{"user":{"name":"ann","address":{"city":"Oslo"}}}`,
		},
		{
			name: "fields of each element of an array",
			backends: []proxy.AggregateBackend{
				{Name: "orders", Key: "orders", Fields: []string{"id"},
					Upstream: aggReply(200, `[{"id":1,"secret":1},{"id":2,"secret":2},"kept",{"secret":3}]`)},
			},
			want: `{"orders":[{"id":1},{"id":2},"kept",{}]}`,
		},
		{
			name: "fields at the top level",
			backends: []proxy.AggregateBackend{
				{Name: "a", Fields: []string{"id"}, Upstream: aggReply(200, `{"id":1,"secret":2}`)},
				{Name: "b", Key: "b", Upstream: aggReply(200, `{}`)},
			},
			want: `{"id":1,"b":{}}`,
		},
		{
			name: "an empty reply is null",
			backends: []proxy.AggregateBackend{
				{Name: "a", Key: "a", Upstream: aggReply(204, ``)},
				{Name: "b", Key: "b", Upstream: gateway.HandlerFunc(func(context.Context, *gateway.Request) (*gateway.Response, error) { return nil, nil })},
			},
			want: `{"a":null,"b":null}`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			aggNoLeaks(t)
			a := aggNew(t, proxy.AggregateConfig{Backends: tc.backends})
			w := aggServe(t, "/x", a, "/x", nil)
			if w.Code != 200 {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			if got := w.Body.String(); got != tc.want {
				t.Errorf("body\n got %s\nwant %s", got, tc.want)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			if cl := w.Header().Get("Content-Length"); cl != fmt.Sprint(w.Body.Len()) {
				t.Errorf("Content-Length = %q for %d bytes", cl, w.Body.Len())
			}
			if p := w.Header().Get(proxy.PartialHeader); p != "" {
				t.Errorf("%s = %q on a complete reply", proxy.PartialHeader, p)
			}
		})
	}
}

// aggFailure is one entry of a failure report.
type aggFailure struct {
	Backend string          `json:"backend"`
	Step    string          `json:"step"`
	Status  int             `json:"status"`
	Error   string          `json:"error"`
	Body    json.RawMessage `json:"body"`
}

func TestAggregatePartialFailure(t *testing.T) {
	user := proxy.AggregateBackend{Name: "user", Key: "user", Upstream: aggReply(200, `{"id":7}`)}
	tests := []struct {
		name    string
		cfg     proxy.AggregateConfig
		status  int          // of the whole reply
		want    string       // the merged part of a 200, without the report
		failed  []aggFailure // the report, in the problem or in _missing
		partial string       // the Gatekit-Partial field
	}{
		{
			name: "fail all: upstream 503 with a JSON body",
			cfg: proxy.AggregateConfig{Backends: []proxy.AggregateBackend{
				user, {Name: "orders", Key: "orders", Upstream: aggReply(503, `{"error":"maintenance"}`)},
			}},
			status: 502,
			failed: []aggFailure{{Backend: "orders", Status: 503, Error: "error reply", Body: json.RawMessage(`{"error":"maintenance"}`)}},
		},
		{
			name: "return partial: upstream 503 with a JSON body",
			cfg: proxy.AggregateConfig{Partial: proxy.ReturnPartial, Backends: []proxy.AggregateBackend{
				user, {Name: "orders", Key: "orders", Upstream: aggReply(503, `{"error":"maintenance"}`)},
			}},
			status:  200,
			want:    `{"user":{"id":7}}`,
			failed:  []aggFailure{{Backend: "orders", Status: 503, Error: "error reply", Body: json.RawMessage(`{"error":"maintenance"}`)}},
			partial: "orders",
		},
		{
			name: "return partial: 404 with a text body, and not JSON",
			cfg: proxy.AggregateConfig{Partial: proxy.ReturnPartial, Backends: []proxy.AggregateBackend{
				{Name: "a", Key: "a", Upstream: aggReply(404, `no such thing`)},
				user,
				{Name: "b", Key: "b", Upstream: aggReply(200, `<html>`)},
			}},
			status:  200,
			want:    `{"user":{"id":7}}`,
			failed:  []aggFailure{{Backend: "a", Status: 404, Error: "error reply"}, {Backend: "b", Status: 200, Error: "not JSON"}},
			partial: "a,b",
		},
		{
			name: "fail all: optional backend fails",
			cfg: proxy.AggregateConfig{Backends: []proxy.AggregateBackend{
				user, {Name: "recs", Key: "recs", Optional: true, Upstream: aggReply(500, `{"e":1}`)},
			}},
			status:  200,
			want:    `{"user":{"id":7}}`,
			failed:  []aggFailure{{Backend: "recs", Status: 500, Error: "error reply", Body: json.RawMessage(`{"e":1}`)}},
			partial: "recs",
		},
		{
			name: "return partial: every backend fails",
			cfg: proxy.AggregateConfig{Partial: proxy.ReturnPartial, Backends: []proxy.AggregateBackend{
				{Name: "a", Key: "a", Upstream: aggReply(500, `{}`)},
				{Name: "b", Key: "b", Upstream: aggReply(502, `{}`)},
			}},
			status: 502,
			failed: []aggFailure{{Backend: "a", Status: 500, Error: "error reply", Body: json.RawMessage(`{}`)}, {Backend: "b", Status: 502, Error: "error reply", Body: json.RawMessage(`{}`)}},
		},
		{
			name: "fail all: top-level array",
			cfg: proxy.AggregateConfig{Backends: []proxy.AggregateBackend{
				user, {Name: "list", Upstream: aggReply(200, `[1,2]`)},
			}},
			status: 502,
			failed: []aggFailure{{Backend: "list", Status: 200, Error: "top-level merge needs an object"}},
		},
		{
			name: "return partial: reply too large",
			cfg: proxy.AggregateConfig{Partial: proxy.ReturnPartial, MaxReplyBytes: 16, Backends: []proxy.AggregateBackend{
				user, {Name: "big", Key: "big", Upstream: aggReply(200, `{"a":"`+strings.Repeat("x", 32)+`"}`)},
			}},
			status:  200,
			want:    `{"user":{"id":7}}`,
			failed:  []aggFailure{{Backend: "big", Status: 200, Error: "reply too large"}},
			partial: "big",
		},
		{
			name: "fail all: upstream error",
			cfg: proxy.AggregateConfig{Backends: []proxy.AggregateBackend{
				user, {Name: "e", Key: "e", Upstream: gateway.HandlerFunc(func(context.Context, *gateway.Request) (*gateway.Response, error) {
					return nil, gateway.Errorf(http.StatusServiceUnavailable, "the circuit is open")
				})},
			}},
			status: 502,
			failed: []aggFailure{{Backend: "e", Error: "the circuit is open"}},
		},
		{
			name: "return partial: internal error",
			cfg: proxy.AggregateConfig{Partial: proxy.ReturnPartial, Backends: []proxy.AggregateBackend{
				user, {Name: "i", Key: "i", Upstream: gateway.HandlerFunc(func(context.Context, *gateway.Request) (*gateway.Response, error) {
					return nil, io.ErrUnexpectedEOF // internal: its text is not sent
				})},
			}},
			status:  200,
			want:    `{"user":{"id":7}}`,
			failed:  []aggFailure{{Backend: "i", Error: "upstream failed"}},
			partial: "i",
		},
		{
			name: "fail all: per-backend timeout",
			cfg: proxy.AggregateConfig{Backends: []proxy.AggregateBackend{
				user, {Name: "slow", Key: "slow", Timeout: 20 * time.Millisecond, Upstream: aggWait(time.Minute, `{}`, nil)},
			}},
			status: 504,
			failed: []aggFailure{{Backend: "slow", Error: "timeout"}},
		},
		{
			name: "return partial: whole timeout",
			cfg: proxy.AggregateConfig{Partial: proxy.ReturnPartial, Timeout: 50 * time.Millisecond, Backends: []proxy.AggregateBackend{
				user, {Name: "slow", Key: "slow", Upstream: aggWait(time.Minute, `{}`, nil)},
			}},
			status:  200,
			want:    `{"user":{"id":7}}`,
			failed:  []aggFailure{{Backend: "slow", Error: "timeout"}},
			partial: "slow",
		},
		{
			name: "return partial: report under another key",
			cfg: proxy.AggregateConfig{Partial: proxy.ReturnPartial, MissingKey: "meta.missing", Backends: []proxy.AggregateBackend{
				user, {Name: "x", Key: "x", Upstream: aggReply(500, `[1]`)},
			}},
			status:  200,
			want:    `{"user":{"id":7}}`,
			failed:  []aggFailure{{Backend: "x", Status: 500, Error: "error reply", Body: json.RawMessage(`[1]`)}},
			partial: "x",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			aggNoLeaks(t)
			a := aggNew(t, tc.cfg)
			w := aggServe(t, "/x", a, "/x", nil)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.status, w.Body)
			}
			var doc map[string]json.RawMessage
			if err := json.Unmarshal(w.Body.Bytes(), &doc); err != nil {
				t.Fatalf("%s: %v", w.Body, err)
			}
			var report json.RawMessage
			if tc.status == 200 {
				if p := w.Header().Get(proxy.PartialHeader); p != tc.partial {
					t.Errorf("%s = %q, want %q", proxy.PartialHeader, p, tc.partial)
				}
				key := tc.cfg.MissingKey
				if key == "" {
					key = proxy.DefaultMissingKey
				}
				if key == "meta.missing" {
					var meta map[string]json.RawMessage
					json.Unmarshal(doc["meta"], &meta)
					report = meta["missing"]
					delete(doc, "meta")
				} else {
					report = doc[key]
					delete(doc, key)
				}
				rest, _ := json.Marshal(doc)
				if !aggJSONEqual(t, string(rest), tc.want) {
					t.Errorf("merged part %s, want %s", rest, tc.want)
				}
			} else {
				if ct := w.Header().Get("Content-Type"); ct != gateway.ProblemContentType {
					t.Errorf("Content-Type = %q", ct)
				}
				report = doc["failed"]
				for _, f := range tc.failed {
					if !strings.Contains(string(doc["detail"]), f.Backend) {
						t.Errorf("detail %s does not name %q", doc["detail"], f.Backend)
					}
				}
			}
			if strings.Contains(w.Body.String(), "unexpected EOF") {
				t.Errorf("an internal error's text was sent: %s", w.Body)
			}
			var got []aggFailure
			if err := json.Unmarshal(report, &got); err != nil {
				t.Fatalf("report %s: %v (body %s)", report, err, w.Body)
			}
			if len(got) != len(tc.failed) {
				t.Fatalf("report %s, want %d entries", report, len(tc.failed))
			}
			for i, f := range tc.failed {
				g := got[i]
				if g.Backend != f.Backend || g.Status != f.Status || g.Error != f.Error || (f.Body == nil) != (g.Body == nil) ||
					(f.Body != nil && !aggJSONEqual(t, string(g.Body), string(f.Body))) {
					t.Errorf("report[%d] = %+v (body %s), want %+v (body %s)", i, g, g.Body, f, f.Body)
				}
			}
		})
	}
}

// TestAggregateHTTPBackends runs an aggregate of real HTTP backends through
// a real gateway: paths and query from the client's request, forwarded
// header fields, upstream error statuses and bodies in the report.
func TestAggregateHTTPBackends(t *testing.T) {
	var custReq, ordReq recorder
	cust := newBackend(t, custReq.handler(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"id":"42","name":"Ann"}`)
	}))
	orders := newBackend(t, ordReq.handler(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Query().Get("limit") == "fail" {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, `{"error":"orders are resting"}`)
			return
		}
		fmt.Fprint(w, `[{"id":1},{"id":2}]`)
	}))
	streamed := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`[`))
		w.(http.Flusher).Flush() // no Content-Length: the size is learnt by reading
		w.Write([]byte(strings.Repeat(`1,`, 100) + `1]`))
	})
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()

	a := aggNew(t, proxy.AggregateConfig{
		Partial:       proxy.ReturnPartial,
		MaxReplyBytes: 100,
		Backends: []proxy.AggregateBackend{
			{Name: "customer", Key: "customer", Path: "/customers/{id}", Headers: []string{"Authorization", "Accept-Language"},
				Upstream: newProxy(t, proxy.HTTPConfig{Targets: []string{cust.URL}})},
			{Name: "orders", Key: "orders", Path: "/customers/{id}/orders?limit={query.limit}&sort=date",
				Upstream: newProxy(t, proxy.HTTPConfig{Targets: []string{orders.URL + "/v2"}})},
			{Name: "streamed", Key: "s", Upstream: newProxy(t, proxy.HTTPConfig{Targets: []string{streamed.URL}})},
			{Name: "gone", Key: "g", Upstream: newProxy(t, proxy.HTTPConfig{Targets: []string{gone.URL}})},
		},
	})
	gw := newGateway(t, gateway.Options{}, gateway.Route{Path: "/api/customers/{id}", Handler: a})

	req, _ := http.NewRequest("GET", gw.URL+"/api/customers/42?limit=5", nil)
	req.Header.Set("Authorization", "Bearer t")
	req.Header.Set("Accept-Language", "nb")
	req.Header.Set("Accept", "text/html")
	req.Header.Set("Cookie", "s=1")
	resp, body := do(t, gw.Client(), req)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	var doc struct {
		Customer json.RawMessage
		Orders   json.RawMessage
		Missing  []aggFailure `json:"_missing"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("%s: %v", body, err)
	}
	if string(doc.Customer) != `{"id":"42","name":"Ann"}` || string(doc.Orders) != `[{"id":1},{"id":2}]` {
		t.Errorf("reply %s", body)
	}
	if len(doc.Missing) != 2 || doc.Missing[0].Backend != "streamed" || doc.Missing[0].Error != "reply too large" ||
		doc.Missing[1].Backend != "gone" || doc.Missing[1].Error != "the upstream could not be reached" || doc.Missing[1].Status != 0 {
		t.Errorf("missing %+v", doc.Missing)
	}
	if p := resp.Header.Get(proxy.PartialHeader); p != "streamed,gone" {
		t.Errorf("%s = %q", proxy.PartialHeader, p)
	}

	c := custReq.last(t)
	if c.URL.Path != "/customers/42" || c.Method != "GET" {
		t.Errorf("customer backend got %s %s", c.Method, c.URL)
	}
	if c.Header.Get("Authorization") != "Bearer t" || c.Header.Get("Accept-Language") != "nb" ||
		c.Header.Get("Accept") != "application/json" || c.Header.Get("Cookie") != "" {
		t.Errorf("customer backend got header %v", c.Header)
	}
	o := ordReq.last(t)
	if o.URL.RequestURI() != "/v2/customers/42/orders?limit=5&sort=date" {
		t.Errorf("orders backend got %s", o.URL.RequestURI())
	}
	if o.Header.Get("Authorization") != "" || o.Header.Get("Accept-Language") != "nb" {
		t.Errorf("orders backend got header %v (Authorization is not copied by default)", o.Header)
	}

	// An upstream's error status and JSON body reach the report.
	resp, body = get(t, gw, "/api/customers/42?limit=fail")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	if m := doc.Missing[0]; m.Backend != "orders" || m.Status != 503 || string(m.Body) != `{"error":"orders are resting"}` {
		t.Errorf("missing %+v, body %s", m, m.Body)
	}

	// A required query parameter the client did not send.
	resp, body = get(t, gw, "/api/customers/42")
	doc2 := checkProblem(t, resp, body, 400)
	if !strings.Contains(fmt.Sprint(doc2["detail"]), `"limit"`) {
		t.Errorf("detail %v", doc2["detail"])
	}
}

// TestAggregateLatency checks that backends run concurrently: the reply
// takes as long as the slowest backend, not the sum.
func TestAggregateLatency(t *testing.T) {
	sleepy := func(d time.Duration) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Query().Get("sleep") == "yes" {
				select {
				case <-time.After(d):
				case <-r.Context().Done():
				}
			}
			fmt.Fprintf(w, `{"slept":%d}`, d.Milliseconds())
		}
	}
	var backends []proxy.AggregateBackend
	for _, ms := range []int{100, 200, 300} {
		s := newBackend(t, sleepy(time.Duration(ms)*time.Millisecond))
		name := fmt.Sprint("b", ms)
		backends = append(backends, proxy.AggregateBackend{Name: name, Key: name, Path: "/?sleep={query.sleep}",
			Upstream: newProxy(t, proxy.HTTPConfig{Targets: []string{s.URL}})})
	}
	gw := newGateway(t, gateway.Options{}, gateway.Route{Path: "/all", Handler: aggNew(t, proxy.AggregateConfig{Backends: backends})})
	// Open the connections first: dialling is not what is measured.
	if resp, body := get(t, gw, "/all?sleep=no"); resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	start := time.Now()
	resp, body := get(t, gw, "/all?sleep=yes")
	took := time.Since(start)
	if resp.StatusCode != 200 || string(body) != `{"b100":{"slept":100},"b200":{"slept":200},"b300":{"slept":300}}` {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	// The sum is 600ms; the slowest alone is 300ms.
	if took < 300*time.Millisecond || took >= 400*time.Millisecond {
		t.Errorf("the aggregate took %v, want 300ms to 400ms", took)
	}
}

// TestAggregateFailAllCancels checks that FailAll stops waiting for the
// other backends once a required one failed, and that it cancels them
// rather than leaving them running.
func TestAggregateFailAllCancels(t *testing.T) {
	aggNoLeaks(t)
	cancelled := make(chan struct{})
	a := aggNew(t, proxy.AggregateConfig{Backends: []proxy.AggregateBackend{
		{Name: "slow", Key: "slow", Upstream: aggWait(time.Minute, `{}`, cancelled)},
		{Name: "broken", Key: "broken", Upstream: aggReply(500, `{"error":"boom"}`)},
	}})
	start := time.Now()
	w := aggServe(t, "/x", a, "/x", nil)
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the aggregate took %v: it waited for the slow backend", took)
	}
	select {
	case <-cancelled:
	default:
		t.Error("the slow backend was not cancelled before the aggregate returned")
	}
	if w.Code != 502 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	var doc struct{ Failed []aggFailure }
	json.Unmarshal(w.Body.Bytes(), &doc)
	if len(doc.Failed) != 1 || doc.Failed[0].Backend != "broken" {
		t.Errorf("failed %+v: a cancelled backend is not a failure of its own", doc.Failed)
	}
}

func TestAggregateClientGone(t *testing.T) {
	aggNoLeaks(t)
	cancelled := make(chan struct{})
	a := aggNew(t, proxy.AggregateConfig{Partial: proxy.ReturnPartial, Backends: []proxy.AggregateBackend{
		{Name: "slow", Key: "slow", Upstream: aggWait(time.Minute, `{}`, cancelled)},
	}})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	_, err := a.Serve(ctx, gateway.NewRequest(httptest.NewRequest("GET", "/", nil)))
	if err != context.Canceled {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	<-cancelled
}

func TestAggregateSubRequest(t *testing.T) {
	type seen struct {
		method, path, rawQuery, body, ct, accept string
	}
	var got atomic.Pointer[seen]
	rec := gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		body, err := req.Body()
		if err != nil {
			return nil, err
		}
		if req.HTTP.Context() != ctx {
			return nil, fmt.Errorf("the sub-request's context is not the one Serve got")
		}
		h := req.HTTP.Header
		got.Store(&seen{req.HTTP.Method, req.HTTP.URL.EscapedPath(), req.HTTP.URL.RawQuery, string(body), h.Get("Content-Type"), h.Get("Accept")})
		return gateway.NewResponse(200, nil, []byte(`{}`)), nil
	})
	tests := []struct {
		name    string
		backend proxy.AggregateBackend
		pattern string
		target  string
		want    seen
		status  int
	}{
		{
			name:    "default path",
			backend: proxy.AggregateBackend{},
			want:    seen{method: "GET", path: "/", accept: "application/json"},
		},
		{
			name:    "values escaped in path and query",
			backend: proxy.AggregateBackend{Path: "/items/{query.q}/x?q={query.q}&id={id}"},
			pattern: "/p/{id}",
			target:  "/p/caf%C3%A9?q=a%2Fb+c%26d%3D1",
			want:    seen{method: "GET", path: "/items/a%2Fb%20c&d=1/x", rawQuery: "q=a%2Fb+c%26d%3D1&id=caf%C3%A9", accept: "application/json"},
		},
		{
			name:    "a rest parameter keeps its slashes",
			backend: proxy.AggregateBackend{Path: "/files/{rest}"},
			pattern: "/f/{rest...}",
			target:  "/f/a/b%20c/d",
			want:    seen{method: "GET", path: "/files/a/b%20c/d", accept: "application/json"},
		},
		{
			name:    "dot-dot refused",
			backend: proxy.AggregateBackend{Path: "/items/{query.q}"},
			target:  "/p?q=..",
			status:  400,
		},
		{
			name:    "empty refused in the path",
			backend: proxy.AggregateBackend{Path: "/items/{query.q}"},
			target:  "/p?q=",
			status:  400,
		},
		{
			name:    "empty allowed in the query",
			backend: proxy.AggregateBackend{Path: "/items?q={query.q}"},
			target:  "/p?q=",
			want:    seen{method: "GET", path: "/items", rawQuery: "q=", accept: "application/json"},
		},
		{
			name:    "missing query parameter",
			backend: proxy.AggregateBackend{Path: "/items?q={query.q}"},
			target:  "/p",
			status:  400,
		},
		{
			name:    "missing path parameter is the configuration's fault",
			backend: proxy.AggregateBackend{Path: "/items/{id}"},
			target:  "/p",
			status:  500,
		},
		{
			name:    "body template",
			backend: proxy.AggregateBackend{Path: "/search", Body: `{"id": {id}, "q": [{query.q}], "lit": "{not.a.ref}", "n": {"a": 1}}`},
			pattern: "/p/{id}",
			target:  "/p/7?q=%22quoted%22%0A",
			want: seen{method: "POST", path: "/search", body: `{"id": "7", "q": ["\"quoted\"\n"], "lit": "{not.a.ref}", "n": {"a": 1}}`,
				ct: "application/json", accept: "application/json"},
		},
		{
			name:    "method",
			backend: proxy.AggregateBackend{Method: "PUT", Path: "/x"},
			want:    seen{method: "PUT", path: "/x", accept: "application/json"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			aggNoLeaks(t)
			got.Store(nil)
			b := tc.backend
			b.Name, b.Key, b.Upstream = "b", "b", rec
			a := aggNew(t, proxy.AggregateConfig{Backends: []proxy.AggregateBackend{b}})
			pattern, target := tc.pattern, tc.target
			if pattern == "" {
				pattern = "/p"
			}
			if target == "" {
				target = "/p"
			}
			w := aggServe(t, pattern, a, target, nil)
			if tc.status != 0 {
				if w.Code != tc.status {
					t.Fatalf("status %d, want %d: %s", w.Code, tc.status, w.Body)
				}
				if got.Load() != nil {
					t.Error("the backend was called")
				}
				return
			}
			if w.Code != 200 {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			if g := got.Load(); *g != tc.want {
				t.Errorf("backend saw\n%+v\nwant\n%+v", *g, tc.want)
			}
		})
	}
}

func TestAggregatePanic(t *testing.T) {
	aggNoLeaks(t)
	a := aggNew(t, proxy.AggregateConfig{Partial: proxy.ReturnPartial, Backends: []proxy.AggregateBackend{
		{Name: "ok", Key: "ok", Upstream: aggReply(200, `{}`)},
		{Name: "bad", Key: "bad", Upstream: gateway.HandlerFunc(func(context.Context, *gateway.Request) (*gateway.Response, error) {
			panic("oops")
		})},
	}})
	_, err := a.Serve(context.Background(), gateway.NewRequest(httptest.NewRequest("GET", "/", nil)))
	if err == nil || !strings.Contains(err.Error(), `"bad" panicked: oops`) {
		t.Fatalf("err = %v", err)
	}
	if _, ok := err.(*gateway.Error); ok {
		t.Error("a panic is an internal error, logged and not sent")
	}
}

func TestAggregateConfigErrors(t *testing.T) {
	up := aggReply(200, `{}`)
	tests := []struct {
		name string
		cfg  proxy.AggregateConfig
		want string
	}{
		{"no backends", proxy.AggregateConfig{}, "Backends: at least one"},
		{"no name", proxy.AggregateConfig{Backends: []proxy.AggregateBackend{{Upstream: up}}}, `Backends[0] "": Name`},
		{"bad name", proxy.AggregateConfig{Backends: []proxy.AggregateBackend{{Name: "a b", Upstream: up}}}, `Backends[0] "a b": Name`},
		{"duplicate name", proxy.AggregateConfig{Backends: []proxy.AggregateBackend{{Name: "a", Key: "a", Upstream: up}, {Name: "a", Key: "b", Upstream: up}}}, `Backends[1] "a": Name: another backend`},
		{"no upstream", proxy.AggregateConfig{Backends: []proxy.AggregateBackend{{Name: "a"}}}, `Backends[0] "a": Upstream`},
		{"relative path", proxy.AggregateConfig{Backends: []proxy.AggregateBackend{{Name: "a", Upstream: up, Path: "x"}}}, `Path "x": must begin`},
		{"step reference", proxy.AggregateConfig{Backends: []proxy.AggregateBackend{{Name: "a", Upstream: up, Path: "/{b.id}"}}}, `reference {b.id}: only {param} and {query.name}`},
		{"open brace", proxy.AggregateConfig{Backends: []proxy.AggregateBackend{{Name: "a", Upstream: up, Path: "/{id"}}}, `'{' without '}'`},
		{"dot segment", proxy.AggregateConfig{Backends: []proxy.AggregateBackend{{Name: "a", Upstream: up, Path: "/a/../b"}}}, `clean path`},
		{"space", proxy.AggregateConfig{Backends: []proxy.AggregateBackend{{Name: "a", Upstream: up, Path: "/a b"}}}, `not a valid URL path`},
		{"body not JSON", proxy.AggregateConfig{Backends: []proxy.AggregateBackend{{Name: "a", Upstream: up, Body: `{"a": "{id}"`}}}, `Body: not JSON`},
		{"body ref in a string", proxy.AggregateConfig{Backends: []proxy.AggregateBackend{{Name: "a", Upstream: up, Body: `{"a": {x.y}}`}}}, `Body: reference {x.y}`},
		{"bad method", proxy.AggregateConfig{Backends: []proxy.AggregateBackend{{Name: "a", Upstream: up, Method: "G T"}}}, `Method "G T"`},
		{"hop-by-hop header", proxy.AggregateConfig{Backends: []proxy.AggregateBackend{{Name: "a", Upstream: up, Headers: []string{"connection"}}}}, `Headers[0] "connection"`},
		{"accept header", proxy.AggregateConfig{Backends: []proxy.AggregateBackend{{Name: "a", Upstream: up, Headers: []string{"Accept"}}}}, `Headers[0] "Accept"`},
		{"bad key", proxy.AggregateConfig{Backends: []proxy.AggregateBackend{{Name: "a", Upstream: up, Key: "a..b"}}}, `Key "a..b": empty member`},
		{"bad field", proxy.AggregateConfig{Backends: []proxy.AggregateBackend{{Name: "a", Upstream: up, Fields: []string{"ok", `x\`}}}}, `Fields[1] "x\\"`},
		{"same key", proxy.AggregateConfig{Backends: []proxy.AggregateBackend{{Name: "a", Key: "k", Upstream: up}, {Name: "b", Key: "k", Upstream: up}}}, `Backends[1] "b": Key "k": overlaps "k"`},
		{"key inside key", proxy.AggregateConfig{Backends: []proxy.AggregateBackend{{Name: "a", Key: "k", Upstream: up}, {Name: "b", Key: "k.x", Upstream: up}}}, `Key "k.x": overlaps "k"`},
		{"key is the report", proxy.AggregateConfig{Backends: []proxy.AggregateBackend{{Name: "a", Key: "_missing", Upstream: up}}}, `overlaps "_missing"`},
		{"negative timeout", proxy.AggregateConfig{Backends: []proxy.AggregateBackend{{Name: "a", Upstream: up, Timeout: -1}}}, `Timeout: must not be negative`},
		{"negative size", proxy.AggregateConfig{MaxReplyBytes: -1, Backends: []proxy.AggregateBackend{{Name: "a", Upstream: up}}}, `MaxReplyBytes`},
		{"bad policy", proxy.AggregateConfig{Partial: 7, Backends: []proxy.AggregateBackend{{Name: "a", Upstream: up}}}, `Partial: unknown`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := proxy.Aggregate(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to hold %q", err, tc.want)
			}
		})
	}
}

// BenchmarkAggregate3 merges the replies of three in-process upstreams.
// Target: at most 70 allocations (TestAggregateAllocs); the three
// upstreams here account for 4 of them each.
func BenchmarkAggregate3(b *testing.B) {
	var backends []proxy.AggregateBackend
	for _, name := range []string{"user", "orders", "prefs"} {
		backends = append(backends, proxy.AggregateBackend{
			Name: name, Key: name, Path: "/" + name + "/{query.id}",
			Upstream: aggReply(200, `{"id":42,"name":"`+name+`","items":[1,2,3]}`),
		})
	}
	a := aggNew(b, proxy.AggregateConfig{Backends: backends})
	req := gateway.NewRequest(httptest.NewRequest("GET", "/x?id=42", nil))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		resp, err := a.Serve(ctx, req)
		if err != nil {
			b.Fatal(err)
		}
		resp.Close()
	}
}

// A customer and the customer's orders from two backends, in one reply.
func ExampleAggregate() {
	customers := gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		return gateway.NewResponse(200, nil, []byte(`{"id":"42","name":"Ann","password_hash":"x"}`)), nil
	})
	orders := gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		return gateway.NewResponse(503, nil, []byte(`{"error":"maintenance"}`)), nil
	})
	agg, err := proxy.Aggregate(proxy.AggregateConfig{
		Partial: proxy.ReturnPartial,
		Backends: []proxy.AggregateBackend{
			{Name: "customer", Upstream: customers, Path: "/customers/{id}", Key: "customer", Fields: []string{"id", "name"}},
			{Name: "orders", Upstream: orders, Path: "/orders?customer={id}", Key: "orders"},
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	router, err := gateway.NewRouter(gateway.RouterConfig{Routes: []gateway.Route{
		{Path: "/customers/{id}/summary", Handler: agg},
	}})
	if err != nil {
		log.Fatal(err)
	}
	w := httptest.NewRecorder()
	router.ServeHTTP(w, httptest.NewRequest("GET", "/customers/42/summary", nil))
	fmt.Println(w.Code, w.Header().Get("Gatekit-Partial"))
	fmt.Println(w.Body)
	// Output:
	// 200 orders
	// {"customer":{"id":"42","name":"Ann"},"_missing":[{"backend":"orders","status":503,"error":"error reply","body":{"error":"maintenance"}}]}
}

// TestAggregateAllocs guards the allocations of BenchmarkAggregate3's
// request.
func TestAggregateAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation guard")
	}
	var backends []proxy.AggregateBackend
	for _, name := range []string{"user", "orders", "prefs"} {
		backends = append(backends, proxy.AggregateBackend{
			Name: name, Key: name, Path: "/" + name + "/{query.id}",
			Upstream: aggReply(200, `{"id":42}`),
		})
	}
	a := aggNew(t, proxy.AggregateConfig{Backends: backends})
	req := gateway.NewRequest(httptest.NewRequest("GET", "/x?id=42", nil))
	allocs := testing.AllocsPerRun(200, func() {
		resp, err := a.Serve(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Close()
	})
	if allocs > 70 {
		t.Fatalf("an aggregate of 3 allocates %.0f times per request, want at most 70", allocs)
	}
}
