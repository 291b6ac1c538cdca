package transform

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strings"

	"github.com/gatekit/gatekit/gateway"
	"github.com/tidwall/gjson"
)

// Config lists the operations of a request or response transform.
type Config struct {
	// Ops run in order. Operations on the body read it once, when the
	// first of them runs; a transform whose operations never touch the
	// body (headers, path, query, status) leaves it streaming.
	Ops []Op

	// AllStatuses makes the body operations of a response transform run
	// on every reply. By default they run on 2xx replies only: an error
	// reply's body (a problem document, an HTML page from a load
	// balancer) has another shape and passes through untouched. Header
	// and status operations run on every reply either way.
	AllStatuses bool
}

// A RequestTransform reshapes requests on their way to the upstream. It is
// a gateway.RequestTransformer; Request builds one. It is safe for
// concurrent use.
type RequestTransform struct {
	steps []step
}

// A ResponseTransform reshapes replies on their way to the client. It is a
// gateway.ResponseTransformer; Response builds one. It is safe for
// concurrent use.
type ResponseTransform struct {
	steps []step
	all   bool
}

var (
	_ gateway.RequestTransformer  = (*RequestTransform)(nil)
	_ gateway.ResponseTransformer = (*ResponseTransform)(nil)
)

// Request checks cfg and returns a transform for requests. An error names
// the index and kind of the operation at fault, and its path or field.
func Request(cfg Config) (*RequestTransform, error) {
	steps, err := compile(cfg.Ops, false)
	if err != nil {
		return nil, err
	}
	return &RequestTransform{steps: steps}, nil
}

// Response checks cfg and returns a transform for replies. An error names
// the index and kind of the operation at fault, and its path or field.
func Response(cfg Config) (*ResponseTransform, error) {
	steps, err := compile(cfg.Ops, true)
	if err != nil {
		return nil, err
	}
	return &ResponseTransform{steps: steps, all: cfg.AllStatuses}, nil
}

// Stage returns t as a pipeline stage (gateway.TransformRequest(t)).
func (t *RequestTransform) Stage() gateway.Stage { return gateway.TransformRequest(t) }

// Stage returns t as a pipeline stage (gateway.TransformResponse(t)).
func (t *ResponseTransform) Stage() gateway.Stage { return gateway.TransformResponse(t) }

// TransformRequest runs the operations on req. Errors are *gateway.Error:
// 400 for a body the operations cannot work on, 500 for a configuration
// mistake only a request could reveal.
func (t *RequestTransform) TransformRequest(ctx context.Context, req *gateway.Request) error {
	if req.HTTP.Header == nil {
		req.HTTP.Header = make(http.Header)
	}
	s := state{env: env{req: req}}
	return s.run(ctx, t.steps)
}

// TransformResponse runs the operations on resp, the reply to req. Errors
// are *gateway.Error: 502 for a reply body the operations cannot work on.
func (t *ResponseTransform) TransformResponse(ctx context.Context, req *gateway.Request, resp *gateway.Response) error {
	if resp.Header == nil {
		resp.Header = make(http.Header)
	}
	s := state{env: env{req: req, resp: resp}, all: t.all}
	return s.run(ctx, t.steps)
}

// A step is one compiled operation.
type step interface {
	run(ctx context.Context, s *state) error
}

// format is what the body holds, as far as the operations know.
type format uint8

const (
	formatUnknown format = iota // not read yet
	formatJSON                  // JSON, checked
	formatXML                   // XML (made by JSONToXML, or read by XMLToJSON)
)

// state is one run of a transform.
type state struct {
	env
	all bool // AllStatuses

	body    []byte
	loaded  bool // body holds the message's body
	changed bool // body differs from the message's: write it back
	format  format
	ctype   string // Content-Type to set with a changed body
	dropped bool   // a status without a body dropped it
	uri     bool   // the path or query changed
}

func (s *state) run(ctx context.Context, steps []step) error {
	for _, st := range steps {
		if err := st.run(ctx, s); err != nil {
			return err
		}
	}
	if s.uri && s.req.HTTP.RequestURI != "" {
		// Whoever reads RequestURI sees what the upstream will get.
		s.req.HTTP.RequestURI = s.req.HTTP.URL.RequestURI()
	}
	if s.changed {
		if s.resp != nil {
			s.resp.SetBytes(s.body)
			s.setType(s.resp.Header)
		} else {
			s.req.SetBody(s.body)
			s.setType(s.req.HTTP.Header)
		}
	}
	return nil
}

func (s *state) setType(h http.Header) {
	if s.ctype == "" {
		return
	}
	if len(s.body) == 0 {
		delete(h, "Content-Type")
		return
	}
	h["Content-Type"] = []string{s.ctype}
}

// bodyApplies reports whether body operations run on this message: for a
// reply, one whose status carries a body (and is 2xx, unless AllStatuses)
// to a request other than HEAD.
func (s *state) bodyApplies() bool {
	if s.dropped {
		return false
	}
	if s.resp == nil {
		return true
	}
	st := s.resp.Status
	if st == 0 {
		st = http.StatusOK
	}
	if st < 200 || st == http.StatusNoContent || st == http.StatusNotModified || s.req.HTTP.Method == http.MethodHead {
		return false
	}
	return s.all || st < 300
}

// load reads the message's body once.
func (s *state) load() error {
	if s.loaded {
		return nil
	}
	var b []byte
	var err error
	if s.resp != nil {
		if ce := s.resp.Header.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
			return &gateway.Error{Status: http.StatusBadGateway, Detail: "the upstream reply is compressed (Content-Encoding " + ce + "), so the gateway cannot reshape it"}
		}
		b, err = s.resp.Bytes()
	} else {
		if ce := s.req.HTTP.Header.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
			return gateway.Errorf(http.StatusUnsupportedMediaType, "the request body is compressed (Content-Encoding %s); this route needs it uncompressed", ce)
		}
		b, err = s.req.Body()
	}
	if err != nil {
		return err
	}
	s.body, s.loaded = b, true
	return nil
}

// header returns the header of the message being transformed.
func (s *state) header() http.Header {
	if s.resp != nil {
		return s.resp.Header
	}
	return s.req.HTTP.Header
}

// jsonBody returns the body, checked to be JSON. ok is false when body
// operations do not apply (a reply they skip, an empty body).
func (s *state) jsonBody() (doc []byte, ok bool, err error) {
	return s.jsonBodyIndexed(nil)
}

// jsonBodyIndexed is jsonBody that also indexes the body into ix (when
// not nil) if it checks it now.
func (s *state) jsonBodyIndexed(ix *rootIndex) (doc []byte, ok bool, err error) {
	if !s.bodyApplies() {
		return nil, false, nil
	}
	if err := s.load(); err != nil {
		return nil, false, err
	}
	if len(s.body) == 0 {
		return nil, false, nil
	}
	switch s.format {
	case formatJSON:
		return s.body, true, nil
	case formatXML:
		return nil, false, s.internal(errors.New("a JSON operation found an XML body"))
	}
	if !s.changed {
		if ct := s.header().Get("Content-Type"); ct != "" && !isJSONType(ct) {
			return nil, false, s.notJSON(fmt.Errorf("%w: Content-Type %s", ErrNotJSON, quote(ct)))
		}
	}
	if !scanJSON(s.body, ix) {
		return nil, false, s.notJSON(ErrNotJSON)
	}
	s.format = formatJSON
	return s.body, true, nil
}

// setBody replaces the body with a new one of format f.
func (s *state) setBody(b []byte, f format, ctype string) {
	s.body, s.loaded, s.changed, s.format = b, true, true, f
	if ctype != "" {
		s.ctype = ctype
	}
}

// notJSON answers a body that is not JSON: 400 for a request, 502 for a
// reply. The body is left as it was.
func (s *state) notJSON(err error) error {
	if s.resp != nil {
		return &gateway.Error{Status: http.StatusBadGateway, Detail: "the upstream reply is not JSON, which this route needs", Err: err}
	}
	return &gateway.Error{Status: http.StatusBadRequest, Detail: "the request body is not JSON, which this route needs", Err: err}
}

// badBody answers a body whose content an operation cannot work with.
func (s *state) badBody(detail string, err error) error {
	if s.resp != nil {
		return &gateway.Error{Status: http.StatusBadGateway, Detail: "the upstream reply cannot be reshaped: " + detail, Err: err}
	}
	return &gateway.Error{Status: http.StatusBadRequest, Detail: "the request body cannot be reshaped: " + detail, Err: err}
}

func (s *state) internal(err error) error {
	return &gateway.Error{Status: http.StatusInternalServerError, Detail: "the gateway failed to handle the request", Err: fmt.Errorf("transform: %w", err)}
}

// bodyError turns the error of a field operation into a reply.
func (s *state) bodyError(err error) error {
	switch {
	case errors.Is(err, ErrNotJSON):
		return s.notJSON(err)
	case errors.Is(err, ErrMismatch):
		return s.badBody(strings.TrimPrefix(err.Error(), ErrMismatch.Error()+": "), err)
	}
	return s.internal(err)
}

// isJSONType reports whether the media type ct is JSON: application/json,
// the legacy text/json, or a +json suffix (RFC 6839).
func isJSONType(ct string) bool {
	mt := mediaType(ct)
	return mt == "application/json" || mt == "text/json" || strings.HasSuffix(mt, "+json")
}

// isXMLType reports whether ct is XML: application/xml, text/xml or a +xml
// suffix.
func isXMLType(ct string) bool {
	mt := mediaType(ct)
	return mt == "application/xml" || mt == "text/xml" || strings.HasSuffix(mt, "+xml")
}

func mediaType(ct string) string {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return strings.ToLower(strings.TrimSpace(ct))
}

// charsetOK reports whether ct names no charset or UTF-8 (or its subset
// US-ASCII).
func charsetOK(ct string) bool {
	if strings.IndexByte(ct, ';') < 0 {
		return true
	}
	_, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	cs := strings.ToLower(params["charset"])
	return cs == "" || cs == "utf-8" || cs == "utf8" || cs == "us-ascii"
}

// compile turns ops into steps, checking each against the side it runs on
// and the format of the body at that point.
func compile(ops []Op, inResponse bool) ([]step, error) {
	var steps []step
	var body *bodyStep // the field operations being gathered
	f := formatUnknown
	side := "request"
	if inResponse {
		side = "response"
	}
	for i := range ops {
		op := &ops[i]
		fail := func(err error) error { return fmt.Errorf("transform: op %d (%s): %w", i, op.kind, err) }
		needJSON := func() error {
			if f == formatXML {
				return fail(errors.New("the body is XML at this point (after JSONToXML); JSON operations must come before it"))
			}
			f = formatJSON
			return nil
		}
		if op.kind.isField() {
			if err := needJSON(); err != nil {
				return nil, err
			}
			fo, err := compileField(op, inResponse)
			if err != nil {
				return nil, fail(err)
			}
			if body == nil {
				body = &bodyStep{}
				steps = append(steps, body)
			}
			body.b.ops = append(body.b.ops, fo)
			continue
		}
		body = nil
		switch op.kind {
		case opSetHeader, opAddHeader, opDeleteHeader:
			hs := &headerStep{kind: op.kind}
			if op.kind == opDeleteHeader {
				if len(op.paths) == 0 {
					return nil, fail(errors.New("no header names"))
				}
				for _, n := range op.paths {
					c, err := checkHeaderName(n)
					if err != nil {
						return nil, fail(err)
					}
					hs.names = append(hs.names, c)
				}
			} else {
				c, err := checkHeaderName(op.path)
				if err != nil {
					return nil, fail(err)
				}
				hs.names = []string{c}
				if err := checkValue(&op.value, inResponse); err != nil {
					return nil, fail(err)
				}
				if op.value.usesBody() {
					if err := needJSON(); err != nil {
						return nil, err
					}
				}
				hs.value = op.value
			}
			steps = append(steps, hs)
		case opRewritePath, opReplacePathPrefix, opSetQuery, opAddQuery, opDeleteQuery, opRenameQuery, opAssignRequestID:
			if inResponse {
				return nil, fail(errors.New("changes the request, so it cannot be in a response transform"))
			}
			st, err := compileRequestOp(op)
			if err != nil {
				return nil, fail(err)
			}
			if qs, ok := st.(*queryStep); ok && qs.op.value.usesBody() {
				if err := needJSON(); err != nil {
					return nil, err
				}
			}
			steps = append(steps, st)
		case opMapStatus, opStatusWhen:
			if !inResponse {
				return nil, fail(errors.New("changes the reply status, so it can be only in a response transform"))
			}
			if err := checkStatus(op.toCode); err != nil {
				return nil, fail(err)
			}
			if op.kind == opMapStatus {
				if op.status < 100 || op.status > 999 {
					return nil, fail(fmt.Errorf("from status %d is not a status code", op.status))
				}
				steps = append(steps, &statusStep{from: op.status, to: op.toCode})
				continue
			}
			if err := needJSON(); err != nil {
				return nil, err
			}
			p, err := parsePath(op.path)
			if err != nil {
				return nil, fail(fmt.Errorf("path %s: %w", quote(op.path), err))
			}
			steps = append(steps, &statusWhenStep{p: p, to: op.toCode})
		case opTemplate:
			ts, err := compileTemplate(op, inResponse)
			if err != nil {
				return nil, fail(err)
			}
			f = formatJSON
			steps = append(steps, ts)
		case opJSONToXML:
			if err := needJSON(); err != nil {
				return nil, err
			}
			c, err := NewXMLCodec(op.xml)
			if err != nil {
				return nil, fail(err)
			}
			f = formatXML
			steps = append(steps, &xmlStep{codec: c, toXML: true})
		case opXMLToJSON:
			if f == formatJSON {
				return nil, fail(errors.New("the body is JSON at this point; XMLToJSON must come before JSON operations"))
			}
			c, err := NewXMLCodec(op.xml)
			if err != nil {
				return nil, fail(err)
			}
			f = formatJSON
			steps = append(steps, &xmlStep{codec: c})
		default:
			return nil, fmt.Errorf("transform: op %d: the zero Op is not an operation; build one with Set, SetHeader, ... (%s transform)", i, side)
		}
	}
	return steps, nil
}

// bodyStep runs consecutive field operations on the JSON body.
type bodyStep struct {
	b Body
}

func (b *bodyStep) run(ctx context.Context, s *state) error {
	w := getScratch()
	defer w.release()
	doc, ok, err := s.jsonBodyIndexed(&w.ix)
	if err != nil || !ok {
		return err
	}
	out, err := b.b.apply(doc, &s.env, w)
	if err != nil {
		return s.bodyError(err)
	}
	s.setBody(out, formatJSON, "")
	return nil
}

// headerStep is SetHeader, AddHeader and DeleteHeader.
type headerStep struct {
	kind  opKind
	names []string
	value Value
}

func (h *headerStep) run(ctx context.Context, s *state) error {
	hdr := s.header()
	if h.kind == opDeleteHeader {
		for _, n := range h.names {
			delete(hdr, n)
		}
		return nil
	}
	name := h.names[0]
	if h.kind == opSetHeader {
		delete(hdr, name)
	}
	v, ok, err := s.text(&h.value)
	if err != nil || !ok {
		return err
	}
	if !validHeaderValue(v) {
		return s.badBody("a value for the header "+name+" has control characters", nil)
	}
	if h.kind == opSetHeader {
		hdr[name] = []string{v}
	} else {
		hdr[name] = append(hdr[name], v)
	}
	return nil
}

// text reads a value as text, reading the body first when the value is a
// field of it.
func (s *state) text(v *Value) (string, bool, error) {
	var doc string
	if v.usesBody() {
		b, ok, err := s.jsonBody()
		if err != nil || !ok {
			return "", false, err
		}
		doc = view(b)
	}
	t, ok := v.text(&s.env, doc)
	return t, ok, nil
}

// queryStep is SetQuery, AddQuery, DeleteQuery and RenameQuery.
type queryStep struct {
	op queryOp
}

func (q *queryStep) run(ctx context.Context, s *state) error {
	s.uri = true
	u := s.req.HTTP.URL
	if q.op.kind == queryDelete || q.op.kind == queryRename {
		if u.RawQuery != "" {
			u.RawQuery = q.op.rewrite(u.RawQuery, "", false)
		}
		return nil
	}
	v, ok, err := s.text(&q.op.value)
	if err != nil {
		return err
	}
	if q.op.kind == queryAdd && !ok {
		return nil
	}
	u.RawQuery = q.op.rewrite(u.RawQuery, v, ok)
	return nil
}

// deleteQueries removes several parameters.
type deleteQueries struct {
	ops []queryOp
}

func (d *deleteQueries) run(ctx context.Context, s *state) error {
	s.uri = true
	u := s.req.HTTP.URL
	for i := range d.ops {
		if u.RawQuery == "" {
			return nil
		}
		u.RawQuery = d.ops[i].rewrite(u.RawQuery, "", false)
	}
	return nil
}

type rewriteStep struct{ rw *pathRewrite }

func (r *rewriteStep) run(ctx context.Context, s *state) error {
	s.uri = true
	return r.rw.run(s.req)
}

type prefixStep struct{ pr *prefixRewrite }

func (p *prefixStep) run(ctx context.Context, s *state) error {
	s.uri = true
	p.pr.run(s.req)
	return nil
}

type assignIDStep struct{ a *assignID }

func (a *assignIDStep) run(ctx context.Context, s *state) error {
	a.a.run(s.req)
	s.ids = &a.a.ids
	return nil
}

func compileRequestOp(op *Op) (step, error) {
	switch op.kind {
	case opRewritePath:
		rw, err := compileRewrite(op.path, op.to)
		if err != nil {
			return nil, err
		}
		return &rewriteStep{rw}, nil
	case opReplacePathPrefix:
		pr, err := compilePrefix(op.path, op.to)
		if err != nil {
			return nil, err
		}
		return &prefixStep{pr}, nil
	case opSetQuery, opAddQuery:
		if err := checkQueryName(op.path); err != nil {
			return nil, err
		}
		if err := checkValue(&op.value, false); err != nil {
			return nil, err
		}
		k := querySet
		if op.kind == opAddQuery {
			k = queryAdd
		}
		return &queryStep{op: queryOp{kind: k, name: queryEscape(op.path), raw: op.path, value: op.value}}, nil
	case opDeleteQuery:
		if len(op.paths) == 0 {
			return nil, errors.New("no query parameter names")
		}
		d := &deleteQueries{}
		for _, n := range op.paths {
			if err := checkQueryName(n); err != nil {
				return nil, err
			}
			d.ops = append(d.ops, queryOp{kind: queryDelete, name: queryEscape(n), raw: n})
		}
		return d, nil
	case opRenameQuery:
		if err := checkQueryName(op.path); err != nil {
			return nil, err
		}
		if err := checkQueryName(op.to); err != nil {
			return nil, err
		}
		if op.path == op.to {
			return nil, fmt.Errorf("from and to are the same name %s", quote(op.path))
		}
		return &queryStep{op: queryOp{kind: queryRename, name: queryEscape(op.path), raw: op.path, to: op.to, toEnc: queryEscape(op.to)}}, nil
	case opAssignRequestID:
		h := op.rid.Header
		if h == "" {
			h = DefaultRequestIDHeader
		}
		c, err := checkHeaderName(h)
		if err != nil {
			return nil, fmt.Errorf("Header: %w", err)
		}
		return &assignIDStep{&assignID{header: c, trust: op.rid.TrustClient, ids: idSource{generate: op.rid.Generate}}}, nil
	}
	return nil, errors.New("not a request operation")
}

// statusStep is MapStatus.
type statusStep struct{ from, to int }

func (st *statusStep) run(ctx context.Context, s *state) error {
	cur := s.resp.Status
	if cur == 0 {
		cur = http.StatusOK
	}
	if cur != st.from {
		return nil
	}
	s.setStatus(st.to)
	return nil
}

// setStatus changes the reply's status, dropping the body unread when the
// new status has none (RFC 9110 §6.4.1).
func (s *state) setStatus(code int) {
	r := s.resp
	r.Status = code
	if code == http.StatusNoContent || code == http.StatusNotModified {
		r.Close()
		r.Body, r.ContentLength = nil, 0
		delete(r.Header, "Content-Type")
		delete(r.Header, "Content-Length")
		delete(r.Header, "Content-Encoding")
		s.body, s.loaded, s.changed, s.dropped, s.ctype = nil, true, false, true, ""
	}
}

// statusWhenStep is StatusWhen.
type statusWhenStep struct {
	p  path
	to int
}

func (st *statusWhenStep) run(ctx context.Context, s *state) error {
	doc, ok, err := s.jsonBody()
	if err != nil || !ok {
		return err
	}
	if r := gjson.Get(view(doc), st.p.gjson); r.Exists() && r.Type != gjson.Null {
		s.setStatus(st.to)
	}
	return nil
}

// xmlStep is JSONToXML and XMLToJSON.
type xmlStep struct {
	codec *XMLCodec
	toXML bool
}

func (x *xmlStep) run(ctx context.Context, s *state) error {
	if x.toXML {
		doc, ok, err := s.jsonBody()
		if err != nil || !ok {
			return err
		}
		out, err := x.codec.JSONToXML(nil, doc)
		if err != nil {
			return s.badBody("its JSON has no XML form", err)
		}
		s.setBody(out, formatXML, xmlContentType)
		return nil
	}
	if !s.bodyApplies() {
		return nil
	}
	if err := s.load(); err != nil {
		return err
	}
	if len(s.body) == 0 {
		return nil
	}
	if !s.changed {
		if ct := s.header().Get("Content-Type"); ct != "" && (!isXMLType(ct) || !charsetOK(ct)) {
			return s.notXML(fmt.Errorf("Content-Type %s", quote(ct)))
		}
	}
	out, err := x.codec.XMLToJSON(nil, s.body)
	if err != nil {
		return s.notXML(err)
	}
	s.setBody(out, formatJSON, jsonContentType)
	return nil
}

func (s *state) notXML(err error) error {
	if s.resp != nil {
		return &gateway.Error{Status: http.StatusBadGateway, Detail: "the upstream reply is not XML the gateway accepts", Err: err}
	}
	return &gateway.Error{Status: http.StatusBadRequest, Detail: "the request body is not XML this route accepts", Err: err}
}

const (
	xmlContentType  = "application/xml; charset=utf-8"
	jsonContentType = "application/json"
)
