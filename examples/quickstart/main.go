// Command quickstart runs a gatekit gateway on 127.0.0.1:8080 in front of a
// small demo service that it starts in the same process, and prints curl
// commands to try. It needs nothing else installed:
//
//	go run ./examples/quickstart
//	go run ./examples/quickstart -addr 127.0.0.1:9000
//
// Try:
//
//	curl -i localhost:8080/api/users/1           # proxied to the demo service
//	curl -i localhost:8080/api/users/99          # the service's own 404, passed through
//	curl -i localhost:8080/hello/ada             # an in-process function upstream
//	curl -N localhost:8080/api/events            # server-sent events, streamed
//	curl -i -X POST localhost:8080/api/echo -H 'X-Api-Key: demo' -d '{"a":1}'
//	curl -i -X POST localhost:8080/api/echo -d '{"a":1}'          # 401 problem+json
//	curl -i -X DELETE localhost:8080/api/users/1 # 405 with Allow
//	curl -i --path-as-is 'localhost:8080/api/users/%2e%2e/1'      # normalised to /api/1: 404
package main

import (
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
	if err := run(ctx, ln, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// run serves the gateway on ln until ctx is done.
func run(ctx context.Context, ln net.Listener, out io.Writer) error {
	demoURL, err := startDemoService(ctx)
	if err != nil {
		return err
	}
	demo, err := proxy.HTTP(proxy.HTTPConfig{Targets: []string{demoURL}, StripPrefix: "/api"})
	if err != nil {
		return err
	}
	defer demo.Close()
	hello := gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		body := fmt.Sprintf("{\"greeting\":%q}\n", "hello, "+req.Param("name"))
		return gateway.NewResponse(http.StatusOK, http.Header{"Content-Type": {"application/json"}}, []byte(body)), nil
	})
	router, err := gateway.NewRouter(gateway.RouterConfig{Routes: []gateway.Route{
		{Name: "users", Methods: []string{"GET"}, Path: "/api/users/{id}", Handler: gateway.NewPipeline(demo)},
		{Name: "events", Methods: []string{"GET"}, Path: "/api/events", Handler: gateway.NewPipeline(demo)},
		{Name: "echo", Methods: []string{"POST"}, Path: "/api/echo", MaxBodyBytes: 1 << 10,
			Handler: gateway.NewPipeline(demo, gateway.Authenticate(demoKey))},
		{Name: "hello", Methods: []string{"GET"}, Path: "/hello/{name}", Handler: gateway.NewPipeline(hello)},
	}})
	if err != nil {
		return err
	}
	base := "http://" + ln.Addr().String()
	fmt.Fprintf(out, "gatekit quickstart: gateway on %s, demo service on %s\n\nTry:\n", base, demoURL)
	for _, c := range []string{
		"curl -i " + base + "/api/users/1",
		"curl -i " + base + "/api/users/99",
		"curl -i " + base + "/hello/ada",
		"curl -N " + base + "/api/events",
		"curl -i -X POST " + base + "/api/echo -H 'X-Api-Key: demo' -d '{\"a\":1}'",
		"curl -i -X POST " + base + "/api/echo -d '{\"a\":1}'",
		"curl -i -X DELETE " + base + "/api/users/1",
	} {
		fmt.Fprintln(out, "  "+c)
	}
	fmt.Fprintln(out, "\nCtrl-C stops it (in-flight requests finish first).")
	srv := &gateway.Server{Handler: router, Logger: slog.Default()}
	return srv.Serve(ctx, ln)
}

// demoKey accepts the API key "demo"; a real gateway uses the auth package.
var demoKey = gateway.AuthenticatorFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Principal, error) {
	switch req.HTTP.Header.Get("X-Api-Key") {
	case "":
		return nil, gateway.ErrNotResponsible
	case "demo":
		return &gateway.Principal{Subject: "demo-user", Issuer: "apikey"}, nil
	default:
		return nil, &gateway.Error{Status: http.StatusUnauthorized, Detail: "unknown API key"}
	}
})

// startDemoService starts the backend the gateway fronts, on a loopback port
// of its own, and returns its base URL.
func startDemoService(ctx context.Context) (string, error) {
	users := map[string]string{"1": "Ada Lovelace", "2": "Alan Turing"}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /users/{id}", func(w http.ResponseWriter, r *http.Request) {
		name, ok := users[r.PathValue("id")]
		if !ok {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"error":"no such user"}`+"\n")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"id": r.PathValue("id"), "name": name, "served_by": "demo-service"})
	})
	mux.HandleFunc("GET /events", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		rc := http.NewResponseController(w)
		for i := 1; i <= 5; i++ {
			fmt.Fprintf(w, "data: tick %d at %s\n\n", i, time.Now().Format(time.TimeOnly))
			rc.Flush()
			select {
			case <-time.After(500 * time.Millisecond):
			case <-r.Context().Done():
				return
			}
		}
	})
	mux.HandleFunc("POST /echo", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", r.Header.Get("Content-Type"))
		io.Copy(w, r.Body)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	return "http://" + ln.Addr().String(), nil
}
