// Package routes builds the gatekit routes the load test measures, so that
// the wrk harness and the in-process benchmarks (bench_test.go) measure the
// same pipelines:
//
//   - GET /pass/...: pass-through to the upstream (proxy.HTTP), nothing else;
//   - POST /api/orders: a typical API route: an HS256 JWT (auth.JWT with a
//     static key), a JSON Schema of five properties on the body (validate),
//     three field edits on the reply (transform: rename, delete, set) and a
//     per-subject rate limit too high to trigger (ratelimit), then the
//     upstream;
//   - GET /agg: three calls to the upstream merged into one reply
//     (proxy.Aggregate).
//
// The upstream is any server that answers every path with a JSON object; the
// reply transforms act on the members of Reply.
//
//	h, err := routes.New(routes.Config{Upstream: "http://127.0.0.1:9001"})
//	token := routes.Token(nil, "c-100")
//	// POST /api/orders with "Authorization: Bearer "+token and routes.OrderBody
package routes

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/gatekit/gatekit/auth"
	"github.com/gatekit/gatekit/gateway"
	"github.com/gatekit/gatekit/proxy"
	"github.com/gatekit/gatekit/proxy/h1"
	"github.com/gatekit/gatekit/ratelimit"
	"github.com/gatekit/gatekit/transform"
	"github.com/gatekit/gatekit/validate"
)

// Config says where the routes send requests and how tokens are checked.
type Config struct {
	// Upstream is the base URL of the fixed-response upstream, such as
	// "http://127.0.0.1:9001". Required.
	Upstream string
	// Key is the HS256 key of the API route's tokens, at least 32 bytes;
	// nil means a fixed demo key (DemoKey).
	Key []byte
	// TokenCache turns on the verified-token cache of the API route's JWT
	// authenticator (auth.JWTConfig.Cache), so that a repeated token skips
	// signature verification.
	TokenCache bool
	// H1 sends the upstream requests through proxy/h1's lean HTTP/1.1
	// transport instead of net/http's.
	H1 bool
}

// DemoKey is the HS256 key used when Config.Key is nil. It is public: a
// load test, not a secret.
var DemoKey = []byte("gatekit-loadtest-demo-hs256-key-0123456789")

// KeyID is the "kid" of the tokens Token signs.
const KeyID = "loadtest"

// OrderBody is a POST /api/orders body that passes the route's schema.
var OrderBody = []byte(`{"customer":"c-100","sku":"SKU-12345","quantity":3,"price":"19.99","currency":"EUR"}`)

// OrderSchema is the JSON Schema of POST /api/orders bodies: five
// properties.
const OrderSchema = `{
  "type": "object",
  "required": ["customer", "sku", "quantity", "price", "currency"],
  "additionalProperties": false,
  "properties": {
    "customer": {"type": "string", "pattern": "^c-[0-9]{3,8}$"},
    "sku":      {"type": "string", "minLength": 3, "maxLength": 32},
    "quantity": {"type": "integer", "minimum": 1, "maximum": 1000},
    "price":    {"type": "string", "pattern": "^[0-9]{1,9}\\.[0-9]{2}$"},
    "currency": {"enum": ["EUR", "GBP", "USD"]}
  }
}`

// Reply is a 1 KiB JSON reply for the fixed-response upstream: the API
// route's transforms rename its "id", delete its "internal" and set
// "gateway".
var Reply = makeReply()

func makeReply() []byte {
	b := []byte(`{"id":"ord-000123","status":"accepted","customer":"c-100","internal":{"shard":7,"node":"db-3"},"items":[`)
	for i := 0; len(b) < 1000; i++ {
		if i > 0 {
			b = append(b, ',')
		}
		b = fmt.Appendf(b, `{"sku":"SKU-%05d","qty":%d,"price":"19.99"}`, i, i%5+1)
	}
	b = append(b, `],"total":"59.97"}`...)
	return b
}

// New returns a *gateway.Router serving the three routes against
// cfg.Upstream.
func New(cfg Config) (http.Handler, error) {
	return build(cfg, nil)
}

// build is New with the upstream's transport: nil for the network, or one
// that answers from memory in the benchmarks.
func build(cfg Config, transport http.RoundTripper) (*gateway.Router, error) {
	if cfg.Upstream == "" {
		return nil, errors.New("routes: Config.Upstream: required")
	}
	key := cfg.Key
	if key == nil {
		key = DemoKey
	}
	if transport == nil && cfg.H1 {
		transport = h1.New(h1.Config{})
	}
	up, err := proxy.HTTP(proxy.HTTPConfig{Targets: []string{cfg.Upstream}, Transport: transport})
	if err != nil {
		return nil, fmt.Errorf("routes: upstream: %w", err)
	}
	hk, err := auth.HMACKey(KeyID, key, "HS256")
	if err != nil {
		return nil, fmt.Errorf("routes: key: %w", err)
	}
	keys, err := auth.StaticKeys(hk)
	if err != nil {
		return nil, fmt.Errorf("routes: key: %w", err)
	}
	jcfg := auth.JWTConfig{Keys: keys, Algorithms: []string{"HS256"}, Realm: "loadtest"}
	if cfg.TokenCache {
		jcfg.Cache = auth.TokenCacheConfig{Size: 10000}
	}
	jwtAuth, err := auth.JWT(jcfg)
	if err != nil {
		return nil, fmt.Errorf("routes: jwt: %w", err)
	}
	orders, err := validate.New(validate.Config{Route: "orders", Body: validate.Schema{JSON: OrderSchema}, MaxBytes: 4 << 10})
	if err != nil {
		return nil, fmt.Errorf("routes: %w", err)
	}
	reply, err := transform.Response(transform.Config{Ops: []transform.Op{
		transform.Rename("id", "orderId"),
		transform.Delete("internal"),
		transform.Set("gateway", transform.String("gatekit")),
	}})
	if err != nil {
		return nil, fmt.Errorf("routes: %w", err)
	}
	perKey, err := ratelimit.New(ratelimit.Config{
		Name: "per-subject", Rate: 1_000_000, Per: time.Second, Key: ratelimit.BySubject(),
	})
	if err != nil {
		return nil, fmt.Errorf("routes: %w", err)
	}
	agg, err := proxy.Aggregate(proxy.AggregateConfig{
		Backends: []proxy.AggregateBackend{
			{Name: "a", Upstream: up, Path: "/agg/a", Key: "a"},
			{Name: "b", Upstream: up, Path: "/agg/b", Key: "b"},
			{Name: "c", Upstream: up, Path: "/agg/c", Key: "c"},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("routes: %w", err)
	}
	return gateway.NewRouter(gateway.RouterConfig{Routes: []gateway.Route{
		{Name: "pass", Methods: []string{"GET"}, PathPrefix: "/pass", Handler: gateway.NewPipeline(up)},
		{Name: "orders", Methods: []string{"POST"}, Path: "/api/orders", Handler: gateway.NewPipeline(up,
			gateway.Authenticate(jwtAuth),
			gateway.Limit(perKey),
			gateway.Validate(orders),
			reply.Stage(),
		)},
		{Name: "agg", Methods: []string{"GET"}, Path: "/agg", Handler: gateway.NewPipeline(agg)},
	}})
}

// Token returns an HS256 token for sub, valid for an hour, signed with key
// (nil means DemoKey) under KeyID.
func Token(key []byte, sub string) string {
	if key == nil {
		key = DemoKey
	}
	now := time.Now()
	t := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": sub,
		"iat": now.Unix(),
		"exp": now.Add(time.Hour).Unix(),
	})
	t.Header["kid"] = KeyID
	s, err := t.SignedString(key)
	if err != nil {
		panic("routes: sign token: " + err.Error()) // HS256 with a []byte key cannot fail
	}
	return s
}
