// Command soak runs the banking example under constant load for a while and
// reports whether it stayed healthy: requests, errors, latency, the child's
// memory and goroutines. It exits 1 when the acceptance fails.
//
//	go run ./examples/loadtest/soak                   # 60 s at 300 requests/s
//	go run ./examples/loadtest/soak -duration 10m
//	go run ./examples/loadtest/soak -conns 16 -rate 0 # as fast as 16 connections go
//
// It builds ./examples/banking into a temporary directory, starts it on free
// loopback ports, waits for /readyz, takes demo tokens, warms up, then sends
// a fixed mix of requests (see mix) from keep-alive connections. The
// acceptance (see README.md):
//
//   - no errors: no transport error, no 5xx, no status the request should
//     not get, no dashboard answered without one of its services;
//   - no goroutine growth: once the load stopped and the connections
//     closed, the child's goroutines (go_goroutines on its admin /metrics)
//     come back to within -goroutine-slack of their count after the warm-up;
//   - flat memory: the child's resident set (VmRSS in /proc/PID/status)
//     grows from the middle to the end of the run by no more than
//     -rss-growth-pct percent or -rss-growth-mib MiB, whichever is larger;
//   - a clean stop: on SIGTERM the child exits 0.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	cfg := defaults()
	flag.DurationVar(&cfg.duration, "duration", cfg.duration, "how long to load the gateway, after the warm-up")
	flag.DurationVar(&cfg.warmup, "warmup", cfg.warmup, "load before the measured run (fills caches and connection pools)")
	flag.IntVar(&cfg.conns, "conns", cfg.conns, "concurrent keep-alive connections")
	flag.Float64Var(&cfg.rate, "rate", cfg.rate, "requests a second in all; 0 sends as fast as the connections go")
	flag.BoolVar(&cfg.race, "race", cfg.race, "build the banking example with the race detector")
	flag.IntVar(&cfg.goroutineSlack, "goroutine-slack", cfg.goroutineSlack, "goroutines the child may have at the end beyond its count after the warm-up")
	flag.Float64Var(&cfg.rssGrowthPct, "rss-growth-pct", cfg.rssGrowthPct, "RSS growth from the middle to the end allowed, in percent ...")
	flag.Float64Var(&cfg.rssGrowthMiB, "rss-growth-mib", cfg.rssGrowthMiB, "... or in MiB, whichever is larger")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := soak(ctx, cfg, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(2)
	}
	fmt.Print(rep.markdown())
	if len(rep.failures) > 0 {
		os.Exit(1)
	}
}

// config is what the flags set.
type config struct {
	duration, warmup time.Duration
	conns            int
	rate             float64
	race             bool
	goroutineSlack   int
	rssGrowthPct     float64
	rssGrowthMiB     float64
	// settle bounds the wait for the child's goroutines to come back
	// down once the load stopped.
	settle time.Duration
}

func defaults() config {
	return config{
		duration: 60 * time.Second, warmup: 5 * time.Second,
		conns: 8, rate: 300,
		goroutineSlack: 10, rssGrowthPct: 20, rssGrowthMiB: 8,
		settle: 10 * time.Second,
	}
}

// sample is the child's state at one moment.
type sample struct {
	at         time.Duration // since the measured run began
	rss        int64         // bytes, -1 if unknown
	heap       int64         // go_memstats_heap_inuse_bytes, -1 if unknown
	goroutines int64         // go_goroutines, -1 if unknown
}

// report is the outcome of a soak.
type report struct {
	cfg       config
	kinds     []kind
	warm      loadResult
	run       loadResult
	trend     []sample
	idleStart sample // after the warm-up, load stopped, connections closed
	idleEnd   sample // the same after the run
	settled   time.Duration
	exitErr   error
	exitTook  time.Duration
	logs      *logCounter
	failures  []string
}

// soak builds and starts the banking example, loads it and stops it. An
// error means the soak could not run; a failed acceptance is in the
// report's failures. Progress goes to progress.
func soak(ctx context.Context, cfg config, progress io.Writer) (*report, error) {
	dir, err := os.MkdirTemp("", "gatekit-soak-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "banking")
	args := []string{"build", "-o", bin}
	if cfg.race {
		args = append(args, "-race")
	}
	args = append(args, "github.com/gatekit/gatekit/examples/banking")
	fmt.Fprintf(progress, "soak: go %s\n", strings.Join(args, " "))
	if out, err := exec.CommandContext(ctx, goCommand(), args...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build banking: %v\n%s", err, out)
	}

	c, err := startChild(bin)
	if err != nil {
		return nil, err
	}
	defer c.kill() // only if something below failed before the SIGTERM
	rep := &report{cfg: cfg, logs: c.logs}
	fmt.Fprintf(progress, "soak: banking (pid %d): gateway %s, admin %s\n", c.cmd.Process.Pid, c.base, c.admin)

	transport := &http.Transport{MaxIdleConnsPerHost: cfg.conns, DisableCompression: true}
	client := &http.Client{Transport: transport, Timeout: 30 * time.Second}
	defer transport.CloseIdleConnections()
	probe := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}

	if err := waitReady(ctx, probe, c.admin+"/readyz"); err != nil {
		return nil, err
	}
	var tokens [3]string
	for i, q := range []string{"sub=c-100", "sub=c-200", "sub=c-100&scope=accounts:read"} {
		if tokens[i], err = fetch(probe, c.base+"/demo/token?"+q); err != nil {
			return nil, fmt.Errorf("token %s: %w", q, err)
		}
		tokens[i] = strings.TrimSpace(tokens[i])
	}
	rep.kinds = mix(tokens[0], tokens[1], tokens[2])

	fmt.Fprintf(progress, "soak: warm-up %v\n", cfg.warmup)
	rep.warm = load(ctx, client, c.base, rep.kinds, cfg.conns, cfg.rate, cfg.warmup, 0, nil)
	transport.CloseIdleConnections()
	rep.idleStart, _ = settle(ctx, c, probe, -1, cfg.settle)

	fmt.Fprintf(progress, "soak: loading for %v\n", cfg.duration)
	rep.trend = append(rep.trend, c.sample(probe, 0))
	interval := cfg.duration / 10
	rep.run = load(ctx, client, c.base, rep.kinds, cfg.conns, cfg.rate, cfg.duration, interval, func(at time.Duration) {
		s := c.sample(probe, at)
		rep.trend = append(rep.trend, s)
		fmt.Fprintf(progress, "soak: %v: RSS %s, heap %s, goroutines %d\n", at.Round(100*time.Millisecond), mib(s.rss), mib(s.heap), s.goroutines)
	})
	// The end sample: the load just stopped, nothing released yet.
	if len(rep.trend) < 11 {
		rep.trend = append(rep.trend, c.sample(probe, rep.run.elapsed))
	} else {
		rep.trend[len(rep.trend)-1].at = rep.run.elapsed
	}
	transport.CloseIdleConnections()
	rep.idleEnd, rep.settled = settle(ctx, c, probe, rep.idleStart.goroutines+int64(cfg.goroutineSlack), cfg.settle)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}

	fmt.Fprintln(progress, "soak: SIGTERM")
	start := time.Now()
	rep.exitErr = c.stop(40 * time.Second)
	rep.exitTook = time.Since(start)
	rep.judge()
	return rep, nil
}

// goCommand is the go command that runs this program or test, so that the
// child is built by the same toolchain.
func goCommand() string {
	if p := filepath.Join(runtime.GOROOT(), "bin", "go"); fileExists(p) {
		return p
	}
	return "go"
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// child is the running banking example.
type child struct {
	cmd         *exec.Cmd
	base, admin string
	logs        *logCounter
	done        chan error
}

// banner is the first line banking prints; with port 0 it is the only
// place that tells which ports it got.
var banner = regexp.MustCompile(`gateway on (http://\S+), metrics and health on (http://\S+)`)

func startChild(bin string) (*child, error) {
	cmd := exec.Command(bin, "-addr", "127.0.0.1:0", "-admin", "127.0.0.1:0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &child{cmd: cmd, logs: &logCounter{}, done: make(chan error, 1)}
	var pipes sync.WaitGroup
	pipes.Go(func() { c.logs.scan(stderr) })
	lines := bufio.NewScanner(stdout)
	for lines.Scan() {
		if m := banner.FindStringSubmatch(lines.Text()); m != nil {
			c.base, c.admin = m[1], m[2]
			break
		}
	}
	pipes.Go(func() { io.Copy(io.Discard, stdout) })
	go func() {
		pipes.Wait() // Wait must not run before the pipes are read
		c.done <- cmd.Wait()
	}()
	if c.base == "" {
		c.kill()
		return nil, fmt.Errorf("banking printed no address; its log ends:\n%s", c.logs.tail())
	}
	return c, nil
}

// stop sends SIGTERM and waits up to timeout for the child to exit.
func (c *child) stop(timeout time.Duration) error {
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case err := <-c.done:
		c.done <- err
		return err
	case <-time.After(timeout):
		return fmt.Errorf("still running %v after SIGTERM", timeout)
	}
}

func (c *child) kill() {
	select {
	case err := <-c.done:
		c.done <- err
	default:
		c.cmd.Process.Kill()
		c.done <- <-c.done
	}
}

// sample reads the child's RSS from /proc and its heap and goroutines from
// its admin /metrics (the Go collector of gateway/metrics).
func (c *child) sample(probe *http.Client, at time.Duration) sample {
	s := sample{at: at, rss: rss(c.cmd.Process.Pid), heap: -1, goroutines: -1}
	text, err := fetch(probe, c.admin+"/metrics")
	if err != nil {
		return s
	}
	s.heap = metric(text, "go_memstats_heap_inuse_bytes")
	s.goroutines = metric(text, "go_goroutines")
	return s
}

// settle polls the child's goroutines every 250 ms, up to within, until they
// are at most target (or, with target < 0, until two readings agree), and
// returns the last sample and the time it took.
func settle(ctx context.Context, c *child, probe *http.Client, target int64, within time.Duration) (sample, time.Duration) {
	start := time.Now()
	last := c.sample(probe, 0)
	for time.Since(start) < within && ctx.Err() == nil {
		time.Sleep(250 * time.Millisecond)
		s := c.sample(probe, 0)
		done := target >= 0 && s.goroutines >= 0 && s.goroutines <= target ||
			target < 0 && s.goroutines == last.goroutines
		last = s
		if done {
			break
		}
	}
	return last, time.Since(start)
}

func rss(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return -1
			}
			return kb << 10
		}
	}
	return -1
}

// metric returns the value of an unlabelled metric in Prometheus text, or -1.
func metric(text, name string) int64 {
	for line := range strings.Lines(text) {
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err != nil {
				return -1
			}
			return int64(f)
		}
	}
	return -1
}

func fetch(client *http.Client, url string) (string, error) {
	resp, err := client.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s: %s", url, resp.Status, b)
	}
	return string(b), nil
}

func waitReady(ctx context.Context, probe *http.Client, url string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := fetch(probe, url)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after 30s: %w", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// logCounter reads the child's log (slog text on stderr: the access log
// and server errors) and counts warnings, errors and race reports.
type logCounter struct {
	mu                   sync.Mutex
	lines, warns, errors int
	races                int
	first                []string // the first few warnings and errors
	last                 []string // the last few lines
}

func (l *logCounter) scan(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		l.mu.Lock()
		l.lines++
		bad := true
		switch {
		case strings.Contains(line, "level=ERROR"):
			l.errors++
		case strings.Contains(line, "level=WARN"):
			l.warns++
		case strings.Contains(line, "WARNING: DATA RACE"):
			l.races++
		default:
			bad = false
		}
		if bad && len(l.first) < 5 {
			l.first = append(l.first, line)
		}
		l.last = append(l.last, line)
		if len(l.last) > 20 {
			l.last = l.last[1:]
		}
		l.mu.Unlock()
	}
	io.Copy(io.Discard, r) // a line too long for the scanner
}

func (l *logCounter) tail() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.last, "\n")
}

// judge fills in the failures.
func (r *report) judge() {
	fail := func(format string, args ...any) { r.failures = append(r.failures, fmt.Sprintf(format, args...)) }
	for _, phase := range []struct {
		name string
		res  loadResult
	}{{"warm-up", r.warm}, {"run", r.run}} {
		var n uint64
		for i, k := range r.kinds {
			n += phase.res.kinds[i].errors(k)
		}
		if n > 0 {
			fail("%d errors during the %s", n, phase.name)
		}
	}
	if r.idleStart.goroutines < 0 || r.idleEnd.goroutines < 0 {
		fail("goroutines unknown: no go_goroutines on the admin /metrics")
	} else if r.idleEnd.goroutines > r.idleStart.goroutines+int64(r.cfg.goroutineSlack) {
		fail("goroutines grew from %d to %d (allowed: +%d)", r.idleStart.goroutines, r.idleEnd.goroutines, r.cfg.goroutineSlack)
	}
	mid, end := r.middle(), r.trend[len(r.trend)-1]
	if mid.rss > 0 && end.rss > 0 {
		allowed := max(float64(mid.rss)*r.cfg.rssGrowthPct/100, r.cfg.rssGrowthMiB*(1<<20))
		if float64(end.rss-mid.rss) > allowed {
			fail("RSS grew from %s in the middle to %s at the end (allowed: +%s)", mib(mid.rss), mib(end.rss), mib(int64(allowed)))
		}
	}
	if r.exitErr != nil {
		fail("banking after SIGTERM: %v", r.exitErr)
	}
	if r.logs.races > 0 {
		fail("%d data races reported", r.logs.races)
	}
}

func (r *report) middle() sample {
	return r.trend[len(r.trend)/2]
}

func mib(b int64) string {
	if b < 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}

// markdown renders the report.
func (r *report) markdown() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	rate := "as fast as they go"
	if r.cfg.rate > 0 {
		rate = fmt.Sprintf("%g requests/s", r.cfg.rate)
	}
	race := ""
	if r.cfg.race {
		race = ", child built with -race"
	}
	p("## Soak: examples/banking, %v at %s on %d connections%s\n\n", r.cfg.duration, rate, r.cfg.conns, race)
	p("%s/%s, %d CPUs, %s; warm-up %v (%d requests, not counted below).\n\n", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version(), r.cfg.warmup, r.warm.total())

	var all, ok histogram
	var requests, oks, errs, partial, transport uint64
	byCode := map[int]uint64{}
	p("| request | count | statuses | p50 | p99 |\n|---|---:|---|---:|---:|\n")
	for i, k := range r.kinds {
		s := &r.run.kinds[i]
		all.merge(&s.all)
		ok.merge(&s.ok)
		requests += s.requests()
		errs += s.errors(k)
		partial += s.partial
		transport += s.transport
		for code, n := range s.statuses {
			switch {
			case code < 300:
				oks += n
			case code < 500 && expected(k, code):
				byCode[code] += n
			}
		}
		p("| %s | %d | %s | %s | %s |\n", k.name, s.requests(), s.statusList(), ms(s.all.quantile(.5)), ms(s.all.quantile(.99)))
	}
	var expectedList []string
	for _, code := range []int{401, 403, 404, 422, 429} {
		if byCode[code] > 0 {
			expectedList = append(expectedList, fmt.Sprintf("%d×%d", code, byCode[code]))
		}
	}
	secs := r.run.elapsed.Seconds()
	p("\n| | |\n|---|---|\n")
	p("| requests | %d in %.1f s (%.1f/s; %d ticks missed) |\n", requests, secs, float64(requests)/secs, r.run.missed)
	p("| 2xx | %d |\n", oks)
	p("| expected non-2xx | %d (%s) |\n", requests-oks-errs+partial, strings.Join(expectedList, ", "))
	p("| errors | %d (transport %d, partial dashboards %d, 5xx or unexpected %d) |\n", errs, transport, partial, errs-transport-partial)
	p("| latency, all | p50 %s, p99 %s, max %s |\n", ms(all.quantile(.5)), ms(all.quantile(.99)), ms(time.Duration(all.max)*time.Microsecond))
	p("| latency, 2xx | p50 %s, p99 %s (%d replies) |\n", ms(ok.quantile(.5)), ms(ok.quantile(.99)), ok.n)

	start, mid, end := r.trend[0], r.middle(), r.trend[len(r.trend)-1]
	p("\n| banking | start | middle | end |\n|---|---:|---:|---:|\n")
	p("| RSS (VmRSS) | %s | %s | %s |\n", mib(start.rss), mib(mid.rss), mib(end.rss))
	p("| Go heap in use | %s | %s | %s |\n", mib(start.heap), mib(mid.heap), mib(end.heap))
	p("| goroutines, under load | %d | %d | %d |\n", start.goroutines, mid.goroutines, end.goroutines)
	p("| goroutines, idle | %d | | %d (%.1f s after the load) |\n", r.idleStart.goroutines, r.idleEnd.goroutines, r.settled.Seconds())
	p("\nRSS every %v: ", r.cfg.duration/10)
	for i, s := range r.trend {
		if i > 0 {
			p(", ")
		}
		p("%.1f", float64(s.rss)/(1<<20))
	}
	p(" MiB\n\nLog: %d lines, %d warnings, %d errors, %d data races.", r.logs.lines, r.logs.warns, r.logs.errors, r.logs.races)
	for _, l := range r.logs.first {
		p("\n    %.300s", l)
	}
	exit := "exit status 0"
	if r.exitErr != nil {
		exit = r.exitErr.Error()
	}
	p("\nSIGTERM: %s after %.2f s.\n", exit, r.exitTook.Seconds())

	var examples []string
	for _, ph := range []loadResult{r.warm, r.run} {
		for _, s := range ph.kinds {
			examples = append(examples, s.examples...)
		}
	}
	if len(examples) > 0 {
		p("\nFirst errors:\n")
		for _, e := range examples[:min(len(examples), 10)] {
			p("    %s\n", strings.ReplaceAll(e, "\n", " "))
		}
	}
	if len(r.failures) == 0 {
		p("\n**PASS**: no errors, goroutines %d → %d (allowed +%d), RSS middle → end %+.1f MiB (allowed +%g%% or +%g MiB).\n",
			r.idleStart.goroutines, r.idleEnd.goroutines, r.cfg.goroutineSlack, float64(end.rss-mid.rss)/(1<<20), r.cfg.rssGrowthPct, r.cfg.rssGrowthMiB)
	} else {
		p("\n**FAIL**:\n")
		for _, f := range r.failures {
			p("- %s\n", f)
		}
	}
	return b.String()
}

func (l loadResult) total() uint64 {
	var n uint64
	for i := range l.kinds {
		n += l.kinds[i].requests()
	}
	return n
}
