package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gatekit/gatekit/gateway"
)

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// okUpstream answers 200 with the given body.
func okUpstream(body string) gateway.Handler {
	return gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		return gateway.NewResponse(http.StatusOK, http.Header{"Content-Type": {"text/plain"}}, []byte(body)), nil
	})
}

// tagStage records its name in the request header on the way in and in the
// reply header on the way out.
func tagStage(name string) gateway.Stage {
	return func(next gateway.Handler) gateway.Handler {
		return gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
			req.HTTP.Header.Add("X-In", name)
			resp, err := next.Serve(ctx, req)
			if resp != nil {
				resp.Header.Add("X-Out", name)
			}
			return resp, err
		})
	}
}

type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
}

func decodeProblem(t *testing.T, rec *httptest.ResponseRecorder) problem {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); ct != gateway.ProblemContentType {
		t.Fatalf("Content-Type = %q, want %q (body %q)", ct, gateway.ProblemContentType, rec.Body.String())
	}
	var p problem
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		t.Fatalf("problem body %q: %v", rec.Body.String(), err)
	}
	if p.Status != rec.Code {
		t.Fatalf("problem status %d, reply status %d", p.Status, rec.Code)
	}
	return p
}

func TestPipelineStageOrder(t *testing.T) {
	var seen []string
	up := gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		seen = req.HTTP.Header.Values("X-In")
		return gateway.NewResponse(200, nil, nil), nil
	})
	p := gateway.NewPipeline(up, tagStage("a"), tagStage("b"), tagStage("c"))
	rec := httptest.NewRecorder()
	p.ServeHTTP(rec, httptest.NewRequest("GET", "/x", nil))
	if got := strings.Join(seen, ","); got != "a,b,c" {
		t.Errorf("request order = %s, want a,b,c", got)
	}
	if got := strings.Join(rec.Header().Values("X-Out"), ","); got != "c,b,a" {
		t.Errorf("reply order = %s, want c,b,a", got)
	}
}

func TestPipelineErrors(t *testing.T) {
	internal := errors.New("database password is hunter2")
	tests := []struct {
		name       string
		err        error
		wantStatus int
		wantHeader map[string]string
		wantDetail string
	}{
		{"unauthorized with challenge", (&gateway.Error{Status: 401, Detail: "token expired"}).WithHeader("WWW-Authenticate", `Bearer error="invalid_token"`), 401, map[string]string{"WWW-Authenticate": `Bearer error="invalid_token"`}, "token expired"},
		{"forbidden", &gateway.Error{Status: 403, Detail: "missing scope"}, 403, nil, "missing scope"},
		{"too many requests", (&gateway.Error{Status: 429}).WithHeader("Retry-After", "3"), 429, map[string]string{"Retry-After": "3"}, ""},
		{"wrapped problem", errorsJoin(&gateway.Error{Status: 422, Detail: "bad field"}), 422, nil, "bad field"},
		{"unsupported media type", gateway.Errorf(415, "send %s", "application/json"), 415, nil, "send application/json"},
		{"deadline", context.DeadlineExceeded, 504, nil, ""},
		{"body too large", &http.MaxBytesError{Limit: 10}, 413, nil, ""},
		{"internal error is generic", internal, 500, nil, "the gateway failed to handle the request"},
		{"status zero means 500", &gateway.Error{Detail: "x"}, 500, nil, "x"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			up := gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
				return nil, tc.err
			})
			p := gateway.NewPipeline(up)
			p.Options.Logger = quietLogger()
			rec := httptest.NewRecorder()
			p.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
			if rec.Code != tc.wantStatus {
				t.Fatalf("status = %d, want %d", rec.Code, tc.wantStatus)
			}
			pr := decodeProblem(t, rec)
			if pr.Type != "about:blank" || pr.Title != http.StatusText(tc.wantStatus) {
				t.Errorf("type/title = %q/%q", pr.Type, pr.Title)
			}
			if tc.wantDetail != "" && pr.Detail != tc.wantDetail {
				t.Errorf("detail = %q, want %q", pr.Detail, tc.wantDetail)
			}
			if strings.Contains(rec.Body.String(), "hunter2") {
				t.Errorf("internal error leaked: %s", rec.Body.String())
			}
			for k, v := range tc.wantHeader {
				if got := rec.Header().Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
		})
	}
}

func errorsJoin(err error) error { return errors.Join(errors.New("context"), err) }

func TestProblemExtensions(t *testing.T) {
	e := &gateway.Error{Status: 422, Detail: "invalid", Extensions: map[string]any{
		"errors": []map[string]string{{"pointer": "/a", "message": "required"}},
		"status": 999, // must not override the standard member
	}}
	rec := httptest.NewRecorder()
	e.Write(rec)
	var doc map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc["status"] != float64(422) {
		t.Errorf("status member = %v", doc["status"])
	}
	if _, ok := doc["errors"].([]any); !ok {
		t.Errorf("errors extension missing: %v", doc)
	}
}

func TestPanicBecomes500AndServerKeepsServing(t *testing.T) {
	var calls atomic.Int32
	up := gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		if calls.Add(1) == 1 {
			panic("stage bug")
		}
		return gateway.NewResponse(200, nil, []byte("fine")), nil
	})
	var logs bytes.Buffer
	p := gateway.NewPipeline(up)
	p.Options.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	srv := httptest.NewServer(p)
	defer srv.Close()

	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 500 || resp.Header.Get("Content-Type") != gateway.ProblemContentType {
		t.Fatalf("panic reply = %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if strings.Contains(string(body), "stage bug") {
		t.Errorf("panic value leaked to client: %s", body)
	}
	if !strings.Contains(logs.String(), "stage bug") {
		t.Errorf("panic not logged: %q", logs.String())
	}
	resp, err = http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "fine" {
		t.Fatalf("after panic: %d %q", resp.StatusCode, body)
	}
}

func TestMiddlewareWrapsPipeline(t *testing.T) {
	p := gateway.NewPipeline(okUpstream("hi"))
	mw := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Middleware", "yes")
			next.ServeHTTP(w, r)
		})
	}
	rec := httptest.NewRecorder()
	mw(p).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Header().Get("X-Middleware") != "yes" || rec.Body.String() != "hi" {
		t.Fatalf("got %v %q", rec.Header(), rec.Body.String())
	}
}

// bufferingStage reads the request body, as a validator would.
func bufferingStage(next gateway.Handler) gateway.Handler {
	return gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		if _, err := req.Body(); err != nil {
			return nil, err
		}
		return next.Serve(ctx, req)
	})
}

// echoUpstream answers with the request body it received.
var echoUpstream = gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
	b, err := io.ReadAll(req.HTTP.Body)
	if err != nil {
		return nil, err
	}
	return gateway.NewResponse(200, nil, b), nil
})

func TestBodyLimit(t *testing.T) {
	const limit = 16
	small, big := "0123456789", strings.Repeat("x", limit+1)
	tests := []struct {
		name    string
		stages  []gateway.Stage
		body    string
		chunked bool
		want    int
	}{
		{"streamed within limit", nil, small, false, 200},
		{"streamed over limit by Content-Length", nil, big, false, 413},
		{"streamed over limit chunked", nil, big, true, 413},
		{"buffered within limit", []gateway.Stage{bufferingStage}, small, true, 200},
		{"buffered over limit by Content-Length", []gateway.Stage{bufferingStage}, big, false, 413},
		{"buffered over limit chunked", []gateway.Stage{bufferingStage}, big, true, 413},
		{"exactly the limit", []gateway.Stage{bufferingStage}, big[:limit], true, 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := gateway.NewPipeline(echoUpstream, tc.stages...)
			p.Options.MaxBodyBytes = limit
			p.Options.Logger = quietLogger()
			var body io.Reader = strings.NewReader(tc.body)
			if tc.chunked {
				body = io.MultiReader(body) // hides the length
			}
			r := httptest.NewRequest("POST", "/", body)
			if tc.chunked {
				r.ContentLength = -1
			}
			rec := httptest.NewRecorder()
			p.ServeHTTP(rec, r)
			if rec.Code != tc.want {
				t.Fatalf("status = %d, want %d (%s)", rec.Code, tc.want, rec.Body.String())
			}
			if tc.want == 200 && rec.Body.String() != tc.body {
				t.Errorf("upstream got %q, want %q", rec.Body.String(), tc.body)
			}
			if tc.want == 413 {
				decodeProblem(t, rec)
			}
		})
	}
}

// countingReader yields n bytes without holding them in memory.
type countingReader struct{ left int64 }

func (r *countingReader) Read(p []byte) (int, error) {
	if r.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	for i := range p {
		p[i] = 'a'
	}
	r.left -= int64(len(p))
	return len(p), nil
}

// TestLargeUploadStreams sends 100 MiB through a route with no body stage
// and checks the gateway allocated far less than the body: it streamed.
func TestLargeUploadStreams(t *testing.T) {
	const size = 100 << 20
	var got atomic.Int64
	up := gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		n, err := io.Copy(io.Discard, req.HTTP.Body)
		got.Store(n)
		if err != nil {
			return nil, err
		}
		return gateway.NewResponse(200, nil, nil), nil
	})
	p := gateway.NewPipeline(up, tagStage("a"))
	p.Options.MaxBodyBytes = -1
	srv := httptest.NewServer(p)
	defer srv.Close()

	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	resp, err := http.Post(srv.URL, "application/octet-stream", &countingReader{left: size})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	runtime.ReadMemStats(&after)
	if resp.StatusCode != 200 || got.Load() != size {
		t.Fatalf("status %d, upstream read %d bytes", resp.StatusCode, got.Load())
	}
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("100 MiB upload: %d KiB allocated in the whole process", allocated>>10)
	if allocated > 16<<20 {
		t.Errorf("allocated %d MiB for a 100 MiB streamed upload; the body was buffered", allocated>>20)
	}
}

func TestBodyBufferedOnDemandReachesUpstream(t *testing.T) {
	var stageSaw string
	peek := func(next gateway.Handler) gateway.Handler {
		return gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
			b, err := req.Body()
			if err != nil {
				return nil, err
			}
			b2, _ := req.Body() // a second call returns the same bytes
			if !bytes.Equal(b, b2) {
				t.Error("second Body call differs")
			}
			stageSaw = string(b)
			return next.Serve(ctx, req)
		})
	}
	rewrite := gateway.TransformRequest(requestTransformerFunc(func(ctx context.Context, req *gateway.Request) error {
		b, _ := req.Body()
		req.SetBody(append([]byte("pre-"), b...))
		return nil
	}))
	p := gateway.NewPipeline(echoUpstream, peek, rewrite)
	rec := httptest.NewRecorder()
	p.ServeHTTP(rec, httptest.NewRequest("POST", "/", strings.NewReader("payload")))
	if stageSaw != "payload" || rec.Body.String() != "pre-payload" {
		t.Fatalf("stage saw %q, upstream got %q", stageSaw, rec.Body.String())
	}
	if rec.Header().Get("Content-Length") != "11" {
		t.Errorf("Content-Length = %q", rec.Header().Get("Content-Length"))
	}
}

type requestTransformerFunc func(ctx context.Context, req *gateway.Request) error

func (f requestTransformerFunc) TransformRequest(ctx context.Context, req *gateway.Request) error {
	return f(ctx, req)
}

type upperReplies struct{}

func (upperReplies) TransformResponse(ctx context.Context, req *gateway.Request, resp *gateway.Response) error {
	b, err := resp.Bytes()
	if err != nil {
		return err
	}
	resp.SetBytes(bytes.ToUpper(b))
	resp.Header.Set("X-Transformed", "1")
	return nil
}

func TestResponseTransformStreamToBytes(t *testing.T) {
	up := gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		return &gateway.Response{Status: 201, Header: http.Header{"Content-Length": {"5"}}, Body: io.NopCloser(strings.NewReader("hello")), ContentLength: 5}, nil
	})
	p := gateway.NewPipeline(up, gateway.TransformResponse(upperReplies{}))
	rec := httptest.NewRecorder()
	p.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != 201 || rec.Body.String() != "HELLO" || rec.Header().Get("X-Transformed") != "1" || rec.Header().Get("Content-Length") != "5" {
		t.Fatalf("got %d %q %v", rec.Code, rec.Body.String(), rec.Header())
	}
}

func TestResponseBytesLimit(t *testing.T) {
	up := gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		return &gateway.Response{Status: 200, Header: http.Header{}, Body: io.NopCloser(strings.NewReader("0123456789")), ContentLength: -1, MaxBytes: 4}, nil
	})
	p := gateway.NewPipeline(up, gateway.TransformResponse(upperReplies{}))
	rec := httptest.NewRecorder()
	p.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != 502 {
		t.Fatalf("status = %d, want 502", rec.Code)
	}
	decodeProblem(t, rec)
}

func TestAuthenticateChain(t *testing.T) {
	notMine := gateway.AuthenticatorFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Principal, error) {
		return nil, gateway.ErrNotResponsible
	})
	byHeader := gateway.AuthenticatorFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Principal, error) {
		switch req.HTTP.Header.Get("X-User") {
		case "":
			return nil, gateway.ErrNotResponsible
		case "mallory":
			return nil, &gateway.Error{Status: 401, Detail: "unknown user"}
		default:
			return &gateway.Principal{Subject: req.HTTP.Header.Get("X-User"), Scopes: []string{"read"}}, nil
		}
	})
	needRead := gateway.AuthorizerFunc(func(ctx context.Context, req *gateway.Request) error {
		if !req.Principal.HasScope("read") {
			return &gateway.Error{Status: 403}
		}
		return nil
	})
	who := gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		return gateway.NewResponse(200, nil, []byte(req.Principal.Subject)), nil
	})
	p := gateway.NewPipeline(who, gateway.Authenticate(notMine, challenger{byHeader, `Custom realm="test"`}), gateway.Authorize(needRead))
	tests := []struct {
		user string
		want int
		body string
	}{
		{"", 401, `Custom realm="test"`},
		{"mallory", 401, ""},
		{"alice", 200, "alice"},
	}
	for _, tc := range tests {
		t.Run("user="+tc.user, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			if tc.user != "" {
				r.Header.Set("X-User", tc.user)
			}
			rec := httptest.NewRecorder()
			p.ServeHTTP(rec, r)
			if tc.want == 401 && rec.Header().Get("WWW-Authenticate") != tc.body {
				t.Errorf("WWW-Authenticate = %q, want %q", rec.Header().Get("WWW-Authenticate"), tc.body)
			}
			if rec.Code != tc.want || (tc.want == 200 && rec.Body.String() != tc.body) {
				t.Fatalf("got %d %q, want %d %q", rec.Code, rec.Body.String(), tc.want, tc.body)
			}
		})
	}
}

func TestLimiterDone(t *testing.T) {
	var inFlight, maxSeen atomic.Int32
	var lastStatus atomic.Int32
	lim := gateway.LimiterFunc(func(ctx context.Context, req *gateway.Request) (func(*gateway.Response), error) {
		if req.HTTP.Header.Get("X-Deny") != "" {
			return nil, (&gateway.Error{Status: 429}).WithHeader("Retry-After", "1")
		}
		n := inFlight.Add(1)
		if n > maxSeen.Load() {
			maxSeen.Store(n)
		}
		return func(resp *gateway.Response) {
			inFlight.Add(-1)
			if resp != nil {
				resp.Header.Set("RateLimit", `"default";r=9;t=1`)
				lastStatus.Store(int32(resp.Status))
			} else {
				lastStatus.Store(-1)
			}
		}, nil
	})
	up := gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		if req.HTTP.Header.Get("X-Panic") != "" {
			panic("boom")
		}
		return gateway.NewResponse(200, nil, nil), nil
	})
	p := gateway.NewPipeline(up, gateway.Limit(lim))
	p.Options.Logger = quietLogger()
	tests := []struct {
		name       string
		header     string
		want       int
		wantRL     bool
		wantStatus int32
	}{
		{"admitted", "", 200, true, 200},
		{"denied", "X-Deny", 429, false, 200},
		{"panic still releases", "X-Panic", 500, false, -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			if tc.header != "" {
				r.Header.Set(tc.header, "1")
			}
			rec := httptest.NewRecorder()
			p.ServeHTTP(rec, r)
			if rec.Code != tc.want {
				t.Fatalf("status = %d, want %d", rec.Code, tc.want)
			}
			if got := rec.Header().Get("RateLimit") != ""; got != tc.wantRL {
				t.Errorf("RateLimit header present = %v", got)
			}
			if inFlight.Load() != 0 {
				t.Errorf("slot leaked: %d in flight", inFlight.Load())
			}
			if lastStatus.Load() != tc.wantStatus {
				t.Errorf("done saw status %d, want %d", lastStatus.Load(), tc.wantStatus)
			}
		})
	}
}

func TestValidateStage(t *testing.T) {
	v := gateway.ValidatorFunc(func(ctx context.Context, req *gateway.Request) error {
		if req.HTTP.URL.Query().Get("n") == "" {
			return &gateway.Error{Status: 400, Detail: "query parameter n is required"}
		}
		return nil
	})
	p := gateway.NewPipeline(okUpstream("ok"), gateway.Validate(v))
	for _, tc := range []struct {
		target string
		want   int
	}{{"/?n=1", 200}, {"/", 400}} {
		rec := httptest.NewRecorder()
		p.ServeHTTP(rec, httptest.NewRequest("GET", tc.target, nil))
		if rec.Code != tc.want {
			t.Errorf("%s: status %d, want %d", tc.target, rec.Code, tc.want)
		}
	}
}

func TestNilResponseIs204AndConnectRefused(t *testing.T) {
	p := gateway.NewPipeline(gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		return nil, nil
	}))
	rec := httptest.NewRecorder()
	p.ServeHTTP(rec, httptest.NewRequest("DELETE", "/", nil))
	if rec.Code != 204 {
		t.Errorf("nil reply: status %d", rec.Code)
	}
	for _, m := range []string{"CONNECT", "TRACE"} {
		rec = httptest.NewRecorder()
		r := httptest.NewRequest("GET", "/", nil)
		r.Method = m
		p.ServeHTTP(rec, r)
		if rec.Code != 405 || rec.Header().Get("Allow") == "" {
			t.Errorf("%s: status %d, Allow %q; want 405 with Allow", m, rec.Code, rec.Header().Get("Allow"))
		}
	}
}

func TestClientIPTrustedProxies(t *testing.T) {
	tests := []struct {
		name        string
		trusted     []string
		remote      string
		xff         []string
		wantIP      string
		wantTrusted bool
	}{
		{"no trust, xff ignored", nil, "203.0.113.9:1234", []string{"1.2.3.4"}, "203.0.113.9", false},
		{"trusted peer, one hop", []string{"10.0.0.0/8"}, "10.0.0.1:1", []string{"198.51.100.7"}, "198.51.100.7", true},
		{"spoofed left part ignored", []string{"10.0.0.0/8"}, "10.0.0.1:1", []string{"6.6.6.6, 198.51.100.7"}, "198.51.100.7", true},
		{"chain of trusted proxies", []string{"10.0.0.0/8"}, "10.0.0.1:1", []string{"198.51.100.7, 10.1.1.1", "10.2.2.2"}, "198.51.100.7", true},
		{"untrusted peer", []string{"10.0.0.0/8"}, "192.0.2.1:1", []string{"198.51.100.7"}, "192.0.2.1", false},
		{"garbage stops the walk", []string{"10.0.0.0/8"}, "10.0.0.1:1", []string{"198.51.100.7, nonsense"}, "10.0.0.1", true},
		{"ipv6 peer", []string{"::1/128"}, "[::1]:80", []string{"2001:db8::1"}, "2001:db8::1", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var gotIP string
			var gotTrusted bool
			up := gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
				gotIP, gotTrusted = req.ClientIP().String(), req.FromTrustedProxy()
				return nil, nil
			})
			p := gateway.NewPipeline(up)
			for _, s := range tc.trusted {
				p.Options.TrustedProxies = append(p.Options.TrustedProxies, mustPrefix(t, s))
			}
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tc.remote
			r.Header["X-Forwarded-For"] = tc.xff
			p.ServeHTTP(httptest.NewRecorder(), r)
			if gotIP != tc.wantIP || gotTrusted != tc.wantTrusted {
				t.Fatalf("ClientIP = %s trusted=%v, want %s trusted=%v", gotIP, gotTrusted, tc.wantIP, tc.wantTrusted)
			}
		})
	}
}

func TestRequestURIFollowsNormalisedPath(t *testing.T) {
	tests := []struct{ target, want string }{
		{"/a/../b?x=1", "/b?x=1"},
		{"/%61dmin//x", "/admin/x"},
		{"/plain?q=%2F", "/plain?q=%2F"},
	}
	for _, tc := range tests {
		t.Run(tc.target, func(t *testing.T) {
			var got string
			p := gateway.NewPipeline(gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
				got = req.HTTP.RequestURI
				return nil, nil
			}))
			p.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", tc.target, nil))
			if got != tc.want {
				t.Fatalf("RequestURI = %q, want %q", got, tc.want)
			}
		})
	}
}

type challenger struct {
	gateway.Authenticator
	challenge string
}

func (c challenger) Challenge() string { return c.challenge }

func TestHeaderSanitisedBeforeStages(t *testing.T) {
	setTenant := func(next gateway.Handler) gateway.Handler {
		return gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
			req.HTTP.Header.Set("X-Tenant", "acme")
			return next.Serve(ctx, req)
		})
	}
	tests := []struct {
		name       string
		allowUnder bool
		sent       http.Header
		want       http.Header // nil value: absent
	}{
		{"client cannot strip a stage's header via Connection", false,
			http.Header{"Connection": {"X-Tenant, keep-alive"}, "X-Secret": {"s"}},
			http.Header{"X-Tenant": {"acme"}, "Connection": {"keep-alive"}}},
		{"fields named in Connection are dropped", false,
			http.Header{"Connection": {"X-Secret"}, "X-Secret": {"s"}},
			http.Header{"X-Secret": nil, "Connection": nil}},
		{"standard options untouched", false,
			http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}},
			http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}}},
		{"underscore names dropped", false,
			http.Header{"X_forwarded_for": {"6.6.6.6"}, "X_user_id": {"admin"}, "X-Ok": {"1"}},
			http.Header{"X_forwarded_for": nil, "X_user_id": nil, "X-Ok": {"1"}}},
		{"underscore names kept when allowed", true,
			http.Header{"X_legacy": {"1"}},
			http.Header{"X_legacy": {"1"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got http.Header
			up := gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
				got = req.HTTP.Header.Clone()
				return nil, nil
			})
			p := gateway.NewPipeline(up, setTenant)
			p.Options.AllowUnderscoreHeaders = tc.allowUnder
			r := httptest.NewRequest("GET", "/", nil)
			for k, v := range tc.sent {
				r.Header[k] = v
			}
			p.ServeHTTP(httptest.NewRecorder(), r)
			for k, want := range tc.want {
				if strings.Join(got[k], "|") != strings.Join(want, "|") || (want == nil) != (got[k] == nil) {
					t.Errorf("upstream %s = %q, want %q", k, got[k], want)
				}
			}
		})
	}
}

func TestReplyLengthDecidedByResponse(t *testing.T) {
	wrapped := func(next gateway.Handler) gateway.Handler {
		return gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
			resp, err := next.Serve(ctx, req)
			if err != nil {
				return nil, err
			}
			resp.Body = io.NopCloser(io.MultiReader(resp.Body, strings.NewReader(" world")))
			resp.ContentLength = -1
			return resp, nil
		})
	}
	replaceAfterBytes := func(next gateway.Handler) gateway.Handler {
		return gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
			resp, err := next.Serve(ctx, req)
			if err != nil {
				return nil, err
			}
			if _, err := resp.Bytes(); err != nil {
				return nil, err
			}
			resp.Body = io.NopCloser(strings.NewReader("replaced"))
			resp.ContentLength = 8
			return resp, nil
		})
	}
	upstreamWithLength := gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		return &gateway.Response{Status: 200, Header: http.Header{"Content-Length": {"5"}}, Body: io.NopCloser(strings.NewReader("hello")), ContentLength: 5}, nil
	})
	zeroValue := gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		return &gateway.Response{Status: 200, Body: io.NopCloser(strings.NewReader("from a function"))}, nil
	})
	tests := []struct {
		name     string
		up       gateway.Handler
		stages   []gateway.Stage
		method   string
		wantBody string
		wantLen  string
	}{
		{"stale upstream length replaced", upstreamWithLength, []gateway.Stage{wrapped}, "GET", "hello world", ""},
		{"zero value streams its body", zeroValue, nil, "GET", "from a function", ""},
		{"body replaced after Bytes", upstreamWithLength, []gateway.Stage{replaceAfterBytes}, "GET", "replaced", "8"},
		{"HEAD keeps the announced length", upstreamWithLength, nil, "HEAD", "", "5"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(gateway.NewPipeline(tc.up, tc.stages...))
			defer srv.Close()
			req, _ := http.NewRequest(tc.method, srv.URL, nil)
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || string(body) != tc.wantBody {
				t.Fatalf("body %q (%v), want %q", body, err, tc.wantBody)
			}
			if got := resp.Header.Get("Content-Length"); got != tc.wantLen {
				t.Errorf("Content-Length = %q, want %q", got, tc.wantLen)
			}
		})
	}
}

func TestInterimStatusIsNotAFinalReply(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    gateway.Handler
	}{
		{"problem with 1xx status", gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
			return nil, &gateway.Error{Status: 103}
		})},
		{"reply with 1xx status", gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
			return &gateway.Response{Status: 103}, nil
		})},
		{"problem with 2xx status", gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
			return nil, &gateway.Error{Status: 200}
		})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := gateway.NewPipeline(tc.h)
			p.Options.Logger = quietLogger()
			rec := httptest.NewRecorder()
			p.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
			if rec.Code != 500 {
				t.Fatalf("status = %d, want 500", rec.Code)
			}
			decodeProblem(t, rec)
		})
	}
}

func TestClientGoneIsNotLoggedAsError(t *testing.T) {
	var logs bytes.Buffer
	up := gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		return nil, ctx.Err()
	})
	p := gateway.NewPipeline(up)
	p.Options.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil).WithContext(ctx))
	if logs.Len() != 0 {
		t.Fatalf("a client that went away was logged: %s", logs.String())
	}
}

func TestLimitBody(t *testing.T) {
	limitTo := func(n int64) gateway.Stage {
		return func(next gateway.Handler) gateway.Handler {
			return gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
				req.LimitBody(n)
				return next.Serve(ctx, req)
			})
		}
	}
	tests := []struct {
		name    string
		stages  []gateway.Stage
		body    string
		want    int
		wantMax string
	}{
		{"stricter limit, buffered", []gateway.Stage{limitTo(4), bufferingStage}, "12345", 413, "4 bytes"},
		{"stricter limit, streamed", []gateway.Stage{limitTo(4)}, "12345", 413, ""},
		{"within the stricter limit", []gateway.Stage{limitTo(8), bufferingStage}, "12345", 200, ""},
		{"a limit is never raised", []gateway.Stage{limitTo(1 << 20), bufferingStage}, strings.Repeat("x", 17), 413, "16 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := gateway.NewPipeline(echoUpstream, tc.stages...)
			p.Options.MaxBodyBytes = 16
			r := httptest.NewRequest("POST", "/", io.MultiReader(strings.NewReader(tc.body)))
			r.ContentLength = -1
			rec := httptest.NewRecorder()
			p.ServeHTTP(rec, r)
			if rec.Code != tc.want {
				t.Fatalf("status = %d, want %d (%s)", rec.Code, tc.want, rec.Body.String())
			}
			if tc.wantMax != "" && !strings.Contains(rec.Body.String(), tc.wantMax) {
				t.Errorf("detail %s does not name the limit %q", rec.Body.String(), tc.wantMax)
			}
		})
	}
}

func TestNewSubRequest(t *testing.T) {
	for _, tc := range []struct {
		name      string
		remote    string
		xff       string
		wantIP    string
		wantXFF   string
		wantTrust bool
	}{
		{"through a trusted proxy", "10.0.0.1:1", "198.51.100.7", "198.51.100.7", "198.51.100.7", true},
		{"direct client", "203.0.113.9:1", "198.51.100.7", "203.0.113.9", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var sub *gateway.Request
			p := gateway.NewPipeline(gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
				req.Principal = &gateway.Principal{Subject: "alice"}
				sub = gateway.NewSubRequest(req, httptest.NewRequest(http.MethodGet, "/backend", nil))
				return nil, nil
			}))
			p.Options.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tc.remote
			r.Header.Set("X-Forwarded-For", tc.xff)
			p.ServeHTTP(httptest.NewRecorder(), r)
			if got := sub.ClientIP().String(); got != tc.wantIP {
				t.Errorf("ClientIP %s, want %s", got, tc.wantIP)
			}
			if sub.FromTrustedProxy() != tc.wantTrust || sub.HTTP.RemoteAddr != tc.remote {
				t.Errorf("trusted %v from %s", sub.FromTrustedProxy(), sub.HTTP.RemoteAddr)
			}
			if got := sub.HTTP.Header.Get("X-Forwarded-For"); got != tc.wantXFF {
				t.Errorf("X-Forwarded-For %q, want %q", got, tc.wantXFF)
			}
			if sub.Principal == nil || sub.Principal.Subject != "alice" || sub.Route() != nil {
				t.Errorf("principal %+v, route %v", sub.Principal, sub.Route())
			}
		})
	}
}
