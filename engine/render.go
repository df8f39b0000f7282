package engine

import (
	"fmt"
	"strings"
)

// DOT renders the graph in Graphviz's DOT language, one node per step
// labelled with its ID and kind, edges from a dependency to its dependent.
func (g *Graph) DOT(name string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "digraph %q {\n", name)
	b.WriteString("  rankdir=LR;\n  node [shape=box, fontname=\"monospace\"];\n")
	for _, id := range g.order {
		n := g.nodes[id]
		fmt.Fprintf(&b, "  %q [label=%q];\n", id, id+"\n("+n.Kind+")")
	}
	for _, id := range g.order {
		for _, dep := range g.nodes[id].DependsOn {
			fmt.Fprintf(&b, "  %q -> %q;\n", dep, id)
		}
	}
	b.WriteString("}\n")
	return b.String()
}

// Mermaid renders the graph as a Mermaid flowchart. Step IDs hold
// characters Mermaid does not take in node names, so nodes are numbered
// and labelled with their IDs.
func (g *Graph) Mermaid() string {
	var b strings.Builder
	b.WriteString("flowchart LR\n")
	key := make(map[string]string, len(g.order))
	for i, id := range g.order {
		key[id] = fmt.Sprintf("s%d", i)
		label := strings.ReplaceAll(id, `"`, "#quot;")
		fmt.Fprintf(&b, "  %s[\"%s<br/><i>%s</i>\"]\n", key[id], label, g.nodes[id].Kind)
	}
	for _, id := range g.order {
		for _, dep := range g.nodes[id].DependsOn {
			fmt.Fprintf(&b, "  %s --> %s\n", key[dep], key[id])
		}
	}
	return b.String()
}
