package engine

import (
	"container/heap"
	"fmt"
	"slices"
	"strings"
)

// Node is one step in the graph: its stable ID, its kind (for display and
// the catalogue), what it depends on, the fingerprint of its inputs, and the
// step itself. Step may be nil in graphs that are only drawn or planned
// offline.
type Node struct {
	ID          string
	Kind        string
	DependsOn   []string
	Fingerprint string
	Step        Step
}

// Graph is a directed acyclic graph of steps. Build it with Add, then call
// Validate (or Build, which does both) before using it.
type Graph struct {
	nodes map[string]*Node
	order []string // insertion order, for stable output
}

// NewGraph returns an empty graph.
func NewGraph() *Graph { return &Graph{nodes: map[string]*Node{}} }

// Add inserts a node. Adding the same ID twice is an error.
func (g *Graph) Add(n Node) error {
	if n.ID == "" {
		return fmt.Errorf("graph: node with empty ID")
	}
	if _, dup := g.nodes[n.ID]; dup {
		return fmt.Errorf("graph: duplicate step %q", n.ID)
	}
	n.DependsOn = slices.Clone(n.DependsOn)
	g.nodes[n.ID] = &n
	g.order = append(g.order, n.ID)
	return nil
}

// Node returns the node with the given ID, or nil.
func (g *Graph) Node(id string) *Node { return g.nodes[id] }

// Len is the number of nodes.
func (g *Graph) Len() int { return len(g.nodes) }

// IDs returns every node ID in insertion order.
func (g *Graph) IDs() []string { return slices.Clone(g.order) }

// Validate checks that every dependency exists, that no node depends on
// itself and that there is no cycle; a cycle is reported with its path.
func (g *Graph) Validate() error {
	for _, id := range g.order {
		for _, dep := range g.nodes[id].DependsOn {
			if dep == id {
				return fmt.Errorf("graph: step %q depends on itself", id)
			}
			if _, ok := g.nodes[dep]; !ok {
				return fmt.Errorf("graph: step %q depends on unknown step %q", id, dep)
			}
		}
	}
	if cycle := g.findCycle(); cycle != nil {
		return fmt.Errorf("graph: dependency cycle: %s", strings.Join(cycle, " -> "))
	}
	return nil
}

// findCycle returns one cycle as a path that starts and ends at the same
// node, or nil. Iterative depth-first search, so deep graphs cannot
// overflow the stack.
func (g *Graph) findCycle() []string {
	const (
		unvisited = iota
		onPath
		done
	)
	color := make(map[string]int, len(g.nodes))
	type frame struct {
		id   string
		next int
	}
	for _, root := range g.order {
		if color[root] != unvisited {
			continue
		}
		stack := []frame{{id: root}}
		color[root] = onPath
		for len(stack) > 0 {
			top := &stack[len(stack)-1]
			deps := g.nodes[top.id].DependsOn
			if top.next == len(deps) {
				color[top.id] = done
				stack = stack[:len(stack)-1]
				continue
			}
			dep := deps[top.next]
			top.next++
			switch color[dep] {
			case onPath:
				var path []string
				for i := range stack {
					if stack[i].id == dep {
						for _, f := range stack[i:] {
							path = append(path, f.id)
						}
						break
					}
				}
				return append(path, dep)
			case unvisited:
				color[dep] = onPath
				stack = append(stack, frame{id: dep})
			}
		}
	}
	return nil
}

// TopologicalOrder returns the IDs so that every node comes after its
// dependencies; among nodes that are free to go, the one added first goes
// first, so the order is stable. The graph must be valid.
func (g *Graph) TopologicalOrder() []string {
	position := make(map[string]int, len(g.order))
	for i, id := range g.order {
		position[id] = i
	}
	indegree := make([]int, len(g.order))
	dependents := make([][]int, len(g.order))
	ready := &intHeap{}
	for i, id := range g.order {
		indegree[i] = len(g.nodes[id].DependsOn)
		for _, dep := range g.nodes[id].DependsOn {
			dependents[position[dep]] = append(dependents[position[dep]], i)
		}
		if indegree[i] == 0 {
			ready.items = append(ready.items, i) // ascending: already a heap
		}
	}
	out := make([]string, 0, len(g.order))
	for ready.Len() > 0 {
		i := heap.Pop(ready).(int)
		out = append(out, g.order[i])
		for _, d := range dependents[i] {
			indegree[d]--
			if indegree[d] == 0 {
				heap.Push(ready, d)
			}
		}
	}
	return out
}

// intHeap is a min-heap of insertion positions.
type intHeap struct{ items []int }

func (h *intHeap) Len() int           { return len(h.items) }
func (h *intHeap) Less(i, j int) bool { return h.items[i] < h.items[j] }
func (h *intHeap) Swap(i, j int)      { h.items[i], h.items[j] = h.items[j], h.items[i] }
func (h *intHeap) Push(x any)         { h.items = append(h.items, x.(int)) }
func (h *intHeap) Pop() any {
	last := h.items[len(h.items)-1]
	h.items = h.items[:len(h.items)-1]
	return last
}

// dependents maps each node to the nodes that depend on it directly.
func (g *Graph) dependents() map[string][]string {
	out := make(map[string][]string, len(g.nodes))
	for _, id := range g.order {
		for _, dep := range g.nodes[id].DependsOn {
			out[dep] = append(out[dep], id)
		}
	}
	return out
}

// Dependents returns every node that depends on id directly or
// transitively, in insertion order.
func (g *Graph) Dependents(id string) []string {
	dependents := g.dependents()
	seen := map[string]bool{}
	queue := []string{id}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		for _, d := range dependents[cur] {
			if !seen[d] {
				seen[d] = true
				queue = append(queue, d)
			}
		}
	}
	return g.filterOrder(seen)
}

// Subgraph returns the graph of the given nodes and everything they depend
// on, transitively.
func (g *Graph) Subgraph(ids []string) *Graph {
	keep := map[string]bool{}
	stack := slices.Clone(ids)
	for len(stack) > 0 {
		id := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if keep[id] || g.nodes[id] == nil {
			continue
		}
		keep[id] = true
		stack = append(stack, g.nodes[id].DependsOn...)
	}
	sub := NewGraph()
	for _, id := range g.filterOrder(keep) {
		n := *g.nodes[id]
		sub.nodes[id] = &n
		sub.order = append(sub.order, id)
	}
	return sub
}

func (g *Graph) filterOrder(keep map[string]bool) []string {
	var out []string
	for _, id := range g.order {
		if keep[id] {
			out = append(out, id)
		}
	}
	return out
}

// WithDependents returns the graph of the given nodes and everything that
// depends on them, transitively: what destroying them takes down. Edges
// to nodes outside it are dropped.
func (g *Graph) WithDependents(ids []string) *Graph {
	keep := map[string]bool{}
	for _, id := range ids {
		if g.nodes[id] == nil {
			continue
		}
		keep[id] = true
		for _, d := range g.Dependents(id) {
			keep[d] = true
		}
	}
	sub := NewGraph()
	for _, id := range g.filterOrder(keep) {
		n := *g.nodes[id]
		n.DependsOn = slices.DeleteFunc(slices.Clone(n.DependsOn), func(d string) bool { return !keep[d] })
		sub.nodes[id] = &n
		sub.order = append(sub.order, id)
	}
	return sub
}
