package transform

import (
	"errors"
	"strings"
	"unsafe"
)

// reserved are the characters a path key must escape with '\': besides '.'
// and '\' themselves, those that gjson reads as wildcards ('*', '?'),
// queries and counts ('#'), modifiers ('@'), pipes ('|') and literals
// ('!'). Refusing them unescaped means a gjson path is never silently read
// as something else.
const reserved = `.\*?#@|!`

// A path is a compiled body path: its segments and the gjson and sjson
// paths that address it.
type path struct {
	src  string    // as configured, for errors
	segs []segment // never empty
	// gjson is the path for reading with gjson: keys escaped, '#' kept.
	gjson string
	// sjson is the path for writing with sjson; set only for paths without
	// '#'.
	sjson string
	// ed is what editing needs; set only for paths without '#'.
	ed edits
}

// A segment is one step of a path: an object key (or array index, when it
// is all digits), or "#", every element of an array.
type segment struct {
	key  string
	each bool
}

var errEmptyPath = errors.New("empty path")

// parsePath compiles a path in the package's syntax (see the package
// documentation): keys separated by '.', '\' escaping the next character, a
// segment "#" meaning every element of an array.
func parsePath(s string) (path, error) {
	p := path{src: s}
	if s == "" {
		return p, errEmptyPath
	}
	var key []byte
	escaped := false // the current segment had an escape, so "\#" is a key
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == '.' {
			if len(key) == 0 && !escaped {
				return p, errors.New("empty segment (a key cannot be empty; check for '..' or a '.' at either end)")
			}
			seg := segment{key: string(key)}
			if !escaped && seg.key == "#" {
				seg = segment{each: true}
			}
			p.segs = append(p.segs, seg)
			key, escaped = key[:0], false
			continue
		}
		c := s[i]
		switch {
		case c == '\\':
			if i+1 == len(s) {
				return p, errors.New("'\\' at the end escapes nothing")
			}
			i++
			key = append(key, s[i])
			escaped = true
		case c == '#':
			// "#" alone is a segment; anywhere else it must be escaped.
			if (i > 0 && s[i-1] != '.') || (i+1 < len(s) && s[i+1] != '.') {
				return p, errors.New("'#' must be a whole segment (every element of an array) or escaped as '\\#'")
			}
			key = append(key, c)
		case strings.IndexByte(reserved, c) >= 0:
			return p, errors.New("'" + string(c) + "' is reserved (gjson wildcards, queries, modifiers and pipes are not supported); escape it as '\\" + string(c) + "' to use it in a key")
		default:
			key = append(key, c)
		}
	}
	for i, seg := range p.segs {
		if seg.each && i == 0 && len(p.segs) == 1 {
			// "#" alone would read the length of the document; that is
			// never what an operation wants.
			return p, errors.New("a path cannot be just '#'")
		}
	}
	p.gjson = gjsonPath(p.segs)
	if !p.hasEach() {
		p.sjson = sjsonPath(p.segs)
		p.ed = compileEdits(p.segs)
	}
	return p, nil
}

func (p path) hasEach() bool {
	for _, s := range p.segs {
		if s.each {
			return true
		}
	}
	return false
}

// lastEach returns the index of the last "#" segment, or -1.
func (p path) lastEach() int {
	for i := len(p.segs) - 1; i >= 0; i-- {
		if p.segs[i].each {
			return i
		}
	}
	return -1
}

// sub returns the path made of segs[i:j]; it must not be empty.
func (p path) sub(i, j int) path {
	q := path{segs: p.segs[i:j]}
	q.src = formatPath(q.segs)
	q.gjson = gjsonPath(q.segs)
	if !q.hasEach() {
		q.sjson = sjsonPath(q.segs)
		q.ed = compileEdits(q.segs)
	}
	return q
}

// formatPath writes segs back in the package's syntax.
func formatPath(segs []segment) string {
	var b strings.Builder
	for i, s := range segs {
		if i > 0 {
			b.WriteByte('.')
		}
		if s.each {
			b.WriteByte('#')
			continue
		}
		for j := 0; j < len(s.key); j++ {
			if strings.IndexByte(reserved, s.key[j]) >= 0 {
				b.WriteByte('\\')
			}
			b.WriteByte(s.key[j])
		}
	}
	return b.String()
}

// gjsonSafe reports whether c can appear unescaped in a gjson or sjson path
// key. Everything else is escaped, which both libraries accept for any
// character.
func gjsonSafe(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c >= 0x80
}

func appendEscapedKey(b []byte, key string) []byte {
	for i := 0; i < len(key); i++ {
		if !gjsonSafe(key[i]) {
			b = append(b, '\\')
		}
		b = append(b, key[i])
	}
	return b
}

func gjsonPath(segs []segment) string {
	var b []byte
	for i, s := range segs {
		if i > 0 {
			b = append(b, '.')
		}
		if s.each {
			b = append(b, '#')
			continue
		}
		b = appendEscapedKey(b, s.key)
	}
	return string(b)
}

func sjsonPath(segs []segment) string {
	var b []byte
	for i, s := range segs {
		if i > 0 {
			b = append(b, '.')
		}
		// sjson reads a key "-1" as "the last element" and a leading ':'
		// as "force a key"; ':' forces "-1" to be the key it says.
		if s.key == "-1" {
			b = append(b, ':')
		}
		b = appendEscapedKey(b, s.key)
	}
	return string(b)
}

// bytesView returns s as bytes without copying; the bytes must not be
// written to.
func bytesView(s string) []byte {
	if s == "" {
		return nil
	}
	return unsafe.Slice(unsafe.StringData(s), len(s))
}

// view returns b as a string without copying. The package never changes a
// byte slice after it has been viewed: every edit makes a new slice.
func view(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}
