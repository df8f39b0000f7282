package verify

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"mcplan.io/mcplan/steps/istiorender"
	"mcplan.io/mcplan/steps/kube"
	"mcplan.io/mcplan/steps/xds"
)

// xdsWorld is what the clusters say, read once per attempt of the xDS
// check.
type xdsWorld struct {
	clusters []xdsCluster
	// sleep is the ready sleep pod of each cluster that has one.
	sleep map[string]*corev1.Pod
	// remoteSecrets holds, per primary and other cluster, why the
	// primary's remote secret for it is not usable ("" when it is).
	remoteSecrets map[string]map[string]string
}

// readXDSWorld reads, from every cluster of the mesh, what the xDS check
// compares istiod's answers with: the clusters, and the primaries'
// remote secrets, each read at once.
func (s *Verifier) readXDSWorld(ctx context.Context, clients map[string]*kube.Client) xdsWorld {
	clusters := make([]xdsCluster, len(s.mesh.Clusters))
	sleeps := make([]*corev1.Pod, len(s.mesh.Clusters))
	secrets := make([]map[string]string, len(s.topo.Readers))
	var wg sync.WaitGroup
	for i, name := range s.mesh.Clusters {
		wg.Go(func() {
			c := xdsCluster{Name: name, Network: s.topo.Networks[name], Context: s.topo.Contexts[name]}
			_, c.HasGateway = s.topo.EastWest[name]
			if cl := clients[name]; cl == nil {
				c.Unreadable = "its API did not answer"
			} else {
				var err error
				if sleeps[i], err = s.readXDSCluster(ctx, cl, &c); err != nil {
					c.Unreadable = err.Error()
				}
			}
			clusters[i] = c
		})
	}
	for i, p := range s.topo.Readers {
		cl := clients[p]
		if cl == nil {
			continue
		}
		wg.Go(func() {
			secrets[i] = map[string]string{}
			for _, other := range s.mesh.Clusters {
				if other == p {
					continue
				}
				if f := s.checkRemoteSecret(ctx, cl, other); !f.OK {
					secrets[i][other] = f.Detail
				} else {
					secrets[i][other] = ""
				}
			}
		})
	}
	wg.Wait()
	w := xdsWorld{clusters: clusters, sleep: map[string]*corev1.Pod{}, remoteSecrets: map[string]map[string]string{}}
	for i, name := range s.mesh.Clusters {
		if sleeps[i] != nil {
			w.sleep[name] = sleeps[i]
		}
	}
	for i, p := range s.topo.Readers {
		if secrets[i] != nil {
			w.remoteSecrets[p] = secrets[i]
		}
	}
	return w
}

// readXDSCluster reads one cluster: istio-system's network label, the
// east-west gateway's addresses, helloworld's ready endpoints and the
// ready sleep pod, which it returns (also when a later read fails).
func (s *Verifier) readXDSCluster(ctx context.Context, cl *kube.Client, c *xdsCluster) (sleep *corev1.Pod, err error) {
	ns, err := cl.Typed.CoreV1().Namespaces().Get(ctx, istiorender.Namespace, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return nil, fmt.Errorf("namespace %s: %w", istiorender.Namespace, err)
	default:
		c.NamespaceNetwork = ns.Labels[istiorender.NetworkLabel]
	}
	if c.HasGateway {
		svc, err := cl.Typed.CoreV1().Services(istiorender.Namespace).Get(ctx, istiorender.EastWestGatewayName, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			c.GatewayProblem = "does not exist (mcplan apply installs it: istio/eastwest)"
		case err != nil:
			return nil, fmt.Errorf("service %s/%s: %w", istiorender.Namespace, istiorender.EastWestGatewayName, err)
		default:
			c.Gateways = gatewayAddresses(svc)
		}
	}
	pods, err := cl.Typed.CoreV1().Pods(SampleNamespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("pods of %s: %w", SampleNamespace, err)
	}
	slices.SortFunc(pods.Items, func(a, b corev1.Pod) int { return strings.Compare(a.Name, b.Name) })
	byName := map[string]*corev1.Pod{}
	for i := range pods.Items {
		p := &pods.Items[i]
		byName[p.Name] = p
		if p.Labels["app"] == SampleSleep && sleep == nil && p.Status.PodIP != "" {
			if ready, _ := xds.PodReadiness(p); ready {
				sleep = p
			}
		}
	}
	epSlices, err := cl.Typed.DiscoveryV1().EndpointSlices(SampleNamespace).List(ctx, metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=" + SampleService})
	if err != nil {
		return sleep, fmt.Errorf("endpointslices of %s/%s: %w", SampleNamespace, SampleService, err)
	}
	for _, sl := range epSlices.Items {
		for _, ep := range sl.Endpoints {
			if ep.Conditions.Ready != nil && !*ep.Conditions.Ready {
				continue
			}
			for _, addr := range ep.Addresses {
				pod := xdsPod{IP: addr}
				if ep.TargetRef != nil && ep.TargetRef.Kind == "Pod" {
					pod.Name = ep.TargetRef.Name
					if p := byName[pod.Name]; p != nil {
						pod.Labels = p.Labels
					}
				}
				c.Hello = append(c.Hello, pod)
			}
		}
	}
	return sleep, nil
}

// gatewayAddresses are the addresses istiod takes a gateway Service's
// to be: its LoadBalancer ingress, then its externalIPs.
func gatewayAddresses(svc *corev1.Service) []string {
	var out []string
	add := func(a string) {
		if a != "" && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	for _, in := range svc.Status.LoadBalancer.Ingress {
		add(in.IP)
		if in.IP == "" {
			add(in.Hostname)
		}
	}
	for _, a := range svc.Spec.ExternalIPs {
		add(a)
	}
	return out
}

// proxyOf is the sidecar of a sleep pod as its agent presents it to
// istiod.
func (s *Verifier) proxyOf(cluster string, pod *corev1.Pod) xds.Proxy {
	p := xds.Proxy{
		PodName:        pod.Name,
		Namespace:      pod.Namespace,
		Labels:         pod.Labels,
		Annotations:    pod.Annotations,
		ServiceAccount: pod.Spec.ServiceAccountName,
		NodeName:       pod.Spec.NodeName,
		Workload:       SampleSleep,
		Owner:          fmt.Sprintf("kubernetes://apis/apps/v1/namespaces/%s/deployments/%s", pod.Namespace, SampleSleep),
		ClusterID:      cluster,
		Network:        s.topo.Networks[cluster],
		MeshID:         s.mesh.Name,
		IstioVersion:   s.istioVersion(),
	}
	for _, ip := range pod.Status.PodIPs {
		p.IPs = append(p.IPs, ip.IP)
	}
	if len(p.IPs) == 0 {
		p.IPs = []string{pod.Status.PodIP}
	}
	for _, c := range pod.Spec.Containers {
		if c.Name != "istio-proxy" {
			p.Containers = append(p.Containers, c.Name)
		}
	}
	return p
}

// istioVersion is the release of the mesh's proxies: the image tag
// without a variant suffix (1.31.0-distroless -> 1.31.0).
func (s *Verifier) istioVersion() string {
	tag := s.mesh.Istio.Tag
	if tag == "" {
		return istiorender.DefaultTag
	}
	for _, variant := range []string{"-distroless", "-debug"} {
		tag = strings.TrimSuffix(tag, variant)
	}
	return tag
}

// istiodGRPCAddr returns the --grpcAddr argument of the istiod
// Deployment's discovery container, and whether it is set.
func istiodGRPCAddr(ctx context.Context, cl *kube.Client, revision string) (string, bool, error) {
	d, err := cl.Typed.AppsV1().Deployments(istiorender.Namespace).Get(ctx, istiorender.IstiodDeployment(revision), metav1.GetOptions{})
	if err != nil {
		return "", false, err
	}
	for _, c := range d.Spec.Template.Spec.Containers {
		if c.Name != "discovery" {
			continue
		}
		args := c.Args
		for i, a := range args {
			switch {
			case strings.HasPrefix(a, "--grpcAddr="):
				return strings.TrimPrefix(a, "--grpcAddr="), true, nil
			case a == "--grpcAddr" && i+1 < len(args):
				return args[i+1], true, nil
			}
		}
	}
	return "", false, nil
}
