//go:build unix

package h1

import (
	"errors"
	"syscall"
)

// peek looks, without blocking, at whether the idle connection's socket has
// anything to read: data nobody asked for, or the end of the stream. Either
// makes the connection unusable. It runs in syscall.RawConn.Read.
func (c *conn) peek(fd uintptr) bool {
	var b [1]byte
	_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	c.peekOK = errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EWOULDBLOCK)
	return true
}
