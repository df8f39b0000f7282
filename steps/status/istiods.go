package status

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"mcplan.io/mcplan/plans"
	"mcplan.io/mcplan/steps/istiorender"
	"mcplan.io/mcplan/steps/kube"
	"mcplan.io/mcplan/steps/xds"
)

// revisionLabel is the label istiod's pods carry their revision in
// ("default" when installed without one).
const revisionLabel = "istio.io/rev"

// defaultRevision is the revision label of a control plane installed
// without a revision.
const defaultRevision = "default"

// readIstiods reads the istiods of a cluster of mesh, one per revision
// its pods carry, in revision order. For each revision with a Ready pod
// it asks that pod's /debug/clusterz (through pods/portforward) which
// clusters it reads, and marks those the plan has it read (Sources). The
// plan's revision is listed also when no pod of it runs, in a primary.
func readIstiods(ctx context.Context, c *kube.Client, p *plans.Plan, mesh string, logf func(string, ...any)) ([]Istiod, error) {
	out := []Istiod{}
	pods, err := c.Typed.CoreV1().Pods(istiorender.Namespace).List(ctx, metav1.ListOptions{LabelSelector: "app=istiod"})
	if err != nil {
		return out, fmt.Errorf("list istiod pods in %s of %s: %w", istiorender.Namespace, c.Name, err)
	}
	byRevision := map[string][]*corev1.Pod{}
	for i := range pods.Items {
		pod := &pods.Items[i]
		byRevision[pod.Labels[revisionLabel]] = append(byRevision[pod.Labels[revisionLabel]], pod)
	}
	want := ""
	if p.IsPrimary(mesh, c.Name) {
		want = cmp.Or(p.Mesh(mesh).Istio.Revision, defaultRevision)
	}
	sources := p.Sources(mesh, c.Name)
	for _, label := range slices.Sorted(maps.Keys(byRevision)) {
		ist := Istiod{Revision: cmp.Or(label, defaultRevision), RemoteClusters: []RemoteCluster{}}
		ist.Expected = ist.Revision == want
		ist.Pod, ist.Ready, ist.State = pickPod(byRevision[label])
		if ist.Ready {
			ist.RemoteClusters, ist.ReadError = readRemoteClusters(ctx, c, label, logf)
			if ist.ReadError == "" {
				ist.RemoteClusters = markExpected(ist.RemoteClusters, c.Name, sources)
			}
		}
		out = append(out, ist)
	}
	if want != "" && !slices.ContainsFunc(out, func(i Istiod) bool { return i.Revision == want }) {
		out = append(out, Istiod{Revision: want, Expected: true, Missing: true, RemoteClusters: []RemoteCluster{}})
	}
	return out, nil
}

// pickPod is the first Running and Ready pod of a revision by name, or,
// when none is, what each pod does.
func pickPod(pods []*corev1.Pod) (pod string, ready bool, state string) {
	slices.SortFunc(pods, func(a, b *corev1.Pod) int { return strings.Compare(a.Name, b.Name) })
	var states []string
	for _, p := range pods {
		ok, s := xds.PodReadiness(p)
		if ok {
			return p.Namespace + "/" + p.Name, true, ""
		}
		states = append(states, p.Name+": "+s)
	}
	return "", false, strings.Join(states, "; ")
}

// readRemoteClusters asks a Ready istiod pod of a revision label ("" for
// pods without one) for its /debug/clusterz, as `istioctl
// remote-clusters` does, through the port-forward verify uses.
func readRemoteClusters(ctx context.Context, c *kube.Client, label string, logf func(string, ...any)) ([]RemoteCluster, string) {
	dial := xds.PortForward(map[string]*kube.Client{c.Name: c}, label, logf)
	ist, err := dial(ctx, c.Name)
	if err != nil {
		return []RemoteCluster{}, err.Error()
	}
	defer ist.Close()
	infos, err := xds.RemoteClusters(ctx, ist)
	if err != nil {
		return []RemoteCluster{}, err.Error()
	}
	out := []RemoteCluster{}
	for _, info := range infos {
		out = append(out, RemoteCluster{ID: string(info.ID), Secret: info.SecretName, SyncStatus: info.SyncStatus})
	}
	return out, ""
}

// markExpected marks the istiod's own cluster and the clusters the plan
// has it read, adds those it does not list as Missing, and sorts the
// rows: its own cluster first, then by ID.
func markExpected(rows []RemoteCluster, self string, sources []string) []RemoteCluster {
	for i := range rows {
		rows[i].Local = rows[i].ID == self
		rows[i].Expected = rows[i].Local || slices.Contains(sources, rows[i].ID)
	}
	for _, s := range sources {
		if !slices.ContainsFunc(rows, func(r RemoteCluster) bool { return r.ID == s }) {
			rows = append(rows, RemoteCluster{ID: s, Secret: istiorender.Namespace + "/" + istiorender.RemoteSecretName(s), Expected: true, Missing: true})
		}
	}
	slices.SortStableFunc(rows, func(a, b RemoteCluster) int {
		if a.Local != b.Local {
			if a.Local {
				return -1
			}
			return 1
		}
		return strings.Compare(a.ID, b.ID)
	})
	return rows
}
