// Command banking is the microservices demo behind gatekit: an accounts
// service, a transactions service and a legacy loan service that speaks only
// XML, all started in-process on loopback ports, behind one gateway on
// 127.0.0.1:8080 with its metrics and health probes on an admin port,
// 127.0.0.1:9090.
//
// Customers authenticate with a JWT whose "sub" is their customer id. The
// program makes an ES256 signing key at start-up and prints a demo token for
// customer c-100; GET /demo/token mints more (demo only: a real gateway only
// verifies tokens that an identity provider issued).
//
//   - GET /v1/dashboard calls the three services at once and merges their
//     replies, for the customer named by the token and no one else;
//
//   - POST /v1/transfers checks its body against a JSON Schema (422 listing
//     every violation) before the transactions service sees it;
//
//   - GET /v1/loans serves the legacy loan service's XML as JSON;
//
//   - every /v1 route is limited per customer: bursts of 10, then 30 a minute.
//
//     go run ./examples/banking
//     go run ./examples/banking -addr 127.0.0.1:8000 -admin 127.0.0.1:9000
//
// Try:
//
//	TOKEN=$(curl -s 'localhost:8080/demo/token?sub=c-100')
//	curl -s -H "Authorization: Bearer $TOKEN" localhost:8080/v1/dashboard
//	curl -s -H "Authorization: Bearer $TOKEN" 'localhost:8080/v1/dashboard?customer=c-200'  # still c-100's
//	curl -i -H "Authorization: Bearer $TOKEN" localhost:8080/v1/loans                       # XML upstream, JSON here
//	curl -i -H "Authorization: Bearer $TOKEN" localhost:8080/v1/transfers \
//	  --json '{"from":"acc-1001","to":"acc-2001","amount":"25.00","currency":"EUR"}'         # 201
//	curl -i -H "Authorization: Bearer $TOKEN" localhost:8080/v1/transfers \
//	  --json '{"from":"acc-1001","amount":"-5","currency":"XYZ"}'                            # 422, three violations
//	curl -i -H "Authorization: Bearer $TOKEN" -H 'X-Customer-Id: c-200' localhost:8080/v1/transfers \
//	  --json '{"from":"acc-2001","to":"acc-1001","amount":"1.00","currency":"GBP"}'          # 403: not c-100's account
//	curl -i localhost:8080/v1/dashboard                                                     # 401
//	READONLY=$(curl -s 'localhost:8080/demo/token?sub=c-100&scope=accounts:read')
//	curl -i -H "Authorization: Bearer $READONLY" localhost:8080/v1/transfers --json '{}'    # 403 insufficient_scope
//	T2=$(curl -s 'localhost:8080/demo/token?sub=c-200')
//	for i in $(seq 12); do curl -s -o /dev/null -w '%{http_code} ' -H "Authorization: Bearer $T2" localhost:8080/v1/loans; done; echo
//	curl -i -H "Authorization: Bearer $T2" localhost:8080/v1/loans                          # 429, Retry-After, RateLimit
//	curl -s localhost:9090/metrics | grep gatekit_ratelimit
//	curl -i localhost:9090/readyz
//
// (curl older than 7.82 lacks --json: use -H 'Content-Type: application/json' -d '...'.)
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/gatekit/gatekit/auth"
	"github.com/gatekit/gatekit/gateway"
	"github.com/gatekit/gatekit/gateway/metrics"
	"github.com/gatekit/gatekit/proxy"
	"github.com/gatekit/gatekit/ratelimit"
	"github.com/gatekit/gatekit/transform"
	"github.com/gatekit/gatekit/validate"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address the gateway listens on")
	admin := flag.String("admin", "127.0.0.1:9090", "address of the admin listener (metrics, health)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	adminLn, err := net.Listen("tcp", *admin)
	if err != nil {
		log.Fatal(err)
	}
	if err := run(ctx, ln, adminLn, os.Stdout, os.Stderr, config{}); err != nil {
		log.Fatal(err)
	}
}

// config holds what tests change.
type config struct {
	// now is the clock of tokens, rate limits and bookings; nil means
	// time.Now.
	now func() time.Time
}

const (
	demoIssuer   = "https://idp.banking.example"
	demoAudience = "banking-api"
	demoKeyID    = "demo-es256"
	scopeRead    = "accounts:read"
	scopeWrite   = "transfers:write"
)

// transferSchema is what POST /v1/transfers accepts. Amounts are decimal
// strings, as the services write them: a float cannot hold 0.10 exactly.
const transferSchema = `{
  "type": "object",
  "required": ["from", "to", "amount", "currency"],
  "additionalProperties": false,
  "properties": {
    "from":      {"type": "string", "pattern": "^acc-[0-9]{4}$"},
    "to":        {"type": "string", "pattern": "^acc-[0-9]{4}$"},
    "amount":    {"type": "string", "pattern": "^[0-9]{1,9}\\.[0-9]{2}$"},
    "currency":  {"enum": ["EUR", "GBP", "USD"]},
    "reference": {"type": "string", "maxLength": 140}
  }
}`

// run serves the gateway on ln and the admin endpoints on adminLn until ctx
// is done, printing what to try to out and logging to logs.
func run(ctx context.Context, ln, adminLn net.Listener, out, logs io.Writer, cfg config) error {
	now := cfg.now
	if now == nil {
		now = time.Now
	}
	logger := slog.New(slog.NewTextHandler(logs, nil))

	svc, err := startServices(now)
	if err != nil {
		return err
	}
	defer svc.stop()
	accounts, err := proxy.HTTP(proxy.HTTPConfig{Targets: []string{svc.accountsURL}, Logger: logger})
	if err != nil {
		return err
	}
	defer accounts.Close()
	transactions, err := proxy.HTTP(proxy.HTTPConfig{Targets: []string{svc.transactionsURL}, StripPrefix: "/v1", Logger: logger})
	if err != nil {
		return err
	}
	defer transactions.Close()
	loans, err := proxy.HTTP(proxy.HTTPConfig{Targets: []string{svc.loansURL}, StripPrefix: "/v1", Logger: logger})
	if err != nil {
		return err
	}
	defer loans.Close()

	// The demo identity provider: a key made now, never written anywhere.
	signingKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	keys, err := auth.StaticKeys(auth.Key{ID: demoKeyID, Algorithms: []string{"ES256"}, Key: &signingKey.PublicKey})
	if err != nil {
		return err
	}
	jwtAuth, err := auth.JWT(auth.JWTConfig{
		Keys: keys, Issuers: []string{demoIssuer}, Audiences: []string{demoAudience},
		Algorithms: []string{"ES256"}, Realm: "banking", Now: cfg.now,
	})
	if err != nil {
		return err
	}
	canRead, err := auth.Require(auth.Policy{Scopes: []string{scopeRead}, Realm: "banking"})
	if err != nil {
		return err
	}
	canTransfer, err := auth.Require(auth.Policy{Scopes: []string{scopeWrite}, Realm: "banking"})
	if err != nil {
		return err
	}
	perCustomer, err := ratelimit.New(ratelimit.Config{
		Name: "per-customer", Rate: 30, Per: time.Minute, Burst: 10,
		Key: ratelimit.BySubject(), Headers: true, Now: cfg.now,
	})
	if err != nil {
		return err
	}

	// The customer id comes from the token only: SetQuery and Forward
	// remove whatever the client sent under the same name first.
	customerQuery, err := transform.Request(transform.Config{Ops: []transform.Op{
		transform.SetQuery("customer", transform.Subject()),
	}})
	if err != nil {
		return err
	}
	forward, err := auth.Forward(auth.ForwardConfig{Headers: map[string]string{"X-Customer-Id": "sub"}, StripAuthorization: true})
	if err != nil {
		return err
	}
	// The legacy loan service's XML becomes JSON. KeepStrings keeps amounts
	// and rates as strings, like the JSON services write them; Arrays makes
	// one loan a list of one.
	loansJSON, err := transform.Response(transform.Config{Ops: []transform.Op{
		transform.XMLToJSON(transform.XMLConfig{Arrays: []string{"loan"}, KeepStrings: true}),
		transform.Rename(`\@customer`, "customer"),
		transform.Rename("loan", "loans"),
	}})
	if err != nil {
		return err
	}
	loansAsJSON := gateway.Chain(loans, loansJSON.Stage())

	dashboard, err := proxy.Aggregate(proxy.AggregateConfig{
		Backends: []proxy.AggregateBackend{
			{Name: "accounts", Upstream: accounts, Path: "/customers/{query.customer}/accounts", Fields: []string{"customer", "accounts"}},
			{Name: "transactions", Upstream: transactions, Path: "/customers/{query.customer}/transactions", Fields: []string{"transactions"}},
			// The legacy system is slow and flaky: the dashboard answers
			// without it, listing it as missing.
			{Name: "loans", Upstream: loansAsJSON, Path: "/loans?customer={query.customer}", Fields: []string{"loans"}, Optional: true, Timeout: 2 * time.Second},
		},
		Partial: proxy.ReturnPartial,
		Timeout: 5 * time.Second,
	})
	if err != nil {
		return err
	}
	validTransfer, err := validate.New(validate.Config{Route: "transfers", Body: validate.Schema{JSON: transferSchema}, MaxBytes: 4 << 10})
	if err != nil {
		return err
	}

	// Every /v1 route authenticates, then counts against the customer's
	// limit, then checks the scope.
	customerRoute := func(upstream gateway.Handler, scope *auth.Requirement, stages ...gateway.Stage) gateway.Handler {
		return gateway.NewPipeline(upstream, append([]gateway.Stage{
			gateway.Authenticate(jwtAuth), gateway.Limit(perCustomer), gateway.Authorize(scope),
		}, stages...)...)
	}
	m, err := metrics.New(metrics.Config{})
	if err != nil {
		return err
	}
	router, err := gateway.NewRouter(gateway.RouterConfig{
		Options: gateway.Options{
			Logger:     logger,
			Observers:  []gateway.Observer{gateway.NewAccessLog(gateway.AccessLogConfig{Logger: logger}), m},
			RequestIDs: true,
		},
		Routes: []gateway.Route{
			{Name: "dashboard", Methods: []string{"GET"}, Path: "/v1/dashboard",
				Handler: customerRoute(dashboard, canRead, customerQuery.Stage())},
			{Name: "loans", Methods: []string{"GET"}, Path: "/v1/loans",
				Handler: customerRoute(loans, canRead, customerQuery.Stage(), gateway.TransformRequest(forward), loansJSON.Stage())},
			{Name: "transfers", Methods: []string{"POST"}, Path: "/v1/transfers",
				Handler: customerRoute(transactions, canTransfer, gateway.Validate(validTransfer), gateway.TransformRequest(forward))},
			{Name: "demo-token", Methods: []string{"GET"}, Path: "/demo/token",
				Handler: gateway.NewPipeline(demoTokens(signingKey, now))},
		},
	})
	if err != nil {
		return err
	}

	health, err := gateway.NewHealth(gateway.HealthConfig{Logger: logger, Checks: []gateway.ReadinessCheck{
		{Name: "accounts", Check: func(context.Context) error { return accounts.Ready() }},
		{Name: "transactions", Check: func(context.Context) error { return transactions.Ready() }},
		{Name: "loans", Check: func(context.Context) error { return loans.Ready() }},
	}})
	if err != nil {
		return err
	}
	adminMux := http.NewServeMux()
	adminMux.Handle("GET /metrics", m.Handler())
	adminMux.Handle("GET /livez", health.Live())
	adminMux.Handle("GET /readyz", health.Ready())

	token, err := mintToken(signingKey, now(), "c-100", scopeRead+" "+scopeWrite)
	if err != nil {
		return err
	}
	base, adminBase := "http://"+ln.Addr().String(), "http://"+adminLn.Addr().String()
	fmt.Fprintf(out, "gatekit banking: gateway on %s, metrics and health on %s\n", base, adminBase)
	fmt.Fprintf(out, "services: accounts %s, transactions %s, loans (XML) %s\n\n", svc.accountsURL, svc.transactionsURL, svc.loansURL)
	fmt.Fprintf(out, "A demo token for customer c-100, valid for an hour (more from %s/demo/token?sub=c-200):\n\n  TOKEN=%s\n\nTry:\n", base, token)
	for _, c := range []string{
		`curl -s -H "Authorization: Bearer $TOKEN" ` + base + "/v1/dashboard",
		`curl -i -H "Authorization: Bearer $TOKEN" ` + base + "/v1/loans",
		`curl -i -H "Authorization: Bearer $TOKEN" ` + base + `/v1/transfers --json '{"from":"acc-1001","to":"acc-2001","amount":"25.00","currency":"EUR"}'`,
		`curl -i -H "Authorization: Bearer $TOKEN" ` + base + `/v1/transfers --json '{"from":"acc-1001","amount":"-5","currency":"XYZ"}'`,
		"curl -i " + base + "/v1/dashboard",
		"curl -s " + adminBase + "/metrics | grep gatekit_requests_total",
	} {
		fmt.Fprintln(out, "  "+c)
	}
	fmt.Fprintln(out, "\nAccess log on stderr. Ctrl-C stops it (in-flight requests finish first).")

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 2)
	go func() {
		errc <- (&gateway.Server{Handler: router, Health: health, Logger: logger}).Serve(ctx, ln)
	}()
	go func() {
		errc <- (&gateway.Server{Handler: adminMux, Logger: logger}).Serve(ctx, adminLn)
	}()
	// When either server stops, for ctx or an error, stop the other too.
	err = <-errc
	cancel()
	return errors.Join(err, <-errc)
}

// demoTokens serves GET /demo/token?sub=c-100[&scope=accounts:read]: a token
// for one of the demo customers. DEMO ONLY: anyone who reaches it can act as
// any demo customer. A real gateway never issues tokens; it verifies those
// of an identity provider (auth.DiscoverJWKS).
func demoTokens(key *ecdsa.PrivateKey, now func() time.Time) gateway.HandlerFunc {
	return func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		q := req.HTTP.URL.Query()
		sub := q.Get("sub")
		if sub != "c-100" && sub != "c-200" {
			return nil, gateway.Errorf(http.StatusNotFound, "the demo customers are c-100 and c-200")
		}
		scope := scopeRead + " " + scopeWrite
		if q.Has("scope") {
			scope = q.Get("scope")
			for s := range strings.FieldsSeq(scope) {
				if s != scopeRead && s != scopeWrite {
					return nil, gateway.Errorf(http.StatusBadRequest, "the demo scopes are %s and %s", scopeRead, scopeWrite)
				}
			}
		}
		token, err := mintToken(key, now(), sub, scope)
		if err != nil {
			return nil, err
		}
		return gateway.NewResponse(http.StatusOK, http.Header{
			"Content-Type":  {"text/plain; charset=utf-8"},
			"Cache-Control": {"no-store"},
		}, []byte(token+"\n")), nil
	}
}

// mintToken signs an access token for sub with scope, valid for an hour.
func mintToken(key *ecdsa.PrivateKey, now time.Time, sub, scope string) (string, error) {
	t := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
		"iss":   demoIssuer,
		"aud":   demoAudience,
		"sub":   sub,
		"scope": scope,
		"iat":   now.Unix(),
		"exp":   now.Add(time.Hour).Unix(),
	})
	t.Header["kid"] = demoKeyID
	return t.SignedString(key)
}
