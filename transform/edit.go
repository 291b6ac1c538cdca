package transform

import (
	"slices"
	"strings"
	"unsafe"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
)

// The edits below find values with gjson and splice the document in one
// pass into a buffer the caller owns, so that an edit costs one scan and
// one copy. The shapes they do not handle (creating array elements,
// writing below a scalar) go to sjson, whose rules they follow.

// edits is what a path needs for editing, compiled with it.
type edits struct {
	// comps[i] is segment i as a gjson path of one key.
	comps []string
	// keys[i] is segment i as a JSON object key followed by ':'.
	keys [][]byte
	// lastIndex is the last segment that is all digits, or -1: segments
	// after it can be created as object members.
	lastIndex int
}

func compileEdits(segs []segment) edits {
	e := edits{lastIndex: -1}
	e.comps = make([]string, len(segs))
	for i := range segs {
		e.comps[i] = gjsonPath(segs[i : i+1])
	}
	e.keys = make([][]byte, len(segs))
	for i, s := range segs {
		e.keys[i] = append(appendJSONString(nil, s.key), ':')
		if isIndex(s.key) {
			e.lastIndex = i
		}
	}
	return e
}

// grow returns dst with room for n more bytes. A new buffer gets some
// headroom, since the next edit usually makes the document a little longer.
func grow(dst []byte, n int) []byte {
	if cap(dst)-len(dst) >= n {
		return dst
	}
	return slices.Grow(dst, n+n/8+64)
}

// root returns the document as a gjson result whose Index and Raw locate it
// in doc (gjson.Parse leaves Index 0 and trailing space in Raw).
func root(doc []byte) gjson.Result {
	s := view(doc)
	r := gjson.Parse(s)
	start := len(s) - len(trimLeft(s))
	end := len(s)
	for end > start && s[end-1] <= ' ' {
		end--
	}
	if r.Type == gjson.JSON {
		r.Raw = s[start:end]
	}
	r.Index = start
	return r
}

// at reports whether r is located in doc (gjson leaves Index 0 when it
// cannot tell).
func at(doc []byte, r gjson.Result) bool {
	return r.Index > 0 && r.Index+len(r.Raw) <= len(doc) && len(r.Raw) > 0 && doc[r.Index] == r.Raw[0]
}

// locate walks the first limit segments of p in doc, one gjson lookup per
// segment inside the value found so far, so the document is scanned once.
// It returns the deepest value found, with its Index in doc, and how many
// segments it took; ok is false when gjson could not place a value (the
// caller then leaves the edit to sjson).
func locate(doc []byte, p *path, limit int, ix *rootIndex) (r gjson.Result, depth int, ok bool) {
	start := 0
	if ix.use() != nil {
		r = ix.root(doc)
		if limit > 0 {
			m := ix.find(doc, p.segs[0].key)
			if m < 0 {
				return r, 0, true
			}
			r, start = ix.value(doc, m), 1
		}
	} else {
		r = root(doc)
	}
	for i := start; i < limit; i++ {
		if r.Type != gjson.JSON {
			return r, i, true
		}
		c := gjson.Get(r.Raw, p.ed.comps[i])
		if !c.Exists() {
			return r, i, true
		}
		if c.Index <= 0 {
			return r, i, false
		}
		c.Index += r.Index
		r = c
	}
	return r, limit, true
}

// splice appends doc with doc[from:to] replaced by the parts.
func splice(dst, doc []byte, from, to int, parts ...[]byte) []byte {
	n := len(doc) - (to - from)
	for _, b := range parts {
		n += len(b)
	}
	dst = grow(dst, n)
	dst = append(dst, doc[:from]...)
	for _, b := range parts {
		dst = append(dst, b...)
	}
	return append(dst, doc[to:]...)
}

// setAt appends doc with the value at p set to raw. r, depth and ok are
// what locate(doc, p, len(p.segs)) returned.
func setAt(dst, doc []byte, p *path, raw []byte, r gjson.Result, depth int, ok bool, ix *rootIndex) ([]byte, error) {
	n := len(p.segs)
	switch {
	case !ok:
	case depth == n:
		if at(doc, r) {
			ix.edited(r.Index, r.Index+len(r.Raw), len(raw))
			return splice(dst, doc, r.Index, r.Index+len(r.Raw), raw), nil
		}
	case r.IsObject() && depth >= p.ed.lastIndex && (depth == 0 || at(doc, r)):
		// The deepest value that exists is an object: it gets the
		// missing members.
		return insertMembers(dst, doc, p, depth, r, raw, ix), nil
	}
	ix.drop()
	out, err := sjson.SetRawBytes(doc, p.sjson, raw)
	if err != nil {
		return nil, err
	}
	return append(grow(dst, len(out)), out...), nil
}

// insertMembers appends doc with `"s_i":{"s_i+1":{ ... "s_n-1":raw}}`
// added as the last member of the object obj.
func insertMembers(dst, doc []byte, p *path, i int, obj gjson.Result, raw []byte, ix *rootIndex) []byte {
	end := obj.Index + len(obj.Raw) - 1 // the '}'
	pos := end
	for pos > obj.Index && doc[pos-1] <= ' ' {
		pos--
	}
	empty := doc[pos-1] == '{'
	n := len(doc) + len(raw) + 1
	for _, k := range p.ed.keys[i:] {
		n += len(k) + 2
	}
	dst = grow(dst, n)
	base := len(dst)
	dst = append(dst, doc[:pos]...)
	if !empty {
		dst = append(dst, ',')
	}
	kStart := len(dst) - base
	last := len(p.segs) - 1
	for j := i; j <= last; j++ {
		dst = append(dst, p.ed.keys[j]...)
		if j < last {
			dst = append(dst, '{')
		}
	}
	dst = append(dst, raw...)
	for j := i; j < last; j++ {
		dst = append(dst, '}')
	}
	added := len(dst) - base - pos
	if i == 0 {
		kEnd := kStart + len(p.ed.keys[0]) - 1
		ix.appended(pos, added, rootMember{kStart: kStart, kEnd: kEnd, vStart: kEnd + 1, vEnd: pos + added})
	} else {
		ix.inserted(pos, added)
	}
	return append(dst, doc[pos:]...)
}

// member finds the member key of the object obj, located in doc: where
// its key starts and ends, and the span to cut to remove it with one of its
// commas. other reports whether obj also has the member otherKey (when not
// ""). Like gjson, it finds the first member of a name.
func member(doc []byte, obj gjson.Result, key, otherKey string) (keyStart, keyEnd, cutFrom, cutTo int, found, other bool) {
	prevEnd, nextKey := -1, -1
	var valEnd int
	i := obj.Index + 1
	for {
		i = skipSpace(doc, i)
		if doc[i] != '"' {
			break // '}'
		}
		ks := i
		ke := skipString(doc, i+1)
		i = skipSpace(doc, ke) + 1 // past ':'
		vs := skipSpace(doc, i)
		ve := skipValue(doc, vs)
		if otherKey != "" && !other && keyIs(doc[ks:ke], otherKey) {
			other = true
		}
		switch {
		case found:
			if nextKey < 0 {
				nextKey = ks
			}
			if otherKey == "" || other {
				i = -1
			}
		case keyIs(doc[ks:ke], key):
			found = true
			keyStart, keyEnd, valEnd = ks, ke, ve
		default:
			prevEnd = ve
		}
		if i < 0 {
			break
		}
		i = skipSpace(doc, ve)
		if doc[i] != ',' {
			break // '}'
		}
		i++
	}
	switch {
	case !found:
	case prevEnd >= 0:
		cutFrom, cutTo = prevEnd, valEnd // `, "key": value`
	case nextKey >= 0:
		cutFrom, cutTo = keyStart, nextKey // `"key": value, `
	default:
		cutFrom, cutTo = keyStart, valEnd
	}
	return
}

// keyIs reports whether the JSON string raw (quotes included) is key.
func keyIs(raw []byte, key string) bool {
	in := raw[1 : len(raw)-1]
	for _, c := range in {
		if c == '\\' {
			return gjson.Parse(view(raw)).Str == key
		}
	}
	return string(in) == key
}

// deleteAt appends doc without the value at p; changed is false when there
// was nothing to delete (and dst is untouched).
func deleteAt(dst, doc []byte, p *path, ix *rootIndex) (out []byte, changed bool, err error) {
	n := len(p.segs)
	parent, depth, ok := locate(doc, p, n-1, ix)
	if depth < n-1 {
		return doc, false, nil
	}
	switch {
	case !ok:
	case parent.IsObject():
		var from, to int
		var found bool
		if n == 1 && ix.use() != nil {
			_, _, from, to, found, _ = ix.member(doc, p.segs[0].key, "")
		} else {
			_, _, from, to, found, _ = member(doc, parent, p.segs[n-1].key, "")
		}
		if !found {
			return doc, false, nil
		}
		ix.edited(from, to, 0)
		return splice(dst, doc, from, to), true, nil
	case parent.IsArray() && isIndex(p.segs[n-1].key):
		if !gjson.Get(parent.Raw, p.ed.comps[n-1]).Exists() {
			return doc, false, nil
		}
	default:
		return doc, false, nil
	}
	ix.drop()
	res, err := sjson.DeleteBytes(doc, p.sjson)
	if err != nil {
		return nil, false, err
	}
	return append(grow(dst, len(res)), res...), true, nil
}

// renameKey appends doc with the member from of the object at p's parent
// renamed to, in place, when both are members of the same object and to
// does not exist yet. ok is false when that is not the case.
func renameKey(dst, doc []byte, from, to *path, ix *rootIndex) (out []byte, ok bool) {
	n := len(from.segs)
	parent, depth, ok := locate(doc, from, n-1, ix)
	if !ok || depth < n-1 || !parent.IsObject() {
		return nil, false
	}
	var ks, ke int
	var found, exists bool
	if n == 1 && ix.use() != nil {
		ks, ke, _, _, found, exists = ix.member(doc, from.segs[0].key, to.segs[0].key)
	} else {
		ks, ke, _, _, found, exists = member(doc, parent, from.segs[n-1].key, to.segs[n-1].key)
	}
	if !found || exists {
		return nil, false
	}
	key := to.ed.keys[n-1]
	key = key[:len(key)-1]
	if n == 1 && ix.use() != nil {
		// The key itself changes: mark it escaped if the new one is.
		if i := ix.find(doc, from.segs[0].key); i >= 0 {
			ix.members[i].esc = strings.IndexByte(view(key), '\\') >= 0
		}
	}
	ix.edited(ks, ke, len(key))
	return splice(dst, doc, ks, ke, key), true
}

// sameData reports whether a and b share their first byte.
func sameData(a, b []byte) bool {
	return cap(a) > 0 && cap(b) > 0 && unsafe.SliceData(a) == unsafe.SliceData(b)
}
