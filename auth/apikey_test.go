package auth

// These tests are internal to the package so that they can watch the hash
// comparison; helpers carry an "ak" prefix to stay clear of other files.

import (
	"context"
	"encoding/json"
	"errors"
	goast "go/ast"
	goparser "go/parser"
	gotoken "go/token"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatekit/gatekit/gateway"
)

const (
	akGood    = "gk_live_4f9c2b7a1e8d6035c4b1a9e7f2d8c6b0"
	akRevoked = "gk_live_revoked_0000000000000000000000"
	akExpiry  = "gk_live_expiring_111111111111111111111"
)

var akExpiresAt = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

func akStore(t testing.TB) *MemoryKeyStore {
	t.Helper()
	s, err := NewMemoryKeyStore(
		APIKey{ID: "k1", Hash: HashAPIKey(akGood), Owner: "acme", Plan: "gold", Scopes: []string{"orders:read", "orders:write"}, Metadata: map[string]string{"tenant": "t-42"}},
		APIKey{ID: "k2", Hash: HashAPIKey(akRevoked), Owner: "old", Revoked: true},
		APIKey{ID: "k3", Hash: HashAPIKey(akExpiry), ExpiresAt: akExpiresAt},
	)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func akAuth(t testing.TB, cfg APIKeyConfig) *APIKeyAuthenticator {
	t.Helper()
	if cfg.Store == nil {
		cfg.Store = akStore(t)
	}
	a, err := APIKeys(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// akRequest builds a request for target with the given X-API-Key values.
func akRequest(target string, keys ...string) *gateway.Request {
	r := httptest.NewRequest(http.MethodGet, target, nil)
	for _, k := range keys {
		r.Header.Add("X-API-Key", k)
	}
	return gateway.NewRequest(r)
}

func TestAPIKeys(t *testing.T) {
	beforeExpiry := func() time.Time { return akExpiresAt.Add(-time.Second) }
	atExpiry := func() time.Time { return akExpiresAt }
	tests := []struct {
		name       string
		cfg        APIKeyConfig
		req        *gateway.Request
		wantStatus int    // 0: accepted; -1: not responsible
		wantDetail string // substring of the problem's detail
		wantSub    string
	}{
		{name: "valid", req: akRequest("/", akGood), wantSub: "acme"},
		{name: "valid with spaces around", req: akRequest("/", " "+akGood+" "), wantSub: "acme"},
		{name: "header name in any case", req: func() *gateway.Request {
			r := akRequest("/")
			r.HTTP.Header["X-Api-Key"] = []string{akGood}
			return r
		}(), wantSub: "acme"},
		{name: "unknown", req: akRequest("/", "gk_live_nope"), wantStatus: 401, wantDetail: "not valid"},
		{name: "last byte differs", req: akRequest("/", akGood[:len(akGood)-1]+"1"), wantStatus: 401, wantDetail: "not valid"},
		{name: "prefix of a key", req: akRequest("/", akGood[:len(akGood)-1]), wantStatus: 401, wantDetail: "not valid"},
		{name: "empty", req: akRequest("/", ""), wantStatus: 401, wantDetail: "not valid"},
		{name: "revoked", req: akRequest("/", akRevoked), wantStatus: 401, wantDetail: "revoked"},
		{name: "before expiry", cfg: APIKeyConfig{Now: beforeExpiry}, req: akRequest("/", akExpiry), wantSub: "k3"},
		{name: "at expiry", cfg: APIKeyConfig{Now: atExpiry}, req: akRequest("/", akExpiry), wantStatus: 401, wantDetail: "expired"},
		{name: "two header fields", req: akRequest("/", akGood, akGood), wantStatus: 400, wantDetail: "more than one X-API-Key"},
		{name: "no key", req: akRequest("/"), wantStatus: -1},
		{name: "other header", cfg: APIKeyConfig{Header: "x-partner-key"}, req: akRequest("/", akGood), wantStatus: -1},
		{name: "custom header", cfg: APIKeyConfig{Header: "x-partner-key"}, req: func() *gateway.Request {
			r := akRequest("/")
			r.HTTP.Header.Set("X-Partner-Key", akGood)
			return r
		}(), wantSub: "acme"},
		{name: "query ignored by default", req: akRequest("/?api_key=" + akGood), wantStatus: -1},
		{name: "query", cfg: APIKeyConfig{QueryParam: "api_key"}, req: akRequest("/?a=1&api_key=" + akGood + "&b"), wantSub: "acme"},
		{name: "query escaped", cfg: APIKeyConfig{QueryParam: "api_key"}, req: akRequest("/?api%5Fkey=" + strings.ReplaceAll(akGood, "_", "%5F")), wantSub: "acme"},
		{name: "query unknown", cfg: APIKeyConfig{QueryParam: "api_key"}, req: akRequest("/?api_key=nope"), wantStatus: 401, wantDetail: "not valid"},
		{name: "query twice", cfg: APIKeyConfig{QueryParam: "api_key"}, req: akRequest("/?api_key=" + akGood + "&api_key=" + akGood), wantStatus: 400, wantDetail: "more than one api_key"},
		{name: "query badly escaped", cfg: APIKeyConfig{QueryParam: "api_key"}, req: akRequest("/?api_key=%zz"), wantStatus: 400, wantDetail: "not well encoded"},
		{name: "header and query", cfg: APIKeyConfig{QueryParam: "api_key"}, req: akRequest("/?api_key="+akGood, akGood), wantStatus: 400, wantDetail: "both"},
		{name: "header with query enabled", cfg: APIKeyConfig{QueryParam: "api_key"}, req: akRequest("/?x=1", akGood), wantSub: "acme"},
		{name: "similar query name", cfg: APIKeyConfig{QueryParam: "api_key"}, req: akRequest("/?api_keys=" + akGood), wantStatus: -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := akAuth(t, tc.cfg)
			p, err := a.Authenticate(context.Background(), tc.req)
			switch tc.wantStatus {
			case 0:
				if err != nil {
					t.Fatalf("Authenticate: %v", err)
				}
				if p.Subject != tc.wantSub || p.Issuer != APIKeyIssuer {
					t.Fatalf("principal %q from %q, want %q from %q", p.Subject, p.Issuer, tc.wantSub, APIKeyIssuer)
				}
				return
			case -1:
				if !errors.Is(err, gateway.ErrNotResponsible) {
					t.Fatalf("Authenticate = %v, %v; want ErrNotResponsible", p, err)
				}
				return
			}
			e, ok := errors.AsType[*gateway.Error](err)
			if !ok || e.Status != tc.wantStatus {
				t.Fatalf("Authenticate = %v, %v; want a %d", p, err, tc.wantStatus)
			}
			if !strings.Contains(e.Detail, tc.wantDetail) {
				t.Errorf("detail %q, want it to mention %q", e.Detail, tc.wantDetail)
			}
			for _, k := range []string{akGood, akRevoked, akExpiry, "nope"} {
				if strings.Contains(e.Error(), k) || strings.Contains(e.Header.Get("WWW-Authenticate"), k) {
					t.Errorf("the refusal echoes the key: %v", e)
				}
			}
			if tc.wantStatus == 401 {
				if got, want := e.Header.Get("WWW-Authenticate"), a.Challenge(); got != want || want == "" {
					t.Errorf("WWW-Authenticate %q, want %q", got, want)
				}
			}
		})
	}
}

func TestAPIKeyChallenge(t *testing.T) {
	tests := []struct {
		cfg  APIKeyConfig
		want string
	}{
		{APIKeyConfig{}, `APIKey header="X-API-Key"`},
		{APIKeyConfig{Header: "X-Partner-Key", QueryParam: "key", Realm: "partners"}, `APIKey realm="partners", header="X-Partner-Key", query="key"`},
	}
	for _, tc := range tests {
		if got := akAuth(t, tc.cfg).Challenge(); got != tc.want {
			t.Errorf("Challenge() = %q, want %q", got, tc.want)
		}
	}
}

// TestAPIKeyThroughPipeline checks the reply a client sees.
func TestAPIKeyThroughPipeline(t *testing.T) {
	a := akAuth(t, APIKeyConfig{})
	ok := gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
		plan, _ := req.Principal.Claim("plan")
		return gateway.NewResponse(http.StatusOK, nil, []byte(req.Principal.Subject+" "+plan.(string))), nil
	})
	p := gateway.NewPipeline(ok, gateway.Authenticate(a))
	tests := []struct {
		name, key  string
		wantStatus int
		wantBody   string
	}{
		{"valid", akGood, 200, "acme gold"},
		{"unknown", "gk_live_wrong_key", 401, `"detail":"the API key is not valid"`},
		{"none", "", 401, "no credentials"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			if tc.key != "" {
				r.Header.Set("X-API-Key", tc.key)
			}
			rec := httptest.NewRecorder()
			p.ServeHTTP(rec, r)
			if rec.Code != tc.wantStatus || !strings.Contains(rec.Body.String(), tc.wantBody) {
				t.Fatalf("got %d %s, want %d with %q", rec.Code, rec.Body, tc.wantStatus, tc.wantBody)
			}
			if strings.Contains(rec.Body.String(), "gk_live") {
				t.Errorf("the reply echoes the key: %s", rec.Body)
			}
			if tc.wantStatus == 401 {
				if got := rec.Header().Get("WWW-Authenticate"); got != `APIKey header="X-API-Key"` {
					t.Errorf("WWW-Authenticate %q", got)
				}
			}
		})
	}
}

// TestAPIKeyConstantTimeCompare checks that the stored and presented hashes
// are compared, and compared with crypto/subtle (see the comment on APIKeys
// for why the lookup by hash itself leaks nothing). The call is checked in
// the source, since a hook would cost the hot path an allocation; its
// effect is checked with a store that matches loosely.
func TestAPIKeyConstantTimeCompare(t *testing.T) {
	fset := gotoken.NewFileSet()
	f, err := goparser.ParseFile(fset, "apikey.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var calls, hashEquals int
	for _, d := range f.Decls {
		fn, ok := d.(*goast.FuncDecl)
		if !ok || fn.Name.Name != "Authenticate" || fn.Recv == nil {
			continue
		}
		goast.Inspect(fn.Body, func(n goast.Node) bool {
			switch n := n.(type) {
			case *goast.CallExpr:
				if sel, ok := n.Fun.(*goast.SelectorExpr); ok && sel.Sel.Name == "ConstantTimeCompare" {
					if id, ok := sel.X.(*goast.Ident); ok && id.Name == "subtle" {
						calls++
					}
				}
			case *goast.BinaryExpr:
				for _, side := range []goast.Expr{n.X, n.Y} {
					if sel, ok := side.(*goast.SelectorExpr); ok && sel.Sel.Name == "Hash" && (n.Op == gotoken.EQL || n.Op == gotoken.NEQ) {
						hashEquals++
					}
				}
			}
			return true
		})
	}
	if calls != 1 || hashEquals != 0 {
		t.Fatalf("APIKeyAuthenticator.Authenticate: %d calls of subtle.ConstantTimeCompare (want 1), %d == or != on a Hash (want 0)", calls, hashEquals)
	}

	// A store that matches loosely (here: anything) cannot get a wrong key
	// accepted: the authenticator compares the full hashes itself.
	k := APIKey{ID: "any", Hash: HashAPIKey(akGood)}
	loose := akStoreFunc(func(ctx context.Context, hash [32]byte) (*APIKey, error) { return &k, nil })
	a := akAuth(t, APIKeyConfig{Store: loose})
	if _, err := a.Authenticate(context.Background(), akRequest("/", akGood)); err != nil {
		t.Fatalf("right key: %v", err)
	}
	_, err = a.Authenticate(context.Background(), akRequest("/", akGood[:len(akGood)-1]+"X"))
	if e, ok := errors.AsType[*gateway.Error](err); !ok || e.Status != 401 {
		t.Fatalf("wrong key from a loose store: %v, want 401", err)
	}
}

type akStoreFunc func(ctx context.Context, hash [32]byte) (*APIKey, error)

func (f akStoreFunc) LookupAPIKey(ctx context.Context, hash [32]byte) (*APIKey, error) {
	return f(ctx, hash)
}

func TestAPIKeyStoreFailure(t *testing.T) {
	down := errors.New("database is down")
	tests := []struct {
		name       string
		err        error
		wantStatus int
	}{
		{"internal error fails closed", down, 503},
		{"problem passes through", &gateway.Error{Status: 429, Detail: "slow down"}, 429},
		{"nil key is unknown", nil, 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := akAuth(t, APIKeyConfig{Store: akStoreFunc(func(context.Context, [32]byte) (*APIKey, error) { return nil, tc.err })})
			_, err := a.Authenticate(context.Background(), akRequest("/", akGood))
			e, ok := errors.AsType[*gateway.Error](err)
			if !ok || e.Status != tc.wantStatus {
				t.Fatalf("Authenticate: %v, want a %d", err, tc.wantStatus)
			}
			if tc.err == down && (!errors.Is(err, down) || strings.Contains(e.Detail, "database")) {
				t.Errorf("the cause must be kept for the log and kept out of the detail: %#v", e)
			}
		})
	}
}

func TestAPIKeyPrincipal(t *testing.T) {
	a := akAuth(t, APIKeyConfig{})
	p1, err := a.Authenticate(context.Background(), akRequest("/", akGood))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"key_id":   "k1",
		"sub":      "acme",
		"owner":    "acme",
		"plan":     "gold",
		"scope":    "orders:read orders:write",
		"metadata": map[string]any{"tenant": "t-42"},
	}
	if !reflect.DeepEqual(p1.Claims, want) {
		t.Errorf("Claims = %v, want %v", p1.Claims, want)
	}
	var fromJSON map[string]any
	if err := json.Unmarshal(p1.ClaimsJSON, &fromJSON); err != nil || !reflect.DeepEqual(fromJSON, want) {
		t.Errorf("ClaimsJSON = %s (%v), want %v", p1.ClaimsJSON, err, want)
	}
	if !slices.Equal(p1.Scopes, []string{"orders:read", "orders:write"}) || !p1.HasScope("orders:write") {
		t.Errorf("Scopes = %v", p1.Scopes)
	}
	p2, _ := a.Authenticate(context.Background(), akRequest("/", akGood))
	if p1 == p2 {
		t.Error("two requests share one *Principal; a stage changing one would change the other")
	}

	// Without an owner the ID is the subject, and empty claims are left out.
	p3, err := akAuth(t, APIKeyConfig{Now: func() time.Time { return time.Time{} }}).Authenticate(context.Background(), akRequest("/", akExpiry))
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]any{"key_id": "k3", "sub": "k3"}; p3.Subject != "k3" || !reflect.DeepEqual(p3.Claims, want) {
		t.Errorf("principal %q %v, want k3 %v", p3.Subject, p3.Claims, want)
	}

	// A key from another store has no template and is built per request.
	k := APIKey{ID: "ext", Hash: HashAPIKey("external"), Owner: "ext-owner", Plan: "free"}
	a = akAuth(t, APIKeyConfig{Store: akStoreFunc(func(context.Context, [32]byte) (*APIKey, error) { return &k, nil })})
	p4, err := a.Authenticate(context.Background(), akRequest("/", "external"))
	if err != nil {
		t.Fatal(err)
	}
	if p4.Subject != "ext-owner" || p4.Claims["plan"] != "free" || p4.Claims["key_id"] != "ext" {
		t.Errorf("principal %q %v", p4.Subject, p4.Claims)
	}
}

func TestNewMemoryKeyStore(t *testing.T) {
	h := HashAPIKey
	tests := []struct {
		name    string
		keys    []APIKey
		wantErr string // "" for success
	}{
		{name: "empty", keys: nil},
		{name: "two keys", keys: []APIKey{{ID: "a", Hash: h("1")}, {ID: "b", Hash: h("2")}}},
		{name: "duplicate ID", keys: []APIKey{{ID: "a", Hash: h("1")}, {ID: "a", Hash: h("2")}}, wantErr: `API key #1 (id "a"): ID "a" is already used by API key #0`},
		{name: "duplicate hash", keys: []APIKey{{ID: "a", Hash: h("1")}, {ID: "b", Hash: h("2")}, {ID: "c", Hash: h("1")}}, wantErr: `API key #2 (id "c"): same key as API key #0 (id "a")`},
		{name: "no ID", keys: []APIKey{{Hash: h("1")}}, wantErr: "API key #0 (id \"\"): ID is empty"},
		{name: "no hash", keys: []APIKey{{ID: "a"}}, wantErr: `API key #0 (id "a"): Hash is not set`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewMemoryKeyStore(tc.keys...)
			if tc.wantErr == "" {
				if err != nil || s == nil {
					t.Fatalf("NewMemoryKeyStore: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("NewMemoryKeyStore error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestMemoryKeyStoreCopiesKeys(t *testing.T) {
	keys := []APIKey{{ID: "a", Hash: HashAPIKey("1"), Scopes: []string{"read"}, Metadata: map[string]string{"m": "1"}}}
	s, err := NewMemoryKeyStore(keys...)
	if err != nil {
		t.Fatal(err)
	}
	keys[0].Scopes[0] = "admin"
	keys[0].Metadata["m"] = "2"
	keys[0].Revoked = true
	k, err := s.LookupAPIKey(context.Background(), HashAPIKey("1"))
	if err != nil {
		t.Fatal(err)
	}
	if k.Scopes[0] != "read" || k.Metadata["m"] != "1" || k.Revoked {
		t.Fatalf("the store sees the caller's later changes: %+v", k)
	}
	if _, err := s.LookupAPIKey(context.Background(), HashAPIKey("2")); !errors.Is(err, ErrUnknownAPIKey) {
		t.Fatalf("unknown key: %v, want ErrUnknownAPIKey", err)
	}
}

func TestAPIKeysConfigErrors(t *testing.T) {
	store := akStore(t)
	tests := []struct {
		name    string
		cfg     APIKeyConfig
		wantErr string
	}{
		{"no store", APIKeyConfig{}, "Store is required"},
		{"bad header", APIKeyConfig{Store: store, Header: "X API Key"}, "not a valid header field name"},
		{"bad query param", APIKeyConfig{Store: store, QueryParam: "a&b"}, "plain name"},
		{"bad realm", APIKeyConfig{Store: store, Realm: `a"b`}, "Realm"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := APIKeys(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("APIKeys error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestAPIKeyQueryValue(t *testing.T) {
	tests := []struct {
		raw       string
		wantValue string
		wantN     int
		wantErr   bool
	}{
		{"", "", 0, false},
		{"k=v", "v", 1, false},
		{"a=1&k=v&b=2", "v", 1, false},
		{"k", "", 1, false},
		{"k=", "", 1, false},
		{"k=a+b%2Fc", "a b/c", 1, false},
		{"%6B=v", "v", 1, false},
		{"k=1&k=2", "2", 2, false},
		{"kk=1&xk=2", "", 0, false},
		{"%zz=1&k=v", "v", 1, false},
		{"k=%zz", "", 1, true},
	}
	for _, tc := range tests {
		v, n, err := apiKeyQueryValue(tc.raw, "k")
		if v != tc.wantValue || n != tc.wantN || (err != nil) != tc.wantErr {
			t.Errorf("apiKeyQueryValue(%q) = %q, %d, %v; want %q, %d, error %v", tc.raw, v, n, err, tc.wantValue, tc.wantN, tc.wantErr)
		}
	}
}

// FuzzAPIKeyQueryValue checks the allocation-free query scan against
// net/url's parser on every query the latter accepts.
func FuzzAPIKeyQueryValue(f *testing.F) {
	for _, s := range []string{"", "api_key=abc", "a=1&api_key=x%2By&api_key=2", "api%5Fkey=1", "api_key", "=&&="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		v, n, err := apiKeyQueryValue(raw, "api_key")
		want, perr := url.ParseQuery(raw)
		if perr != nil {
			return
		}
		got := want["api_key"]
		if err != nil || n != len(got) || (n > 0 && v != got[len(got)-1]) {
			t.Fatalf("apiKeyQueryValue(%q) = %q, %d, %v; net/url finds %q", raw, v, n, err, got)
		}
	})
}

// TestAPIKeyAuthenticateAllocs guards the hot path: one allocation, the
// principal each request gets.
func TestAPIKeyAuthenticateAllocs(t *testing.T) {
	if testing.Short() || akRaceEnabled() {
		t.Skip("allocation guard; the race detector allocates on its own")
	}
	a := akAuth(t, APIKeyConfig{})
	req := akRequest("/", akGood)
	ctx := context.Background()
	n := testing.AllocsPerRun(200, func() {
		if _, err := a.Authenticate(ctx, req); err != nil {
			t.Fatal(err)
		}
	})
	if n > 1 {
		t.Fatalf("Authenticate allocates %v times per request, want at most 1", n)
	}
}

// akRaceEnabled reports whether the test binary was built with -race.
func akRaceEnabled() bool {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "-race" {
				return s.Value == "true"
			}
		}
	}
	return false
}

// BenchmarkAPIKeyAuthenticate measures a valid key from the header against
// an in-memory store. Target: under 500 ns and 1 allocation (the hash is
// most of it).
func BenchmarkAPIKeyAuthenticate(b *testing.B) {
	a := akAuth(b, APIKeyConfig{})
	req := akRequest("/", akGood)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Authenticate(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}
