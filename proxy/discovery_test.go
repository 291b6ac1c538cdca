package proxy

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// discSource is a ResolverFunc whose answer the test changes.
type discSource struct {
	targets atomic.Pointer[[]Target]
	err     atomic.Pointer[error]
	panics  atomic.Bool
	calls   atomic.Int64
}

func (d *discSource) set(urls ...string) {
	ts := make([]Target, len(urls))
	for i, u := range urls {
		ts[i].URL = u
	}
	d.targets.Store(&ts)
}

func (d *discSource) setTargets(ts ...Target) { d.targets.Store(&ts) }

func (d *discSource) fail(err error) { d.err.Store(&err) }

func (d *discSource) resolve(ctx context.Context) ([]Target, time.Duration, error) {
	d.calls.Add(1)
	if d.panics.Load() {
		panic("resolver bug")
	}
	if e := d.err.Load(); e != nil && *e != nil {
		return nil, 10 * time.Millisecond, *e
	}
	return *d.targets.Load(), 10 * time.Millisecond, nil
}

func TestDiscoverySwap(t *testing.T) {
	a, b := lbBackend(t, "a", nil), lbBackend(t, "b", nil)
	var src discSource
	src.set(a.URL)
	u := lbUpstream(t, HTTPConfig{Discovery: ResolverFunc(src.resolve)})
	if r := lbGet(t, u); r.body != "a" {
		t.Fatalf("first reply %d %q, want a", r.status, r.body)
	}

	src.set(b.URL)
	lbEventually(t, "b replaces a", func() bool { return hcAllFrom(t, u, "b", 5) })

	// A target that stays keeps its state; a new one starts fresh.
	tb := u.set.Load().targets[0]
	tb.fails.Store(2)
	src.set(a.URL, b.URL)
	lbEventually(t, "a joins", func() bool { return len(u.set.Load().targets) == 2 })
	ts := u.set.Load().targets
	if ts[1] != tb || ts[1].fails.Load() != 2 {
		t.Error("b lost its state in the update")
	}
	if ts[0].fails.Load() != 0 {
		t.Error("a came back with old state")
	}
}

// discLog is a Logger whose output a test reads.
type discLog struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (l *discLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *discLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *discLog) logger() *slog.Logger { return slog.New(slog.NewTextHandler(l, nil)) }

// TestDiscoveryKeepsLastGoodSet: a resolution that fails, or whose targets
// are refused, or that panics, keeps the set and is logged; the upstream
// goes on serving, and asking.
func TestDiscoveryKeepsLastGoodSet(t *testing.T) {
	a := lbBackend(t, "a", nil)
	tests := []struct {
		name   string
		spoil  func(*discSource)
		logged string
	}{
		{"error", func(d *discSource) { d.fail(errors.New("registry down")) }, "registry down"},
		{"empty list", func(d *discSource) { d.set() }, "no targets"},
		{"invalid URL", func(d *discSource) { d.set("ftp://x") }, "scheme must be http"},
		{"weights that would overflow", func(d *discSource) {
			d.setTargets(Target{URL: a.URL, Weight: 1 << 62}, Target{URL: "http://b", Weight: 1 << 62}, Target{URL: "http://c", Weight: 3})
		}, "MaxWeight"},
		{"weight over MaxWeight", func(d *discSource) {
			d.setTargets(Target{URL: a.URL, Weight: 1 << 48}, Target{URL: "http://b", Weight: 1})
		}, "MaxWeight"},
		{"duplicates over MaxWeight", func(d *discSource) {
			d.setTargets(Target{URL: a.URL, Weight: MaxWeight}, Target{URL: a.URL, Weight: 1})
		}, "add up to"},
		{"panic", func(d *discSource) { d.panics.Store(true) }, "resolver bug"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var src discSource
			src.set(a.URL)
			var log discLog
			u := lbUpstream(t, HTTPConfig{Discovery: ResolverFunc(src.resolve), Balance: Weighted(), Logger: log.logger()})
			before := u.set.Load()
			tc.spoil(&src)
			calls := src.calls.Load()
			lbEventually(t, "the resolver is asked again", func() bool { return src.calls.Load() > calls+2 })
			if u.set.Load() != before {
				t.Error("the set changed")
			}
			if r := lbGet(t, u); r.body != "a" {
				t.Errorf("reply %d %q, want a", r.status, r.body)
			}
			if got := log.String(); !strings.Contains(got, "keeping the current targets") || !strings.Contains(got, tc.logged) {
				t.Errorf("log %q, want the rejection, with %q", got, tc.logged)
			}
		})
	}
}

// TestDiscoveryStartsEmpty: an upstream whose first resolution fails
// answers 503 until one succeeds. (After a panic, which tells no TTL, the
// next try is 5s away: the test does not wait for it.)
func TestDiscoveryStartsEmpty(t *testing.T) {
	a := lbBackend(t, "a", nil)
	for _, tc := range []struct {
		name        string
		spoil, mend func(*discSource)
	}{
		{"error", func(d *discSource) { d.fail(errors.New("not yet")) }, func(d *discSource) { d.fail(nil) }},
		{"panic", func(d *discSource) { d.panics.Store(true) }, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var src discSource
			src.set(a.URL)
			tc.spoil(&src)
			var log discLog
			u := lbUpstream(t, HTTPConfig{Discovery: ResolverFunc(src.resolve), Logger: log.logger()})
			r := lbGet(t, u)
			if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
				t.Errorf("reply %d %v, want 503 with Retry-After", r.status, r.header)
			}
			if tc.mend == nil {
				if got := log.String(); !strings.Contains(got, "keeping the current targets") {
					t.Errorf("log %q, want the failure", got)
				}
				return
			}
			tc.mend(&src)
			lbEventually(t, "targets arrive", func() bool { return lbGet(t, u).body == "a" })
		})
	}
}

// TestDiscoveryCloseStopsResolver: Close cancels a Resolve in progress and
// waits for the goroutine.
func TestDiscoveryCloseStopsResolver(t *testing.T) {
	a := lbBackend(t, "a", nil)
	var calls atomic.Int64
	blocked := make(chan struct{}, 1)
	u, err := HTTP(HTTPConfig{Discovery: ResolverFunc(func(ctx context.Context) ([]Target, time.Duration, error) {
		if calls.Add(1) == 1 {
			return []Target{{URL: a.URL}}, time.Millisecond, nil
		}
		blocked <- struct{}{}
		<-ctx.Done()
		return nil, 0, ctx.Err()
	})})
	if err != nil {
		t.Fatal(err)
	}
	<-blocked
	done := make(chan struct{})
	go func() { u.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return")
	}
}

func TestDNSResolver(t *testing.T) {
	a := lbBackend(t, "a", nil)
	_, port, _ := net.SplitHostPort(a.Listener.Addr().String())
	d := DNS("http", "localhost", port)
	d.Refresh = 20 * time.Millisecond
	ts, ttl, err := d.Resolve(t.Context())
	if err != nil {
		t.Skipf("localhost does not resolve here: %v", err)
	}
	if ttl != 20*time.Millisecond {
		t.Errorf("TTL %v, want Refresh", ttl)
	}
	want := Target{URL: "http://127.0.0.1:" + port}
	if !slices.Contains(ts, want) {
		t.Fatalf("targets %v, want %v among them", ts, want)
	}
	// Through an upstream: localhost may also be ::1, where nothing
	// listens; connect failures are retried.
	u := lbUpstream(t, HTTPConfig{Discovery: d, Retry: &RetryPolicy{Backoff: -1, Budget: -1}})
	for range 4 {
		if r := lbGet(t, u); r.body != "a" {
			t.Fatalf("reply %d %q", r.status, r.body)
		}
	}
}

// TestDNSSRVResolver resolves SRV records from a tiny DNS server.
func TestDNSSRVResolver(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go discServeSRV(pc)
	d := DNSSRV("https", "api", "tcp", "example.test")
	d.Path = "/v1"
	d.Resolver = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var dl net.Dialer
		return dl.DialContext(ctx, "udp", pc.LocalAddr().String())
	}}
	ts, _, err := d.Resolve(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(ts, func(a, b Target) int { return strings.Compare(a.URL, b.URL) })
	want := []Target{{URL: "https://a.example.test:8443/v1", Weight: 10}, {URL: "https://b.example.test:8443/v1", Weight: 30}}
	if !slices.Equal(ts, want) {
		t.Errorf("targets %v, want %v (the priority-20 record is a backup)", ts, want)
	}
}

// discServeSRV answers every query with three SRV records: a and b at
// priority 10, c at 20.
func discServeSRV(pc net.PacketConn) {
	buf := make([]byte, 512)
	for {
		n, addr, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		q := buf[:n]
		if len(q) < 12 {
			continue
		}
		// The question ends after the name's zero byte and 4 more bytes.
		end := 12
		for end < len(q) && q[end] != 0 {
			end += int(q[end]) + 1
		}
		end += 5
		if end > len(q) {
			continue
		}
		resp := append([]byte(nil), q[:2]...)                   // ID
		resp = append(resp, 0x84, 0x00, 0, 1, 0, 3, 0, 0, 0, 0) // response, authoritative; 1 question, 3 answers
		resp = append(resp, q[12:end]...)
		for _, rr := range []struct {
			prio, weight uint16
			host         string
		}{{10, 10, "a"}, {10, 30, "b"}, {20, 100, "c"}} {
			target := discName(rr.host + ".example.test")
			resp = append(resp, 0xc0, 12, 0, 33, 0, 1, 0, 0, 0, 60) // name pointer, SRV, IN, TTL 60
			rdlen := 6 + len(target)
			resp = append(resp, byte(rdlen>>8), byte(rdlen), byte(rr.prio>>8), byte(rr.prio), byte(rr.weight>>8), byte(rr.weight), 0x20, 0xfb) // port 8443
			resp = append(resp, target...)
		}
		pc.WriteTo(resp, addr)
	}
}

func discName(name string) []byte {
	var b []byte
	for _, label := range strings.Split(name, ".") {
		b = append(b, byte(len(label)))
		b = append(b, label...)
	}
	return append(b, 0)
}

func TestDiscoveryConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		r    Resolver
		want string
	}{
		{"DNS scheme", DNS("ftp", "h", "80"), "scheme"},
		{"DNS without port", DNS("http", "h", ""), "host and a port"},
		{"DNS path", &DNSResolver{Scheme: "http", host: "h", port: "1", Path: "v1"}, "path"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u, err := HTTP(HTTPConfig{Discovery: tc.r})
			if err == nil {
				u.Close()
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want %q in it", err, tc.want)
			}
		})
	}
}
