package verify

import (
	"net/netip"
	"slices"
	"strings"
	"unicode"

	"mcplan.io/mcplan/steps/remote"
)

// routeMarker starts the lines of routeCommand's output that name the
// address whose lookup follows.
const routeMarker = "mcplan-route-get "

// routeCommand is the one read-only command that asks a host's kernel
// which route it would use for each address: `ip -o route get fibmatch`
// prints the matching route itself ("default via ..." for the default
// route), after the policy rules, as a packet would be routed; a lookup
// that finds no route (or an unreachable, blackhole or prohibit one)
// prints an RTNETLINK error instead. Each address is quoted; the loop
// always exits 0 so that every lookup is printed.
func routeCommand(addrs []string) string {
	quoted := make([]string, len(addrs))
	for i, a := range addrs {
		quoted[i] = remote.ShellQuote(a)
	}
	return "for a in " + strings.Join(quoted, " ") + `; do printf '` + routeMarker + `%s\n' "$a"; ip -o route get fibmatch "$a" 2>&1 || true; done`
}

// parseRouteOutput splits routeCommand's output by address: the first
// line each lookup printed, as data (cleaned by hostText). An address
// missing from the output is missing from the map.
func parseRouteOutput(out string) map[string]string {
	lookups := map[string]string{}
	current := ""
	for _, line := range strings.Split(out, "\n") {
		if addr, ok := strings.CutPrefix(line, routeMarker); ok {
			current = strings.TrimSpace(addr)
			lookups[current] = ""
			continue
		}
		if current != "" && lookups[current] == "" && strings.TrimSpace(line) != "" {
			lookups[current] = hostText(line)
		}
	}
	return lookups
}

// maxHostText bounds what of a host's output goes into a message.
const maxHostText = 200

// hostText is a line a host printed, safe to show: printable characters
// only, spaces collapsed, at most maxHostText characters.
func hostText(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return ' '
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > maxHostText {
		s = s[:maxHostText] + "..."
	}
	return s
}

// routeVerdict is what a host's route lookup of one address means.
type routeVerdict struct {
	// Routable: a specific route (not the default route) matched.
	Routable bool
	// Default: only the default route matched.
	Default bool
	// Route is the matching route as the host printed it, or its error.
	Route string
	// Why says, when not routable, what the lookup found.
	Why string
}

// judgeRoute reads one lookup's line: a specific route is routable; the
// default route, a route that drops (unreachable, blackhole, prohibit,
// throw) and every error are not.
func judgeRoute(line string) routeVerdict {
	v := routeVerdict{Route: line}
	fields := strings.Fields(line)
	switch {
	case line == "":
		v.Why = "the host printed nothing for it"
	case strings.HasPrefix(line, "RTNETLINK answers:"):
		v.Why = lookupError(strings.TrimSpace(strings.TrimPrefix(line, "RTNETLINK answers:")))
	case fields[0] == "default" || fields[0] == "0.0.0.0/0" || fields[0] == "::/0":
		v.Default = true
		v.Why = "only the default route (" + line + ") matches"
	case slices.Contains([]string{"unreachable", "blackhole", "prohibit", "throw"}, fields[0]):
		v.Why = "the route `" + line + "` drops it"
	case fields[0] == "local":
		v.Why = "the route `" + line + "` makes it an address of this host"
	case !isDestination(fields[0]):
		v.Why = "the route lookup failed (" + line + "): the check runs `ip -o route get fibmatch` on the host (iproute2 4.13 or later)"
	default:
		v.Routable = true
	}
	return v
}

// lookupError explains the RTNETLINK error of a failed lookup: the
// kernel answers a lookup that hits a route of type unreachable,
// blackhole or prohibit with that route's error.
func lookupError(msg string) string {
	switch msg {
	case "Network is unreachable":
		return "no route matches it (" + msg + ")"
	case "No route to host":
		return "an unreachable route matches it (" + msg + ")"
	case "Invalid argument":
		return "a blackhole route matches it (" + msg + ")"
	case "Permission denied":
		return "a prohibit route matches it (" + msg + ")"
	}
	return "the route lookup failed (" + msg + ")"
}

// isDestination reports whether s is a route's destination: a prefix,
// or an address (a host route prints the bare address).
func isDestination(s string) bool {
	if _, err := netip.ParsePrefix(s); err == nil {
		return true
	}
	_, err := netip.ParseAddr(s)
	return err == nil
}
