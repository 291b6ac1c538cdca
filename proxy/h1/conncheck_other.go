//go:build !unix

package h1

// peek cannot look at the socket here: an idle connection is taken as
// open, and a failure on it is retried as net/http would.
func (c *conn) peek(fd uintptr) bool {
	c.peekOK = true
	return true
}
