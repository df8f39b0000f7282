package plans

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"time"
)

// dnsLabelMax is the longest DNS-1123 label.
const dnsLabelMax = 63

// k3sKeysOfMcplan are the k3s settings (config keys and their short flags)
// mcplan writes into config.yaml itself: k3s.args may not set them (tls-san
// may: it adds to mcplan's list).
var k3sKeysOfMcplan = []string{"node-name", "node-ip", "i", "advertise-address", "write-kubeconfig-mode",
	"https-listen-port", "cluster-init", "server", "s", "token", "t", "token-file", "agent-token", "agent-token-file", "config", "c", "data-dir", "d"}

var (
	dnsLabelRE   = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	hostLabelRE  = regexp.MustCompile(`^[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?$`)
	k3sVersionRE = regexp.MustCompile(`^v\d+\.\d+\.\d+\+k3s\d+$`)
	// k3sVersionParts are a k3s version's numbers.
	k3sVersionParts = regexp.MustCompile(`^v(\d+)\.(\d+)\.(\d+)\+k3s(\d+)$`)
	// k3sChannelRE: the channels of update.k3s.io (stable, latest,
	// testing, or a minor such as v1.31). The channel reaches a root shell
	// on every host, so nothing else is accepted.
	k3sChannelRE = regexp.MustCompile(`^(stable|latest|testing|v\d+\.\d+)$`)
	// uploadNameRE: the file names of uploaded files, which are part of a
	// remote path.
	uploadNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]*$`)
	sha256HexRE  = regexp.MustCompile(`^[0-9a-f]{64}$`)
	envNameRE    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	invalidRunes = regexp.MustCompile(`[^a-z0-9-]+`)
)

// checkLabel returns a message and hint when s is not a DNS-1123 label.
func checkLabel(s string) (msg, hint string) {
	if len(s) <= dnsLabelMax && dnsLabelRE.MatchString(s) {
		return "", ""
	}
	msg = fmt.Sprintf("%s is not a valid name: use at most %d lowercase letters, digits and '-', starting and ending with a letter or digit", quote(s), dnsLabelMax)
	fixed := strings.Trim(invalidRunes.ReplaceAllString(strings.ToLower(s), "-"), "-")
	if len(fixed) > dnsLabelMax {
		fixed = strings.Trim(fixed[:dnsLabelMax], "-")
	}
	if fixed != "" && fixed != s && dnsLabelRE.MatchString(fixed) {
		hint = "try " + quote(fixed)
	}
	return msg, hint
}

// isDNSName reports whether s is a syntactically valid DNS host name.
func isDNSName(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	labels := strings.Split(s, ".")
	for _, l := range labels {
		if len(l) > dnsLabelMax || !hostLabelRE.MatchString(l) {
			return false
		}
	}
	// A numeric last label is a mistyped IP address, not a name.
	last := labels[len(labels)-1]
	return strings.Trim(last, "0123456789") != ""
}

// parseIP parses an IP address (no zone, no brackets).
func parseIP(s string) (netip.Addr, bool) {
	ip, err := netip.ParseAddr(s)
	if err != nil || ip.Zone() != "" {
		return netip.Addr{}, false
	}
	return ip, true
}

// isLoopback reports whether s names the local machine.
func isLoopback(s string) bool {
	if strings.EqualFold(strings.TrimSuffix(s, "."), "localhost") {
		return true
	}
	ip, ok := parseIP(s)
	return ok && ip.Unmap().IsLoopback()
}

// checkDuration returns a message when s is not a positive Go duration.
func checkDuration(s string) string {
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Sprintf("%s is not a duration such as 30s, 5m or 1h30m", quote(s))
	}
	if d <= 0 {
		return fmt.Sprintf("duration %s must be greater than zero", quote(s))
	}
	return ""
}
