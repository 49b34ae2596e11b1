//go:build unix

package main

import "syscall"

// fitIdle lowers n so that n idle allocations (two descriptors each in the
// relay, one here) stay well inside the descriptor limit.
func fitIdle(n int) int {
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil {
		if limit := int(lim.Cur)/2 - 500; n > limit {
			return limit
		}
	}
	return n
}
