package testbed

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
)

// prefixPattern matches a run prefix: "mtb" and 5 hex digits, so that the
// longest interface name (prefix + "-v100") stays within Linux's 15 bytes.
const prefixPattern = `mtb[0-9a-f]{5}`

// anchoredPrefix matches exactly one run prefix.
func anchoredPrefix() *regexp.Regexp {
	return regexp.MustCompile(`^` + prefixPattern + `$`)
}

// ValidPrefix reports whether s has the form of a run prefix.
func ValidPrefix(s string) bool { return anchoredPrefix().MatchString(s) }

// newPrefix returns a fresh random run prefix.
func newPrefix() (string, error) {
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("testbed: random prefix: %w", err)
	}
	return "mtb" + hex.EncodeToString(b[:])[:5], nil
}

// prefixOf returns the run prefix that name starts with ("mtb1a2b3-h1" ->
// "mtb1a2b3"), or "" when name belongs to no run.
func prefixOf(name string) string {
	if len(name) < 8 || !ValidPrefix(name[:8]) {
		return ""
	}
	if len(name) > 8 && name[8] != '-' {
		return ""
	}
	return name[:8]
}

// prefixesIn returns every run prefix followed by '-' that occurs in s.
func prefixesIn(s string) []string {
	var out []string
	for _, m := range regexp.MustCompile(prefixPattern+`-`).FindAllString(s, -1) {
		out = append(out, strings.TrimSuffix(m, "-"))
	}
	return out
}

// Names of the things a run makes, all starting with its prefix.
func bridgeName(prefix string) string           { return prefix + "-br" }
func namespaceName(prefix string, i int) string { return fmt.Sprintf("%s-h%d", prefix, i) }
func vethName(prefix string, i int) string      { return fmt.Sprintf("%s-v%d", prefix, i) }
func peerName(prefix string, i int) string      { return fmt.Sprintf("%s-p%d", prefix, i) }
