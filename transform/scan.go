package transform

import (
	"encoding/binary"
	"math/bits"
)

// scanJSON reports whether doc is one JSON value with nothing but
// whitespace around it, by the same rules as gjson.Valid (which does not
// check that strings are valid UTF-8). When ix is not nil and the value is
// an object, it also indexes the object's members, so a Body checks and
// indexes a document in one pass instead of two.
//
// It keeps the kinds of the open containers on a bit stack, not the Go
// stack, so the nesting depth costs one bit per level and cannot overflow
// anything.
func scanJSON(doc []byte, ix *rootIndex) bool {
	if ix != nil {
		if ix.members == nil {
			ix.members = ix.small[:0]
		}
		ix.ok, ix.members = false, ix.members[:0]
	}
	var (
		i, n  = 0, len(doc)
		depth int
		// objs holds one bit per open container, 1 for an object; the
		// first 64 levels live in inline, the rest in more.
		inline uint64
		more   []uint64
		// indexing: depth 1 is the root object and ix wants its members.
		indexing bool
		// inObj is whether the innermost open container is an object.
		inObj bool
		ok    bool
	)
	// bit reports whether the container at level d (0 the root) is an
	// object.
	bit := func(d int) bool {
		if d < 64 {
			return inline&(1<<d) != 0
		}
		d -= 64
		return more[d/64]&(1<<(d%64)) != 0
	}
	push := func(obj bool) {
		d := depth
		depth++
		inObj = obj
		if d < 64 {
			if obj {
				inline |= 1 << d
			} else {
				inline &^= 1 << d
			}
			return
		}
		d -= 64
		if d/64 == len(more) {
			more = append(more, 0)
		}
		if obj {
			more[d/64] |= 1 << (d % 64)
		} else {
			more[d/64] &^= 1 << (d % 64)
		}
	}
	pop := func() {
		depth--
		if depth > 0 {
			inObj = bit(depth - 1)
		}
	}

	i = skipSpace(doc, i)
value:
	if i >= n {
		return false
	}
	if indexing && depth == 1 {
		ix.members[len(ix.members)-1].vStart = i
	}
	switch c := doc[i]; c {
	case '{':
		push(true)
		if depth == 1 && ix != nil {
			indexing = true
			ix.open = i
		}
		i = skipSpace(doc, i+1)
		if i < n && doc[i] == '}' {
			if indexing && depth == 1 {
				ix.close = i
			}
			i++
			pop()
			goto end
		}
		goto key
	case '[':
		push(false)
		i = skipSpace(doc, i+1)
		if i < n && doc[i] == ']' {
			i++
			pop()
			goto end
		}
		goto value
	case '"':
		// Plain bytes are skipped eight at a time, inline; scanString
		// takes over from the first special one.
		i = skipPlain(doc, i+1)
		if i < n && doc[i] == '"' {
			i++
		} else if i, ok = scanString(doc, i); !ok {
			return false
		}
	case 't':
		if !hasWord(doc, i, "true") {
			return false
		}
		i += 4
	case 'f':
		if !hasWord(doc, i, "false") {
			return false
		}
		i += 5
	case 'n':
		if !hasWord(doc, i, "null") {
			return false
		}
		i += 4
	default:
		// Inline, the common number: an integer that is not followed
		// by a fraction or an exponent.
		if '1' <= c && c <= '9' {
			j := i + 1
			for j < n && '0' <= doc[j] && doc[j] <= '9' {
				j++
			}
			if j >= n || doc[j] != '.' && doc[j]|0x20 != 'e' {
				i = j
				break
			}
		}
		if i, ok = scanNumber(doc, i); !ok {
			return false
		}
	}

end:
	// A value ended at i.
	if depth == 0 {
		if indexing {
			ix.ok = true
		}
		return skipSpace(doc, i) == n
	}
	if indexing && depth == 1 {
		ix.members[len(ix.members)-1].vEnd = i
	}
	i = skipSpace(doc, i)
	if i >= n {
		return false
	}
	if inObj {
		switch doc[i] {
		case ',':
			i = skipSpace(doc, i+1)
			goto key
		case '}':
			if indexing && depth == 1 {
				ix.close = i
			}
			i++
			pop()
			goto end
		}
		return false
	}
	switch doc[i] {
	case ',':
		i = skipSpace(doc, i+1)
		goto value
	case ']':
		i++
		pop()
		goto end
	}
	return false

key:
	// A member's key starts at i.
	if i >= n || doc[i] != '"' {
		return false
	}
	{
		start := i
		i = skipPlain(doc, i+1)
		if i < n && doc[i] == '"' {
			i++
		} else if i, ok = scanString(doc, i); !ok {
			return false
		}
		if indexing && depth == 1 {
			esc := false
			for _, c := range doc[start+1 : i-1] {
				if c == '\\' {
					esc = true
					break
				}
			}
			ix.members = append(ix.members, rootMember{kStart: start, kEnd: i, esc: esc})
		}
	}
	i = skipSpace(doc, i)
	if i >= n || doc[i] != ':' {
		return false
	}
	i = skipSpace(doc, i+1)
	goto value
}

func skipSpace(doc []byte, i int) int {
	for i < len(doc) && doc[i] <= ' ' {
		switch doc[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

func hasWord(doc []byte, i int, w string) bool {
	return len(doc)-i >= len(w) && string(doc[i:i+len(w)]) == w
}

const (
	lows  = 0x0101010101010101
	highs = 0x8080808080808080
)

// specials has the high bit set in each byte of x that is a quote, a
// backslash or a control character (and maybe in bytes above such a byte:
// only the lowest set bit is exact).
func specials(x uint64) uint64 {
	q := x ^ ('"' * lows)
	b := x ^ ('\\' * lows)
	return (((q - lows) &^ q) | ((b - lows) &^ b) | (x - ' '*lows)) & (highs &^ x)
}

// skipPlain skips, eight bytes at a time, the bytes from i that are not
// specials. It stops at the first special one, or fewer than eight bytes
// from the end.
func skipPlain(doc []byte, i int) int {
	for len(doc)-i >= 8 {
		if m := specials(binary.LittleEndian.Uint64(doc[i:])); m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
		i += 8
	}
	return i
}

// scanString scans the rest of a string whose opening quote is before i
// and returns the position after its closing quote.
func scanString(doc []byte, i int) (int, bool) {
	for {
		// Eight bytes at a time while none is a quote, a backslash or
		// a control character.
		i = skipPlain(doc, i)
		if i >= len(doc) {
			return i, false
		}
		switch c := doc[i]; {
		case c == '"':
			return i + 1, true
		case c < ' ':
			return i, false
		case c == '\\':
			i++
			if i >= len(doc) {
				return i, false
			}
			switch doc[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				if len(doc)-i < 5 {
					return i, false
				}
				for _, h := range doc[i+1 : i+5] {
					if !isHex(h) {
						return i, false
					}
				}
				i += 5
			default:
				return i, false
			}
		default:
			i++
		}
	}
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// scanNumber scans a number that starts at i and returns the position
// after it.
func scanNumber(doc []byte, i int) (int, bool) {
	n := len(doc)
	if doc[i] == '-' {
		i++
	}
	switch {
	case i >= n:
		return i, false
	case doc[i] == '0':
		i++
	case '1' <= doc[i] && doc[i] <= '9':
		i = digits(doc, i+1)
	default:
		return i, false
	}
	if i < n && doc[i] == '.' {
		j := digits(doc, i+1)
		if j == i+1 {
			return j, false
		}
		i = j
	}
	if i < n && (doc[i] == 'e' || doc[i] == 'E') {
		i++
		if i < n && (doc[i] == '+' || doc[i] == '-') {
			i++
		}
		j := digits(doc, i)
		if j == i {
			return j, false
		}
		i = j
	}
	return i, true
}

func digits(doc []byte, i int) int {
	for i < len(doc) && '0' <= doc[i] && doc[i] <= '9' {
		i++
	}
	return i
}

// skipString returns the position after the closing quote of a string
// whose opening quote is before i, in a document known to be valid.
func skipString(doc []byte, i int) int {
	for {
		i = skipPlain(doc, i)
		if i >= len(doc) {
			return i
		}
		switch doc[i] {
		case '"':
			return i + 1
		case '\\':
			i += 2
		default:
			i++
		}
	}
}

// skipValue returns the position after the value that starts at i, in a
// document known to be valid.
func skipValue(doc []byte, i int) int {
	switch doc[i] {
	case '"':
		return skipString(doc, i+1)
	case '{', '[':
		depth := 0
		for i < len(doc) {
			switch doc[i] {
			case '"':
				i = skipString(doc, i+1)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	}
	for i < len(doc) {
		switch doc[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return i
		}
		i++
	}
	return i
}
