package auth

import (
	"context"
	"errors"
	"net/http"

	"github.com/gatekit/gatekit/gateway"
)

// Several authenticators on one route: gateway.Authenticate(a, b) accepts
// the first that recognises its credentials (a JWT or an API key). All
// requires every one to succeed (a client certificate and a JWT).
// Anonymous, listed last, makes a route's anonymous access explicit.

// All returns an Authenticator that requires every one of authenticators to
// accept the request. The principal is the first one's; the others' subjects
// are kept in its claims under "also" (a list of subject strings). If any
// finds no credentials of its kind, the request is refused with 401.
func All(authenticators ...gateway.Authenticator) gateway.Authenticator {
	return allOf(authenticators)
}

type allOf []gateway.Authenticator

func (as allOf) Authenticate(ctx context.Context, req *gateway.Request) (*gateway.Principal, error) {
	var first *gateway.Principal
	var also []any
	for _, a := range as {
		p, err := a.Authenticate(ctx, req)
		if errors.Is(err, gateway.ErrNotResponsible) || (err == nil && p == nil) {
			e := &gateway.Error{Status: http.StatusUnauthorized, Detail: "the route requires several credentials and one is missing"}
			if c, ok := a.(gateway.Challenger); ok && c.Challenge() != "" {
				e = e.WithHeader("WWW-Authenticate", c.Challenge())
			}
			return nil, e
		}
		if err != nil {
			return nil, err
		}
		if first == nil {
			first = p
		} else {
			also = append(also, p.Subject)
		}
	}
	if first == nil {
		return nil, gateway.ErrNotResponsible
	}
	if len(also) > 0 {
		merged := *first
		merged.Claims = make(map[string]any, len(first.Claims)+1)
		for k, v := range first.Claims {
			merged.Claims[k] = v
		}
		merged.Claims["also"] = also
		merged.ClaimsJSON = nil // no longer matches Claims
		first = &merged
	}
	return first, nil
}

// Challenge returns the challenge of the first authenticator that has one.
func (as allOf) Challenge() string {
	for _, a := range as {
		if c, ok := a.(gateway.Challenger); ok && c.Challenge() != "" {
			return c.Challenge()
		}
	}
	return ""
}

// AnonymousIssuer is the Issuer of the principal Anonymous returns.
const AnonymousIssuer = "anonymous"

// Anonymous returns an Authenticator that accepts every request as an
// anonymous caller (empty Subject, Issuer AnonymousIssuer). List it last,
// gateway.Authenticate(jwt, auth.Anonymous()), to make a route open to
// callers without credentials while still checking any credentials sent: a
// bad token is still refused, since its authenticator answers 401 rather
// than stepping aside.
func Anonymous() gateway.Authenticator { return anonymous{} }

type anonymous struct{}

func (anonymous) Authenticate(ctx context.Context, req *gateway.Request) (*gateway.Principal, error) {
	return &gateway.Principal{Issuer: AnonymousIssuer}, nil
}
