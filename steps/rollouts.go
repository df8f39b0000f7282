package steps

import (
	"fmt"
	"slices"

	"github.com/hashicorp/go-multierror"

	"mcplan.io/mcplan/engine"
	"mcplan.io/mcplan/plans"
)

// Upgrades are the upgrades under way in p's state: the k3s rollouts
// (Rollouts) and the Istio canaries (Canaries, from the inventories
// under the state directory).
func Upgrades(p *plans.Plan, records func(id string) (engine.StepRecord, bool)) (plans.Upgrades, error) {
	canaries, err := Canaries(p, p.StateDir())
	if err != nil {
		return plans.Upgrades{}, err
	}
	return plans.Upgrades{K3s: Rollouts(p, records), Istio: canaries}, nil
}

// Rollouts are the clusters of p being upgraded: a node of the cluster
// recorded another release than the plan's (K3sOutputRelease; a record of
// an older mcplan, without it, by its recorded version against a pinned
// one). Their steps roll (plans.StepsUpgrading). records reads the state.
func Rollouts(p *plans.Plan, records func(id string) (engine.StepRecord, bool)) plans.Rollouts {
	rolling := plans.Rollouts{}
	for _, c := range p.Clusters {
		want := c.K3sRelease()
		for _, id := range plans.NodeStepIDs(c) {
			rec, ok := records(id)
			if !ok {
				continue
			}
			got, recorded := rec.Outputs[K3sOutputRelease]
			if recorded && got != want || !recorded && c.K3s.Version != "" && rec.Outputs["version"] != "" && rec.Outputs["version"] != c.K3s.Version {
				rolling[c.Name] = true
			}
		}
	}
	return rolling
}

// CheckUpgrades refuses a pinned k3s version that a node of its cluster
// cannot go to from the version it runs, as k3s's rules say
// (plans.K3sUpgradeProblem: no downgrade, no minor version skipped),
// positioned at the plan's field.
func CheckUpgrades(p *plans.Plan, records func(id string) (engine.StepRecord, bool)) error {
	var errs *multierror.Error
	for i, c := range p.Clusters {
		var seen []string
		for _, id := range plans.NodeStepIDs(c) {
			rec, ok := records(id)
			installed := rec.Outputs["version"]
			if !ok || installed == "" || slices.Contains(seen, installed) {
				continue
			}
			seen = append(seen, installed)
			if problem := plans.K3sUpgradeProblem(installed, c.K3s.Version); problem != "" {
				_, host, _ := plans.SubjectOfID(id)
				errs = multierror.Append(errs, p.ErrorAt(fmt.Sprintf("clusters[%d].k3s.version", i),
					fmt.Sprintf("%s (cluster %s, host %s)", problem, c.Name, host), ""))
			}
		}
	}
	if err := errs.ErrorOrNil(); err != nil {
		return flatten(errs)
	}
	return nil
}
