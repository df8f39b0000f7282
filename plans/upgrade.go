package plans

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// DefaultMaxUnavailable is how many agents upgrade at once by default.
const DefaultMaxUnavailable = "1"

// parseMaxUnavailable reads upgrade.maxUnavailable: a count (>= 1) or a
// percentage (1% to 100%) of the agents.
func parseMaxUnavailable(s string) (func(agents int) int, error) {
	if pct, ok := strings.CutSuffix(s, "%"); ok {
		n, err := strconv.Atoi(pct)
		if err != nil || n < 1 || n > 100 {
			return nil, fmt.Errorf("%s is not a percentage from 1%% to 100%%", quote(s))
		}
		return func(agents int) int { return max(1, int(math.Ceil(float64(agents)*float64(n)/100))) }, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return nil, fmt.Errorf("%s is neither a count of at least 1 nor a percentage", quote(s))
	}
	return func(int) int { return n }, nil
}

// AgentBatch is how many of the cluster's agents upgrade at once.
func (c Cluster) AgentBatch() int {
	s := DefaultMaxUnavailable
	if c.K3s.Upgrade != nil && c.K3s.Upgrade.MaxUnavailable != "" {
		s = c.K3s.Upgrade.MaxUnavailable
	}
	f, err := parseMaxUnavailable(s)
	if err != nil {
		return 1 // a validated plan has none
	}
	return min(f(len(c.Agents)), max(1, len(c.Agents)))
}

// Drains says whether an upgrade drains each node first (default true).
func (c Cluster) Drains() bool {
	return c.K3s.Upgrade == nil || c.K3s.Upgrade.Drain == nil || *c.K3s.Upgrade.Drain
}

// EmbeddedEtcd says whether the cluster's servers keep their data in
// embedded etcd: mcplan starts the first server with cluster-init when
// the cluster has more than one server.
func (c Cluster) EmbeddedEtcd() bool { return len(c.Servers) > 1 }

// K3sRelease is what a cluster's k3s nodes install: the pinned version or
// the channel, and the airgap binary (its path and pinned sum). A node
// whose recorded release differs is upgraded.
func (c Cluster) K3sRelease() string {
	r := "channel=" + c.K3s.Channel
	if c.K3s.Version != "" {
		r = "version=" + c.K3s.Version
	}
	if a := c.K3s.Airgap; a != nil {
		r += " airgap=" + a.Binary
		if a.BinarySHA256 != "" {
			r += "@" + a.BinarySHA256
		}
	}
	return r
}

// k3sVersion is a k3s release: v1.31.4+k3s1.
type k3sVersion struct{ major, minor, patch, build int }

func parseK3sVersion(s string) (k3sVersion, bool) {
	m := k3sVersionParts.FindStringSubmatch(s)
	if m == nil {
		return k3sVersion{}, false
	}
	var v k3sVersion
	for i, p := range []*int{&v.major, &v.minor, &v.patch, &v.build} {
		*p, _ = strconv.Atoi(m[i+1])
	}
	return v, true
}

func (v k3sVersion) compare(o k3sVersion) int {
	for _, d := range []int{v.major - o.major, v.minor - o.minor, v.patch - o.patch, v.build - o.build} {
		if d != 0 {
			return d
		}
	}
	return 0
}

// K3sUpgradeProblem says why going from the installed k3s version to the
// wanted one is refused, as k3s's rules say: no downgrade, and no minor
// version skipped (v1.31 to v1.33 must go through v1.32). "" when it may
// go, or when either version is not a pinned k3s release.
func K3sUpgradeProblem(installed, wanted string) string {
	from, ok1 := parseK3sVersion(installed)
	to, ok2 := parseK3sVersion(wanted)
	switch {
	case !ok1 || !ok2:
		return ""
	case to.compare(from) < 0:
		return fmt.Sprintf("%s is older than the installed %s: k3s does not support downgrades", wanted, installed)
	case to.major != from.major || to.minor > from.minor+1:
		return fmt.Sprintf("%s skips a minor version from the installed %s: upgrade through v%d.%d first", wanted, installed, from.major, from.minor+1)
	}
	return ""
}
