package gateway

import (
	"bytes"
	"io"
)

// readAll reads r to its end and returns what it read, or over when there
// is more than limit bytes (a negative limit is none). size is the length
// r announced (a Content-Length), or negative: a body of the announced
// length is read into one buffer of exactly that size, where growing a
// buffer as bytes arrive would cost a second allocation of twice the size
// just to see the end.
func readAll(r io.Reader, size, limit int64) (b []byte, over bool, err error) {
	if size >= 0 && (limit < 0 || size <= limit) {
		b = make([]byte, size, size+1)
		if _, err := io.ReadFull(r, b); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF // shorter than announced
			}
			return nil, false, err
		}
		// The end must come now; the spare byte of capacity takes a byte
		// past it, for a reader that sends more than it announced.
		if _, err := io.ReadFull(r, b[size:size+1]); err == io.EOF {
			return b, false, nil
		} else if err != nil {
			return nil, false, err
		}
		b = b[:size+1]
	}
	buf := bytes.NewBuffer(b)
	src := r
	if limit >= 0 {
		src = io.LimitReader(r, limit+1-int64(len(b)))
	}
	if _, err := buf.ReadFrom(src); err != nil {
		return nil, false, err
	}
	if limit >= 0 && int64(buf.Len()) > limit {
		return nil, true, nil
	}
	return buf.Bytes(), false, nil
}
