package proxy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gatekit/gatekit/gateway"
	"github.com/gatekit/gatekit/proxy"
)

// chainBank is a backend with customers and their accounts. It answers
// GET /customers/{id} and GET /customers/{id}/accounts, where the id is
// matched on the escaped path, and POST /audit, which echoes its body.
func chainBank(t *testing.T, seen *recorder) *httptest.Server {
	return newBackend(t, seen.handler(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		p := r.URL.EscapedPath()
		switch {
		case r.Method == "POST" && p == "/audit":
			b, _ := io.ReadAll(r.Body)
			w.Write(b)
		case p == "/customers/42":
			fmt.Fprint(w, `{"customer":{"id":"7/a b","tier":"gold"},"name":"Ann","none":null,"address":{"city":"Oslo"}}`)
		case p == "/customers/7%2Fa%20b/accounts":
			fmt.Fprintf(w, `[{"iban":"NO1","tier":%q},{"iban":"NO2","tier":%q}]`, r.URL.Query().Get("tier"), r.URL.Query().Get("tier"))
		case p == "/customers/500":
			w.WriteHeader(500)
			fmt.Fprint(w, `{"error":"database on fire"}`)
		default:
			w.WriteHeader(404)
			fmt.Fprint(w, `{"error":"not found"}`)
		}
	}))
}

func TestSequence(t *testing.T) {
	var seen recorder
	bank := chainBank(t, &seen)
	up := newProxy(t, proxy.HTTPConfig{Targets: []string{bank.URL}})
	customer := proxy.SequenceStep{Name: "customer", Upstream: up, Path: "/customers/{id}", Key: "customer"}
	accounts := proxy.SequenceStep{Name: "accounts", Upstream: up, Key: "accounts",
		Path: "/customers/{customer.customer.id}/accounts?tier={customer.customer.tier}"}
	tests := []struct {
		name   string
		cfg    proxy.SequenceConfig
		target string
		status int
		want   string // the reply, or a text the problem's detail holds
		failed []aggFailure
	}{
		{
			name:   "merge steps, value from the earlier reply escaped",
			cfg:    proxy.SequenceConfig{Steps: []proxy.SequenceStep{customer, accounts}},
			target: "/c/42",
			status: 200,
			want:   `{"customer":{"customer":{"id":"7/a b","tier":"gold"},"name":"Ann","none":null,"address":{"city":"Oslo"}},"accounts":[{"iban":"NO1","tier":"gold"},{"iban":"NO2","tier":"gold"}]}`,
		},
		{
			name: "last step only: an array stays an array",
			cfg: proxy.SequenceConfig{Reply: proxy.LastStep, Steps: []proxy.SequenceStep{
				{Name: "customer", Upstream: up, Path: "/customers/{id}"},
				{Name: "accounts", Upstream: up, Path: accounts.Path, Fields: []string{"iban"}},
			}},
			target: "/c/42",
			status: 200,
			want:   `[{"iban":"NO1"},{"iban":"NO2"}]`,
		},
		{
			name: "last step under a key",
			cfg: proxy.SequenceConfig{Reply: proxy.LastStep, Steps: []proxy.SequenceStep{
				{Name: "customer", Upstream: up, Path: "/customers/{id}"},
				{Name: "accounts", Upstream: up, Path: accounts.Path, Key: "data.accounts", Fields: []string{"iban"}},
			}},
			target: "/c/42",
			status: 200,
			want:   `{"data":{"accounts":[{"iban":"NO1"},{"iban":"NO2"}]}}`,
		},
		{
			name: "fields and top-level merge",
			cfg: proxy.SequenceConfig{Steps: []proxy.SequenceStep{
				{Name: "customer", Upstream: up, Path: "/customers/{id}", Fields: []string{"name", "address.city"}},
				accounts,
			}},
			target: "/c/42",
			status: 200,
			want:   `{"name":"Ann","address":{"city":"Oslo"},"accounts":[{"iban":"NO1","tier":"gold"},{"iban":"NO2","tier":"gold"}]}`,
		},
		{
			name: "body from an earlier reply",
			cfg: proxy.SequenceConfig{Reply: proxy.LastStep, Steps: []proxy.SequenceStep{
				{Name: "customer", Upstream: up, Path: "/customers/{id}"},
				{Name: "audit", Upstream: up, Path: "/audit", Body: `{"who": {customer.customer}, "city": {customer.address.city}, "asked": {query.why}}`},
			}},
			target: "/c/42?why=look",
			status: 200,
			want:   `{"who": {"id":"7/a b","tier":"gold"}, "city": "Oslo", "asked": "look"}`,
		},
		{
			name: "missing value",
			cfg: proxy.SequenceConfig{Steps: []proxy.SequenceStep{
				customer,
				{Name: "accounts", Key: "accounts", Upstream: up, Path: "/customers/{customer.customer.number}/accounts"},
			}},
			target: "/c/42",
			status: 502,
			want:   `step "accounts": {customer.customer.number} in the reply of step "customer" has no value`,
		},
		{
			name: "null value",
			cfg: proxy.SequenceConfig{Steps: []proxy.SequenceStep{
				customer,
				{Name: "accounts", Key: "accounts", Upstream: up, Path: "/a?x={customer.none}"},
			}},
			target: "/c/42",
			status: 502,
			want:   `{customer.none} in the reply of step "customer" has no value`,
		},
		{
			name: "object value in a URL",
			cfg: proxy.SequenceConfig{Steps: []proxy.SequenceStep{
				customer,
				{Name: "accounts", Key: "accounts", Upstream: up, Path: "/a/{customer.address}"},
			}},
			target: "/c/42",
			status: 502,
			want:   `is an object or array`,
		},
		{
			name:   "first step fails with the upstream's status and body",
			cfg:    proxy.SequenceConfig{Steps: []proxy.SequenceStep{customer, accounts}},
			target: "/c/500",
			status: 502,
			want:   `customer (500 error reply)`,
			failed: []aggFailure{{Step: "customer", Status: 500, Error: "error reply", Body: json.RawMessage(`{"error":"database on fire"}`)}},
		},
		{
			name:   "second step fails",
			cfg:    proxy.SequenceConfig{Steps: []proxy.SequenceStep{customer, {Name: "accounts", Key: "accounts", Upstream: up, Path: "/nowhere/{customer.name}"}}},
			target: "/c/42",
			status: 502,
			want:   `accounts (404 error reply)`,
			failed: []aggFailure{{Step: "accounts", Status: 404, Error: "error reply", Body: json.RawMessage(`{"error":"not found"}`)}},
		},
		{
			name: "step timeout",
			cfg: proxy.SequenceConfig{Steps: []proxy.SequenceStep{
				customer, {Name: "slow", Key: "slow", Timeout: 20 * time.Millisecond, Upstream: aggWait(time.Minute, `{}`, nil)},
			}},
			target: "/c/42",
			status: 504,
			want:   `slow (timeout)`,
			failed: []aggFailure{{Step: "slow", Error: "timeout"}},
		},
		{
			name: "sequence timeout",
			cfg: proxy.SequenceConfig{Timeout: 30 * time.Millisecond, Steps: []proxy.SequenceStep{
				customer, {Name: "slow", Key: "slow", Upstream: aggWait(time.Minute, `{}`, nil)},
			}},
			target: "/c/42",
			status: 504,
			want:   `slow (timeout)`,
		},
		{
			name: "reply too large",
			cfg: proxy.SequenceConfig{MaxReplyBytes: 20, Steps: []proxy.SequenceStep{
				customer, accounts,
			}},
			target: "/c/42",
			status: 502,
			want:   `customer (200 reply too large)`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			seq, err := proxy.Sequence(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			gw := newGateway(t, gateway.Options{}, gateway.Route{Path: "/c/{id}", Handler: seq})
			resp, body := get(t, gw, tc.target)
			if tc.status == 200 {
				if resp.StatusCode != 200 || string(body) != tc.want {
					t.Fatalf("%d %s\nwant %s", resp.StatusCode, body, tc.want)
				}
				if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
					t.Errorf("Content-Type = %q", ct)
				}
				return
			}
			doc := checkProblem(t, resp, body, tc.status)
			if d := fmt.Sprint(doc["detail"]); !strings.Contains(d, tc.want) {
				t.Errorf("detail %q, want it to hold %q", d, tc.want)
			}
			if tc.failed == nil {
				return
			}
			var got struct{ Failed []aggFailure }
			json.Unmarshal(body, &got)
			if len(got.Failed) != 1 {
				t.Fatalf("failed %s", body)
			}
			g, f := got.Failed[0], tc.failed[0]
			if g.Step != f.Step || g.Status != f.Status || g.Error != f.Error || (f.Body == nil) != (g.Body == nil) ||
				(f.Body != nil && !aggJSONEqual(t, string(g.Body), string(f.Body))) {
				t.Errorf("failed %+v (body %s), want %+v (body %s)", g, g.Body, f, f.Body)
			}
		})
	}
}

// TestSequenceInProcess runs a sequence of in-process upstreams without a
// socket and checks that nothing is left running.
func TestSequenceInProcess(t *testing.T) {
	aggNoLeaks(t)
	steps := []proxy.SequenceStep{
		{Name: "a", Key: "a", Upstream: aggReply(200, `{"next":"x y"}`)},
		{Name: "b", Key: "b", Path: "/b/{a.next}", Upstream: gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
			return gateway.NewResponse(200, nil, []byte(fmt.Sprintf("%q", req.HTTP.URL.EscapedPath()))), nil
		})},
	}
	seq, err := proxy.Sequence(proxy.SequenceConfig{Steps: steps})
	if err != nil {
		t.Fatal(err)
	}
	w := aggServe(t, "/s", seq, "/s", nil)
	if want := `{"a":{"next":"x y"},"b":"/b/x%20y"}`; w.Code != 200 || w.Body.String() != want {
		t.Errorf("%d %s, want %s", w.Code, w.Body, want)
	}
}

func TestSequenceConfigErrors(t *testing.T) {
	up := aggReply(200, `{}`)
	tests := []struct {
		name string
		cfg  proxy.SequenceConfig
		want string
	}{
		{"no steps", proxy.SequenceConfig{}, "Steps: at least one"},
		{"unknown step", proxy.SequenceConfig{Steps: []proxy.SequenceStep{{Name: "a", Key: "a", Upstream: up}, {Name: "b", Key: "b", Upstream: up, Path: "/x/{c.id}"}}},
			`Steps[1] "b": Path "/x/{c.id}": reference {c.id}: no earlier step is called "c"`},
		{"later step", proxy.SequenceConfig{Steps: []proxy.SequenceStep{{Name: "a", Key: "a", Upstream: up, Path: "/x/{b.id}"}, {Name: "b", Key: "b", Upstream: up}}},
			`Steps[0] "a": Path "/x/{b.id}": reference {b.id}: no earlier step is called "b"`},
		{"itself", proxy.SequenceConfig{Steps: []proxy.SequenceStep{{Name: "a", Key: "a", Upstream: up, Path: "/x/{a.id}"}}},
			`no earlier step is called "a"`},
		{"unknown step in body", proxy.SequenceConfig{Steps: []proxy.SequenceStep{{Name: "a", Key: "a", Upstream: up, Body: `{"x": {z.id}}`}}},
			`Steps[0] "a": Body: reference {z.id}`},
		{"bad member path", proxy.SequenceConfig{Steps: []proxy.SequenceStep{{Name: "a", Key: "a", Upstream: up}, {Name: "b", Key: "b", Upstream: up, Path: "/x/{a..id}"}}},
			`reference {a..id}: empty member name`},
		{"reserved name", proxy.SequenceConfig{Steps: []proxy.SequenceStep{{Name: "query", Key: "a", Upstream: up}}}, `"query" is reserved`},
		{"duplicate name", proxy.SequenceConfig{Steps: []proxy.SequenceStep{{Name: "a", Key: "a", Upstream: up}, {Name: "a", Key: "b", Upstream: up}}}, `Steps[1] "a": Name: another step`},
		{"same key", proxy.SequenceConfig{Steps: []proxy.SequenceStep{{Name: "a", Key: "k", Upstream: up}, {Name: "b", Key: "k", Upstream: up}}}, `Steps[1] "b": Key "k": overlaps`},
		{"key with last step", proxy.SequenceConfig{Reply: proxy.LastStep, Steps: []proxy.SequenceStep{{Name: "a", Key: "k", Upstream: up}, {Name: "b", Upstream: up}}},
			`Steps[0] "a": Key and Fields`},
		{"bad reply", proxy.SequenceConfig{Reply: 9, Steps: []proxy.SequenceStep{{Name: "a", Upstream: up}}}, `Reply: unknown`},
		{"negative size", proxy.SequenceConfig{MaxReplyBytes: -5, Steps: []proxy.SequenceStep{{Name: "a", Upstream: up}}}, `MaxReplyBytes`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := proxy.Sequence(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to hold %q", err, tc.want)
			}
		})
	}
}

// BenchmarkSequence2 runs two in-process steps, the second using a value
// from the first.
func BenchmarkSequence2(b *testing.B) {
	seq, err := proxy.Sequence(proxy.SequenceConfig{Steps: []proxy.SequenceStep{
		{Name: "customer", Key: "customer", Upstream: aggReply(200, `{"id":42,"name":"Ann"}`)},
		{Name: "accounts", Key: "accounts", Path: "/customers/{customer.id}/accounts", Upstream: aggReply(200, `[{"iban":"NO1"}]`)},
	}})
	if err != nil {
		b.Fatal(err)
	}
	req := gateway.NewRequest(httptest.NewRequest("GET", "/", nil))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		resp, err := seq.Serve(ctx, req)
		if err != nil {
			b.Fatal(err)
		}
		resp.Close()
	}
}

// Fetch a customer, then the customer's accounts by the id in the first
// reply.
func ExampleSequence() {
	customers := gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		return gateway.NewResponse(200, nil, []byte(`{"id":"c/7","email":"ann@example.com"}`)), nil
	})
	accounts := gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		body := fmt.Sprintf(`[{"iban":"NO93","asked":%q}]`, req.HTTP.URL.RequestURI())
		return gateway.NewResponse(200, nil, []byte(body)), nil
	})
	seq, err := proxy.Sequence(proxy.SequenceConfig{Steps: []proxy.SequenceStep{
		{Name: "customer", Upstream: customers, Path: "/customers/by-email?email={query.email}", Key: "customer"},
		{Name: "accounts", Upstream: accounts, Path: "/customers/{customer.id}/accounts", Key: "accounts"},
	}})
	if err != nil {
		log.Fatal(err)
	}
	router, err := gateway.NewRouter(gateway.RouterConfig{Routes: []gateway.Route{
		{Path: "/overview", Handler: seq},
	}})
	if err != nil {
		log.Fatal(err)
	}
	w := httptest.NewRecorder()
	router.ServeHTTP(w, httptest.NewRequest("GET", "/overview?email=ann@example.com", nil))
	fmt.Println(w.Code)
	fmt.Println(w.Body)
	// Output:
	// 200
	// {"customer":{"id":"c/7","email":"ann@example.com"},"accounts":[{"iban":"NO93","asked":"/customers/c%2F7/accounts"}]}
}
