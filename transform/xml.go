package transform

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/gatekit/gatekit/gateway"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"encoding/xml"

	"github.com/tidwall/gjson"
)

// Defaults of XMLConfig.
const (
	DefaultXMLRoot        = "root"
	DefaultXMLItem        = "item"
	DefaultXMLMaxDepth    = 64
	DefaultXMLMaxBytes    = 4 << 20
	DefaultXMLMaxElements = 100_000
)

// HintNamespace is the namespace of the type-hint attribute json:type,
// declared as xmlns:json on the root element of XML that carries hints.
const HintNamespace = "urn:gatekit:json"

// ErrNotXML is the error, wrapped, of XMLToJSON on input it does not
// accept: XML that is not well-formed, has a DOCTYPE, is not UTF-8, or
// exceeds a limit.
var ErrNotXML = errors.New("transform: not acceptable XML")

// XMLConfig configures the JSON⇄XML conversion of an XMLCodec, JSONToXML
// and XMLToJSON. The zero value is usable.
type XMLConfig struct {
	// Root names the root element JSONToXML writes; "" means
	// DefaultXMLRoot. XMLToJSON accepts a root of any name.
	Root string

	// Item names the elements that hold the items of a list: a JSON array
	// that is not the value of an object member (the document itself, or
	// an array inside an array); "" means DefaultXMLItem.
	Item string

	// Arrays lists element paths whose elements are always JSON arrays,
	// even when there is one of them: "order/line" names the <line>
	// children of <order> children of the root. Names are separated by
	// '/' and the root is left out. JSONToXML writes no "array" hint for
	// them, which a backend that knows nothing of hints needs.
	Arrays []string

	// KeepStrings turns type inference off: XMLToJSON reads every text
	// and attribute as a JSON string unless a hint says otherwise (and
	// JSONToXML writes hints for numbers and booleans instead of for
	// strings that look like them).
	KeepStrings bool

	// NoHints stops JSONToXML from writing json:type hints, for a backend
	// that refuses attributes it does not know. The conversion is then
	// exact only for documents that inference and Arrays read back as
	// they were (no null, no empty object or array, no one-item array
	// outside Arrays, no string that reads as a number or boolean).
	NoHints bool

	// Declaration makes JSONToXML begin with
	// <?xml version="1.0" encoding="UTF-8"?>.
	Declaration bool

	// MaxDepth bounds the nesting of elements (XMLToJSON) and of JSON
	// values (JSONToXML); 0 means DefaultXMLMaxDepth.
	MaxDepth int

	// MaxBytes bounds the XML that XMLToJSON reads; 0 means
	// DefaultXMLMaxBytes.
	MaxBytes int

	// MaxElements bounds the number of elements XMLToJSON reads, which
	// bounds its memory; 0 means DefaultXMLMaxElements.
	MaxElements int
}

// An XMLCodec converts JSON to XML and back by fixed, documented rules
// under which a document survives the round trip:
//
//   - The JSON document is the content of the root element (Root).
//   - An object's members become, in order, child elements named by their
//     keys; keys must be XML names, optionally with a prefix
//     ("ns:item"), which is kept as it is (namespaces are not resolved).
//   - A member whose key starts with "@" becomes an attribute, so
//     "@xmlns:ns" declares a namespace; its value must not be an object or
//     an array.
//   - The member "#text" becomes the element's text, written where the
//     member is among the children. XMLToJSON trims the text of an element
//     that also has child elements, and ignores whitespace-only text
//     there and in elements with attributes (indentation).
//   - A member whose value is an array becomes one element per item, with
//     the member's name (repeated elements); XMLToJSON reads repeated
//     elements back as an array. A one-item array is marked with the hint
//     "array", unless its path is in Arrays; an empty one is written as a
//     "list".
//   - A list is an element whose items are its child elements, each named
//     Item and marked with the hint "list": the form of a top-level array,
//     an array inside an array, and an empty array.
//   - A string, number or boolean is the element's text; null is an
//     empty element marked "null".
//
// Type inference (off with KeepStrings): XMLToJSON reads a text or an
// attribute that is exactly "true" or "false" as a boolean, one that is a
// JSON number with at most 15 significant digits (all a float64 holds
// exactly) as that number, written as it is, and anything else as a
// string; an empty element with neither attributes nor children is "".
// Long digit strings (card and account numbers) therefore stay strings.
//
// Type hints: where inference would read a value back as another type,
// JSONToXML adds the attribute json:type, with the json prefix bound to
// HintNamespace on the root. Its value is a space-separated list of:
// "array" (an item of a one-item array), "list", one of "string",
// "number", "boolean", "null" or "object" (the element's own value, when
// inference would misread it; "object" marks an object without attributes
// or child elements), and "@name:type" or "#text:type" for an attribute or
// the text. XMLToJSON reads the hints and drops them, with their namespace
// declaration; the prefix json is reserved for them.
//
// Canonical XML, which XMLToJSON reads and JSONToXML writes back byte for
// byte, is what JSONToXML writes: no declaration (unless configured), no
// whitespace between elements, an element without content as <name/>,
// attributes in double quotes, and text escaped with &amp; &lt; &gt; and
// &#xD; (plus &quot; &#xA; &#x9; in attributes).
//
// XMLToJSON is safe on hostile input: it reads UTF-8 only, refuses any
// DOCTYPE or other directive (so no entity is ever defined or expanded;
// only XML's five predefined entities and character references are read),
// and bounds the input size, the nesting depth and the number of elements.
// Comments and processing instructions are dropped.
//
// An XMLCodec is safe for concurrent use.
type XMLCodec struct {
	root, item  string
	arrays      *arrayTrie
	keepStrings bool
	noHints     bool
	decl        bool
	maxDepth    int
	maxBytes    int
	maxElems    int
}

// arrayTrie holds the Arrays paths by element name.
type arrayTrie struct {
	array bool
	kids  map[string]*arrayTrie
}

func (t *arrayTrie) child(name string) *arrayTrie {
	if t == nil {
		return nil
	}
	return t.kids[name]
}

// NewXMLCodec checks cfg and returns a codec.
func NewXMLCodec(cfg XMLConfig) (*XMLCodec, error) {
	c := &XMLCodec{
		root:        cfg.Root,
		item:        cfg.Item,
		keepStrings: cfg.KeepStrings,
		noHints:     cfg.NoHints,
		decl:        cfg.Declaration,
		maxDepth:    cfg.MaxDepth,
		maxBytes:    cfg.MaxBytes,
		maxElems:    cfg.MaxElements,
	}
	if c.root == "" {
		c.root = DefaultXMLRoot
	}
	if c.item == "" {
		c.item = DefaultXMLItem
	}
	if c.maxDepth == 0 {
		c.maxDepth = DefaultXMLMaxDepth
	}
	if c.maxBytes == 0 {
		c.maxBytes = DefaultXMLMaxBytes
	}
	if c.maxElems == 0 {
		c.maxElems = DefaultXMLMaxElements
	}
	if c.maxDepth < 0 || c.maxBytes < 0 || c.maxElems < 0 {
		return nil, errors.New("XMLConfig: limits must not be negative")
	}
	if err := checkXMLName(c.root); err != nil {
		return nil, fmt.Errorf("XMLConfig.Root: %w", err)
	}
	if err := checkXMLName(c.item); err != nil {
		return nil, fmt.Errorf("XMLConfig.Item: %w", err)
	}
	for _, a := range cfg.Arrays {
		if a == "" {
			return nil, errors.New("XMLConfig.Arrays: empty path")
		}
		if c.arrays == nil {
			c.arrays = &arrayTrie{}
		}
		n := c.arrays
		for name := range strings.SplitSeq(a, "/") {
			if err := checkXMLName(name); err != nil {
				return nil, fmt.Errorf("XMLConfig.Arrays: %s: %w", quote(a), err)
			}
			if n.kids == nil {
				n.kids = make(map[string]*arrayTrie)
			}
			k := n.kids[name]
			if k == nil {
				k = &arrayTrie{}
				n.kids[name] = k
			}
			n = k
		}
		n.array = true
	}
	return c, nil
}

// checkXMLName reports whether s is an XML name with at most one prefix,
// and not in the reserved json prefix.
func checkXMLName(s string) error {
	if !isXMLName(s) {
		return fmt.Errorf("%s is not an XML name", quote(s))
	}
	if strings.HasPrefix(s, "json:") {
		return fmt.Errorf("%s: the prefix json is reserved for type hints", quote(s))
	}
	return nil
}

func isXMLName(s string) bool {
	prefix, local, found := strings.Cut(s, ":")
	if found {
		return isNCName(prefix) && isNCName(local)
	}
	return isNCName(s)
}

// isNCName reports whether s is a name without ':' (XML Namespaces §3).
// ASCII names are checked here; others are asked of encoding/xml, whose
// character classes (those of XML 1.0, fourth edition) are narrower than
// today's XML and decide what XMLToJSON, or a Go backend, can read back.
func isNCName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= utf8.RuneSelf:
			return xmlAccepts(s)
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', c == '_':
		case i > 0 && ('0' <= c && c <= '9' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return true
}

// xmlAccepts reports whether encoding/xml reads s as an element name
// without a prefix.
func xmlAccepts(s string) bool {
	if strings.ContainsAny(s, ":<>/=\"' \t\r\n&") || !utf8.ValidString(s) {
		return false
	}
	tok, err := xml.NewDecoder(strings.NewReader("<" + s + "/>")).RawToken()
	se, ok := tok.(xml.StartElement)
	return err == nil && ok && se.Name.Space == "" && se.Name.Local == s
}

// Value types, as inferred and as hinted.
const (
	typeNone   byte = 0
	typeString byte = 's'
	typeNumber byte = 'n'
	typeBool   byte = 'b'
	typeNull   byte = 'z'
	typeObject byte = 'o'
)

var typeNames = map[byte]string{typeString: "string", typeNumber: "number", typeBool: "boolean", typeNull: "null", typeObject: "object"}

func typeByName(s string) byte {
	switch s {
	case "string":
		return typeString
	case "number":
		return typeNumber
	case "boolean":
		return typeBool
	case "null":
		return typeNull
	case "object":
		return typeObject
	}
	return typeNone
}

// infer returns the type XMLToJSON reads text as.
func (c *XMLCodec) infer(s string) byte {
	if c.keepStrings {
		return typeString
	}
	if s == "true" || s == "false" {
		return typeBool
	}
	if isSafeNumber(s) {
		return typeNumber
	}
	return typeString
}

// isSafeNumber reports whether s is a JSON number with at most 15
// significant digits and a float64 value.
func isSafeNumber(s string) bool {
	if !isJSONNumber(s) {
		return false
	}
	digits, leading := 0, true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == 'e' || c == 'E' {
			break
		}
		if c < '0' || c > '9' {
			continue
		}
		if leading && c == '0' {
			continue
		}
		leading = false
		digits++
	}
	if digits > 15 {
		return false
	}
	_, err := strconv.ParseFloat(s, 64)
	return err == nil
}

// isJSONNumber reports whether s matches the JSON number grammar
// (RFC 8259 §6).
func isJSONNumber(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	if i >= len(s) {
		return false
	}
	if s[i] == '0' {
		i++
	} else if s[i] >= '1' && s[i] <= '9' {
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	} else {
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		start := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == start {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		start := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == start {
			return false
		}
	}
	return i == len(s)
}

// ---- JSON to XML ----

// JSONToXML appends the XML form of the JSON document src to dst and
// returns it. Invalid JSON fails with an error wrapping ErrNotJSON; JSON
// the rules cannot express (a key that is not an XML name, an object as
// an attribute, a character XML cannot carry, nesting deeper than
// MaxDepth) with one wrapping ErrMismatch.
func (c *XMLCodec) JSONToXML(dst, src []byte) ([]byte, error) {
	if !scanJSON(src, nil) {
		return dst, ErrNotJSON
	}
	w := xmlWriter{c: c, buf: dst}
	if c.decl {
		w.buf = append(w.buf, `<?xml version="1.0" encoding="UTF-8"?>`...)
	}
	rootAt := len(w.buf) + 1 + len(c.root) // where xmlns:json goes
	if err := w.element(c.root, gjson.Parse(view(src)), c.arrays, "", 0); err != nil {
		return dst, err
	}
	if w.hinted {
		decl := ` xmlns:json="` + HintNamespace + `"`
		w.buf = append(w.buf, decl...)
		copy(w.buf[rootAt+len(decl):], w.buf[rootAt:len(w.buf)-len(decl)])
		copy(w.buf[rootAt:], decl)
	}
	return w.buf, nil
}

type xmlWriter struct {
	c       *XMLCodec
	buf     []byte
	hinted  bool
	hint    []byte         // scratch for the hint of one element
	members []gjson.Result // key, value pairs of the objects being written
	// attrSet holds the attributes seen so far of the large object whose
	// members begin at attrBase.
	attrSet  map[string]bool
	attrBase int
}

func xmlErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMismatch}, args...)...)
}

// scalarText returns the XML text of a JSON scalar and its type.
func scalarText(v gjson.Result) (string, byte) {
	switch v.Type {
	case gjson.String:
		return v.Str, typeString
	case gjson.Number:
		return v.Raw, typeNumber
	case gjson.True, gjson.False:
		return v.Raw, typeBool
	case gjson.Null:
		return "", typeNull
	}
	return "", typeNone
}

// needsHint reports whether text of type t would be read back as another
// type.
func (c *XMLCodec) needsHint(text string, t byte) bool {
	if t == typeNull {
		return true
	}
	return c.infer(text) != t
}

func (w *xmlWriter) addHint(tok string) {
	if len(w.hint) > 0 {
		w.hint = append(w.hint, ' ')
	}
	w.hint = append(w.hint, tok...)
}

// element writes <name>value</name>. arrayHint is "array" for the item of
// a one-item array; node is the Arrays trie at this element.
func (w *xmlWriter) element(name string, v gjson.Result, node *arrayTrie, arrayHint string, depth int) error {
	if depth >= w.c.maxDepth { // XMLToJSON reads the result back with the same limit
		return xmlErr("the JSON nests deeper than %d", w.c.maxDepth)
	}
	w.hint = w.hint[:0]
	if arrayHint != "" {
		w.addHint(arrayHint)
	}
	switch {
	case v.IsArray():
		w.addHint("list")
		w.startTag(name)
		if err := w.endStart(); err != nil {
			return err
		}
		empty := true
		var err error
		v.ForEach(func(_, item gjson.Result) bool {
			empty = false
			err = w.element(w.c.item, item, nil, "", depth+1)
			return err == nil
		})
		if err != nil {
			return err
		}
		w.endTag(name, empty)
		return nil
	case v.IsObject():
		return w.object(name, v, node, depth)
	}
	text, t := scalarText(v)
	if t != typeString || text != "" { // "" reads back as "" without a hint
		if w.c.needsHint(text, t) {
			w.addHint(typeNames[t])
		}
	}
	w.startTag(name)
	if err := w.endStart(); err != nil {
		return err
	}
	if err := w.text(text, false); err != nil {
		return err
	}
	w.endTag(name, text == "")
	return nil
}

func (w *xmlWriter) object(name string, v gjson.Result, node *arrayTrie, depth int) error {
	// The members are read once, onto a stack shared by the whole
	// document, and then walked three times: hints, attributes, children.
	base := len(w.members)
	v.ForEach(func(k, m gjson.Result) bool {
		w.members = append(w.members, k, m)
		return true
	})
	defer func() { w.members = w.members[:base] }()
	end := len(w.members)
	w.attrSet = nil // this pass does not recurse: the set is this object's

	children, attrs := 0, 0
	hasText, text, textType := false, "", typeNone
	for i := base; i < end; i += 2 {
		key, m := w.members[i].Str, w.members[i+1]
		switch {
		case strings.HasPrefix(key, "@"):
			attrs++
			an := key[1:]
			if err := checkXMLName(an); err != nil {
				return xmlErr("attribute %s: %v", quote(key), err)
			}
			if an == "xmlns:json" {
				return xmlErr("attribute %s: the prefix json is reserved for type hints", quote(key))
			}
			if w.seenAttr(base, i, key) {
				return xmlErr("attribute %s appears twice", quote(key))
			}
			text, t := scalarText(m)
			if t == typeNone {
				return xmlErr("attribute %s: an attribute's value must be a string, number, boolean or null", quote(key))
			}
			if (t != typeString || text != "") && w.c.needsHint(text, t) {
				w.addHint(key + ":" + typeNames[t])
			}
		case key == "#text":
			if hasText {
				return xmlErr("#text appears twice")
			}
			hasText = true
			text, textType = scalarText(m)
			if textType == typeNone {
				return xmlErr("#text must be a string, number, boolean or null")
			}
		default:
			if err := checkXMLName(key); err != nil {
				return xmlErr("member %s: %v", quote(key), err)
			}
			children++
		}
	}
	if hasText {
		// A text XMLToJSON would drop or trim (empty; whitespace only
		// beside attributes or children; padded beside children) is
		// hinted, and the hint makes it read back exactly.
		lossy := textType == typeString && (text == "" ||
			(attrs+children > 0 && strings.TrimSpace(text) == "") ||
			(children > 0 && strings.TrimSpace(text) != text))
		if lossy || w.c.needsHint(text, textType) {
			w.addHint("#text:" + typeNames[textType])
		}
	}
	if children == 0 && attrs == 0 {
		w.addHint("object")
	}
	w.startTag(name)
	for i := base; i < end; i += 2 {
		key := w.members[i].Str
		if !strings.HasPrefix(key, "@") {
			continue
		}
		text, _ := scalarText(w.members[i+1])
		w.buf = append(w.buf, ' ')
		w.buf = append(w.buf, key[1:]...)
		w.buf = append(w.buf, '=', '"')
		if err := w.text(text, true); err != nil {
			return err
		}
		w.buf = append(w.buf, '"')
	}
	if err := w.endStart(); err != nil {
		return err
	}
	empty := true
	for i := base; i < end; i += 2 {
		// w.members may grow (and move) below: index it afresh.
		key, m := w.members[i].Str, w.members[i+1]
		switch {
		case strings.HasPrefix(key, "@"):
			continue
		case key == "#text":
			text, _ := scalarText(m)
			if text != "" {
				empty = false
			}
			if err := w.text(text, false); err != nil {
				return err
			}
			continue
		}
		empty = false
		kid := node.child(key)
		if !m.IsArray() {
			if err := w.element(key, m, kid, "", depth+1); err != nil {
				return err
			}
			continue
		}
		n := 0
		m.ForEach(func(_, item gjson.Result) bool { n++; return n < 2 })
		if n == 0 {
			if err := w.element(key, m, kid, "", depth+1); err != nil { // an empty list
				return err
			}
			continue
		}
		single := ""
		if n == 1 && (kid == nil || !kid.array) {
			single = "array"
		}
		var err error
		m.ForEach(func(_, item gjson.Result) bool {
			err = w.element(key, item, kid, single, depth+1)
			return err == nil
		})
		if err != nil {
			return err
		}
	}
	w.endTag(name, empty)
	return nil
}

// seenAttr reports whether the attribute key is among the members
// w.members[base:i]. Objects with many members use a set, so a hostile
// document cannot make this quadratic.
func (w *xmlWriter) seenAttr(base, i int, key string) bool {
	if i-base <= 64 {
		for j := base; j < i; j += 2 {
			if w.members[j].Str == key {
				return true
			}
		}
		return false
	}
	if w.attrSet == nil || w.attrBase != base {
		w.attrSet, w.attrBase = make(map[string]bool), base
		for j := base; j < i; j += 2 {
			if strings.HasPrefix(w.members[j].Str, "@") {
				w.attrSet[w.members[j].Str] = true
			}
		}
	}
	if w.attrSet[key] {
		return true
	}
	w.attrSet[key] = true
	return false
}

// startTag writes "<name"; endStart writes the hint and ">" (or nothing
// yet, for an element that may end as "<name/>").
func (w *xmlWriter) startTag(name string) {
	w.buf = append(w.buf, '<')
	w.buf = append(w.buf, name...)
}

func (w *xmlWriter) endStart() error {
	if len(w.hint) > 0 && !w.c.noHints {
		w.hinted = true
		w.buf = append(w.buf, ` json:type="`...)
		if err := w.text(string(w.hint), true); err != nil {
			return err
		}
		w.buf = append(w.buf, '"')
	}
	w.hint = w.hint[:0]
	w.buf = append(w.buf, '>')
	return nil
}

// endTag closes the element; an empty one becomes <name/>.
func (w *xmlWriter) endTag(name string, empty bool) {
	if empty && len(w.buf) > 0 && w.buf[len(w.buf)-1] == '>' {
		w.buf[len(w.buf)-1] = '/'
		w.buf = append(w.buf, '>')
		return
	}
	w.buf = append(w.buf, '<', '/')
	w.buf = append(w.buf, name...)
	w.buf = append(w.buf, '>')
}

// text writes s escaped for text or, with attr, for an attribute value.
func (w *xmlWriter) text(s string, attr bool) error {
	b := w.buf
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		var esc string
		if c < utf8.RuneSelf {
			switch c {
			case '&':
				esc = "&amp;"
			case '<':
				esc = "&lt;"
			case '>':
				esc = "&gt;"
			case '\r':
				esc = "&#xD;"
			case '"':
				if attr {
					esc = "&quot;"
				}
			case '\n':
				if attr {
					esc = "&#xA;"
				}
			case '\t':
				if attr {
					esc = "&#x9;"
				}
			default:
				if c < 0x20 {
					return xmlErr("a string holds the control character U+%04X, which XML cannot carry", c)
				}
			}
			if esc != "" {
				b = append(b, s[start:i]...)
				b = append(b, esc...)
				start = i + 1
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || r == 0xFFFE || r == 0xFFFF {
			return xmlErr("a string holds a character XML cannot carry")
		}
		i += size
	}
	w.buf = append(b, s[start:]...)
	return nil
}

// ---- XML to JSON ----

// xnode is one element read by XMLToJSON; nodes live in one slice and
// link by index.
type xnode struct {
	name  string
	attrs []xml.Attr
	// text is text[off:end] of the document's text arena: a node's
	// text chunks are kept together there.
	textOff, textEnd int32
	// textAt is the number of child elements before the first text that
	// is not whitespace, or -1; anyTextAt the same for any text.
	textAt, anyTextAt int32
	first, last       int32 // children
	next              int32 // sibling
	kids              int32
	hint              hint
}

type hint struct {
	array, list bool
	typ         byte
	text        byte
	attrs       []attrHint
}

type attrHint struct {
	name string
	typ  byte
}

// XMLToJSON appends the JSON form of the XML document src to dst and
// returns it. Input it does not accept fails with an error wrapping
// ErrNotXML.
func (c *XMLCodec) XMLToJSON(dst, src []byte) ([]byte, error) {
	if len(src) > c.maxBytes {
		return dst, fmt.Errorf("%w: larger than %d bytes", ErrNotXML, c.maxBytes)
	}
	nodes, arena, err := c.parse(src)
	if err != nil {
		return dst, err
	}
	r := xmlReader{c: c, nodes: nodes, arena: arena, buf: grow(dst, len(src))}
	if err := r.value(0, c.arrays); err != nil {
		return dst, err
	}
	return r.buf, nil
}

func notXML(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrNotXML}, args...)...)
}

// parse reads src into a tree of nodes; nodes[0] is the root.
func (c *XMLCodec) parse(src []byte) ([]xnode, []byte, error) {
	d := xml.NewDecoder(bytes.NewReader(src))
	d.Strict = true
	// No CharsetReader: a declared encoding other than UTF-8 fails. No
	// Entity map: only the predefined entities are known.
	nodes := make([]xnode, 0, min(bytes.Count(src, []byte{'<'})/2+1, c.maxElems))
	arena := make([]byte, 0, len(src)/2)
	var stack []int32
	rootDone := false
	for {
		tok, err := d.RawToken()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %w", ErrNotXML, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if rootDone {
				return nil, nil, notXML("more than one root element")
			}
			if len(stack) >= c.maxDepth {
				return nil, nil, notXML("elements nest deeper than %d", c.maxDepth)
			}
			if len(nodes) >= c.maxElems {
				return nil, nil, notXML("more than %d elements", c.maxElems)
			}
			n := xnode{name: qname(t.Name), textAt: -1, anyTextAt: -1, first: -1, last: -1, next: -1}
			if err := c.readAttrs(&n, t.Attr); err != nil {
				return nil, nil, err
			}
			idx := int32(len(nodes))
			nodes = append(nodes, n)
			if len(stack) > 0 {
				p := &nodes[stack[len(stack)-1]]
				if p.last >= 0 {
					nodes[p.last].next = idx
				} else {
					p.first = idx
				}
				p.last = idx
				p.kids++
			}
			stack = append(stack, idx)
		case xml.EndElement:
			// RawToken does not match end tags to start tags; do it here.
			if len(stack) == 0 || nodes[stack[len(stack)-1]].name != qname(t.Name) {
				return nil, nil, notXML("mismatched end element")
			}
			stack = stack[:len(stack)-1]
			if len(stack) == 0 {
				rootDone = true
			}
		case xml.CharData:
			if len(stack) == 0 {
				if !isSpace(t) {
					return nil, nil, notXML("text outside the root element")
				}
				continue
			}
			n := &nodes[stack[len(stack)-1]]
			if n.textAt < 0 && !isSpace(t) {
				n.textAt = n.kids
			}
			if n.anyTextAt < 0 && len(t) > 0 {
				n.anyTextAt = n.kids
			}
			if n.textEnd == n.textOff {
				n.textOff = int32(len(arena))
			} else if int(n.textEnd) != len(arena) {
				// Another element's text came between (mixed content):
				// move this one's to the end so it stays in one piece.
				old := arena[n.textOff:n.textEnd]
				n.textOff = int32(len(arena))
				arena = append(arena, old...)
			}
			arena = append(arena, t...)
			n.textEnd = int32(len(arena))
		case xml.Directive:
			return nil, nil, notXML("a DOCTYPE or other directive is not accepted")
		case xml.Comment, xml.ProcInst:
			// dropped
		}
	}
	if !rootDone {
		return nil, nil, notXML("no complete root element")
	}
	return nodes, arena, nil
}

func qname(n xml.Name) string {
	if n.Space == "" {
		return n.Local
	}
	return n.Space + ":" + n.Local
}

func isSpace(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return false
		}
	}
	return true
}

// readAttrs keeps an element's attributes, taking out the type hint and
// its namespace declaration, and refuses duplicates.
func (c *XMLCodec) readAttrs(n *xnode, attrs []xml.Attr) error {
	var seen map[xml.Name]bool // for elements with many attributes
	if len(attrs) > 16 {
		seen = make(map[xml.Name]bool, len(attrs))
	}
	for i, a := range attrs {
		dup := false
		if seen != nil {
			dup = seen[a.Name]
			seen[a.Name] = true
		} else {
			for _, b := range attrs[:i] {
				dup = dup || a.Name == b.Name
			}
		}
		if dup {
			return notXML("attribute %s appears twice", quote(qname(a.Name)))
		}
		switch {
		case a.Name.Space == "json" && a.Name.Local == "type":
			if err := parseHint(&n.hint, a.Value); err != nil {
				return err
			}
			continue
		case a.Name.Space == "xmlns" && a.Name.Local == "json" && a.Value == HintNamespace:
			continue
		}
		n.attrs = append(n.attrs, a)
	}
	return nil
}

func parseHint(h *hint, v string) error {
	for tok := range strings.FieldsSeq(v) {
		switch tok {
		case "array":
			h.array = true
		case "list":
			h.list = true
		default:
			if t := typeByName(tok); t != typeNone {
				h.typ = t
				continue
			}
			i := strings.LastIndexByte(tok, ':')
			if i < 0 {
				return notXML("unknown type hint %s", quote(tok))
			}
			t := typeByName(tok[i+1:])
			if t == typeNone || t == typeObject {
				return notXML("unknown type hint %s", quote(tok))
			}
			switch name := tok[:i]; {
			case name == "#text":
				h.text = t
			case strings.HasPrefix(name, "@") && len(name) > 1:
				h.attrs = append(h.attrs, attrHint{name[1:], t})
			default:
				return notXML("unknown type hint %s", quote(tok))
			}
		}
	}
	return nil
}

type xmlReader struct {
	c     *XMLCodec
	nodes []xnode
	arena []byte
	buf   []byte
}

func (r *xmlReader) text(n *xnode) string { return view(r.arena[n.textOff:n.textEnd]) }

// value writes the JSON value of element i.
func (r *xmlReader) value(i int32, node *arrayTrie) error {
	n := &r.nodes[i]
	switch {
	case n.hint.list:
		r.buf = append(r.buf, '[')
		k := 0
		for ch := n.first; ch >= 0; ch = r.nodes[ch].next {
			if k > 0 {
				r.buf = append(r.buf, ',')
			}
			k++
			if err := r.value(ch, nil); err != nil {
				return err
			}
		}
		r.buf = append(r.buf, ']')
		return nil
	case n.hint.typ == typeNull:
		r.buf = append(r.buf, "null"...)
		return nil
	case len(n.attrs) == 0 && n.first < 0 && n.hint.typ != typeObject:
		return r.scalar(r.text(n), n.hint.typ)
	}
	return r.object(n, node)
}

// scalar writes text as the JSON value of type t, or of the inferred
// type when t is typeNone.
func (r *xmlReader) scalar(text string, t byte) error {
	if t == typeNone {
		t = r.c.infer(text)
	}
	switch t {
	case typeNumber:
		if !isJSONNumber(text) {
			return notXML("a number hint on text that is not a number")
		}
		r.buf = append(r.buf, text...)
	case typeBool:
		if text != "true" && text != "false" {
			return notXML("a boolean hint on text that is not true or false")
		}
		r.buf = append(r.buf, text...)
	case typeNull:
		r.buf = append(r.buf, "null"...)
	default:
		r.buf = appendJSONString(r.buf, text)
	}
	return nil
}

func (r *xmlReader) object(n *xnode, node *arrayTrie) error {
	r.buf = append(r.buf, '{')
	first := true
	comma := func() {
		if !first {
			r.buf = append(r.buf, ',')
		}
		first = false
	}
	var hinted map[string]byte // for elements with many attribute hints
	if len(n.hint.attrs) > 16 {
		hinted = make(map[string]byte, len(n.hint.attrs))
		for _, h := range n.hint.attrs {
			hinted[h.name] = h.typ
		}
	}
	for _, a := range n.attrs {
		comma()
		name := qname(a.Name)
		r.buf = appendAttrKey(r.buf, name)
		t := hinted[name]
		if hinted == nil {
			for _, h := range n.hint.attrs {
				if h.name == name {
					t = h.typ
				}
			}
		}
		if err := r.scalar(a.Value, t); err != nil {
			return err
		}
	}
	var text string
	textAt := n.textAt
	switch {
	case n.hint.text != typeNone:
		// Hinted text is exact: JSONToXML hints whatever trimming or
		// dropping would change.
		text, textAt = r.text(n), n.anyTextAt
	case n.textAt >= 0:
		text = r.text(n)
		if n.first >= 0 {
			text = strings.TrimSpace(text)
		}
	case n.first < 0 && len(n.attrs) == 0:
		text = r.text(n) // an "object" hint: keep even whitespace
	}
	textDone := text == "" && n.hint.text == typeNone
	writeText := func() error {
		textDone = true
		comma()
		r.buf = append(r.buf, `"#text":`...)
		return r.scalar(text, n.hint.text)
	}
	// Children, grouped by name in order of first appearance (repeated
	// names make an array); the text goes where it first appeared.
	var index map[string][]int32 // for elements with many children
	if n.kids > 32 {
		index = make(map[string][]int32)
		for ch := n.first; ch >= 0; ch = r.nodes[ch].next {
			index[r.nodes[ch].name] = append(index[r.nodes[ch].name], ch)
		}
	}
	pos := int32(0)
	for ch := n.first; ch >= 0; ch = r.nodes[ch].next {
		if pos == textAt && !textDone {
			if err := writeText(); err != nil {
				return err
			}
		}
		pos++
		name := r.nodes[ch].name
		var group []int32
		if index != nil {
			group = index[name]
			if group[0] != ch {
				continue // written with the first of its name
			}
		} else if r.seenBefore(n.first, ch, name) {
			continue
		}
		comma()
		r.buf = appendJSONString(r.buf, name)
		r.buf = append(r.buf, ':')
		kid := node.child(name)
		count := len(group)
		if index == nil {
			for s := ch; s >= 0; s = r.nodes[s].next {
				if r.nodes[s].name == name {
					count++
				}
			}
		}
		array := count > 1 || (kid != nil && kid.array) || r.nodes[ch].hint.array
		if array {
			r.buf = append(r.buf, '[')
		}
		if group != nil {
			for j, s := range group {
				if j > 0 {
					r.buf = append(r.buf, ',')
				}
				if err := r.value(s, kid); err != nil {
					return err
				}
			}
		} else {
			j := 0
			for s := ch; s >= 0 && j < count; s = r.nodes[s].next {
				if r.nodes[s].name != name {
					continue
				}
				if j > 0 {
					r.buf = append(r.buf, ',')
				}
				j++
				if err := r.value(s, kid); err != nil {
					return err
				}
			}
		}
		if array {
			r.buf = append(r.buf, ']')
		}
	}
	if !textDone {
		if err := writeText(); err != nil {
			return err
		}
	}
	r.buf = append(r.buf, '}')
	return nil
}

// seenBefore reports whether a sibling from first up to ch (excluded) is
// called name.
func (r *xmlReader) seenBefore(first, ch int32, name string) bool {
	for s := first; s != ch; s = r.nodes[s].next {
		if r.nodes[s].name == name {
			return true
		}
	}
	return false
}

// appendAttrKey appends "@name": as a JSON object key.
func appendAttrKey(b []byte, name string) []byte {
	start := len(b)
	b = gateway.AppendJSONString(b, name)
	b = slices.Insert(b, start+1, '@') // '@' needs no escaping
	return append(b, ':')
}
