package redistest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestServerLifecycle(t *testing.T) {
	srv := Start(t)
	c := srv.Client(t)
	ctx := context.Background()

	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET on a started server: %v", err)
	}

	srv.Stop()
	start := time.Now()
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatal("PING on a stopped server succeeded")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("PING on a stopped server took %v; the client's timeouts should fail it fast", d)
	}
	srv.Stop() // stopping twice is harmless

	addr := srv.Addr
	srv.Restart()
	if srv.Addr != addr {
		t.Errorf("Restart moved the server from %s to %s", addr, srv.Addr)
	}
	// The pool may hold a connection to the killed process; the first
	// command on it can fail, so poll with a deadline.
	if err := eventually(func() error { return c.Ping(ctx).Err() }); err != nil {
		t.Fatalf("PING after Restart: %v", err)
	}
	if n, err := c.Exists(ctx, "k").Result(); err != nil || n != 0 {
		t.Errorf("EXISTS k after Restart = %d, %v; want 0: the server keeps no data", n, err)
	}
}

func TestServerPause(t *testing.T) {
	srv := Start(t)
	c := srv.Client(t)
	if err := c.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("PING: %v", err)
	}

	srv.Pause()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatal("PING on a paused server succeeded")
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("PING on a paused server with a 50ms deadline took %v", d)
	}

	srv.Resume()
	if err := eventually(func() error { return c.Ping(context.Background()).Err() }); err != nil {
		t.Fatalf("PING after Resume: %v", err)
	}
}

func TestServerDebugCommand(t *testing.T) {
	srv := Start(t)
	c := srv.Client(t)
	if err := c.Do(context.Background(), "DEBUG", "SLEEP", "0").Err(); err != nil {
		t.Fatalf("DEBUG SLEEP 0: %v; the server should allow DEBUG", err)
	}
}

func TestCluster(t *testing.T) {
	srv := StartCluster(t)
	c := srv.ClusterClient(t)
	ctx := context.Background()
	if err := c.Set(ctx, "{a}1", "v", 0).Err(); err != nil {
		t.Fatalf("SET on the cluster: %v", err)
	}
	// A cluster refuses keys of different slots in one command, which is
	// what makes it worth testing against.
	if err := c.Do(ctx, "MSET", "{a}1", "v", "{b}2", "v").Err(); err == nil || !strings.Contains(err.Error(), "CROSSSLOT") {
		t.Errorf("MSET across slots = %v; want a CROSSSLOT error", err)
	}

	srv.Stop()
	srv.Restart()
	if err := eventually(func() error { return c.Set(ctx, "{a}1", "v", 0).Err() }); err != nil {
		t.Fatalf("SET after Restart: %v", err)
	}
}

// TestRingClient checks that a ring of the one server reaches it, with
// the defaults of Client: context deadlines honoured, no retries.
func TestRingClient(t *testing.T) {
	srv := Start(t)
	ring := srv.RingClient(t)
	// The ring turns MaxRetries -1 into 0, its own "no retries".
	if o := ring.Options(); !o.ContextTimeoutEnabled || o.MaxRetries > 0 {
		t.Errorf("ring options: ContextTimeoutEnabled %v, MaxRetries %d; want true and no retries", o.ContextTimeoutEnabled, o.MaxRetries)
	}
	ctx := context.Background()
	if err := ring.Set(ctx, "ring", "v", 0).Err(); err != nil {
		t.Fatalf("SET through the ring: %v", err)
	}
	if got, err := srv.Client(t).Get(ctx, "ring").Result(); err != nil || got != "v" {
		t.Errorf("GET from the server = %q, %v; want the ring's write", got, err)
	}
}

// fakeTB records Skipf and Fatalf instead of ending the test, so the
// missing-binary path of Start can be observed.
type fakeTB struct {
	testing.TB
	skipped, failed string
}

func (f *fakeTB) Helper()                       {}
func (f *fakeTB) Skipf(format string, a ...any) { f.skipped = fmt.Sprintf(format, a...) }
func (f *fakeTB) Fatalf(format string, a ...any) {
	f.failed = fmt.Sprintf(format, a...)
}

func TestStartWithoutRedisServer(t *testing.T) {
	tests := []struct {
		name     string
		ci       string
		wantSkip bool
	}{
		{name: "developer machine skips", ci: "", wantSkip: true},
		{name: "CI fails", ci: "true", wantSkip: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("PATH", t.TempDir()) // a directory without redis-server
			t.Setenv("CI", tc.ci)
			f := &fakeTB{TB: t}
			if srv := Start(f); srv != nil {
				t.Fatalf("Start returned a server without a redis-server binary")
			}
			msg := f.failed
			if tc.wantSkip {
				msg = f.skipped
				if f.failed != "" {
					t.Errorf("Start failed the test (%q); want a skip", f.failed)
				}
			} else if f.skipped != "" {
				t.Errorf("Start skipped the test (%q); want a failure under CI", f.skipped)
			}
			if !strings.Contains(msg, "apt-get install -y redis-server") {
				t.Errorf("message %q does not say how to install redis-server", msg)
			}
		})
	}
}

// eventually calls f until it succeeds or 5 seconds pass, and returns its
// last error.
func eventually(f func() error) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := f()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(10 * time.Millisecond)
	}
}
