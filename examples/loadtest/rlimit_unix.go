//go:build unix

package main

import "syscall"

// raiseFileLimit raises the soft limit on open files to the hard limit, so
// that wrk and the servers, which inherit it, can hold -rss-conns
// connections. (Go raises its own soft limit, but gives children the
// original one unless the program sets it itself.)
func raiseFileLimit() {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) == nil && l.Cur < l.Max {
		l.Cur = l.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}
