package plans

import (
	"slices"
	"strconv"
	"strings"
)

// suggest returns the candidate closest to got: a case-insensitive match, or
// the single nearest within a small edit distance. It returns "" when nothing
// is close or when several candidates are equally close.
func suggest(got string, candidates []string) string {
	if got == "" {
		return ""
	}
	lower := strings.ToLower(got)
	maxDist := 2
	if len([]rune(got)) <= 3 {
		maxDist = 1
	}
	best, bestDist, tie := "", maxDist+1, false
	for _, c := range candidates {
		if c == got {
			continue
		}
		if strings.ToLower(c) == lower {
			return c
		}
		switch d := levenshtein(lower, strings.ToLower(c)); {
		case d < bestDist:
			best, bestDist, tie = c, d, false
		case d == bestDist && c != best:
			tie = true
		}
	}
	if tie {
		return "" // two equally close names: a guess would mislead
	}
	return best
}

// didYouMean is suggest phrased as a hint, or "".
func didYouMean(got string, candidates []string) string {
	if s := suggest(got, candidates); s != "" {
		return "did you mean " + quote(s) + "?"
	}
	return ""
}

// levenshtein is the edit distance between a and b, counted in runes.
func levenshtein(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

// quote is %q for messages.
func quote(s string) string {
	return strconv.Quote(s)
}

func sortStrings(s []string) { slices.Sort(s) }
