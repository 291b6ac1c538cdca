package gateway

import (
	"context"
	"errors"
	"net/http"
	"slices"
)

// A Principal is the identity an Authenticator established for a request.
type Principal struct {
	// Subject identifies the caller: a JWT "sub", an API key's owner.
	Subject string
	// Issuer names who vouched for the subject: a JWT "iss", "apikey".
	Issuer string
	// Scopes are the permissions granted to the caller.
	Scopes []string
	// Claims are the remaining attributes, such as JWT claims or the plan of
	// an API key. Stages must treat the map as read-only.
	Claims map[string]any
	// ClaimsJSON is Claims as a JSON object, when the authenticator has it
	// at hand (a JWT payload, an introspection reply), so stages can read
	// nested claims from bytes (with gjson) without walking maps. Nil
	// otherwise. Read-only.
	ClaimsJSON []byte
}

// HasScope reports whether p was granted scope.
func (p *Principal) HasScope(scope string) bool {
	return p != nil && slices.Contains(p.Scopes, scope)
}

// Claim returns the claim called name.
func (p *Principal) Claim(name string) (any, bool) {
	if p == nil {
		return nil, false
	}
	v, ok := p.Claims[name]
	return v, ok
}

// ErrNotResponsible is returned by an Authenticator that finds no credentials
// of its kind on the request, so that the next one may try.
var ErrNotResponsible = errors.New("gateway: authenticator not responsible for this request")

// An Authenticator establishes who sent a request. It returns
// ErrNotResponsible when the request carries no credentials it understands,
// and an *Error (usually 401) when it carries bad ones.
type Authenticator interface {
	Authenticate(ctx context.Context, req *Request) (*Principal, error)
}

// AuthenticatorFunc adapts a function to an Authenticator.
type AuthenticatorFunc func(ctx context.Context, req *Request) (*Principal, error)

// Authenticate calls f(ctx, req).
func (f AuthenticatorFunc) Authenticate(ctx context.Context, req *Request) (*Principal, error) {
	return f(ctx, req)
}

// A Challenger is an Authenticator that names how to authenticate, as a
// WWW-Authenticate challenge such as `Bearer realm="api"` (RFC 9110 §11.6.1).
type Challenger interface {
	Challenge() string
}

// Authenticate returns a Stage that asks each authenticator in turn and sets
// req.Principal from the first one responsible. If every one returns
// ErrNotResponsible, the request is refused with 401 and a WWW-Authenticate
// field holding the challenge of each authenticator that is a Challenger.
func Authenticate(authenticators ...Authenticator) Stage {
	var challenges []string
	for _, a := range authenticators {
		if c, ok := a.(Challenger); ok {
			if ch := c.Challenge(); ch != "" {
				challenges = append(challenges, ch)
			}
		}
	}
	return func(next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, req *Request) (*Response, error) {
			for _, a := range authenticators {
				p, err := a.Authenticate(ctx, req)
				if errors.Is(err, ErrNotResponsible) {
					continue
				}
				if err != nil {
					return nil, err
				}
				if p == nil {
					return nil, &Error{Status: http.StatusUnauthorized, Detail: "credentials were not accepted"}
				}
				req.Principal = p
				return next.Serve(ctx, req)
			}
			e := &Error{Status: http.StatusUnauthorized, Detail: "the request has no credentials this route accepts"}
			if len(challenges) > 0 {
				e.Header = http.Header{"Www-Authenticate": challenges}
			}
			return nil, e
		})
	}
}

// An Authorizer decides whether the authenticated request may proceed,
// returning an *Error (usually 403) when it may not.
type Authorizer interface {
	Authorize(ctx context.Context, req *Request) error
}

// AuthorizerFunc adapts a function to an Authorizer.
type AuthorizerFunc func(ctx context.Context, req *Request) error

// Authorize calls f(ctx, req).
func (f AuthorizerFunc) Authorize(ctx context.Context, req *Request) error { return f(ctx, req) }

// Authorize returns a Stage that runs a before the rest of the pipeline.
func Authorize(a Authorizer) Stage {
	return func(next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, req *Request) (*Response, error) {
			if err := a.Authorize(ctx, req); err != nil {
				return nil, err
			}
			return next.Serve(ctx, req)
		})
	}
}

// A Validator checks a request and returns an *Error (400, 413, 415, 422)
// describing what is wrong with it.
type Validator interface {
	Validate(ctx context.Context, req *Request) error
}

// ValidatorFunc adapts a function to a Validator.
type ValidatorFunc func(ctx context.Context, req *Request) error

// Validate calls f(ctx, req).
func (f ValidatorFunc) Validate(ctx context.Context, req *Request) error { return f(ctx, req) }

// Validate returns a Stage that runs v before the rest of the pipeline.
func Validate(v Validator) Stage {
	return func(next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, req *Request) (*Response, error) {
			if err := v.Validate(ctx, req); err != nil {
				return nil, err
			}
			return next.Serve(ctx, req)
		})
	}
}

// A RequestTransformer reshapes a request on its way to the upstream: its
// headers, path, query or body (through Request.Body and Request.SetBody).
type RequestTransformer interface {
	TransformRequest(ctx context.Context, req *Request) error
}

// A ResponseTransformer reshapes the reply on its way to the client: its
// status, headers or body (through Response.Bytes and Response.SetBytes).
type ResponseTransformer interface {
	TransformResponse(ctx context.Context, req *Request, resp *Response) error
}

// A Transformer works on both the request and the reply.
type Transformer interface {
	RequestTransformer
	ResponseTransformer
}

// TransformRequest returns a Stage that runs t on the request.
func TransformRequest(t RequestTransformer) Stage {
	return func(next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, req *Request) (*Response, error) {
			if err := t.TransformRequest(ctx, req); err != nil {
				return nil, err
			}
			return next.Serve(ctx, req)
		})
	}
}

// TransformResponse returns a Stage that runs t on every reply the rest of
// the pipeline returns. Errors are passed through untouched.
func TransformResponse(t ResponseTransformer) Stage {
	return func(next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, req *Request) (*Response, error) {
			resp, err := next.Serve(ctx, req)
			if err != nil || resp == nil {
				return resp, err
			}
			if err := t.TransformResponse(ctx, req, resp); err != nil {
				resp.Close()
				return nil, err
			}
			return resp, nil
		})
	}
}

// Transform returns a Stage that runs t on the request and on the reply.
func Transform(t Transformer) Stage {
	req, resp := TransformRequest(t), TransformResponse(t)
	return func(next Handler) Handler { return req(resp(next)) }
}

// A Limiter admits or refuses a request: rate limits, quotas, concurrency
// limits. A refusal is an *Error (429 or 503, with Retry-After). On admission
// it may return a done function, which the stage calls with the reply (nil
// when the rest of the pipeline failed) so the limiter can add headers such as
// RateLimit, or release a slot. A limiter that must hold its slot until the
// body has been sent wraps resp.Body.
type Limiter interface {
	Limit(ctx context.Context, req *Request) (done func(resp *Response), err error)
}

// LimiterFunc adapts a function to a Limiter.
type LimiterFunc func(ctx context.Context, req *Request) (func(*Response), error)

// Limit calls f(ctx, req).
func (f LimiterFunc) Limit(ctx context.Context, req *Request) (func(*Response), error) {
	return f(ctx, req)
}

// Limit returns a Stage that asks l before the rest of the pipeline runs.
func Limit(l Limiter) Stage {
	return func(next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, req *Request) (*Response, error) {
			done, err := l.Limit(ctx, req)
			if err != nil {
				return nil, err
			}
			if done == nil {
				return next.Serve(ctx, req)
			}
			return serveThenDone(ctx, req, next, done)
		})
	}
}

// serveThenDone calls done even when next panics, so a limiter's slot is
// never leaked.
func serveThenDone(ctx context.Context, req *Request, next Handler, done func(*Response)) (resp *Response, err error) {
	defer func() { done(resp) }()
	return next.Serve(ctx, req)
}
