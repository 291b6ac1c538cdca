package validate

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// DefaultMaxDepth is how deeply a JSON body may nest arrays and objects when
// Config.MaxDepth is 0.
const DefaultMaxDepth = 64

// tooDeep returns the offset of the first '[' or '{' that opens nesting
// level max+1 in b, or -1 if b never nests that deep.
//
// It is a byte scan, not a parser: it skips strings (minding escaped
// quotes) and counts brackets, so it costs a fraction of decoding and uses
// no stack however deep the input. It runs before the decoder, whose
// recursion must never see a hostile 10,000-level array; for valid JSON its
// count is exact, and invalid JSON is refused by the decoder's syntax check,
// which encoding/json runs (without recursion) before it builds any value.
func tooDeep(b []byte, max int) int {
	depth := 0
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '"':
			if i = stringEnd(b, i); i < 0 {
				return -1 // unterminated: the decoder says so
			}
		case '[', '{':
			depth++
			if depth > max {
				return i
			}
		case ']', '}':
			depth--
		}
	}
	return -1
}

// Bounds on the numbers the validator decodes: the schema library holds
// numbers exactly (big.Rat), and 1e999999, 13 bytes, expands to a number of
// a million digits: tens of milliseconds of CPU for each such number. No
// API needs numbers near these bounds.
const (
	maxNumberDigits   = 1000 // digits in the integer and fraction parts
	maxNumberExponent = 1000 // magnitude of the exponent
)

// hugeNumber returns the offset of the first number in b (outside strings)
// with more than maxNumberDigits digits or an exponent beyond
// maxNumberExponent, or -1. Like tooDeep it is a byte scan run before the
// decoder.
func hugeNumber(b []byte) int {
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			if i = stringEnd(b, i); i < 0 {
				return -1
			}
		case c == '-' || '0' <= c && c <= '9':
			start, digits := i, 0
			for ; i < len(b) && (b[i] == '-' || b[i] == '.' || '0' <= b[i] && b[i] <= '9'); i++ {
				if b[i] != '-' && b[i] != '.' {
					digits++
				}
			}
			if digits > maxNumberDigits {
				return start
			}
			if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
				i++
				if i < len(b) && (b[i] == '+' || b[i] == '-') {
					i++
				}
				for i < len(b) && b[i] == '0' {
					i++
				}
				exp := 0
				for ; i < len(b) && '0' <= b[i] && b[i] <= '9'; i++ {
					if exp = exp*10 + int(b[i]-'0'); exp > maxNumberExponent {
						return start
					}
				}
			}
			i-- // the loop's i++ looks at the byte after the number
		}
	}
	return -1
}

// stringEnd returns the offset of the quote that closes the string opening
// at b[i]: the next one not escaped by an odd number of backslashes; or -1
// when the string is not closed.
func stringEnd(b []byte, i int) int {
	for {
		j := bytes.IndexByte(b[i+1:], '"')
		if j < 0 {
			return -1
		}
		i += j + 1
		k := i - 1
		for k >= 0 && b[k] == '\\' {
			k--
		}
		if (i-1-k)%2 == 0 {
			return i
		}
	}
}

// decodeJSON decodes b as one JSON value with the jsonschema library's
// decoder, which keeps numbers exact (json.Number). A malformed b yields a
// *syntaxError saying where.
func decodeJSON(b []byte) (any, error) {
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		return nil, newSyntaxError(b, err)
	}
	return v, nil
}

// A syntaxError locates malformed JSON: Offset is the 0-based byte offset
// of the first byte that cannot be accepted (len(b) when the input ends
// too early); Line and Column are 1-based, Column counting characters.
type syntaxError struct {
	Msg    string
	Offset int64
	Line   int
	Column int
}

func (e *syntaxError) Error() string {
	return e.Msg + " at line " + strconv.Itoa(e.Line) + ", column " + strconv.Itoa(e.Column) + " (byte offset " + strconv.FormatInt(e.Offset, 10) + ")"
}

func newSyntaxError(b []byte, err error) *syntaxError {
	var off int64
	msg := "invalid JSON"
	if se, ok := errors.AsType[*json.SyntaxError](err); ok {
		// Offset counts the bytes read, the bad one included.
		off, msg = se.Offset-1, se.Error()
	} else if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		off = int64(len(b))
		if len(bytes.TrimSpace(b)) == 0 {
			msg = "no JSON value"
		} else {
			msg = "unexpected end of JSON input"
		}
	} else {
		// The only other failure is data after the value; find it.
		dec := json.NewDecoder(bytes.NewReader(b))
		var skip json.RawMessage
		if dec.Decode(&skip) == nil {
			off = dec.InputOffset()
			for off < int64(len(b)) && isSpace(b[off]) {
				off++
			}
		}
		msg = "unexpected data after the JSON value"
	}
	if off < 0 {
		off = 0
	}
	if off > int64(len(b)) {
		off = int64(len(b))
	}
	line, col := position(b, int(off))
	return &syntaxError{Msg: msg, Offset: off, Line: line, Column: col}
}

// position returns the 1-based line and column (in characters) of offset
// off in b.
func position(b []byte, off int) (line, col int) {
	before := b[:off]
	line = 1 + bytes.Count(before, []byte{'\n'})
	if i := bytes.LastIndexByte(before, '\n'); i >= 0 {
		before = before[i+1:]
	}
	return line, 1 + utf8.RuneCount(before)
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
