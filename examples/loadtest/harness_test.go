package main

import (
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestQuick runs the harness in -quick mode: every contender must answer
// 2xx and take wrk's load without an error. No speed is judged. Outside CI
// it skips when wrk, nginx or caddy is missing; under CI=true it installs
// them if it can, and fails if not.
func TestQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("the quick harness run loads seven contenders for about 15 s")
	}
	ci := os.Getenv("CI") == "true"
	if !ci {
		for _, tool := range []string{"wrk", "nginx", "caddy"} {
			if _, err := lookTool(tool); err != nil {
				t.Skipf("no %s (Debian package %s); CI=true makes this test install it", tool, packages[tool])
			}
		}
	}
	t.Cleanup(func() { goleak.VerifyNone(t) })
	cfg := quickConfig(defaults())
	cfg.install = ci
	cfg.command = "go test ./examples/loadtest (TestQuick)"
	rep, err := run(t.Context(), cfg, t.Output())
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + rep.markdown())
	for _, f := range rep.failures {
		t.Error(f)
	}
	// The report must have seen what it prints.
	for _, c := range rep.contenders {
		if rs := rep.rounds[c.key]; len(rs) != cfg.rounds || rs[0].rps <= 0 || rs[0].p99 <= 0 {
			t.Errorf("%s: rounds %+v", c.name, rs)
		}
	}
	if rep.mem == nil || rep.mem.idle <= 0 || rep.mem.peak <= 0 {
		t.Errorf("no RSS read: %+v", rep.mem)
	}
}

func TestParseWrk(t *testing.T) {
	const ok = `Running 5s test @ http://127.0.0.1:8080/pass/x
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.02ms  449.12us  12.01ms   80.00%
    Req/Sec    31.50k     2.10k   35.00k    70.00%
  Latency Distribution
     50%  850.00us
     75%    1.20ms
     90%    1.60ms
     99%    2.50ms
  313000 requests in 5.00s, 350.00MB read
Requests/sec:  62600.50
Transfer/sec:     70.00MB
`
	const errs = `Running 1s test @ http://127.0.0.1:8080/api/orders
  1 threads and 8 connections
  Latency Distribution
     50%  300.00us
     75%  400.00us
     90%  500.00us
     99%    1.10s
  1000 requests in 1.00s, 1.00MB read
  Socket errors: connect 2, read 1, write 0, timeout 3
  Non-2xx or 3xx responses: 10
Requests/sec:   1000.00
Transfer/sec:      1.00MB
`
	tests := []struct {
		name    string
		out     string
		want    result
		wantErr bool
	}{
		{"ok", ok, result{rps: 62600.5, requests: 313000, p50: 850 * time.Microsecond, p99: 2500 * time.Microsecond}, false},
		{"errors", errs, result{rps: 1000, requests: 1000, p50: 300 * time.Microsecond, p99: 1100 * time.Millisecond, errors: 16,
			errDetail: "(2 connect, 1 read, 3 timeout, 10 status >= 400)"}, false},
		// 4.02 and 19.06 have no exact binary form: a truncating
		// conversion gave 4.019999ms.
		{"decimal latencies", strings.NewReplacer("850.00us", "4.02ms", "2.50ms", "19.06ms").Replace(ok),
			result{rps: 62600.5, requests: 313000, p50: 4020 * time.Microsecond, p99: 19060 * time.Microsecond}, false},
		{"no latency", "  10 requests in 1.00s, 1.00KB read\nRequests/sec: 10.00\n", result{}, true},
		{"not wrk", "wrk: command failed\n", result{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseWrk(tc.out)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error: %v", err, tc.wantErr)
			}
			if !tc.wantErr && got != tc.want {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestLuaString(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{"a":"b"}`, `[[{"a":"b"}]]`},
		{`x]]y`, `[=[x]]y]=]`},
		{`x]]y]=]`, `[==[x]]y]=]]==]`},
	}
	for _, tc := range tests {
		if got := luaString(tc.in); got != tc.want {
			t.Errorf("luaString(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestMedian(t *testing.T) {
	rs := []result{{rps: 3, p50: 30, p99: 1}, {rps: 1, p50: 10, p99: 3}, {rps: 2, p50: 20, p99: 2}}
	if m := median(rs); m.rps != 2 || m.p50 != 20 || m.p99 != 2 {
		t.Errorf("median of three = %+v", m)
	}
	if m := median(rs[:2]); m.rps != 2 || m.p50 != 20 || m.p99 != 2 {
		t.Errorf("median of two = %+v", m)
	}
}
