package transform_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/gatekit/gatekit/gateway"
	"github.com/gatekit/gatekit/transform"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// upstreamSaw is what an in-process upstream received.
type upstreamSaw struct {
	method, path, query string
	requestURI          string
	header              http.Header
	body                []byte
	contentLength       int64
	called              bool
}

// echoUpstream records the request (reading its body, as a backend would)
// and answers with status, header and body.
func echoUpstream(saw *upstreamSaw, status int, header http.Header, body string) gateway.Handler {
	return gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		r := req.HTTP
		saw.called = true
		saw.method, saw.path, saw.query = r.Method, r.URL.Path, r.URL.RawQuery
		saw.requestURI = r.RequestURI
		saw.header = r.Header.Clone()
		saw.contentLength = r.ContentLength
		if r.Body != nil {
			b, err := io.ReadAll(r.Body)
			if err != nil {
				return nil, err
			}
			saw.body = b
		}
		h := http.Header{}
		for k, v := range header {
			h[k] = append([]string(nil), v...)
		}
		return gateway.NewResponse(status, h, []byte(body)), nil
	})
}

// routed serves one route with the given pattern, so path parameters work.
func routed(t testing.TB, pattern string, h gateway.Handler) http.Handler {
	t.Helper()
	rt, err := gateway.NewRouter(gateway.RouterConfig{Options: gateway.Options{Logger: quiet}, Routes: []gateway.Route{{Path: pattern, Handler: h}}})
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

var quiet = slog.New(slog.DiscardHandler)

// pipe is gateway.NewPipeline with a quiet logger.
func pipe(up gateway.Handler, stages ...gateway.Stage) *gateway.Pipeline {
	p := gateway.NewPipeline(up, stages...)
	p.Options.Logger = quiet
	return p
}

// do sends one request to h.
func do(h http.Handler, method, target, body string, header http.Header) *httptest.ResponseRecorder {
	var rb io.Reader
	if body != "" {
		rb = strings.NewReader(body)
	}
	r := httptest.NewRequest(method, target, rb)
	for k, v := range header {
		r.Header[k] = v
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}

type problem struct {
	Status int    `json:"status"`
	Title  string `json:"title"`
	Detail string `json:"detail"`
}

func decodeProblem(t *testing.T, rec *httptest.ResponseRecorder) problem {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); ct != gateway.ProblemContentType {
		t.Fatalf("Content-Type = %q, want a problem (status %d, body %q)", ct, rec.Code, rec.Body.String())
	}
	var p problem
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		t.Fatalf("problem %q: %v", rec.Body.String(), err)
	}
	return p
}

func mustRequest(t testing.TB, ops ...transform.Op) *transform.RequestTransform {
	t.Helper()
	tr, err := transform.Request(transform.Config{Ops: ops})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func mustResponse(t testing.TB, cfg transform.Config) *transform.ResponseTransform {
	t.Helper()
	tr, err := transform.Response(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func mustBody(t testing.TB, ops ...transform.Op) *transform.Body {
	t.Helper()
	b, err := transform.NewBody(ops...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// jsonEqual reports whether two JSON documents hold the same values, with
// numbers compared by their text.
func jsonEqual(t testing.TB, a, b []byte) bool {
	t.Helper()
	va, err := decodeJSON(a)
	if err != nil {
		t.Fatalf("%s: %v", a, err)
	}
	vb, err := decodeJSON(b)
	if err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return reflect.DeepEqual(va, vb)
}

func decodeJSON(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}
