package gateway

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestReadAll(t *testing.T) {
	cases := []struct {
		name        string
		body        string
		size, limit int64
		want        string
		over        bool
		err         error
	}{
		{"announced length", "hello", 5, 10, "hello", false, nil},
		{"announced length, no limit", "hello", 5, -1, "hello", false, nil},
		{"empty", "", 0, 10, "", false, nil},
		{"unknown length", "hello", -1, 10, "hello", false, nil},
		{"shorter than announced", "hel", 5, 10, "", false, io.ErrUnexpectedEOF},
		{"nothing of an announced length", "", 5, 10, "", false, io.ErrUnexpectedEOF},
		{"longer than announced", "hello world", 5, 20, "hello world", false, nil},
		{"longer than announced, past the limit", "hello world", 5, 8, "", true, nil},
		{"announced past the limit", "hello world", 11, 5, "", true, nil},
		{"unknown length past the limit", "hello world", -1, 5, "", true, nil},
		{"exactly the limit", "hello", -1, 5, "hello", false, nil},
	}
	for _, tc := range cases {
		for _, mode := range []string{"whole", "byte by byte"} {
			t.Run(tc.name+"/"+mode, func(t *testing.T) {
				var r io.Reader = strings.NewReader(tc.body)
				if mode == "byte by byte" {
					r = iotest.OneByteReader(r)
				}
				got, over, err := readAll(r, tc.size, tc.limit)
				if !errors.Is(err, tc.err) || over != tc.over || string(got) != tc.want {
					t.Fatalf("readAll = %q, over %v, err %v; want %q, %v, %v", got, over, err, tc.want, tc.over, tc.err)
				}
			})
		}
	}
	t.Run("read error", func(t *testing.T) {
		boom := errors.New("boom")
		if _, _, err := readAll(iotest.ErrReader(boom), 5, 10); !errors.Is(err, boom) {
			t.Fatalf("err %v, want %v", err, boom)
		}
	})
}

func TestReadAllOneAllocationForAnnouncedLength(t *testing.T) {
	body := strings.Repeat("x", 1024)
	r := strings.NewReader(body)
	allocs := testing.AllocsPerRun(100, func() {
		r.Reset(body)
		if b, _, err := readAll(r, int64(len(body)), 1<<20); err != nil || len(b) != len(body) {
			t.Fatal(err)
		}
	})
	if allocs > 1 {
		t.Fatalf("%v allocations, want 1", allocs)
	}
}
