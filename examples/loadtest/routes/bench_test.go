package routes

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
	"golang.org/x/time/rate"

	"github.com/gatekit/gatekit/auth"
)

// The in-process benchmarks of the load-test routes, beside the bare library
// calls they are built on (BenchmarkFloor).
//
// Target (the performance issue): the typical API route in process costs at
// most 1.3× the floor in time and at most 25 allocations more. The floor is
// golang-jwt's HS256 jwt.Parse of the route's token, jsonschema v6 decoding
// and validating the route's body against its schema, three sjson edits of
// the 1 KiB reply and one keyed x/time/rate decision.
//
// The upstream answers from memory (memoryTransport), so no network is
// measured; it costs the route a few allocations of its own (the reply,
// its header, its reader), which the floor does not pay.

// memoryTransport is an upstream that answers every request with Reply
// from memory, reading and closing the request body as a real one would.
type memoryTransport struct{}

func (memoryTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	return &http.Response{
		StatusCode:    http.StatusOK,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        http.Header{"Content-Type": {"application/json"}, "Content-Length": {strconv.Itoa(len(Reply))}},
		Body:          io.NopCloser(bytes.NewReader(Reply)),
		ContentLength: int64(len(Reply)),
		Request:       r,
	}, nil
}

// discard is a ResponseWriter that keeps the status and throws the body
// away, reusing its header map.
type discard struct {
	h      http.Header
	status int
	n      int
}

func (d *discard) Header() http.Header { return d.h }
func (d *discard) WriteHeader(code int) {
	if d.status == 0 {
		d.status = code
	}
}
func (d *discard) Write(p []byte) (int, error) {
	if d.status == 0 {
		d.status = http.StatusOK
	}
	d.n += len(p)
	return len(p), nil
}
func (d *discard) reset() { clear(d.h); d.status, d.n = 0, 0 }

// requestLoop serves copies of tmpl (with body, when not nil) through h in
// the benchmark loop, checking the status.
func requestLoop(b *testing.B, h http.Handler, tmpl *http.Request, body []byte) {
	b.Helper()
	w := &discard{h: http.Header{}}
	var rd bytes.Reader
	hdr := http.Header{}
	b.ReportAllocs()
	for b.Loop() {
		w.reset()
		r := *tmpl
		clear(hdr)
		for k, v := range tmpl.Header {
			hdr[k] = v
		}
		r.Header = hdr
		if body != nil {
			rd.Reset(body)
			r.Body = io.NopCloser(&rd)
		}
		h.ServeHTTP(w, &r)
		if w.status != http.StatusOK {
			b.Fatalf("status %d", w.status)
		}
	}
}

func newBenchRouter(b *testing.B, cache bool) http.Handler {
	b.Helper()
	h, err := build(Config{Upstream: "http://upstream.test", TokenCache: cache}, memoryTransport{})
	if err != nil {
		b.Fatal(err)
	}
	return h
}

func orderRequest(token string) *http.Request {
	r, _ := http.NewRequest(http.MethodPost, "http://gateway.test/api/orders", nil)
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Authorization", "Bearer "+token)
	r.ContentLength = int64(len(OrderBody))
	r.RemoteAddr = "192.0.2.1:1234"
	return r
}

// BenchmarkAPIRoute is POST /api/orders through the router: JWT, rate
// limit, schema, reply transforms, the in-memory upstream.
func BenchmarkAPIRoute(b *testing.B) {
	token := Token(nil, "c-100")
	for _, cache := range []bool{false, true} {
		name := "cache=off"
		if cache {
			name = "cache=on"
		}
		b.Run(name, func(b *testing.B) {
			requestLoop(b, newBenchRouter(b, cache), orderRequest(token), OrderBody)
		})
	}
}

// BenchmarkPassThrough is GET /pass/... to the in-memory upstream.
func BenchmarkPassThrough(b *testing.B) {
	r, _ := http.NewRequest(http.MethodGet, "http://gateway.test/pass/items/42", nil)
	r.RemoteAddr = "192.0.2.1:1234"
	requestLoop(b, newBenchRouter(b, false), r, nil)
}

// BenchmarkAggregate is GET /agg: three in-memory upstream calls merged.
func BenchmarkAggregate(b *testing.B) {
	r, _ := http.NewRequest(http.MethodGet, "http://gateway.test/agg", nil)
	r.RemoteAddr = "192.0.2.1:1234"
	requestLoop(b, newBenchRouter(b, false), r, nil)
}

// BenchmarkHarness is what requestLoop and the upstream cost without
// gatekit: the request copy and the in-memory reply, written out.
func BenchmarkHarness(b *testing.B) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res, _ := memoryTransport{}.RoundTrip(r)
		for k, v := range res.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(res.StatusCode)
		io.Copy(w, res.Body)
	})
	requestLoop(b, h, orderRequest(Token(nil, "c-100")), OrderBody)
}

// floor holds what the bare library calls need, built once as the route's
// stages are.
type floor struct {
	token  string
	key    []byte
	parser *jwt.Parser
	schema *jsonschema.Schema

	mu       sync.Mutex
	limiters map[string]*rate.Limiter
}

func newFloor(b *testing.B) *floor {
	b.Helper()
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(OrderSchema))
	if err != nil {
		b.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("order.json", doc); err != nil {
		b.Fatal(err)
	}
	sch, err := c.Compile("order.json")
	if err != nil {
		b.Fatal(err)
	}
	return &floor{
		token:    Token(nil, "c-100"),
		key:      DemoKey,
		parser:   jwt.NewParser(jwt.WithValidMethods([]string{"HS256"})),
		schema:   sch,
		limiters: map[string]*rate.Limiter{},
	}
}

func (f *floor) jwt(b *testing.B) string {
	t, err := f.parser.Parse(f.token, func(*jwt.Token) (any, error) { return f.key, nil })
	if err != nil {
		b.Fatal(err)
	}
	sub, _ := t.Claims.GetSubject()
	return sub
}

func (f *floor) validate(b *testing.B) {
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(OrderBody))
	if err != nil {
		b.Fatal(err)
	}
	if err := f.schema.Validate(v); err != nil {
		b.Fatal(err)
	}
}

func (f *floor) transform(b *testing.B) []byte {
	out, err := sjson.SetRawBytes(Reply, "orderId", []byte(gjson.GetBytes(Reply, "id").Raw))
	if err == nil {
		out, err = sjson.DeleteBytes(out, "internal")
	}
	if err == nil {
		out, err = sjson.SetBytes(out, "gateway", "gatekit")
	}
	if err != nil {
		b.Fatal(err)
	}
	return out
}

func (f *floor) limit(b *testing.B, sub string) {
	f.mu.Lock()
	l, ok := f.limiters[sub]
	if !ok {
		l = rate.NewLimiter(1e9, 1e9) // never refuses, yet decides (rate.Inf would skip the bucket)
		f.limiters[sub] = l
	}
	f.mu.Unlock()
	if !l.Allow() {
		b.Fatal("limited")
	}
}

// BenchmarkFloor is the bare library calls of the API route: the floor its
// target is stated against. The parts are measured alone too.
func BenchmarkFloor(b *testing.B) {
	f := newFloor(b)
	b.Run("all", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sub := f.jwt(b)
			f.limit(b, sub)
			f.validate(b)
			f.transform(b)
		}
	})
	b.Run("jwt", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			f.jwt(b)
		}
	})
	b.Run("schema", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			f.validate(b)
		}
	})
	b.Run("sjson", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			f.transform(b)
		}
	})
	b.Run("limiter", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			f.limit(b, "c-100")
		}
	})
}

// BenchmarkAuth is the route's authenticator alone, as the route builds
// it, with the cache off and on.
func BenchmarkAuth(b *testing.B) {
	hk, err := auth.HMACKey(KeyID, DemoKey, "HS256")
	if err != nil {
		b.Fatal(err)
	}
	keys, err := auth.StaticKeys(hk)
	if err != nil {
		b.Fatal(err)
	}
	token := Token(nil, "c-100")
	for _, size := range []int{0, 10000} {
		name := "cache=off"
		if size > 0 {
			name = "cache=on"
		}
		b.Run(name, func(b *testing.B) {
			a, err := auth.JWT(auth.JWTConfig{Keys: keys, Algorithms: []string{"HS256"}, Cache: auth.TokenCacheConfig{Size: size}})
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				p, err := a.Verify(ctx, token)
				if err != nil || p.Subject != "c-100" {
					b.Fatal(p, err)
				}
			}
		})
	}
}

// BenchmarkUpstream is the in-memory upstream alone: what the route
// benchmarks pay for it, on top of gatekit.
func BenchmarkUpstream(b *testing.B) {
	r := orderRequest(Token(nil, "c-100"))
	b.ReportAllocs()
	for b.Loop() {
		res, _ := memoryTransport{}.RoundTrip(r)
		res.Body.Close()
	}
}
