package kube

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// fieldChanges lists, path by path, how desired differs from live: "+"
// for a field only desired has, "-" for one only live has, "~" for a
// changed value, one entry a field ("~ spec.replicas: 1 → 2"). Secret
// data is never shown.
func fieldChanges(kind string, live, desired map[string]any) []string {
	var out []string
	walkChanges("", live, desired, func(op, path string, old, new any) {
		secret := kind == "Secret" && (path == "data" || path == "stringData" ||
			strings.HasPrefix(path, "data.") || strings.HasPrefix(path, "stringData."))
		var text string
		switch {
		case secret:
			text = "(value redacted)"
		case op == "+":
			text = render(new)
		case op == "-":
			text = render(old)
		default:
			text = describeChange(old, new)
		}
		out = append(out, fmt.Sprintf("%s %s: %s", op, path, text))
	})
	return out
}

func walkChanges(path string, live, desired any, emit func(op, path string, old, new any)) {
	lm, lok := live.(map[string]any)
	dm, dok := desired.(map[string]any)
	if !lok || !dok {
		if !reflect.DeepEqual(live, desired) {
			emit("~", path, live, desired)
		}
		return
	}
	keys := make([]string, 0, len(lm)+len(dm))
	for k := range lm {
		keys = append(keys, k)
	}
	for k := range dm {
		if _, ok := lm[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		p := k
		if path != "" {
			p = path + "." + k
		}
		lv, inLive := lm[k]
		dv, inDesired := dm[k]
		switch {
		case !inLive:
			emit("+", p, nil, dv)
		case !inDesired:
			emit("-", p, lv, nil)
		default:
			walkChanges(p, lv, dv, emit)
		}
	}
}

// describeChange shows a changed value: both values when short; for text
// of several lines, the lines that differ.
func describeChange(old, new any) string {
	os, oldText := old.(string)
	ns, newText := new.(string)
	if oldText && newText && (strings.Contains(os, "\n") || strings.Contains(ns, "\n")) {
		removed, added := lineChanges(os, ns)
		var parts []string
		for i := 0; i < max(len(removed), len(added)) && i < 3; i++ {
			var r, a string
			if i < len(removed) {
				r = strings.TrimSpace(removed[i])
			}
			if i < len(added) {
				a = strings.TrimSpace(added[i])
			}
			parts = append(parts, fmt.Sprintf("%q → %q", r, a))
		}
		more := ""
		if n := max(len(removed), len(added)); n > 3 {
			more = fmt.Sprintf(" and %d more lines", n-3)
		}
		return "text: " + strings.Join(parts, ", ") + more
	}
	return render(old) + " → " + render(new)
}

// lineChanges are the lines only in a and the lines only in b.
func lineChanges(a, b string) (removed, added []string) {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for _, l := range al {
		if !slices.Contains(bl, l) {
			removed = append(removed, l)
		}
	}
	for _, l := range bl {
		if !slices.Contains(al, l) {
			added = append(added, l)
		}
	}
	return removed, added
}

// render is a value as compact JSON, cut to 80 characters.
func render(v any) string {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	s := string(data)
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return s
}
