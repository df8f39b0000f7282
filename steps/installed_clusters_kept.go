package steps

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/hashicorp/go-multierror"

	"mcplan.io/mcplan/engine"
	"mcplan.io/mcplan/plans"
)

// CheckInstalledClustersKept refuses a plan that gives by kubeconfig
// (clusters[].kubeconfig) a cluster whose k3s mcplan installed: the
// state records k3s steps on its hosts that the plan no longer has, so
// the next apply would remove them, i.e. drain the nodes and uninstall
// k3s from the hosts, taking down the very cluster the kubeconfig
// reaches. plan and apply refuse it before anything runs. records are the
// state's records by step ID.
func CheckInstalledClustersKept(p *plans.Plan, records map[string]engine.StepRecord) error {
	inPlan := map[string]bool{}
	for _, spec := range plans.Steps(p) {
		inPlan[spec.ID] = true
	}
	hosts := map[string][]string{} // cluster given by kubeconfig -> its hosts whose k3s would be removed
	for _, id := range slices.Sorted(maps.Keys(records)) {
		rec := records[id]
		if inPlan[id] || rec.Kind != plans.KindK3sServer && rec.Kind != plans.KindK3sJoin {
			continue
		}
		name := rec.Outputs[K3sOutputCluster]
		if c := p.Cluster(name); c == nil || c.Installed() {
			continue
		}
		_, host, _ := plans.SubjectOfID(id)
		hosts[name] = append(hosts[name], host)
	}
	var errs *multierror.Error
	for i, c := range p.Clusters {
		on, ok := hosts[c.Name]
		if !ok {
			continue
		}
		errs = multierror.Append(errs, p.ErrorAt(fmt.Sprintf("clusters[%d].kubeconfig", i),
			fmt.Sprintf("cluster %s is given by kubeconfig, but mcplan installed it: the state records its k3s on hosts %s, "+
				"which the next apply would uninstall (taking the cluster down)", c.Name, strings.Join(on, ", ")),
			"destroy the cluster first (mcplan destroy with its servers still in the plan), or keep its servers and agents in the plan instead of a kubeconfig"))
	}
	if err := errs.ErrorOrNil(); err != nil {
		return flatten(errs)
	}
	return nil
}
