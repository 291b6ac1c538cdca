package gateway

import (
	"fmt"
	"io"
	"net/http"
)

// serveUpgrade completes a protocol switch (RFC 9110 §15.2.2), such as a
// WebSocket handshake an upstream accepted: it takes over the client
// connection, sends the 101 reply and copies bytes both ways until either
// side closes.
func serveUpgrade(w http.ResponseWriter, req *Request, resp *Response, o *Options) {
	backend, ok := resp.Body.(io.ReadWriteCloser)
	if !ok {
		resp.Close()
		writeError(w, req, &Error{Status: http.StatusBadGateway, Detail: "the upstream switched protocols without a connection to switch to"}, o)
		return
	}
	defer backend.Close()
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		writeError(w, req, &Error{Status: http.StatusInternalServerError, Detail: "the connection cannot switch protocols", Err: err}, o)
		return
	}
	defer conn.Close()
	fmt.Fprintf(brw, "HTTP/1.1 101 %s\r\n", http.StatusText(http.StatusSwitchingProtocols))
	if err := resp.Header.Write(brw); err != nil {
		return
	}
	if _, err := brw.WriteString("\r\n"); err != nil {
		return
	}
	if err := brw.Flush(); err != nil {
		return
	}
	done := make(chan struct{}, 2)
	go func() {
		// brw.Reader first: it may hold bytes the client sent right after
		// its handshake.
		io.Copy(backend, brw.Reader)
		done <- struct{}{}
	}()
	go func() {
		io.Copy(conn, backend)
		done <- struct{}{}
	}()
	select {
	case <-done:
	case <-req.HTTP.Context().Done():
	}
	// Closing both ends (deferred) ends the other copy.
}
