package xds

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"istio.io/istio/pilot/pkg/model"
	v3 "istio.io/istio/pilot/pkg/xds/v3"
	"istio.io/istio/pkg/adsc"
	istiolog "istio.io/istio/pkg/log"
)

// DefaultFetchTimeout bounds one Fetch when ctx has no deadline.
const DefaultFetchTimeout = 30 * time.Second

// View is what istiod sent the proxy for one Envoy cluster.
type View struct {
	// Clusters are the names of the EDS clusters CDS carried, sorted.
	Clusters []string
	// Found says whether CDS carried the asked cluster.
	Found bool
	// Endpoints are the asked cluster's endpoints (EDS), in istiod's order.
	Endpoints []Endpoint
}

// Endpoint is one endpoint of EDS.
type Endpoint struct {
	Address string
	Port    uint32
	// Locality is region/zone/subzone, "" when istiod sets none.
	Locality string
	Weight   uint32
	// TLSMode is the endpoint's transport socket match label ("istio"
	// when istiod expects mutual TLS), "" when absent.
	TLSMode string
	// Cluster and Workload are from Istio's endpoint metadata: the
	// cluster ID istiod has the endpoint from (for a gateway, the
	// gateway's cluster) and the workload name; "" when absent.
	Cluster  string
	Workload string
}

// HostPort is "address:port".
func (e Endpoint) HostPort() string {
	return net.JoinHostPort(e.Address, fmt.Sprint(e.Port))
}

// Fetch connects Istio's ADS client (istio.io/istio/pkg/adsc) to istiod
// as proxy, asks for every cluster (CDS) and, as Envoy does, for the
// endpoints (EDS) of the EDS clusters, and returns what came for
// envoyCluster. It fails with an IstiodError when istiod cannot be
// reached or does not answer.
func Fetch(ctx context.Context, istiod *Istiod, proxy Proxy, envoyCluster string) (*View, error) {
	// adsc logs every response at info level through Istio's log
	// package, on stdout; mcplan's output is its own.
	if scope := istiolog.FindScope("adsc"); scope != nil {
		scope.SetOutputLevel(istiolog.NoneLevel)
	}
	meta, err := proxy.Metadata()
	if err != nil {
		return nil, fmt.Errorf("proxy %s: metadata: %w", proxy, err)
	}
	var mu sync.Mutex
	var dialErr error
	dial := func(ctx context.Context, _ string) (net.Conn, error) {
		c, err := istiod.Dial(ctx)
		mu.Lock()
		dialErr = err
		mu.Unlock()
		return c, err
	}
	client, err := adsc.New("istiod:15010", &adsc.ADSConfig{
		Config: adsc.Config{
			ClientName: "mcplan verify " + proxy.String(),
			Namespace:  proxy.Namespace,
			Workload:   proxy.PodName,
			IP:         proxy.ip(),
			Meta:       meta,
			NodeType:   model.SidecarProxy,
			GrpcOpts: []grpc.DialOption{
				grpc.WithContextDialer(dial),
				grpc.WithTransportCredentials(insecure.NewCredentials()),
			},
		},
		InitialDiscoveryRequests: []*discovery.DiscoveryRequest{{TypeUrl: v3.ClusterType}},
	})
	if err != nil {
		return nil, fmt.Errorf("%s: ADS client: %w", istiod.Name, err)
	}
	defer client.Close()
	stop := context.AfterFunc(ctx, client.Close)
	defer stop()

	unreachable := func(err error) error {
		mu.Lock()
		derr := dialErr
		mu.Unlock()
		var ie *IstiodError
		if errors.As(derr, &ie) {
			return derr
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", istiod.Name, ctx.Err())
		}
		return &IstiodError{Cluster: istiod.Cluster, Pod: istiod.Pod, Reason: ReasonPortClosed, Err: fmt.Errorf("%s: %w", istiod.Name, err)}
	}
	timeout := DefaultFetchTimeout
	if deadline, ok := ctx.Deadline(); ok {
		timeout = time.Until(deadline)
	}
	if err := client.Run(); err != nil {
		return nil, unreachable(err)
	}
	if _, err := client.WaitVersion(timeout, v3.ClusterType, ""); err != nil {
		return nil, unreachable(fmt.Errorf("no CDS answer: %w", err))
	}
	view := &View{}
	for name := range client.GetEdsClusters() {
		view.Clusters = append(view.Clusters, name)
		view.Found = view.Found || name == envoyCluster
	}
	slices.Sort(view.Clusters)
	if !view.Found {
		return view, nil
	}
	if deadline, ok := ctx.Deadline(); ok {
		timeout = time.Until(deadline)
	}
	if _, err := client.WaitVersion(timeout, v3.EndpointType, ""); err != nil {
		return nil, unreachable(fmt.Errorf("no EDS answer: %w", err))
	}
	if cla := client.GetEndpoints()[envoyCluster]; cla != nil {
		view.Endpoints = endpointsOf(cla)
	}
	return view, nil
}

// endpointsOf flattens a ClusterLoadAssignment.
func endpointsOf(cla *endpoint.ClusterLoadAssignment) []Endpoint {
	var out []Endpoint
	for _, loc := range cla.GetEndpoints() {
		locality := ""
		if l := loc.GetLocality(); l != nil && (l.Region != "" || l.Zone != "" || l.SubZone != "") {
			locality = strings.TrimRight(strings.Join([]string{l.Region, l.Zone, l.SubZone}, "/"), "/")
		}
		for _, lb := range loc.GetLbEndpoints() {
			sa := lb.GetEndpoint().GetAddress().GetSocketAddress()
			e := Endpoint{
				Address:  sa.GetAddress(),
				Port:     sa.GetPortValue(),
				Locality: locality,
				Weight:   lb.GetLoadBalancingWeight().GetValue(),
			}
			md := lb.GetMetadata().GetFilterMetadata()
			e.TLSMode = md["envoy.transport_socket_match"].GetFields()["tlsMode"].GetStringValue()
			// workload-name;namespace;canonical-name;canonical-revision;cluster-id
			if w := md["istio"].GetFields()["workload"].GetStringValue(); w != "" {
				parts := strings.Split(w, ";")
				e.Workload = parts[0]
				if len(parts) == 5 {
					e.Cluster = parts[4]
				}
			}
			out = append(out, e)
		}
	}
	return out
}
