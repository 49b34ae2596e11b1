//go:build !linux

package main

import (
	"errors"
	"io"
)

// labTable needs the NAT lab, which is Linux only.
func labTable(io.Writer, config) error { return errors.New("-lab needs Linux (network namespaces)") }
