package h1

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"reflect"
	"testing"
)

// readOne parses data as one reply to req, as a Transport would, and reads
// its body.
func readOne(data []byte, req *http.Request) (*http.Response, []byte, error) {
	p := parser{br: bufio.NewReader(bytes.NewReader(data)), limit: DefaultMaxResponseHeaderBytes}
	h, err := p.readHead()
	if err != nil {
		return nil, nil, err
	}
	r, err := frame(h, req, &p)
	if err != nil {
		return nil, nil, err
	}
	body, err := io.ReadAll(r.resp.Body)
	return &r.resp, body, err
}

// FuzzReadResponse compares the reply parser with http.ReadResponse: what
// net/http rejects, head or body, is rejected; what both accept has the
// same status, header, body and trailer.
func FuzzReadResponse(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n5\r\nhello\r\n0\r\nX-Sum: 1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n3;ext=1\r\nabc\r\n0\r\n\r\n",
		"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n",
		"HTTP/1.1 304 Not Modified\r\nEtag: \"x\"\r\n\r\n",
		"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
		"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n",
		"HTTP/1.1 200\r\nConnection: close\r\n\r\nuntil the end",
		"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
		"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
		"HTTP/1.1 200 OK\r\nx-lower: a\r\nX-LOWER: b\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX-A: 1\r\n 2\r\n\r\n",
		"HTTP/1.1 200 OK\nContent-Length: 1\n\nx",
		"HTTP/1.1 999 Whatever\r\n\r\n",
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, data []byte, head bool) {
		method := "GET"
		if head {
			method = "HEAD"
		}
		req := &http.Request{Method: method}
		theirs, theirErr := http.ReadResponse(bufio.NewReader(bytes.NewReader(data)), req)
		var theirBody []byte
		if theirErr == nil {
			theirBody, theirErr = io.ReadAll(theirs.Body)
		}
		ours, ourBody, ourErr := readOne(data, req)
		switch {
		case theirErr != nil && ourErr == nil:
			t.Fatalf("net/http rejects (%v), h1 accepts: %q", theirErr, data)
		case theirErr != nil || ourErr != nil:
			return // h1 may be stricter
		}
		if ours.StatusCode != theirs.StatusCode || ours.Status != theirs.Status || ours.Proto != theirs.Proto {
			t.Fatalf("status %q %q, net/http %q %q", ours.Proto, ours.Status, theirs.Proto, theirs.Status)
		}
		if !reflect.DeepEqual(ours.Header, theirs.Header) {
			t.Fatalf("header %q, net/http %q", ours.Header, theirs.Header)
		}
		if !bytes.Equal(ourBody, theirBody) {
			t.Fatalf("body %q, net/http %q", ourBody, theirBody)
		}
		if len(ours.Trailer) != 0 || len(theirs.Trailer) != 0 {
			if !reflect.DeepEqual(ours.Trailer, theirs.Trailer) {
				t.Fatalf("trailer %q, net/http %q", ours.Trailer, theirs.Trailer)
			}
		}
		if ours.ContentLength != theirs.ContentLength || ours.Close != theirs.Close ||
			!reflect.DeepEqual(ours.TransferEncoding, theirs.TransferEncoding) {
			t.Fatalf("ContentLength %d, Close %v, TransferEncoding %q; net/http %d, %v, %q",
				ours.ContentLength, ours.Close, ours.TransferEncoding, theirs.ContentLength, theirs.Close, theirs.TransferEncoding)
		}
	})
}
