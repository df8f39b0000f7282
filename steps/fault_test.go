package steps

import (
	"strings"
	"sync"
	"testing"
	"time"

	"mcplan.io/mcplan/engine"
	"mcplan.io/mcplan/plans"
)

// TestIstioApplyRidesThroughAnAPIRestart restarts cluster1's stand-in (its
// kube-apiserver goes away and comes back on the same port, as with
// systemctl restart k3s) while its Istio control plane is being applied:
// the requests that fail are tried again, the log says so, and the apply
// succeeds in the same run.
func TestIstioApplyRidesThroughAnAPIRestart(t *testing.T) {
	r := newIstioRun(t, plans.ModelMultiPrimary, []string{"network1", "network2"}, nil)
	var logs stepLogs
	started := make(chan struct{})
	var once sync.Once
	sink := func(e engine.Event) {
		if e.Type == engine.EventStarted && e.Step == plans.IstioControlPlaneID("cluster1") {
			once.Do(func() { close(started) })
		}
		logs.sink(e)
	}
	done := make(chan *engine.Report, 1)
	go func() {
		done <- engine.Run(r.ctx, r.graph, engine.Options{Store: r.store, Dir: r.dir, Check: true, Parallelism: 4, Sink: sink})
	}()
	select {
	case <-started:
	case rep := <-done:
		t.Fatalf("the apply ended before cluster1's control plane started: %v", rep.Err)
	}
	restart := time.Now()
	r.servers[0].Restart(t)
	t.Logf("restarted cluster1's stand-in (stop and start took %s)", time.Since(restart).Round(time.Millisecond))
	rep := <-done
	log := logs.String()
	if rep.Err != nil {
		t.Fatalf("apply across the restart: %v\nlogs:\n%s", rep.Err, log)
	}
	var retried []string
	for _, l := range logs.all() {
		if strings.Contains(l, "trying again") && strings.HasPrefix(l, "cluster/cluster1/") {
			retried = append(retried, l)
		}
	}
	if len(retried) == 0 {
		t.Fatalf("no request to cluster1 was tried again: the restart fell between requests (logs:\n%s)", log)
	}
	t.Logf("%d attempts logged, e.g. %s", len(retried), retried[0])
	r.checkIdempotent()
}
