package engine

import (
	"slices"
	"strings"
	"testing"
)

func buildGraph(t testing.TB, edges map[string][]string, order ...string) *Graph {
	t.Helper()
	g := NewGraph()
	for _, id := range order {
		if err := g.Add(Node{ID: id, Kind: "test", DependsOn: edges[id]}); err != nil {
			t.Fatal(err)
		}
	}
	return g
}

func TestGraphValidate(t *testing.T) {
	tests := []struct {
		name    string
		edges   map[string][]string
		order   []string
		wantErr string
	}{
		{"diamond", map[string][]string{"b": {"a"}, "c": {"a"}, "d": {"b", "c"}}, []string{"a", "b", "c", "d"}, ""},
		{"self", map[string][]string{"a": {"a"}}, []string{"a"}, `step "a" depends on itself`},
		{"unknown", map[string][]string{"a": {"zz"}}, []string{"a"}, `step "a" depends on unknown step "zz"`},
		{"cycle", map[string][]string{"a": {"c"}, "b": {"a"}, "c": {"b"}, "d": {"a"}}, []string{"d", "a", "b", "c"}, "dependency cycle: a -> c -> b -> a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := buildGraph(t, tt.edges, tt.order...).Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate() = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestGraphAddDuplicate(t *testing.T) {
	g := NewGraph()
	if err := g.Add(Node{ID: "a"}); err != nil {
		t.Fatal(err)
	}
	if err := g.Add(Node{ID: "a"}); err == nil {
		t.Fatal("second Add of the same ID succeeded")
	}
}

func TestTopologicalOrderIsStableAndRespectsDependencies(t *testing.T) {
	edges := map[string][]string{"x": {"c"}, "b": {"a"}, "c": {"a"}, "d": {"b", "c"}}
	g := buildGraph(t, edges, "x", "a", "b", "c", "d", "e")
	got := g.TopologicalOrder()
	want := []string{"a", "b", "c", "x", "d", "e"}
	if !slices.Equal(got, want) {
		t.Fatalf("order = %v, want %v", got, want)
	}
	pos := map[string]int{}
	for i, id := range got {
		pos[id] = i
	}
	for id, deps := range edges {
		for _, d := range deps {
			if pos[d] > pos[id] {
				t.Errorf("%s comes before its dependency %s", id, d)
			}
		}
	}
}

func TestSubgraphAndDependents(t *testing.T) {
	edges := map[string][]string{"b": {"a"}, "c": {"a"}, "d": {"b"}, "e": {"d", "c"}}
	g := buildGraph(t, edges, "a", "b", "c", "d", "e", "f")
	if got, want := g.Subgraph([]string{"d"}).IDs(), []string{"a", "b", "d"}; !slices.Equal(got, want) {
		t.Errorf("Subgraph(d) = %v, want %v", got, want)
	}
	if got, want := g.Dependents("b"), []string{"d", "e"}; !slices.Equal(got, want) {
		t.Errorf("Dependents(b) = %v, want %v", got, want)
	}
	if got := g.Dependents("f"); len(got) != 0 {
		t.Errorf("Dependents(f) = %v, want none", got)
	}
}

func TestMatchTargets(t *testing.T) {
	g := buildGraph(t, nil,
		"mesh/mesh1/ca/root",
		"cluster/cluster1/ca/intermediate",
		"cluster/cluster2/ca/intermediate",
		"cluster/cluster1/istio/controlplane",
		"mesh/mesh1/remotesecret/cluster1->cluster2",
	)
	tests := []struct {
		globs   []string
		want    []string
		wantErr string
	}{
		{[]string{"*/ca/*"}, []string{"mesh/mesh1/ca/root", "cluster/cluster1/ca/intermediate", "cluster/cluster2/ca/intermediate"}, ""},
		{[]string{"cluster/cluster1/*"}, []string{"cluster/cluster1/ca/intermediate", "cluster/cluster1/istio/controlplane"}, ""},
		{[]string{"mesh/mesh1/remotesecret/cluster1->cluster2"}, []string{"mesh/mesh1/remotesecret/cluster1->cluster2"}, ""},
		{[]string{"cluster/cluster9/*"}, nil, `target "cluster/cluster9/*" matches no step`},
		{[]string{"[bad"}, nil, `target "[bad"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.globs, ","), func(t *testing.T) {
			got, err := g.MatchTargets(tt.globs)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestWithDependents(t *testing.T) {
	g := NewGraph()
	for _, n := range []Node{{ID: "a"}, {ID: "b", DependsOn: []string{"a"}}, {ID: "c", DependsOn: []string{"b"}}, {ID: "d"}} {
		if err := g.Add(n); err != nil {
			t.Fatal(err)
		}
	}
	sub := g.WithDependents([]string{"b"})
	if ids := sub.IDs(); !slices.Equal(ids, []string{"b", "c"}) {
		t.Errorf("ids %v, want [b c]", ids)
	}
	if deps := sub.Node("b").DependsOn; len(deps) != 0 {
		t.Errorf("b keeps an edge out of the subgraph: %v", deps)
	}
	if err := sub.Validate(); err != nil {
		t.Error(err)
	}
}
