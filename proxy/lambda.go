package proxy

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gatekit/gatekit/gateway"
)

// A LambdaVersion is a payload format version of API Gateway's Lambda proxy
// integration: the shape of the event a function receives and of the
// response it returns.
type LambdaVersion string

// The payload format versions of the Lambda proxy integration of API
// Gateway's HTTP APIs.
const (
	// LambdaV2 is format 2.0: headers and query parameters with repeated
	// values joined by commas, cookies in a field of their own, and
	// responses whose shape API Gateway may infer.
	LambdaV2 LambdaVersion = "2.0"
	// LambdaV1 is format 1.0, the format of REST APIs: single- and
	// multi-value headers and query parameters side by side.
	LambdaV1 LambdaVersion = "1.0"
)

// LambdaConfig configures a Lambda-style function upstream. Every zero field
// means the documented default.
type LambdaConfig struct {
	// Name identifies the function in logged errors; "" is allowed.
	Name string

	// Version is the payload format of the events and responses. ""
	// means the version of a handler made by LambdaV1Handler or
	// LambdaV2Handler, and LambdaV2 for any other handler.
	Version LambdaVersion

	// Timeout bounds one call of the function, as FunctionConfig.Timeout
	// does: 504 past it, 0 means DefaultTimeout, negative means no limit.
	Timeout time.Duration

	// MaxBodyBytes lowers the route's request body limit for this
	// upstream (a Lambda function accepts 6 MB at most); a larger body is
	// refused with 413, even when a stage has read it already, under the
	// route's limit. 0 means the route's limit, which this value never
	// raises.
	MaxBodyBytes int64

	// Stage is the requestContext.stage of events; "" means "$default".
	Stage string

	// StageVariables are the stageVariables of events; nil means none.
	StageVariables map[string]string
}

// A LambdaHandler is a function in the Lambda style: it receives an event as
// JSON and returns its result as JSON.
//
// Its method set is that of the Handler interface of
// github.com/aws/aws-lambda-go/lambda, so the value lambda.NewHandler makes
// of an existing Lambda handler function serves as one without change.
type LambdaHandler interface {
	Invoke(ctx context.Context, payload []byte) ([]byte, error)
}

// LambdaHandlerFunc adapts an ordinary function to a LambdaHandler.
type LambdaHandlerFunc func(ctx context.Context, payload []byte) ([]byte, error)

// Invoke calls f(ctx, payload).
func (f LambdaHandlerFunc) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	return f(ctx, payload)
}

// LambdaV2Handler returns a LambdaHandler that calls fn with events of
// payload format 2.0. The body of a handler written for
// github.com/aws/aws-lambda-go with events.APIGatewayV2HTTPRequest and
// events.APIGatewayV2HTTPResponse runs unchanged with these types, whose Go
// and JSON field names are the same. Given to Lambda, the handler is called
// with the event directly, without a round trip through JSON.
func LambdaV2Handler(fn func(context.Context, APIGatewayV2HTTPRequest) (APIGatewayV2HTTPResponse, error)) LambdaHandler {
	return lambdaV2Func(fn)
}

// LambdaV1Handler returns a LambdaHandler that calls fn with events of
// payload format 1.0, as LambdaV2Handler does for format 2.0 (compare
// events.APIGatewayProxyRequest and events.APIGatewayProxyResponse of
// github.com/aws/aws-lambda-go).
func LambdaV1Handler(fn func(context.Context, APIGatewayProxyRequest) (APIGatewayProxyResponse, error)) LambdaHandler {
	return lambdaV1Func(fn)
}

type lambdaV2Func func(context.Context, APIGatewayV2HTTPRequest) (APIGatewayV2HTTPResponse, error)

func (f lambdaV2Func) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	var ev APIGatewayV2HTTPRequest
	if err := json.Unmarshal(payload, &ev); err != nil {
		return nil, err
	}
	resp, err := f(ctx, ev)
	if err != nil {
		return nil, err
	}
	return json.Marshal(&resp)
}

type lambdaV1Func func(context.Context, APIGatewayProxyRequest) (APIGatewayProxyResponse, error)

func (f lambdaV1Func) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	var ev APIGatewayProxyRequest
	if err := json.Unmarshal(payload, &ev); err != nil {
		return nil, err
	}
	resp, err := f(ctx, ev)
	if err != nil {
		return nil, err
	}
	return json.Marshal(&resp)
}

// A LambdaUpstream serves requests with an in-process function written for
// AWS Lambda behind API Gateway's Lambda proxy integration: each request
// becomes an event in the payload format of an HTTP API (2.0 or 1.0), and
// the function's response becomes the reply, as API Gateway would make
// them. It is safe for concurrent use if the function is. Build it with
// Lambda.
//
// The event is made from the request as the stages left it:
//   - Header names are lower case. The header is the one an HTTPUpstream
//     would send: hop-by-hop fields are removed and X-Forwarded-For,
//     X-Forwarded-Host, X-Forwarded-Proto and Forwarded are set, a
//     client's own values kept only from a trusted proxy. "host" holds the
//     request's host, and "content-length" the length of a non-empty body.
//     Format 2.0 joins repeated fields with commas and moves Cookie fields
//     into cookies, one entry per cookie; format 1.0 has the last value of
//     each field in headers and all of them in multiValueHeaders.
//   - Query parameters likewise: joined with commas (2.0), or last and all
//     (1.0). The raw path and query are in rawPath and rawQueryString
//     (2.0); the decoded path is in requestContext.http.path (2.0) and
//     path (1.0).
//   - The route key is the method and pattern of the gateway route that
//     matched, such as "GET /users/{id}" ("ANY" for a route that names no
//     method or several), or "$default" outside a Router; 1.0's resource
//     is the pattern. pathParameters are the route's path parameters.
//   - requestContext.requestId is the request's X-Request-Id, or a random
//     ID when it has none; sourceIp is Request.ClientIP; time and
//     timeEpoch are the time of the call. accountId and apiId are empty.
//   - An authenticated Principal appears as a JWT authorizer's would:
//     authorizer.jwt (2.0) or authorizer (1.0) holds claims and scopes.
//     Claims are strings, as API Gateway sends them: a claim that is not a
//     string is written as JSON text ("42", `["a","b"]`); the Principal's
//     Subject and Issuer stand in for missing "sub" and "iss" claims.
//   - The body, read up to the route's limit (or MaxBodyBytes), is sent as
//     text when it is valid UTF-8, and base64-encoded with isBase64Encoded
//     set otherwise, whatever its Content-Type. API Gateway decides by
//     media type instead, so a handler must check isBase64Encoded, as it
//     must on AWS.
//
// The response is read as API Gateway reads it:
//   - statusCode is the status, which must be 200 to 599; headers are set
//     on the reply, and in format 1.0 multiValueHeaders too (for a field in
//     both, multiValueHeaders wins). In format 2.0 each entry of cookies
//     becomes a Set-Cookie field, and multiValueHeaders is ignored, as API
//     Gateway ignores it. Hop-by-hop fields and Content-Length are dropped.
//   - A body with isBase64Encoded set is decoded from base64.
//   - In format 2.0 a response that is valid JSON but not an object with a
//     statusCode is itself the body of a 200 reply with Content-Type
//     application/json; a JSON string stands for its text ("Hello" is
//     sent as Hello).
//   - Anything else (not JSON, a 1.0 response without statusCode, a status
//     out of range, bad base64, a field name or value that HTTP does not
//     allow) answers 502.
//
// Errors and panics of the function, and timeouts, are handled as by a
// FunctionUpstream: a *gateway.Error passes through, other failures answer
// 502 and an overrun 504, without internal details. The function never
// sees the *gateway.Request, so one left running after a timeout does no
// harm to the gateway.
type LambdaUpstream struct {
	h         LambdaHandler
	v2        lambdaV2Func // h, when it was made by LambdaV2Handler
	v1        lambdaV1Func // h, when it was made by LambdaV1Handler
	version   LambdaVersion
	name      string
	timeout   time.Duration // 0: none
	maxBody   int64         // 0: the route's
	stage     string
	stageVars map[string]string
}

var _ gateway.Handler = (*LambdaUpstream)(nil)

// Lambda checks cfg and returns an upstream that serves each request by
// invoking h with an API Gateway proxy event. h may be made by
// LambdaV2Handler or LambdaV1Handler, a LambdaHandlerFunc, or an
// aws-lambda-go lambda.Handler.
func Lambda(h LambdaHandler, cfg LambdaConfig) (*LambdaUpstream, error) {
	u := &LambdaUpstream{
		h:       h,
		version: cfg.Version,
		name:    cfg.Name,
		timeout: fnTimeout(cfg.Timeout),
		maxBody: cfg.MaxBodyBytes,
		stage:   cfg.Stage,
	}
	var typed LambdaVersion
	switch f := h.(type) {
	case nil:
		return nil, fmt.Errorf("proxy: Lambda %q: the handler is nil", cfg.Name)
	case LambdaHandlerFunc:
		if f == nil {
			return nil, fmt.Errorf("proxy: Lambda %q: the handler is nil", cfg.Name)
		}
	case lambdaV2Func:
		if f == nil {
			return nil, fmt.Errorf("proxy: Lambda %q: the handler is nil", cfg.Name)
		}
		u.v2, typed = f, LambdaV2
	case lambdaV1Func:
		if f == nil {
			return nil, fmt.Errorf("proxy: Lambda %q: the handler is nil", cfg.Name)
		}
		u.v1, typed = f, LambdaV1
	}
	switch {
	case u.version == "" && typed != "":
		u.version = typed
	case u.version == "":
		u.version = LambdaV2
	case u.version != LambdaV2 && u.version != LambdaV1:
		return nil, fmt.Errorf("proxy: LambdaConfig.Version %q: must be %q or %q", cfg.Version, LambdaV2, LambdaV1)
	case typed != "" && typed != u.version:
		return nil, fmt.Errorf("proxy: Lambda %q: LambdaConfig.Version is %q but the handler takes events of version %q", cfg.Name, cfg.Version, typed)
	}
	if cfg.MaxBodyBytes < 0 {
		return nil, fmt.Errorf("proxy: LambdaConfig.MaxBodyBytes %d: must not be negative", cfg.MaxBodyBytes)
	}
	if u.stage == "" {
		u.stage = "$default"
	}
	if len(cfg.StageVariables) > 0 {
		u.stageVars = maps.Clone(cfg.StageVariables)
	}
	return u, nil
}

// Serve reads req's body, invokes the function with the event made from
// req and returns the reply made from its response. It does not modify req
// except to buffer its body. An error is a *gateway.Error (the function's
// own, 400, 413, 502 or 504), or the context's error when the client has
// gone.
func (u *LambdaUpstream) Serve(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
	ctx, called := req.StartUpstream(ctx, "lambda", u.name, nil)
	resp, err := u.serve(ctx, req)
	called(callStatus(resp, err), err)
	return resp, err
}

func (u *LambdaUpstream) serve(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
	if u.maxBody > 0 {
		req.LimitBody(u.maxBody)
	}
	body, err := req.Body()
	if err != nil {
		return nil, err
	}
	if u.maxBody > 0 && int64(len(body)) > u.maxBody {
		// A stage read the body before LimitBody could cut it off.
		return nil, gateway.Errorf(http.StatusRequestEntityTooLarge, "the request body is larger than the %d bytes this route accepts", u.maxBody)
	}
	now := time.Now()
	if u.version == LambdaV1 {
		ev := u.eventV1(req, body, now)
		if u.v1 != nil {
			out, err := fnRun(ctx, u.timeout, func(ctx context.Context) (APIGatewayProxyResponse, error) {
				return u.v1(ctx, ev)
			}, nil)
			if err != nil {
				return nil, fnFailure(ctx, u.name, err)
			}
			return u.reply(out.StatusCode, out.Headers, out.MultiValueHeaders, nil, out.Body, out.IsBase64Encoded)
		}
		out, err := u.invoke(ctx, &ev)
		if err != nil {
			return nil, err
		}
		return u.replyV1(out)
	}
	ev := u.eventV2(req, body, now)
	if u.v2 != nil {
		out, err := fnRun(ctx, u.timeout, func(ctx context.Context) (APIGatewayV2HTTPResponse, error) {
			return u.v2(ctx, ev)
		}, nil)
		if err != nil {
			return nil, fnFailure(ctx, u.name, err)
		}
		return u.reply(out.StatusCode, out.Headers, nil, out.Cookies, out.Body, out.IsBase64Encoded)
	}
	out, err := u.invoke(ctx, &ev)
	if err != nil {
		return nil, err
	}
	return u.replyV2(out)
}

// invoke encodes ev and calls the handler with it.
func (u *LambdaUpstream) invoke(ctx context.Context, ev any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // "a=1&b=2" as it is, not "a=1\u0026b=2"
	if err := enc.Encode(ev); err != nil {
		return nil, fmt.Errorf("proxy: Lambda %q: encode event: %w", u.name, err)
	}
	payload := buf.Bytes()
	out, err := fnRun(ctx, u.timeout, func(ctx context.Context) ([]byte, error) {
		return u.h.Invoke(ctx, payload)
	}, nil)
	if err != nil {
		return nil, fnFailure(ctx, u.name, err)
	}
	return out, nil
}

// lambdaTimeLayout is the layout of requestContext.time (2.0) and
// requestContext.requestTime (1.0), as in "12/Mar/2020:19:03:58 +0000".
const lambdaTimeLayout = "02/Jan/2006:15:04:05 -0700"

// eventV2 makes the format 2.0 event of req.
func (u *LambdaUpstream) eventV2(req *gateway.Request, body []byte, now time.Time) APIGatewayV2HTTPRequest {
	in := req.HTTP
	h := lambdaHeader(req, body)
	ev := APIGatewayV2HTTPRequest{
		Version:        string(LambdaV2),
		RouteKey:       lambdaRouteKey(req),
		RawPath:        in.URL.EscapedPath(),
		RawQueryString: in.URL.RawQuery,
		Headers:        make(map[string]string, len(h)),
		PathParameters: lambdaParams(req),
		StageVariables: maps.Clone(u.stageVars),
	}
	for k, vs := range h {
		if k == "Cookie" {
			ev.Cookies = lambdaCookies(vs)
			continue
		}
		ev.Headers[lambdaLower(k)] = strings.Join(vs, ",")
	}
	if q := lambdaQuery(in.URL.RawQuery); len(q) > 0 {
		ev.QueryStringParameters = make(map[string]string, len(q))
		for k, vs := range q {
			ev.QueryStringParameters[k] = strings.Join(vs, ",")
		}
	}
	host := lambdaHostname(in.Host)
	ev.RequestContext = APIGatewayV2HTTPRequestContext{
		RouteKey:     ev.RouteKey,
		Stage:        u.stage,
		RequestID:    lambdaRequestID(in.Header),
		DomainName:   host,
		DomainPrefix: lambdaDomainPrefix(host),
		Time:         now.UTC().Format(lambdaTimeLayout),
		TimeEpoch:    now.UnixMilli(),
		HTTP: APIGatewayV2HTTPRequestContextHTTPDescription{
			Method:    in.Method,
			Path:      in.URL.Path,
			Protocol:  in.Proto,
			SourceIP:  lambdaSourceIP(req),
			UserAgent: in.UserAgent(),
		},
	}
	if p := req.Principal; p != nil {
		ev.RequestContext.Authorizer = &APIGatewayV2HTTPRequestContextAuthorizerDescription{
			JWT: &APIGatewayV2HTTPRequestContextAuthorizerJWTDescription{
				Claims: lambdaClaims(p),
				Scopes: p.Scopes,
			},
		}
	}
	ev.Body, ev.IsBase64Encoded = lambdaBody(body)
	return ev
}

// eventV1 makes the format 1.0 event of req.
func (u *LambdaUpstream) eventV1(req *gateway.Request, body []byte, now time.Time) APIGatewayProxyRequest {
	in := req.HTTP
	h := lambdaHeader(req, body)
	resource := lambdaPattern(req)
	if resource == "" {
		resource = in.URL.Path
	}
	ev := APIGatewayProxyRequest{
		Resource:          resource,
		Path:              in.URL.Path,
		HTTPMethod:        in.Method,
		Headers:           make(map[string]string, len(h)),
		MultiValueHeaders: make(map[string][]string, len(h)),
		PathParameters:    lambdaParams(req),
		StageVariables:    maps.Clone(u.stageVars),
	}
	for k, vs := range h {
		if len(vs) == 0 {
			continue
		}
		k = lambdaLower(k)
		ev.Headers[k] = vs[len(vs)-1]
		ev.MultiValueHeaders[k] = vs
	}
	if q := lambdaQuery(in.URL.RawQuery); len(q) > 0 {
		ev.QueryStringParameters = make(map[string]string, len(q))
		for k, vs := range q {
			ev.QueryStringParameters[k] = vs[len(vs)-1]
		}
		ev.MultiValueQueryStringParameters = q
	}
	host := lambdaHostname(in.Host)
	id := lambdaRequestID(in.Header)
	ev.RequestContext = APIGatewayProxyRequestContext{
		Stage:             u.stage,
		DomainName:        host,
		DomainPrefix:      lambdaDomainPrefix(host),
		RequestID:         id,
		ExtendedRequestID: id,
		Protocol:          in.Proto,
		Identity: APIGatewayRequestIdentity{
			SourceIP:  lambdaSourceIP(req),
			UserAgent: in.UserAgent(),
		},
		ResourcePath:     resource,
		Path:             in.URL.Path,
		HTTPMethod:       in.Method,
		RequestTime:      now.UTC().Format(lambdaTimeLayout),
		RequestTimeEpoch: now.UnixMilli(),
	}
	if p := req.Principal; p != nil {
		ev.RequestContext.Authorizer = map[string]any{
			"claims": lambdaClaims(p),
			"scopes": p.Scopes,
		}
	}
	ev.Body, ev.IsBase64Encoded = lambdaBody(body)
	return ev
}

// lambdaHeader returns the header of the event of req: the one an
// HTTPUpstream would send, with Host and the body's length.
func lambdaHeader(req *gateway.Request, body []byte) http.Header {
	in := req.HTTP
	h := outboundHeader(in, req.FromTrustedProxy(), false)
	delete(h, "Te") // "TE: trailers" concerns a connection, and there is none
	if _, ok := in.Header["User-Agent"]; !ok {
		delete(h, "User-Agent")
	}
	if in.Host != "" {
		h["Host"] = []string{in.Host}
	}
	delete(h, "Content-Length")
	if len(body) > 0 {
		h["Content-Length"] = []string{strconv.Itoa(len(body))}
	}
	return h
}

// lambdaLowerNames are the lower-case forms of common field names, so that
// most fields of an event cost no allocation for their name. Read-only.
var lambdaLowerNames = func() map[string]string {
	names := []string{
		"Accept", "Accept-Encoding", "Accept-Language", "Authorization", "Cache-Control",
		"Content-Encoding", "Content-Length", "Content-Type", "Forwarded", "Host",
		"If-Match", "If-Modified-Since", "If-None-Match", "Origin", "Referer",
		"Traceparent", "Tracestate", "User-Agent", "X-Api-Key", "X-Forwarded-For",
		"X-Forwarded-Host", "X-Forwarded-Proto", "X-Request-Id",
	}
	m := make(map[string]string, len(names))
	for _, n := range names {
		m[n] = strings.ToLower(n)
	}
	return m
}()

// lambdaLower returns the field name k in lower case, as API Gateway sends
// field names.
func lambdaLower(k string) string {
	if l, ok := lambdaLowerNames[k]; ok {
		return l
	}
	return strings.ToLower(k)
}

// lambdaCookies splits Cookie field values into single cookies.
func lambdaCookies(vs []string) []string {
	var cookies []string
	for _, v := range vs {
		for v != "" {
			var c string
			c, v, _ = strings.Cut(v, ";")
			if c = strings.TrimSpace(c); c != "" {
				cookies = append(cookies, c)
			}
		}
	}
	return cookies
}

// lambdaQuery parses a query. Parameters that do not parse (such as ones
// with a bad escape) are left out, as url.ParseQuery leaves them.
func lambdaQuery(raw string) url.Values {
	if raw == "" {
		return nil
	}
	q, _ := url.ParseQuery(raw)
	return q
}

func lambdaParams(req *gateway.Request) map[string]string {
	ps := req.Params()
	if len(ps) == 0 {
		return nil
	}
	m := make(map[string]string, len(ps))
	for _, p := range ps {
		m[p.Name] = p.Value
	}
	return m
}

// lambdaPattern returns the path pattern of the route that matched req, or
// "".
func lambdaPattern(req *gateway.Request) string {
	r := req.Route()
	if r == nil {
		return ""
	}
	if r.Path != "" {
		return r.Path
	}
	return r.PathPrefix
}

// lambdaRouteKey returns the route key of req: "GET /users/{id}", "ANY
// /files" for a route that serves more than one method, or "$default".
func lambdaRouteKey(req *gateway.Request) string {
	pattern := lambdaPattern(req)
	if pattern == "" {
		return "$default"
	}
	method := "ANY"
	if ms := req.Route().Methods; len(ms) == 1 {
		method = ms[0]
	}
	return method + " " + pattern
}

// lambdaRequestID returns the request's X-Request-Id, or a new random ID.
func lambdaRequestID(h http.Header) string {
	if vs := h["X-Request-Id"]; len(vs) > 0 && vs[0] != "" {
		return vs[0]
	}
	return rand.Text()
}

// lambdaHostname returns host without its port and IPv6 brackets.
func lambdaHostname(host string) string {
	if i := strings.LastIndexByte(host, ':'); i >= 0 && i > strings.LastIndexByte(host, ']') {
		host = host[:i]
	}
	return strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
}

// lambdaDomainPrefix returns the first label of a domain name.
func lambdaDomainPrefix(host string) string {
	prefix, _, _ := strings.Cut(host, ".")
	return prefix
}

func lambdaSourceIP(req *gateway.Request) string {
	if ip := req.ClientIP(); ip.IsValid() {
		return ip.String()
	}
	return ""
}

// lambdaClaims returns p's claims as a JWT authorizer presents them: every
// value a string.
func lambdaClaims(p *gateway.Principal) map[string]string {
	claims := p.Claims
	if claims == nil && len(p.ClaimsJSON) > 0 {
		_ = json.Unmarshal(p.ClaimsJSON, &claims) // best effort: the claims are the authenticator's
	}
	m := make(map[string]string, len(claims)+2)
	for k, v := range claims {
		switch v := v.(type) {
		case nil:
		case string:
			m[k] = v
		default:
			if b, err := json.Marshal(v); err == nil {
				m[k] = string(b)
			}
		}
	}
	if _, ok := m["sub"]; !ok && p.Subject != "" {
		m["sub"] = p.Subject
	}
	if _, ok := m["iss"]; !ok && p.Issuer != "" {
		m["iss"] = p.Issuer
	}
	return m
}

// lambdaBody returns the body of an event and whether it is base64-encoded:
// text that is valid UTF-8 goes as it is; anything else would not survive
// a JSON string.
func lambdaBody(body []byte) (string, bool) {
	if utf8.Valid(body) {
		return string(body), false
	}
	return base64.StdEncoding.EncodeToString(body), true
}

// lambdaV2Reply is a format 2.0 response; a nil StatusCode means the
// response is not one but a body.
type lambdaV2Reply struct {
	StatusCode      *int              `json:"statusCode"`
	Headers         map[string]string `json:"headers"`
	Cookies         []string          `json:"cookies"`
	Body            string            `json:"body"`
	IsBase64Encoded bool              `json:"isBase64Encoded"`
}

// lambdaV1Reply is a format 1.0 response.
type lambdaV1Reply struct {
	StatusCode        *int                `json:"statusCode"`
	Headers           map[string]string   `json:"headers"`
	MultiValueHeaders map[string][]string `json:"multiValueHeaders"`
	Body              string              `json:"body"`
	IsBase64Encoded   bool                `json:"isBase64Encoded"`
}

// replyV2 makes the reply from a format 2.0 response.
func (u *LambdaUpstream) replyV2(out []byte) (*gateway.Response, error) {
	out = bytes.TrimSpace(out)
	if len(out) > 0 && out[0] == '{' {
		var r lambdaV2Reply
		err := json.Unmarshal(out, &r)
		if err == nil && r.StatusCode != nil {
			return u.reply(*r.StatusCode, r.Headers, nil, r.Cookies, r.Body, r.IsBase64Encoded)
		}
		if _, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
			// Valid JSON (it has been scanned whole) of the wrong shape:
			// a body if it has no statusCode at all.
			var probe struct {
				StatusCode json.RawMessage `json:"statusCode"`
			}
			if json.Unmarshal(out, &probe) == nil && probe.StatusCode == nil {
				err = nil
			}
		}
		if err != nil {
			return nil, u.invalid(err)
		}
	} else if !json.Valid(out) {
		return nil, u.invalid(errors.New("the response is not JSON"))
	}
	// Valid JSON that is not a response: API Gateway takes it for the body.
	body := out
	if out[0] == '"' {
		var s string
		if err := json.Unmarshal(out, &s); err != nil {
			return nil, u.invalid(err)
		}
		body = []byte(s)
	}
	return gateway.NewResponse(http.StatusOK, http.Header{"Content-Type": {"application/json"}}, body), nil
}

// replyV1 makes the reply from a format 1.0 response.
func (u *LambdaUpstream) replyV1(out []byte) (*gateway.Response, error) {
	var r lambdaV1Reply
	if err := json.Unmarshal(out, &r); err != nil {
		return nil, u.invalid(err)
	}
	if r.StatusCode == nil {
		return nil, u.invalid(errors.New("the response has no statusCode"))
	}
	return u.reply(*r.StatusCode, r.Headers, r.MultiValueHeaders, nil, r.Body, r.IsBase64Encoded)
}

// reply makes the reply from the fields of a response.
func (u *LambdaUpstream) reply(status int, headers map[string]string, multi map[string][]string, cookies []string, body string, b64 bool) (*gateway.Response, error) {
	if status < 200 || status > 599 {
		return nil, u.invalid(fmt.Errorf("statusCode %d is not 200 to 599", status))
	}
	h := make(http.Header, len(headers)+len(multi)+1)
	for k, v := range headers {
		if !gateway.IsToken(k) || !lambdaValidValue(v) {
			return nil, u.invalid(fmt.Errorf("header field %q: invalid name or value", k))
		}
		k = http.CanonicalHeaderKey(k)
		h[k] = append(h[k], v)
	}
	if len(multi) > 0 {
		// A field in both takes its values from multiValueHeaders.
		for k := range multi {
			delete(h, http.CanonicalHeaderKey(k))
		}
		for k, vs := range multi {
			if !gateway.IsToken(k) {
				return nil, u.invalid(fmt.Errorf("header field %q: invalid name", k))
			}
			k = http.CanonicalHeaderKey(k)
			for _, v := range vs {
				if !lambdaValidValue(v) {
					return nil, u.invalid(fmt.Errorf("header field %q: invalid value", k))
				}
				h[k] = append(h[k], v)
			}
		}
	}
	for _, c := range cookies {
		if !lambdaValidValue(c) {
			return nil, u.invalid(errors.New("cookies: invalid value"))
		}
		h["Set-Cookie"] = append(h["Set-Cookie"], c)
	}
	removeHopByHop(h)
	delete(h, "Content-Length") // the gateway sets the length of what it sends
	var b []byte
	if b64 {
		var err error
		if b, err = base64.StdEncoding.DecodeString(body); err != nil {
			return nil, u.invalid(fmt.Errorf("body: %w", err))
		}
	} else {
		b = []byte(body)
	}
	return gateway.NewResponse(status, h, b), nil
}

// invalid returns the error that answers a response the gateway cannot
// make a reply of.
func (u *LambdaUpstream) invalid(err error) error {
	return &gateway.Error{
		Status: http.StatusBadGateway,
		Detail: "the function returned an invalid response",
		Err:    fmt.Errorf("proxy: Lambda %q: invalid response: %w", u.name, err),
	}
}

// lambdaValidValue reports whether v may be a header field value: no
// control characters other than HTAB (RFC 9110 §5.5).
func lambdaValidValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// APIGatewayV2HTTPRequest is the event of payload format 2.0.
type APIGatewayV2HTTPRequest struct {
	Version               string                         `json:"version"`
	RouteKey              string                         `json:"routeKey"`
	RawPath               string                         `json:"rawPath"`
	RawQueryString        string                         `json:"rawQueryString"`
	Cookies               []string                       `json:"cookies,omitempty"`
	Headers               map[string]string              `json:"headers"`
	QueryStringParameters map[string]string              `json:"queryStringParameters,omitempty"`
	PathParameters        map[string]string              `json:"pathParameters,omitempty"`
	RequestContext        APIGatewayV2HTTPRequestContext `json:"requestContext"`
	StageVariables        map[string]string              `json:"stageVariables,omitempty"`
	Body                  string                         `json:"body,omitempty"`
	IsBase64Encoded       bool                           `json:"isBase64Encoded"`
}

// APIGatewayV2HTTPRequestContext is the requestContext of a format 2.0
// event.
type APIGatewayV2HTTPRequestContext struct {
	RouteKey     string                                               `json:"routeKey"`
	AccountID    string                                               `json:"accountId"`
	Stage        string                                               `json:"stage"`
	RequestID    string                                               `json:"requestId"`
	Authorizer   *APIGatewayV2HTTPRequestContextAuthorizerDescription `json:"authorizer,omitempty"`
	APIID        string                                               `json:"apiId"`
	DomainName   string                                               `json:"domainName"`
	DomainPrefix string                                               `json:"domainPrefix"`
	Time         string                                               `json:"time"`
	TimeEpoch    int64                                                `json:"timeEpoch"`
	HTTP         APIGatewayV2HTTPRequestContextHTTPDescription        `json:"http"`
}

// APIGatewayV2HTTPRequestContextHTTPDescription is requestContext.http of a
// format 2.0 event.
type APIGatewayV2HTTPRequestContextHTTPDescription struct {
	Method    string `json:"method"`
	Path      string `json:"path"`
	Protocol  string `json:"protocol"`
	SourceIP  string `json:"sourceIp"`
	UserAgent string `json:"userAgent"`
}

// APIGatewayV2HTTPRequestContextAuthorizerDescription is
// requestContext.authorizer of a format 2.0 event.
type APIGatewayV2HTTPRequestContextAuthorizerDescription struct {
	JWT *APIGatewayV2HTTPRequestContextAuthorizerJWTDescription `json:"jwt,omitempty"`
}

// APIGatewayV2HTTPRequestContextAuthorizerJWTDescription is
// requestContext.authorizer.jwt of a format 2.0 event.
type APIGatewayV2HTTPRequestContextAuthorizerJWTDescription struct {
	Claims map[string]string `json:"claims"`
	Scopes []string          `json:"scopes"`
}

// APIGatewayV2HTTPResponse is the response of payload format 2.0.
// MultiValueHeaders is there so that code written for aws-lambda-go
// compiles; like API Gateway, LambdaUpstream ignores it.
type APIGatewayV2HTTPResponse struct {
	StatusCode        int                 `json:"statusCode"`
	Headers           map[string]string   `json:"headers,omitempty"`
	MultiValueHeaders map[string][]string `json:"multiValueHeaders,omitempty"`
	Body              string              `json:"body"`
	IsBase64Encoded   bool                `json:"isBase64Encoded,omitempty"`
	Cookies           []string            `json:"cookies,omitempty"`
}

// APIGatewayProxyRequest is the event of payload format 1.0.
type APIGatewayProxyRequest struct {
	Resource                        string                        `json:"resource"`
	Path                            string                        `json:"path"`
	HTTPMethod                      string                        `json:"httpMethod"`
	Headers                         map[string]string             `json:"headers"`
	MultiValueHeaders               map[string][]string           `json:"multiValueHeaders"`
	QueryStringParameters           map[string]string             `json:"queryStringParameters"`
	MultiValueQueryStringParameters map[string][]string           `json:"multiValueQueryStringParameters"`
	PathParameters                  map[string]string             `json:"pathParameters"`
	StageVariables                  map[string]string             `json:"stageVariables"`
	RequestContext                  APIGatewayProxyRequestContext `json:"requestContext"`
	Body                            string                        `json:"body"`
	IsBase64Encoded                 bool                          `json:"isBase64Encoded"`
}

// APIGatewayProxyRequestContext is the requestContext of a format 1.0
// event. Authorizer holds "claims" (a map of strings) and "scopes" when the
// request has a Principal, and is nil otherwise.
type APIGatewayProxyRequestContext struct {
	AccountID         string                    `json:"accountId"`
	APIID             string                    `json:"apiId"`
	ResourceID        string                    `json:"resourceId"`
	Stage             string                    `json:"stage"`
	DomainName        string                    `json:"domainName"`
	DomainPrefix      string                    `json:"domainPrefix"`
	RequestID         string                    `json:"requestId"`
	ExtendedRequestID string                    `json:"extendedRequestId"`
	Protocol          string                    `json:"protocol"`
	Identity          APIGatewayRequestIdentity `json:"identity"`
	ResourcePath      string                    `json:"resourcePath"`
	Path              string                    `json:"path"`
	Authorizer        map[string]any            `json:"authorizer"`
	HTTPMethod        string                    `json:"httpMethod"`
	RequestTime       string                    `json:"requestTime"`
	RequestTimeEpoch  int64                     `json:"requestTimeEpoch"`
}

// APIGatewayRequestIdentity is requestContext.identity of a format 1.0
// event. The gateway sets SourceIP and UserAgent; the other fields, which
// describe AWS identities, are there so that code written for aws-lambda-go
// compiles, and stay empty.
type APIGatewayRequestIdentity struct {
	CognitoIdentityPoolID         string `json:"cognitoIdentityPoolId,omitempty"`
	AccountID                     string `json:"accountId,omitempty"`
	CognitoIdentityID             string `json:"cognitoIdentityId,omitempty"`
	Caller                        string `json:"caller,omitempty"`
	APIKey                        string `json:"apiKey,omitempty"`
	APIKeyID                      string `json:"apiKeyId,omitempty"`
	AccessKey                     string `json:"accessKey,omitempty"`
	SourceIP                      string `json:"sourceIp"`
	CognitoAuthenticationType     string `json:"cognitoAuthenticationType,omitempty"`
	CognitoAuthenticationProvider string `json:"cognitoAuthenticationProvider,omitempty"`
	UserArn                       string `json:"userArn,omitempty"`
	UserAgent                     string `json:"userAgent"`
	User                          string `json:"user,omitempty"`
}

// APIGatewayProxyResponse is the response of payload format 1.0.
type APIGatewayProxyResponse struct {
	StatusCode        int                 `json:"statusCode"`
	Headers           map[string]string   `json:"headers,omitempty"`
	MultiValueHeaders map[string][]string `json:"multiValueHeaders,omitempty"`
	Body              string              `json:"body"`
	IsBase64Encoded   bool                `json:"isBase64Encoded,omitempty"`
}
