package steps

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"mcplan.io/mcplan/engine"
	"mcplan.io/mcplan/plans"
	"mcplan.io/mcplan/steps/istiorender"
	"mcplan.io/mcplan/steps/kube"
	"mcplan.io/mcplan/steps/statedir"
)

// ExposeOutputAddress is the output of istio/expose that passes the
// east-west gateway's address on to the steps that depend on it (a
// remote's control plane).
const ExposeOutputAddress = "address"

// IstioExpose exposes what other clusters reach through a cluster's
// east-west gateway: its services (*.local, AUTO_PASSTHROUGH on 15443)
// when the mesh spans networks, and on a primary of a primary-remote mesh
// its istiod (15012 xDS/CA, 15017 webhooks). It passes the gateway's
// address on (ExposeOutputAddress): remote clusters' control planes depend
// on this step, and a step sees only its direct dependencies' outputs.
type IstioExpose struct {
	cluster string
	// gateway is the istio/eastwest step whose address this one passes on.
	gateway      string
	multiNetwork bool
	exposeIstiod bool
	istiodHost   string
}

// NewIstioExpose returns the istio/expose step of spec.Cluster in
// spec.Mesh; spec.Reads is the cluster's east-west gateway step.
func NewIstioExpose(p *plans.Plan, spec plans.StepSpec, _ *Runtime) *IstioExpose {
	mesh, cluster, gateway := *p.Mesh(spec.Mesh), spec.Cluster, spec.Reads
	return &IstioExpose{
		cluster:      cluster,
		gateway:      gateway,
		multiNetwork: p.MultiNetwork(mesh.Name),
		exposeIstiod: p.ExposesIstiod(mesh.Name, cluster),
		istiodHost:   istiodHost(mesh.Istio.Revision),
	}
}

// istiodHost is the cluster-local name of a revision's istiod Service.
func istiodHost(revision string) string {
	return istiorender.IstiodDeployment(revision) + "." + istiorender.Namespace + ".svc.cluster.local"
}

// revisionRoute is the VirtualService that routes the istiod gateway's
// connections for a revision's istiod to it, by the server name the
// client asks for: a remote's sidecars dial istiod-<rev>.istio-system.svc
// (the discovery address its primary's istiod injects), and its API server
// calls the webhooks of its Service istiod-<rev>, whose server name is the
// same. So while a canary runs two revisions, each remote workload reaches
// the istiod of its own revision; istio/expose's route sends the rest
// (no or another server name) to the plan's revision. It belongs to the
// revision's control plane on a primary that exposes istiod, and is
// removed with it.
func revisionRoute(revision string) *unstructured.Unstructured {
	server := istiorender.IstiodDeployment(revision) + "." + istiorender.Namespace + ".svc"
	host := istiodHost(revision)
	return istioObject("networking.istio.io/v1", "VirtualService", istiorender.IstiodVirtualSvc+"-"+revision, map[string]any{
		"hosts":    []any{"*"},
		"gateways": []any{istiorender.IstiodGateway},
		"tls":      []any{tlsRoute(15012, server, host, 15012), tlsRoute(15017, server, host, 443)},
	})
}

func (s *IstioExpose) inventory(env *engine.Env) *kube.Inventory {
	return &kube.Inventory{Path: statedir.Inventory(env.Dir, s.cluster, "expose"), Key: inputsKey("istio/expose", s.Objects())}
}

func istioObject(apiVersion, kind, name string, spec map[string]any) *unstructured.Unstructured {
	o := &unstructured.Unstructured{Object: map[string]any{"spec": spec}}
	o.SetAPIVersion(apiVersion)
	o.SetKind(kind)
	o.SetName(name)
	o.SetNamespace(istiorender.Namespace)
	return o
}

func passthroughServer(name string, port int64, mode string, hosts ...any) map[string]any {
	return map[string]any{
		"port":  map[string]any{"name": name, "number": port, "protocol": "TLS"},
		"tls":   map[string]any{"mode": mode},
		"hosts": hosts,
	}
}

// tlsRoute routes TLS at a gateway port whose server name matches
// sniHost to host's target port.
func tlsRoute(port int64, sniHost, host string, target int64) map[string]any {
	return map[string]any{
		"match": []any{map[string]any{"port": port, "sniHosts": []any{sniHost}}},
		"route": []any{map[string]any{"destination": map[string]any{
			"host": host, "port": map[string]any{"number": target},
		}}},
	}
}

// Objects are the Istio objects the cluster exposes.
func (s *IstioExpose) Objects() []*unstructured.Unstructured {
	const api = "networking.istio.io/v1"
	selector := map[string]any{"istio": "eastwestgateway"}
	var objs []*unstructured.Unstructured
	if s.multiNetwork {
		objs = append(objs, istioObject(api, "Gateway", istiorender.CrossNetworkGateway, map[string]any{
			"selector": selector,
			"servers":  []any{passthroughServer("tls", 15443, "AUTO_PASSTHROUGH", "*.local")},
		}))
	}
	if s.exposeIstiod {
		objs = append(objs,
			istioObject(api, "Gateway", istiorender.IstiodGateway, map[string]any{
				"selector": selector,
				"servers": []any{
					passthroughServer("tls-istiod", 15012, "PASSTHROUGH", "*"),
					passthroughServer("tls-istiodwebhook", 15017, "PASSTHROUGH", "*"),
				},
			}),
			istioObject(api, "VirtualService", istiorender.IstiodVirtualSvc, map[string]any{
				"hosts":    []any{"*"},
				"gateways": []any{istiorender.IstiodGateway},
				"tls":      []any{tlsRoute(15012, "*", s.istiodHost, 15012), tlsRoute(15017, "*", s.istiodHost, 443)},
			}),
		)
	}
	return objs
}

// address is the gateway address istio/eastwest recorded.
func (s *IstioExpose) address(env *engine.Env) (string, error) {
	addr, ok := env.Output(s.gateway, EastWestOutputAddress)
	if !ok || addr == "" {
		return "", errAwaitsOutput{fmt.Sprintf("no east-west gateway address recorded by %s", s.gateway)}
	}
	return addr, nil
}

// Check compares the live objects with the wanted ones (dry-run) and the
// address passed on with the gateway's.
func (s *IstioExpose) Check(ctx context.Context, env *engine.Env) (engine.Drift, error) {
	addr, c, err := wantedOn(ctx, env, s.cluster, func() (string, error) { return s.address(env) })
	if d, ok := awaitsOutput(err); ok {
		return d, nil
	}
	if err != nil {
		return engine.Drift{}, err
	}
	d, err := checkInstall(ctx, c, s.inventory(env), func() ([]*unstructured.Unstructured, error) { return s.Objects(), nil })
	if err != nil || !d.InSync {
		return d, err
	}
	if prev, _ := env.Previous(ExposeOutputAddress); prev != addr {
		return engine.Drifted(fmt.Sprintf("gateway address %s not passed on yet (was %q)", addr, prev)), nil
	}
	return engine.InSync(), nil
}

// Apply applies the objects (pruning those the plan no longer asks for)
// and passes the gateway address on.
func (s *IstioExpose) Apply(ctx context.Context, env *engine.Env) error {
	addr, c, err := wantedOn(ctx, env, s.cluster, func() (string, error) { return s.address(env) })
	if err != nil {
		return err
	}
	res, err := c.Apply(ctx, s.Objects(), kube.ApplyOptions{Inventory: s.inventory(env), CRDTimeout: istioCRDTimeout, Logf: env.Logf})
	if err != nil {
		return err
	}
	env.SetOutput(ExposeOutputAddress, addr)
	env.Logf("exposed through %s: %s", addr, res)
	return nil
}
