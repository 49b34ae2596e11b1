// Command transfer measures icetcp send/receive beside croc (the file
// transfer tool people use for this, 10.7.0) on one machine: the time to
// move a file end to end, the time to its first byte on the receiver's
// disk, and the throughput between the two. Everything runs in a network
// namespace of its own (a per-run name, removed at the end) that has only
// a loopback interface: croc's relay, icetcp's rendezvous and both ends
// of each tool, so croc's LAN discovery stays inside. It needs root, the
// ip command, and croc:
//
//	go install github.com/schollz/croc/v10@v10.7.0
//	sudo go run ./bench/transfer                    # 256 MiB and 4 GiB
//	sudo go run ./bench/transfer -sizes 64MiB -runs 3
//
// The receiver is started as soon as the sender shows its code, as a
// script would; the sender of icetcp hashes the file meanwhile (a person
// reading the code aloud gives it the time), so its time to first byte
// includes what of the hash is left.
package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/icetcp/icetcp/internal/lab/child"
)

type result struct {
	tool       string
	size       int64
	total, fb  time.Duration // end to end; to the first byte on disk
	throughput float64       // bytes per second after the first byte
}

func main() {
	sizes := flag.String("sizes", "256MiB,4GiB", "comma-separated file sizes (KiB, MiB, GiB)")
	runs := flag.Int("runs", 1, "runs of each tool and size (the table shows the median)")
	crocBin := flag.String("croc", "", "croc binary (default: $GOPATH/bin/croc)")
	dir := flag.String("dir", "", "directory for the files (default: a temporary one)")
	tools := flag.String("tools", "icetcp,croc", "comma-separated tools to run")
	flag.Parse()
	if err := run(*sizes, *runs, *crocBin, *dir, strings.Split(*tools, ",")); err != nil {
		fmt.Fprintln(os.Stderr, "transfer:", err)
		os.Exit(1)
	}
}

func run(sizeList string, runs int, crocBin, dir string, tools []string) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("needs root (a network namespace of its own)")
	}
	if crocBin == "" {
		gopath, err := exec.Command("go", "env", "GOPATH").Output()
		if err != nil {
			return err
		}
		crocBin = filepath.Join(strings.TrimSpace(string(gopath)), "bin", "croc")
	}
	if _, err := os.Stat(crocBin); err != nil {
		return fmt.Errorf("croc: %w (go install github.com/schollz/croc/v10@v10.7.0)", err)
	}
	if dir == "" {
		d, err := os.MkdirTemp("", "icetcp-bench-transfer-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	icetcp := filepath.Join(dir, "icetcp")
	if out, err := exec.Command("go", "build", "-o", icetcp, "./cmd/icetcp").CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/icetcp (run from the module root): %v\n%s", err, out)
	}
	ns := fmt.Sprintf("icetcp-bench-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		return fmt.Errorf("ip netns add: %v: %s", err, out)
	}
	defer exec.Command("ip", "netns", "del", ns).Run()
	if out, err := exec.Command("ip", "-n", ns, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		return fmt.Errorf("lo up: %v: %s", err, out)
	}
	in := func(name string, args ...string) *exec.Cmd {
		cmd := exec.Command("ip", append([]string{"netns", "exec", ns, name}, args...)...)
		child.Prepare(cmd, true)
		return cmd
	}
	serve := in(icetcp, "serve", "--signal-addr", "127.0.0.1:18080", "--stun-addr", "127.0.0.1:13478")
	relay := in(crocBin, "relay", "--host", "127.0.0.1", "--ports", "9109,9110,9111,9112,9113")
	for _, c := range []*exec.Cmd{serve, relay} {
		if err := c.Start(); err != nil {
			return err
		}
		defer func(c *exec.Cmd) { child.KillGroup(c.Process); c.Wait() }(c)
	}
	time.Sleep(time.Second) // both listen long before; a benchmark, not a test

	var results []result
	for _, s := range strings.Split(sizeList, ",") {
		size, err := parseSize(strings.TrimSpace(s))
		if err != nil {
			return err
		}
		src := filepath.Join(dir, "src", fmt.Sprintf("file-%d.bin", size))
		if err := makeFile(src, size); err != nil {
			return err
		}
		want, err := fileHash(src)
		if err != nil {
			return err
		}
		for _, tool := range tools {
			var rs []result
			for i := range runs {
				out := filepath.Join(dir, "out", fmt.Sprintf("%s-%d", tool, i))
				os.RemoveAll(out)
				if err := os.MkdirAll(out, 0o755); err != nil {
					return err
				}
				var r result
				if tool == "icetcp" {
					r, err = icetcpTrial(in, icetcp, src, out)
				} else {
					r, err = crocTrial(in, crocBin, src, out, i)
				}
				if err != nil {
					return fmt.Errorf("%s %s: %w", tool, s, err)
				}
				got, err := fileHash(filepath.Join(out, filepath.Base(src)))
				if err != nil || got != want {
					return fmt.Errorf("%s %s: the received file differs (%v)", tool, s, err)
				}
				os.RemoveAll(out)
				r.tool, r.size = tool, size
				rs = append(rs, r)
				fmt.Fprintf(os.Stderr, "%s %s run %d: %v end to end, first byte %v\n", tool, s, i+1, r.total.Round(time.Millisecond), r.fb.Round(time.Millisecond))
			}
			sort.Slice(rs, func(a, b int) bool { return rs[a].total < rs[b].total })
			results = append(results, rs[len(rs)/2])
		}
		os.Remove(src)
	}
	printTable(results)
	return nil
}

// icetcpTrial: send waits for the receiver; the receiver starts once the
// code is out.
func icetcpTrial(in func(string, ...string) *exec.Cmd, bin, src, out string) (result, error) {
	send := in(bin, "send", "--json", "--signal", "ws://127.0.0.1:18080", "--addrs", "127.0.0.1", src)
	stderr, err := send.StderrPipe()
	if err != nil {
		return result{}, err
	}
	if err := send.Start(); err != nil {
		return result{}, err
	}
	defer func() { child.KillGroup(send.Process); send.Wait() }()
	code, err := readCode(stderr)
	if err != nil {
		return result{}, err
	}
	go io.Copy(io.Discard, stderr)
	recv := in(bin, "receive", "--quiet", "--signal", "ws://127.0.0.1:18080", "--addrs", "127.0.0.1", "-o", out, code)
	return timeReceiver(recv, out)
}

func readCode(r io.Reader) (string, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		var ev struct{ Event, Code string }
		if json.Unmarshal(sc.Bytes(), &ev) == nil && ev.Event == "code" {
			return ev.Code, nil
		}
	}
	return "", fmt.Errorf("send printed no code")
}

// crocTrial: croc's sender with a fixed code (its receiver takes it from
// CROC_SECRET), through the relay in the namespace.
func crocTrial(in func(string, ...string) *exec.Cmd, bin, src, out string, i int) (result, error) {
	code := fmt.Sprintf("%d-bench-transfer-code", 1000+i)
	send := in(bin, "--relay", "127.0.0.1:9109", "--yes", "send", src)
	send.Env = append(os.Environ(), "CROC_SECRET="+code) // croc 10 takes a chosen code only from there
	stderr, err := send.StderrPipe()
	if err != nil {
		return result{}, err
	}
	send.Stdout = io.Discard
	if err := send.Start(); err != nil {
		return result{}, err
	}
	defer func() { child.KillGroup(send.Process); send.Wait() }()
	sc := bufio.NewScanner(stderr)
	for sc.Scan() { // croc prints the code once it is ready
		if strings.Contains(sc.Text(), "Code is:") {
			break
		}
	}
	go io.Copy(io.Discard, stderr)
	recv := in(bin, "--relay", "127.0.0.1:9109", "--yes", "--overwrite", "--out", out)
	recv.Env = append(os.Environ(), "CROC_SECRET="+code)
	return timeReceiver(recv, out)
}

// timeReceiver runs the receiver and watches out for the first byte.
func timeReceiver(recv *exec.Cmd, out string) (result, error) {
	var log strings.Builder
	recv.Stdout, recv.Stderr = &log, &log
	start := time.Now()
	if err := recv.Start(); err != nil {
		return result{}, err
	}
	done := make(chan error, 1)
	go func() { done <- recv.Wait() }()
	var fb time.Duration
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			total := time.Since(start)
			if err != nil {
				return result{}, fmt.Errorf("receiver: %v\n%s", err, log.String())
			}
			if fb == 0 {
				fb = total
			}
			return result{total: total, fb: fb}, nil
		case <-tick.C:
			if fb == 0 && dirBytes(out) > 0 {
				fb = time.Since(start)
			}
		}
	}
}

// dirBytes is what the files in dir hold (the receivers write a partial
// file first).
func dirBytes(dir string) int64 {
	var n int64
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if fi, err := e.Info(); err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
	}
	return n
}

func printTable(rs []result) {
	fmt.Println("| tool | size | end to end | first byte | throughput after the first byte | end-to-end rate |")
	fmt.Println("|---|---|---|---|---|---|")
	by := map[string]result{}
	for _, r := range rs {
		r.throughput = float64(r.size) / max((r.total-r.fb).Seconds(), 1e-9)
		by[r.tool+strconv.FormatInt(r.size, 10)] = r
		fmt.Printf("| %s | %s | %.2f s | %.0f ms | %.0f MB/s | %.0f MB/s |\n", r.tool, sizeText(r.size), r.total.Seconds(),
			float64(r.fb.Microseconds())/1000, r.throughput/1e6, float64(r.size)/r.total.Seconds()/1e6)
	}
	fmt.Println()
	for _, r := range rs {
		if r.tool != "icetcp" {
			continue
		}
		c, ok := by["croc"+strconv.FormatInt(r.size, 10)]
		if !ok {
			continue
		}
		fmt.Printf("%s: icetcp %.1f× croc's throughput, %.1f× faster end to end\n", sizeText(r.size),
			(float64(r.size)/max((r.total-r.fb).Seconds(), 1e-9))/(float64(c.size)/max((c.total-c.fb).Seconds(), 1e-9)), c.total.Seconds()/r.total.Seconds())
	}
}

func parseSize(s string) (int64, error) {
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			return n * u.mult, err
		}
	}
	return strconv.ParseInt(s, 10, 64)
}

func sizeText(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20:
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d B", n)
}

// makeFile writes size pseudo-random (incompressible) bytes.
func makeFile(name string, size int64) error {
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return err
	}
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	defer f.Close()
	rng := rand.NewChaCha8([32]byte{1})
	if _, err := io.CopyN(f, rng, size); err != nil {
		return err
	}
	return f.Sync()
}

func fileHash(name string) (string, error) {
	f, err := os.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return fmt.Sprintf("%x", h.Sum(nil)), nil
}
