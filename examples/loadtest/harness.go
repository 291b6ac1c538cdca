package main

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/template"
	"time"

	"github.com/gatekit/gatekit/examples/loadtest/routes"
)

//go:embed nginx.conf
var nginxConf string

//go:embed Caddyfile
var caddyfile string

// A contender is one row of the table: a server and the request wrk sends it.
type contender struct {
	key    string // for -contenders
	name   string // in the table
	server string // the process that serves it: "upstream", "nginx", "caddy", "rp", "gatekit"
	method string
	path   string
	header http.Header
	body   []byte

	url    string // set once the server has a port
	script string // wrk -s file, for anything but a plain GET
}

// contenders is every contender, in the table's order. token is the API
// route's bearer token.
func contenders(token string) []*contender {
	pass := "/pass/orders/123"
	return []*contender{
		{key: "direct", name: "direct (no proxy)", server: "upstream", method: "GET", path: pass},
		{key: "nginx", name: "nginx", server: "nginx", method: "GET", path: pass},
		{key: "caddy", name: "Caddy", server: "caddy", method: "GET", path: pass},
		{key: "httputil", name: "httputil.ReverseProxy", server: "rp", method: "GET", path: pass},
		{key: "gatekit-pass", name: "gatekit pass-through", server: "gatekit", method: "GET", path: pass},
		{key: "gatekit-api", name: "gatekit API route", server: "gatekit", method: "POST", path: "/api/orders",
			header: http.Header{"Content-Type": {"application/json"}, "Authorization": {"Bearer " + token}},
			body:   routes.OrderBody},
		{key: "gatekit-agg", name: "gatekit aggregate of 3", server: "gatekit", method: "GET", path: "/agg"},
	}
}

func contenderKeys() []string {
	var keys []string
	for _, c := range contenders("") {
		keys = append(keys, c.key)
	}
	return keys
}

// result is what wrk measured of one contender in one run.
type result struct {
	rps       float64
	p50, p99  time.Duration
	requests  int64
	errors    int64 // socket errors and statuses >= 400, as wrk counts them
	errDetail string
}

// report is the outcome of a run.
type report struct {
	cfg        config
	env        environment
	contenders []*contender
	rounds     map[string][]result // by contender key, in round order
	mem        *memory
	profiles   []string // files written
	took       time.Duration
	failures   []string
}

// memory is gatekit's resident set while wrk held cfg.rssConns connections
// on its pass-through.
type memory struct {
	conns          int
	idle, peak     int64 // VmRSS before the load and its highest sample during it, bytes
	hwm            int64 // VmHWM at the end: the peak the kernel saw over the process's life
	res            result
	sampleInterval time.Duration
}

// run starts the upstream and the contenders, loads them, and stops them.
// An error means the harness could not run; a contender that failed is in
// the report's failures. Progress goes to progress.
func run(ctx context.Context, cfg config, progress io.Writer) (*report, error) {
	start := time.Now()
	logf := func(format string, args ...any) { fmt.Fprintf(progress, "loadtest: "+format+"\n", args...) }
	raiseFileLimit()

	all := contenders(routes.Token(nil, "c-100"))
	var cs []*contender
	for _, c := range all {
		if len(cfg.only) == 0 || slices.Contains(cfg.only, c.key) {
			cs = append(cs, c)
		}
	}
	if len(cs) == 0 {
		return nil, fmt.Errorf("-contenders %s: none of %s", strings.Join(cfg.only, ","), strings.Join(contenderKeys(), ","))
	}
	if cfg.conns < cfg.threads {
		return nil, fmt.Errorf("-conns %d is fewer than -threads %d (wrk needs a connection per thread)", cfg.conns, cfg.threads)
	}
	servers := map[string]bool{"upstream": true}
	for _, c := range cs {
		servers[c.server] = true
	}
	needs := []string{"wrk"}
	for _, s := range []string{"nginx", "caddy"} {
		if servers[s] {
			needs = append(needs, s)
		}
	}
	tools, err := ensureTools(ctx, needs, cfg.install, progress)
	if err != nil {
		return nil, err
	}

	dir, err := os.MkdirTemp("", "gatekit-loadtest-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	rep := &report{cfg: cfg, contenders: cs, rounds: map[string][]result{}}
	rep.env = readEnvironment(ctx, tools)

	// Build the Go programs once, as they are deployed: no -race.
	logf("building upstream, rp, gatekit")
	bin := filepath.Join(dir, "bin") + string(filepath.Separator)
	const pkg = "github.com/gatekit/gatekit/examples/loadtest/"
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, pkg+"upstream", pkg+"rp", pkg+"gatekit")
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build: %w\n%s", err, out)
	}

	ports, err := freePorts(6)
	if err != nil {
		return nil, err
	}
	addr := func(i int) string { return "127.0.0.1:" + strconv.Itoa(ports[i]) }
	upAddr := addr(0)
	serverAddr := map[string]string{"upstream": upAddr, "nginx": addr(1), "caddy": addr(2), "rp": addr(3), "gatekit": addr(4)}
	pprofAddr := addr(5)

	var procs []*proc
	defer func() {
		for _, p := range slices.Backward(procs) {
			p.stop()
		}
	}()
	startProc := func(name string, env []string, argv ...string) (*proc, error) {
		p, err := startProcess(name, dir, env, argv...)
		if err != nil {
			return nil, err
		}
		procs = append(procs, p)
		return p, nil
	}
	upURL := "http://" + upAddr
	logf("starting upstream on %s and %d contenders", upAddr, len(cs))
	if _, err := startProc("upstream", nil, bin+"upstream", "-addr", upAddr); err != nil {
		return nil, err
	}
	var gatekit *proc
	if servers["nginx"] {
		prefix := filepath.Join(dir, "nginx")
		workers := "auto"
		if cfg.nginxWorkers > 0 {
			workers = strconv.Itoa(cfg.nginxWorkers)
		}
		conf, err := writeTemplate(prefix, "nginx.conf", nginxConf, map[string]string{
			"Prefix": prefix, "Workers": workers, "Upstream": upAddr, "Addr": serverAddr["nginx"],
		})
		if err != nil {
			return nil, err
		}
		if _, err := startProc("nginx", nil, tools["nginx"], "-p", prefix, "-e", filepath.Join(prefix, "error.log"), "-c", conf); err != nil {
			return nil, err
		}
	}
	if servers["caddy"] {
		home := filepath.Join(dir, "caddy")
		conf, err := writeTemplate(home, "Caddyfile", caddyfile, map[string]string{"Upstream": upAddr, "Addr": serverAddr["caddy"]})
		if err != nil {
			return nil, err
		}
		env := []string{"HOME=" + home, "XDG_DATA_HOME=" + home, "XDG_CONFIG_HOME=" + home}
		if _, err := startProc("caddy", env, tools["caddy"], "run", "--adapter", "caddyfile", "--config", conf); err != nil {
			return nil, err
		}
	}
	if servers["rp"] {
		if _, err := startProc("rp", nil, bin+"rp", "-addr", serverAddr["rp"], "-upstream", upURL); err != nil {
			return nil, err
		}
	}
	if servers["gatekit"] {
		argv := []string{bin + "gatekit", "-addr", serverAddr["gatekit"], "-upstream", upURL}
		if cfg.tokenCache {
			argv = append(argv, "-token-cache")
		}
		if cfg.h1 {
			argv = append(argv, "-h1")
		}
		if cfg.lean {
			argv = append(argv, "-lean")
		}
		if cfg.profile {
			argv = append(argv, "-pprof", pprofAddr)
		}
		if gatekit, err = startProc("gatekit", nil, argv...); err != nil {
			return nil, err
		}
	}

	// Every contender must answer its request 2xx before it is loaded.
	for _, c := range cs {
		c.url = "http://" + serverAddr[c.server] + c.path
		if c.method != "GET" || c.body != nil || c.header != nil {
			c.script = filepath.Join(dir, c.key+".lua")
			if err := os.WriteFile(c.script, []byte(wrkScript(c)), 0o644); err != nil {
				return nil, err
			}
		}
	}
	for _, c := range cs {
		if err := probe(ctx, c, procs); err != nil {
			rep.failures = append(rep.failures, fmt.Sprintf("%s: %v", c.name, err))
		}
	}
	if len(rep.failures) > 0 {
		rep.took = time.Since(start)
		return rep, nil
	}

	load := func(c *contender, conns int, d time.Duration) result {
		res, err := runWrk(ctx, tools["wrk"], cfg.threads, conns, d, c)
		if err != nil {
			res.errDetail = err.Error()
		}
		return res
	}
	if cfg.warmup > 0 {
		logf("warm-up: %v per contender", cfg.warmup)
		for _, c := range cs {
			load(c, cfg.conns, cfg.warmup)
		}
	}
	for r := range cfg.rounds {
		order := append(slices.Clone(cs[r%len(cs):]), cs[:r%len(cs)]...)
		for _, c := range order {
			res := load(c, cfg.conns, cfg.duration)
			logf("round %d/%d %-24s %8.0f req/s  p50 %-9v p99 %-9v errors %d %s", r+1, cfg.rounds, c.name, res.rps, res.p50, res.p99, res.errors, res.errDetail)
			rep.rounds[c.key] = append(rep.rounds[c.key], res)
			if res.requests == 0 || res.errors > 0 || res.errDetail != "" {
				rep.failures = append(rep.failures, fmt.Sprintf("%s, round %d: %d requests, %d errors %s", c.name, r+1, res.requests, res.errors, res.errDetail))
			}
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
		}
	}

	var pass *contender
	for _, c := range cs {
		if c.key == "gatekit-pass" {
			pass = c
		}
	}
	if pass != nil && cfg.rssConns > 0 {
		logf("holding %d connections on gatekit pass-through for %v", cfg.rssConns, cfg.rssDuration)
		m, err := measureMemory(ctx, tools["wrk"], cfg, pass, gatekit.cmd.Process.Pid)
		if err != nil {
			return nil, err
		}
		rep.mem = m
		if m.res.requests == 0 || m.res.errors > 0 || m.res.errDetail != "" {
			rep.failures = append(rep.failures, fmt.Sprintf("%s at %d connections: %d requests, %d errors %s", pass.name, m.conns, m.res.requests, m.res.errors, m.res.errDetail))
		}
	}
	if cfg.profile {
		for _, c := range cs {
			if c.server != "gatekit" {
				continue
			}
			logf("profiling %s for %v", c.name, cfg.profileFor)
			files, err := collectProfiles(ctx, tools["wrk"], cfg, c, "http://"+pprofAddr)
			if err != nil {
				return nil, err
			}
			rep.profiles = append(rep.profiles, files...)
		}
	}
	for _, p := range slices.Backward(procs) {
		if err := p.stop(); err != nil {
			rep.failures = append(rep.failures, fmt.Sprintf("%s: %v", p.name, err))
		}
	}
	procs = nil
	rep.took = time.Since(start)
	return rep, nil
}

// proc is a child process whose output goes to a file.
type proc struct {
	name    string
	cmd     *exec.Cmd
	logFile string
	done    chan struct{} // closed once it exited
	err     error         // its exit, once done is closed
}

func startProcess(name, dir string, env []string, argv ...string) (*proc, error) {
	p := &proc{name: name, logFile: filepath.Join(dir, name+".log"), done: make(chan struct{})}
	out, err := os.Create(p.logFile)
	if err != nil {
		return nil, err
	}
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Stdout, p.cmd.Stderr = out, out
	p.cmd.Env = append(os.Environ(), env...)
	if err := p.cmd.Start(); err != nil {
		out.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		out.Close()
		close(p.done)
	}()
	return p, nil
}

// stop asks the process to stop (SIGTERM), kills it if it has not within
// 5 s, and returns an error if it had already exited or did not stop
// cleanly. It is safe to call twice.
func (p *proc) stop() error {
	select {
	case <-p.done:
		return fmt.Errorf("exited early: %v%s", p.err, p.logTail())
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		var exit *exec.ExitError
		if errors.As(p.err, &exit) && !exit.Exited() {
			return nil // ended by the signal, as nginx and the plain net/http programs are
		}
		if p.err != nil {
			return fmt.Errorf("exit: %v%s", p.err, p.logTail())
		}
		return nil
	case <-time.After(5 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("did not stop within 5 s of SIGTERM; killed")
	}
}

// logTail is the end of the process's output, for an error message.
func (p *proc) logTail() string {
	b, _ := os.ReadFile(p.logFile)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	if len(b) == 0 {
		return ""
	}
	return "; its output ends:\n" + string(b)
}

// probe sends c's request until a reply comes (the server may still be
// starting, for up to 15 s) and checks it is 2xx with a body.
func probe(ctx context.Context, c *contender, procs []*proc) error {
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(15 * time.Second)
	for {
		req, err := http.NewRequestWithContext(ctx, c.method, c.url, bytes.NewReader(c.body))
		if err != nil {
			return err
		}
		for k, v := range c.header {
			req.Header[k] = v
		}
		resp, err := client.Do(req)
		if err == nil {
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			switch {
			case err != nil:
				return fmt.Errorf("%s %s: read reply: %w", c.method, c.url, err)
			case resp.StatusCode/100 != 2:
				return fmt.Errorf("%s %s: status %d, want 2xx: %.300s", c.method, c.url, resp.StatusCode, body)
			case len(body) == 0:
				return fmt.Errorf("%s %s: empty reply", c.method, c.url)
			}
			return nil
		}
		for _, p := range procs {
			select {
			case <-p.done:
				return fmt.Errorf("%s exited: %v%s", p.name, p.err, p.logTail())
			default:
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s %s: no reply within 15 s: %w", c.method, c.url, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// freePorts returns n loopback ports that were free a moment ago.
func freePorts(n int) ([]int, error) {
	var ports []int
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// writeTemplate fills in the template text with data and writes it to
// dir/name, creating dir.
func writeTemplate(dir, name, text string, data any) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	t, err := template.New(name).Option("missingkey=error").Parse(text)
	if err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, data); err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	file := filepath.Join(dir, name)
	return file, os.WriteFile(file, b.Bytes(), 0o644)
}

// measureMemory holds cfg.rssConns connections on c (gatekit's
// pass-through) for cfg.rssDuration and samples the resident set of pid.
func measureMemory(ctx context.Context, wrk string, cfg config, c *contender, pid int) (*memory, error) {
	m := &memory{conns: cfg.rssConns, sampleInterval: 100 * time.Millisecond}
	var err error
	if m.idle, err = procStatus(pid, "VmRSS"); err != nil {
		return nil, err
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(m.sampleInterval)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if rss, err := procStatus(pid, "VmRSS"); err == nil {
					m.peak = max(m.peak, rss)
				}
			}
		}
	})
	m.res, err = runWrk(ctx, wrk, cfg.threads, cfg.rssConns, cfg.rssDuration, c)
	if err != nil {
		m.res.errDetail = err.Error()
	}
	close(stop)
	wg.Wait()
	if m.hwm, err = procStatus(pid, "VmHWM"); err != nil {
		return nil, err
	}
	return m, nil
}

// procStatus reads a "kB" field, such as VmRSS, of /proc/PID/status, in
// bytes.
func procStatus(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read %s (Linux only): %w", field, err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("/proc/%d/status: %s: %w", pid, field, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no %s", pid, field)
}

// collectProfiles loads c (one of gatekit's routes) with wrk while it takes
// a CPU profile and an alloc profile of the same cfg.profileFor from
// gatekit's pprof side port, and writes them to cfg.profileDir.
func collectProfiles(ctx context.Context, wrk string, cfg config, c *contender, pprofURL string) ([]string, error) {
	secs := max(1, int(cfg.profileFor.Round(time.Second)/time.Second))
	if err := os.MkdirAll(cfg.profileDir, 0o755); err != nil {
		return nil, err
	}
	var wg sync.WaitGroup
	var res result
	var wrkErr error
	wg.Go(func() {
		res, wrkErr = runWrk(ctx, wrk, cfg.threads, cfg.conns, time.Duration(secs+2)*time.Second, c)
	})
	time.Sleep(time.Second) // the load first
	kinds := []string{"profile", "allocs"}
	files := make([]string, len(kinds))
	errs := make([]error, len(kinds))
	for i, kind := range kinds {
		wg.Go(func() {
			files[i] = filepath.Join(cfg.profileDir, c.key+"-"+map[string]string{"profile": "cpu", "allocs": "allocs"}[kind]+".pprof")
			errs[i] = fetch(ctx, fmt.Sprintf("%s/debug/pprof/%s?seconds=%d", pprofURL, kind, secs), files[i])
		})
	}
	wg.Wait()
	if wrkErr != nil {
		return nil, fmt.Errorf("load while profiling: %w", wrkErr)
	}
	if res.errors > 0 {
		return nil, fmt.Errorf("load while profiling: %d errors", res.errors)
	}
	return files, errors.Join(errs...)
}

func fetch(ctx context.Context, url, file string) error {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %.300s", url, resp.Status, b)
	}
	return os.WriteFile(file, b, 0o644)
}

// packages maps the tools the harness runs to their Debian packages.
var packages = map[string]string{"wrk": "wrk", "nginx": "nginx-light", "caddy": "caddy"}

// lookTool finds a tool on PATH or, for nginx, in /usr/sbin, which is not
// on every user's PATH.
func lookTool(name string) (string, error) {
	p, err := exec.LookPath(name)
	if err == nil {
		return p, nil
	}
	for _, d := range []string{"/usr/sbin", "/usr/local/sbin", "/usr/bin"} {
		if fi, err := os.Stat(filepath.Join(d, name)); err == nil && !fi.IsDir() {
			return filepath.Join(d, name), nil
		}
	}
	return "", err
}

// ensureTools finds the tools in names and, if some are missing and install
// is set, installs their Debian packages with apt-get (through sudo when
// not root).
func ensureTools(ctx context.Context, names []string, install bool, progress io.Writer) (map[string]string, error) {
	find := func() (map[string]string, []string) {
		found := map[string]string{}
		var missing []string
		for _, n := range names {
			if p, err := lookTool(n); err == nil {
				found[n] = p
			} else {
				missing = append(missing, n)
			}
		}
		return found, missing
	}
	found, missing := find()
	if len(missing) == 0 {
		return found, nil
	}
	var pkgs []string
	for _, n := range missing {
		pkgs = append(pkgs, packages[n])
	}
	how := "apt-get install -y " + strings.Join(pkgs, " ")
	if !install {
		return nil, fmt.Errorf("missing %s: install the Debian packages (%s), or leave their contenders out with -contenders", strings.Join(missing, ", "), how)
	}
	var prefix []string
	if os.Geteuid() != 0 {
		if _, err := exec.LookPath("sudo"); err != nil {
			return nil, fmt.Errorf("missing %s, and not root and no sudo to install them: run as root: %s", strings.Join(missing, ", "), how)
		}
		prefix = []string{"sudo"}
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		return nil, fmt.Errorf("missing %s, and no apt-get (not Debian or Ubuntu?): install wrk, nginx and caddy another way", strings.Join(missing, ", "))
	}
	fmt.Fprintf(progress, "loadtest: missing %s; running %s%s\n", strings.Join(missing, ", "), strings.Join(append(prefix, ""), " "), how)
	for _, args := range [][]string{{"apt-get", "update", "-qq"}, append([]string{"apt-get", "install", "-y", "-qq"}, pkgs...)} {
		argv := append(slices.Clone(prefix), args...)
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		cmd.Stdout, cmd.Stderr = progress, progress
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("could not install %s: %s: %w; install them yourself (%s), or leave their contenders out with -contenders", strings.Join(pkgs, " "), strings.Join(argv, " "), err, how)
		}
	}
	if found, missing = find(); len(missing) > 0 {
		return nil, fmt.Errorf("still missing %s after %s", strings.Join(missing, ", "), how)
	}
	return found, nil
}

// environment is what the report says about the machine and the tools.
type environment struct {
	date                         time.Time
	cores                        int
	cpu, kernel, memory, loadavg string
	goVersion, nginx, caddy, wrk string
	goMaxProcs                   int
}

func readEnvironment(ctx context.Context, tools map[string]string) environment {
	e := environment{date: time.Now().UTC(), cores: runtime.NumCPU(), goMaxProcs: runtime.GOMAXPROCS(0)}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				e.cpu = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		e.kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		e.loadavg = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
				e.memory = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
			}
		}
	}
	version := func(argv ...string) string {
		out, _ := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
		line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		return strings.TrimSpace(line)
	}
	e.goVersion = version("go", "version")
	if p, ok := tools["nginx"]; ok {
		e.nginx = version(p, "-v")
	}
	if p, ok := tools["caddy"]; ok {
		e.caddy = "caddy " + version(p, "version")
	}
	if p, ok := tools["wrk"]; ok {
		e.wrk, _, _ = strings.Cut(version(p, "-v"), " Copyright")
	}
	return e
}
