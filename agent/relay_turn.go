package agent

import (
	"context"
	"errors"
)

// turnAllocate allocates with internal/turn. (Wired when the TURN client
// lands.)
func (a *Agent) turnAllocate(ctx context.Context, s TURNServer) (relayAlloc, error) {
	return nil, errors.New("agent: TURN client not available in this build")
}
