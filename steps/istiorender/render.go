// Package istiorender renders the Istio objects of a cluster in-process
// and offline, with Istio's own code (operator/pkg/render and the charts
// its manifests package embeds): what `istioctl manifest generate -f
// cluster.yaml` prints for the walkthrough's IstioOperator files.
package istiorender

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"istio.io/istio/operator/pkg/component"
	"istio.io/istio/operator/pkg/manifest"
	"istio.io/istio/operator/pkg/render"
)

// Defaults for the images: the embedded charts come from Istio's
// release-1.31 branch (its VERSION file says 1.31 and it pins istio.io/api
// and istio.io/client-go at exactly their v1.31.0 tags), so the public
// release they match is 1.31.0 on Docker Hub. The charts' own profile says
// registry.istio.io/testing:latest, a moving development build.
const (
	DefaultHub = "docker.io/istio"
	DefaultTag = "1.31.0"
)

// Cluster is what the Istio install of a cluster depends on.
type Cluster struct {
	Mesh     string
	Cluster  string
	Network  string
	Hub      string // "" means DefaultHub
	Tag      string // "" means DefaultTag
	Revision string
	// MeshConfig is the IstioOperator's spec.meshConfig.
	MeshConfig map[string]any
	// Values are the user's spec.values; mcplan's own values win.
	Values map[string]any
}

func (c Cluster) hub() string {
	if c.Hub == "" {
		return DefaultHub
	}
	return c.Hub
}

func (c Cluster) tag() string {
	if c.Tag == "" {
		return DefaultTag
	}
	return c.Tag
}

// global are the values.global settings of every IstioOperator of c.
func (c Cluster) global() map[string]any {
	return map[string]any{
		"meshID":       c.Mesh,
		"multiCluster": map[string]any{"clusterName": c.Cluster},
		"network":      c.Network,
	}
}

// ControlPlane is a cluster's control plane: istiod and the base CRDs for
// a primary, the remote profile for a remote of a primary-remote mesh.
type ControlPlane struct {
	Cluster
	// ExternalIstiod is set on the primaries of a primary-remote mesh: their
	// istiod serves remote clusters through the east-west gateway.
	ExternalIstiod bool
	// RemotePilotAddress makes a remote cluster: the address of the
	// primary's east-west gateway, where its istiod is reached.
	RemotePilotAddress string
}

// IstiodDeployment is the name of istiod's Deployment for a revision
// ("" is the default revision): istiod, or istiod-<revision>.
func IstiodDeployment(revision string) string {
	if revision == "" {
		return IstiodName
	}
	return IstiodName + "-" + revision
}

// Remote reports whether this is a remote cluster's install.
func (c ControlPlane) Remote() bool { return c.RemotePilotAddress != "" }

// IstioOperator is the IstioOperator of the control plane, as in the
// walkthrough's clusterN.yaml (and Istio's primary-remote docs for remotes).
func (c ControlPlane) IstioOperator() map[string]any {
	global := c.global()
	ours := map[string]any{"global": global}
	profile := "default"
	if c.ExternalIstiod {
		global["externalIstiod"] = true
	}
	if c.Remote() {
		profile = "remote"
		global["remotePilotAddress"] = c.RemotePilotAddress
		ours["istiodRemote"] = map[string]any{
			"injectionPath": "/inject/cluster/" + c.Cluster.Cluster + "/net/" + c.Network,
		}
	}
	// istioctl install deploys the default revision's validating webhook
	// itself (the profile leaves defaultRevision empty); without it
	// istiod validates only config labelled istio.io/rev. The base chart
	// renders it when defaultRevision is set, as Helm installs do.
	defaults := map[string]any{}
	if c.Revision == "" && !c.Remote() {
		defaults["defaultRevision"] = "default"
	}
	spec := map[string]any{
		"profile": profile,
		"hub":     c.hub(),
		"tag":     c.tag(),
		"values":  MergeValues(defaults, c.Values, ours),
	}
	if c.Revision != "" {
		spec["revision"] = c.Revision
	}
	if len(c.MeshConfig) > 0 {
		spec["meshConfig"] = deepCopy(c.MeshConfig)
	}
	return iop("", spec)
}

// EastWest is a cluster's east-west gateway.
type EastWest struct {
	Cluster
	// Address, when set, becomes the gateway Service's external IP.
	Address string
}

// IstioOperator is the gateway-only IstioOperator of
// samples/multicluster/gen-eastwest-gateway.sh.
func (e EastWest) IstioOperator() map[string]any {
	service := map[string]any{
		"ports": []any{
			port("status-port", 15021),
			port("tls", 15443),
			port("tls-istiod", 15012),
			port("tls-webhook", 15017),
		},
	}
	if e.Address != "" {
		service["externalIPs"] = []any{e.Address}
	}
	gw := map[string]any{
		"name":    EastWestGatewayName,
		"enabled": true,
		"label": map[string]any{
			"istio":      "eastwestgateway",
			"app":        EastWestGatewayName,
			NetworkLabel: e.Network,
		},
		"k8s": map[string]any{
			"env": []any{
				// traffic through this gateway should be routed inside the network
				map[string]any{"name": "ISTIO_META_REQUESTED_NETWORK_VIEW", "value": e.Network},
			},
			"service": service,
		},
	}
	ours := map[string]any{
		"gateways": map[string]any{"istio-ingressgateway": map[string]any{"injectionTemplate": "gateway"}},
		"global":   e.global(),
	}
	spec := map[string]any{
		"profile":    "empty",
		"revision":   e.Revision,
		"hub":        e.hub(),
		"tag":        e.tag(),
		"components": map[string]any{"ingressGateways": []any{gw}},
		"values":     MergeValues(e.Values, ours),
	}
	return iop("eastwest", spec)
}

func port(name string, n int) map[string]any {
	return map[string]any{"name": name, "port": n, "targetPort": n}
}

func iop(name string, spec map[string]any) map[string]any {
	meta := map[string]any{"namespace": Namespace}
	if name != "" {
		meta["name"] = name
	}
	return map[string]any{
		"apiVersion": "install.istio.io/v1alpha1",
		"kind":       "IstioOperator",
		"metadata":   meta,
		"spec":       spec,
	}
}

// Manifest is a rendered install: its objects in Istio's component order
// (base, pilot, gateways, ...), and the merged values Istio computed.
type Manifest struct {
	Objects []*unstructured.Unstructured
	// Values is the merged IstioOperator (spec.values holds what the charts saw).
	Values map[string]any
	// Warnings are what Istio's validation and charts warned about.
	Warnings []string
}

// Render renders an IstioOperator with the embedded charts, without any
// cluster: nothing leaves the process.
func Render(ctx context.Context, op map[string]any) (*Manifest, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	data, err := yaml.Marshal(op)
	if err != nil {
		return nil, fmt.Errorf("render: %w", err)
	}
	// GenerateManifest reads IstioOperator files by name only.
	dir, err := os.MkdirTemp("", "mcplan-iop-")
	if err != nil {
		return nil, fmt.Errorf("render: %w", err)
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "iop.yaml")
	if err := os.WriteFile(file, data, 0o600); err != nil {
		return nil, fmt.Errorf("render: %w", err)
	}
	logger := &warnings{}
	// Safe to run concurrently: the render path keeps no state between
	// calls (charts come from the embedded FS each time).
	sets, merged, err := render.GenerateManifest([]string{file}, nil, false, nil, logger)
	if err != nil {
		return nil, fmt.Errorf("render IstioOperator: %w", err)
	}
	order := map[component.Name]int{}
	for i, c := range component.AllComponents {
		order[c.UserFacingName] = i
	}
	slices.SortStableFunc(sets, func(a, b manifest.ManifestSet) int { return order[a.Component] - order[b.Component] })
	m := &Manifest{Values: merged, Warnings: logger.lines}
	for _, set := range sets {
		for _, obj := range set.Manifests {
			m.Objects = append(m.Objects, obj.Unstructured)
		}
	}
	return m, nil
}

// MergeValues deep-merges maps left to right: later maps win, nested maps
// merge, anything else is replaced. The inputs are not modified.
func MergeValues(maps ...map[string]any) map[string]any {
	out := map[string]any{}
	for _, m := range maps {
		for k, v := range m {
			if vm, ok := v.(map[string]any); ok {
				if om, ok := out[k].(map[string]any); ok {
					out[k] = MergeValues(om, vm)
					continue
				}
				out[k] = MergeValues(vm)
				continue
			}
			out[k] = deepCopyValue(v)
		}
	}
	return out
}

func deepCopy(m map[string]any) map[string]any { return MergeValues(m) }

func deepCopyValue(v any) any {
	switch v := v.(type) {
	case map[string]any:
		return deepCopy(v)
	case []any:
		out := make([]any, len(v))
		for i := range v {
			out[i] = deepCopyValue(v[i])
		}
		return out
	}
	return v
}

// warnings collects what Istio's code would print (clog.Logger).
type warnings struct{ lines []string }

func (w *warnings) add(s string)                    { w.lines = append(w.lines, strings.TrimSpace(s)) }
func (w *warnings) LogAndPrint(v ...any)            { w.add(fmt.Sprint(v...)) }
func (w *warnings) LogAndError(v ...any)            { w.add(fmt.Sprint(v...)) }
func (w *warnings) LogAndFatal(v ...any)            { w.add(fmt.Sprint(v...)) }
func (w *warnings) LogAndPrintf(f string, a ...any) { w.add(fmt.Sprintf(f, a...)) }
func (w *warnings) LogAndErrorf(f string, a ...any) { w.add(fmt.Sprintf(f, a...)) }
func (w *warnings) LogAndFatalf(f string, a ...any) { w.add(fmt.Sprintf(f, a...)) }
func (w *warnings) Print(s string)                  { w.add(s) }
func (w *warnings) PrintErr(s string)               { w.add(s) }
