package interop

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/icetcp/icetcp/internal/lab/child"
)

// procDriver runs an agent in a child process that reads commands and
// writes events as JSON lines.
type procDriver struct {
	cmd    *exec.Cmd
	done   chan struct{} // closed when the event reader ended
	exited chan struct{} // closed when the process was reaped

	mu    sync.Mutex // guards stdin
	stdin io.WriteCloser
}

// startProc runs name with args (through opts.Wrap when set) and feeds its
// events to p.
func startProc(p *Peer, env []string, name string, args ...string) (*procDriver, error) {
	var cmd *exec.Cmd
	if p.opts.Wrap != nil {
		cmd = p.opts.Wrap(name, args...)
	} else {
		cmd = exec.Command(name, args...)
	}
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = p.log
	child.Prepare(cmd, false) // a test that dies must not leave agents behind
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("interop: %s: %w", p.kind, err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("interop: %s: %w", p.kind, err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("interop: %s: start %s: %w", p.kind, name, err)
	}
	d := &procDriver{cmd: cmd, stdin: stdin, done: make(chan struct{}), exited: make(chan struct{})}
	go func() {
		defer close(d.done)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			var e event
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				p.log.printf("%s stdout: %s", p.kind, sc.Bytes())
				continue
			}
			p.emit(e)
		}
		io.Copy(io.Discard, stdout) // a line too long: keep the child from blocking
	}()
	go func() {
		<-d.done
		cmd.Wait()
		close(d.exited)
	}()
	return d, nil
}

func (d *procDriver) do(c command) error {
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stdin == nil {
		return errors.New("interop: peer stopped")
	}
	if _, err := d.stdin.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("interop: write command: %w", err)
	}
	return nil
}

// stop asks the child to quit, then kills it if it does not within 5 s.
func (d *procDriver) stop() error {
	d.do(command{Op: "quit"})
	d.mu.Lock()
	d.stdin.Close()
	d.stdin = nil
	d.mu.Unlock()
	select {
	case <-d.exited:
	case <-time.After(5 * time.Second):
		d.cmd.Process.Kill()
		<-d.exited
	}
	return nil
}

// writeScript puts an embedded script into a new temporary folder and
// returns its path and a function that removes it.
func writeScript(name string, body []byte) (string, func(), error) {
	dir, err := os.MkdirTemp("", "icetcp-interop-")
	if err != nil {
		return "", nil, fmt.Errorf("interop: %w", err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, body, 0o644); err != nil {
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("interop: %w", err)
	}
	return path, func() { os.RemoveAll(dir) }, nil
}

// startScript writes an embedded script to a temporary file and runs it
// with interpreter as a process peer; the file goes when the peer stops.
func startScript(kind string, opts Options, name string, body []byte, env []string, interpreter string, args ...string) (*Peer, error) {
	path, remove, err := writeScript(name, body)
	if err != nil {
		return nil, err
	}
	p := newPeer(kind, opts)
	d, err := startProc(p, env, interpreter, append([]string{path}, args...)...)
	if err != nil {
		remove()
		return nil, err
	}
	p.drv = &cleanupDriver{driver: d, cleanup: remove}
	return p, nil
}

// cleanupDriver runs cleanup after the driver stopped.
type cleanupDriver struct {
	driver
	cleanup func()
}

func (c *cleanupDriver) stop() error {
	err := c.driver.stop()
	c.cleanup()
	return err
}
