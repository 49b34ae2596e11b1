//go:build !unix

package testnet

// setLingerZero does nothing here: connections close the ordinary way.
func setLingerZero(uintptr) error { return nil }
