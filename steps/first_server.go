package steps

import (
	"fmt"
	"maps"
	"slices"

	"github.com/hashicorp/go-multierror"

	"mcplan.io/mcplan/engine"
	"mcplan.io/mcplan/plans"
)

// recordedFirstServer is the host the state records as cluster's first
// server (the one that initialised it and that the others joined), ""
// when no finished k3s/server record says so.
func recordedFirstServer(cluster string, records func(id string) (engine.StepRecord, bool), ids []string) string {
	for _, id := range ids {
		rec, ok := records(id)
		if !ok || rec.Kind != plans.KindK3sServer || rec.Status != engine.StatusSucceeded {
			continue
		}
		if rec.Outputs[K3sOutputCluster] == cluster && rec.Outputs[K3sOutputFirst] == "true" {
			_, host, _ := plans.SubjectOfID(id)
			return host
		}
	}
	return ""
}

// checkNewFirstServer is the one rule for moving a cluster's first server:
// clusters[].servers[0] may name another host than the one that
// initialised the cluster only when that host has already joined the
// cluster as a server (its k3s/server record finished, not first): it
// holds an etcd member and the cluster's data, so it carries the cluster
// on. A host that has not joined would initialise a second, empty
// cluster. It returns nil when the plan keeps the recorded first server.
func checkNewFirstServer(c plans.Cluster, previous string, records func(id string) (engine.StepRecord, bool)) error {
	first := c.Servers[0]
	if previous == "" || previous == first {
		return nil
	}
	rec, ok := records(plans.K3sServerID(first))
	if ok && rec.Kind == plans.KindK3sServer && rec.Status == engine.StatusSucceeded &&
		rec.Outputs[K3sOutputCluster] == c.Name && rec.Outputs[K3sOutputFirst] == "false" {
		return nil
	}
	return fmt.Errorf("clusters[%s].servers[0] is %s, but %s is the server that initialised the cluster and %s has not joined it as a server: "+
		"a host that has not joined would start a second, empty cluster; add %s as a later server, apply, then name it first",
		c.Name, first, previous, first, first)
}

// CheckFirstServer refuses a plan that names a new first server for a
// cluster that is not one of the cluster's joined servers (see
// checkNewFirstServer). records are the state's records by step ID.
func CheckFirstServer(p *plans.Plan, records map[string]engine.StepRecord) error {
	ids := slices.Sorted(maps.Keys(records))
	lookup := func(id string) (engine.StepRecord, bool) { r, ok := records[id]; return r, ok }
	var errs *multierror.Error
	for _, c := range p.Clusters {
		if !c.Installed() {
			continue // no servers of mcplan's
		}
		if err := checkNewFirstServer(c, recordedFirstServer(c.Name, lookup, ids), lookup); err != nil {
			errs = multierror.Append(errs, err)
		}
	}
	if err := errs.ErrorOrNil(); err != nil {
		return fmt.Errorf("%s: %w", p.File(), flatten(errs))
	}
	return nil
}
