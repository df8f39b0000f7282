package status

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sync/errgroup"

	"mcplan.io/mcplan/plans"
	"mcplan.io/mcplan/steps"
	"mcplan.io/mcplan/steps/kube"
	"mcplan.io/mcplan/steps/statedir"
)

// Defaults of Options.
const (
	DefaultClustersAtOnce = 4
	DefaultClusterTimeout = 90 * time.Second
)

// Options say how Gather reads the clusters.
type Options struct {
	// ClustersAtOnce is how many clusters are read at a time;
	// ClusterTimeout how long reading one may take. Zero: the defaults.
	ClustersAtOnce int
	ClusterTimeout time.Duration
	// Now is the time credentials are judged at; zero: time.Now().
	Now time.Time
	// Logf receives progress (the port-forwards' retries); nil drops it.
	Logf func(format string, args ...any)
}

// Gather reads every cluster of p, at most ClustersAtOnce at a time and
// each within ClusterTimeout, through the admin kubeconfigs in p's state
// directory, and judges the report (Judge). A cluster that cannot be read
// is a problem of the report, not an error.
func Gather(ctx context.Context, p *plans.Plan, last LastApply, opts Options) *Report {
	if opts.ClustersAtOnce <= 0 {
		opts.ClustersAtOnce = DefaultClustersAtOnce
	}
	if opts.ClusterTimeout <= 0 {
		opts.ClusterTimeout = DefaultClusterTimeout
	}
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	r := &Report{Plan: p.Metadata.Name, ReadAt: opts.Now.UTC(), LastApply: last, Clusters: make([]Cluster, len(p.Clusters))}
	var g errgroup.Group
	g.SetLimit(opts.ClustersAtOnce)
	for i, c := range p.Clusters {
		g.Go(func() error {
			cctx, cancel := context.WithTimeout(ctx, opts.ClusterTimeout)
			defer cancel()
			r.Clusters[i] = readCluster(cctx, p, c.Name, opts)
			if errors.Is(cctx.Err(), context.DeadlineExceeded) {
				r.Clusters[i].ReadErrors = append(r.Clusters[i].ReadErrors, fmt.Sprintf("reading the cluster took longer than %s: what it had not read by then is missing", opts.ClusterTimeout))
			}
			return nil
		})
	}
	_ = g.Wait()
	Judge(r)
	return r
}

// readCluster reads one cluster: its credentials, then, when its API
// answers, its nodes, istiods and east-west gateway.
func readCluster(ctx context.Context, p *plans.Plan, name string, opts Options) Cluster {
	c := Cluster{Name: name, Nodes: []Node{}, Istiods: []Istiod{}}
	mesh := p.MeshOf(name)
	if mesh != nil {
		c.Mesh = mesh.Name
	}
	c.Credentials = steps.ClusterCredentials(ctx, p, p.StateDir(), name, opts.Now)
	path := statedir.Kubeconfig(p.StateDir(), name)
	client, err := kube.FromKubeconfig(name, path, nil)
	if err == nil {
		err = client.Reachable(ctx)
	}
	if err != nil {
		c.Unreachable = err.Error()
		return c
	}
	var readErr error
	if c.Nodes, readErr = readNodes(ctx, client, p.Cluster(name).Hosts()); readErr != nil {
		c.ReadErrors = append(c.ReadErrors, readErr.Error())
	}
	if mesh == nil {
		return c
	}
	if c.Istiods, readErr = readIstiods(ctx, client, p, mesh.Name, opts.Logf); readErr != nil {
		c.ReadErrors = append(c.ReadErrors, readErr.Error())
	}
	if p.NeedsEastWest(mesh.Name, name) {
		if c.EastWest, readErr = readEastWest(ctx, client, p.Cluster(name)); readErr != nil {
			c.ReadErrors = append(c.ReadErrors, readErr.Error())
		}
	}
	return c
}
