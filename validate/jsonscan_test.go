package validate

import (
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
