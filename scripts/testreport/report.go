package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
)

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action      string
	Package     string
	Test        string
	Elapsed     float64
	Output      string
	ImportPath  string // build-output and build-fail
	FailedBuild string // a package's fail caused by a build failure
}

// summary is what report saw.
type summary struct {
	// Failed are the packages and tests that failed, in order.
	Failed []string
	// Skipped are the skipped tests, each with its reason.
	Skipped []skip
	// Refused are the skips the policy does not allow.
	Refused []skip
	// Packages counts the packages that reported a result.
	Packages int
}

// skip is one skipped test and why.
type skip struct {
	Test   string // pkg.Test/sub
	Reason string
}

func (s summary) ok() bool { return len(s.Failed) == 0 && len(s.Refused) == 0 && s.Packages > 0 }

// report reads events from r and writes go test's usual lines to w as
// they come: "ok"/"FAIL" per package, every failed test's output, every
// build error; then the skips, and a last line saying what failed.
func report(r io.Reader, w io.Writer, p policy) (summary, error) {
	var sum summary
	outputs := map[string][]string{} // package or pkg.Test -> output lines
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var ev event
		if err := json.Unmarshal(line, &ev); err != nil || ev.Action == "" {
			fmt.Fprintln(w, string(line)) // not an event: go itself speaking (a setup failure)
			continue
		}
		key := ev.Package
		if ev.Test != "" {
			key += "." + ev.Test
		}
		switch ev.Action {
		case "build-output":
			fmt.Fprint(w, ev.Output)
		case "build-fail":
			sum.Failed = append(sum.Failed, "build of "+ev.ImportPath)
		case "output":
			outputs[key] = append(outputs[key], ev.Output)
		case "skip":
			if ev.Test == "" {
				fmt.Fprintf(w, "?   \t%s\t[no test files]\n", ev.Package)
				delete(outputs, key)
				continue
			}
			s := skip{Test: key, Reason: skipReason(outputs[key])}
			sum.Skipped = append(sum.Skipped, s)
			if !p.allows(key) {
				sum.Refused = append(sum.Refused, s)
			}
			delete(outputs, key)
		case "pass":
			if ev.Test == "" {
				sum.Packages++
				fmt.Fprintf(w, "ok  \t%s\t%.3fs\n", ev.Package, ev.Elapsed)
			}
			delete(outputs, key)
		case "fail":
			if ev.Test != "" {
				fmt.Fprint(w, strings.Join(outputs[key], ""))
				sum.Failed = append(sum.Failed, key)
				delete(outputs, key)
				continue
			}
			sum.Packages++
			// A package's own output holds what no test printed: a panic,
			// a TestMain's failure, a timeout.
			for _, l := range outputs[key] {
				if l != "FAIL\n" && !strings.HasPrefix(l, "FAIL\t"+ev.Package+"\t") {
					fmt.Fprint(w, l)
				}
			}
			fmt.Fprintf(w, "FAIL\t%s\t%.3fs\n", ev.Package, ev.Elapsed)
			sum.Failed = append(sum.Failed, ev.Package)
			delete(outputs, key)
		}
	}
	if err := sc.Err(); err != nil {
		return sum, fmt.Errorf("read go test -json: %w", err)
	}
	writeSkips(w, sum)
	return sum, nil
}

// skipReason is the text t.Skip printed: the test's log lines
// ("file_test.go:12: reason") without their position.
func skipReason(lines []string) string {
	var reason []string
	for _, l := range lines {
		m := logLine.FindStringSubmatch(strings.TrimRight(l, "\n"))
		if m != nil {
			reason = append(reason, strings.TrimSpace(m[1]))
		}
	}
	return strings.Join(reason, " ")
}

// logLine is a line of a test's log: indented, a file and line, the text.
var logLine = regexp.MustCompile(`^\s+\S+\.go:\d+: (.*)$`)

// writeSkips lists the skips, refused ones first, and the verdict.
func writeSkips(w io.Writer, sum summary) {
	skips := append([]skip(nil), sum.Skipped...)
	sort.SliceStable(skips, func(i, j int) bool { return skips[i].Test < skips[j].Test })
	if len(skips) > 0 {
		fmt.Fprintf(w, "\n%d skipped tests:\n", len(skips))
		for _, s := range skips {
			mark := "allowed"
			for _, r := range sum.Refused {
				if r.Test == s.Test {
					mark = "NOT ALLOWED"
				}
			}
			fmt.Fprintf(w, "  %-11s %s: %s\n", mark, s.Test, s.Reason)
		}
	}
	switch {
	case len(sum.Failed) > 0:
		fmt.Fprintf(w, "\nFAILED: %s\n", strings.Join(sum.Failed, ", "))
	case len(sum.Refused) > 0:
		fmt.Fprintf(w, "\nFAILED: %d tests skipped that must run here (a skip in CI is a missing test)\n", len(sum.Refused))
	case sum.Packages == 0:
		fmt.Fprintln(w, "\nFAILED: no package reported a result")
	}
}
