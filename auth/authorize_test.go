package auth_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gatekit/gatekit/auth"
	"github.com/gatekit/gatekit/gateway"
)

// fixedPrincipal authenticates every request as p.
func fixedPrincipal(p *gateway.Principal) gateway.Authenticator {
	return gateway.AuthenticatorFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Principal, error) {
		if p == nil {
			return nil, gateway.ErrNotResponsible
		}
		return p, nil
	})
}

var okUpstream = gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
	return gateway.NewResponse(http.StatusOK, nil, []byte("ok")), nil
})

func TestRequire(t *testing.T) {
	keycloak := &gateway.Principal{
		Subject:    "alice",
		Scopes:     []string{"orders:read", "profile"},
		ClaimsJSON: []byte(`{"sub":"alice","realm_access":{"roles":["admin","user"]},"tenant":{"id":"acme","tier":"gold"},"groups":["eng"]}`),
	}
	mapOnly := &gateway.Principal{
		Subject: "bob",
		Scopes:  []string{"orders:write"},
		Claims:  map[string]any{"realm_access": map[string]any{"roles": []any{"user"}}, "tenant": map[string]any{"id": "globex"}, "level": float64(3)},
	}
	tests := []struct {
		name       string
		policy     auth.Policy
		principal  *gateway.Principal
		wantStatus int
		wantScope  string // scope attribute in the challenge
	}{
		{"all scopes held", auth.Policy{Scopes: []string{"orders:read", "profile"}}, keycloak, 200, ""},
		{"one scope missing", auth.Policy{Scopes: []string{"orders:read", "orders:write"}}, keycloak, 403, "orders:read orders:write"},
		{"any scope held", auth.Policy{AnyScope: []string{"orders:write", "profile"}}, keycloak, 200, ""},
		{"any scope none held", auth.Policy{AnyScope: []string{"admin:all"}}, mapOnly, 403, "admin:all"},
		{"nested role via gjson", auth.Policy{Roles: []string{"admin"}, RolesClaim: "realm_access.roles"}, keycloak, 200, ""},
		{"nested role via map", auth.Policy{Roles: []string{"user"}, RolesClaim: "realm_access.roles"}, mapOnly, 200, ""},
		{"role missing", auth.Policy{Roles: []string{"admin"}, RolesClaim: "realm_access.roles"}, mapOnly, 403, ""},
		{"default roles claim absent", auth.Policy{Roles: []string{"admin"}}, keycloak, 403, ""},
		{"roles from groups", auth.Policy{Roles: []string{"eng"}, RolesClaim: "groups"}, keycloak, 200, ""},
		{"claim exact", auth.Policy{Claims: []auth.ClaimRule{{Path: "tenant.id", Values: []string{"acme"}}}}, keycloak, 200, ""},
		{"claim one-of", auth.Policy{Claims: []auth.ClaimRule{{Path: "tenant.tier", Values: []string{"silver", "gold"}}}}, keycloak, 200, ""},
		{"claim wrong value", auth.Policy{Claims: []auth.ClaimRule{{Path: "tenant.id", Values: []string{"acme"}}}}, mapOnly, 403, ""},
		{"claim present only", auth.Policy{Claims: []auth.ClaimRule{{Path: "tenant.id"}}}, mapOnly, 200, ""},
		{"claim absent", auth.Policy{Claims: []auth.ClaimRule{{Path: "tenant.region"}}}, mapOnly, 403, ""},
		{"numeric claim", auth.Policy{Claims: []auth.ClaimRule{{Path: "level", Values: []string{"3"}}}}, mapOnly, 200, ""},
		{"everything at once", auth.Policy{Scopes: []string{"profile"}, Roles: []string{"admin"}, RolesClaim: "realm_access.roles", Claims: []auth.ClaimRule{{Path: "tenant.id", Values: []string{"acme"}}}}, keycloak, 200, ""},
		{"no principal", auth.Policy{Scopes: []string{"profile"}}, nil, 401, ""},
		{"anonymous principal", auth.Policy{Scopes: []string{"profile"}}, &gateway.Principal{Issuer: auth.AnonymousIssuer}, 401, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := auth.Require(tc.policy)
			if err != nil {
				t.Fatal(err)
			}
			stages := []gateway.Stage{gateway.Authorize(req)}
			if tc.principal != nil {
				stages = append([]gateway.Stage{gateway.Authenticate(fixedPrincipal(tc.principal))}, stages...)
			}
			rec := httptest.NewRecorder()
			gateway.NewPipeline(okUpstream, stages...).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
			if rec.Code != tc.wantStatus {
				t.Fatalf("status = %d, want %d (%s)", rec.Code, tc.wantStatus, rec.Body.String())
			}
			ch := rec.Header().Get("WWW-Authenticate")
			if tc.wantStatus == 403 {
				if !strings.HasPrefix(ch, `Bearer error="insufficient_scope"`) {
					t.Errorf("WWW-Authenticate = %q", ch)
				}
				if tc.wantScope != "" && !strings.Contains(ch, `scope="`+tc.wantScope+`"`) {
					t.Errorf("WWW-Authenticate = %q, want scope %q", ch, tc.wantScope)
				}
				if rec.Header().Get("Content-Type") != gateway.ProblemContentType {
					t.Errorf("Content-Type = %q", rec.Header().Get("Content-Type"))
				}
			}
		})
	}
}

func TestRequireConfigErrors(t *testing.T) {
	tests := []struct {
		name   string
		policy auth.Policy
		want   string
	}{
		{"empty", auth.Policy{}, "empty policy"},
		{"scope with space", auth.Policy{Scopes: []string{"a b"}}, "Policy.Scopes[0]"},
		{"any scope empty", auth.Policy{AnyScope: []string{"x", ""}}, "Policy.AnyScope[1]"},
		{"empty role", auth.Policy{Roles: []string{""}}, "Policy.Roles[0]"},
		{"claim without path", auth.Policy{Claims: []auth.ClaimRule{{Values: []string{"x"}}}}, "Policy.Claims[0].Path"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := auth.Require(tc.policy)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one naming %q", err, tc.want)
			}
		})
	}
}

// TestClaimsReadOneWay: a signed claim set that repeats a name is read the
// same way by authentication, authorization and forwarding, so the caller
// checked is the caller forwarded. Scopes split on U+0020 only.
func TestClaimsReadOneWay(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	key, err := auth.HMACKey("k", secret)
	if err != nil {
		t.Fatal(err)
	}
	keys, _ := auth.StaticKeys(key)
	now := time.Unix(1_700_000_000, 0)
	jwtAuth, err := auth.JWT(auth.JWTConfig{Keys: keys, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	sign := func(payload string) string {
		head := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","kid":"k","typ":"JWT"}`))
		body := base64.RawURLEncoding.EncodeToString([]byte(payload))
		mac := hmac.New(sha256.New, secret)
		mac.Write([]byte(head + "." + body))
		return head + "." + body + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
	}
	admin, _ := auth.Require(auth.Policy{Roles: []string{"admin"}})
	nested, _ := auth.Require(auth.Policy{Claims: []auth.ClaimRule{{Path: `resource_access.my\.app.roles`, Values: []string{"editor"}}, {Path: "groups.1", Values: []string{"ops"}}}})
	scoped, _ := auth.Require(auth.Policy{Scopes: []string{"admin"}})
	fwd, _ := auth.Forward(auth.ForwardConfig{Headers: map[string]string{"X-User-Id": "sub"}})
	exp := fmt.Sprint(now.Add(time.Hour).Unix())
	tests := []struct {
		name     string
		payload  string
		authz    *auth.Requirement
		want     int
		wantUser string
	}{
		{"repeated sub and roles: the last counts everywhere",
			`{"sub":"admin","sub":"alice","roles":["admin"],"roles":["user"],"exp":` + exp + `}`, admin, 403, ""},
		{"repeated sub forwarded as checked",
			`{"sub":"admin","sub":"alice","exp":` + exp + `}`, nil, 204, "alice"},
		{"escaped dot and array index",
			`{"sub":"bob","resource_access":{"my.app":{"roles":["editor"]}},"groups":["eng","ops"],"exp":` + exp + `}`, nested, 204, "bob"},
		{"non-breaking space does not split a scope",
			`{"sub":"eve","scope":"profile\u00a0admin","exp":` + exp + `}`, scoped, 403, ""},
		{"plain spaces split scopes",
			`{"sub":"eve","scope":"profile admin","exp":` + exp + `}`, scoped, 204, "eve"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var user string
			up := gateway.HandlerFunc(func(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
				user = req.HTTP.Header.Get("X-User-Id")
				return nil, nil
			})
			stages := []gateway.Stage{gateway.Authenticate(jwtAuth)}
			if tc.authz != nil {
				stages = append(stages, gateway.Authorize(tc.authz))
			}
			stages = append(stages, gateway.TransformRequest(fwd))
			r := httptest.NewRequest("GET", "/", nil)
			r.Header.Set("Authorization", "Bearer "+sign(tc.payload))
			rec := httptest.NewRecorder()
			gateway.NewPipeline(up, stages...).ServeHTTP(rec, r)
			if rec.Code != tc.want {
				t.Fatalf("status = %d, want %d (%s)", rec.Code, tc.want, rec.Body.String())
			}
			if tc.want == 204 && user != tc.wantUser {
				t.Errorf("forwarded X-User-Id = %q, want %q", user, tc.wantUser)
			}
		})
	}
}
