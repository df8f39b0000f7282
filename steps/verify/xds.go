package verify

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"mcplan.io/mcplan/steps/istiorender"
	"mcplan.io/mcplan/steps/kube"
	"mcplan.io/mcplan/steps/xds"
)

// Bounds of the xDS check.
const (
	// DefaultXDSTimeout is how long the check asks again while istiod's
	// answers differ from the clusters.
	DefaultXDSTimeout = time.Minute
	// xdsRetryCap is the longest pause between attempts (xdsRetries).
	xdsRetryCap = 2 * time.Second
	// xdsFetchTimeout bounds one question to one istiod.
	xdsFetchTimeout = 20 * time.Second
)

// XDS is part (c) of the verification, what the control plane tells the
// data plane: it deploys the sample as Traffic does and waits for it,
// then asks the istiod of every primary cluster (through dial; nil means
// through the API's pods/portforward) what it tells the sidecar of the
// sample's sleep pod of every network about helloworld (CDS and EDS of
// HelloworldCluster), and compares that with what the clusters say:
// helloworld's ready pod IPs on the sidecar's network, the east-west
// gateways of the other networks. While they differ it asks again, for
// XDSTimeout. Then it checks that every primary's istiod signs with its
// cluster's intermediate (IstiodCA). It returns the findings (the
// sample's, one per report, one per istiod's CA) and a report per
// primary and network.
func (s *Verifier) XDS(ctx context.Context, stateDir string, dial xds.DialIstiod, logf func(string, ...any)) ([]Finding, []XDSReport) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	sample := s.DeploySample(ctx, stateDir, CheckXDS, logf)
	fs := sample.failures
	if len(sample.clients) == 0 {
		return fs, nil
	}
	if dial == nil {
		dial = xds.PortForward(sample.clients, s.mesh.Istio.Revision, logf)
	}
	reports := s.XDSReports(ctx, sample, dial, logf)
	for _, r := range reports {
		fs = append(fs, r.Finding())
	}
	return append(fs, s.IstiodCA(ctx, stateDir, dial)...), reports
}

// xdsTimeout is XDSTimeout or its default, at most verify.timeout.
func (s *Verifier) xdsTimeout() time.Duration {
	t := s.XDSTimeout
	if t <= 0 {
		t = DefaultXDSTimeout
	}
	return min(t, s.sampleTimeout())
}

// Enabled is the mesh's verify.enabled (default true): whether the xDS
// and traffic checks run.
func (s *Verifier) Enabled() bool {
	return s.mesh.Verify.On()
}

// XDSReports asks every primary's istiod, through dial (nil: the API's
// pods/portforward), for every network's view of a deployed sample until
// all agree with the clusters or the time is up, and returns the last
// reports. XDS is DeploySample then XDSReports.
func (s *Verifier) XDSReports(ctx context.Context, sample *Sample, dial xds.DialIstiod, logf func(string, ...any)) []XDSReport {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	clients := sample.clients
	if dial == nil {
		dial = xds.PortForward(clients, s.mesh.Istio.Revision, logf)
	}
	start := time.Now()
	deadline := start.Add(s.xdsTimeout())
	istiods := map[string]*xds.Istiod{}
	defer func() {
		for _, ist := range istiods {
			ist.Close()
		}
	}()
	retry := xdsRetries()
	for attempt := 1; ; attempt++ {
		world := s.readXDSWorld(ctx, clients)
		reports := s.askIstiods(ctx, clients, dial, istiods, world)
		bad := 0
		for _, r := range reports {
			if !r.OK() {
				bad++
			}
		}
		elapsed := time.Since(start).Round(100 * time.Millisecond)
		if bad == 0 {
			logf("mesh %s: xDS: %s as the clusters say (attempt %d, %s)", s.mesh.Name, plural(len(reports), "view"), attempt, elapsed)
			return reports
		}
		pause := retry.Step()
		if ctx.Err() != nil || time.Now().Add(pause).After(deadline) {
			logf("mesh %s: xDS: %d of %d views still differ from the clusters after %d attempts (%s)", s.mesh.Name, bad, len(reports), attempt, elapsed)
			return reports
		}
		logf("mesh %s: xDS: %d of %d views differ from the clusters (attempt %d); istiod may still be catching up, asking again", s.mesh.Name, bad, len(reports), attempt)
		_ = s.waitFor("istiod's xDS to catch up with the clusters", func() error {
			select {
			case <-ctx.Done():
			case <-time.After(pause):
			}
			return nil
		})
	}
}

// xdsRetries are the pauses between the xDS check's attempts: short at
// first (istiod pushes within a second of a change), then up to
// xdsRetryCap.
func xdsRetries() wait.Backoff {
	return wait.Backoff{Duration: 250 * time.Millisecond, Factor: 2, Cap: xdsRetryCap, Steps: math.MaxInt32}
}

// askIstiods makes one report per primary and network, the primaries'
// istiods asked at once, the reports in the primaries' order. Reached
// istiods are kept in istiods for the next attempt; one that failed is
// dropped.
func (s *Verifier) askIstiods(ctx context.Context, clients map[string]*kube.Client, dial xds.DialIstiod, istiods map[string]*xds.Istiod, world xdsWorld) []XDSReport {
	readers := s.topo.Readers
	asked := make([][]XDSReport, len(readers))
	kept := make([]*xds.Istiod, len(readers))
	var wg sync.WaitGroup
	for i, p := range readers {
		ist := istiods[p]
		wg.Go(func() { asked[i], kept[i] = s.askIstiod(ctx, clients, dial, p, ist, world) })
	}
	wg.Wait()
	var reports []XDSReport
	for i, p := range readers {
		if kept[i] == nil {
			delete(istiods, p)
		} else {
			istiods[p] = kept[i]
		}
		reports = append(reports, asked[i]...)
	}
	return reports
}

// askIstiod makes primary p's reports, one per network, asking ist (nil:
// it is reached through dial first), and returns the istiod to keep for
// the next attempt: nil when it could not be reached or a fetch failed.
func (s *Verifier) askIstiod(ctx context.Context, clients map[string]*kube.Client, dial xds.DialIstiod, p string, ist *xds.Istiod, world xdsWorld) ([]XDSReport, *xds.Istiod) {
	var reports []XDSReport
	var istErr error
	if ist == nil {
		ist, istErr = dial(ctx, p)
	}
	for _, network := range s.meshNetworkNames() {
		rep := XDSReport{Primary: p, Network: network, EnvoyCluster: HelloworldCluster}
		if istErr != nil {
			rep.Error = s.istiodErrorText(ctx, clients[p], istErr)
			reports = append(reports, rep)
			continue
		}
		rep.Istiod = ist.Name
		proxyCluster, pod := s.proxyFor(world, p, network)
		if pod == nil {
			rep.Error = fmt.Sprintf("no cluster on %s has a ready %s pod in namespace %s to ask for (see the sample's rows)", network, SampleSleep, SampleNamespace)
			reports = append(reports, rep)
			continue
		}
		proxy := s.proxyOf(proxyCluster, pod)
		fctx, cancel := context.WithTimeout(ctx, xdsFetchTimeout)
		view, err := xds.Fetch(fctx, ist, proxy, HelloworldCluster)
		cancel()
		if err != nil {
			rep.ProxyCluster, rep.Proxy = proxyCluster, proxy.String()
			rep.Error = s.istiodErrorText(ctx, clients[p], err)
			reports = append(reports, rep)
			// Reach it anew next time; the other networks get the same error.
			ist.Close()
			istErr = err
			continue
		}
		reports = append(reports, analyseXDS(xdsCase{
			Primary: p, Network: network, ProxyCluster: proxyCluster, Proxy: proxy.String(), Istiod: ist.Name,
			IstiodDeployment: istiorender.IstiodDeployment(s.mesh.Istio.Revision),
			Clusters:         world.clusters, RemoteSecrets: world.remoteSecrets[p], View: view,
		}))
	}
	if istErr != nil {
		return reports, nil
	}
	return reports, ist
}

// meshNetworkNames are the networks of the mesh's clusters, in the
// mesh's order.
func (s *Verifier) meshNetworkNames() []string {
	var out []string
	for _, c := range s.mesh.Clusters {
		if n := s.topo.Networks[c]; !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// proxyFor picks the sleep pod to stand for network's sidecars when
// asking the istiod of primary: one of a cluster that istiod serves if
// there is one, else of the first cluster on the network.
func (s *Verifier) proxyFor(w xdsWorld, primary, network string) (string, *corev1.Pod) {
	var cluster string
	var pod *corev1.Pod
	for _, c := range s.mesh.Clusters {
		p := w.sleep[c]
		if s.topo.Networks[c] != network || p == nil {
			continue
		}
		if pod == nil || (s.topo.PrimaryOf[c] == primary && s.topo.PrimaryOf[cluster] != primary) {
			cluster, pod = c, p
		}
	}
	return cluster, pod
}

// istiodErrorText is why an istiod could not be asked, and how to fix it.
func (s *Verifier) istiodErrorText(ctx context.Context, cl *kube.Client, err error) string {
	c := ""
	if cl != nil {
		c = cl.Name
	}
	kubectl := fmt.Sprintf("kubectl --context %s -n %s", s.topo.Contexts[c], istiorender.Namespace)
	switch xds.ReasonOf(err) {
	case xds.ReasonNoPod:
		return fmt.Sprintf("%v. Fix: mcplan apply installs istiod (istio/controlplane); %s get deployments,pods -l app=istiod", err, kubectl)
	case xds.ReasonNotReady:
		return fmt.Sprintf("%v. Fix: see why: %s describe pods -l app=istiod; %s logs deployment/%s", err, kubectl, kubectl, istiorender.IstiodDeployment(s.mesh.Istio.Revision))
	case xds.ReasonForwardFailed:
		return fmt.Sprintf("%v. The API server forwards pods/portforward to the kubelet of the pod's node (port 10250): it must reach it, "+
			"and the kubeconfig's user needs create on pods/portforward. `%s port-forward deployment/%s %d` tries the same",
			err, kubectl, istiorender.IstiodDeployment(s.mesh.Istio.Revision), xds.IstiodXDSPort)
	case xds.ReasonPortClosed:
		return fmt.Sprintf("%v. %s", err, s.portClosedHint(ctx, cl, kubectl))
	}
	return err.Error()
}

// portClosedHint explains, from istiod's Deployment, why nothing answers
// on its plaintext xDS port.
func (s *Verifier) portClosedHint(ctx context.Context, cl *kube.Client, kubectl string) string {
	const values = "meshes[].istio.values.pilot.extraContainerArgs"
	if cl == nil {
		return "Istio closes port 15010 when istiod runs with --grpcAddr= (set through " + values + ")"
	}
	addr, set, err := istiodGRPCAddr(ctx, cl, s.mesh.Istio.Revision)
	switch {
	case err != nil:
		return fmt.Sprintf("Istio closes port 15010 when istiod runs with --grpcAddr= (set through %s); its Deployment could not be read: %v", values, err)
	case set && addr == "":
		return fmt.Sprintf("istiod runs with --grpcAddr= (empty), which closes its plaintext xDS port 15010 (gRPC is then served on the debug port 8080). "+
			"Fix: remove --grpcAddr from %s and mcplan apply", values)
	case set:
		return fmt.Sprintf("istiod runs with --grpcAddr=%s, so it serves plaintext xDS there, not on port 15010 of the pod's loopback "+
			"where a port-forward connects. Fix: remove --grpcAddr from %s (the default is :15010) and mcplan apply", addr, values)
	}
	return fmt.Sprintf("istiod's arguments do not set --grpcAddr, so it should listen on :15010 (Istio closes it only with --grpcAddr= through %s): "+
		"it may be starting or failing; see %s logs deployment/%s (\"starting gRPC discovery service\")", values, kubectl, istiorender.IstiodDeployment(s.mesh.Istio.Revision))
}
