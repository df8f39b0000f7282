package plans

import (
	"fmt"
	"slices"

	"github.com/goccy/go-yaml"
)

// MarshalEffective returns the plan as YAML after defaults, in the field
// order of the types and with map keys sorted, for validate --show-defaults.
// It does not change p.
func MarshalEffective(p *Plan) ([]byte, error) {
	eff := clonePlan(p)
	ApplyDefaults(eff)
	out, err := yaml.MarshalWithOptions(eff, yaml.Indent(2), yaml.IndentSequence(true))
	if err != nil {
		return nil, fmt.Errorf("marshal effective plan: %w", err)
	}
	return out, nil
}

// clonePlan copies p deeply enough that ApplyDefaults on the copy leaves p
// unchanged: the lists and pointers defaults write into are copied.
func clonePlan(p *Plan) *Plan {
	c := *p
	c.Hosts = slices.Clone(p.Hosts)
	c.Networks = slices.Clone(p.Networks)
	c.Clusters = slices.Clone(p.Clusters)
	c.Meshes = slices.Clone(p.Meshes)
	if p.Kubeconfig != nil {
		k := *p.Kubeconfig
		c.Kubeconfig = &k
	}
	if p.State != nil {
		st := *p.State
		c.State = &st
	}
	return &c
}
