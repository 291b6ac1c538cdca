package transform_test

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatekit/gatekit/gateway"
	. "github.com/gatekit/gatekit/transform"
)

// guardedBody is a request body that fails the test when it is read before
// the upstream allows it: a stage that buffered it would read it first.
type guardedBody struct {
	t       *testing.T
	allowed *atomic.Bool
	r       io.Reader
}

func (g *guardedBody) Read(p []byte) (int, error) {
	if !g.allowed.Load() {
		g.t.Error("a stage read the request body; it should have streamed to the upstream")
	}
	return g.r.Read(p)
}

// headerOnly are operations that must not touch the body.
func headerOnlyRequest(t *testing.T) *RequestTransform {
	return mustRequest(t,
		AssignRequestID(RequestIDConfig{}),
		SetHeader("X-User", Subject()),
		SetHeader("X-Id", Param("id")),
		AddHeader("Via", String("gatekit")),
		DeleteHeader("Cookie"),
		RewritePath("/up/{id}", "/v2/{id}"),
		ReplacePathPrefix("/v2", "/v3"),
		SetQuery("a", Query("b")),
		RenameQuery("c", "d"),
		DeleteQuery("e"),
	)
}

func headerOnlyResponse(t *testing.T) *ResponseTransform {
	return mustResponse(t, Config{Ops: []Op{
		SetHeader("X-Request-Id", RequestID()),
		SetHeader("X-Up", ReplyHeader("Server")),
		DeleteHeader("Server"),
		MapStatus(http.StatusNotFound, http.StatusNoContent),
	}})
}

func TestRequestBodyStreams(t *testing.T) {
	var allowed atomic.Bool
	payload := strings.Repeat("x", 64<<10)
	up := gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		allowed.Store(true)
		if req.HTTP.URL.Path != "/v3/7" {
			t.Errorf("path %q, want /v3/7", req.HTTP.URL.Path)
		}
		b, err := io.ReadAll(req.HTTP.Body)
		if err != nil {
			return nil, err
		}
		if string(b) != payload {
			t.Errorf("upstream got %d bytes, want the %d sent", len(b), len(payload))
		}
		return gateway.NewResponse(200, nil, nil), nil
	})
	h := routed(t, "/up/{id}", pipe(up, headerOnlyRequest(t).Stage(), headerOnlyResponse(t).Stage()))
	r := httptest.NewRequest("POST", "/up/7?b=1&c=2&e=3", &guardedBody{t: t, allowed: &allowed, r: strings.NewReader(payload)})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	if rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
}

// TestReplyStreams checks, over a real connection, that the client gets the
// first chunk of a reply before the upstream has sent the second: a reply
// transform with header operations only does not buffer.
func TestReplyStreams(t *testing.T) {
	release := make(chan struct{})
	writerDone := make(chan struct{})
	up := gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		pr, pw := io.Pipe()
		go func() {
			defer close(writerDone)
			pw.Write([]byte("data: first\n\n"))
			select {
			case <-release:
			case <-ctx.Done():
			}
			pw.Write([]byte("data: second\n\n"))
			pw.Close()
		}()
		return &gateway.Response{Status: 200, Header: http.Header{"Content-Type": {"text/event-stream"}, "Server": {"up"}}, Body: pr, ContentLength: -1}, nil
	})
	srv := httptest.NewServer(pipe(up, headerOnlyRequest(t).Stage(), headerOnlyResponse(t).Stage()))
	t.Cleanup(srv.Close)

	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("X-Up") != "up" || resp.Header.Get("Server") != "" || resp.Header.Get("X-Request-Id") == "" {
		t.Errorf("headers not transformed: %v", resp.Header)
	}
	lines := make(chan string)
	go func() {
		defer close(lines)
		br := bufio.NewReader(resp.Body)
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				return
			}
			lines <- l
		}
	}()
	select {
	case l := <-lines:
		if l != "data: first\n" {
			t.Fatalf("first line %q", l)
		}
	case <-time.After(10 * time.Second):
		close(release)
		t.Fatal("the first chunk did not arrive before the upstream finished: the reply was buffered")
	}
	close(release)
	var rest strings.Builder
	for l := range lines {
		rest.WriteString(l)
	}
	if rest.String() != "\ndata: second\n\n" {
		t.Errorf("rest %q", rest.String())
	}
	<-writerDone
}

// trackedBody records whether a reply body was read and closed.
type trackedBody struct {
	r            io.Reader
	read, closed bool
}

func (b *trackedBody) Read(p []byte) (int, error) { b.read = true; return b.r.Read(p) }
func (b *trackedBody) Close() error               { b.closed = true; return nil }

func TestMapStatus(t *testing.T) {
	tests := []struct {
		name     string
		ops      []Op
		status   int
		body     string
		wantCode int
		wantBody string
		wantRead bool
	}{
		{"404 to 204 drops the body unread", []Op{MapStatus(404, 204)}, 404, `{"error":"not found"}`, 204, "", false},
		{"other status untouched", []Op{MapStatus(404, 204)}, 200, `{"a":1}`, 200, `{"a":1}`, true},
		{"500 to 503 keeps the body", []Op{MapStatus(500, 503)}, 500, `busy`, 503, "busy", true},
		{"200 means status 0 too", []Op{MapStatus(200, 202)}, 0, `x`, 202, "x", true},
		{"error field to 502", []Op{StatusWhen("error", 502)}, 200, `{"error":{"code":7}}`, 502, `{"error":{"code":7}}`, true},
		{"null error field is no error", []Op{StatusWhen("error", 502)}, 200, `{"error":null,"data":1}`, 200, `{"error":null,"data":1}`, true},
		{"no error field", []Op{StatusWhen("error", 502)}, 200, `{"data":1}`, 200, `{"data":1}`, true},
		{"nested error path", []Op{StatusWhen("result.errors.0", 422)}, 200, `{"result":{"errors":["bad"]}}`, 422, `{"result":{"errors":["bad"]}}`, true},
		{"error statuses are not examined", []Op{StatusWhen("error", 502)}, 404, `{"error":1}`, 404, `{"error":1}`, true},
		{"mapped then reshaped", []Op{StatusWhen("error", 502), Keep("error.message")}, 200, `{"error":{"message":"m","trace":"secret"}}`, 502, `{"error":{"message":"m"}}`, true},
		{"to 204 then body ops skip", []Op{MapStatus(200, 204), Set("a", JSON("1"))}, 200, `{}`, 204, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := &trackedBody{r: strings.NewReader(tc.body)}
			up := gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
				return &gateway.Response{Status: tc.status, Header: http.Header{"Content-Type": {"application/json"}}, Body: body, ContentLength: int64(len(tc.body))}, nil
			})
			cfg := Config{Ops: tc.ops, AllStatuses: strings.HasPrefix(tc.name, "mapped")}
			rec := do(pipe(up, mustResponse(t, cfg).Stage()), "GET", "/", "", nil)
			if rec.Code != tc.wantCode {
				t.Fatalf("status %d, want %d", rec.Code, tc.wantCode)
			}
			if rec.Body.String() != tc.wantBody {
				t.Errorf("body %q, want %q", rec.Body, tc.wantBody)
			}
			if tc.wantCode == 204 {
				if ct := rec.Header().Get("Content-Type"); ct != "" {
					t.Errorf("204 with Content-Type %q", ct)
				}
				if !body.closed {
					t.Error("the dropped body was not closed")
				}
			}
			if body.read != tc.wantRead {
				t.Errorf("body read = %v, want %v", body.read, tc.wantRead)
			}
		})
	}
}
