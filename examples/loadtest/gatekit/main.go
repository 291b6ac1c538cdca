// Command gatekit is the gatekit contender of the loadtest harness: the
// three routes of package routes (pass-through, a typical API route, an
// aggregate of three upstream calls) behind a gateway.Server.
//
//	go run ./examples/loadtest/gatekit -addr 127.0.0.1:9002 -upstream http://127.0.0.1:9000
//	go run ./examples/loadtest/gatekit -pprof 127.0.0.1:6060 ...    # net/http/pprof on a side port
//	go run ./examples/loadtest/gatekit -cpuprofile /tmp/cpu.pprof ... # a CPU profile of the whole run
//
// It stops on SIGINT or SIGTERM, after writing the CPU profile if asked.
package main

import (
	"context"
	"flag"
	"log"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime"
	rpprof "runtime/pprof"
	"syscall"

	"github.com/gatekit/gatekit/examples/loadtest/routes"
	"github.com/gatekit/gatekit/gateway"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9002", "address to listen on")
	upstream := flag.String("upstream", "http://127.0.0.1:9000", "upstream URL")
	tokenCache := flag.Bool("token-cache", false, "cache verified tokens on the API route (routes.Config.TokenCache)")
	useH1 := flag.Bool("h1", false, "send upstream requests through proxy/h1's transport (routes.Config.H1)")
	lean := flag.Bool("lean", false, "serve HTTP/1.x connections on gateway.Server's own loop (Server.LeanHTTP1)")
	pprofAddr := flag.String("pprof", "", "serve net/http/pprof on this side address (such as 127.0.0.1:6060); empty: off")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.Parse()

	h, err := routes.New(routes.Config{Upstream: *upstream, TokenCache: *tokenCache, H1: *useH1})
	if err != nil {
		log.Fatal(err)
	}
	if *pprofAddr != "" {
		// Its own mux, not http.DefaultServeMux: the profiles stay off the
		// gateway's port.
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		go func() { log.Fatal(http.ListenAndServe(*pprofAddr, mux)) }()
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			log.Fatal(err)
		}
		if err := rpprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		defer func() {
			rpprof.StopCPUProfile()
			if err := f.Close(); err != nil {
				log.Print(err)
			}
		}()
	}
	log.Printf("gatekit on %s (GOMAXPROCS %d), upstream %s", *addr, runtime.GOMAXPROCS(0), *upstream)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv := &gateway.Server{Addr: *addr, Handler: h, LeanHTTP1: *lean}
	if err := srv.ListenAndServe(ctx); err != nil {
		log.Print(err)
	}
}
