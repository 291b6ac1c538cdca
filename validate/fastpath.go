package validate

import (
	"encoding/json"
	"math"
	"math/big"
	"math/bits"
	"regexp"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// The fast path checks a body against a schema of a simple subset in one
// scan of its bytes, without decoding it into a tree. It is sound, not
// complete: it accepts only what the library accepts, and whatever it does
// not accept (a broken body, or one it is unsure of) goes the library's
// path, so a refusal is the same, byte for byte, as without it.
//
// Its judgement mirrors how the body is decoded today (encoding/json with
// UseNumber, through jsonschema.UnmarshalJSON) and how the library then
// validates it:
//   - the JSON grammar is encoding/json's: RFC 8259 numbers, no control
//     characters in strings, only its escapes, whitespace " \t\r\n", and
//     nothing but whitespace after the value (a BOM is refused);
//   - invalid UTF-8 in strings is accepted, each bad byte standing for
//     U+FFFD, as encoding/json decodes it; so is a lone surrogate escape;
//   - a repeated member name keeps the last value in the decoded map, so
//     a repeated name the schema knows makes the fast path unsure;
//   - numbers are compared exactly, as the library does with big.Rat;
//     one that does not fit the fast path's exact form (more than 19
//     significant digits, a large exponent) makes it unsure;
//   - strings are measured in code points of the decoded text, and
//     patterns are the library's own compiled *regexp.Regexp.

// fastOn switches the fast path on; with it off every body takes the
// library's path.
const fastOn = true

// A fastVerdict is what the fast path says of a body.
type fastVerdict int8

const (
	fastReject fastVerdict = iota // the library refuses it too
	fastUnsure                    // ask the library
	fastAccept                    // the library accepts it
)

type fastType uint8

const (
	ftNull fastType = 1 << iota
	ftBool
	ftNumber
	ftInteger
	ftString
	ftArray
	ftObject
)

// A fastNode is a compiled schema of the subset. The zero fastNode (with
// no bounds: see anyNode) accepts every value.
type fastNode struct {
	never bool     // the schema false
	types fastType // 0: any type

	cnst    *fastConst
	enum    []fastConst
	hasEnum bool

	minLen, maxLen int // -1: none
	pattern        *regexp.Regexp

	bounds     []fastBound
	multipleOf *fastRat

	names              map[string]int // properties and required names, index into props
	props              []fastProp
	required           uint64 // bits of props
	noExtra            bool   // additionalProperties: false
	minProps, maxProps int    // -1: none

	items              *fastNode // nil: any
	minItems, maxItems int       // -1: none
}

type fastProp struct {
	node     *fastNode // nil: any value
	declared bool      // in properties (not only in required)
}

// A fastRat is an exact rational num/den, den > 0.
type fastRat struct {
	neg      bool
	num, den uint64
}

type boundKind int8

const (
	bMin boundKind = iota
	bMax
	bExclMin
	bExclMax
)

type fastBound struct {
	kind boundKind
	r    fastRat
}

// A fastConst is a scalar of enum or const.
type fastConst struct {
	t fastType // ftNull, ftBool, ftString or ftNumber
	b bool
	s string
	r fastRat
}

// maxFastProps bounds the names of an object schema: seen names are a
// bit set.
const maxFastProps = 64

// compileFast returns the fast form of sch, or nil if sch uses anything
// beyond the subset.
func compileFast(sch *jsonschema.Schema) *fastNode {
	if !fastOn || sch == nil {
		return nil
	}
	n, ok := fastCompile(sch, 0)
	if !ok {
		return nil
	}
	return n
}

func anyNode() *fastNode {
	return &fastNode{minLen: -1, maxLen: -1, minProps: -1, maxProps: -1, minItems: -1, maxItems: -1}
}

func intOr(p *int, def int) int {
	if p == nil {
		return def
	}
	return *p
}

func fastCompile(s *jsonschema.Schema, depth int) (*fastNode, bool) {
	if depth > 32 {
		return nil, false
	}
	n := anyNode()
	if s.Bool != nil {
		n.never = !*s.Bool
		return n, true
	}
	switch {
	case s.Ref != nil, s.RecursiveRef != nil, s.DynamicRef != nil,
		s.Not != nil, len(s.AllOf) > 0, len(s.AnyOf) > 0, len(s.OneOf) > 0,
		s.If != nil, s.Then != nil, s.Else != nil, s.Format != nil,
		s.PropertyNames != nil, len(s.PatternProperties) > 0,
		len(s.Dependencies) > 0, len(s.DependentRequired) > 0, len(s.DependentSchemas) > 0,
		s.UnevaluatedProperties != nil,
		s.UniqueItems, s.Contains != nil, s.MinContains != nil, s.MaxContains != nil,
		s.AdditionalItems != nil, len(s.PrefixItems) > 0, s.UnevaluatedItems != nil,
		s.ContentEncoding != nil, s.ContentMediaType != nil, s.ContentSchema != nil,
		len(s.Extensions) > 0:
		return nil, false
	}
	if s.Types != nil {
		for _, t := range s.Types.ToStrings() {
			switch t {
			case "null":
				n.types |= ftNull
			case "boolean":
				n.types |= ftBool
			case "number":
				n.types |= ftNumber
			case "integer":
				n.types |= ftInteger
			case "string":
				n.types |= ftString
			case "array":
				n.types |= ftArray
			case "object":
				n.types |= ftObject
			default:
				return nil, false
			}
		}
	}
	if s.Const != nil {
		c, ok := fastConstOf(*s.Const)
		if !ok {
			return nil, false
		}
		n.cnst = &c
	}
	if s.Enum != nil {
		n.hasEnum = true
		for _, x := range s.Enum.Values {
			c, ok := fastConstOf(x)
			if !ok {
				return nil, false
			}
			n.enum = append(n.enum, c)
		}
	}
	n.minLen, n.maxLen = intOr(s.MinLength, -1), intOr(s.MaxLength, -1)
	if s.Pattern != nil {
		// The library's default engine is regexp.Compile; another engine
		// (Compiler.UseRegexpEngine) is not mirrored.
		re, ok := s.Pattern.(*regexp.Regexp)
		if !ok {
			return nil, false
		}
		n.pattern = re
	}
	for _, b := range []struct {
		kind boundKind
		r    *big.Rat
	}{{bMin, s.Minimum}, {bMax, s.Maximum}, {bExclMin, s.ExclusiveMinimum}, {bExclMax, s.ExclusiveMaximum}} {
		if b.r == nil {
			continue
		}
		r, ok := fastRatOf(b.r)
		if !ok {
			return nil, false
		}
		n.bounds = append(n.bounds, fastBound{b.kind, r})
	}
	if s.MultipleOf != nil {
		r, ok := fastRatOf(s.MultipleOf)
		if !ok || r.neg || r.num == 0 {
			return nil, false
		}
		n.multipleOf = &r
	}

	// object
	n.minProps, n.maxProps = intOr(s.MinProperties, -1), intOr(s.MaxProperties, -1)
	if len(s.Properties) > 0 || len(s.Required) > 0 {
		n.names = make(map[string]int)
	}
	for name, ps := range s.Properties {
		c, ok := fastCompile(ps, depth+1)
		if !ok {
			return nil, false
		}
		n.names[name] = len(n.props)
		n.props = append(n.props, fastProp{node: c, declared: true})
	}
	for _, name := range s.Required {
		i, ok := n.names[name]
		if !ok {
			i = len(n.props)
			n.names[name] = i
			n.props = append(n.props, fastProp{})
		}
		if i < maxFastProps {
			n.required |= 1 << i
		}
	}
	if len(n.props) > maxFastProps {
		return nil, false
	}
	switch ap := s.AdditionalProperties.(type) {
	case nil:
	case bool:
		n.noExtra = !ap
	case *jsonschema.Schema:
		// A schema for the others would see only the last of repeated
		// names; only true and false are mirrored.
		if ap.Bool == nil {
			return nil, false
		}
		n.noExtra = !*ap.Bool
	default:
		return nil, false
	}

	// array
	n.minItems, n.maxItems = intOr(s.MinItems, -1), intOr(s.MaxItems, -1)
	items := s.Items2020
	switch it := s.Items.(type) {
	case nil:
	case *jsonschema.Schema:
		items = it
	default: // a tuple
		return nil, false
	}
	if items != nil {
		c, ok := fastCompile(items, depth+1)
		if !ok {
			return nil, false
		}
		n.items = c
	}
	return n, true
}

func fastConstOf(x any) (fastConst, bool) {
	switch x := x.(type) {
	case nil:
		return fastConst{t: ftNull}, true
	case bool:
		return fastConst{t: ftBool, b: x}, true
	case string:
		return fastConst{t: ftString, s: x}, true
	case json.Number:
		r, ok := new(big.Rat).SetString(string(x))
		if !ok {
			return fastConst{}, false
		}
		fr, ok := fastRatOf(r)
		return fastConst{t: ftNumber, r: fr}, ok
	}
	return fastConst{}, false
}

func fastRatOf(r *big.Rat) (fastRat, bool) {
	num := new(big.Int).Abs(r.Num())
	if !num.IsUint64() || !r.Denom().IsUint64() {
		return fastRat{}, false
	}
	return fastRat{neg: r.Sign() < 0, num: num.Uint64(), den: r.Denom().Uint64()}, true
}

// A fastNum is an exact number m/10^k.
type fastNum struct {
	neg bool
	m   uint64
	k   int // 0..19
}

var pow10 = [20]uint64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19}

// parseNum reads a number token (already checked against the grammar)
// exactly, or reports that it does not fit a fastNum.
func parseNum(b []byte) (fastNum, bool) {
	var x fastNum
	i := 0
	if b[0] == '-' {
		x.neg = true
		i++
	}
	add := func(d byte) bool {
		if x.m > (math.MaxUint64-uint64(d))/10 {
			return false
		}
		x.m = x.m*10 + uint64(d)
		return true
	}
	for ; i < len(b) && isDigit(b[i]); i++ {
		if !add(b[i] - '0') {
			return x, false
		}
	}
	k := 0
	if i < len(b) && b[i] == '.' {
		i++
		start := i
		for i < len(b) && isDigit(b[i]) {
			i++
		}
		end := i
		for end > start && b[end-1] == '0' { // trailing zeros change nothing
			end--
		}
		for j := start; j < end; j++ {
			if !add(b[j] - '0') {
				return x, false
			}
			k++
		}
	}
	e := 0
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		eneg := false
		if b[i] == '+' || b[i] == '-' {
			eneg = b[i] == '-'
			i++
		}
		for ; i < len(b); i++ {
			if e = e*10 + int(b[i]-'0'); e > maxNumberExponent {
				return x, false // the library path refuses it (hugeNumber)
			}
		}
		if eneg {
			e = -e
		}
	}
	if x.m == 0 {
		return fastNum{}, true
	}
	e -= k
	for ; e > 0; e-- {
		if x.m > math.MaxUint64/10 {
			return x, false
		}
		x.m *= 10
	}
	if -e >= len(pow10) {
		return x, false
	}
	x.k = -e
	return x, true
}

func (x fastNum) isInt() bool { return x.m%pow10[x.k] == 0 }

// cmp compares x with r: -1, 0 or +1.
func (x fastNum) cmp(r fastRat) int {
	xneg, rneg := x.neg && x.m != 0, r.neg && r.num != 0
	if xneg != rneg {
		if xneg {
			return -1
		}
		return 1
	}
	h1, l1 := bits.Mul64(x.m, r.den)
	h2, l2 := bits.Mul64(r.num, pow10[x.k])
	c := 0
	switch {
	case h1 < h2 || h1 == h2 && l1 < l2:
		c = -1
	case h1 > h2 || l1 > l2:
		c = 1
	}
	if xneg {
		c = -c
	}
	return c
}

// multipleOf reports whether x/r is an integer; ok is false when the
// fast form cannot tell.
func (x fastNum) multipleOf(r fastRat) (yes, ok bool) {
	// x/r = m·den / (10^k·num)
	dh, d := bits.Mul64(pow10[x.k], r.num)
	if dh != 0 {
		return false, false
	}
	h, l := bits.Mul64(x.m, r.den)
	return bits.Rem64(h, l, d) == 0, true
}

// A fastScan is one pass over a body.
type fastScan struct {
	b        []byte
	i        int
	maxDepth int
	bad      bool // the body breaks the schema (if it is JSON)
	unsure   bool // the fast path cannot tell
	abort    bool // stopped before the end: unsure
}

// check judges b, which tooDeep has found no deeper than maxDepth.
func (n *fastNode) check(b []byte, maxDepth int) fastVerdict {
	s := fastScan{b: b, maxDepth: maxDepth}
	ok := s.value(n, 0)
	if ok {
		s.ws()
		ok = s.i == len(b)
	}
	switch {
	case !ok && s.abort:
		return fastUnsure
	case !ok:
		return fastReject // not JSON: 400 either way
	case s.unsure:
		return fastUnsure
	case s.bad:
		return fastReject
	}
	return fastAccept
}

func (s *fastScan) ws() {
	for s.i < len(s.b) && isSpace(s.b[s.i]) {
		s.i++
	}
}

// separator reads what follows a member or an element: a comma (more is
// true) or the closing bracket close; ok is false for anything else.
func (s *fastScan) separator(close byte) (more, ok bool) {
	s.ws()
	if s.i >= len(s.b) {
		return false, false
	}
	switch s.b[s.i] {
	case ',':
		s.i++
		return true, true
	case close:
		s.i++
		return false, true
	}
	return false, false
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func (n *fastNode) allows(t fastType) bool { return n.types == 0 || n.types&t != 0 }

// value scans one value at s.i against n (nil: any value). It returns
// false if the bytes are not JSON (or on abort).
func (s *fastScan) value(n *fastNode, depth int) bool {
	s.ws()
	if s.i >= len(s.b) {
		return false
	}
	if n != nil && n.never {
		s.bad = true
		n = nil
	}
	c := s.b[s.i]
	switch {
	case c == '{' || c == '[':
		if n != nil && (n.cnst != nil || n.hasEnum) {
			s.bad = true // enum and const hold scalars only
		}
		if c == '{' {
			return s.object(n, depth+1)
		}
		return s.array(n, depth+1)
	case c == '"':
		raw, esc, high, ok := s.str()
		if ok && n != nil {
			s.checkString(n, raw, esc, high)
		}
		return ok
	case c == 't':
		return s.literal("true") && s.checkScalar(n, fastConst{t: ftBool, b: true})
	case c == 'f':
		return s.literal("false") && s.checkScalar(n, fastConst{t: ftBool})
	case c == 'n':
		return s.literal("null") && s.checkScalar(n, fastConst{t: ftNull})
	case c == '-' || isDigit(c):
		start := s.i
		if !s.number() {
			return false
		}
		if n != nil {
			s.checkNumber(n, s.b[start:s.i])
		}
		return true
	}
	return false
}

func (s *fastScan) literal(lit string) bool {
	if len(s.b)-s.i < len(lit) || string(s.b[s.i:s.i+len(lit)]) != lit {
		return false
	}
	s.i += len(lit)
	return true
}

// number scans a number by RFC 8259 §6.
func (s *fastScan) number() bool {
	b, i := s.b, s.i
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	default:
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || !isDigit(b[i]) {
			return false
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || !isDigit(b[i]) {
			return false
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	s.i = i
	return true
}

// str scans a string at s.i and returns its raw contents; esc says it
// has escapes, high that it has bytes over 0x7F.
func (s *fastScan) str() (raw []byte, esc, high, ok bool) {
	b := s.b
	start := s.i + 1
	for i := start; i < len(b); {
		c := b[i]
		switch {
		case c == '"':
			s.i = i + 1
			return b[start:i], esc, high, true
		case c == '\\':
			esc = true
			if i+1 >= len(b) {
				return nil, false, false, false
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) || hex4(b[i+2:i+6]) < 0 {
					return nil, false, false, false
				}
				i += 6
			default:
				return nil, false, false, false
			}
		case c < 0x20:
			return nil, false, false, false
		default:
			if c >= utf8.RuneSelf {
				high = true
			}
			i++
		}
	}
	return nil, false, false, false
}

func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}

// unquote decodes the raw contents of a string as encoding/json does
// (bad UTF-8 and lone surrogates become U+FFFD) into dst, and counts its
// code points. fits is false if dst was too short; the count is right
// anyway.
func unquote(raw, dst []byte) (text []byte, runes int, fits bool) {
	text, fits = dst[:0], true
	put := func(r rune) {
		runes++
		if len(text)+utf8.UTFMax > cap(text) {
			fits = false
		}
		if fits {
			text = utf8.AppendRune(text, r)
		}
	}
	for i := 0; i < len(raw); {
		c := raw[i]
		switch {
		case c == '\\':
			switch raw[i+1] {
			case 'b':
				put('\b')
			case 'f':
				put('\f')
			case 'n':
				put('\n')
			case 'r':
				put('\r')
			case 't':
				put('\t')
			case 'u':
				r := hex4(raw[i+2:])
				i += 6
				if utf16.IsSurrogate(r) {
					if i+6 <= len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
						if r2 := hex4(raw[i+2:]); r2 >= 0 {
							if d := utf16.DecodeRune(r, r2); d != unicode.ReplacementChar {
								i += 6
								put(d)
								continue
							}
						}
					}
					r = unicode.ReplacementChar
				}
				put(r)
				continue
			default: // " \ /
				put(rune(raw[i+1]))
			}
			i += 2
		case c < utf8.RuneSelf:
			put(rune(c))
			i++
		default:
			r, size := utf8.DecodeRune(raw[i:])
			put(r) // RuneError for a bad byte
			i += size
		}
	}
	return text, runes, fits
}

func (s *fastScan) checkString(n *fastNode, raw []byte, esc, high bool) {
	if !n.allows(ftString) {
		s.bad = true
		return
	}
	needText := n.pattern != nil || n.cnst != nil || n.hasEnum
	if n.minLen < 0 && n.maxLen < 0 && !needText {
		return
	}
	switch {
	case !high && !esc:
		s.checkText(n, raw, len(raw))
	case !esc && utf8.Valid(raw):
		s.checkText(n, raw, utf8.RuneCount(raw))
	default:
		s.checkDecoded(n, raw, needText)
	}
}

// checkDecoded checks a string whose raw bytes are not its text.
func (s *fastScan) checkDecoded(n *fastNode, raw []byte, needText bool) {
	var buf [256]byte
	dst := buf[:0]
	if !needText {
		dst = nil
	}
	text, runes, fits := unquote(raw, dst)
	if needText && !fits {
		s.unsure = true
		return
	}
	s.checkText(n, text, runes)
}

func (s *fastScan) checkText(n *fastNode, text []byte, runes int) {
	if n.minLen >= 0 && runes < n.minLen || n.maxLen >= 0 && runes > n.maxLen {
		s.bad = true
	}
	if n.pattern != nil && !n.pattern.Match(text) {
		s.bad = true
	}
	if n.cnst != nil && (n.cnst.t != ftString || n.cnst.s != string(text)) {
		s.bad = true
	}
	if n.hasEnum {
		found := false
		for i := range n.enum {
			if n.enum[i].t == ftString && n.enum[i].s == string(text) {
				found = true
				break
			}
		}
		if !found {
			s.bad = true
		}
	}
}

// checkScalar checks true, false or null; it always returns true.
func (s *fastScan) checkScalar(n *fastNode, v fastConst) bool {
	if n == nil {
		return true
	}
	if !n.allows(v.t) {
		s.bad = true
		return true
	}
	if n.cnst != nil && (n.cnst.t != v.t || n.cnst.b != v.b) {
		s.bad = true
	}
	if n.hasEnum {
		found := false
		for i := range n.enum {
			if n.enum[i].t == v.t && n.enum[i].b == v.b {
				found = true
				break
			}
		}
		if !found {
			s.bad = true
		}
	}
	return true
}

func (s *fastScan) checkNumber(n *fastNode, raw []byte) {
	x, exact := parseNum(raw)
	if !n.allows(ftNumber) {
		switch {
		case n.types&ftInteger == 0:
			s.bad = true
			return
		case !exact:
			s.unsure = true
			return
		case !x.isInt():
			s.bad = true
			return
		}
	}
	if len(n.bounds) == 0 && n.multipleOf == nil && n.cnst == nil && !n.hasEnum {
		return
	}
	if !exact {
		s.unsure = true
		return
	}
	for _, b := range n.bounds {
		c := x.cmp(b.r)
		switch b.kind {
		case bMin:
			s.bad = s.bad || c < 0
		case bMax:
			s.bad = s.bad || c > 0
		case bExclMin:
			s.bad = s.bad || c <= 0
		case bExclMax:
			s.bad = s.bad || c >= 0
		}
	}
	if n.multipleOf != nil {
		yes, ok := x.multipleOf(*n.multipleOf)
		switch {
		case !ok:
			s.unsure = true
		case !yes:
			s.bad = true
		}
	}
	if n.cnst != nil && (n.cnst.t != ftNumber || x.cmp(n.cnst.r) != 0) {
		s.bad = true
	}
	if n.hasEnum {
		found := false
		for i := range n.enum {
			if n.enum[i].t == ftNumber && x.cmp(n.enum[i].r) == 0 {
				found = true
				break
			}
		}
		if !found {
			s.bad = true
		}
	}
}

// lookup finds the member name raw among n's names: its index, -1 if it
// is not one of them, -2 if the fast path cannot tell.
func (s *fastScan) lookup(n *fastNode, raw []byte, esc, high bool) int {
	key := raw
	var buf [256]byte
	if esc || high && !utf8.Valid(raw) {
		text, _, fits := unquote(raw, buf[:0])
		if !fits {
			return -2
		}
		key = text
	}
	if i, ok := n.names[string(key)]; ok {
		return i
	}
	return -1
}

func (s *fastScan) object(n *fastNode, depth int) bool {
	if depth > s.maxDepth {
		s.abort = true
		return false
	}
	s.i++
	if n != nil && !n.allows(ftObject) {
		s.bad = true
		n = nil
	}
	var seen uint64
	members, extra := 0, 0
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
	} else {
		for {
			s.ws()
			if s.i >= len(s.b) || s.b[s.i] != '"' {
				return false
			}
			raw, esc, high, ok := s.str()
			if !ok {
				return false
			}
			s.ws()
			if s.i >= len(s.b) || s.b[s.i] != ':' {
				return false
			}
			s.i++
			var child *fastNode
			if n != nil {
				members++
				switch j := s.lookup(n, raw, esc, high); {
				case j >= 0:
					if seen&(1<<j) != 0 {
						s.unsure = true // the decoded map keeps the last
					}
					seen |= 1 << j
					child = n.props[j].node
					if !n.props[j].declared && n.noExtra {
						s.bad = true
					}
				case j == -1:
					extra++
					if n.noExtra {
						s.bad = true
					}
				default:
					s.unsure = true
				}
			}
			if !s.value(child, depth) {
				return false
			}
			more, ok := s.separator('}')
			if !ok {
				return false
			}
			if more {
				continue
			}
			break
		}
	}
	if n == nil {
		return true
	}
	if seen&n.required != n.required {
		s.bad = true
	}
	// Repeated names the schema does not know cannot be told apart: the
	// decoded object has between lo and hi members.
	known := bits.OnesCount64(seen)
	lo, hi := known, known+extra
	if extra > 0 {
		lo++
	}
	if n.maxProps >= 0 && hi > n.maxProps {
		if lo > n.maxProps {
			s.bad = true
		} else {
			s.unsure = true
		}
	}
	if n.minProps >= 0 && lo < n.minProps {
		if hi < n.minProps {
			s.bad = true
		} else {
			s.unsure = true
		}
	}
	return true
}

func (s *fastScan) array(n *fastNode, depth int) bool {
	if depth > s.maxDepth {
		s.abort = true
		return false
	}
	s.i++
	if n != nil && !n.allows(ftArray) {
		s.bad = true
		n = nil
	}
	var item *fastNode
	if n != nil {
		item = n.items
	}
	count := 0
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == ']' {
		s.i++
	} else {
		for {
			if !s.value(item, depth) {
				return false
			}
			count++
			more, ok := s.separator(']')
			if !ok {
				return false
			}
			if more {
				continue
			}
			break
		}
	}
	if n != nil && (n.minItems >= 0 && count < n.minItems || n.maxItems >= 0 && count > n.maxItems) {
		s.bad = true
	}
	return true
}
