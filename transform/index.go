package transform

import (
	"github.com/tidwall/gjson"
)

// A rootIndex, built by scanJSON, locates the members of a document that is an object, so that
// a run of edits finds top-level members (and notices missing ones) without
// scanning the document again for each edit. Every edit of the document
// either updates the index or drops it (ok false); the edits then fall back
// to gjson lookups. It holds offsets only, never decoded values.
type rootIndex struct {
	ok      bool
	open    int // the object's '{'
	close   int // the object's '}'
	members []rootMember
	small   [16]rootMember // members of most documents, without another allocation
}

type rootMember struct {
	kStart, kEnd int  // the key, with its quotes
	vStart, vEnd int  // the value
	esc          bool // the key has escapes: decode it to compare
}

// use returns ix when it can answer for doc, else nil.
func (ix *rootIndex) use() *rootIndex {
	if ix == nil || !ix.ok {
		return nil
	}
	return ix
}

func (ix *rootIndex) drop() {
	if ix != nil {
		ix.ok = false
	}
}

// find returns the position in members of the first member called key, or
// -1, as gjson would find it.
func (ix *rootIndex) find(doc []byte, key string) int {
	for i, m := range ix.members {
		raw := view(doc[m.kStart:m.kEnd])
		if m.esc {
			if gjson.Parse(raw).Str == key {
				return i
			}
		} else if raw[1:len(raw)-1] == key {
			return i
		}
	}
	return -1
}

// value returns member i's value as gjson would find it in doc.
func (ix *rootIndex) value(doc []byte, i int) gjson.Result {
	m := ix.members[i]
	raw := view(doc[m.vStart:m.vEnd])
	if c := raw[0]; c == '{' || c == '[' {
		return gjson.Result{Type: gjson.JSON, Raw: raw, Index: m.vStart}
	}
	r := gjson.Parse(raw)
	r.Index = m.vStart
	return r
}

// root returns the document, an object, as root(doc) would.
func (ix *rootIndex) root(doc []byte) gjson.Result {
	return gjson.Result{Type: gjson.JSON, Raw: view(doc[ix.open : ix.close+1]), Index: ix.open}
}

// member answers like the function member for the document itself.
func (ix *rootIndex) member(doc []byte, key, otherKey string) (keyStart, keyEnd, cutFrom, cutTo int, found, other bool) {
	i := ix.find(doc, key)
	if otherKey != "" {
		other = ix.find(doc, otherKey) >= 0
	}
	if i < 0 {
		return
	}
	m := ix.members[i]
	switch {
	case i > 0:
		cutFrom, cutTo = ix.members[i-1].vEnd, m.vEnd
	case i+1 < len(ix.members):
		cutFrom, cutTo = m.kStart, ix.members[i+1].kStart
	default:
		cutFrom, cutTo = m.kStart, m.vEnd
	}
	return m.kStart, m.kEnd, cutFrom, cutTo, true, other
}

// edited updates the index after doc[from:to] (from < to, inside the
// object) was replaced by n bytes: members cut out entirely are removed,
// offsets at or after to move.
func (ix *rootIndex) edited(from, to, n int) {
	if ix.use() == nil {
		return
	}
	if from >= to || to > ix.close {
		ix.ok = false
		return
	}
	delta := n - (to - from)
	shift := func(p int) int {
		if p >= to {
			return p + delta
		}
		return p
	}
	k := 0
	for _, m := range ix.members {
		if m.kStart >= from && m.vEnd <= to {
			continue
		}
		m.kStart, m.kEnd, m.vStart, m.vEnd = shift(m.kStart), shift(m.kEnd), shift(m.vStart), shift(m.vEnd)
		ix.members[k] = m
		k++
	}
	ix.members = ix.members[:k]
	ix.close = shift(ix.close)
}

// inserted updates the index after n bytes were inserted at pos, strictly
// inside the value of a member (pos < its end).
func (ix *rootIndex) inserted(pos, n int) {
	if ix.use() == nil {
		return
	}
	for i := range ix.members {
		m := &ix.members[i]
		switch {
		case m.kStart >= pos:
			m.kStart, m.kEnd, m.vStart, m.vEnd = m.kStart+n, m.kEnd+n, m.vStart+n, m.vEnd+n
		case m.vEnd > pos:
			m.vEnd += n
		}
	}
	ix.close += n
}

// appended updates the index after a member was added at the end of the
// object: n bytes inserted at pos, the new member's key and value at the
// given offsets of the new document.
func (ix *rootIndex) appended(pos, n int, m rootMember) {
	if ix.use() == nil {
		return
	}
	ix.members = append(ix.members, m)
	ix.close += n
}
