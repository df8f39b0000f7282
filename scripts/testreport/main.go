// Command testreport reads `go test -json` on stdin and prints what
// `go test` would (a line per package, the output of each failed test)
// and the tests that skipped. It fails when a test or a build failed, or
// when a test skipped that the allow-list does not name: in CI a skip is
// a missing test, so it is a failure unless its reason is one of the
// few listed in README.
//
//	go test -json ./... | go run ./scripts/testreport -allow 'TestCrashChild$'
package main

import (
	"flag"
	"fmt"
	"os"
	"regexp"
	"strings"
)

func main() {
	var allow multiFlag
	flag.Var(&allow, "allow", "regular expression of a test (pkg.Test/sub) that may skip; repeatable")
	flag.Parse()
	policy, err := newPolicy(allow)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testreport:", err)
		os.Exit(2)
	}
	sum, err := report(os.Stdin, os.Stdout, policy)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testreport:", err)
		os.Exit(2)
	}
	if !sum.ok() {
		os.Exit(1)
	}
}

// multiFlag is a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// policy says which skips are allowed.
type policy struct {
	allowed []*regexp.Regexp
}

func newPolicy(patterns []string) (policy, error) {
	var p policy
	for _, s := range patterns {
		re, err := regexp.Compile(s)
		if err != nil {
			return policy{}, fmt.Errorf("-allow %q: %w", s, err)
		}
		p.allowed = append(p.allowed, re)
	}
	return p, nil
}

// allows says whether the test (its package's import path, a dot, its
// name) may skip.
func (p policy) allows(test string) bool {
	for _, re := range p.allowed {
		if re.MatchString(test) {
			return true
		}
	}
	return false
}
