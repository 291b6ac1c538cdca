package main

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// median is the median of a run's figures, per contender: each of
// requests/s, p50 and p99 on its own.
func median(rs []result) result {
	if len(rs) == 0 {
		return result{}
	}
	pick := func(f func(result) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		slices.Sort(v)
		if n := len(v); n%2 == 0 {
			return (v[n/2-1] + v[n/2]) / 2
		}
		return v[len(v)/2]
	}
	m := result{
		rps: pick(func(r result) float64 { return r.rps }),
		p50: time.Duration(pick(func(r result) float64 { return float64(r.p50) })),
		p99: time.Duration(pick(func(r result) float64 { return float64(r.p99) })),
	}
	for _, r := range rs {
		m.requests += r.requests
		m.errors += r.errors
	}
	return m
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

func ratio(a, b float64) string {
	if b == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// markdown is the report: the environment, the table, memory, profiles and
// failures.
func (r *report) markdown() string {
	var b strings.Builder
	e, cfg := r.env, r.cfg
	fmt.Fprintf(&b, "## Throughput against peers\n\n")
	if cfg.quick {
		fmt.Fprintf(&b, "**-quick run: checks that the harness works; its figures mean nothing.**\n\n")
	}
	fmt.Fprintf(&b, "- date: %s\n", e.date.Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "- machine: %d cores (%s), %s memory, Linux %s; load average at the start %s\n", e.cores, e.cpu, e.memory, e.kernel, e.loadavg)
	fmt.Fprintf(&b, "- %s; %s; %s; %s\n", e.goVersion, orNone(e.nginx, "no nginx"), orNone(e.caddy, "no caddy"), e.wrk)
	fmt.Fprintf(&b, "- command: `%s`\n", cfg.command)
	secs := max(1, int((cfg.duration+time.Second-1)/time.Second))
	fmt.Fprintf(&b, "- load: `wrk -t%d -c%d -d%ds --latency` per contender and round, %d round(s), the order rotated by one each round", cfg.threads, cfg.conns, secs, cfg.rounds)
	if cfg.warmup > 0 {
		fmt.Fprintf(&b, ", after a %v warm-up of each", cfg.warmup)
	}
	fmt.Fprintf(&b, "; figures are medians over the rounds; the run took %v\n", r.took.Round(time.Second))
	fmt.Fprintf(&b, "- wrk, the upstream and the contender share the same %d cores over loopback: a contender's figures include what it leaves to wrk and the upstream\n", e.cores)
	fmt.Fprintf(&b, "- nginx: worker_processes %s; Go programs (upstream, httputil, gatekit, Caddy): GOMAXPROCS %d\n", nginxWorkers(cfg), e.goMaxProcs)
	if cfg.tokenCache {
		fmt.Fprintf(&b, "- gatekit API route: verified-token cache on\n")
	}
	if cfg.lean {
		fmt.Fprintf(&b, "- gatekit: client connections served by gateway.Server's LeanHTTP1 loop\n")
	}
	if cfg.h1 {
		fmt.Fprintf(&b, "- gatekit: upstream requests through proxy/h1's transport\n")
	}
	b.WriteString("\nRatios divide the row's figure by nginx's, or by direct's: above 1 is better for requests/s, worse for latencies.\n\n")

	med := map[string]result{}
	for _, c := range r.contenders {
		med[c.key] = median(r.rounds[c.key])
	}
	nginx, hasNginx := med["nginx"]
	direct, hasDirect := med["direct"]
	b.WriteString("| contender | req/s | ×nginx | ×direct | p50 | ×nginx | ×direct | p99 | ×nginx | ×direct | errors | req/s by round |\n")
	b.WriteString("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|\n")
	rel := func(v, base float64, ok bool) string {
		if !ok {
			return "–"
		}
		return ratio(v, base)
	}
	for _, c := range r.contenders {
		m := med[c.key]
		var each []string
		for _, x := range r.rounds[c.key] {
			each = append(each, fmt.Sprintf("%.0f", x.rps))
		}
		fmt.Fprintf(&b, "| %s | %.0f | %s | %s | %s | %s | %s | %s | %s | %s | %d | %s |\n",
			c.name, m.rps, rel(m.rps, nginx.rps, hasNginx), rel(m.rps, direct.rps, hasDirect),
			ms(m.p50), rel(float64(m.p50), float64(nginx.p50), hasNginx), rel(float64(m.p50), float64(direct.p50), hasDirect),
			ms(m.p99), rel(float64(m.p99), float64(nginx.p99), hasNginx), rel(float64(m.p99), float64(direct.p99), hasDirect),
			m.errors, strings.Join(each, ", "))
	}

	if m := r.mem; m != nil {
		fmt.Fprintf(&b, "\n### gatekit's memory at %d connections\n\n", m.conns)
		secs := max(1, int((cfg.rssDuration+time.Second-1)/time.Second))
		fmt.Fprintf(&b, "`wrk -t%d -c%d -d%ds` on gatekit pass-through, VmRSS of /proc/PID/status sampled every %v:\n\n", cfg.threads, m.conns, secs, m.sampleInterval)
		fmt.Fprintf(&b, "| RSS before | peak RSS under load | VmHWM (peak over the whole run) | req/s | p99 | errors |\n|--:|--:|--:|--:|--:|--:|\n")
		fmt.Fprintf(&b, "| %s | %s | %s | %.0f | %s | %d %s |\n", mib(m.idle), mib(m.peak), mib(m.hwm), m.res.rps, ms(m.res.p99), m.res.errors, m.res.errDetail)
	}
	if len(r.profiles) > 0 {
		fmt.Fprintf(&b, "\nProfiles of gatekit's routes (%v each under `-c%d`): %s (`go tool pprof -top FILE`)\n", cfg.profileFor, cfg.conns, strings.Join(r.profiles, ", "))
	}
	if len(r.failures) > 0 {
		b.WriteString("\n### Failures\n\n")
		for _, f := range r.failures {
			fmt.Fprintf(&b, "- %s\n", f)
		}
	}
	return b.String()
}

func orNone(s, none string) string {
	if s == "" {
		return none
	}
	return s
}

func nginxWorkers(cfg config) string {
	if cfg.nginxWorkers > 0 {
		return fmt.Sprint(cfg.nginxWorkers)
	}
	return "auto (one per core)"
}
