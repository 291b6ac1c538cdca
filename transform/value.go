package transform

import (
	"encoding/json"
	"errors"
	"strings"

	"github.com/gatekit/gatekit/gateway"
	"github.com/tidwall/gjson"
)

// A Value says where an operation takes a value from: a constant, the body,
// the request (path parameter, query, header, client address, request ID)
// or the authenticated principal. Build one with JSON, String, Field,
// Param, Query, Header, ReplyHeader, Claim, Subject, ClientIP or
// RequestID; the zero Value is invalid.
//
// A Value may be missing on a given request (no such header, no
// principal). Operations say what they do then; as a rule, an operation
// that sets something removes it instead, so a client can never supply the
// value the gateway meant to vouch for.
//
// In a body, a value from the request is a JSON string; a constant, a field
// or a claim keeps its JSON type. In a header, query or path, a JSON string
// is used unquoted, an array as its items joined with ", ", null as
// missing, and anything else as its JSON text.
type Value struct {
	kind valueKind
	name string // parameter, query or header name
	raw  string // constant JSON
	path path   // field or claim path
	err  error
}

type valueKind uint8

const (
	valueInvalid valueKind = iota
	valueConst
	valueField
	valueParam
	valueQuery
	valueHeader
	valueReplyHeader
	valueClaim
	valueSubject
	valueClientIP
	valueRequestID
)

// JSON returns a constant Value: the JSON text raw, such as `"EUR"`, `42`,
// `true` or `{"a":[1,2]}`. Text that is not valid JSON fails the
// constructor of the operation that uses it.
func JSON(raw string) Value {
	raw = strings.TrimSpace(raw)
	if !gjson.Valid(raw) {
		return Value{err: errors.New("transform.JSON: the constant is not valid JSON")}
	}
	return Value{kind: valueConst, raw: raw}
}

// String returns a constant Value holding the string s.
func String(s string) Value {
	return Value{kind: valueConst, raw: string(appendJSONString(nil, s))}
}

// Field returns a Value read from the body being transformed at path (in
// the package's path syntax). A path with "#" reads an array of values,
// unless it shares its "#" prefix with the path it is set at: then it is
// read from the same element (see Set).
func Field(p string) Value {
	cp, err := parsePath(p)
	if err != nil {
		return Value{err: pathError("transform.Field", p, err)}
	}
	return Value{kind: valueField, path: cp}
}

// Param returns a Value holding the path parameter name, as
// gateway.Request.Param returns it (decoded). It is missing when the route
// captured no such parameter.
func Param(name string) Value {
	if name == "" {
		return Value{err: errors.New("transform.Param: empty name")}
	}
	return Value{kind: valueParam, name: name}
}

// Query returns a Value holding the first value of the query parameter
// name, decoded. It is missing when the query has no such parameter.
func Query(name string) Value {
	if name == "" {
		return Value{err: errors.New("transform.Query: empty name")}
	}
	return Value{kind: valueQuery, name: name}
}

// Header returns a Value holding the first value of the request header
// name. In a response transform it still reads the request; ReplyHeader
// reads the reply.
func Header(name string) Value {
	if !validHeaderName(name) {
		return Value{err: errors.New("transform.Header: " + quote(name) + " is not a header name")}
	}
	return Value{kind: valueHeader, name: canonicalHeaderKey(name)}
}

// ReplyHeader returns a Value holding the first value of the reply header
// name. Only response transforms can use it.
func ReplyHeader(name string) Value {
	if !validHeaderName(name) {
		return Value{err: errors.New("transform.ReplyHeader: " + quote(name) + " is not a header name")}
	}
	return Value{kind: valueReplyHeader, name: canonicalHeaderKey(name)}
}

// Claim returns a Value read from the authenticated principal's claims at
// path (in the package's path syntax, so nested claims such as
// "realm_access.roles" work). It reads Principal.ClaimsJSON with gjson when
// the authenticator provided it, and Principal.Claims otherwise. It is
// missing when there is no principal or no such claim.
func Claim(p string) Value {
	cp, err := parsePath(p)
	if err != nil {
		return Value{err: pathError("transform.Claim", p, err)}
	}
	return Value{kind: valueClaim, path: cp}
}

// Subject returns a Value holding the authenticated principal's Subject; it
// is missing when there is no principal or its Subject is empty.
func Subject() Value { return Value{kind: valueSubject} }

// ClientIP returns a Value holding the client's address as
// gateway.Request.ClientIP works it out (the peer, or the first untrusted
// address a trusted proxy forwarded).
func ClientIP() Value { return Value{kind: valueClientIP} }

// RequestID returns a Value holding the request's ID: the one AssignRequestID
// gave the request, or, when no operation did, a new random one that
// later RequestID values of the same request reuse. It never takes the ID a
// client sent unless AssignRequestID was told to trust it.
func RequestID() Value { return Value{kind: valueRequestID} }

func (v *Value) check() error {
	if v.err != nil {
		return v.err
	}
	if v.kind == valueInvalid {
		return errors.New("the zero Value is not a value; use JSON, String, Field, Param, Query, Header, Claim, Subject, ClientIP or RequestID")
	}
	return nil
}

// usesBody reports whether the value is read from the body.
func (v *Value) usesBody() bool { return v.kind == valueField }

// env is what values are read from on one request.
type env struct {
	req  *gateway.Request  // nil when Body.Apply runs without a request
	resp *gateway.Response // nil on the request side
	ids  *idSource
}

// json returns the value as JSON. doc is the document a Field value reads
// (the body, or the current element for a relative field). The result may
// share memory with doc, the principal's claims or the constant: it is
// read-only.
func (v *Value) json(e *env, doc string) ([]byte, bool) {
	switch v.kind {
	case valueConst:
		return bytesView(v.raw), true
	case valueField:
		r := gjson.Get(doc, v.path.gjson)
		return bytesView(r.Raw), r.Exists()
	case valueClaim:
		r, ok := v.claim(e)
		if !ok {
			return nil, false
		}
		return bytesView(r.Raw), true
	}
	s, ok := v.plain(e)
	if !ok {
		return nil, false
	}
	return appendJSONString(nil, s), true
}

// text returns the value as text for a header, query or path.
func (v *Value) text(e *env, doc string) (string, bool) {
	switch v.kind {
	case valueConst:
		return resultText(gjson.Parse(v.raw))
	case valueField:
		return resultText(gjson.Get(doc, v.path.gjson))
	case valueClaim:
		r, ok := v.claim(e)
		if !ok {
			return "", false
		}
		return resultText(r)
	}
	return v.plain(e)
}

// plain returns the values that are strings by nature.
func (v *Value) plain(e *env) (string, bool) {
	req := e.req
	if req == nil {
		return "", false
	}
	var s string
	switch v.kind {
	case valueParam:
		s = req.Param(v.name)
	case valueQuery:
		q, ok := queryValue(req.HTTP.URL.RawQuery, v.name)
		return q, ok
	case valueHeader:
		vs := req.HTTP.Header[v.name]
		if len(vs) == 0 {
			return "", false
		}
		return vs[0], true
	case valueReplyHeader:
		if e.resp == nil {
			return "", false
		}
		vs := e.resp.Header[v.name]
		if len(vs) == 0 {
			return "", false
		}
		return vs[0], true
	case valueSubject:
		if req.Principal != nil {
			s = req.Principal.Subject
		}
	case valueClientIP:
		if a := req.ClientIP(); a.IsValid() {
			s = a.String()
		}
	case valueRequestID:
		return e.ids.requestID(req)
	}
	return s, s != ""
}

// claim reads the claim at v.path.
func (v *Value) claim(e *env) (gjson.Result, bool) {
	if e.req == nil || e.req.Principal == nil {
		return gjson.Result{}, false
	}
	p := e.req.Principal
	var r gjson.Result
	if p.ClaimsJSON != nil {
		r = gjson.Get(view(p.ClaimsJSON), v.path.gjson)
	} else {
		// No JSON at hand: encode the top-level claim and read the rest
		// of the path from that.
		first := v.path.segs[0]
		c, ok := p.Claims[first.key]
		if first.each || !ok {
			return r, false
		}
		b, err := json.Marshal(c)
		if err != nil {
			return r, false
		}
		r = gjson.ParseBytes(b)
		if len(v.path.segs) > 1 {
			r = r.Get(gjsonPath(v.path.segs[1:]))
		}
	}
	return r, r.Exists()
}

// resultText turns a JSON value into header text: strings unquoted, arrays
// joined with ", ", null missing, anything else its JSON text.
func resultText(r gjson.Result) (string, bool) {
	switch r.Type {
	case gjson.Null:
		return "", false
	case gjson.String:
		return r.Str, true
	case gjson.JSON:
		if !r.IsArray() {
			return r.Raw, true
		}
		var b strings.Builder
		n := 0
		r.ForEach(func(_, item gjson.Result) bool {
			s, ok := resultText(item)
			if !ok {
				return true
			}
			if n > 0 {
				b.WriteString(", ")
			}
			b.WriteString(s)
			n++
			return true
		})
		return b.String(), n > 0
	}
	return r.Raw, true
}

func pathError(where, p string, err error) error {
	return errors.New(where + ": path " + quote(p) + ": " + err.Error())
}
