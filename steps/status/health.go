package status

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"mcplan.io/mcplan/steps"
	"mcplan.io/mcplan/steps/xds"
)

// Judge fills the problems of a report from what it holds: a cluster not
// read, a node not Ready or missing, the plan's istiod missing or an
// istiod without a Ready pod, a remote cluster the plan expects missing
// in an istiod's clusterz or not synced, an east-west gateway without
// address, an expired credential, and a last apply that failed or was
// interrupted.
func Judge(r *Report) {
	r.Problems = lastApplyProblems(r.LastApply)
	for i := range r.Clusters {
		r.Clusters[i].Problems = clusterProblems(r.Clusters[i])
	}
}

func lastApplyProblems(a LastApply) []string {
	out := []string{}
	if len(a.Failed) > 0 {
		out = append(out, fmt.Sprintf("the last apply failed: %s (mcplan state show PLAN STEP has the error). Fix: mcplan apply",
			listOf("step", a.Failed)))
	}
	if len(a.Interrupted) > 0 {
		out = append(out, fmt.Sprintf("the last apply was interrupted: %s did not finish. Fix: mcplan apply resumes it",
			listOf("step", a.Interrupted)))
	}
	return out
}

func clusterProblems(c Cluster) []string {
	out := []string{}
	if c.Unreachable != "" {
		out = append(out, "API not reachable: "+c.Unreachable+"; nothing else of the cluster was read")
	}
	for _, e := range c.ReadErrors {
		out = append(out, "not read: "+e)
	}
	for _, n := range c.Nodes {
		switch {
		case n.Missing:
			out = append(out, fmt.Sprintf("node %s: the plan's host is not a node of the cluster. Fix: mcplan apply", n.Name))
		case !n.Ready:
			out = append(out, fmt.Sprintf("node %s is not Ready (%s)", n.Name, n.Condition))
		}
	}
	for _, ist := range c.Istiods {
		out = append(out, istiodProblems(c.Name, ist)...)
	}
	if ew := c.EastWest; ew != nil {
		switch {
		case ew.Missing:
			out = append(out, "east-west gateway: Service missing: the other networks cannot reach the cluster. Fix: mcplan apply")
		case len(ew.Addresses) == 0:
			out = append(out, "east-west gateway has no address (no LoadBalancer ingress, no external IP): the other networks cannot reach the cluster")
		case ew.PlanAddress != "" && !slices.Contains(ew.Addresses, ew.PlanAddress):
			out = append(out, fmt.Sprintf("east-west gateway: the plan's address %s is not among its addresses %s. Fix: mcplan apply",
				ew.PlanAddress, strings.Join(ew.Addresses, ", ")))
		}
	}
	for _, cr := range c.Credentials {
		if cr.Status == steps.CredentialExpired {
			out = append(out, fmt.Sprintf("the %s has expired (%s): %s", cr.What, cr.NotAfter.Format("2006-01-02"), cr.Where))
		}
	}
	return out
}

func istiodProblems(cluster string, ist Istiod) []string {
	name := "istiod " + ist.Revision
	switch {
	case ist.Missing:
		return []string{fmt.Sprintf("%s: no pod of the plan's revision runs. Fix: mcplan apply", name)}
	case !ist.Ready:
		return []string{fmt.Sprintf("%s: no Running and Ready pod (%s)", name, ist.State)}
	case ist.ReadError != "":
		return []string{fmt.Sprintf("%s: its remote clusters (/debug/clusterz) were not read: %s", name, ist.ReadError)}
	}
	var out []string
	for _, rc := range ist.RemoteClusters {
		switch {
		case rc.Missing:
			out = append(out, fmt.Sprintf("%s does not read %s: no remote cluster from Secret %s; its services and endpoints are unknown in %s. Fix: mcplan apply (istio/remotesecret)",
				name, rc.ID, rc.Secret, cluster))
		case rc.SyncStatus != xds.SyncStatusSynced:
			out = append(out, fmt.Sprintf("%s: %s is %s, not synced (Secret %s)", name, rc.ID, cmp.Or(rc.SyncStatus, "of no status"), cmp.Or(rc.Secret, "-")))
		}
	}
	return out
}

// listOf is "step a" or "3 steps: a, b, c".
func listOf(noun string, items []string) string {
	if len(items) == 1 {
		return noun + " " + items[0]
	}
	return fmt.Sprintf("%d %ss: %s", len(items), noun, strings.Join(items, ", "))
}
