package main

import (
	"errors"
	"fmt"
	"strings"

	"mcplan.io/mcplan/engine"
	"mcplan.io/mcplan/engine/progress"
	"mcplan.io/mcplan/plans"
	"mcplan.io/mcplan/steps"
)

// loadPlan loads and validates a plan and prints its warnings. Invalid
// plans come back as one error listing every problem, one per line.
func (c *cli) loadPlan(path string) (*plans.Plan, error) {
	p, err := plans.LoadAndValidate(path)
	if err != nil {
		return nil, planError(err)
	}
	for _, w := range plans.Warnings(p) {
		fmt.Fprintf(c.stderr, "Warning: %s\n", (*plans.Error)(&w).Error())
	}
	return p, nil
}

// loadOffline loads a plan and its offline graph (graph, validate).
func (c *cli) loadOffline(path string) (*plans.Plan, *engine.Graph, error) {
	p, err := c.loadPlan(path)
	if err != nil {
		return nil, nil, err
	}
	g, err := offlineGraph(p)
	return p, g, err
}

// offlineGraph is the step graph of a plan for commands that contact
// nothing (graph, validate): its steps get a runtime that is never used.
func offlineGraph(p *plans.Plan) (*engine.Graph, error) {
	g, err := steps.Graph(p, steps.NewRuntime(p, engine.NewMemoryStore()), plans.Upgrades{})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p.File(), err)
	}
	return g, nil
}

// planError formats plan errors one per line with a count.
func planError(err error) error {
	var list plans.Errors
	if !errors.As(err, &list) || len(list) == 0 {
		return err
	}
	lines := make([]string, 0, len(list))
	for _, e := range list {
		lines = append(lines, "  "+e.Error())
	}
	noun := "problem"
	if len(list) > 1 {
		noun = "problems"
	}
	return &exitCodeError{code: exitError, msg: fmt.Sprintf("Error: invalid plan, %d %s:\n%s", len(list), noun, strings.Join(lines, "\n"))}
}

// selectTargets narrows the graph to the steps matching --target globs and
// what they depend on, and warns that it did.
func (c *cli) selectTargets(g *engine.Graph, targets []string) (*engine.Graph, error) {
	if len(targets) == 0 {
		return g, nil
	}
	ids, err := g.MatchTargets(targets)
	if err != nil {
		return nil, err
	}
	fmt.Fprint(c.stderr, progress.TargetWarning)
	return g.Subgraph(ids), nil
}
