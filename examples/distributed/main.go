// Command distributed runs one replica of a gatekit gateway whose rate limit
// lives in Redis, so that every replica started against the same Redis
// enforces one limit together: 5 requests a minute per client (the X-Client
// header), however the requests are spread over the replicas.
//
//	redis-server --port 6379 --save '' --appendonly no
//	go run ./examples/distributed -addr 127.0.0.1:8080 -redis 127.0.0.1:6379
//	go run ./examples/distributed -addr 127.0.0.1:8081 -redis 127.0.0.1:6379
//
// Try (the first 5 requests are admitted, by either replica; the rest get
// 429 with Retry-After and the RateLimit fields):
//
//	for i in 1 2 3 4 5 6 7 8; do
//	  curl -s -o /dev/null -w '%{http_code} ' -H 'X-Client: alice' localhost:$((8080 + i % 2))/hello
//	done; echo                                     # 200 200 200 200 200 429 429 429
//	curl -i -H 'X-Client: alice' localhost:8080/hello  # 429 problem+json, Retry-After, RateLimit
//	curl -i -H 'X-Client: bob' localhost:8081/hello    # 200: bob has a limit of his own
//
// Stop redis-server and try again: requests are refused with 503 and
// Retry-After: 1, or, with -fail-open, admitted without counting.
package main

import (
	"context"
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

	"github.com/redis/go-redis/v9"

	"github.com/gatekit/gatekit/gateway"
	"github.com/gatekit/gatekit/ratelimit"
	"github.com/gatekit/gatekit/ratelimit/redisstore"
)

// config is what the flags choose.
type config struct {
	redis    string        // Redis address
	failOpen bool          // admit requests while Redis cannot decide
	timeout  time.Duration // bound on each Redis decision
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address the gateway listens on")
	var cfg config
	flag.StringVar(&cfg.redis, "redis", "127.0.0.1:6379", "address of the Redis server the replicas share")
	flag.BoolVar(&cfg.failOpen, "fail-open", false, "admit requests while Redis cannot be reached (default: refuse them with 503)")
	flag.DurationVar(&cfg.timeout, "redis-timeout", 100*time.Millisecond, "bound on each rate-limit decision in Redis")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	if err := run(ctx, ln, os.Stdout, cfg); err != nil {
		log.Fatal(err)
	}
}

// run serves the gateway on ln until ctx is done, logging to out.
func run(ctx context.Context, ln net.Listener, out io.Writer, cfg config) error {
	logger := slog.New(slog.NewTextHandler(out, nil))
	client := redis.NewClient(&redis.Options{
		Addr: cfg.redis,
		// Honour the limiter's deadline on the socket (redisstore insists),
		// and never resend a decision whose reply was lost: that would
		// count it twice.
		ContextTimeoutEnabled: true,
		MaxRetries:            -1,
	})
	defer client.Close()
	store, err := redisstore.New(redisstore.Config{Client: client})
	if err != nil {
		return err
	}
	perClient, err := ratelimit.New(ratelimit.Config{
		Name: "per-client", Rate: 5, Per: time.Minute, Burst: 5,
		// A header makes the demo easy to drive with curl; a real gateway
		// keys by something the client cannot choose, such as
		// ratelimit.ByAPIKey() or ratelimit.ByClientIP().
		Key:     ratelimit.ByHeader("X-Client"),
		Headers: true,
		Shared:  &ratelimit.Shared{Store: store, Timeout: cfg.timeout, FailOpen: cfg.failOpen, Logger: logger},
	})
	if err != nil {
		return err
	}

	self := ln.Addr().String()
	hello := gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		body := fmt.Sprintf("{\"client\":%q,\"served_by\":%q}\n", req.HTTP.Header.Get("X-Client"), self)
		return gateway.NewResponse(http.StatusOK, http.Header{"Content-Type": {"application/json"}}, []byte(body)), nil
	})
	router, err := gateway.NewRouter(gateway.RouterConfig{
		Options: gateway.Options{Logger: logger, RequestIDs: true, Observers: []gateway.Observer{gateway.NewAccessLog(gateway.AccessLogConfig{Logger: logger})}},
		Routes: []gateway.Route{
			{Name: "hello", Methods: []string{"GET"}, Path: "/hello", Handler: gateway.NewPipeline(hello, gateway.Limit(perClient))},
		},
	})
	if err != nil {
		return err
	}

	fmt.Fprintf(out, "gatekit distributed: gateway on http://%s, limit 5 requests a minute per X-Client, counted in Redis at %s\n", self, cfg.redis)
	pingCtx, cancel := context.WithTimeout(ctx, time.Second)
	if err := client.Ping(pingCtx).Err(); err != nil {
		then := "refused with 503"
		if cfg.failOpen {
			then = "admitted without counting (-fail-open)"
		}
		fmt.Fprintf(out, "Redis does not answer (%v): until it does, requests are %s.\n", err, then)
	}
	cancel()
	fmt.Fprintf(out, "\nTry:\n  curl -i -H 'X-Client: alice' http://%s/hello\n\nCtrl-C stops it (in-flight requests finish first).\n", self)
	srv := &gateway.Server{Handler: router, Logger: logger}
	return srv.Serve(ctx, ln)
}
