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
	select {
	case <-a.done:
		return a.deadErr("permit")
	default:
	}
	for _, ip := range ips {
		if !ip.IsValid() {
			return &Error{Op: "permit", Server: a.name, Err: fmt.Errorf("invalid peer IP in %v", ips)}
		}
	}
	var missing []netip.Addr
	a.mu.Lock()
	for _, ip := range ips {
		ip = ip.Unmap()
		if _, ok := a.permitted[ip]; !ok && !slices.Contains(missing, ip) {
			missing = append(missing, ip)
		}
	}
	a.mu.Unlock()
	for chunk := range slices.Chunk(missing, maxPeersPerRequest) {
		if err := a.createPermission(ctx, "permit", chunk); err != nil {
			return err
		}
		a.mu.Lock()
		for _, ip := range chunk {
			a.permitted[ip] = struct{}{}
		}
		a.mu.Unlock()
	}
	return nil
}

// createPermission sends one CreatePermission request for ips.
func (a *Allocation) createPermission(ctx context.Context, op string, ips []netip.Addr) error {
	attrs := make([]stun.Setter, len(ips))
	for i, ip := range ips {
		// Permissions are per IP; the port is ignored (RFC 8656 §9).
		attrs[i] = xorAddr{stun.AttrXORPeerAddress, netip.AddrPortFrom(ip, 0)}
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
