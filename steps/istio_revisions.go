package steps

import (
	"cmp"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hashicorp/go-multierror"

	"mcplan.io/mcplan/plans"
	"mcplan.io/mcplan/steps/istiorender"
	"mcplan.io/mcplan/steps/kube"
	"mcplan.io/mcplan/steps/statedir"
)

// A cluster's Istio control planes are kept one inventory per revision,
// so that a canary installs the new revision beside the old without
// pruning it, and the old one's removal deletes exactly what it applied.
// The non-revisioned control plane's inventory is "controlplane", a
// revision's "controlplane-<revision>". Which revision an inventory holds
// is read from the objects it lists (istiod's Deployment, or a remote's
// injection webhook), so an inventory written before revisions had their
// own ("controlplane" holding a revision) is still found.
const controlPlaneSet = "controlplane"

// controlPlaneSetOf is the inventory set of a revision's control plane in
// a cluster: the one that holds it, else its own name.
func controlPlaneSetOf(dir, cluster, revision string) (string, error) {
	installed, err := installedControlPlanes(dir, cluster)
	if err != nil {
		return "", err
	}
	if set, ok := installed[revision]; ok {
		return set, nil
	}
	if revision == "" {
		return controlPlaneSet, nil
	}
	return controlPlaneSet + "-" + revision, nil
}

// installedControlPlanes are the control-plane inventories of a cluster
// by the revision they hold. An inventory whose revision cannot be told
// (no istiod or injection webhook in it) is left out.
func installedControlPlanes(dir, cluster string) (map[string]string, error) {
	files, err := filepath.Glob(statedir.Inventory(dir, cluster, controlPlaneSet+"*"))
	if err != nil {
		return nil, fmt.Errorf("control plane inventories of %s: %w", cluster, err)
	}
	out := map[string]string{}
	for _, f := range files {
		set := strings.TrimSuffix(filepath.Base(f), ".json")
		if set != controlPlaneSet && !strings.HasPrefix(set, controlPlaneSet+"-") {
			continue
		}
		refs, err := (&kube.Inventory{Path: f}).Load()
		if err != nil {
			return nil, err
		}
		if rev, ok := revisionOf(refs); ok {
			out[rev] = set
		}
	}
	return out, nil
}

// revisionOf is the revision of an installed control plane, from its
// istiod Deployment (istiod, istiod-<rev>) or, for a remote cluster's,
// its injection webhook (istio-sidecar-injector[-<rev>]).
func revisionOf(refs []kube.Ref) (string, bool) {
	for _, r := range refs {
		if r.Kind == "Deployment" && r.Namespace == istiorender.Namespace {
			if rev, ok := revisionSuffix(r.Name, istiorender.IstiodName); ok {
				return rev, true
			}
		}
	}
	for _, r := range refs {
		if r.Kind == "MutatingWebhookConfiguration" {
			if rev, ok := revisionSuffix(r.Name, "istio-sidecar-injector"); ok {
				return rev, true
			}
		}
	}
	return "", false
}

// revisionSuffix reads <base> as "" and <base>-<rev> as rev.
func revisionSuffix(name, base string) (string, bool) {
	if name == base {
		return "", true
	}
	rev, ok := strings.CutPrefix(name, base+"-")
	return rev, ok && rev != ""
}

// Canaries are the meshes of p whose clusters have other Istio revisions
// installed than the plan's (mcplan's inventories under dir say so):
// their canary steps are in the graph until those are removed.
func Canaries(p *plans.Plan, dir string) (plans.Canaries, error) {
	canaries := plans.Canaries{}
	for _, m := range p.Meshes {
		var from []string
		for _, c := range m.Clusters {
			installed, err := installedControlPlanes(dir, c)
			if err != nil {
				return nil, err
			}
			for rev := range installed {
				if rev != m.Istio.Revision && !slices.Contains(from, rev) {
					from = append(from, rev)
				}
			}
		}
		if len(from) > 0 {
			slices.SortFunc(from, cmp.Compare)
			canaries[m.Name] = from
		}
	}
	return canaries, nil
}

// CheckCanaries refuses the canaries mcplan cannot carry out, positioned
// at the mesh's istio.revision: back to the non-revisioned control plane
// (its webhooks would have to be reactivated).
func CheckCanaries(p *plans.Plan, canaries plans.Canaries) error {
	var errs *multierror.Error
	for i, m := range p.Meshes {
		from := canaries[m.Name]
		if len(from) == 0 {
			continue
		}
		path := fmt.Sprintf("meshes[%d].istio.revision", i)
		installed := plans.RevisionName(from[0])
		if m.Istio.Revision == "" {
			errs = multierror.Append(errs, p.ErrorAt(path, fmt.Sprintf("mesh %s has revision %s installed: going back to the non-revisioned control plane is not supported", m.Name, installed),
				"name a new revision to canary to, or set the installed one"))
		}
	}
	if err := errs.ErrorOrNil(); err != nil {
		return flatten(errs)
	}
	return nil
}
