//go:build !lab

package main

import (
	"context"
	"errors"
	"io"
)

// labCmd without the lab: the product binary links none of the NAT lab
// (namespaces, nftables, the delay line, coturn and proxy control). Build
// with the lab tag to get it.
func labCmd(context.Context, []string, io.Writer, io.Writer) error {
	return errors.New("this icetcp was built without the NAT lab; build one with it: go build -tags lab -o /tmp/icetcp ./cmd/icetcp")
}
