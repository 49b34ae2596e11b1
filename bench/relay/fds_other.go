//go:build !unix

package main

// fitIdle keeps n: no descriptor limit to read here.
func fitIdle(n int) int { return n }
