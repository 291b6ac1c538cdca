package ratelimit_test

// Helpers here carry a "conc" prefix to stay clear of the package's other
// test files. Tests that depend on waiting run in a testing/synctest bubble,
// where time is fake and synctest.Wait tells when every goroutine is stuck,
// so they need no sleeps and do not depend on the machine's speed.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gatekit/gatekit/gateway"
	"github.com/gatekit/gatekit/ratelimit"
)

func concLimiter(t testing.TB, cfg ratelimit.ConcurrencyConfig) *ratelimit.Concurrency {
	t.Helper()
	c, err := ratelimit.NewConcurrency(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func concRequest() *gateway.Request {
	return gateway.NewRequest(httptest.NewRequest(http.MethodGet, "/", nil))
}

// concAdmit asks c for a slot and fails the test unless it is granted.
func concAdmit(t testing.TB, c *ratelimit.Concurrency) func(*gateway.Response) {
	t.Helper()
	done, err := c.Limit(context.Background(), concRequest())
	if err != nil {
		t.Fatalf("Limit refused a request that should have a slot: %v", err)
	}
	if done == nil {
		t.Fatal("Limit admitted a request without a done function")
	}
	return done
}

// concWant503 checks that err is the refusal of a limiter with no slot.
func concWant503(t testing.TB, err error, detail, retryAfter string) {
	t.Helper()
	var e *gateway.Error
	if !errors.As(err, &e) {
		t.Fatalf("error = %v, want a *gateway.Error", err)
	}
	if e.Status != http.StatusServiceUnavailable {
		t.Errorf("status = %d, want 503", e.Status)
	}
	if e.Detail != detail {
		t.Errorf("detail = %q, want %q", e.Detail, detail)
	}
	if got := e.Header.Get("Retry-After"); got != retryAfter {
		t.Errorf("Retry-After = %q, want %q", got, retryAfter)
	}
}

// concCounts checks what c reports in flight and waiting.
func concCounts(t testing.TB, c *ratelimit.Concurrency, inFlight, waiting int) {
	t.Helper()
	if got := c.InFlight(); got != inFlight {
		t.Errorf("InFlight() = %d, want %d", got, inFlight)
	}
	if got := c.Waiting(); got != waiting {
		t.Errorf("Waiting() = %d, want %d", got, waiting)
	}
}

// concServe serves h with httptest and returns the server and a channel that
// receives once per exchange after h has returned: the pipeline has then
// written the reply and closed its body, so any slot is back.
func concServe(t testing.TB, h http.Handler) (*httptest.Server, <-chan struct{}) {
	t.Helper()
	served := make(chan struct{}, 100)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() { served <- struct{}{} }()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	return ts, served
}

const (
	concFull    = "too many requests in flight; retry later"
	concTimeout = "too many requests in flight, and none finished in time; retry later"
)

func TestNewConcurrencyConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     ratelimit.ConcurrencyConfig
		wantErr string // "" means valid
	}{
		{name: "minimal", cfg: ratelimit.ConcurrencyConfig{Max: 1}},
		{name: "with a queue", cfg: ratelimit.ConcurrencyConfig{Max: 4, Queue: 8, MaxWait: time.Second}},
		{name: "MaxWait without a queue is ignored", cfg: ratelimit.ConcurrencyConfig{Max: 1, MaxWait: time.Second}},
		{name: "Max zero", cfg: ratelimit.ConcurrencyConfig{Name: "api"},
			wantErr: `ratelimit: concurrency "api": Max must be at least 1`},
		{name: "Max negative", cfg: ratelimit.ConcurrencyConfig{Name: "api", Max: -2},
			wantErr: `ratelimit: concurrency "api": Max must be at least 1`},
		{name: "default name in errors", cfg: ratelimit.ConcurrencyConfig{},
			wantErr: `ratelimit: concurrency "concurrency": Max must be at least 1`},
		{name: "Queue negative", cfg: ratelimit.ConcurrencyConfig{Name: "api", Max: 1, Queue: -1},
			wantErr: `ratelimit: concurrency "api": Queue must not be negative`},
		{name: "Queue without MaxWait", cfg: ratelimit.ConcurrencyConfig{Name: "api", Max: 1, Queue: 5},
			wantErr: `ratelimit: concurrency "api": MaxWait is required when Queue is above 0`},
		{name: "MaxWait negative", cfg: ratelimit.ConcurrencyConfig{Name: "api", Max: 1, Queue: 5, MaxWait: -time.Second},
			wantErr: `ratelimit: concurrency "api": MaxWait must not be negative`},
		{name: "RetryAfter negative", cfg: ratelimit.ConcurrencyConfig{Name: "api", Max: 1, RetryAfter: -time.Second},
			wantErr: `ratelimit: concurrency "api": RetryAfter must not be negative`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ratelimit.NewConcurrency(tc.cfg)
			if tc.wantErr == "" {
				if err != nil || c == nil {
					t.Fatalf("NewConcurrency = %v, %v; want a limiter", c, err)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
				t.Fatalf("error = %v, want one starting %q", err, tc.wantErr)
			}
			if c != nil {
				t.Error("NewConcurrency returned a limiter along with its error")
			}
		})
	}
}

func TestConcurrencyRetryAfter(t *testing.T) {
	tests := []struct {
		retryAfter time.Duration
		want       string
	}{
		{0, "1"},
		{time.Nanosecond, "1"},
		{time.Second, "1"},
		{1500 * time.Millisecond, "2"},
		{30 * time.Second, "30"},
	}
	for _, tc := range tests {
		t.Run(tc.retryAfter.String(), func(t *testing.T) {
			c := concLimiter(t, ratelimit.ConcurrencyConfig{Max: 1, RetryAfter: tc.retryAfter})
			done := concAdmit(t, c)
			defer done(nil)
			_, err := c.Limit(context.Background(), concRequest())
			concWant503(t, err, concFull, tc.want)
		})
	}
}

func TestConcurrencyMaxInFlight(t *testing.T) {
	for _, max := range []int{1, 3, 10} {
		t.Run(fmt.Sprint("Max=", max), func(t *testing.T) {
			c := concLimiter(t, ratelimit.ConcurrencyConfig{Max: max})
			var held []func(*gateway.Response)
			for range max {
				held = append(held, concAdmit(t, c))
			}
			concCounts(t, c, max, 0)
			_, err := c.Limit(context.Background(), concRequest())
			concWant503(t, err, concFull, "1")

			held[0](nil) // one finishes: its slot is free again
			held[0] = concAdmit(t, c)
			if _, err := c.Limit(context.Background(), concRequest()); err == nil {
				t.Fatal("Limit admitted a request beyond Max")
			}
			for _, done := range held {
				done(nil)
			}
			concCounts(t, c, 0, 0)
		})
	}
}

func TestConcurrencyMaxInFlightPipeline(t *testing.T) {
	const max = 3
	c := concLimiter(t, ratelimit.ConcurrencyConfig{Name: "api", Max: max})
	entered, release := make(chan struct{}), make(chan struct{})
	upstream := gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		entered <- struct{}{}
		<-release
		return gateway.NewResponse(http.StatusOK, nil, []byte("ok")), nil
	})
	ts, served := concServe(t, gateway.NewPipeline(upstream, gateway.Limit(c)))

	type result struct {
		status int
		body   string
		err    error
	}
	results := make(chan result, max)
	get := func() result {
		resp, err := ts.Client().Get(ts.URL)
		if err != nil {
			return result{err: err}
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return result{resp.StatusCode, string(b), err}
	}
	for range max {
		go func() { results <- get() }()
	}
	for range max {
		<-entered
	}
	concCounts(t, c, max, 0)

	resp, err := ts.Client().Get(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	var problem struct {
		Status int    `json:"status"`
		Detail string `json:"detail"`
	}
	err = json.NewDecoder(resp.Body).Decode(&problem)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("decode problem: %v", err)
	}
	if resp.StatusCode != http.StatusServiceUnavailable || problem.Status != http.StatusServiceUnavailable {
		t.Errorf("status = %d (document %d), want 503", resp.StatusCode, problem.Status)
	}
	if got := resp.Header.Get("Retry-After"); got != "1" {
		t.Errorf("Retry-After = %q, want 1", got)
	}
	if got := resp.Header.Get("Content-Type"); got != gateway.ProblemContentType {
		t.Errorf("Content-Type = %q, want %q", got, gateway.ProblemContentType)
	}
	if problem.Detail != concFull {
		t.Errorf("detail = %q, want %q", problem.Detail, concFull)
	}

	close(release)
	for range max {
		if r := <-results; r.err != nil || r.status != http.StatusOK || r.body != "ok" {
			t.Errorf("held request: %d %q %v, want 200 ok", r.status, r.body, r.err)
		}
	}
	for range max + 1 {
		<-served
	}
	concCounts(t, c, 0, 0)
}

// concQueued is the outcome of a request that may have waited for a slot.
type concQueued struct {
	name string
	done func(*gateway.Response)
	err  error
}

func TestConcurrencyQueueFIFO(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := concLimiter(t, ratelimit.ConcurrencyConfig{Max: 1, Queue: 2, MaxWait: time.Minute})
		admitted := make(chan concQueued, 3)
		arrive := func(name string) {
			go func() {
				done, err := c.Limit(context.Background(), concRequest())
				admitted <- concQueued{name, done, err}
			}()
			synctest.Wait() // queued before the next one arrives
		}
		next := func(want string) func(*gateway.Response) {
			t.Helper()
			synctest.Wait()
			select {
			case q := <-admitted:
				if q.err != nil || q.name != want {
					t.Fatalf("admitted %q (err %v), want %q", q.name, q.err, want)
				}
				return q.done
			default:
				t.Fatalf("nobody admitted, want %q", want)
				return nil
			}
		}

		first := concAdmit(t, c)
		arrive("a")
		arrive("b")
		concCounts(t, c, 1, 2)

		start := time.Now()
		_, err := c.Limit(context.Background(), concRequest())
		concWant503(t, err, concFull, "1")
		if waited := time.Since(start); waited != 0 {
			t.Errorf("a request beyond the queue waited %v, want a refusal at once", waited)
		}

		first(nil)
		doneA := next("a")
		// A newcomer queues behind b rather than taking a slot out of turn.
		arrive("c")
		concCounts(t, c, 1, 2)
		doneA(nil)
		doneB := next("b")
		doneB(nil)
		doneC := next("c")
		concCounts(t, c, 1, 0)
		doneC(nil)
		concCounts(t, c, 0, 0)
	})
}

func TestConcurrencyQueueKeepsOrderWhenOneLeaves(t *testing.T) {
	for leaver := range 3 {
		names := []string{"a", "b", "c"}
		t.Run(names[leaver]+" leaves", func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := concLimiter(t, ratelimit.ConcurrencyConfig{Max: 1, Queue: 3, MaxWait: time.Minute})
				held := concAdmit(t, c)
				admitted := make(chan concQueued, len(names))
				var cancelLeaver context.CancelFunc
				for i, name := range names {
					ctx, cancel := context.WithCancel(context.Background())
					defer cancel()
					if i == leaver {
						cancelLeaver = cancel
					}
					go func() {
						done, err := c.Limit(ctx, concRequest())
						admitted <- concQueued{name, done, err}
					}()
					synctest.Wait()
				}
				concCounts(t, c, 1, 3)
				cancelLeaver()
				synctest.Wait()
				if q := <-admitted; q.name != names[leaver] || !errors.Is(q.err, context.Canceled) {
					t.Fatalf("%q returned %v, want %q to give up", q.name, q.err, names[leaver])
				}
				concCounts(t, c, 1, 2)

				done := held
				for i, want := range names {
					if i == leaver {
						continue
					}
					done(nil)
					synctest.Wait()
					q := <-admitted
					if q.err != nil || q.name != want {
						t.Fatalf("admitted %q (err %v), want %q", q.name, q.err, want)
					}
					done = q.done
				}
				done(nil)
				concCounts(t, c, 0, 0)
			})
		})
	}
}

func TestConcurrencyQueueTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const maxWait = 2 * time.Second
		c := concLimiter(t, ratelimit.ConcurrencyConfig{Max: 1, Queue: 1, MaxWait: maxWait, RetryAfter: 5 * time.Second})
		held := concAdmit(t, c)

		start := time.Now()
		_, err := c.Limit(context.Background(), concRequest())
		if waited := time.Since(start); waited != maxWait {
			t.Errorf("waited %v, want MaxWait %v", waited, maxWait)
		}
		concWant503(t, err, concTimeout, "5")
		concCounts(t, c, 1, 0)

		held(nil) // nobody waits any more: the slot is free, not handed on
		concCounts(t, c, 0, 0)
		concAdmit(t, c)(nil)
	})
}

func TestConcurrencyGiveUpWhileQueued(t *testing.T) {
	tests := []struct {
		name       string
		ctx        func() (context.Context, context.CancelFunc)
		cancelLate bool // cancel once the request is queued
		want       error
		wantWait   time.Duration
		wantStatus int // of the problem the gateway would send; 0: none, the client is gone
	}{
		{
			name:       "client goes away",
			ctx:        func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) },
			cancelLate: true,
			want:       context.Canceled,
		},
		{
			name: "deadline before MaxWait",
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), time.Second)
			},
			want:       context.DeadlineExceeded,
			wantWait:   time.Second,
			wantStatus: http.StatusGatewayTimeout,
		},
		{
			name: "gone before queueing",
			ctx: func() (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				return ctx, cancel
			},
			want: context.Canceled,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := concLimiter(t, ratelimit.ConcurrencyConfig{Max: 1, Queue: 1, MaxWait: time.Minute})
				held := concAdmit(t, c)
				ctx, cancel := tc.ctx()
				defer cancel()

				result := make(chan error, 1)
				start := time.Now()
				go func() {
					done, err := c.Limit(ctx, concRequest())
					if done != nil {
						done(nil)
					}
					result <- err
				}()
				synctest.Wait()
				if tc.cancelLate {
					concCounts(t, c, 1, 1)
					cancel()
				}
				err := <-result
				if waited := time.Since(start); waited != tc.wantWait {
					t.Errorf("returned after %v, want %v", waited, tc.wantWait)
				}
				if !errors.Is(err, tc.want) {
					t.Fatalf("error = %v, want one wrapping %v", err, tc.want)
				}
				if _, ok := errors.AsType[*gateway.Error](err); ok {
					t.Errorf("error = %v, want the context's error, not a refusal", err)
				}
				if tc.wantStatus != 0 {
					if p, _ := gateway.ProblemFor(err); p.Status != tc.wantStatus {
						t.Errorf("the gateway would answer %d, want %d", p.Status, tc.wantStatus)
					}
				}
				concCounts(t, c, 1, 0)
				held(nil)
				concCounts(t, c, 0, 0)
			})
		})
	}
}

// concBody is a reply body that counts its Close calls.
type concBody struct {
	io.Reader
	closed atomic.Int32
}

func (b *concBody) Close() error { b.closed.Add(1); return nil }

func TestConcurrencyHoldsSlotUntilBodyClosed(t *testing.T) {
	tests := []struct {
		name     string
		resp     func() *gateway.Response
		wantHeld bool
		wantBody string
		wantLen  int64
	}{
		{name: "no reply", resp: func() *gateway.Response { return nil }},
		{name: "no body", resp: func() *gateway.Response { return &gateway.Response{Status: http.StatusNoContent} }},
		{name: "http.NoBody", resp: func() *gateway.Response { return &gateway.Response{Body: http.NoBody} }},
		{
			name:     "bytes",
			resp:     func() *gateway.Response { return gateway.NewResponse(http.StatusOK, nil, []byte("hello")) },
			wantHeld: true, wantBody: "hello", wantLen: 5,
		},
		{
			name: "stream of unknown length",
			resp: func() *gateway.Response {
				return &gateway.Response{Body: &concBody{Reader: strings.NewReader("a stream")}, ContentLength: -1}
			},
			wantHeld: true, wantBody: "a stream", wantLen: -1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := concLimiter(t, ratelimit.ConcurrencyConfig{Max: 1})
			done := concAdmit(t, c)
			resp := tc.resp()
			var inner io.ReadCloser
			if resp != nil {
				inner = resp.Body
			}
			done(resp)
			if !tc.wantHeld {
				concCounts(t, c, 0, 0)
				if resp != nil && resp.Body != inner {
					t.Error("the body of a reply without content was replaced")
				}
				return
			}
			concCounts(t, c, 1, 0)
			if resp.ContentLength != tc.wantLen {
				t.Errorf("ContentLength = %d, want %d", resp.ContentLength, tc.wantLen)
			}
			b, err := io.ReadAll(resp.Body)
			if err != nil || string(b) != tc.wantBody {
				t.Errorf("body = %q, %v; want %q", b, err, tc.wantBody)
			}
			concCounts(t, c, 1, 0) // reading to the end is not sending
			for range 2 {
				if err := resp.Body.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
				concCounts(t, c, 0, 0)
			}
			if cb, ok := inner.(*concBody); ok && cb.closed.Load() == 0 {
				t.Error("the wrapped body was not closed")
			}
			// A double release would have left room for two.
			concAdmit(t, c)
			if _, err := c.Limit(context.Background(), concRequest()); err == nil {
				t.Error("Limit admitted a second request after a double Close")
			}
		})
	}
}

func TestConcurrencyUpgradedBodyStaysAConnection(t *testing.T) {
	c := concLimiter(t, ratelimit.ConcurrencyConfig{Max: 1})
	gwEnd, backendEnd := net.Pipe()
	defer backendEnd.Close()
	resp := &gateway.Response{Status: http.StatusSwitchingProtocols, Body: gwEnd}
	concAdmit(t, c)(resp)
	rwc, ok := resp.Body.(io.ReadWriteCloser)
	if !ok {
		t.Fatalf("a 101 body became %T, which the gateway cannot write to", resp.Body)
	}
	go io.WriteString(rwc, "hi")
	buf := make([]byte, 2)
	if _, err := io.ReadFull(backendEnd, buf); err != nil || string(buf) != "hi" {
		t.Fatalf("write through the wrapped connection: %q %v", buf, err)
	}
	concCounts(t, c, 1, 0)
	rwc.Close()
	concCounts(t, c, 0, 0)
}

func TestConcurrencyStreamingReplyPipeline(t *testing.T) {
	c := concLimiter(t, ratelimit.ConcurrencyConfig{Max: 1})
	pr, pw := io.Pipe()
	upstream := gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		return &gateway.Response{Status: http.StatusOK, Body: pr, ContentLength: -1}, nil
	})
	ts, served := concServe(t, gateway.NewPipeline(upstream, gateway.Limit(c)))

	type reply struct {
		resp *http.Response
		err  error
	}
	got := make(chan reply, 1)
	go func() {
		resp, err := ts.Client().Get(ts.URL)
		got <- reply{resp, err}
	}()
	if _, err := io.WriteString(pw, "first "); err != nil { // returns once the gateway has read it
		t.Fatal(err)
	}
	r := <-got
	if r.err != nil {
		t.Fatal(r.err)
	}
	defer r.resp.Body.Close()
	buf := make([]byte, len("first "))
	if _, err := io.ReadFull(r.resp.Body, buf); err != nil || string(buf) != "first " {
		t.Fatalf("first chunk: %q %v", buf, err)
	}
	// The upstream has long returned, but the reply is still being sent.
	concCounts(t, c, 1, 0)
	_, err := c.Limit(context.Background(), concRequest())
	concWant503(t, err, concFull, "1")

	io.WriteString(pw, "last")
	pw.Close()
	rest, err := io.ReadAll(r.resp.Body)
	if err != nil || string(rest) != "last" {
		t.Fatalf("rest of the stream: %q %v", rest, err)
	}
	<-served
	concCounts(t, c, 0, 0)
}

func TestConcurrencyReleasedWhenTheRestFails(t *testing.T) {
	tests := []struct {
		name       string
		upstream   gateway.HandlerFunc
		wantStatus int
	}{
		{
			name: "panic",
			upstream: func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
				panic("upstream bug")
			},
			wantStatus: http.StatusInternalServerError,
		},
		{
			name: "error",
			upstream: func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
				return nil, gateway.Errorf(http.StatusBadGateway, "upstream unreachable")
			},
			wantStatus: http.StatusBadGateway,
		},
		{
			name: "error with a reply",
			upstream: func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
				return gateway.NewResponse(http.StatusOK, nil, []byte("half")), errors.New("cut short")
			},
			wantStatus: http.StatusInternalServerError,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := concLimiter(t, ratelimit.ConcurrencyConfig{Max: 1})
			p := gateway.NewPipeline(tc.upstream, gateway.Limit(c))
			p.Options.Logger = slog.New(slog.DiscardHandler)
			ts, served := concServe(t, p)
			resp, err := ts.Client().Get(ts.URL)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.wantStatus {
				t.Errorf("status = %d, want %d", resp.StatusCode, tc.wantStatus)
			}
			<-served
			concCounts(t, c, 0, 0)
		})
	}
}

func TestConcurrencyUpgradeHoldsSlotUntilConnectionEnds(t *testing.T) {
	c := concLimiter(t, ratelimit.ConcurrencyConfig{Max: 1})
	echoed := make(chan struct{})
	upstream := gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		gwEnd, backendEnd := net.Pipe()
		go func() {
			defer close(echoed)
			defer backendEnd.Close()
			io.Copy(backendEnd, backendEnd)
		}()
		h := http.Header{"Connection": {"Upgrade"}, "Upgrade": {"echo"}}
		return &gateway.Response{Status: http.StatusSwitchingProtocols, Header: h, Body: gwEnd}, nil
	})
	ts, served := concServe(t, gateway.NewPipeline(upstream, gateway.Limit(c)))

	conn, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %v %v", resp, err)
	}
	io.WriteString(conn, "ping\n")
	if line, err := br.ReadString('\n'); err != nil || line != "ping\n" {
		t.Fatalf("echo: %q %v", line, err)
	}
	concCounts(t, c, 1, 0) // the connection is open: its slot is held

	conn.Close()
	<-served
	<-echoed
	concCounts(t, c, 0, 0)
}

// concStressBody marks the end of a request in the stress test when it is
// closed, which happens just before the limiter frees the slot.
type concStressBody struct {
	io.Reader
	end func()
}

func (b *concStressBody) Close() error { b.end(); return nil }

// concRaise sets a to n if n is larger.
func concRaise(a *atomic.Int64, n int64) {
	for m := a.Load(); n > m && !a.CompareAndSwap(m, n); m = a.Load() {
	}
}

func TestConcurrencyStress(t *testing.T) {
	const (
		max        = 4
		goroutines = 200
		requests   = 25
	)
	c := concLimiter(t, ratelimit.ConcurrencyConfig{Max: max, Queue: 8, MaxWait: 20 * time.Millisecond})
	var inside, most, seenFlight, admitted, refused, cancelled atomic.Int64
	end := func() { inside.Add(-1) }
	upstream := gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		concRaise(&most, inside.Add(1))
		concRaise(&seenFlight, int64(c.InFlight()))
		admitted.Add(1)
		if req.HTTP.URL.Path == "/empty" {
			end() // no body: the slot goes when this returns
			return nil, nil
		}
		return &gateway.Response{Body: &concStressBody{Reader: strings.NewReader("x"), end: end}, ContentLength: 1}, nil
	})
	h := gateway.Chain(upstream, gateway.Limit(c))

	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range requests {
				path := "/body"
				if (g+i)%3 == 0 {
					path = "/empty"
				}
				ctx, cancel := context.WithCancel(context.Background())
				if (g+i)%7 == 0 {
					cancel() // a client gone before it gets a slot, if it must wait
				}
				resp, err := h.Serve(ctx, gateway.NewRequest(httptest.NewRequest(http.MethodGet, path, nil)))
				cancel()
				switch {
				case errors.Is(err, context.Canceled):
					cancelled.Add(1)
				case err != nil:
					refused.Add(1)
				}
				if resp != nil && resp.Body != nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
		})
	}
	wg.Wait()
	t.Logf("admitted %d, refused %d, gave up %d", admitted.Load(), refused.Load(), cancelled.Load())
	if got := most.Load(); got > max {
		t.Errorf("%d requests were in flight at once, want at most %d", got, max)
	}
	if got := seenFlight.Load(); got > max {
		t.Errorf("InFlight() reported %d, want at most %d", got, max)
	}
	if admitted.Load() == 0 {
		t.Error("no request was admitted")
	}
	if total := admitted.Load() + refused.Load() + cancelled.Load(); total != goroutines*requests {
		t.Errorf("%d outcomes for %d requests", total, goroutines*requests)
	}
	concCounts(t, c, 0, 0)
}

func TestConcurrencyUncontendedAllocs(t *testing.T) {
	c := concLimiter(t, ratelimit.ConcurrencyConfig{Max: 1})
	ctx, req := context.Background(), concRequest()
	allocs := testing.AllocsPerRun(1000, func() {
		done, err := c.Limit(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		done(nil)
	})
	if allocs != 0 {
		t.Errorf("Limit and done on a free slot: %v allocations, want 0", allocs)
	}
}

// BenchmarkConcurrencyUncontended measures taking and freeing a free slot.
// Target: 0 allocations without a body, 1 (the body wrapper) with one.
func BenchmarkConcurrencyUncontended(b *testing.B) {
	b.Run("no body", func(b *testing.B) {
		c := concLimiter(b, ratelimit.ConcurrencyConfig{Max: 1})
		ctx, req := context.Background(), concRequest()
		b.ReportAllocs()
		for b.Loop() {
			done, err := c.Limit(ctx, req)
			if err != nil {
				b.Fatal(err)
			}
			done(nil)
		}
	})
	b.Run("body", func(b *testing.B) {
		c := concLimiter(b, ratelimit.ConcurrencyConfig{Max: 1})
		ctx, req := context.Background(), concRequest()
		resp := gateway.NewResponse(http.StatusOK, nil, []byte("ok"))
		body := resp.Body
		b.ReportAllocs()
		for b.Loop() {
			done, err := c.Limit(ctx, req)
			if err != nil {
				b.Fatal(err)
			}
			resp.Body = body
			done(resp)
			resp.Body.Close()
		}
	})
}

// BenchmarkConcurrencyParallel measures the limiter's one mutex under
// parallel requests that all find a slot.
func BenchmarkConcurrencyParallel(b *testing.B) {
	c := concLimiter(b, ratelimit.ConcurrencyConfig{Max: 1 << 20})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx, req := context.Background(), concRequest()
		for pb.Next() {
			done, err := c.Limit(ctx, req)
			if err != nil {
				b.Error(err)
				return
			}
			done(nil)
		}
	})
}

func ExampleNewConcurrency() {
	// Reports are expensive to build: serve two at a time, let ten more
	// wait up to two seconds, and refuse the rest with 503.
	c, err := ratelimit.NewConcurrency(ratelimit.ConcurrencyConfig{
		Name:    "reports",
		Max:     2,
		Queue:   10,
		MaxWait: 2 * time.Second,
	})
	if err != nil {
		log.Fatal(err)
	}
	upstream := gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		return gateway.NewResponse(http.StatusOK, nil, []byte("report 42 is ready\n")), nil
	})
	p := gateway.NewPipeline(upstream, gateway.Limit(c))

	rec := httptest.NewRecorder()
	p.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/reports/42", nil))
	fmt.Print(rec.Code, " ", rec.Body.String())
	fmt.Println("in flight once the reply is sent:", c.InFlight())
	// Output:
	// 200 report 42 is ready
	// in flight once the reply is sent: 0
}
