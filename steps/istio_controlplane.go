package steps

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"mcplan.io/mcplan/engine"
	"mcplan.io/mcplan/plans"
	"mcplan.io/mcplan/steps/istiorender"
	"mcplan.io/mcplan/steps/kube"
	"mcplan.io/mcplan/steps/statedir"
)

// IstioControlPlane installs a cluster's Istio control plane: the
// walkthrough's `istioctl install -f clusterN.yaml`, rendered in-process
// by Istio's own code and applied server-side. A primary gets istiod; a
// remote of a primary-remote mesh gets the remote profile pointed at its
// primary's east-west gateway.
type IstioControlPlane struct {
	cluster string
	cp      istiorender.ControlPlane
	// primary is the cluster whose istiod serves a remote, and
	// primaryExpose the step that records its east-west address; "" for a
	// primary (and for a remote during a canary: see remotePilotAddress).
	primary, primaryExpose string
	// Timeout bounds the wait for the Deployments to be Available.
	Timeout time.Duration
	rt      *Runtime
}

// NewIstioControlPlane returns the istio/controlplane step of
// spec.Cluster in spec.Mesh; for a remote, spec.Reads is the primary's
// istio/expose step, whose outputs it reads ("" for a primary).
func NewIstioControlPlane(p *plans.Plan, spec plans.StepSpec, rt *Runtime) *IstioControlPlane {
	mesh, cluster, primaryExpose := *p.Mesh(spec.Mesh), spec.Cluster, spec.Reads
	s := &IstioControlPlane{cluster: cluster, primaryExpose: primaryExpose, Timeout: istioReadyTimeout, rt: rt}
	s.cp = istiorender.ControlPlane{Cluster: istioCluster(p, mesh, cluster)}
	switch {
	case !p.IsPrimary(mesh.Name, cluster):
		s.primary = p.PrimaryFor(mesh.Name, cluster)
	case mesh.Model == plans.ModelPrimaryRemote:
		s.cp.ExternalIstiod = true
	}
	return s
}

// inventory is the inventory of the plan's revision's control plane
// (see controlPlaneSetOf): a canary installs a new revision beside the
// old one, each with its own. Its key is that of the install cp.
func (s *IstioControlPlane) inventory(env *engine.Env, cp istiorender.ControlPlane) (*kube.Inventory, error) {
	set, err := controlPlaneSetOf(env.Dir, s.cluster, s.cp.Revision)
	if err != nil {
		return nil, err
	}
	key := inputsKey("istio/controlplane", cp.IstioOperator(), s.routed())
	return &kube.Inventory{Path: statedir.Inventory(env.Dir, s.cluster, set), Key: key, HandedOver: handedOverToIstiod}, nil
}

// wanted is the install the step wants: the plan's, pointed, for a
// remote, at its primary's east-west address.
func (s *IstioControlPlane) wanted(env *engine.Env) (istiorender.ControlPlane, error) {
	cp := s.cp
	if s.primary != "" {
		addr, err := s.remotePilotAddress(env)
		if err != nil {
			return cp, err
		}
		cp.RemotePilotAddress = addr
	}
	return cp, nil
}

// render renders an install of the cluster's control plane.
func (s *IstioControlPlane) render(ctx context.Context, env *engine.Env, cp istiorender.ControlPlane) (*istiorender.Manifest, error) {
	start := time.Now()
	m, err := s.rt.render(ctx, cp.IstioOperator())
	if err != nil {
		return nil, err
	}
	env.Logf("rendered %d objects in %s", len(m.Objects), time.Since(start).Round(time.Millisecond))
	for _, w := range m.Warnings {
		env.Logf("istio: %s", w)
	}
	return m, nil
}

// withRoutes adds to the rendered objects of a primary that exposes a
// revisioned istiod that revision's route through the east-west gateway
// (revisionRoute), so that it is installed and retired with it.
func (s *IstioControlPlane) withRoutes(objs []*unstructured.Unstructured) []*unstructured.Unstructured {
	if !s.routed() {
		return objs
	}
	return append(slices.Clone(objs), revisionRoute(s.cp.Revision))
}

// routed says whether the install brings its revision's route.
func (s *IstioControlPlane) routed() bool { return s.cp.ExternalIstiod && s.cp.Revision != "" }

// deployments are the names of the rendered Deployments, istiod first.
func deployments(objs []*unstructured.Unstructured) []string {
	var names []string
	for _, o := range objs {
		if o.GetKind() == "Deployment" && o.GetNamespace() == istiorender.Namespace {
			if strings.HasPrefix(o.GetName(), istiorender.IstiodName) {
				names = append([]string{o.GetName()}, names...)
			} else {
				names = append(names, o.GetName())
			}
		}
	}
	return names
}

// deploymentRef is the Ref of the install's Deployment name.
func deploymentRef(name string) kube.Ref {
	return kube.Ref{Group: "apps", Version: "v1", Kind: "Deployment", Namespace: istiorender.Namespace, Name: name}
}

// Check finds the install in sync when its objects are as the last
// check or apply of the same inputs saw them (kube.Client.Unchanged: one
// read of each, at once); otherwise it compares the live objects with a
// fresh render (server-side dry run of those that moved). Either way the
// Deployments must be Available.
func (s *IstioControlPlane) Check(ctx context.Context, env *engine.Env) (engine.Drift, error) {
	cp, c, err := wantedOn(ctx, env, s.cluster, func() (istiorender.ControlPlane, error) { return s.wanted(env) })
	if d, ok := awaitsOutput(err); ok {
		return d, nil
	}
	if err != nil {
		return engine.Drift{}, err
	}
	inv, err := s.inventory(env, cp)
	if err != nil {
		return engine.Drift{}, err
	}
	return checkInstall(ctx, c, inv, func() ([]*unstructured.Unstructured, error) {
		m, err := s.render(ctx, env, cp)
		if err != nil {
			return nil, err
		}
		return handOverToIstiod(ctx, c, s.withRoutes(m.Objects))
	})
}

// checkInstall is the Check of an installed set of objects: unchanged
// since they were last seen as these inputs make them, or else no
// differences from want's objects; then its Deployments must be
// Available.
func checkInstall(ctx context.Context, c *kube.Client, inv *kube.Inventory, want func() ([]*unstructured.Unstructured, error)) (engine.Drift, error) {
	unchanged, live, err := c.Unchanged(ctx, inv)
	if err != nil {
		return engine.Drift{}, err
	}
	if unchanged {
		return deploymentsAvailable(live)
	}
	objs, err := want()
	if err != nil {
		return engine.Drift{}, err
	}
	diffs, err := c.Diff(ctx, objs, inv)
	if err != nil {
		return engine.Drift{}, err
	}
	if len(diffs) > 0 {
		return diffDrift(diffs), nil
	}
	for _, name := range deployments(objs) {
		ref := deploymentRef(name)
		d, err := c.Get(ctx, ref)
		if err != nil {
			return engine.Drift{}, err
		}
		if d == nil {
			return engine.Drifted(ref.String() + " missing"), nil
		}
		if ok, why := kube.IsCurrent(d); !ok {
			return engine.Drifted(why), nil
		}
	}
	return engine.InSync(), nil
}

// deploymentsAvailable checks that the Deployments among live objects
// (read by kube.Client.Unchanged) are Current by kstatus: rolled out and
// Available.
func deploymentsAvailable(live map[kube.Ref]*unstructured.Unstructured) (engine.Drift, error) {
	refs := slices.SortedFunc(maps.Keys(live), func(a, b kube.Ref) int { return strings.Compare(a.String(), b.String()) })
	for _, ref := range refs {
		if ref.Kind != "Deployment" || ref.Group != "apps" {
			continue
		}
		if ok, why := kube.IsCurrent(live[ref]); !ok {
			return engine.Drifted(why), nil
		}
	}
	return engine.InSync(), nil
}

// summariseDiffs keeps a Drift reason short: the first few objects and a count.
func summariseDiffs(diffs []kube.ObjectDiff) string {
	const show = 5
	objects := make([]string, len(diffs))
	for i, d := range diffs {
		objects[i] = d.Object
	}
	if len(objects) <= show {
		return strings.Join(objects, "; ")
	}
	return strings.Join(objects[:show], "; ") + "; and " + strconv.Itoa(len(objects)-show) + " more"
}

// diffDrift is the Drift of objects that differ: one line naming them,
// and every object of kube's Diff, with its changed fields, as details.
func diffDrift(diffs []kube.ObjectDiff) engine.Drift {
	changes := make([]engine.Change, len(diffs))
	for i, d := range diffs {
		changes[i] = engine.Change{Object: d.Object, Fields: d.Fields}
	}
	return engine.Drift{Reason: summariseDiffs(diffs), Details: changes}
}

// Apply renders, applies (CRDs first), prunes what an earlier render had
// and this one has not, and waits for the Deployments.
func (s *IstioControlPlane) Apply(ctx context.Context, env *engine.Env) error {
	cp, c, err := wantedOn(ctx, env, s.cluster, func() (istiorender.ControlPlane, error) { return s.wanted(env) })
	if err != nil {
		return err
	}
	m, err := s.render(ctx, env, cp)
	if err != nil {
		return err
	}
	objs, err := handOverToIstiod(ctx, c, s.withRoutes(m.Objects))
	if err != nil {
		return err
	}
	inv, err := s.inventory(env, cp)
	if err != nil {
		return err
	}
	if err := applyInstall(ctx, env, c, objs, inv, s.Timeout); err != nil {
		return err
	}
	env.SetOutput("objects", strconv.Itoa(len(m.Objects)))
	env.SetOutput("renderSHA256", renderDigest(m.Objects))
	if names := deployments(m.Objects); len(names) > 0 && strings.HasPrefix(names[0], istiorender.IstiodName) {
		env.SetOutput("istiod", names[0])
	}
	if s.primary != "" {
		env.SetOutput(ControlPlaneOutputRemotePilotAddress, cp.RemotePilotAddress)
	}
	return nil
}

// ControlPlaneOutputRemotePilotAddress is the output of a remote's
// istio/controlplane that records the address its install points at: its
// primary's east-west gateway.
const ControlPlaneOutputRemotePilotAddress = "remotePilotAddress"

// remotePilotAddress is the primary's east-west address a remote's
// install points at: what the primary's istio/expose passed on, or,
// during a canary (when the remote's install does not wait for that step,
// which moves last), what its previous install was given.
func (s *IstioControlPlane) remotePilotAddress(env *engine.Env) (string, error) {
	if s.primaryExpose == "" {
		if addr, ok := env.Previous(ControlPlaneOutputRemotePilotAddress); ok && addr != "" {
			return addr, nil
		}
		return "", fmt.Errorf("the east-west address of primary %s is not recorded: a remote cluster cannot join its mesh during a canary; apply once the canary is done", s.primary)
	}
	addr, ok := env.Output(s.primaryExpose, ExposeOutputAddress)
	if !ok || addr == "" {
		return "", errAwaitsOutput{fmt.Sprintf("the east-west address of primary %s is not known yet: its step %s records it", s.primary, s.primaryExpose)}
	}
	return addr, nil
}

// applyInstall applies objects with an inventory and waits for their
// Deployments to be Current by kstatus (rolled out and Available). Each
// Deployment's wait begins once it is applied, while the rest of the
// objects (the CRDs, the webhooks) are still being sent: its rollout is
// what the step waits for longest.
func applyInstall(ctx context.Context, env *engine.Env, c *kube.Client, objs []*unstructured.Unstructured, inv *kube.Inventory, timeout time.Duration) error {
	g, gctx := errgroup.WithContext(ctx)
	applied := map[kube.Ref]func(){}
	for _, name := range deployments(objs) {
		ref := deploymentRef(name)
		ch := make(chan struct{})
		applied[ref] = sync.OnceFunc(func() { close(ch) })
		g.Go(func() error {
			select {
			case <-ch:
			case <-gctx.Done():
				return gctx.Err()
			}
			return env.Wait(ref.String()+" Available", func() error {
				return c.WaitCurrent(gctx, []kube.Ref{ref}, timeout, env.Logf)
			})
		})
	}
	g.Go(func() error {
		start := time.Now()
		res, err := c.Apply(gctx, objs, kube.ApplyOptions{
			Inventory: inv, CRDTimeout: istioCRDTimeout, Logf: env.Logf, Wait: env.Wait,
			Applied: func(ref kube.Ref) {
				if done, ok := applied[ref]; ok {
					done()
				}
			},
		})
		if err != nil {
			return err
		}
		env.Logf("applied in %s: %s", time.Since(start).Round(time.Millisecond), res)
		for _, done := range applied { // every Deployment was applied: none waits on
			done()
		}
		return nil
	})
	return g.Wait()
}

// renderDigest is a sha256 over the rendered objects, to tell renders apart
// in the state (no secrets are rendered).
func renderDigest(objs []*unstructured.Unstructured) string {
	h := sha256.New()
	for _, o := range objs {
		b, _ := json.Marshal(o.Object)
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))
}
