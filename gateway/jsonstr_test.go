package gateway_test

import (
	"encoding/json"
	"testing"

	"github.com/gatekit/gatekit/gateway"
)

// AppendJSONString writes what encoding/json writes for a string.
func TestAppendJSONString(t *testing.T) {
	for _, s := range []string{"", "plain", `q"uote\`, "ctl\x00\x01\b\f\n\r\t\x1f", "<script>&</script>", "line\u2028sep\u2029", "caf\u00e9 🎉", "bad\xffutf8\xc3", "\xed\xa0\x80"} {
		want, _ := json.Marshal(s)
		if got := gateway.AppendJSONString([]byte("x"), s); string(got) != "x"+string(want) {
			t.Errorf("AppendJSONString(%q) = %s, want x%s", s, got, want)
		}
	}
}

func FuzzAppendJSONString(f *testing.F) {
	f.Add("a\"b<\u2028\xff")
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := gateway.AppendJSONString(nil, s); string(got) != string(want) {
			t.Fatalf("AppendJSONString(%q) = %s, want %s", s, got, want)
		}
	})
}
