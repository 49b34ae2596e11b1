package turn

import (
	"context"
	"fmt"
	"net/netip"
	"slices"

	"github.com/pion/stun/v4"
)

// maxPeersPerRequest bounds the XOR-PEER-ADDRESS attributes of one
// CreatePermission request, keeping it far below any server's buffer.
const maxPeersPerRequest = 32

// Permit installs permissions for these peer IPs (CreatePermission, RFC
// 8656 §9) and keeps them refreshed until the allocation ends. Only
// permitted peers can be reached with Connect (which permits its peer
// itself) or reach Accept. It is idempotent: IPs already permitted cost
// nothing, and it returns once the server confirmed the others. Errors are
// *Error: ErrForbidden when the server refuses a peer address.
func (a *Allocation) Permit(ctx context.Context, ips ...netip.Addr) error {
	peers := make([]netip.AddrPort, len(ips))
	for i, ip := range ips {
		peers[i] = netip.AddrPortFrom(ip, 0)
	}
	return a.PermitAddrs(ctx, peers...)
}

// PermitAddrs is Permit for peers named with their port. A permission is
// for the peer's IP (RFC 8656 §9: servers ignore the port), except on a
// relay that keeps them by address for its own relayed addresses: the
// embedded relay (internal/relay) lets another of its allocations connect
// to this one only when this one permitted that allocation's relayed
// address, port included, so that other users of the relay cannot. Name
// a peer's relayed address on the same server this way; a port of 0 is
// the IP alone.
func (a *Allocation) PermitAddrs(ctx context.Context, peers ...netip.AddrPort) error {
	select {
	case <-a.done:
		return a.deadErr("permit")
	default:
	}
	for _, p := range peers {
		if !p.Addr().IsValid() {
			return &Error{Op: "permit", Server: a.name, Err: fmt.Errorf("invalid peer IP in %v", peers)}
		}
	}
	var missing []netip.AddrPort
	a.mu.Lock()
	for _, p := range peers {
		p = netip.AddrPortFrom(p.Addr().Unmap(), p.Port())
		if _, ok := a.permitted[p]; !ok && !slices.Contains(missing, p) {
			missing = append(missing, p)
		}
	}
	a.mu.Unlock()
	for chunk := range slices.Chunk(missing, maxPeersPerRequest) {
		if err := a.createPermission(ctx, "permit", chunk); err != nil {
			return err
		}
		a.mu.Lock()
		for _, p := range chunk {
			a.permitted[p] = struct{}{}
		}
		a.mu.Unlock()
	}
	return nil
}

// createPermission sends one CreatePermission request for peers.
func (a *Allocation) createPermission(ctx context.Context, op string, peers []netip.AddrPort) error {
	attrs := make([]stun.Setter, len(peers))
	for i, p := range peers {
		attrs[i] = xorAddr{stun.AttrXORPeerAddress, p}
	}
	resp, err := a.ctl.request(ctx, stun.MethodCreatePermission, attrs...)
	if err != nil {
		return a.opErr(op, err)
	}
	if resp.Type.Class == stun.ClassErrorResponse {
		return a.respErr(op, resp)
	}
	return nil
}
