package steps

import (
	"context"
	"errors"
	"fmt"
	"time"

	"mcplan.io/mcplan/engine"
	"mcplan.io/mcplan/plans"
	"mcplan.io/mcplan/steps/istiorender"
	"mcplan.io/mcplan/steps/kube"
	"mcplan.io/mcplan/steps/statedir"
)

// Timeouts of the Istio steps' waits. Steps copy them into fields that
// tests shorten.
const (
	istioReadyTimeout   = 5 * time.Minute  // istiod and gateway Deployments Available
	eastWestAddrTimeout = 2 * time.Minute  // the gateway Service's LoadBalancer address
	tokenTimeout        = time.Minute      // the reader token Secret filled by the token controller
	istioCRDTimeout     = 90 * time.Second // CRDs Established
)

// clusterClient is the API client of a cluster, from the admin kubeconfig
// kubeconfig/fetch keeps under the state directory (every Istio step
// depends on it). Its server is the address the operator reaches.
func clusterClient(env *engine.Env, cluster string) (*kube.Client, error) {
	c, err := kube.FromKubeconfig(cluster, statedir.Kubeconfig(env.Dir, cluster), env.Logf)
	if err != nil {
		return nil, fmt.Errorf("%w (run the cluster's kubeconfig/fetch step first)", err)
	}
	return c, nil
}

// errAwaitsOutput is a wanted state that cannot be worked out yet: a step
// this one depends on has not recorded the output it needs (a fresh plan
// shows this). Check reports it as drift; Apply fails with it.
type errAwaitsOutput struct{ why string }

func (e errAwaitsOutput) Error() string { return e.why }

// wantedOn is the opening every Istio step's Check and Apply share: work
// out what the step wants (want), then reach its cluster's API. An
// errAwaitsOutput from want is returned as it is.
func wantedOn[T any](ctx context.Context, env *engine.Env, cluster string, want func() (T, error)) (T, *kube.Client, error) {
	w, err := want()
	if err != nil {
		var zero T
		return zero, nil, err
	}
	c, err := reachableClient(ctx, env, cluster)
	return w, c, err
}

// awaitsOutput turns an errAwaitsOutput into the drift Check reports.
func awaitsOutput(err error) (engine.Drift, bool) {
	var a errAwaitsOutput
	if errors.As(err, &a) {
		return engine.Drifted(a.why), true
	}
	return engine.Drift{}, false
}

// reachableClient is clusterClient, checked to answer.
func reachableClient(ctx context.Context, env *engine.Env, cluster string) (*kube.Client, error) {
	c, err := clusterClient(env, cluster)
	if err != nil {
		return nil, err
	}
	if err := c.Reachable(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// istioCluster is what the render of a cluster's Istio objects takes from
// the plan.
func istioCluster(p *plans.Plan, mesh plans.Mesh, cluster string) istiorender.Cluster {
	return istiorender.Cluster{
		Mesh:       mesh.Name,
		Cluster:    cluster,
		Network:    p.ClusterNetwork(cluster),
		Hub:        mesh.Istio.Hub,
		Tag:        mesh.Istio.Tag,
		Revision:   mesh.Istio.Revision,
		MeshConfig: mesh.Istio.MeshConfig,
		Values:     mesh.Istio.Values,
	}
}

// objectNames lists refs for a log line.
func objectNames(refs []kube.Ref) []string {
	out := make([]string, len(refs))
	for i, r := range refs {
		out[i] = r.String()
	}
	return out
}

// kubeApplyOptions are the apply options of a step without inventory.
func kubeApplyOptions(env *engine.Env) kube.ApplyOptions {
	return kube.ApplyOptions{CRDTimeout: istioCRDTimeout, Logf: env.Logf}
}
