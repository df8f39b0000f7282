package steps

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"mcplan.io/mcplan/engine"
	"mcplan.io/mcplan/internal/atomicfile"
	"mcplan.io/mcplan/internal/digest"
	"mcplan.io/mcplan/plans"
	"mcplan.io/mcplan/steps/istiorender"
	"mcplan.io/mcplan/steps/kube"
	"mcplan.io/mcplan/steps/statedir"
	"mcplan.io/mcplan/testbed"
	"mcplan.io/mcplan/testbed/fakeistiod"
)

// These tests run the Istio steps against real kube-apiservers: the
// testbed's k3s stand-in (real apiserver, controller-manager and
// scheduler; simulated kubelet and servicelb), one per cluster, on
// loopback addresses. Nothing leaves the machine.

// standinServer is one running stand-in: a cluster.
type standinServer struct {
	*testbed.StandinServer
	name, ip string
	port     int
	k3s      string
}

func standinBinary(t *testing.T) string { return testbed.StandinBinary(t) }

func lastLines(s string, n int) string { return testbed.LastLines(s, n) }

// startStandin starts a stand-in server for cluster name whose node and
// API address is ip, and waits for its k3s.yaml.
func startStandin(t *testing.T, ctx context.Context, bin, name, ip string) *standinServer {
	s := testbed.StartStandinServer(t, ctx, bin, name, ip)
	return &standinServer{StandinServer: s, name: s.Name, ip: s.IP, port: s.Port, k3s: s.K3sYAML}
}

// writeKubeconfig does what kubeconfig/fetch does with the stand-in's
// k3s.yaml: server at the cluster's address, entries renamed, kept 0600
// where the Istio steps read it.
func (s *standinServer) writeKubeconfig(t *testing.T, stateDir string) {
	t.Helper()
	raw, err := os.ReadFile(s.k3s)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := RenameK3sKubeconfig(raw, apiURL(s.ip, s.port),
		plans.KubeconfigNames{Cluster: s.name, User: "user-" + s.name, Context: "context-" + s.name})
	if err != nil {
		t.Fatal(err)
	}
	data, err := clientcmd.Write(*cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(stateDir, "kubeconfig"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := atomicfile.Write(statedir.Kubeconfig(stateDir, s.name), data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// istioTestPlan is a two-cluster plan over the stand-ins.
func istioTestPlan(t *testing.T, model string, servers []*standinServer, networks []string, webhookValues map[string]any) *plans.Plan {
	t.Helper()
	p := &plans.Plan{APIVersion: plans.APIVersion, Kind: plans.Kind, Metadata: plans.Metadata{Name: "istio-api"}}
	off := false
	mesh := plans.Mesh{Name: "mesh1", Model: model, CA: plans.CA{KeySize: 2048}, Verify: plans.Verify{Enabled: &off}}
	for i, s := range servers {
		host := fmt.Sprintf("vm%d", i+1)
		p.Hosts = append(p.Hosts, plans.Host{Name: host, Address: s.ip})
		p.Clusters = append(p.Clusters, plans.Cluster{Name: s.name, Network: networks[i], Servers: []string{host}, API: plans.API{Port: s.port}})
		mesh.Clusters = append(mesh.Clusters, s.name)
		if !slices.Contains(networks[:i], networks[i]) {
			p.Networks = append(p.Networks, plans.Network{Name: networks[i]})
		}
	}
	if model == plans.ModelPrimaryRemote {
		mesh.Primaries = []string{servers[0].name}
	}
	p.Meshes = []plans.Mesh{mesh}
	p.Meshes[0].Istio.Values = webhookValues
	// Not plans.Validate: it refuses every loopback meshAddress, and here
	// the "machines" are loopback addresses of one host, which do reach
	// each other's API servers.
	plans.ApplyDefaults(p)
	return p
}

// istioGraph is the plan's graph cut down to the CA and Istio steps (the
// SSH and k3s steps are what the stand-ins and writeKubeconfig stand for).
func istioGraph(t *testing.T, p *plans.Plan) *engine.Graph {
	t.Helper()
	return istioGraphUpgrading(t, p, plans.Upgrades{})
}

// istioGraphUpgrading is istioGraph with the upgrades u under way.
func istioGraphUpgrading(t *testing.T, p *plans.Plan, u plans.Upgrades) *engine.Graph {
	t.Helper()
	keep := map[string]bool{}
	var specs []plans.StepSpec
	for _, spec := range plans.StepsUpgrading(p, u) {
		if strings.HasPrefix(spec.Kind, "ca/") || strings.HasPrefix(spec.Kind, "istio/") {
			keep[spec.ID] = true
			specs = append(specs, spec)
		}
	}
	rt := NewRuntime(p, nil)
	g := engine.NewGraph()
	for _, spec := range specs {
		var deps []string
		for _, d := range spec.DependsOn {
			if keep[d] {
				deps = append(deps, d)
			}
		}
		fp, err := engine.Fingerprint(spec.Kind, spec.Inputs)
		if err != nil {
			t.Fatal(err)
		}
		if err := g.Add(engine.Node{ID: spec.ID, Kind: spec.Kind, DependsOn: deps, Fingerprint: fp, Step: New(p, spec, rt)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := g.Validate(); err != nil {
		t.Fatal(err)
	}
	return g
}

// istioRun is a state directory and the clusters it manages.
type istioRun struct {
	t        *testing.T
	ctx      context.Context
	dir      string
	plan     *plans.Plan
	graph    *engine.Graph
	store    *engine.Store
	servers  []*standinServer
	clients  map[string]*kube.Client
	webhooks *fakeistiod.Webhooks
}

func newIstioRun(t *testing.T, model string, networks []string, tweak func(*plans.Plan)) *istioRun {
	bin := standinBinary(t)
	// The stand-ins sit at fixed loopback addresses: one run at a time on
	// this machine, whichever process runs it (registered first, released
	// last, after the stand-ins stop).
	testbed.HoldMachineLock(t, "steps-standins")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	t.Cleanup(cancel)
	r := &istioRun{t: t, ctx: ctx, dir: t.TempDir(), clients: map[string]*kube.Client{}}
	r.servers = make([]*standinServer, 2)
	start := time.Now()
	// Started one after the other: t.Fatal must run on the test goroutine.
	for i, ip := range []string{"127.0.0.2", "127.0.0.3"} {
		r.servers[i] = startStandin(t, ctx, bin, fmt.Sprintf("cluster%d", i+1), ip)
	}
	for _, s := range r.servers {
		s.writeKubeconfig(t, r.dir)
		c, err := clusterClient(engine.NewEnv("test", r.dir, nil, nil, nil), s.name)
		if err != nil {
			t.Fatal(err)
		}
		r.clients[s.name] = c
		r.waitAPI(c)
	}
	t.Logf("two stand-ins up in %s", time.Since(start).Round(time.Millisecond))
	r.webhooks = fakeistiod.Start(t, netip.MustParseAddr("127.0.0.1"))
	r.plan = istioTestPlan(t, model, r.servers, networks, r.webhooks.Values())
	if tweak != nil {
		tweak(r.plan)
	}
	r.graph = istioGraph(t, r.plan)
	failFast(r.graph)
	store, err := engine.OpenStore(r.dir)
	if err != nil {
		t.Fatal(err)
	}
	r.store = store
	return r
}

// failFast shortens the Istio steps' waits: the stand-in reports pods
// Ready at once.
func failFast(g *engine.Graph) {
	for _, id := range g.IDs() {
		switch s := g.Node(id).Step.(type) {
		case *IstioControlPlane:
			s.Timeout = 90 * time.Second
		case *IstioEastWest:
			s.Timeout, s.AddressTimeout = 90*time.Second, time.Minute
		}
	}
}

// waitAPI waits until the API serves and the node is Ready.
func (r *istioRun) waitAPI(c *kube.Client) {
	r.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		nodes, err := c.Typed.CoreV1().Nodes().List(r.ctx, metav1.ListOptions{})
		if err == nil && len(nodes.Items) > 0 {
			for _, cond := range nodes.Items[0].Status.Conditions {
				if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("cluster %s: API or node not ready: %v", c.Name, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// stepLogs collects the log lines of a run's steps, "step: message",
// from the engine's events (its sink is safe for the steps' goroutines).
type stepLogs struct {
	mu    sync.Mutex
	lines []string
}

func (l *stepLogs) sink(e engine.Event) {
	if e.Type == engine.EventLog {
		l.mu.Lock()
		l.lines = append(l.lines, e.Step+": "+e.Message)
		l.mu.Unlock()
	}
}

// all are the lines so far.
func (l *stepLogs) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.lines)
}

func (l *stepLogs) String() string { return strings.Join(l.all(), "\n") }

// run runs the graph through the engine (apply, with Check).
func (r *istioRun) run() *engine.Report {
	r.t.Helper()
	var logs stepLogs
	rep := engine.Run(r.ctx, r.graph, engine.Options{Store: r.store, Dir: r.dir, Check: true, Parallelism: 4, Sink: logs.sink})
	if rep.Err != nil {
		r.t.Fatalf("apply: %v\nstep logs:\n%s", rep.Err, &logs)
	}
	for _, l := range logs.all() {
		r.t.Log(l)
	}
	return rep
}

// env is the Env the executor would give a step, from the state.
func (r *istioRun) env(id string) *engine.Env {
	deps := map[string]map[string]string{}
	for _, other := range r.store.IDs() {
		rec, _ := r.store.Record(other)
		deps[other] = rec.Outputs
	}
	rec, _ := r.store.Record(id)
	return engine.NewEnv(id, r.dir, rec.Outputs, deps, nil)
}

// objectVersions are the resourceVersions of everything the steps made,
// each with a digest of the object but its status and bookkeeping ("<rv>
// <digest>"): checkIdempotent tells a write that changed the object from
// a controller's write of its status (an HPA's conditions).
func (r *istioRun) objectVersions() map[string]string {
	r.t.Helper()
	out := map[string]string{}
	for name, c := range r.clients {
		refs := []kube.Ref{
			{Version: "v1", Kind: "Namespace", Name: istiorender.Namespace},
			{Version: "v1", Kind: "Secret", Namespace: istiorender.Namespace, Name: istiorender.CACertsSecret},
			{Version: "v1", Kind: "ServiceAccount", Namespace: istiorender.Namespace, Name: istiorender.ReaderServiceAccount},
		}
		for _, other := range r.clients {
			refs = append(refs, kube.Ref{Version: "v1", Kind: "Secret", Namespace: istiorender.Namespace, Name: istiorender.RemoteSecretName(other.Name)},
				kube.Ref{Version: "v1", Kind: "Secret", Namespace: istiorender.Namespace, Name: istiorender.ReaderTokenSecretFor(other.Name)})
		}
		for _, set := range []string{"controlplane", "eastwest", "expose"} {
			inv := kube.Inventory{Path: statedir.Inventory(r.dir, name, set)}
			more, err := inv.Load()
			if err != nil {
				r.t.Fatal(err)
			}
			refs = append(refs, more...)
		}
		for _, ref := range refs {
			o, err := c.Get(r.ctx, ref)
			if err != nil {
				r.t.Fatal(err)
			}
			if o != nil {
				rv := o.GetResourceVersion()
				unstructured.RemoveNestedField(o.Object, "status")
				unstructured.RemoveNestedField(o.Object, "metadata", "managedFields")
				unstructured.RemoveNestedField(o.Object, "metadata", "resourceVersion")
				data, err := json.Marshal(o.Object)
				if err != nil {
					r.t.Fatal(err)
				}
				out[name+": "+ref.String()] = rv + " " + digest.SHA256Hex(data)
			}
		}
	}
	return out
}

// checkIdempotent checks that every step's Check is InSync, and that
// applying every step again changes no object.
func (r *istioRun) checkIdempotent() {
	r.t.Helper()
	before := r.objectVersions()
	order := r.graph.TopologicalOrder()
	for _, id := range order {
		d, err := r.graph.Node(id).Step.Check(r.ctx, r.env(id))
		if err != nil {
			r.t.Fatalf("%s: Check: %v", id, err)
		}
		if !d.InSync {
			r.t.Errorf("%s: Check after apply: %s", id, d.Reason)
		}
	}
	for _, id := range order {
		if err := r.graph.Node(id).Step.Apply(r.ctx, r.env(id)); err != nil {
			r.t.Fatalf("%s: second Apply: %v", id, err)
		}
	}
	after := r.objectVersions()
	if len(before) < 20 {
		r.t.Errorf("only %d objects tracked", len(before))
	}
	for k, v := range before {
		if a, ok := after[k]; !ok {
			r.t.Errorf("second Apply removed %s", k)
		} else if _, content, _ := strings.Cut(v, " "); a != v && !strings.HasSuffix(a, " "+content) {
			r.t.Errorf("second Apply changed %s (resourceVersion and digest %s -> %s)", k, v, a)
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			r.t.Errorf("second Apply made %s", k)
		}
	}
	r.t.Logf("second Apply of %d steps left %d objects unchanged", len(order), len(before))
}

func (r *istioRun) output(id, key string) string {
	rec, ok := r.store.Record(id)
	if !ok || rec.Outputs[key] == "" {
		r.t.Fatalf("%s: no output %s", id, key)
	}
	return rec.Outputs[key]
}

// logElapsed logs how long the Istio steps took per cluster.
func logElapsed(t *testing.T, rep *engine.Report) {
	for _, s := range rep.Steps {
		if strings.Contains(s.ID, "/istio/") || strings.Contains(s.ID, "remotesecret") {
			t.Logf("%-50s %-9s %s", s.ID, s.Outcome, s.Elapsed.Round(time.Millisecond))
		}
	}
}

// checkRemoteSecret checks the Secret by which reader reads source: its
// markers, a kubeconfig whose server is the source's mesh address, and
// that the kubeconfig, used as is, works against the source's API with
// the reader's rights (list pods) and no more (create namespaces).
func (r *istioRun) checkRemoteSecret(source, reader *standinServer) {
	r.t.Helper()
	sec, err := r.clients[reader.name].Typed.CoreV1().Secrets(istiorender.Namespace).Get(r.ctx, istiorender.RemoteSecretName(source.name), metav1.GetOptions{})
	if err != nil {
		r.t.Fatalf("remote secret for %s in %s: %v", source.name, reader.name, err)
	}
	if sec.Labels[istiorender.MultiClusterLabel] != "true" || sec.Annotations[istiorender.RemoteClusterAnnotation] != source.name {
		r.t.Errorf("remote secret markers: labels %v annotations %v", sec.Labels, sec.Annotations)
	}
	cfg, err := clientcmd.Load(sec.Data[source.name])
	if err != nil {
		r.t.Fatalf("remote secret kubeconfig: %v", err)
	}
	want := "https://" + source.ip + ":" + strconv.Itoa(source.port)
	if got := cfg.Clusters[source.name].Server; got != want {
		r.t.Errorf("remote secret for %s: server %s, want the mesh address %s", source.name, got, want)
	}
	rc, err := clientcmd.RESTConfigFromKubeConfig(sec.Data[source.name])
	if err != nil {
		r.t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		r.t.Fatal(err)
	}
	pods, err := cs.CoreV1().Pods(istiorender.Namespace).List(r.ctx, metav1.ListOptions{})
	if err != nil {
		r.t.Errorf("%s's kubeconfig for %s cannot list pods: %v", reader.name, source.name, err)
	} else {
		r.t.Logf("%s reads %s's API: %d pods in %s", reader.name, source.name, len(pods.Items), istiorender.Namespace)
	}
	if _, err := cs.CoreV1().Services("").List(r.ctx, metav1.ListOptions{}); err != nil {
		r.t.Errorf("%s's kubeconfig for %s cannot list services: %v", reader.name, source.name, err)
	}
	_, err = cs.CoreV1().Namespaces().Create(r.ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "reader-must-not"}}, metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) {
		r.t.Errorf("the reader token could create a namespace in %s (err %v): it has more than read rights", source.name, err)
	}
}

func TestIstioStepsMultiNetworkOnStandins(t *testing.T) {
	r := newIstioRun(t, plans.ModelMultiPrimary, []string{"network1", "network2"}, nil)
	start := time.Now()
	rep := r.run()
	t.Logf("first apply of %d steps: %s", len(rep.Steps), time.Since(start).Round(time.Millisecond))
	logElapsed(t, rep)
	ctx := r.ctx

	for i, s := range r.servers {
		c := r.clients[s.name]
		network := fmt.Sprintf("network%d", i+1)
		ns, err := c.Typed.CoreV1().Namespaces().Get(ctx, istiorender.Namespace, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if ns.Labels[istiorender.NetworkLabel] != network {
			t.Errorf("%s: namespace labels %v, want network %s", s.name, ns.Labels, network)
		}
		// cacerts holds the cluster's CA files.
		sec, err := c.Typed.CoreV1().Secrets(istiorender.Namespace).Get(ctx, istiorender.CACertsSecret, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range cacertsKeys() {
			file, err := os.ReadFile(filepath.Join(statedir.CACluster(r.dir, "mesh1", s.name), k))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(sec.Data[k], file) {
				t.Errorf("%s: cacerts %s differs from the CA file", s.name, k)
			}
		}
		// CRDs established, istiod Available.
		crd, err := c.Get(ctx, kube.Ref{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition", Name: "gateways.networking.istio.io"})
		if err != nil || crd == nil {
			t.Fatalf("%s: Gateway CRD: %v", s.name, err)
		}
		d, err := c.Get(ctx, deploymentRef(istiorender.IstiodName))
		if err != nil || d == nil {
			t.Fatalf("%s: istiod Deployment: %v", s.name, err)
		}
		if ok, why := kube.IsCurrent(d); !ok {
			t.Errorf("%s: istiod: %s", s.name, why)
		}
		// East-west gateway: LoadBalancer address = the node IP (servicelb).
		svc, err := c.Typed.CoreV1().Services(istiorender.Namespace).Get(ctx, istiorender.EastWestGatewayName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := kube.LoadBalancerAddress(svc); got != s.ip {
			t.Errorf("%s: east-west LoadBalancer address %q, want the node IP %s", s.name, got, s.ip)
		}
		if got := r.output(plans.IstioExposeID(s.name), ExposeOutputAddress); got != s.ip {
			t.Errorf("%s: expose passes on address %q, want %s", s.name, got, s.ip)
		}
		gw, err := c.Get(ctx, kube.Ref{Group: "networking.istio.io", Version: "v1", Kind: "Gateway", Namespace: istiorender.Namespace, Name: istiorender.CrossNetworkGateway})
		if err != nil || gw == nil {
			t.Errorf("%s: %s: %v (missing)", s.name, istiorender.CrossNetworkGateway, err)
		}
	}
	r.checkRemoteSecret(r.servers[0], r.servers[1])
	r.checkRemoteSecret(r.servers[1], r.servers[0])
	if r.webhooks.Count("/inject") == 0 {
		t.Error("the east-west gateway pods were not sent to the injection webhook")
	}
	t.Logf("webhook calls: inject %d, validate %d", r.webhooks.Count("/inject"), r.webhooks.Count("/validate"))

	// The engine's second run: every step Checks InSync and is skipped.
	rep = r.run()
	if n := rep.Count(engine.ActionNoChange); n != len(rep.Steps) {
		for _, s := range rep.Steps {
			if s.Action != engine.ActionNoChange {
				t.Errorf("second run: %s: %s (%s)", s.ID, s.Action, s.Reason)
			}
		}
	}
	r.checkIdempotent()

	// Drift is seen and repaired: a deleted remote secret, a dropped label.
	c2 := r.clients["cluster2"]
	if err := c2.Typed.CoreV1().Secrets(istiorender.Namespace).Delete(ctx, istiorender.RemoteSecretName("cluster1"), metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	rsID := plans.RemoteSecretID("mesh1", "cluster1", "cluster2")
	d, err := r.graph.Node(rsID).Step.Check(ctx, r.env(rsID))
	if err != nil || d.InSync || !strings.Contains(d.Reason, "missing") {
		t.Errorf("Check after deleting the remote secret: %+v %v", d, err)
	}
	rep = r.run()
	if rep.Count(engine.ActionUpdate) != 1 {
		t.Errorf("repair run: %d updates, want 1 (the remote secret)", rep.Count(engine.ActionUpdate))
	}
	r.checkRemoteSecret(r.servers[0], r.servers[1])

	t.Run("each reader has its own token", func(t *testing.T) {
		t1, t2 := r.remoteToken("cluster1", "cluster2"), r.remoteToken("cluster2", "cluster1")
		if t1 == "" || t1 == t2 {
			t.Fatalf("the readers' tokens are empty or shared")
		}
		if _, err := r.clients["cluster1"].Typed.CoreV1().Secrets(istiorender.Namespace).Get(ctx, istiorender.ReaderTokenSecret, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("a shared token Secret %s exists in cluster1 (err %v)", istiorender.ReaderTokenSecret, err)
		}
	})

	t.Run("a removed pair's token is revoked", func(t *testing.T) {
		token := r.remoteToken("cluster1", "cluster2")
		if code := testbed.TokenStatus(t, ctx, r.clients["cluster1"].REST, token); code != http.StatusOK {
			t.Fatalf("cluster2's token for cluster1 answers %d before the removal", code)
		}
		// cluster2 leaves the mesh: the pair cluster1->cluster2 is retired.
		left := *r.plan
		left.Meshes = []plans.Mesh{r.plan.Meshes[0]}
		left.Meshes[0].Clusters = []string{"cluster1"}
		id := plans.RemoteSecretID("mesh1", "cluster1", "cluster2")
		remover := Retirement(&left, RemovalOptions{})(id, engine.StepRecord{Kind: plans.KindIstioRemoteSecret})
		if remover == nil {
			t.Fatal("no remover for a pair that left")
		}
		if err := remover.Remove(ctx, r.env(id)); err != nil {
			t.Fatal(err)
		}
		if _, err := c2.Typed.CoreV1().Secrets(istiorender.Namespace).Get(ctx, istiorender.RemoteSecretName("cluster1"), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("cluster2 still holds the remote secret for cluster1 (err %v)", err)
		}
		// The apiserver drops a legacy token once its Secret is gone (its
		// informer may lag a moment).
		if code := testbed.WaitTokenStatus(t, ctx, r.clients["cluster1"].REST, token, http.StatusUnauthorized, 30*time.Second); code != http.StatusUnauthorized {
			t.Errorf("the removed pair's token answers %d, want 401", code)
		}
		if got := testbed.TokenStatus(t, ctx, r.clients["cluster2"].REST, r.remoteToken("cluster2", "cluster1")); got != http.StatusOK {
			t.Errorf("the remaining pair's token answers %d, want 200", got)
		}
	})
}

// remoteToken is the token in target's remote secret for source.
func (r *istioRun) remoteToken(source, target string) string {
	r.t.Helper()
	sec, err := r.clients[target].Typed.CoreV1().Secrets(istiorender.Namespace).Get(r.ctx, istiorender.RemoteSecretName(source), metav1.GetOptions{})
	if err != nil {
		r.t.Fatal(err)
	}
	creds, err := kube.ParseTokenKubeconfig(sec.Data[source])
	if err != nil {
		r.t.Fatal(err)
	}
	return creds.Token
}

func TestIstioStepsPrimaryRemoteOnStandins(t *testing.T) {
	// The remote's istiod Service gets an EndpointSlice at the primary's
	// gateway address, and the API refuses loopback endpoints: the
	// primary's gateway address comes from the plan (a documentation
	// address, put in the Service's externalIPs), which also tests that
	// path. Nothing connects to it: no pod really runs.
	const gatewayAddr = "192.0.2.31"
	r := newIstioRun(t, plans.ModelPrimaryRemote, []string{"network1", "network1"}, func(p *plans.Plan) {
		p.Clusters[0].EastWest = &plans.EastWest{Address: gatewayAddr}
	})
	rep := r.run()
	logElapsed(t, rep)
	ctx := r.ctx
	primary, remote := r.servers[0], r.servers[1]
	c1, c2 := r.clients[primary.name], r.clients[remote.name]

	// The primary exposes istiod through its gateway, and no services
	// (one network).
	for _, name := range []struct{ kind, name string }{{"Gateway", istiorender.IstiodGateway}, {"VirtualService", istiorender.IstiodVirtualSvc}} {
		o, err := c1.Get(ctx, kube.Ref{Group: "networking.istio.io", Version: "v1", Kind: name.kind, Namespace: istiorender.Namespace, Name: name.name})
		if err != nil || o == nil {
			t.Errorf("primary: %s %s: %v (missing)", name.kind, name.name, err)
		}
	}
	if o, _ := c1.Get(ctx, kube.Ref{Group: "networking.istio.io", Version: "v1", Kind: "Gateway", Namespace: istiorender.Namespace, Name: istiorender.CrossNetworkGateway}); o != nil {
		t.Error("one network, yet the cross-network gateway was applied")
	}
	d, err := c1.Typed.AppsV1().Deployments(istiorender.Namespace).Get(ctx, istiorender.IstiodName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(d.Spec.Template.Spec.Containers[0].Env, func(e corev1.EnvVar) bool { return e.Name == "EXTERNAL_ISTIOD" && e.Value == "true" }) {
		t.Error("the primary's istiod lacks EXTERNAL_ISTIOD=true")
	}

	// The remote runs no istiod; its istiod Service points at the
	// primary's east-west gateway, and its namespace names the primary.
	if _, err := c2.Typed.AppsV1().Deployments(istiorender.Namespace).Get(ctx, istiorender.IstiodName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("remote has an istiod Deployment (err %v)", err)
	}
	eps, err := c2.Get(ctx, kube.Ref{Group: "discovery.k8s.io", Version: "v1", Kind: "EndpointSlice", Namespace: istiorender.Namespace, Name: istiorender.IstiodName})
	if err != nil || eps == nil {
		t.Fatalf("remote: istiod EndpointSlice: %v", err)
	}
	if got := fmt.Sprint(eps.Object["endpoints"]); !strings.Contains(got, gatewayAddr) {
		t.Errorf("remote's istiod endpoints %s, want the primary's gateway %s", got, gatewayAddr)
	}
	svc, err := c1.Typed.CoreV1().Services(istiorender.Namespace).Get(ctx, istiorender.EastWestGatewayName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(svc.Spec.ExternalIPs, []string{gatewayAddr}) {
		t.Errorf("gateway Service externalIPs %v, want the plan's %s", svc.Spec.ExternalIPs, gatewayAddr)
	}
	if got := r.output(plans.IstioControlPlaneID(remote.name), "remotePilotAddress"); got != gatewayAddr {
		t.Errorf("remote's pilot address %q, want %s", got, gatewayAddr)
	}
	ns, err := c2.Typed.CoreV1().Namespaces().Get(ctx, istiorender.Namespace, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ns.Annotations[controlPlaneClustersAnnotation] != primary.name {
		t.Errorf("remote namespace annotations %v", ns.Annotations)
	}
	// Only the primary reads the other cluster.
	r.checkRemoteSecret(remote, primary)
	if _, err := c2.Typed.CoreV1().Secrets(istiorender.Namespace).Get(ctx, istiorender.RemoteSecretName(primary.name), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the remote holds a remote secret (err %v)", err)
	}
	r.checkIdempotent()
}
