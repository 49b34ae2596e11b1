package interop

import (
	"context"
	_ "embed"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

//go:embed webrtc_peer.js
var webrtcScript []byte

// NodeModulesEnv names the folder that holds @roamhq/wrtc's node_modules;
// empty: $HOME/.cache/icetcp-interop/node_modules, where
// scripts/install-interop.sh installs it.
const NodeModulesEnv = "ICETCP_INTEROP_NODE_MODULES"

// NodeModules is the node_modules folder the libwebrtc peer loads
// @roamhq/wrtc from.
func NodeModules() string {
	if d := os.Getenv(NodeModulesEnv); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "icetcp-interop", "node_modules")
	}
	return filepath.Join(home, ".cache", "icetcp-interop", "node_modules")
}

// WebRTCAvailable reports whether node can load @roamhq/wrtc here, and if
// not, why.
func WebRTCAvailable() error {
	if _, err := exec.LookPath("node"); err != nil {
		return errors.Join(ErrMissing, errors.New("node"), err)
	}
	cmd := exec.Command("node", "-e", "require('@roamhq/wrtc')")
	cmd.Env = append(os.Environ(), "NODE_PATH="+NodeModules())
	if out, err := cmd.CombinedOutput(); err != nil {
		return errors.Join(ErrMissing, errors.New("npm @roamhq/wrtc in "+NodeModules()+": "+string(out)), err)
	}
	return nil
}

// NewWebRTC starts a libwebrtc agent (npm @roamhq/wrtc under node) that
// reports its ICE connection state; it passes on only its TCP candidates on
// opts.Addr and has no data path (DTLS is not icetcp's). The controlling
// peer makes the offer. Stop it with Stop.
func NewWebRTC(ctx context.Context, opts Options) (*Peer, error) {
	if err := WebRTCAvailable(); err != nil {
		return nil, err
	}
	return startScript("libwebrtc", opts, "webrtc_peer.js", webrtcScript, []string{"NODE_PATH=" + NodeModules()}, "node", opts.role(), opts.addr().String())
}

// StartWebRTC is NewWebRTC for a test: it skips (fails under CI=true) when
// node or @roamhq/wrtc is missing and stops the peer at the test's end.
func StartWebRTC(t testing.TB, opts Options) *Peer {
	t.Helper()
	requireTool(t, WebRTCAvailable())
	p, err := NewWebRTC(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	stopAtEnd(t, p)
	return p
}
