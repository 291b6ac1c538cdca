package transform

import (
	"errors"
	"fmt"
	"sync"

	"github.com/gatekit/gatekit/gateway"
	"github.com/tidwall/gjson"
)

// ErrNotJSON is the error, wrapped, of an operation that needs a JSON body
// and finds something else. A transform answers it with 400 for a request
// and 502 for a reply.
var ErrNotJSON = errors.New("transform: the body is not JSON")

// ErrMismatch is the error, wrapped, of an operation the body's shape does
// not allow: Unwrap of a member that is missing, Set on a body that is not
// an object. A transform answers it with 400 for a request and 502 for a
// reply.
var ErrMismatch = errors.New("transform: the body does not have the expected shape")

// A Body is a compiled list of field operations (Set, Default, Rename,
// Delete, Keep, Wrap, Unwrap) that reshapes a JSON document. Request and
// Response use one for the body operations of their Config; NewBody makes
// one to apply to bytes directly. A Body is safe for concurrent use.
type Body struct {
	ops []fieldOp
}

// NewBody compiles ops, which must all be field operations, into a Body.
// An error names the index of the operation at fault and its path.
func NewBody(ops ...Op) (*Body, error) {
	b := &Body{}
	for i := range ops {
		op := &ops[i]
		if !op.kind.isField() {
			return nil, fmt.Errorf("transform: op %d (%s): NewBody takes field operations only (Set, Default, Rename, Delete, Keep, Wrap, Unwrap)", i, op.kind)
		}
		f, err := compileField(op, false)
		if err != nil {
			return nil, fmt.Errorf("transform: op %d (%s): %w", i, op.kind, err)
		}
		b.ops = append(b.ops, f)
	}
	return b, nil
}

// Apply runs the operations on the JSON document doc and returns the new
// document; doc itself is never changed. Values read from the request
// (Param, Query, Header, Claim, ...) come from req, which may be nil: they
// are then missing. Invalid JSON fails with an error wrapping ErrNotJSON.
func (b *Body) Apply(req *gateway.Request, doc []byte) ([]byte, error) {
	w := getScratch()
	defer w.release()
	if !scanJSON(doc, &w.ix) {
		return doc, ErrNotJSON
	}
	w.e = env{req: req}
	return b.apply(doc, &w.e, w)
}

// apply runs the operations on doc, which is valid JSON. w.ix indexes doc
// when w.ix.ok; otherwise apply indexes it when that pays.
func (b *Body) apply(doc []byte, e *env, w *scratch) ([]byte, error) {
	// Each edit writes into a buffer of its own; two buffers take turns,
	// one of them the scratch's, so that any number of edits costs one
	// allocation (the result) once the scratch's buffer has grown. The
	// caller's doc is never written to.
	spare := w.spare
	w.spare = nil
	ix := &w.ix
	owned := false
	for i, op := range b.ops {
		if !ix.ok && len(b.ops)-i > 1 && rootKind(doc) == '{' {
			// Several edits to come: find the top-level members once.
			scanJSON(doc, ix)
		}
		out, changed, err := op.apply(spare[:0], doc, e, ix)
		if err != nil {
			return nil, err
		}
		if !changed {
			continue
		}
		if owned && !sameData(out, doc) {
			spare = doc
		} else if !sameData(out, spare) {
			// The edit did not use spare (it had to grow it, or
			// used a buffer of its own): keep it for the next one.
		} else {
			spare = nil
		}
		doc, owned = out, true
	}
	// The buffer that is not the result holds nothing live any more.
	if cap(spare) <= maxPooled && !sameData(spare, doc) {
		w.spare = spare[:0]
	}
	return doc, nil
}

// maxPooled is the largest buffer a scratch keeps between documents:
// larger documents are rare enough that keeping one would only hold
// memory.
const maxPooled = 128 << 10

// A scratch is the working memory of one application of a Body: the
// index, the values' environment and a spare buffer, pooled so that a
// Body allocates nothing but its result.
type scratch struct {
	ix    rootIndex
	e     env
	spare []byte
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

func getScratch() *scratch {
	return scratchPool.Get().(*scratch)
}

func (w *scratch) release() {
	w.e = env{}
	w.ix.ok = false
	if cap(w.ix.members) > 256 {
		w.ix.members = nil
	}
	scratchPool.Put(w)
}

// A fieldOp is one compiled field operation. apply appends the new
// document to dst and reports changed, or returns doc itself, unchanged,
// with changed false. It never writes to doc.
//
// ix, when not nil, indexes the top-level members of doc; apply keeps it
// right for the document it returns, or drops it.
type fieldOp interface {
	apply(dst, doc []byte, e *env, ix *rootIndex) (out []byte, changed bool, err error)
}

// An elemFunc edits one element (or the whole document) like a fieldOp; ix
// is nil for an element.
type elemFunc func(dst, elem []byte, ix *rootIndex) ([]byte, bool, error)

// A scope is the "#" prefix of a path: the operation runs in every element
// of the array (of arrays...) it names. levels[i] is the gjson path, from an
// element of level i-1 (or the document), of the array of level i; ""
// means the element is the array.
type scope struct {
	levels []string
}

// splitScope splits p at its last "#": the scope, and the path inside
// every element (which has no "#").
func splitScope(p path) (scope, path, error) {
	last := p.lastEach()
	if last < 0 {
		return scope{}, p, nil
	}
	if last == len(p.segs)-1 {
		return scope{}, p, errors.New("a path to write cannot end in '#'; name a member of the elements")
	}
	var s scope
	start := 0
	for i := 0; i <= last; i++ {
		if p.segs[i].each {
			s.levels = append(s.levels, gjsonPath(p.segs[start:i]))
			start = i + 1
		}
	}
	return s, p.sub(last+1, len(p.segs)), nil
}

func sameScope(a, b scope) bool {
	if len(a.levels) != len(b.levels) {
		return false
	}
	for i := range a.levels {
		if a.levels[i] != b.levels[i] {
			return false
		}
	}
	return true
}

// run applies f to doc when the scope is empty, and otherwise to every
// element of the scope's arrays, rebuilding them around the results.
func (s scope) run(dst, doc []byte, f elemFunc, ix *rootIndex) ([]byte, bool, error) {
	if len(s.levels) == 0 {
		return f(dst, doc, ix)
	}
	return eachElem(dst, doc, s.levels, f, ix)
}

func eachElem(dst, doc []byte, levels []string, f elemFunc, ix *rootIndex) ([]byte, bool, error) {
	var arr gjson.Result
	if levels[0] == "" {
		arr = root(doc)
	} else {
		arr = gjson.Get(view(doc), levels[0])
		if !at(doc, arr) {
			return doc, false, nil
		}
	}
	if !arr.IsArray() {
		return doc, false, nil
	}
	dst = grow(dst, len(doc)+len(doc)/8)
	base := len(dst)
	dst = append(dst, doc[:arr.Index]...)
	dst = append(dst, '[')
	n := 0
	var err error
	arr.ForEach(func(_, el gjson.Result) bool {
		elem := doc[el.Index : el.Index+len(el.Raw)]
		if n > 0 {
			dst = append(dst, ',')
		}
		n++
		var out []byte
		var changed bool
		if len(levels) > 1 {
			out, changed, err = eachElem(dst, elem, levels[1:], f, nil)
		} else {
			out, changed, err = f(dst, elem, nil)
		}
		if err != nil {
			return false
		}
		if changed {
			dst = out
		} else {
			dst = append(dst, elem...)
		}
		return true
	})
	if err != nil {
		return nil, false, err
	}
	dst = append(dst, ']')
	if levels[0] == "" {
		ix.drop()
	} else {
		ix.edited(arr.Index, arr.Index+len(arr.Raw), len(dst)-base-arr.Index)
	}
	dst = append(dst, doc[arr.Index+len(arr.Raw):]...)
	return dst, true, nil
}

func trimLeft(s string) string {
	for len(s) > 0 && s[0] <= ' ' {
		s = s[1:]
	}
	return s
}

// rootKind returns the first non-space byte of doc: '{', '[', or another.
func rootKind(doc []byte) byte {
	for _, c := range doc {
		if c > ' ' {
			return c
		}
	}
	return 0
}

// writable reports whether p can be written into doc without replacing
// the document: doc is an object, or an array and p begins with an index.
func writable(doc []byte, p *path) bool {
	switch rootKind(doc) {
	case '{':
		return true
	case '[':
		return isIndex(p.segs[0].key)
	}
	return false
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

func mismatch(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMismatch}, args...)...)
}

// setOp is Set and Default.
type setOp struct {
	scope scope
	dst   path // inside every element of scope
	val   Value
	rel   *path // a Field value read from the same element
	def   bool  // Default: only where dst is missing
}

func (o *setOp) apply(dst, doc []byte, e *env, ix *rootIndex) ([]byte, bool, error) {
	var raw []byte
	var has bool
	if o.rel == nil {
		raw, has = o.val.json(e, view(doc))
	}
	if len(o.scope.levels) == 0 {
		if !writable(doc, &o.dst) {
			return nil, false, mismatch("cannot set %s: the body is not an object", quote(o.dst.src))
		}
		return o.set(dst, doc, raw, has, ix)
	}
	return eachElem(dst, doc, o.scope.levels, func(dst, elem []byte, _ *rootIndex) ([]byte, bool, error) {
		if !writable(elem, &o.dst) {
			return elem, false, nil // elements that are not objects are left alone
		}
		return o.set(dst, elem, raw, has, nil)
	}, ix)
}

func (o *setOp) set(dst, elem []byte, raw []byte, has bool, ix *rootIndex) ([]byte, bool, error) {
	n := len(o.dst.segs)
	cur, depth, ok := locate(elem, &o.dst, n, ix)
	exists := depth == n || !ok && gjson.Get(view(elem), o.dst.gjson).Exists()
	if o.def && exists {
		return elem, false, nil
	}
	if o.rel != nil {
		r := gjson.Get(view(elem), o.rel.gjson)
		raw, has = bytesView(r.Raw), r.Exists()
	}
	if !has {
		if o.def || !exists {
			return elem, false, nil
		}
		// Set with a missing value removes the member, so the document
		// never keeps a value the client put where the gateway's belongs.
		return deletePath(dst, elem, &o.dst, ix)
	}
	out, err := setAt(dst, elem, &o.dst, raw, cur, depth, ok, ix)
	if err != nil {
		return nil, false, mismatch("cannot set %s: %v", quote(o.dst.src), err)
	}
	return out, true, nil
}

func deletePath(dst, doc []byte, p *path, ix *rootIndex) ([]byte, bool, error) {
	switch rootKind(doc) {
	case '{', '[':
	default:
		return doc, false, nil
	}
	out, changed, err := deleteAt(dst, doc, p, ix)
	if err != nil {
		return nil, false, mismatch("cannot delete %s: %v", quote(p.src), err)
	}
	return out, changed, nil
}

// deleteOp is Delete.
type deleteOp struct {
	targets []scopedPath
}

type scopedPath struct {
	scope scope
	p     path
}

func (o *deleteOp) apply(dst, doc []byte, e *env, ix *rootIndex) ([]byte, bool, error) {
	if len(o.targets) == 1 {
		t := &o.targets[0]
		return t.scope.run(dst, doc, func(dst, elem []byte, ix *rootIndex) ([]byte, bool, error) { return deletePath(dst, elem, &t.p, ix) }, ix)
	}
	// Several paths: each deletion needs a buffer of its own.
	changedAny := false
	for i := range o.targets {
		t := &o.targets[i]
		out, changed, err := t.scope.run(nil, doc, func(dst, elem []byte, ix *rootIndex) ([]byte, bool, error) { return deletePath(dst, elem, &t.p, ix) }, ix)
		if err != nil {
			return nil, false, err
		}
		if changed {
			doc, changedAny = out, true
		}
	}
	if !changedAny {
		return doc, false, nil
	}
	return append(grow(dst, len(doc)), doc...), true, nil
}

// renameOp is Rename.
type renameOp struct {
	scope      scope
	from, to   path
	sameParent bool // from and to are members of the same object
}

func (o *renameOp) apply(dst, doc []byte, e *env, ix *rootIndex) ([]byte, bool, error) {
	return o.scope.run(dst, doc, func(dst, elem []byte, ix *rootIndex) ([]byte, bool, error) {
		if o.sameParent {
			if out, ok := renameKey(dst, elem, &o.from, &o.to, ix); ok {
				return out, true, nil
			}
		}
		r, depth, ok := locate(elem, &o.from, len(o.from.segs), ix)
		if depth < len(o.from.segs) || !ok {
			if ok || !gjson.Get(view(elem), o.from.gjson).Exists() {
				return elem, false, nil
			}
			r = gjson.Get(view(elem), o.from.gjson)
		}
		tmp, _, err := deletePath(nil, elem, &o.from, ix)
		if err != nil {
			return nil, false, err
		}
		if !writable(tmp, &o.to) {
			ix.drop()
			return elem, false, nil
		}
		cur, depth, ok := locate(tmp, &o.to, len(o.to.segs), ix)
		out, err := setAt(dst, tmp, &o.to, bytesView(r.Raw), cur, depth, ok, ix)
		if err != nil {
			return nil, false, mismatch("cannot move %s to %s: %v", quote(o.from.src), quote(o.to.src), err)
		}
		return out, true, nil
	}, ix)
}

// wrapOp is Wrap: the document becomes the value of a member.
type wrapOp struct {
	prefix, suffix []byte
}

func (o *wrapOp) apply(dst, doc []byte, e *env, ix *rootIndex) ([]byte, bool, error) {
	ix.drop()
	dst = grow(dst, len(o.prefix)+len(doc)+len(o.suffix))
	dst = append(dst, o.prefix...)
	dst = append(dst, trimSpace(doc)...)
	return append(dst, o.suffix...), true, nil
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && b[0] <= ' ' {
		b = b[1:]
	}
	for len(b) > 0 && b[len(b)-1] <= ' ' {
		b = b[:len(b)-1]
	}
	return b
}

// unwrapOp is Unwrap: the document becomes the value at a path.
type unwrapOp struct {
	p path
}

func (o *unwrapOp) apply(dst, doc []byte, e *env, ix *rootIndex) ([]byte, bool, error) {
	ix.drop()
	r := gjson.Get(view(doc), o.p.gjson)
	if !r.Exists() {
		return nil, false, mismatch("the body has no %s to unwrap", quote(o.p.src))
	}
	return append(grow(dst, len(r.Raw)), r.Raw...), true, nil
}

// keepOp is Keep: an allow-list of paths, as a tree.
type keepOp struct {
	root *keepNode
}

type keepNode struct {
	leaf bool                 // keep the whole value
	keys map[string]*keepNode // members to keep
	each *keepNode            // what to keep of every element
}

func (n *keepNode) add(segs []segment) error {
	if n.leaf {
		return nil
	}
	if len(segs) == 0 {
		n.leaf, n.keys, n.each = true, nil, nil
		return nil
	}
	s := segs[0]
	if s.each {
		if n.keys != nil {
			return errors.New("a value cannot be kept both as an object (a key) and as an array ('#')")
		}
		if n.each == nil {
			n.each = &keepNode{}
		}
		return n.each.add(segs[1:])
	}
	if n.each != nil {
		return errors.New("a value cannot be kept both as an object (a key) and as an array ('#')")
	}
	if n.keys == nil {
		n.keys = make(map[string]*keepNode)
	}
	c := n.keys[s.key]
	if c == nil {
		c = &keepNode{}
		n.keys[s.key] = c
	}
	return c.add(segs[1:])
}

func (o *keepOp) apply(dst, doc []byte, e *env, ix *rootIndex) ([]byte, bool, error) {
	ix.drop()
	r := root(doc)
	if o.root.each != nil {
		if !r.IsArray() {
			return append(dst, "[]"...), true, nil
		}
	} else if !r.IsObject() {
		return append(dst, "{}"...), true, nil
	}
	return keepValue(grow(dst, len(doc)), r, o.root), true, nil
}

// keepValue appends what n keeps of r; r has the shape n expects.
func keepValue(out []byte, r gjson.Result, n *keepNode) []byte {
	if n.leaf {
		return append(out, r.Raw...)
	}
	if n.each != nil {
		out = append(out, '[')
		first := true
		r.ForEach(func(_, v gjson.Result) bool {
			if !first {
				out = append(out, ',')
			}
			first = false
			if fits(v, n.each) {
				out = keepValue(out, v, n.each)
			} else {
				out = append(out, "null"...)
			}
			return true
		})
		return append(out, ']')
	}
	out = append(out, '{')
	first := true
	r.ForEach(func(k, v gjson.Result) bool {
		c := n.keys[k.Str]
		if c == nil || !fits(v, c) {
			return true
		}
		if !first {
			out = append(out, ',')
		}
		first = false
		out = append(out, k.Raw...)
		out = append(out, ':')
		out = keepValue(out, v, c)
		return true
	})
	return append(out, '}')
}

// fits reports whether v has the shape n keeps parts of.
func fits(v gjson.Result, n *keepNode) bool {
	switch {
	case n.leaf:
		return true
	case n.each != nil:
		return v.IsArray()
	default:
		return v.IsObject()
	}
}
