// Package lists has the small list helpers several packages share.
package lists

import "slices"

// AppendNew appends the values that are neither empty nor in list yet,
// keeping their order.
func AppendNew(list []string, values ...string) []string {
	for _, v := range values {
		if v != "" && !slices.Contains(list, v) {
			list = append(list, v)
		}
	}
	return list
}
