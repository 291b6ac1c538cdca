// Command loadtest measures gatekit against its peers on one machine over
// loopback, with wrk, and prints a Markdown table.
//
//	go run ./examples/loadtest                # the default run, under 3 minutes
//	go run ./examples/loadtest -quick         # CI: checks the harness works, no speed judged
//	go run ./examples/loadtest -profile       # also CPU and alloc profiles of each gatekit route
//
// It starts a fixed-response upstream (1 KiB JSON, ./upstream) and, in front
// of it, each contender on its own port: the upstream itself ("direct", no
// proxy: the physical limit), nginx and Caddy (nginx.conf, Caddyfile),
// httputil.ReverseProxy (./rp) and gatekit (./gatekit) in three routes:
// pass-through, a typical API route and an aggregate of three upstream
// calls (package routes). Then it drives each contender with wrk at fixed
// connections and duration, -rounds times, rotating the order every round
// so that drift hits every contender alike, and prints for each the median
// requests/s, p50 and p99 over the rounds, each also as a ratio to nginx
// and to direct in the same run. Last it holds -rss-conns connections on
// gatekit's pass-through and reads gatekit's resident set from
// /proc/PID/status.
//
// It needs wrk, nginx and caddy (Debian packages wrk, nginx-light, caddy)
// and installs them with apt-get when they are missing (with sudo when not
// root; -install=false to only check). It exits 1 when a contender failed
// (no 2xx reply to the probe, no request done, or errors counted by wrk:
// socket errors and statuses from 400 up), 2 when the harness could not run.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	cfg := defaults()
	var only string
	flag.IntVar(&cfg.rounds, "rounds", cfg.rounds, "rounds; each runs every contender once, the order rotated by one per round")
	flag.DurationVar(&cfg.duration, "duration", cfg.duration, "wrk duration per contender and round (whole seconds)")
	flag.DurationVar(&cfg.warmup, "warmup", cfg.warmup, "wrk warm-up per contender before the rounds, not measured; 0: none")
	flag.IntVar(&cfg.conns, "conns", cfg.conns, "wrk connections")
	flag.IntVar(&cfg.threads, "threads", cfg.threads, "wrk threads")
	flag.StringVar(&only, "contenders", "", "comma-separated contenders to run (default all): "+strings.Join(contenderKeys(), ","))
	flag.IntVar(&cfg.rssConns, "rss-conns", cfg.rssConns, "connections held on gatekit pass-through while its RSS is read; 0: skip")
	flag.DurationVar(&cfg.rssDuration, "rss-duration", cfg.rssDuration, "how long those connections are held")
	flag.BoolVar(&cfg.profile, "profile", cfg.profile, "collect a CPU and an alloc profile of each gatekit route run, under load")
	flag.DurationVar(&cfg.profileFor, "profile-for", cfg.profileFor, "how long the profiles cover")
	flag.StringVar(&cfg.profileDir, "profile-dir", cfg.profileDir, "directory the profiles are written to")
	flag.BoolVar(&cfg.tokenCache, "token-cache", cfg.tokenCache, "turn on gatekit's verified-token cache on the API route")
	flag.BoolVar(&cfg.h1, "h1", cfg.h1, "gatekit's upstream requests through proxy/h1's transport instead of net/http's")
	flag.BoolVar(&cfg.lean, "lean", cfg.lean, "gatekit's HTTP/1.x connections served by gateway.Server's LeanHTTP1 loop instead of net/http's")
	flag.IntVar(&cfg.nginxWorkers, "nginx-workers", cfg.nginxWorkers, "nginx worker_processes; 0: one per core")
	flag.BoolVar(&cfg.install, "install", cfg.install, "install missing Debian packages (wrk nginx-light caddy) with apt-get")
	quick := flag.Bool("quick", false, "check that the harness works: 1 round of 1 s per contender on 8 connections, 100 for the RSS check")
	flag.Parse()
	if *quick {
		cfg = quickConfig(cfg)
	}
	if only != "" {
		cfg.only = strings.Split(only, ",")
	}
	cfg.command = commandLine(os.Args[1:])

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := run(ctx, cfg, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(2)
	}
	fmt.Print(rep.markdown())
	if len(rep.failures) > 0 {
		os.Exit(1)
	}
}

// config is what the flags set.
type config struct {
	rounds         int
	duration       time.Duration
	warmup         time.Duration
	conns, threads int
	only           []string // contender keys; empty: all
	rssConns       int
	rssDuration    time.Duration
	profile        bool
	profileFor     time.Duration
	profileDir     string
	tokenCache     bool
	h1             bool
	lean           bool
	nginxWorkers   int
	install        bool
	quick          bool
	command        string // as the report shows it
}

// defaults is the default run: 7 contenders x 3 rounds x 5 s = 105 s of
// load, plus 7 s of warm-up and 5 s at 1,000 connections: about 2 minutes
// with start-up and builds from a warm cache.
func defaults() config {
	return config{
		rounds: 3, duration: 5 * time.Second, warmup: time.Second,
		conns: 64, threads: 2,
		rssConns: 1000, rssDuration: 5 * time.Second,
		profileFor: 10 * time.Second, profileDir: os.TempDir(),
		install: true,
		command: "go run ./examples/loadtest",
	}
}

// quickConfig is cfg cut down to what shows that every part of the harness
// works, in a few seconds of load.
func quickConfig(cfg config) config {
	cfg.quick = true
	cfg.rounds, cfg.duration, cfg.warmup = 1, time.Second, 0
	cfg.conns, cfg.threads = 8, 1
	cfg.rssConns, cfg.rssDuration = 100, time.Second
	cfg.profileFor = 2 * time.Second
	return cfg
}

// commandLine is the command that ran the harness, as one can paste it.
func commandLine(args []string) string {
	var b strings.Builder
	b.WriteString("go run ./examples/loadtest")
	for _, a := range args {
		b.WriteByte(' ')
		if strings.ContainsAny(a, " \t\"'$\\") {
			a = strconv.Quote(a)
		}
		b.WriteString(a)
	}
	return b.String()
}
