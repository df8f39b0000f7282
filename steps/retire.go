package steps

import (
	"mcplan.io/mcplan/engine"
	"mcplan.io/mcplan/plans"
)

// RemovalOptions say how steps that leave are removed.
type RemovalOptions struct {
	// Destroying are the IDs of the plan's steps being destroyed (mcplan
	// destroy); they count as gone from the plan.
	Destroying []string
	// PurgeCA deletes a mesh's root CA instead of moving it to
	// .mcplan/removed/<time>/.
	PurgeCA bool
	// Runtime reaches the hosts, for the removal of host steps; nil
	// leaves them forgotten only.
	Runtime *Runtime
}

// Retirement says how to undo a step that left the plan or is destroyed
// (engine.Options.Retire): what each kind made and recorded, and nothing
// else. Kubernetes objects go by the step's inventory and only when
// mcplan's field manager wrote them; a namespace only when it holds
// nothing a user made; files of the state directory by their recorded
// paths; a mesh root is moved aside, never deleted unless PurgeCA. A
// cluster is reached through the admin kubeconfig kubeconfig/fetch
// keeps, so a cluster that left the plan is still reached until its own
// kubeconfig/fetch is removed, last. A k3s step is undone (drain, node
// deletion, uninstall) while its host is in the plan, as in a destroy; a
// host that left the plan is only forgotten by this version.
func Retirement(p *plans.Plan, opts RemovalOptions) func(id string, rec engine.StepRecord) engine.Remover {
	destroying := map[string]bool{}
	for _, id := range opts.Destroying {
		destroying[id] = true
	}
	// The source->target pairs the plan keeps: a secret that moved to
	// another mesh (another step ID) is the same Secret and must stay.
	kept := map[string]bool{}
	specs := map[string]plans.StepSpec{}
	for _, spec := range plans.Steps(p) {
		specs[spec.ID] = spec
		if spec.Kind == plans.KindIstioRemoteSecret && !destroying[spec.ID] {
			kept[spec.Source+"->"+spec.Target] = true
		}
	}
	return func(id string, rec engine.StepRecord) engine.Remover {
		_, subject, _ := plans.SubjectOfID(id)
		switch rec.Kind {
		case plans.KindIstioRemoteSecret:
			return remoteSecretRemover(p, id, kept)
		case plans.KindIstioControlPlane:
			return inventoryRemoval{cluster: subject, set: "controlplane"}
		case plans.KindIstioEastWest:
			return inventoryRemoval{cluster: subject, set: "eastwest"}
		case plans.KindIstioExpose:
			return inventoryRemoval{cluster: subject, set: "expose"}
		case plans.KindIstioCACerts:
			return cacertsRemoval{cluster: subject}
		case plans.KindIstioNamespace:
			return namespaceRemoval{cluster: subject}
		case plans.KindVerifySample:
			return sampleRemoval{mesh: subject}
		case plans.KindKubeconfigFetch:
			return kubeconfigRemoval{cluster: subject, merged: p.KubeconfigPath()}
		case plans.KindCAIntermediate:
			return caIntermediateRemoval{cluster: subject}
		case plans.KindCARoot:
			return caRootRemoval{mesh: subject, purge: opts.PurgeCA}
		case plans.KindK3sServer, plans.KindK3sJoin:
			spec, ok := specs[id]
			if !ok || opts.Runtime == nil || spec.Kind != rec.Kind {
				return nil // the host left the plan: not reached by this version
			}
			if rec.Kind == plans.KindK3sJoin {
				return NewK3sJoin(p, spec, opts.Runtime)
			}
			return NewK3sServer(p, spec, opts.Runtime)
		}
		return nil
	}
}

// remoteSecretRemover undoes a source->target pair the plan no longer
// has; a cluster that is not in the plan at all is not contacted.
func remoteSecretRemover(p *plans.Plan, id string, kept map[string]bool) engine.Remover {
	_, source, target, ok := plans.ParseRemoteSecretID(id)
	if !ok || kept[source+"->"+target] {
		return nil // the pair is still wanted
	}
	r := remoteSecretRemoval{source: source, target: target,
		deleteSecret: p.Cluster(target) != nil, revokeToken: p.Cluster(source) != nil}
	if !r.deleteSecret && !r.revokeToken {
		return nil // both clusters left the plan
	}
	return r
}
