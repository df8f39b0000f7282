// Package status reads one view of a whole plan, read-only: per cluster
// its nodes, its istiods and the remote clusters each reads (as `istioctl
// remote-clusters` shows them), its east-west gateway's addresses and its
// credentials' expiry; and the last apply's time and result from the
// state. Health judges the view against the plan.
package status

import (
	"encoding/json"
	"time"

	"mcplan.io/mcplan/steps"
)

// Report is the status of a plan.
type Report struct {
	Plan     string    `json:"plan"`
	ReadAt   time.Time `json:"readAt"`
	Clusters []Cluster `json:"clusters"`
	// LastApply is the last apply recorded in the state.
	LastApply LastApply `json:"lastApply"`
	// Problems are what is not healthy outside the clusters (the last
	// apply); Judge fills them.
	Problems []string `json:"problems"`
}

// Cluster is what was read of one cluster of the plan.
type Cluster struct {
	Name string `json:"name"`
	// Mesh is the cluster's mesh, "" when it is in none.
	Mesh string `json:"mesh,omitempty"`
	// Unreachable says why the cluster's API could not be read; then
	// nothing else of it but its credentials was.
	Unreachable string `json:"unreachable,omitempty"`
	Nodes       []Node `json:"nodes"`
	// Istiods are the cluster's istiods, one per revision; the plan's
	// revision is there (Missing) also when no pod of it runs.
	Istiods []Istiod `json:"istiods"`
	// EastWest is the cluster's east-west gateway, nil when the plan
	// gives the cluster none.
	EastWest    *EastWest          `json:"eastWest,omitempty"`
	Credentials []steps.Credential `json:"credentials"`
	// ReadErrors are reads that failed, each saying what and where.
	ReadErrors []string `json:"readErrors,omitempty"`
	// Problems are what is not healthy in the cluster; Judge fills them.
	Problems []string `json:"problems"`
}

// Node is one node of a cluster: one the API lists, or one the plan has
// that the API does not (Missing).
type Node struct {
	Name string `json:"name"`
	// Ready is the node's Ready condition; Condition says it otherwise
	// ("NotReady: KubeletNotReady ...").
	Ready          bool   `json:"ready"`
	Condition      string `json:"condition,omitempty"`
	KubeletVersion string `json:"kubeletVersion,omitempty"`
	// InPlan says the plan has the node (its host); Missing that the API
	// does not list it.
	InPlan  bool `json:"inPlan"`
	Missing bool `json:"missing,omitempty"`
}

// Istiod is the control plane of one revision in a cluster.
type Istiod struct {
	// Revision is its istio.io/rev label ("default" without a revision).
	Revision string `json:"revision"`
	// Expected says the plan wants this revision in the cluster; Missing
	// that no pod of it runs.
	Expected bool `json:"expected"`
	Missing  bool `json:"missing,omitempty"`
	// Pod is the pod asked (namespace/name); Ready whether one pod of the
	// revision is Running and Ready, State what the pods do otherwise.
	Pod   string `json:"pod,omitempty"`
	Ready bool   `json:"ready"`
	State string `json:"state,omitempty"`
	// RemoteClusters are the clusters it reads, from its
	// /debug/clusterz, with the ones the plan expects and it does not
	// list (Missing).
	RemoteClusters []RemoteCluster `json:"remoteClusters"`
	// ReadError says why its /debug/clusterz could not be read.
	ReadError string `json:"readError,omitempty"`
}

// RemoteCluster is one row of `istioctl remote-clusters`: a cluster an
// istiod reads, the Secret it reads it through and its sync status.
type RemoteCluster struct {
	ID string `json:"id"`
	// Secret is the remote secret (namespace/name); "" for the istiod's
	// own cluster.
	Secret     string `json:"secret,omitempty"`
	SyncStatus string `json:"syncStatus,omitempty"`
	// Local is the istiod's own cluster; Expected a cluster the plan has
	// it read; Missing an expected one istiod does not list.
	Local    bool `json:"local,omitempty"`
	Expected bool `json:"expected"`
	Missing  bool `json:"missing,omitempty"`
}

// EastWest is a cluster's east-west gateway Service.
type EastWest struct {
	// Addresses are its LoadBalancer ingress and external IPs.
	Addresses []string `json:"addresses"`
	// PlanAddress is clusters[].eastWest.address, "" when unset.
	PlanAddress string `json:"planAddress,omitempty"`
	// Missing says the Service does not exist.
	Missing bool `json:"missing,omitempty"`
}

// LastApply is the last run that applied a step, from the state.
type LastApply struct {
	StartedAt  time.Time `json:"startedAt"`
	FinishedAt time.Time `json:"finishedAt"`
	// Steps is how many steps it ran; Failed and Interrupted those of
	// them that failed or did not finish.
	Steps       int      `json:"steps"`
	Failed      []string `json:"failed,omitempty"`
	Interrupted []string `json:"interrupted,omitempty"`
}

// Result is the last apply's result: succeeded, failed or interrupted.
func (a LastApply) Result() string {
	switch {
	case len(a.Failed) > 0:
		return "failed"
	case len(a.Interrupted) > 0:
		return "interrupted"
	}
	return "succeeded"
}

// MarshalJSON adds the result to the record.
func (a LastApply) MarshalJSON() ([]byte, error) {
	type plain LastApply
	return json.Marshal(struct {
		plain
		Result string `json:"result"`
	}{plain(a), a.Result()})
}

// Healthy says Judge found no problem in the report.
func (r *Report) Healthy() bool { return r.ProblemCount() == 0 }

// ProblemCount is how many problems Judge found, in all.
func (r *Report) ProblemCount() int {
	n := len(r.Problems)
	for _, c := range r.Clusters {
		n += len(c.Problems)
	}
	return n
}
