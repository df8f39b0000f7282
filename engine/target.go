package engine

import (
	"fmt"
	"path"
)

// MatchTargets returns the IDs of the nodes matching any of the globs, in
// insertion order. Globs use path.Match syntax, except that "*" also
// matches "/" so "cluster/cluster1/*" selects all of cluster1's steps. A
// glob that matches nothing is an error: a typo must not quietly select
// nothing.
func (g *Graph) MatchTargets(globs []string) ([]string, error) {
	matched := map[string]bool{}
	for _, glob := range globs {
		if _, err := path.Match(glob, ""); err != nil {
			return nil, fmt.Errorf("target %q: %w", glob, err)
		}
		n := 0
		for _, id := range g.order {
			if globMatch(glob, id) {
				matched[id] = true
				n++
			}
		}
		if n == 0 {
			return nil, fmt.Errorf("target %q matches no step (see \"mcplan graph\" for step IDs)", glob)
		}
	}
	return g.filterOrder(matched), nil
}

// globMatch is path.Match in which "*" crosses "/" boundaries: both sides
// have their slashes swapped for a byte that path.Match treats as ordinary.
func globMatch(pattern, name string) bool {
	const sep = "\x00"
	ok, _ := path.Match(replaceSlash(pattern, sep), replaceSlash(name, sep))
	return ok
}

func replaceSlash(s, with string) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '/' {
			out = append(out, with...)
		} else {
			out = append(out, s[i])
		}
	}
	return string(out)
}
