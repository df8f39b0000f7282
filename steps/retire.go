package steps

import (
	"context"
	"fmt"

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
	// Records reads the state's records: a host that left the plan is
	// reached as its host/facts record says.
	Records func(id string) (engine.StepRecord, bool)
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
	// The kubeconfig removals of several clusters edit one merged file.
	merged := &mergedKubeconfig{path: p.KubeconfigPath()}
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
			return controlPlanesRemoval{cluster: subject}
		case plans.KindIstioTags:
			return inventoryRemoval{cluster: subject, set: tagsSet}
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
		case plans.KindManifestsApply:
			return manifestsRemoval{cluster: subject}
		case plans.KindKubeconfigFetch, plans.KindKubeconfigImport:
			return kubeconfigRemoval{cluster: subject, merged: merged, imported: rec.Kind == plans.KindKubeconfigImport}
		case plans.KindCAIntermediate:
			return caIntermediateRemoval{cluster: subject}
		case plans.KindCARoot:
			return caRootRemoval{mesh: subject, purge: opts.PurgeCA}
		case plans.KindK3sServer, plans.KindK3sJoin:
			return k3sRemover(p, opts, id, rec, specs)
		}
		return nil
	}
}

// k3sRemover undoes a k3s step: its host is reached as the plan says, or,
// when it left the plan, as its host/facts record says (nil when that is
// not recorded, as by mcplan before this version). The cluster is the plan's, or, once the step left the plan,
// the one its last apply recorded; when that cluster left the plan too,
// the node is not drained (the cluster goes with it).
func k3sRemover(p *plans.Plan, opts RemovalOptions, id string, rec engine.StepRecord, specs map[string]plans.StepSpec) engine.Remover {
	_, hostName, _ := plans.SubjectOfID(id)
	rt := opts.Runtime
	if rt == nil {
		return nil
	}
	host := p.Host(hostName)
	if host == nil && opts.Records != nil {
		// The host left the plan: reach it as its last apply did.
		if facts, ok := opts.Records(plans.HostFactsID(hostName)); ok {
			if h, ok := recordedHost(facts.Outputs[HostOutputReach]); ok {
				rt.remember(h)
				host = &h
			}
		}
	}
	if host == nil {
		return nil // an older record: how to reach the host is not known
	}
	s := &K3sNode{rt: rt, host: *host, agent: rec.Kind == plans.KindK3sJoin, planDir: p.Dir(), timeout: k3sReadyTimeout}
	name := rec.Outputs[K3sOutputCluster]
	spec, inPlan := specs[id]
	if inPlan && spec.Kind == rec.Kind {
		name = spec.Cluster
	}
	c := p.Cluster(name)
	if c == nil {
		s.cluster, s.noDrain = plans.Cluster{Name: name}, true // the cluster goes with it
		return s
	}
	s.cluster = *c
	if !s.agent && !inPlan {
		// A server leaving a cluster that stays. A joined one is drained
		// and its Node deleted first, through the plan's first server, as
		// k3s wants: deleting the Node removes its etcd member. The first
		// server initialised the cluster and the others joined it by its
		// address: it may leave only when the plan names, as the new
		// first server, one that has joined (checkNewFirstServer); it is
		// then removed as a joined server.
		if err := s.firstServerMayLeave(rec, opts.Records); err != nil {
			return refusedRemoval{err}
		}
		s.joinedServerLeaves = true
	}
	return s
}

// firstServerMayLeave says why a server leaving a cluster that stays may
// not go: it is (or, by an older record that does not say, may be) the
// cluster's first server and the plan names no joined server to carry the
// cluster on.
func (s *K3sNode) firstServerMayLeave(rec engine.StepRecord, records func(id string) (engine.StepRecord, bool)) error {
	switch rec.Outputs[K3sOutputFirst] {
	case "false":
		return nil
	case "true":
		if records == nil {
			break
		}
		err := checkNewFirstServer(s.cluster, s.host.Name, records)
		if err == nil {
			return nil
		}
		return fmt.Errorf("host %s, the server the others joined, leaves cluster %s, which stays in the plan: %w", s.host.Name, s.cluster.Name, err)
	}
	return fmt.Errorf("host %s leaves the servers of cluster %s, which stays in the plan, and it is (or may be: "+
		"an older record does not say) the server the others joined: put it back as clusters[%s].servers[0], name one of its joined servers first, "+
		"or remove the whole cluster", s.host.Name, s.cluster.Name, s.cluster.Name)
}

// refusedRemoval is a removal mcplan will not do: it fails with why, and
// the record stays.
type refusedRemoval struct{ err error }

func (r refusedRemoval) Describe(*engine.Env) string { return "refused: " + r.err.Error() }

func (r refusedRemoval) Remove(context.Context, *engine.Env) error { return r.err }

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
