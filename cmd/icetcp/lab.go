package main

import (
	"context"
	"errors"
	"io"
)

func labCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("lab: not built yet")
}
