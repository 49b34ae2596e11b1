package netns

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// Exec runs a command and returns an error that names the command and carries
// its combined output, so that an nft or ip failure explains itself.
// stdin may be empty.
func Exec(ctx context.Context, stdin string, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("netns: %s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out.Bytes()))
	}
	return nil
}

// Add creates the named namespace (ip netns add) and brings its loopback up.
func Add(ctx context.Context, name string) error {
	if err := Exec(ctx, "", "ip", "netns", "add", name); err != nil {
		return err
	}
	return Exec(ctx, "", "ip", "-n", name, "link", "set", "lo", "up")
}

// Delete removes the named namespace. Processes still inside keep it alive
// until they exit; callers kill them first (see Pids).
func Delete(ctx context.Context, name string) error {
	return Exec(ctx, "", "ip", "netns", "delete", name)
}

// List returns the names of the namespaces under Dir that start with prefix.
func List(prefix string) ([]string, error) {
	ents, err := os.ReadDir(Dir)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("netns: list %s: %w", Dir, err)
	}
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prefix) {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// Pids returns the ids of the processes whose network namespace is ns.
func Pids(ctx context.Context, ns string) ([]int, error) {
	out, err := exec.CommandContext(ctx, "ip", "netns", "pids", ns).Output()
	if err != nil {
		return nil, fmt.Errorf("netns: ip netns pids %s: %w", ns, err)
	}
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		var pid int
		if _, err := fmt.Sscan(f, &pid); err == nil && pid > 0 && pid != os.Getpid() {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}
