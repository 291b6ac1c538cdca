package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/gatekit/gatekit/gateway"
)

// A Policy says what an authenticated caller must hold to use a route.
// Every non-empty part must be satisfied.
type Policy struct {
	// Scopes must all be among the principal's scopes (from the "scope" or
	// "scp" claim of a JWT, or an API key's scopes).
	Scopes []string
	// AnyScope: at least one of these must be among the principal's scopes.
	AnyScope []string
	// Roles: the principal must hold at least one of these roles, read from
	// the claim at RolesClaim.
	Roles []string
	// RolesClaim is the claim path holding the roles, such as
	// "realm_access.roles" (Keycloak) or "groups"; "" means "roles".
	RolesClaim string
	// Claims are further rules on claim values.
	Claims []ClaimRule
	// Realm is named in the WWW-Authenticate challenge of a refusal.
	Realm string
}

// A ClaimRule requires the claim at Path (a gjson path like "tenant.id" or
// "org.tier") to equal one of Values; for an array claim, one element must.
// With no Values the claim only has to be present.
//
// Values are compared as text: a number claim 1 matches "1" and a boolean
// claim true matches "true".
type ClaimRule struct {
	// Path is the claim path, in gjson syntax ("\." escapes a dot).
	Path string
	// Values are the allowed values; empty means any value.
	Values []string
}

// A Requirement is a compiled Policy; it is a gateway.Authorizer.
type Requirement struct {
	p Policy
}

var _ gateway.Authorizer = (*Requirement)(nil)

// Require checks p and returns the Requirement that enforces it. Use it
// after an authentication stage:
//
//	gateway.Authorize(req) // with req, err := auth.Require(auth.Policy{...})
func Require(p Policy) (*Requirement, error) {
	if len(p.Scopes) == 0 && len(p.AnyScope) == 0 && len(p.Roles) == 0 && len(p.Claims) == 0 {
		return nil, errors.New("auth: Policy: empty policy; name Scopes, AnyScope, Roles or Claims")
	}
	for field, scopes := range map[string][]string{"Scopes": p.Scopes, "AnyScope": p.AnyScope} {
		for i, s := range scopes {
			if s == "" || strings.ContainsAny(s, " \"\\") {
				return nil, fmt.Errorf("auth: Policy.%s[%d] %q: a scope is a non-empty token without spaces or quotes", field, i, s)
			}
		}
	}
	// The Requirement keeps its own copy: a caller changing its slices
	// later must not change what is enforced.
	p.Scopes, p.AnyScope, p.Roles = slices.Clone(p.Scopes), slices.Clone(p.AnyScope), slices.Clone(p.Roles)
	p.Claims = slices.Clone(p.Claims)
	for i := range p.Claims {
		p.Claims[i].Values = slices.Clone(p.Claims[i].Values)
	}
	if p.RolesClaim == "" {
		p.RolesClaim = "roles"
	}
	for i, r := range p.Roles {
		if r == "" {
			return nil, fmt.Errorf("auth: Policy.Roles[%d]: empty role", i)
		}
	}
	for i, c := range p.Claims {
		if c.Path == "" {
			return nil, fmt.Errorf("auth: Policy.Claims[%d].Path: required", i)
		}
	}
	return &Requirement{p: p}, nil
}

// Authorize admits req when its principal satisfies the policy, and refuses
// it with 403 and `WWW-Authenticate: Bearer error="insufficient_scope"`
// (RFC 6750 §3.1) otherwise; without a principal (no authentication stage
// ran) it refuses with 401.
func (r *Requirement) Authorize(ctx context.Context, req *gateway.Request) error {
	p := req.Principal
	if p == nil || p.Issuer == AnonymousIssuer {
		// RFC 6750 §3.1: a request without credentials gets 401, not 403.
		return &gateway.Error{Status: http.StatusUnauthorized, Detail: "the route requires an authenticated caller"}
	}
	for _, s := range r.p.Scopes {
		if !p.HasScope(s) {
			return r.refuse("missing scope "+s, r.p.Scopes)
		}
	}
	if len(r.p.AnyScope) > 0 && !slices.ContainsFunc(r.p.AnyScope, p.HasScope) {
		return r.refuse("needs one of the scopes "+strings.Join(r.p.AnyScope, " "), r.p.AnyScope)
	}
	if len(r.p.Roles) > 0 {
		held := claimValues(p, r.p.RolesClaim)
		if !slices.ContainsFunc(r.p.Roles, func(role string) bool { return slices.Contains(held, role) }) {
			return r.refuse("needs one of the roles "+strings.Join(r.p.Roles, ", "), nil)
		}
	}
	for _, c := range r.p.Claims {
		vals := claimValues(p, c.Path)
		if len(vals) == 0 {
			return r.refuse("missing claim "+c.Path, nil)
		}
		if len(c.Values) > 0 && !slices.ContainsFunc(c.Values, func(v string) bool { return slices.Contains(vals, v) }) {
			return r.refuse("claim "+c.Path+" does not have an allowed value", nil)
		}
	}
	return nil
}

func (r *Requirement) refuse(description string, scopes []string) error {
	e := bearerError(http.StatusForbidden, r.p.Realm, CodeInsufficientScope, description)
	if len(scopes) > 0 {
		// RFC 6750 §3: the scope attribute lists the scopes the resource needs.
		e.Header.Set("WWW-Authenticate", e.Header.Get("WWW-Authenticate")+`, scope="`+strings.Join(scopes, " ")+`"`)
	}
	return e
}
