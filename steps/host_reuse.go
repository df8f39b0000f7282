package steps

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/hashicorp/go-multierror"

	"mcplan.io/mcplan/engine"
	"mcplan.io/mcplan/plans"
)

// K3sOutputAddress is the output of a k3s step recording the address its
// host had: a host that is to be removed is told apart from a new one.
const K3sOutputAddress = "address"

// CheckHostReuse refuses a plan that gives a host being removed (its k3s
// record left the plan, or its removal has not finished) to another host:
// the same address under another name, or the same name at another
// address. Installing k3s on it before the old node is drained, deleted
// and uninstalled would leave the old node (and, for a server, its etcd
// member) in its cluster, where the re-used address splits it. records
// are the state's records by step ID.
func CheckHostReuse(p *plans.Plan, records map[string]engine.StepRecord) error {
	inPlan := map[string]bool{}
	for _, spec := range plans.Steps(p) {
		inPlan[spec.ID] = true
	}
	var errs *multierror.Error
	for _, id := range slices.Sorted(maps.Keys(records)) {
		rec := records[id]
		if rec.Kind != plans.KindK3sServer && rec.Kind != plans.KindK3sJoin {
			continue
		}
		addr := rec.Outputs[K3sOutputAddress]
		_, name, _ := plans.SubjectOfID(id)
		pending := !inPlan[id] || rec.Status == engine.StatusRemoving
		if addr == "" || !pending {
			continue
		}
		for _, h := range p.Hosts {
			switch {
			case h.Name != name && h.Address == addr:
				errs = multierror.Append(errs, fmt.Errorf("hosts[%s] has the address %s of host %s, whose k3s is being removed (%s): "+
					"apply the plan without both first, so that %s is drained and uninstalled, then add %s", h.Name, addr, name, id, name, h.Name))
			case h.Name == name && h.Address != addr && !inPlan[id]:
				errs = multierror.Append(errs, fmt.Errorf("hosts[%s] is now at %s, but its k3s at %s is being removed (%s): "+
					"apply once with the old address, or remove the host from the plan first", h.Name, h.Address, addr, id))
			}
		}
	}
	if err := errs.ErrorOrNil(); err != nil {
		return fmt.Errorf("%s: %w", p.File(), flatten(errs))
	}
	return nil
}

// flatten joins a multierror's errors on one line each.
func flatten(errs *multierror.Error) error {
	lines := make([]string, len(errs.Errors))
	for i, e := range errs.Errors {
		lines[i] = e.Error()
	}
	return fmt.Errorf("%s", strings.Join(lines, "; "))
}
