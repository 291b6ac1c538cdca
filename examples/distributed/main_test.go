package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// refill is how long the limit of 5 a minute takes to earn a token back: a
// test slower than that may see one more request admitted, legitimately.
const refill = 12 * time.Second

// TestDistributed runs two replicas against one redis-server, as the README
// does, and tries its curl commands.
func TestDistributed(t *testing.T) {
	redisAddr := startRedis(t)
	// A generous Redis timeout keeps a loaded machine from turning
	// decisions into 503s; the limit is the same.
	cfg := config{redis: redisAddr, timeout: 5 * time.Second}
	gws := []string{startGateway(t, cfg, io.Discard), startGateway(t, cfg, io.Discard)}
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()

	t.Run("alternating replicas share one limit", func(t *testing.T) {
		start := time.Now()
		admitted := 0
		for i := range 8 {
			gw := gws[i%2]
			resp, body := get(t, client, gw, "alice")
			if policy := resp.Header.Get("RateLimit-Policy"); policy != `"per-client";q=5;w=60` {
				t.Errorf("request %d: RateLimit-Policy %q", i+1, policy)
			}
			switch resp.StatusCode {
			case http.StatusOK:
				admitted++
				want := fmt.Sprintf(`"per-client";r=%d;`, 5-admitted)
				if rl := resp.Header.Get("RateLimit"); !strings.HasPrefix(rl, want) {
					t.Errorf("request %d: RateLimit %q, want %s...", i+1, rl, want)
				}
				if !strings.Contains(body, `"served_by":"`+gw+`"`) {
					t.Errorf("request %d: body %s, want served by %s", i+1, body, gw)
				}
			case http.StatusTooManyRequests:
				if i < 5 {
					t.Errorf("request %d refused, want the first 5 admitted", i+1)
				}
				if rl := resp.Header.Get("RateLimit"); !strings.HasPrefix(rl, `"per-client";r=0;`) {
					t.Errorf("request %d: RateLimit %q, want r=0", i+1, rl)
				}
				if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || s < 1 || s > 12 {
					t.Errorf("request %d: Retry-After %q, want 1 to 12 seconds", i+1, resp.Header.Get("Retry-After"))
				}
				if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
					t.Errorf("request %d: Content-Type %q", i+1, ct)
				}
			default:
				t.Fatalf("request %d: %d %s", i+1, resp.StatusCode, body)
			}
		}
		checkAdmitted(t, admitted, start)
	})

	t.Run("another client has a limit of its own", func(t *testing.T) {
		resp, body := get(t, client, gws[1], "bob")
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"client":"bob"`) {
			t.Fatalf("got %d %s, want 200 for bob", resp.StatusCode, body)
		}
	})

	t.Run("concurrent requests over both replicas", func(t *testing.T) {
		start := time.Now()
		var wg sync.WaitGroup
		codes := make(chan int, 20)
		for i := range 20 {
			wg.Go(func() {
				resp, _, err := do(client, gws[i%2], "carol")
				if err != nil {
					t.Error(err)
					return
				}
				codes <- resp.StatusCode
			})
		}
		wg.Wait()
		close(codes)
		admitted := 0
		for c := range codes {
			switch c {
			case http.StatusOK:
				admitted++
			case http.StatusTooManyRequests:
			default:
				t.Errorf("got %d, want 200 or 429", c)
			}
		}
		checkAdmitted(t, admitted, start)
	})
}

// TestDistributedRedisDown: without Redis, requests are refused with 503,
// or with -fail-open admitted; either way the banner says so.
func TestDistributedRedisDown(t *testing.T) {
	tests := []struct {
		name       string
		failOpen   bool
		wantStatus int
		wantBanner string
	}{
		{"fail closed", false, http.StatusServiceUnavailable, "requests are refused with 503"},
		{"fail open", true, http.StatusOK, "admitted without counting"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := new(lockedBuffer)
			gw := startGateway(t, config{redis: closedPort(t), failOpen: tc.failOpen, timeout: time.Second}, out)
			client := &http.Client{Transport: &http.Transport{}}
			defer client.CloseIdleConnections()
			resp, body := get(t, client, gw, "alice")
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("got %d %s, want %d", resp.StatusCode, body, tc.wantStatus)
			}
			if tc.wantStatus == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "1" {
				t.Errorf("Retry-After %q, want 1", resp.Header.Get("Retry-After"))
			}
			// The banner is written before the first request is served.
			if s := out.String(); !strings.Contains(s, tc.wantBanner) {
				t.Errorf("output lacks %q:\n%s", tc.wantBanner, s)
			}
		})
	}
}

// checkAdmitted fails t unless exactly the limit of 5 was admitted, plus
// one for every refill period the test took.
func checkAdmitted(t *testing.T, admitted int, start time.Time) {
	t.Helper()
	most := 5 + int(time.Since(start)/refill)
	if admitted < 5 || admitted > most {
		t.Errorf("%d admitted in total, want 5 (at most %d after %v)", admitted, most, time.Since(start))
	}
}

// startGateway runs the example on a free port, stopping it when the test
// ends, and returns its address.
func startGateway(t *testing.T, cfg config, out io.Writer) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- run(ctx, ln, out, cfg) }()
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	return ln.Addr().String()
}

// get asks gw for /hello as client, as the README's curl commands do.
func get(t *testing.T, c *http.Client, gw, client string) (*http.Response, string) {
	t.Helper()
	resp, body, err := do(c, gw, client)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// do is get for goroutines other than the test's.
func do(c *http.Client, gw, client string) (*http.Response, string, error) {
	req, err := http.NewRequest("GET", "http://"+gw+"/hello", nil)
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("X-Client", client)
	resp, err := c.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, string(b), err
}

// startRedis starts a redis-server without persistence on a free loopback
// port, as the README does, and kills it when the test ends. It skips the
// test when redis-server is not installed, or fails it when CI is set, so
// that a CI machine without it cannot pass by skipping.
func startRedis(t *testing.T) string {
	t.Helper()
	const hint = "redis-server is not on PATH; install it (Debian/Ubuntu: apt-get install -y redis-server) to run this test"
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal(hint)
		}
		t.Skip(hint)
	}
	dir := t.TempDir()
	// Another process may take the free port before redis-server binds it.
	for range 5 {
		addr := closedPort(t)
		_, port, _ := net.SplitHostPort(addr)
		var log bytes.Buffer
		cmd := exec.Command(bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir)
		cmd.Stdout, cmd.Stderr = &log, &log
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		if err := waitReady(addr, exited); err != nil {
			cmd.Process.Kill()
			<-exited
			t.Logf("redis-server on %s: %v; it said: %s", addr, err, log.String())
			continue
		}
		t.Cleanup(func() {
			cmd.Process.Kill()
			<-exited
		})
		return addr
	}
	t.Fatal("redis-server did not start")
	return ""
}

// waitReady polls addr with PING until it answers +PONG, the process exits,
// or 15s pass (a loaded machine can be slow to start it).
func waitReady(addr string, exited <-chan struct{}) error {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if ping(addr) == nil {
			return nil
		}
		select {
		case <-exited:
			return errors.New("exited before answering PING")
		case <-time.After(10 * time.Millisecond): // poll interval
		}
	}
	return errors.New("no answer to PING within 15s")
}

func ping(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := io.WriteString(conn, "PING\r\n"); err != nil {
		return err
	}
	reply := make([]byte, len("+PONG\r\n"))
	if _, err := io.ReadFull(conn, reply); err != nil {
		return err
	}
	if string(reply) != "+PONG\r\n" {
		return fmt.Errorf("PING answered %q", reply)
	}
	return nil
}

// closedPort returns a loopback address that was free a moment ago.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// lockedBuffer collects what run writes from its goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
