package validate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/gatekit/gatekit/gateway"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// DefaultMaxErrors is how many violations a problem lists when
// Config.MaxErrors is 0.
const DefaultMaxErrors = 100

// Config says what a route accepts. The zero Config accepts everything;
// each field adds a check, and a zero field means its documented default.
type Config struct {
	// Route names the route in configuration errors.
	Route string

	// Path, Query and Header are the rules for path parameters (as the
	// router captured them), query parameters and header fields. They are
	// checked before the body; a request that breaks any of them is
	// refused with 400, listing every broken rule.
	Path, Query, Header []Param

	// MediaTypes are the media types a request body may have:
	// "application/json", "application/*+json" (any structured JSON
	// syntax, RFC 6839), "text/*", "*/*". Parameters of the request's
	// Content-Type (charset and the like) are ignored; the comparison
	// ignores case. Any other type is refused with 415 and, for POST and
	// PATCH, an Accept-Post or Accept-Patch field listing these types.
	// Nil means any type, or, when Body is set, "application/json" and
	// "application/*+json"; with Body set, only JSON types may be listed.
	MediaTypes []string

	// RequireMediaType applies the MediaTypes check to requests without a
	// body too. By default a request with no body is not asked for a
	// Content-Type.
	RequireMediaType bool

	// MaxBytes limits the request body, refusing a larger one with 413. It
	// can only tighten the route's own limit (gateway.Options.MaxBodyBytes),
	// which always applies; 0 means that limit alone. A Content-Length
	// over it is refused at once; a body of unknown length (chunked) is
	// cut off at it, whether Body buffers it or it streams upstream.
	MaxBytes int64

	// Body is the JSON Schema that request bodies must satisfy; the zero
	// Schema checks no body. A body that is not JSON is refused with 400,
	// saying where (line, column and byte offset) and what is wrong; one
	// that breaks the schema with 422, listing every violation with its
	// JSON pointer. The body is read through gateway.Request.Body, so it
	// is buffered (up to the limit) only on routes that set Body; routes
	// that do not stream their bodies to the upstream unread.
	Body Schema

	// BodyOptional lets a request without a body through when Body is set.
	// By default it is refused with 400: an empty body is not a JSON
	// document, and letting it pass unchecked would let a client skip
	// the schema.
	BodyOptional bool

	// MaxDepth limits how deeply a JSON body (or reply) may nest arrays and
	// objects; 0 means DefaultMaxDepth. Deeper documents are refused with
	// 400 before they are decoded.
	MaxDepth int

	// MaxErrors limits how many violations a problem lists; 0 means
	// DefaultMaxErrors.
	MaxErrors int

	// Replies are the schemas for upstream replies, checked when the
	// Validator runs as a gateway.ResponseTransformer. A reply that breaks
	// its schema is answered with 502 and its violations are logged, not
	// sent.
	Replies []Reply

	// Draft is the JSON Schema draft of schemas that do not name one with
	// $schema; the zero value is Draft2020 (2020-12). Whatever the draft,
	// "format" is asserted, not just annotated (as draft 2019-09 and
	// 2020-12 would have it by default): a string that is not a valid
	// email (RFC 5321 addr-spec), uuid (RFC 9562), date-time, date or time
	// (RFC 3339), duration, ipv4, ipv6, hostname, uri, uri-reference, iri,
	// iri-reference, uri-template, json-pointer, relative-json-pointer,
	// regex, period or semver is refused with 422. Formats the jsonschema
	// library does not know (idn-email, idn-hostname, custom ones) are
	// ignored, and format applies to strings only.
	Draft Draft

	// FS holds the schema files, such as an embed.FS of a schemas
	// directory. When it is set, Schema.File names a file in it, relative
	// $refs between its files resolve (inline schemas sit at its root),
	// and a $ref to the absolute $id of any .json file in it is served
	// from that file. When it is nil, Schema.File is read from disk and
	// $refs may reach files below the directory of a named file, and no
	// others.
	FS fs.FS

	// AllowRemote lists the URL prefixes ("https://schemas.example.com/")
	// from which a $ref may fetch a schema, once, when New compiles it.
	// A prefix matches on path-segment boundaries. Nil allows none: by
	// default a schema cannot make the gateway call out, and New fails
	// with ErrRemoteRef on the first URL it would fetch. The metaschemas
	// of the drafts are built in and never fetched.
	AllowRemote []string

	// HTTPClient fetches the allowed remote schemas; nil means a client
	// with a 10 s timeout. Redirects are followed only to allowed URLs.
	HTTPClient *http.Client
}

// A Reply is the schema for the upstream's replies with one status.
type Reply struct {
	// Status is the reply status the schema is for; 0 means every 2xx
	// status that has no Reply of its own.
	Status int
	// Schema is what the reply body must satisfy. The reply must have a
	// JSON media type and a body (unless its status or the request method
	// forbids one).
	Schema Schema
}

// A Validator checks requests against a Config. It is a gateway.Validator
// (use it with gateway.Validate) and, for the Replies schemas, a
// gateway.ResponseTransformer (use it with gateway.TransformResponse). It
// is safe for concurrent use.
type Validator struct {
	route               string
	path, query, header []paramRule

	media        []mediaRange // nil: any
	accept       string       // the media types, for Accept-Post and Accept-Patch
	requireMedia bool
	maxBytes     int64

	body         *jsonschema.Schema
	bodyFast     *fastNode // nil: body is beyond the fast path's subset
	bodyOptional bool
	maxDepth     int
	maxErrors    int
	replies      []replyRule
	printer      *message.Printer
}

type replyRule struct {
	status int
	schema *jsonschema.Schema
	fast   *fastNode
}

var (
	_ gateway.Validator           = (*Validator)(nil)
	_ gateway.ResponseTransformer = (*Validator)(nil)
)

// New checks cfg and compiles its rules and schemas. Every configuration
// error (a bad pattern, a schema that does not compile, a remote $ref that
// is not allowed) is reported here, naming the route and the parameter,
// or the file and the JSON pointer in it (see SchemaError).
func New(cfg Config) (*Validator, error) {
	v := &Validator{
		route:        cfg.Route,
		requireMedia: cfg.RequireMediaType,
		maxBytes:     cfg.MaxBytes,
		bodyOptional: cfg.BodyOptional,
		maxDepth:     cfg.MaxDepth,
		maxErrors:    cfg.MaxErrors,
		printer:      message.NewPrinter(language.English),
	}
	fail := func(err error) (*Validator, error) {
		if _, ok := errors.AsType[*SchemaError](err); ok {
			return nil, err
		}
		if cfg.Route == "" {
			return nil, fmt.Errorf("validate: %w", err)
		}
		return nil, fmt.Errorf("route %q: validate: %w", cfg.Route, err)
	}
	var err error
	if v.path, err = compileParams(cfg.Path, "path"); err != nil {
		return fail(err)
	}
	if v.query, err = compileParams(cfg.Query, "query"); err != nil {
		return fail(err)
	}
	if v.header, err = compileParams(cfg.Header, "header"); err != nil {
		return fail(err)
	}
	hasBody := !cfg.Body.isZero()
	types := cfg.MediaTypes
	if len(types) == 0 && hasBody {
		types = []string{"application/json", "application/*+json"}
	}
	names := make([]string, 0, len(types))
	for _, t := range types {
		m, err := parseMediaRange(t)
		if err != nil {
			return fail(fmt.Errorf("MediaTypes: %w", err))
		}
		if hasBody && !m.onlyJSON() {
			return fail(fmt.Errorf("MediaTypes: %s is not a JSON media type, but Body is a JSON Schema", m))
		}
		v.media = append(v.media, m)
		names = append(names, m.String())
	}
	v.accept = strings.Join(names, ", ")
	switch {
	case cfg.RequireMediaType && v.media == nil:
		return fail(errors.New("RequireMediaType needs MediaTypes or Body"))
	case cfg.BodyOptional && !hasBody:
		return fail(errors.New("BodyOptional needs Body"))
	case cfg.MaxBytes < 0:
		return fail(errors.New("MaxBytes must not be negative"))
	case cfg.MaxDepth < 0:
		return fail(errors.New("MaxDepth must not be negative"))
	case cfg.MaxErrors < 0:
		return fail(errors.New("MaxErrors must not be negative"))
	}
	if v.maxDepth == 0 {
		v.maxDepth = DefaultMaxDepth
	}
	if v.maxErrors == 0 {
		v.maxErrors = DefaultMaxErrors
	}
	if !hasBody && len(cfg.Replies) == 0 {
		return v, nil
	}
	sc, err := newCompiler(&cfg)
	if err != nil {
		return fail(err)
	}
	defer sc.l.close()
	if hasBody {
		if v.body, err = sc.compile(cfg.Body, "request body"); err != nil {
			return fail(err)
		}
		v.bodyFast = compileFast(v.body)
	}
	for _, r := range cfg.Replies {
		name := "reply 2xx"
		if r.Status != 0 {
			name = "reply " + strconv.Itoa(r.Status)
		}
		switch {
		case r.Status != 0 && (r.Status < 200 || r.Status > 599):
			return fail(fmt.Errorf("Replies: status %d is not a final status", r.Status))
		case r.Schema.isZero():
			return fail(fmt.Errorf("Replies: %s has no schema", name))
		}
		for _, prev := range v.replies {
			if prev.status == r.Status {
				return fail(fmt.Errorf("Replies: two schemas for %s", name))
			}
		}
		sch, err := sc.compile(r.Schema, name)
		if err != nil {
			return fail(err)
		}
		v.replies = append(v.replies, replyRule{status: r.Status, schema: sch, fast: compileFast(sch)})
	}
	return v, nil
}

// Validate checks req: its parameters, then the media type and size of
// its body, then the body against the schema. It returns a *gateway.Error
// (400, 413, 415 or 422) that lists every violation in its "errors"
// extension as []Violation, or nil.
func (v *Validator) Validate(ctx context.Context, req *gateway.Request) error {
	if err := v.checkParams(req); err != nil {
		return err
	}
	r := req.HTTP
	hasBody := r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0
	if v.media != nil && (hasBody || v.requireMedia) {
		if err := v.checkMediaType(r); err != nil {
			return err
		}
	}
	if hasBody && v.maxBytes > 0 {
		if r.ContentLength > v.maxBytes {
			return v.tooLarge(req)
		}
		// An unknown-length body is cut off at MaxBytes whether it is
		// buffered below or streamed to the upstream.
		req.LimitBody(v.maxBytes)
	}
	if v.body == nil {
		return nil
	}
	if hasBody {
		if ce := r.Header.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
			// RFC 9110 §15.5.16: a coding the server does not handle.
			e := gateway.Errorf(http.StatusUnsupportedMediaType, "this route validates request bodies and does not accept them with a content coding")
			return e.WithHeader("Accept-Encoding", "identity")
		}
	}
	b, err := req.Body()
	if err != nil {
		if e, ok := errors.AsType[*gateway.Error](err); ok && e.Status == http.StatusRequestEntityTooLarge && v.maxBytes > 0 {
			return v.tooLarge(req)
		}
		return err
	}
	if len(b) == 0 {
		if v.bodyOptional {
			return nil
		}
		return gateway.Errorf(http.StatusBadRequest, "this route needs a JSON request body")
	}
	if !hasBody && !v.requireMedia {
		// Content-Length said nothing, yet a body came.
		if err := v.checkMediaType(r); err != nil {
			return err
		}
	}
	return v.checkBody(b)
}

func (v *Validator) tooLarge(req *gateway.Request) error {
	limit := v.maxBytes
	if l := req.MaxBodyBytes(); l >= 0 && l < limit {
		limit = l
	}
	return gateway.Errorf(http.StatusRequestEntityTooLarge, "the request body is larger than the %d bytes this route accepts", limit)
}

// checkMediaType refuses a request whose Content-Type is not accepted.
func (v *Validator) checkMediaType(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	if typ, sub, ok := splitMediaType(ct); ok {
		for _, m := range v.media {
			if m.matches(typ, sub) {
				return nil
			}
		}
	}
	var e *gateway.Error
	if ct == "" {
		e = gateway.Errorf(http.StatusUnsupportedMediaType, "the request has no Content-Type; this route accepts %s", v.accept)
	} else {
		e = gateway.Errorf(http.StatusUnsupportedMediaType, "this route accepts request bodies of type %s", v.accept)
	}
	// RFC 5789 §3.1 (Accept-Patch) and the Linked Data Platform's
	// Accept-Post (W3C LDP §7.1) name what would have been accepted.
	switch r.Method {
	case http.MethodPost:
		e.WithHeader("Accept-Post", v.accept)
	case http.MethodPatch:
		e.WithHeader("Accept-Patch", v.accept)
	}
	return e
}

// checkBody checks a request body against the schema.
func (v *Validator) checkBody(b []byte) error {
	if off := tooDeep(b, v.maxDepth); off >= 0 {
		line, col := position(b, off)
		detail := "the request body nests arrays and objects deeper than the " + strconv.Itoa(v.maxDepth) + " levels this route accepts"
		return &gateway.Error{
			Status: http.StatusBadRequest,
			Detail: detail,
			Extensions: map[string]any{"errors": []Violation{{
				Message: "nesting deeper than " + strconv.Itoa(v.maxDepth) + " levels",
				Offset:  int64(off), Line: line, Column: col,
			}}},
		}
	}
	if off := hugeNumber(b); off >= 0 {
		line, col := position(b, off)
		return &gateway.Error{
			Status: http.StatusBadRequest,
			Detail: "the request body has a number with more than " + strconv.Itoa(maxNumberDigits) + " digits or an exponent beyond ±" + strconv.Itoa(maxNumberExponent),
			Extensions: map[string]any{"errors": []Violation{{
				Message: "number out of range",
				Offset:  int64(off), Line: line, Column: col,
			}}},
		}
	}
	if v.bodyFast != nil && v.bodyFast.check(b, v.maxDepth) == fastAccept {
		return nil
	}
	// Refusals, and bodies the fast path cannot judge, take the library's
	// path, so that what a client sees does not depend on the fast path.
	doc, err := decodeJSON(b)
	if err != nil {
		se := err.(*syntaxError)
		return &gateway.Error{
			Status: http.StatusBadRequest,
			Detail: "the request body is not valid JSON: " + se.Error(),
			Extensions: map[string]any{"errors": []Violation{{
				Message: se.Msg, Offset: se.Offset, Line: se.Line, Column: se.Column,
			}}},
		}
	}
	err = v.body.Validate(doc)
	if err == nil {
		return nil
	}
	ve, ok := err.(*jsonschema.ValidationError)
	if !ok {
		return fmt.Errorf("route %q: validate: %w", v.route, err)
	}
	vs := v.violations(ve)
	detail := "the request body does not match the schema"
	if len(vs) == 1 {
		detail += ": " + vs[0].where() + vs[0].Message
	} else {
		detail += ": " + strconv.Itoa(len(vs)) + " errors"
	}
	return &gateway.Error{
		Status:     http.StatusUnprocessableEntity,
		Detail:     detail,
		Extensions: map[string]any{"errors": vs},
	}
}

// violations lists the leaves of ve's tree of causes, each a value that
// broke a keyword, without duplicates and at most MaxErrors of them.
func (v *Validator) violations(ve *jsonschema.ValidationError) []Violation {
	ls := leaves(ve, nil, v.maxErrors)
	// The library's order follows its maps; sort by where in the document,
	// keeping the keyword order at one place.
	slices.SortStableFunc(ls, func(a, b *jsonschema.ValidationError) int {
		return compareLocations(a.InstanceLocation, b.InstanceLocation)
	})
	vs := make([]Violation, 0, len(ls))
outer:
	for _, l := range ls {
		x := Violation{Pointer: truncate(pointer(l.InstanceLocation), maxPointerLen), Message: v.message(l)}
		for _, y := range vs {
			if y.Pointer == x.Pointer && y.Message == x.Message {
				continue outer
			}
		}
		vs = append(vs, x)
	}
	return vs
}

// TransformResponse checks the reply against the schema Config.Replies
// gives for its status, and changes nothing: it has the shape of a
// gateway.ResponseTransformer so that gateway.TransformResponse(v) runs
// it. A reply that breaks the schema, is not JSON, or is deeper than
// MaxDepth fails with 502; its violations go to the error's Err, which the
// gateway logs, and never to the client.
func (v *Validator) TransformResponse(ctx context.Context, req *gateway.Request, resp *gateway.Response) error {
	status := resp.Status
	if status == 0 {
		status = http.StatusOK
	}
	var sch *jsonschema.Schema
	var fast *fastNode
	for _, r := range v.replies {
		if r.status == status {
			sch, fast = r.schema, r.fast
			break
		}
		if r.status == 0 && status >= 200 && status <= 299 {
			sch, fast = r.schema, r.fast
		}
	}
	if sch == nil || req.HTTP.Method == http.MethodHead || status == http.StatusNoContent || status == http.StatusNotModified {
		return nil
	}
	fail := func(why string) error {
		return &gateway.Error{
			Status: http.StatusBadGateway,
			Detail: "the upstream reply is not what this route promises",
			Err:    fmt.Errorf("route %q: validate: reply %d: %s", v.route, status, why),
		}
	}
	if ce := resp.Header.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		return fail("encoded with " + ce + ", so it cannot be checked")
	}
	if typ, sub, ok := splitMediaType(resp.Header.Get("Content-Type")); !ok || !isJSONType(typ, sub) {
		return fail("Content-Type is not JSON")
	}
	b, err := resp.Bytes()
	if err != nil {
		return err
	}
	if len(b) == 0 {
		return fail("no body")
	}
	if off := tooDeep(b, v.maxDepth); off >= 0 {
		return fail("nests deeper than " + strconv.Itoa(v.maxDepth) + " levels")
	}
	if off := hugeNumber(b); off >= 0 {
		return fail("has a number out of range")
	}
	if fast != nil && fast.check(b, v.maxDepth) == fastAccept {
		return nil
	}
	doc, err := decodeJSON(b)
	if err != nil {
		return fail("not valid JSON: " + err.Error())
	}
	err = sch.Validate(doc)
	if err == nil {
		return nil
	}
	ve, ok := err.(*jsonschema.ValidationError)
	if !ok {
		return fail(err.Error())
	}
	vs := v.violations(ve)
	parts := make([]string, len(vs))
	for i, x := range vs {
		parts[i] = x.where() + x.Message
	}
	return fail("does not match the schema: " + strings.Join(parts, "; "))
}

// A Violation is one fault in a request, as listed in the "errors" member
// of the problem document that Validate returns. Exactly one of three
// kinds: a schema violation (Pointer), a parameter (Parameter and In), or
// malformed or too deep JSON (Line > 0).
type Violation struct {
	// Pointer is the JSON pointer (RFC 6901) to the value in the body that
	// breaks the schema; "" is the whole body.
	Pointer string
	// Parameter names the faulty parameter, and In says where it is:
	// "path", "query" or "header".
	Parameter, In string
	// Message says what is wrong. It does not quote the value; it may
	// name a property of the body, cut short if long.
	Message string
	// Offset, Line and Column locate malformed JSON: the 0-based byte
	// offset, the 1-based line, and the 1-based column in characters.
	Offset       int64
	Line, Column int
}

// MarshalJSON encodes v with only the members of its kind:
// {"pointer", "message"}, {"parameter", "in", "message"} or
// {"message", "offset", "line", "column"}.
func (v Violation) MarshalJSON() ([]byte, error) {
	switch {
	case v.Parameter != "":
		return json.Marshal(struct {
			Parameter string `json:"parameter"`
			In        string `json:"in"`
			Message   string `json:"message"`
		}{v.Parameter, v.In, v.Message})
	case v.Line > 0:
		return json.Marshal(struct {
			Message string `json:"message"`
			Offset  int64  `json:"offset"`
			Line    int    `json:"line"`
			Column  int    `json:"column"`
		}{v.Message, v.Offset, v.Line, v.Column})
	}
	return json.Marshal(struct {
		Pointer string `json:"pointer"`
		Message string `json:"message"`
	}{v.Pointer, v.Message})
}

func (v Violation) where() string {
	if v.Pointer == "" {
		return "(root): "
	}
	return v.Pointer + ": "
}

const maxPointerLen = 256

// truncate shortens s to at most n bytes (on a character boundary),
// marking the cut, so that a huge key in a body is not echoed in full.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n - 3
	for i > 0 && s[i]&0xC0 == 0x80 {
		i--
	}
	return s[:i] + "..."
}

// compareLocations orders instance locations as a document reads: by
// token, array indexes numerically, a parent before its children.
func compareLocations(a, b []string) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		x, y := a[i], b[i]
		if x == y {
			continue
		}
		if isIndex(x) && isIndex(y) {
			if len(x) != len(y) {
				return len(x) - len(y)
			}
		}
		return strings.Compare(x, y)
	}
	return len(a) - len(b)
}

func isIndex(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
