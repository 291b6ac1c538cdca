package gateway

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
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
	if t, ok := req.HTTP.Context().Value(upgradesKey{}).(*upgrades); ok {
		if !t.add(conn) {
			return // the server is shutting down
		}
		defer t.done(conn)
	}
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

// upgrades tracks the connections a Server switched to another protocol.
// net/http forgets a connection once it is hijacked, so without this a
// shutdown would neither wait for nor close them.
type upgrades struct {
	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	closing bool
	wg      sync.WaitGroup
}

type upgradesKey struct{}

func (u *upgrades) add(c net.Conn) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closing {
		return false
	}
	if u.conns == nil {
		u.conns = make(map[net.Conn]struct{})
	}
	u.conns[c] = struct{}{}
	u.wg.Add(1)
	return true
}

func (u *upgrades) done(c net.Conn) {
	u.mu.Lock()
	delete(u.conns, c)
	u.mu.Unlock()
	u.wg.Done()
}

// closeAll closes every upgraded connection, refuses new ones, and waits
// until their relays have ended.
func (u *upgrades) closeAll() {
	u.mu.Lock()
	u.closing = true
	for c := range u.conns {
		c.Close()
	}
	u.mu.Unlock()
	u.wg.Wait()
}
