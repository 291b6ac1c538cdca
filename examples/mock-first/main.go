// Command mock-first shows how to build a client against an API whose backend
// does not exist yet, then switch to the backend without the client noticing.
//
// Phase 1 serves /api/accounts and /api/accounts/{id} from mocks: JSON replies
// templated from path and query values (escaped, so no value can break the
// JSON), a 404 case, and artificial latency that plays a slow backend. Phase 2
// swaps the route table atomically for one that proxies the same paths to a
// real service, which this program starts in-process on a free port. Clients
// see the same paths, status codes and JSON shapes; only the data, and the
// demo's X-Served-By field, change.
//
//	go run ./examples/mock-first
//	go run ./examples/mock-first -addr 127.0.0.1:9000
//
// Try:
//
//	curl -i localhost:8080/api/accounts/42                # phase 1: templated mock, ~200ms late
//	curl -i 'localhost:8080/api/accounts?currency=USD'    # the query value in the mock reply
//	curl -i localhost:8080/api/accounts/missing           # the mock's 404 case
//	curl -s 'localhost:8080/api/accounts?currency=%22%7D' # escaped: "currency": "\"}", still JSON
//	curl -i -X POST localhost:8080/admin/switch           # phase 2: the same routes, proxied to the service
//	curl -i localhost:8080/api/accounts/1                 # the service's account 1
//	curl -i 'localhost:8080/api/accounts?currency=USD'    # the service's filtered list, same shape
//	curl -i localhost:8080/api/accounts/missing           # the service's 404, same body
//	curl -i -X POST 'localhost:8080/admin/switch?to=mock' # back to phase 1
package main

import (
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/gatekit/gatekit/gateway"
	"github.com/gatekit/gatekit/proxy"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address the gateway listens on")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	if err := run(ctx, ln, os.Stdout, os.Stderr); err != nil {
		log.Fatal(err)
	}
}

// mockLatency plays the backend's expected response time, so that clients
// built against the mock already cope with it (spinners, timeouts).
const mockLatency = 200 * time.Millisecond

// The mocks answer as the API's specification says the backend will. Actions
// stand where a JSON value goes, never inside quotes: each writes one escaped
// JSON value.
var (
	mockAccount = proxy.MockConfig{Cases: []proxy.MockCase{
		{Params: map[string]string{"id": "missing"}, Response: proxy.MockResponse{
			Status: http.StatusNotFound, Header: http.Header{"X-Served-By": {"mock"}}, Template: true,
			Body: `{"error": "no such account", "id": {{.Param "id"}}}`,
		}},
		{Response: proxy.MockResponse{
			Header: http.Header{"X-Served-By": {"mock"}}, Template: true, Latency: mockLatency,
			Body: `{"id": {{.Param "id"}}, "owner": {{printf "Mock Owner %s" (.Param "id")}}, "currency": "EUR", "balance": "100.00"}`,
		}},
	}}
	mockList = proxy.MockConfig{Cases: []proxy.MockCase{{Response: proxy.MockResponse{
		Header: http.Header{"X-Served-By": {"mock"}}, Template: true, Latency: mockLatency,
		Body: `{"items": [
  {"id": "1", "owner": "Mock Owner 1", "currency": {{or (.Query "currency") "EUR"}}, "balance": "100.00"},
  {"id": "2", "owner": "Mock Owner 2", "currency": {{or (.Query "currency") "EUR"}}, "balance": "250.00"}
]}`,
	}}}}
)

// run serves the gateway on ln until ctx is done, printing what to try to out
// and logging to logs.
func run(ctx context.Context, ln net.Listener, out, logs io.Writer) error {
	logger := slog.New(slog.NewTextHandler(logs, nil))
	account, err := proxy.Mock(mockAccount)
	if err != nil {
		return err
	}
	list, err := proxy.Mock(mockList)
	if err != nil {
		return err
	}
	serviceURL, stopService, err := startAccountsService()
	if err != nil {
		return err
	}
	defer stopService()
	service, err := proxy.HTTP(proxy.HTTPConfig{Targets: []string{serviceURL}, StripPrefix: "/api"})
	if err != nil {
		return err
	}
	defer service.Close()

	// Each phase is a whole route table: the client-facing routes are the
	// same, only their upstreams differ.
	api := func(account, list gateway.Handler) []gateway.Route {
		return []gateway.Route{
			{Name: "account", Methods: []string{"GET"}, Path: "/api/accounts/{id}", Handler: gateway.NewPipeline(account)},
			{Name: "accounts", Methods: []string{"GET"}, Path: "/api/accounts", Handler: gateway.NewPipeline(list)},
		}
	}
	phases := map[string][]gateway.Route{}
	var router *gateway.Router
	// A real gateway serves this on an admin listener or behind
	// authentication; here it is open, to be tried with curl.
	switchTo := gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		phase := cmp.Or(req.HTTP.URL.Query().Get("to"), "backend")
		routes, ok := phases[phase]
		if !ok {
			return nil, gateway.Errorf(http.StatusBadRequest, "to must be backend or mock")
		}
		// Requests already routed finish on the old table; new ones get the new.
		if err := router.Replace(routes); err != nil {
			return nil, err
		}
		logger.Info("route table replaced", "phase", phase)
		body := `{"serving":"` + phase + `"}` + "\n" // phase is one of the map's keys
		return gateway.NewResponse(http.StatusOK, http.Header{"Content-Type": {"application/json"}}, []byte(body)), nil
	})
	admin := gateway.Route{Name: "admin-switch", Methods: []string{"POST"}, Path: "/admin/switch", Handler: gateway.NewPipeline(switchTo)}
	phases["mock"] = append(api(account, list), admin)
	phases["backend"] = append(api(service, service), admin)

	router, err = gateway.NewRouter(gateway.RouterConfig{
		Options: gateway.Options{
			Logger:     logger,
			Observers:  []gateway.Observer{gateway.NewAccessLog(gateway.AccessLogConfig{Logger: logger})},
			RequestIDs: true,
		},
		Routes: phases["mock"],
	})
	if err != nil {
		return err
	}

	base := "http://" + ln.Addr().String()
	fmt.Fprintf(out, "gatekit mock-first: gateway on %s serving mocks; accounts service on %s\n\nTry:\n", base, serviceURL)
	for _, c := range []string{
		"curl -i " + base + "/api/accounts/42",
		"curl -i '" + base + "/api/accounts?currency=USD'",
		"curl -i " + base + "/api/accounts/missing",
		"curl -i -X POST " + base + "/admin/switch            # now proxied to the service",
		"curl -i " + base + "/api/accounts/1",
		"curl -i -X POST '" + base + "/admin/switch?to=mock'  # back to the mocks",
	} {
		fmt.Fprintln(out, "  "+c)
	}
	fmt.Fprintln(out, "\nAccess log on stderr. Ctrl-C stops it (in-flight requests finish first).")
	srv := &gateway.Server{Handler: router, Logger: logger}
	return srv.Serve(ctx, ln)
}

// account is the resource of the API, as the service stores it.
type account struct {
	ID       string `json:"id"`
	Owner    string `json:"owner"`
	Currency string `json:"currency"`
	Balance  string `json:"balance"`
}

// startAccountsService starts the backend that, in the story, arrives later:
// the accounts API on a loopback port of its own. It returns its base URL and
// a function that stops it.
func startAccountsService() (string, func(), error) {
	accounts := []account{
		{"1", "Ada Lovelace", "EUR", "120.50"},
		{"2", "Alan Turing", "GBP", "80.00"},
		{"3", "Grace Hopper", "USD", "5000.00"},
	}
	reply := func(w http.ResponseWriter, status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Served-By", "accounts-service")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(v)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /accounts/{id}", func(w http.ResponseWriter, r *http.Request) {
		for _, a := range accounts {
			if a.ID == r.PathValue("id") {
				reply(w, http.StatusOK, a)
				return
			}
		}
		reply(w, http.StatusNotFound, map[string]string{"error": "no such account", "id": r.PathValue("id")})
	})
	mux.HandleFunc("GET /accounts", func(w http.ResponseWriter, r *http.Request) {
		items := []account{}
		for _, a := range accounts {
			if c := r.URL.Query().Get("currency"); c == "" || c == a.Currency {
				items = append(items, a)
			}
		}
		reply(w, http.StatusOK, map[string][]account{"items": items})
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() { srv.Serve(ln); close(done) }()
	return "http://" + ln.Addr().String(), func() { srv.Close(); <-done }, nil
}
