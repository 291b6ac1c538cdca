package main

import (
	"context"
	"fmt"
	"math"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// runWrk loads c with wrk for d (rounded up to whole seconds, as wrk takes
// them) and parses what it printed.
func runWrk(ctx context.Context, wrk string, threads, conns int, d time.Duration, c *contender) (result, error) {
	secs := max(1, int((d+time.Second-1)/time.Second))
	args := []string{"-t" + strconv.Itoa(threads), "-c" + strconv.Itoa(conns), "-d" + strconv.Itoa(secs) + "s", "--latency"}
	if c.script != "" {
		args = append(args, "-s", c.script)
	}
	args = append(args, c.url)
	out, err := exec.CommandContext(ctx, wrk, args...).CombinedOutput()
	if err != nil {
		return result{}, fmt.Errorf("wrk %s: %w: %.500s", strings.Join(args, " "), err, out)
	}
	res, err := parseWrk(string(out))
	if err != nil {
		return res, fmt.Errorf("wrk %s: %w in:\n%s", strings.Join(args, " "), err, out)
	}
	return res, nil
}

var (
	wrkRPS      = regexp.MustCompile(`(?m)^Requests/sec:\s+([0-9.]+)`)
	wrkRequests = regexp.MustCompile(`(?m)^\s*([0-9]+) requests in `)
	wrkPct      = regexp.MustCompile(`(?m)^\s+(50|99)(?:\.000)?%\s+([0-9.]+)(us|ms|s|m)\s*$`)
	wrkSocket   = regexp.MustCompile(`Socket errors: connect ([0-9]+), read ([0-9]+), write ([0-9]+), timeout ([0-9]+)`)
	wrkStatus   = regexp.MustCompile(`Non-2xx or 3xx responses: ([0-9]+)`)
)

// parseWrk reads wrk --latency's report. Errors are socket errors and
// replies with a status from 400 up, which wrk counts as "Non-2xx or 3xx".
func parseWrk(out string) (result, error) {
	var res result
	m := wrkRPS.FindStringSubmatch(out)
	if m == nil {
		return res, fmt.Errorf("no Requests/sec")
	}
	res.rps, _ = strconv.ParseFloat(m[1], 64)
	if m = wrkRequests.FindStringSubmatch(out); m == nil {
		return res, fmt.Errorf("no request count")
	}
	res.requests, _ = strconv.ParseInt(m[1], 10, 64)
	for _, m := range wrkPct.FindAllStringSubmatch(out, -1) {
		v, _ := strconv.ParseFloat(m[2], 64)
		unit := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second, "m": time.Minute}[m[3]]
		// Rounded: 4.02ms is 4.019999… in binary floating point.
		d := time.Duration(math.Round(v * float64(unit)))
		if m[1] == "50" {
			res.p50 = d
		} else {
			res.p99 = d
		}
	}
	if res.requests > 0 && (res.p50 == 0 || res.p99 == 0) {
		return res, fmt.Errorf("no 50%% or 99%% latency (run with --latency)")
	}
	var details []string
	if m = wrkSocket.FindStringSubmatch(out); m != nil {
		for i, what := range []string{"connect", "read", "write", "timeout"} {
			n, _ := strconv.ParseInt(m[i+1], 10, 64)
			if n > 0 {
				res.errors += n
				details = append(details, fmt.Sprintf("%d %s", n, what))
			}
		}
	}
	if m = wrkStatus.FindStringSubmatch(out); m != nil {
		n, _ := strconv.ParseInt(m[1], 10, 64)
		res.errors += n
		details = append(details, fmt.Sprintf("%d status >= 400", n))
	}
	if len(details) > 0 {
		res.errDetail = "(" + strings.Join(details, ", ") + ")"
	}
	return res, nil
}

// wrkScript is a wrk Lua script that sends c's method, headers and body.
func wrkScript(c *contender) string {
	var b strings.Builder
	fmt.Fprintf(&b, "wrk.method = %s\n", luaString(c.method))
	if c.body != nil {
		fmt.Fprintf(&b, "wrk.body = %s\n", luaString(string(c.body)))
	}
	for k, vs := range c.header {
		fmt.Fprintf(&b, "wrk.headers[ %s ] = %s\n", luaString(k), luaString(strings.Join(vs, ", ")))
	}
	return b.String()
}

// luaString quotes s as a Lua long string, [==[...]==], at a level that s
// does not close.
func luaString(s string) string {
	eq := ""
	for strings.Contains(s, "]"+eq+"]") {
		eq += "="
	}
	return "[" + eq + "[" + s + "]" + eq + "]"
}
