// Command testjson reads `go test -json` from stdin, prints the usual
// human output, and fails when a test failed or, with -no-skip, when any
// test skipped: under CI=true a skipped lab or interop test is a defect
// (it would pass without running), so CI must not accept one.
//
//	go test -json ./... | go run ./scripts/testjson -no-skip
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
)

type event struct {
	Action  string
	Package string
	Test    string
	Output  string
	Elapsed float64
}

func main() {
	noSkip := flag.Bool("no-skip", false, "fail when a test skipped")
	flag.Parse()
	var skipped, failed []string
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			fmt.Println(sc.Text()) // not JSON: build output
			continue
		}
		switch e.Action {
		case "output":
			fmt.Print(e.Output)
		case "skip":
			if e.Test != "" {
				skipped = append(skipped, e.Package+" "+e.Test)
			}
		case "fail":
			if e.Test != "" {
				failed = append(failed, e.Package+" "+e.Test)
			} else {
				failed = append(failed, e.Package)
			}
		}
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintln(os.Stderr, "testjson:", err)
		os.Exit(1)
	}
	sort.Strings(skipped)
	code := 0
	if len(skipped) > 0 {
		fmt.Printf("\n%d tests skipped:\n", len(skipped))
		for _, s := range skipped {
			fmt.Println("  " + s)
		}
		if *noSkip {
			fmt.Println("testjson: CI forbids skipped tests")
			code = 1
		}
	}
	if len(failed) > 0 {
		fmt.Printf("\nFAILED: %d\n", len(failed))
		for _, f := range failed {
			fmt.Println("  " + f)
		}
		code = 1
	}
	os.Exit(code)
}
