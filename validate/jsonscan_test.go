package validate

import (
	"bytes"
	"encoding/json"
	"math/big"
	"strings"
	"testing"
)

func TestTooDeep(t *testing.T) {
	tests := []struct {
		in   string
		max  int
		want int
	}{
		{`[]`, 1, -1},
		{`[[]]`, 1, 1},
		{`{"a": {"b": [1]}}`, 3, -1},
		{`{"a": {"b": [1]}}`, 2, 12},
		{`["[[[[", "]]]]"]`, 1, -1},
		{`["\"[[", [1]]`, 1, 9},
		{`["\\", [1]]`, 1, 7},
		{`["\\\"[", 1]`, 1, -1},
		{`"unterminated [[[[`, 1, -1},
		{`]]]][[`, 1, -1}, // unbalanced: the decoder refuses it
		{strings.Repeat("[", 10000), 64, 64},
		{``, 1, -1},
	}
	for _, tc := range tests {
		if got := tooDeep([]byte(tc.in), tc.max); got != tc.want {
			t.Errorf("tooDeep(%.40q, %d) = %d, want %d", tc.in, tc.max, got, tc.want)
		}
	}
}

func TestPosition(t *testing.T) {
	b := []byte("ab\nçd\n\nx")
	for _, tc := range []struct{ off, line, col int }{
		{0, 1, 1}, {2, 1, 3}, {3, 2, 1}, {5, 2, 2}, {7, 3, 1}, {8, 4, 1}, {9, 4, 2},
	} {
		if line, col := position(b, tc.off); line != tc.line || col != tc.col {
			t.Errorf("position(%d) = %d:%d, want %d:%d", tc.off, line, col, tc.line, tc.col)
		}
	}
}

// BenchmarkTooDeep is the depth scan on its own, on a 1 KiB body: it must
// stay a small fraction of decoding and validating the same body (tens of
// microseconds; see BenchmarkValidateBody).
func BenchmarkTooDeep(b *testing.B) {
	body := []byte(`{"id": "123e4567-e89b-12d3-a456-426614174000", "amount": 125000, "payee": {"name": "Ada", "email": "ada@example.com"}, "tags": ["a", "b", "c"], "note": "` + strings.Repeat("x", 870) + `"}`)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if tooDeep(body, 64) >= 0 {
			b.Fatal("too deep")
		}
	}
}

// FuzzHugeNumber: hugeNumber points at the start of a number that is over
// the bounds, and, on a valid document it passes, every number converts to
// a small exact big.Rat (what the schema library builds).
func FuzzHugeNumber(f *testing.F) {
	for _, s := range []string{`{"n":1e999999}`, `[1e1000,-0.5e-1000]`, `[0.` + strings.Repeat("9", 999) + `e-1000]`, `{"s":"1e9999","n":12}`, `[` + strings.Repeat("7", 1001) + `]`, `1E+0000000001001`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		off := hugeNumber(b)
		if off >= 0 {
			if c := b[off]; c != '-' && (c < '0' || c > '9') {
				t.Fatalf("offset %d is at %q, not a number", off, c)
			}
			return
		}
		if !json.Valid(b) {
			return
		}
		d := json.NewDecoder(bytes.NewReader(b))
		d.UseNumber()
		for {
			tok, err := d.Token()
			if err != nil {
				return
			}
			if n, ok := tok.(json.Number); ok {
				r, ok := new(big.Rat).SetString(string(n))
				if !ok {
					t.Fatalf("%s does not convert", n)
				}
				// The bounds keep exact values small: at most 1000 digits
				// (3,322 bits) over at most 10^(1000+1000) (6,644 bits).
				if bits := r.Num().BitLen() + r.Denom().BitLen(); bits > 10000 {
					t.Fatalf("%.40s converts to a %d-bit fraction", n, bits)
				}
			}
		}
	})
}
