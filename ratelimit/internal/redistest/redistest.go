// Package redistest starts a real redis-server for the tests of gatekit's
// Redis-backed code, so that they exercise the scripts, the network and the
// failure modes (a killed or a stalled server) that a fake could not.
//
//	srv := redistest.Start(t)
//	client := srv.Client(t)
//	// ... use client; srv.Stop(), srv.Restart(), srv.Pause(), srv.Resume()
//
// When redis-server is not on PATH, Start skips the test, or fails it when
// the environment variable CI is set, so that a CI machine missing the
// server cannot pass by skipping everything.
package redistest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// installHint is what a developer or CI image needs to run these tests.
const installHint = "redis-server is not on PATH; install it (Debian/Ubuntu: apt-get install -y redis-server) to run the Redis tests"

// readyTimeout bounds the wait for a started server to answer PING. It is
// generous because a loaded CI machine can take a while to fork and exec.
const readyTimeout = 15 * time.Second

// startAttempts is how often Start tries fresh ports: another process can
// take the free port between the moment we find it and the server binding it.
const startAttempts = 5

// A Server is a redis-server process that a test started: on a free
// loopback port, in the test's temporary directory, without persistence
// (--save "" --appendonly no, so a restart loses all data, as a failover
// to an empty replica would) and with the DEBUG command enabled (so tests
// can DEBUG SLEEP). The test's cleanup kills it.
//
// The methods that control the process are meant for the test goroutine;
// they are safe to call concurrently with clients using the server.
type Server struct {
	// Addr is the server's host:port, the same for the life of the Server
	// (Restart reuses it).
	Addr string

	t       testing.TB
	bin     string
	dir     string
	cluster bool

	mu   sync.Mutex
	cmd  *exec.Cmd     // nil while stopped
	done chan struct{} // closed when cmd has exited
}

// Start starts a redis-server for t and stops it in t's cleanup. It skips
// t (fails it when CI is set) if redis-server is not installed, and fails t
// if the server does not start.
func Start(t testing.TB) *Server {
	t.Helper()
	return start(t, false)
}

// StartCluster is Start for a Redis Cluster of one node that serves all
// 16384 slots. One node is enough to check what a cluster enforces on a
// single server: that a command's keys, and the keys a script touches,
// hash to one slot. Use ClusterClient to talk to it.
func StartCluster(t testing.TB) *Server {
	t.Helper()
	return start(t, true)
}

func start(t testing.TB, cluster bool) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("redistest: %s", installHint)
		} else {
			t.Skipf("redistest: %s", installHint)
		}
		return nil // only reached when t is a fake whose Fatalf/Skipf return
	}
	s := &Server{t: t, bin: bin, dir: t.TempDir(), cluster: cluster}
	t.Cleanup(s.Stop)

	var lastErr error
	for range startAttempts {
		port, err := freePort()
		if err != nil {
			t.Fatalf("redistest: find a free port: %v", err)
			return nil
		}
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if lastErr = s.start(); lastErr == nil {
			return s
		}
	}
	t.Fatalf("redistest: start redis-server: %v", lastErr)
	return nil
}

// Stop kills the server with SIGKILL, the way a crashed or fenced-off
// Redis disappears: no shutdown, no goodbye to clients. It waits until the
// process has exited. Stopping a stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLocked()
}

// Restart starts the server again on the same address, empty, after Stop
// (it stops a running server first). It fails the test if the server does
// not come back.
func (s *Server) Restart() {
	s.t.Helper()
	s.mu.Lock()
	s.stopLocked()
	s.mu.Unlock()
	// The port is ours until some other process grabs it; retry briefly in
	// case the kernel has not released it yet.
	var err error
	for range startAttempts {
		if err = s.start(); err == nil {
			return
		}
	}
	s.t.Fatalf("redistest: restart redis-server on %s: %v", s.Addr, err)
}

// Pause freezes the server with SIGSTOP: connections stay open but nothing
// answers, like a Redis stuck in a long command or a slow fork. Resume
// undoes it; the test's cleanup kills a paused server all the same.
func (s *Server) Pause() { s.signal(syscall.SIGSTOP) }

// Resume lets a paused server run again with SIGCONT.
func (s *Server) Resume() { s.signal(syscall.SIGCONT) }

// Client returns a client of the server with short timeouts, so that a
// stopped or paused server makes calls fail within a fraction of a second,
// and closes it in the test's cleanup. The options (applied in order) can
// change any setting. The defaults also turn off go-redis's retries, which
// would run a script a second time after a lost reply, and make the
// client honour context deadlines on its socket reads and writes.
func (s *Server) Client(t testing.TB, opts ...func(*redis.Options)) *redis.Client {
	t.Helper()
	o := s.options()
	for _, opt := range opts {
		opt(o)
	}
	c := redis.NewClient(o)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// ClusterClient is Client for a server started with StartCluster.
func (s *Server) ClusterClient(t testing.TB, opts ...func(*redis.ClusterOptions)) *redis.ClusterClient {
	t.Helper()
	o := s.options()
	co := &redis.ClusterOptions{
		Addrs:                 []string{s.Addr},
		DialTimeout:           o.DialTimeout,
		DialerRetries:         o.DialerRetries,
		ReadTimeout:           o.ReadTimeout,
		WriteTimeout:          o.WriteTimeout,
		PoolTimeout:           o.PoolTimeout,
		MaxRetries:            o.MaxRetries,
		ContextTimeoutEnabled: o.ContextTimeoutEnabled,
	}
	for _, opt := range opts {
		opt(co)
	}
	c := redis.NewClusterClient(co)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// RingClient is Client for a redis.Ring of one shard, this server.
func (s *Server) RingClient(t testing.TB, opts ...func(*redis.RingOptions)) *redis.Ring {
	t.Helper()
	o := s.options()
	ro := &redis.RingOptions{
		Addrs:                 map[string]string{"shard": s.Addr},
		DialTimeout:           o.DialTimeout,
		DialerRetries:         o.DialerRetries,
		ReadTimeout:           o.ReadTimeout,
		WriteTimeout:          o.WriteTimeout,
		PoolTimeout:           o.PoolTimeout,
		MaxRetries:            o.MaxRetries,
		ContextTimeoutEnabled: o.ContextTimeoutEnabled,
	}
	for _, opt := range opts {
		opt(ro)
	}
	c := redis.NewRing(ro)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func (s *Server) options() *redis.Options {
	return &redis.Options{
		Addr:                  s.Addr,
		DialTimeout:           250 * time.Millisecond,
		DialerRetries:         1,
		ReadTimeout:           500 * time.Millisecond,
		WriteTimeout:          500 * time.Millisecond,
		PoolTimeout:           time.Second,
		MaxRetries:            -1,
		ContextTimeoutEnabled: true,
	}
}

func (s *Server) signal(sig syscall.Signal) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		s.t.Fatalf("redistest: %v sent to a stopped server", sig)
		return
	}
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.t.Fatalf("redistest: send %v to redis-server: %v", sig, err)
	}
}

func (s *Server) stopLocked() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill() // SIGKILL also ends a process stopped by SIGSTOP
	<-s.done
	s.cmd = nil
}

// start runs redis-server on s.Addr and waits until it answers PING. It
// returns an error if the process exits first (typically: the port was
// taken) or does not answer in time.
func (s *Server) start() error {
	_, port, _ := net.SplitHostPort(s.Addr)
	cmd := exec.Command(s.bin,
		"--port", port,
		"--bind", "127.0.0.1",
		"--dir", s.dir,
		"--save", "",
		"--appendonly", "no",
		"--enable-debug-command", "yes",
		"--daemonize", "no",
		"--loglevel", "warning",
	)
	if s.cluster {
		cmd.Args = append(cmd.Args,
			"--cluster-enabled", "yes",
			"--cluster-config-file", filepath.Join(s.dir, "nodes-"+port+".conf"),
		)
	}
	w := new(lockedWriter)
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()

	err := waitReady(s.Addr, done)
	if err == nil && s.cluster {
		err = claimAllSlots(s.Addr)
	}
	if err != nil {
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("%w; redis-server said: %s", err, w.String())
	}
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
	return nil
}

// waitReady polls the server with PING until it answers, the process exits
// (done is closed), or readyTimeout passes. It speaks RESP on a plain
// socket rather than through go-redis, whose pool logs every refused dial.
func waitReady(addr string, done <-chan struct{}) error {
	deadline := time.Now().Add(readyTimeout)
	var err error
	for time.Now().Before(deadline) {
		if err = ping(addr); err == nil {
			return nil
		}
		select {
		case <-done:
			return errors.New("redis-server exited before it was ready")
		case <-time.After(10 * time.Millisecond): // poll interval, not a wait for readiness
		}
	}
	return fmt.Errorf("redis-server did not answer PING within %v: %w", readyTimeout, err)
}

// ping sends one PING and expects +PONG.
func ping(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	reply := make([]byte, len("+PONG\r\n"))
	if _, err := io.ReadFull(conn, reply); err != nil {
		return err
	}
	if string(reply) != "+PONG\r\n" {
		// For example -LOADING while a server loads its data set.
		return fmt.Errorf("PING answered %q", reply)
	}
	return nil
}

// claimAllSlots makes a cluster node serve every slot, unless it already
// does (a restarted node reads its slots back from its nodes file), and
// waits until it reports the cluster usable.
func claimAllSlots(addr string) error {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	info, err := c.ClusterInfo(ctx).Result()
	if err != nil {
		return fmt.Errorf("cluster info: %w", err)
	}
	if !strings.Contains(info, "cluster_slots_assigned:16384") {
		if err := c.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", 0, 16383).Err(); err != nil {
			return fmt.Errorf("claim the cluster slots: %w", err)
		}
	}
	for {
		info, err := c.ClusterInfo(ctx).Result()
		if err != nil {
			return fmt.Errorf("cluster info: %w", err)
		}
		if strings.Contains(info, "cluster_state:ok") {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the cluster did not become ready: %s", info)
		case <-time.After(10 * time.Millisecond): // poll interval
		}
	}
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// lockedWriter collects a process's output, which exec writes from its own
// goroutine while start may read it.
type lockedWriter struct {
	mu sync.Mutex
	w  bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.String()
}
