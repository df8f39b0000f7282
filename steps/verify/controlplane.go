package verify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"mcplan.io/mcplan/internal/digest"
	"mcplan.io/mcplan/plans"
	"mcplan.io/mcplan/steps/istiorender"
	"mcplan.io/mcplan/steps/kube"
	"mcplan.io/mcplan/steps/pki"
	"mcplan.io/mcplan/steps/statedir"
)

// remoteReadTimeout bounds each request made with a remote secret's
// kubeconfig, with its retries: long enough for an API server that is
// restarting (k3s answers 503 while it comes up) to be back.
const remoteReadTimeout = 45 * time.Second

// ControlPlane runs part (a) against the clusters whose admin kubeconfigs
// are under stateDir, and returns one finding per check and object; with
// hosts (WithHosts) also podroutes.
func (s *Verifier) ControlPlane(ctx context.Context, stateDir string) []Finding {
	// The clusters are reached at once, then checked at once; the
	// findings keep the order of the clusters and of their checks.
	reached := make([]*kube.Client, len(s.mesh.Clusters))
	unreached := make([][]Finding, len(s.mesh.Clusters))
	var wg sync.WaitGroup
	for i, c := range s.mesh.Clusters {
		wg.Go(func() {
			cl, err := reach(ctx, stateDir, c, nil)
			if err != nil {
				unreached[i] = []Finding{{Check: CheckAPI, Cluster: c, Object: "API", Detail: fmt.Sprintf(
					"%v; no other check of this cluster ran. Fix: check that the cluster runs and that `mcplan apply` fetched its kubeconfig (%s)",
					err, statedir.Kubeconfig(stateDir, c))}}
				return
			}
			reached[i] = cl
		})
	}
	wg.Wait()
	fs := slices.Concat(unreached...)
	clients := map[string]*kube.Client{}
	for i, c := range s.mesh.Clusters {
		if reached[i] != nil {
			clients[c] = reached[i]
		}
	}
	root, rootErr := s.meshRoot(stateDir)
	var checks []func() []Finding
	for _, c := range s.mesh.Clusters {
		cl := clients[c]
		if cl == nil {
			continue
		}
		checks = append(checks, func() []Finding {
			fs := []Finding{s.checkNetwork(ctx, cl), s.checkCACerts(ctx, cl, stateDir, root, rootErr)}
			if _, ok := s.topo.EastWest[c]; ok {
				fs = append(fs, s.checkEastWest(ctx, cl))
			}
			return fs
		})
	}
	for _, b := range s.topo.Readers {
		cl := clients[b]
		if cl == nil {
			continue
		}
		checks = append(checks, func() []Finding {
			var fs []Finding
			for _, a := range s.mesh.Clusters {
				if a != b {
					fs = append(fs, s.checkRemoteSecret(ctx, cl, a))
				}
			}
			return fs
		})
	}
	fs = append(fs, allAtOnce(checks)...)
	if s.runOnHost != nil {
		fs = append(fs, s.podRoutes(ctx, clients)...)
	}
	return fs
}

// reach is a client of cluster name from the state's kubeconfig copy,
// once its API answers.
func reach(ctx context.Context, stateDir, name string, logf func(string, ...any)) (*kube.Client, error) {
	c, err := kube.FromKubeconfig(name, statedir.Kubeconfig(stateDir, name), logf)
	if err != nil {
		return nil, err
	}
	if err := c.Reachable(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// allAtOnce runs checks at once and returns their findings in the
// checks' order.
func allAtOnce(checks []func() []Finding) []Finding {
	out := make([][]Finding, len(checks))
	var wg sync.WaitGroup
	for i, check := range checks {
		wg.Go(func() { out[i] = check() })
	}
	wg.Wait()
	return slices.Concat(out...)
}

// checkNetwork checks istio-system's network label.
func (s *Verifier) checkNetwork(ctx context.Context, c *kube.Client) Finding {
	f := Finding{Check: CheckNetwork, Cluster: c.Name, Object: "Namespace " + istiorender.Namespace}
	ns, err := c.Typed.CoreV1().Namespaces().Get(ctx, istiorender.Namespace, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		f.Detail = "missing. Fix: mcplan apply (istio/namespace makes it)"
		return f
	case err != nil:
		f.Detail = err.Error()
		return f
	}
	want := s.topo.Networks[c.Name]
	if got := ns.Labels[istiorender.NetworkLabel]; got != want {
		f.Detail = fmt.Sprintf("label %s=%q, want %q: istiod then puts the cluster on the wrong network and sends "+
			"cross-network traffic to pod IPs instead of the east-west gateway. Fix: mcplan apply (istio/namespace sets it)",
			istiorender.NetworkLabel, got, want)
		return f
	}
	f.OK, f.Detail = true, istiorender.NetworkLabel+"="+want
	return f
}

// meshRoot reads the mesh's root certificate from its CA directory.
func (s *Verifier) meshRoot(stateDir string) ([]byte, error) {
	dir := statedir.CARoot(stateDir, s.mesh.Name)
	data, _, err := statedir.ReadFile(dir, statedir.RootCertFile)
	if err != nil {
		return nil, fmt.Errorf("mesh root %s: %w (the mesh's ca/root step makes it)", filepath.Join(dir, statedir.RootCertFile), err)
	}
	if _, err := pki.DecodeCert(data); err != nil {
		return nil, fmt.Errorf("mesh root %s: %w", filepath.Join(dir, statedir.RootCertFile), err)
	}
	return data, nil
}

// checkCACerts checks that the live Secret cacerts holds an intermediate
// signed by the mesh root, and the mesh root itself.
func (s *Verifier) checkCACerts(ctx context.Context, c *kube.Client, stateDir string, root []byte, rootErr error) Finding {
	f := Finding{Check: CheckCACerts, Cluster: c.Name, Object: "Secret " + istiorender.Namespace + "/" + istiorender.CACertsSecret}
	if rootErr != nil {
		f.Detail = rootErr.Error()
		return f
	}
	rootCert, _ := pki.DecodeCert(root)
	fix := fmt.Sprintf("Fix: mcplan apply rewrites the Secret from %s (if that directory holds files of another root, remove it first "+
		"so that ca/intermediate signs a new intermediate with the mesh root); then restart istiod "+
		"(kubectl -n %s rollout restart deployment/istiod) and the workloads so they get certificates of the new CA",
		statedir.CACluster(stateDir, s.mesh.Name, c.Name), istiorender.Namespace)
	sec, err := c.Typed.CoreV1().Secrets(istiorender.Namespace).Get(ctx, istiorender.CACertsSecret, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		f.Detail = "missing: istiod then makes a self-signed root of its own and the clusters do not trust each other. " + fix
		return f
	case err != nil:
		f.Detail = err.Error()
		return f
	}
	inter, err := pki.DecodeCert(sec.Data[statedir.CACertFile])
	if err != nil {
		f.Detail = fmt.Sprintf("%s: %v. %s", statedir.CACertFile, err, fix)
		return f
	}
	meshRoot := fmt.Sprintf("the mesh root %q (sha256 %s)", rootCert.Subject.CommonName, digest.Short(pki.Fingerprint(rootCert)))
	if err := pki.VerifyChain(inter, rootCert); err != nil {
		f.Detail = fmt.Sprintf("%s %q (issuer %q) does not chain to %s: %v; this cluster's workloads cannot authenticate "+
			"the other clusters' (different root). %s", statedir.CACertFile, inter.Subject.CommonName, inter.Issuer.CommonName, meshRoot, err, fix)
		return f
	}
	if !bytes.Equal(bytes.TrimSpace(sec.Data[statedir.RootCertFile]), bytes.TrimSpace(root)) {
		what := "an unreadable certificate"
		if got, err := pki.DecodeCert(sec.Data[statedir.RootCertFile]); err == nil {
			what = fmt.Sprintf("root %q (sha256 %s)", got.Subject.CommonName, digest.Short(pki.Fingerprint(got)))
		}
		f.Detail = fmt.Sprintf("%s holds %s, not %s (a different root). %s", statedir.RootCertFile, what, meshRoot, fix)
		return f
	}
	f.OK = true
	f.Detail = fmt.Sprintf("%s %q chains to %s", statedir.CACertFile, inter.Subject.CommonName, meshRoot)
	return f
}

// checkEastWest checks that the gateway Service has an address: a
// LoadBalancer ingress or an external IP.
func (s *Verifier) checkEastWest(ctx context.Context, c *kube.Client) Finding {
	f := Finding{Check: CheckEastWest, Cluster: c.Name, Object: "Service " + istiorender.Namespace + "/" + istiorender.EastWestGatewayName}
	svc, err := c.Typed.CoreV1().Services(istiorender.Namespace).Get(ctx, istiorender.EastWestGatewayName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		f.Detail = "missing: the other networks cannot reach this cluster's services. Fix: mcplan apply (istio/eastwest installs it)"
		return f
	case err != nil:
		f.Detail = err.Error()
		return f
	}
	addr, source := kube.LoadBalancerAddress(svc), "LoadBalancer ingress"
	if addr == "" && len(svc.Spec.ExternalIPs) > 0 {
		addr, source = svc.Spec.ExternalIPs[0], "spec.externalIPs"
	}
	if want := s.topo.EastWest[c.Name]; want != "" && !slices.Contains(svc.Spec.ExternalIPs, want) {
		f.Detail = fmt.Sprintf("the plan's clusters[%s].eastWest.address %s is not in spec.externalIPs %v. Fix: mcplan apply (istio/eastwest sets it)",
			c.Name, want, svc.Spec.ExternalIPs)
		return f
	}
	if addr == "" {
		f.Detail = fmt.Sprintf("no address (no LoadBalancer ingress, no externalIPs): other networks cannot reach this cluster through the gateway. "+
			"k3s's servicelb gives LoadBalancer Services the node's IP; it may be disabled (--disable=servicelb) or another "+
			"LoadBalancer Service may hold one of the gateway's ports. Fix: set clusters[%s].eastWest.address in the plan to a node "+
			"address the other clusters reach, and mcplan apply", c.Name)
		return f
	}
	f.OK, f.Detail = true, addr+" ("+source+")"
	return f
}

// checkRemoteSecret checks, in reader b, the remote secret for cluster a:
// present and marked, its kubeconfig's server not the local machine, and
// the kubeconfig, used as it is, able to list services and endpoint
// slices in a. The requests go from this machine, not from b's istiod.
func (s *Verifier) checkRemoteSecret(ctx context.Context, b *kube.Client, a string) Finding {
	name := istiorender.RemoteSecretName(a)
	f := Finding{Check: CheckRemoteSecret, Cluster: b.Name, Object: "Secret " + istiorender.Namespace + "/" + name}
	fix := "Fix: mcplan apply (istio/remotesecret rewrites it)"
	sec, err := b.Typed.CoreV1().Secrets(istiorender.Namespace).Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		f.Detail = fmt.Sprintf("missing: %s's istiod does not see %s's services and endpoints. %s", b.Name, a, fix)
		return f
	case err != nil:
		f.Detail = err.Error()
		return f
	}
	if sec.Labels[istiorender.MultiClusterLabel] != "true" {
		f.Detail = fmt.Sprintf("label %s=true missing: istiod ignores the secret. %s", istiorender.MultiClusterLabel, fix)
		return f
	}
	raw := sec.Data[a]
	if raw == nil && len(sec.Data) == 1 {
		for _, v := range sec.Data {
			raw = v
		}
	}
	creds, err := kube.ParseTokenKubeconfig(raw)
	if err != nil {
		f.Detail = fmt.Sprintf("kubeconfig under key %s: %v. %s", a, err, fix)
		return f
	}
	server := creds.Server
	if err := checkServerURL(server); err != nil {
		f.Detail = fmt.Sprintf("kubeconfig server %s %v. The remote secret tells %s's istiod where %s's API is; 127.0.0.1 there means "+
			"%s itself, so istiod would watch the wrong cluster or none (the classic multicluster failure: k3s.yaml says "+
			"server: https://127.0.0.1:6443). Fix: set clusters[%s].api.meshAddress in the plan to an address of %s's server that %s reaches, "+
			"and mcplan apply", server, err, b.Name, a, b.Name, a, a, b.Name)
		return f
	}
	rc := creds.REST()
	rc.Wrap(kube.WithRetries(nil))
	rc.Timeout = remoteReadTimeout
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		f.Detail = fmt.Sprintf("kubeconfig: %v. %s", err, fix)
		return f
	}
	one := metav1.ListOptions{Limit: 1}
	if _, err := cs.CoreV1().Services("").List(ctx, one); err != nil {
		f.Detail = fmt.Sprintf("its kubeconfig cannot list services in %s at %s: %s", a, server, remoteReadHint(err, a))
		return f
	}
	if _, err := cs.DiscoveryV1().EndpointSlices("").List(ctx, one); err != nil {
		if _, err2 := cs.CoreV1().Endpoints("").List(ctx, one); err2 != nil { //nolint:staticcheck // istiod of older releases reads Endpoints
			f.Detail = fmt.Sprintf("its kubeconfig cannot list endpointslices or endpoints in %s at %s: %s", a, server, remoteReadHint(err, a))
			return f
		}
	}
	f.OK, f.Detail = true, fmt.Sprintf("reads %s at %s (services, endpointslices)", a, server)
	return f
}

// checkServerURL refuses a kubeconfig server on the local machine.
func checkServerURL(server string) error {
	u, err := url.Parse(server)
	if err != nil || u.Host == "" {
		return fmt.Errorf("is not a URL")
	}
	return plans.CheckMeshAddress(u.Hostname())
}

// remoteReadHint explains why a remote secret's kubeconfig cannot read.
func remoteReadHint(err error, cluster string) string {
	switch {
	case apierrors.IsUnauthorized(err):
		return fmt.Sprintf("%v: the token is not valid (the reader token Secret in %s was deleted or rotated). Fix: mcplan apply (istio/remotesecret writes the current token)", err, cluster)
	case apierrors.IsForbidden(err):
		return fmt.Sprintf("%v: %s lacks read rights (its ClusterRole/Binding comes with %s's control plane). Fix: mcplan apply", err, istiorender.ReaderServiceAccount, cluster)
	case errors.Is(err, context.DeadlineExceeded) || isNetError(err):
		return fmt.Sprintf("%v: the API does not answer at that address. Fix: set clusters[%s].api.meshAddress to an address of %s's server that the other clusters reach (and that is in its certificate's SANs), and mcplan apply", err, cluster, cluster)
	}
	return err.Error() + ". Fix: mcplan apply (istio/remotesecret)"
}

func isNetError(err error) bool {
	var ne net.Error
	var oe *net.OpError
	return errors.As(err, &ne) || errors.As(err, &oe) || strings.Contains(err.Error(), "x509:")
}
