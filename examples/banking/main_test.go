package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"regexp"
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

// reply is what one curl command shows.
type reply struct {
	status int
	header http.Header
	body   []byte
}

// dashboard is the JSON document GET /v1/dashboard answers.
type dashboard struct {
	Customer struct{ ID, Name string }
	Accounts []struct {
		ID, Kind, Currency, Balance string
	}
	Transactions []struct {
		ID, Account, Amount, Currency, Description string
		BookedAt                                   string `json:"booked_at"`
	}
	Loans []struct {
		ID, Product, Currency, Principal, Outstanding, Rate string
		NextPayment                                         string `json:"next_payment"`
	}
	Missing json.RawMessage `json:"missing"`
}

// TestBanking runs the example as `go run` would and tries the curl commands
// its README documents, in their order: the steps share the ledger and the
// rate-limit buckets, as they do for someone typing them.
func TestBanking(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // runs last, after the shutdown below
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	adminLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// A clock that stands still: no token refills a bucket during the test,
	// however slow the machine.
	start := time.Now()
	cfg := config{now: func() time.Time { return start }}
	ctx, cancel := context.WithCancel(context.Background())
	var out, logs syncBuffer
	errc := make(chan error, 1)
	go func() { errc <- run(ctx, ln, adminLn, &out, &logs, cfg) }()
	base, adminBase := "http://"+ln.Addr().String(), "http://"+adminLn.Addr().String()
	client := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(func() {
		client.CloseIdleConnections()
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("run: %v", err)
		}
	})

	do := func(method, url, token, body string, header ...string) reply {
		t.Helper()
		var r io.Reader
		if body != "" {
			r = strings.NewReader(body)
		}
		req, err := http.NewRequest(method, url, r)
		if err != nil {
			t.Fatal(err)
		}
		if body != "" { // as curl --json
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json")
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, url, err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("%s %s: %v", method, url, err)
		}
		return reply{resp.StatusCode, resp.Header, b}
	}
	expect := func(name string, got reply, status int, contentType string, bodyParts ...string) {
		t.Helper()
		if got.status != status {
			t.Fatalf("%s: status %d, want %d; body %s", name, got.status, status, got.body)
		}
		if ct := got.header.Get("Content-Type"); ct != contentType {
			t.Errorf("%s: Content-Type %q, want %q", name, ct, contentType)
		}
		for _, p := range bodyParts {
			if !bytes.Contains(got.body, []byte(p)) {
				t.Errorf("%s: body %s lacks %s", name, got.body, p)
			}
		}
	}
	token := func(query string) string {
		t.Helper()
		r := do("GET", base+"/demo/token?"+query, "", "")
		expect("token "+query, r, 200, "text/plain; charset=utf-8")
		tok := strings.TrimSuffix(string(r.body), "\n")
		if strings.Count(tok, ".") != 2 || strings.ContainsAny(tok, " \n") {
			t.Fatalf("token %s: %q is not a compact JWS", query, tok)
		}
		return tok
	}
	decodeDashboard := func(name string, r reply) dashboard {
		t.Helper()
		expect(name, r, 200, "application/json")
		dec := json.NewDecoder(bytes.NewReader(r.body))
		dec.DisallowUnknownFields()
		var d dashboard
		if err := dec.Decode(&d); err != nil {
			t.Fatalf("%s: %s is not the dashboard: %v", name, r.body, err)
		}
		return d
	}

	// TOKEN=$(curl -s 'localhost:8080/demo/token?sub=c-100')
	tok := token("sub=c-100")

	// The token printed at start-up works as well.
	m := regexp.MustCompile(`TOKEN=(\S+)`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no token printed:\n%s", out.String())
	}
	expect("printed token", do("GET", base+"/v1/loans", m[1], ""), 200, "application/json", `"customer":"c-100"`)

	// The dashboard: the three services merged, for c-100 only.
	for _, path := range []string{"/v1/dashboard", "/v1/dashboard?customer=c-200"} {
		d := decodeDashboard(path, do("GET", base+path, tok, ""))
		if d.Customer.ID != "c-100" || d.Customer.Name != "Ada Lovelace" {
			t.Errorf("%s: customer %+v, want c-100", path, d.Customer)
		}
		if len(d.Accounts) != 2 || d.Accounts[0].ID != "acc-1001" || d.Accounts[0].Balance != "2450.00" || d.Accounts[1].ID != "acc-1002" {
			t.Errorf("%s: accounts %+v", path, d.Accounts)
		}
		if len(d.Transactions) != 2 || d.Transactions[0].ID != "tx-2" || d.Transactions[1].Amount != "2100.00" {
			t.Errorf("%s: transactions %+v", path, d.Transactions)
		}
		if len(d.Loans) != 1 || d.Loans[0].ID != "L-7001" || d.Loans[0].Outstanding != "212345.67" || d.Loans[0].Rate != "3.10" {
			t.Errorf("%s: loans %+v", path, d.Loans)
		}
		if d.Missing != nil {
			t.Errorf("%s: backends missing: %s", path, d.Missing)
		}
	}

	// The legacy XML, as JSON; the limit's fields on an admitted reply.
	r := do("GET", base+"/v1/loans?customer=c-200", tok, "")
	expect("loans", r, 200, "application/json")
	const wantLoans = `{"customer":"c-100","loans":[{"id":"L-7001","product":"mortgage","currency":"EUR","principal":"250000.00","outstanding":"212345.67","rate":"3.10","next_payment":"2026-06-01"}]}`
	if string(r.body) != wantLoans {
		t.Errorf("loans: body\n%s\nwant\n%s", r.body, wantLoans)
	}
	if got, want := r.header.Get("RateLimit-Policy"), `"per-customer";q=10;w=20`; got != want {
		t.Errorf("loans: RateLimit-Policy %q, want %q", got, want)
	}
	if got, want := r.header.Get("RateLimit"), `"per-customer";r=6;t=8`; got != want {
		t.Errorf("loans: RateLimit %q, want %q (the 4th request of the burst)", got, want)
	}
	if r.header.Get("X-Request-Id") == "" {
		t.Error("loans: no X-Request-Id")
	}

	// Transfers: booked, refused by the schema, refused by the service.
	r = do("POST", base+"/v1/transfers", tok, `{"from":"acc-1001","to":"acc-2001","amount":"25.00","currency":"EUR"}`)
	expect("transfer", r, 201, "application/json", `"id":"tx-4"`, `"status":"booked"`, `"balance_after":"2425.00"`)
	if got := r.header.Get("Location"); got != "/v1/transfers/tx-4" {
		t.Errorf("transfer: Location %q", got)
	}
	r = do("POST", base+"/v1/transfers", tok, `{"from":"acc-1001","amount":"-5","currency":"XYZ"}`)
	expect("invalid transfer", r, 422, "application/problem+json", `"status":422`)
	var problem struct {
		Errors []struct{ Pointer, Message string }
	}
	if err := json.Unmarshal(r.body, &problem); err != nil {
		t.Fatalf("invalid transfer: %s: %v", r.body, err)
	}
	var pointers []string
	for _, e := range problem.Errors {
		pointers = append(pointers, e.Pointer)
	}
	if got, want := strings.Join(pointers, ","), ",/amount,/currency"; got != want {
		t.Errorf("invalid transfer: pointers %q, want %q; body %s", got, want, r.body)
	}
	r = do("POST", base+"/v1/transfers", tok, `{"from":"acc-2001","to":"acc-1001","amount":"1.00","currency":"GBP"}`, "X-Customer-Id", "c-200")
	expect("someone else's account", r, 403, "application/json", `"error":"the source account is not one of the customer's"`)
	r = do("POST", base+"/v1/transfers", tok, `{"from":"acc-1001","to":"acc-2001","amount":"1.00"}`, "Content-Type", "application/x-www-form-urlencoded")
	expect("form body", r, 415, "application/problem+json")

	// The transfer shows on the dashboard: the services share the ledger.
	d := decodeDashboard("dashboard after transfer", do("GET", base+"/v1/dashboard", tok, ""))
	if len(d.Accounts) < 1 || d.Accounts[0].Balance != "2425.00" {
		t.Errorf("dashboard after transfer: accounts %+v", d.Accounts)
	}
	if len(d.Transactions) != 3 || d.Transactions[0].ID != "tx-4" || d.Transactions[0].Amount != "-25.00" ||
		d.Transactions[0].BookedAt != start.UTC().Format(time.RFC3339) {
		t.Errorf("dashboard after transfer: transactions %+v", d.Transactions)
	}

	// Without a token, with a bad one, without the scope.
	r = do("GET", base+"/v1/dashboard", "", "")
	expect("no token", r, 401, "application/problem+json", `"status":401`)
	if got := r.header.Get("WWW-Authenticate"); got != `Bearer realm="banking"` {
		t.Errorf("no token: WWW-Authenticate %q", got)
	}
	r = do("GET", base+"/v1/dashboard", tok[:len(tok)-4]+"AAAA", "")
	expect("bad signature", r, 401, "application/problem+json")
	if got := r.header.Get("WWW-Authenticate"); !strings.Contains(got, `error="invalid_token"`) {
		t.Errorf("bad signature: WWW-Authenticate %q", got)
	}
	readOnly := token("sub=c-100&scope=accounts:read")
	r = do("POST", base+"/v1/transfers", readOnly, `{}`)
	expect("read-only token", r, 403, "application/problem+json", `"error":"insufficient_scope"`)
	if got := r.header.Get("WWW-Authenticate"); !strings.Contains(got, `scope="transfers:write"`) {
		t.Errorf("read-only token: WWW-Authenticate %q", got)
	}
	expect("unknown customer", do("GET", base+"/demo/token?sub=c-999", "", ""), 404, "application/problem+json")
	expect("unknown scope", do("GET", base+"/demo/token?sub=c-100&scope=admin", "", ""), 400, "application/problem+json")

	// The burst: c-200 has a bucket of its own, 10 deep, full although
	// c-100 has spent nearly all of theirs by now.
	t2 := token("sub=c-200")
	var codes []string
	for range 12 {
		r = do("GET", base+"/v1/loans", t2, "")
		codes = append(codes, http.StatusText(r.status))
		if r.status == 200 && !bytes.Contains(r.body, []byte(`"customer":"c-200"`)) {
			t.Errorf("c-200's loans: %s", r.body)
		}
	}
	if got, want := strings.Join(codes, ","), strings.Repeat("OK,", 10)+"Too Many Requests,Too Many Requests"; got != want {
		t.Errorf("burst: %s, want %s", got, want)
	}
	r = do("GET", base+"/v1/loans", t2, "")
	expect("over the limit", r, 429, "application/problem+json", `rate limit \"per-customer\" exceeded`)
	for name, want := range map[string]string{
		"Retry-After":      "2",
		"RateLimit":        `"per-customer";r=0;t=20`,
		"RateLimit-Policy": `"per-customer";q=10;w=20`,
	} {
		if got := r.header.Get(name); got != want {
			t.Errorf("over the limit: %s %q, want %q", name, got, want)
		}
	}

	// The admin port.
	r = do("GET", adminBase+"/metrics", "", "")
	if r.status != 200 {
		t.Fatalf("metrics: status %d", r.status)
	}
	for _, want := range []string{
		`gatekit_ratelimit_decisions_total{decision="refused",policy="per-customer"} 3`,
		`gatekit_requests_total{method="GET",route="dashboard",status="200"} 3`,
		`gatekit_requests_total{method="POST",route="transfers",status="422"} 1`,
		`gatekit_requests_total{method="GET",route="loans",status="429"} 3`,
		`gatekit_upstream_duration_seconds_count{target="` + strings.TrimPrefix(regexp.MustCompile(`loans \(XML\) (\S+)`).FindStringSubmatch(out.String())[1], "http://") + `",upstream="http"}`,
	} {
		if !bytes.Contains(r.body, []byte(want)) {
			t.Errorf("metrics lack %s", want)
		}
	}
	expect("readyz", do("GET", adminBase+"/readyz", "", ""), 200, "application/json", `"status":"ready"`, `"loans":"ok"`)
	expect("livez", do("GET", adminBase+"/livez", "", ""), 200, "application/json")
	expect("metrics not on the gateway", do("GET", base+"/metrics", "", ""), 404, "application/problem+json")

	for _, want := range []string{"route=dashboard", "subject=c-100", "upstream.2.kind=http", `ratelimit="per-customer refused"`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("access log lacks %q", want)
		}
	}
	if strings.Contains(logs.String(), tok) {
		t.Error("the access log holds a token")
	}
}
