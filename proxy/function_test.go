package proxy_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatekit/gatekit/gateway"
	"github.com/gatekit/gatekit/proxy"
)

// fnUpstream builds a function upstream or fails the test.
func fnUpstream(t testing.TB, fn gateway.HandlerFunc, cfg proxy.FunctionConfig) *proxy.FunctionUpstream {
	t.Helper()
	u, err := proxy.Function(fn, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// fnServe serves one route with h through a gateway Router on a real
// socket and returns the reply to a GET of path.
func fnServe(t *testing.T, h gateway.Handler, path string) (*http.Response, []byte) {
	t.Helper()
	gw := newGateway(t, gateway.Options{}, gateway.Route{PathPrefix: "/", Handler: h})
	return get(t, gw, path)
}

func TestFunction(t *testing.T) {
	const secret = "db password is hunter2"
	closed := make(chan struct{})
	tests := []struct {
		name     string
		fn       gateway.HandlerFunc
		status   int
		header   string // X-Fn's value, for a reply that is not a problem
		body     string // the body, for a reply that is not a problem
		problem  bool
		wantText string        // in the problem's detail
		closed   chan struct{} // closed by the reply's body, which the upstream must close
	}{
		{
			name: "reply passes through",
			fn: func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
				h := http.Header{"X-Fn": {"yes"}, "Content-Type": {"text/plain"}}
				return gateway.NewResponse(http.StatusCreated, h, []byte("made "+req.HTTP.URL.Path)), nil
			},
			status: http.StatusCreated, header: "yes", body: "made /things",
		},
		{
			name: "nil reply is 204",
			fn: func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
				return nil, nil
			},
			status: http.StatusNoContent,
		},
		{
			name: "error is 502 without its text",
			fn: func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
				return nil, errors.New(secret)
			},
			status: http.StatusBadGateway, problem: true, wantText: "function failed",
		},
		{
			name: "error with a reply is 502 and the reply is closed",
			fn: func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
				body := fnCloser{strings.NewReader(secret), closed}
				return &gateway.Response{Status: http.StatusOK, Body: body, ContentLength: -1}, errors.New(secret)
			},
			status: http.StatusBadGateway, problem: true, wantText: "function failed", closed: closed,
		},
		{
			name: "panic is 502 without its value",
			fn: func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
				panic(secret)
			},
			status: http.StatusBadGateway, problem: true, wantText: "function failed",
		},
		{
			name: "gateway error passes through",
			fn: func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
				return nil, gateway.Errorf(http.StatusConflict, "that thing exists")
			},
			status: http.StatusConflict, problem: true, wantText: "that thing exists",
		},
		{
			name: "wrapped gateway error passes through",
			fn: func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
				return nil, errors.Join(errors.New(secret), gateway.Errorf(http.StatusNotFound, "no such thing"))
			},
			status: http.StatusNotFound, problem: true, wantText: "no such thing",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u := fnUpstream(t, tc.fn, proxy.FunctionConfig{Name: "things"})
			resp, body := fnServe(t, u, "/things")
			if tc.problem {
				doc := checkProblem(t, resp, body, tc.status)
				if d, _ := doc["detail"].(string); !strings.Contains(d, tc.wantText) {
					t.Errorf("detail = %q, want it to contain %q", d, tc.wantText)
				}
				if strings.Contains(string(body), "hunter2") {
					t.Errorf("the problem leaks the function's error: %s", body)
				}
				if tc.closed != nil {
					select {
					case <-tc.closed:
					default:
						t.Error("the reply that came with the error was not closed")
					}
				}
				return
			}
			if resp.StatusCode != tc.status {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tc.status)
			}
			if got := resp.Header.Get("X-Fn"); got != tc.header {
				t.Errorf("X-Fn = %q, want %q", got, tc.header)
			}
			if string(body) != tc.body {
				t.Errorf("body = %q, want %q", body, tc.body)
			}
		})
	}
}

// fnBlocked is a function that ignores its context until released, for
// timeout tests: it must return before the test ends, or goleak fails the
// package.
type fnBlocked struct {
	started  chan struct{}
	release  chan struct{}
	returned chan struct{}
	closed   chan struct{} // closed with the body of the reply it returns late
}

func newFnBlocked(t *testing.T) *fnBlocked {
	f := &fnBlocked{
		started:  make(chan struct{}),
		release:  make(chan struct{}),
		returned: make(chan struct{}),
		closed:   make(chan struct{}),
	}
	t.Cleanup(func() {
		select {
		case <-f.release:
		default:
			close(f.release)
		}
		select {
		case <-f.started:
			<-f.returned
		default:
		}
	})
	return f
}

func (f *fnBlocked) serve(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
	defer close(f.returned)
	close(f.started)
	<-f.release
	return &gateway.Response{Status: http.StatusOK, Body: fnCloser{strings.NewReader("late"), f.closed}, ContentLength: -1}, nil
}

type fnCloser struct {
	io.Reader
	closed chan struct{}
}

func (c fnCloser) Close() error {
	close(c.closed)
	return nil
}

func TestFunctionTimeout(t *testing.T) {
	t.Run("function that ignores its context", func(t *testing.T) {
		f := newFnBlocked(t)
		u := fnUpstream(t, f.serve, proxy.FunctionConfig{Timeout: 20 * time.Millisecond})
		resp, body := fnServe(t, u, "/")
		checkProblem(t, resp, body, http.StatusGatewayTimeout)

		// The function is still running; once it returns, its reply is
		// closed, since nobody will send it.
		close(f.release)
		select {
		case <-f.closed:
		case <-time.After(10 * time.Second):
			t.Fatal("the late reply's body was not closed")
		}
	})
	t.Run("function that honours its context", func(t *testing.T) {
		var hadDeadline atomic.Bool
		ended := make(chan error, 1)
		u := fnUpstream(t, func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
			_, ok := ctx.Deadline()
			hadDeadline.Store(ok)
			<-ctx.Done()
			ended <- ctx.Err()
			return nil, ctx.Err()
		}, proxy.FunctionConfig{Timeout: 20 * time.Millisecond})
		resp, body := fnServe(t, u, "/")
		checkProblem(t, resp, body, http.StatusGatewayTimeout)
		if !hadDeadline.Load() {
			t.Error("the function's context had no deadline")
		}
		if err := <-ended; !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("the function's context ended with %v, want context.DeadlineExceeded", err)
		}
	})
	t.Run("no limit", func(t *testing.T) {
		u := fnUpstream(t, func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
			if _, ok := ctx.Deadline(); ok {
				return nil, gateway.Errorf(http.StatusTeapot, "deadline set")
			}
			return gateway.NewResponse(http.StatusOK, nil, []byte("ok")), nil
		}, proxy.FunctionConfig{Timeout: -1})
		resp, body := fnServe(t, u, "/")
		if resp.StatusCode != http.StatusOK || string(body) != "ok" {
			t.Fatalf("got %d %s", resp.StatusCode, body)
		}
	})
	t.Run("panic without a limit", func(t *testing.T) {
		u := fnUpstream(t, func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
			panic("boom")
		}, proxy.FunctionConfig{Timeout: -1})
		resp, body := fnServe(t, u, "/")
		checkProblem(t, resp, body, http.StatusBadGateway)
	})
}

// TestFunctionClientGone: the function's context ends when the request's
// does, and Serve returns at once with the context's error.
func TestFunctionClientGone(t *testing.T) {
	for _, tc := range []struct {
		name    string
		timeout time.Duration
	}{
		{"own goroutine", 0},
		{"no limit", -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			started := make(chan struct{})
			seen := make(chan error, 1)
			u := fnUpstream(t, func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
				close(started)
				<-ctx.Done()
				seen <- ctx.Err()
				return nil, ctx.Err()
			}, proxy.FunctionConfig{Timeout: tc.timeout})
			ctx, cancel := context.WithCancel(context.Background())
			go func() {
				<-started
				cancel()
			}()
			req := gateway.NewRequest(httptest.NewRequest("GET", "/", nil))
			resp, err := u.Serve(ctx, req)
			if resp != nil || !errors.Is(err, context.Canceled) {
				t.Errorf("Serve = %v, %v; want nil, context.Canceled", resp, err)
			}
			if err := <-seen; !errors.Is(err, context.Canceled) {
				t.Errorf("the function's context ended with %v, want context.Canceled", err)
			}
		})
	}
}

// TestFunctionStreamedReply: a function may return a reply whose body
// streams from work bound to its context, such as an HTTPUpstream's: the
// context lasts until the body is closed, and Timeout, which bounds the
// call until it returns, does not cut the body.
func TestFunctionStreamedReply(t *testing.T) {
	const head, tail = "first part;", "second part, sent once released"
	for _, tc := range []struct {
		name    string
		timeout time.Duration
		// pastDeadline holds the rest of the body back until the
		// function's deadline has passed.
		pastDeadline bool
	}{
		{"default timeout", 0, false},
		{"body outlasts the timeout", 50 * time.Millisecond, true},
		{"no limit", -1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			release := make(chan struct{})
			backendDone := make(chan error, 1)
			backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/plain")
				io.WriteString(w, head)
				w.(http.Flusher).Flush()
				select {
				case <-release:
				case <-r.Context().Done():
				}
				io.WriteString(w, tail)
				backendDone <- r.Context().Err()
			}))
			t.Cleanup(backend.Close)
			up, err := proxy.HTTP(proxy.HTTPConfig{Targets: []string{backend.URL}})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { up.Close() })

			var fnCtx context.Context
			u := fnUpstream(t, func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
				fnCtx = ctx
				return up.Serve(ctx, req)
			}, proxy.FunctionConfig{Timeout: tc.timeout})
			req := gateway.NewRequest(httptest.NewRequest("GET", "/", nil))
			resp, err := u.Serve(context.Background(), req)
			if err != nil {
				close(release)
				t.Fatal(err)
			}
			defer resp.Close()
			buf := make([]byte, len(head))
			if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != head {
				close(release)
				t.Fatalf("first part: %q, %v", buf, err)
			}
			if tc.pastDeadline {
				d, ok := fnCtx.Deadline()
				if !ok {
					t.Error("the function's context had no deadline")
				}
				<-time.After(time.Until(d) + 20*time.Millisecond)
			}
			if err := fnCtx.Err(); err != nil {
				t.Errorf("the function's context ended before its reply was closed: %v", err)
			}
			close(release)
			rest, err := io.ReadAll(resp.Body)
			if err != nil || string(rest) != tail {
				t.Errorf("rest of the body: %q, %v; want %q", rest, err, tail)
			}
			if err := <-backendDone; err != nil {
				t.Errorf("the backend's request was cancelled: %v", err)
			}
			resp.Close()
			if tc.timeout >= 0 && fnCtx.Err() == nil {
				t.Error("the function's context outlived its reply")
			}
		})
	}
}

// TestFunctionContextEnds: the function's context ends when its reply is
// done with: at once when the reply has no body or a body in memory, or the
// call failed; else when the body is closed.
func TestFunctionContextEnds(t *testing.T) {
	for _, tc := range []struct {
		name     string
		reply    func() (*gateway.Response, error)
		atReturn bool // the context ends when Serve returns
	}{
		{"no reply", func() (*gateway.Response, error) { return nil, nil }, true},
		{"reply without a body", func() (*gateway.Response, error) { return &gateway.Response{Status: http.StatusNoContent}, nil }, true},
		{"body in memory", func() (*gateway.Response, error) { return gateway.NewResponse(http.StatusOK, nil, []byte("hi")), nil }, true},
		{"error", func() (*gateway.Response, error) { return nil, errors.New("no") }, true},
		{"streamed body", func() (*gateway.Response, error) {
			return &gateway.Response{Status: http.StatusOK, Body: io.NopCloser(strings.NewReader("hi")), ContentLength: -1}, nil
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var fnCtx context.Context
			u := fnUpstream(t, func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
				fnCtx = ctx
				return tc.reply()
			}, proxy.FunctionConfig{})
			resp, err := u.Serve(context.Background(), gateway.NewRequest(httptest.NewRequest("GET", "/", nil)))
			if ended := fnCtx.Err() != nil; ended != tc.atReturn {
				t.Errorf("context ended when Serve returned: %v, want %v", ended, tc.atReturn)
			}
			if err != nil {
				return
			}
			if resp != nil && resp.Body != nil {
				if b, err := io.ReadAll(resp.Body); err != nil || string(b) != "hi" {
					t.Errorf("body %q, %v", b, err)
				}
			}
			resp.Close()
			if fnCtx.Err() == nil {
				t.Error("the context outlived the reply")
			}
		})
	}
}

func TestFunctionConfigErrors(t *testing.T) {
	if _, err := proxy.Function(nil, proxy.FunctionConfig{Name: "f"}); err == nil {
		t.Error("Function(nil) succeeded")
	}
}

// TestFunctionCallAllocs guards the overhead of a call; see
// BenchmarkFunctionCall.
func TestFunctionCallAllocs(t *testing.T) {
	u := fnUpstream(t, fnBenchFunc, proxy.FunctionConfig{})
	req := gateway.NewRequest(httptest.NewRequest("GET", "/", nil))
	ctx := context.Background()
	allocs := testing.AllocsPerRun(200, func() {
		if _, err := u.Serve(ctx, req); err != nil {
			t.Fatal(err)
		}
	})
	// The context and its cancel function, the timer and its callback, the
	// call's state and its channel, the closures of the call and of its
	// goroutine, and one inside the runtime.
	if allocs > 9 {
		t.Errorf("a call allocates %.0f times, want at most 9", allocs)
	}
}

var fnBenchReply = &gateway.Response{Status: http.StatusOK}

func fnBenchFunc(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
	return fnBenchReply, nil
}

// BenchmarkFunctionCall measures what a FunctionUpstream adds to calling
// the function: the timeout, the goroutine the function runs on, panic
// recovery. Target: under 5µs and at most 9 allocations per call with a
// timeout (the goroutine and its wake-up are most of it); without one, a
// function call and a deferred recover.
func BenchmarkFunctionCall(b *testing.B) {
	req := gateway.NewRequest(httptest.NewRequest("GET", "/", nil))
	ctx := context.Background()
	for _, bc := range []struct {
		name    string
		timeout time.Duration
	}{
		{"timeout", 0},
		{"no-limit", -1},
	} {
		b.Run(bc.name, func(b *testing.B) {
			u := fnUpstream(b, fnBenchFunc, proxy.FunctionConfig{Timeout: bc.timeout})
			b.ReportAllocs()
			for b.Loop() {
				if _, err := u.Serve(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
