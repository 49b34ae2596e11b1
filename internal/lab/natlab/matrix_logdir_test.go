package natlab

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestMatrixCreatesLogDir: trial logs are written as trials end, where a
// failed write has nobody to report to; `icetcp lab --log-dir` named a
// directory that did not exist and every log was silently lost. The
// directory is made before anything runs (here the matrix then stops at
// an unknown profile, without building a lab).
func TestMatrixCreatesLogDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "logs", "run1")
	_, err := RunMatrix(context.Background(), MatrixConfig{Binary: "icetcp", LogDir: dir, Profiles: []string{"no-such-profile"}})
	if err == nil {
		t.Fatal("an unknown profile was accepted")
	}
	if fi, statErr := os.Stat(dir); statErr != nil || !fi.IsDir() {
		t.Fatalf("log directory not created (%v); the matrix said: %v", statErr, err)
	}
}
