package xds

import (
	"encoding/json"
	"fmt"
	"strings"

	"google.golang.org/protobuf/types/known/structpb"
)

// Proxy is the sidecar whose view is asked for: a real pod's identity,
// sent as that pod's istio-proxy sends it.
type Proxy struct {
	PodName   string
	Namespace string
	// IPs are the pod's IPs; the first is in the node ID.
	IPs            []string
	Labels         map[string]string
	Annotations    map[string]string
	ServiceAccount string
	NodeName       string
	// Workload is the owning controller's name (a Deployment's), and
	// Owner its reference: kubernetes://apis/apps/v1/namespaces/NS/deployments/NAME.
	Workload string
	Owner    string
	// Containers are the pod's application containers.
	Containers []string
	// ClusterID is the Istio cluster name of the pod's cluster, Network
	// its network, MeshID the mesh.
	ClusterID string
	Network   string
	MeshID    string
	// IstioVersion is the proxy's release (1.31.0).
	IstioVersion string
}

// ClusterDomain is the DNS domain of every cluster mcplan builds.
const ClusterDomain = "cluster.local"

// NodeID is the sidecar's Envoy node ID:
// sidecar~<pod IP>~<pod>.<namespace>~<namespace>.svc.cluster.local.
func (p Proxy) NodeID() string {
	return fmt.Sprintf("sidecar~%s~%s.%s~%s.svc.%s", p.ip(), p.PodName, p.Namespace, p.Namespace, ClusterDomain)
}

func (p Proxy) ip() string {
	if len(p.IPs) == 0 {
		return ""
	}
	return p.IPs[0]
}

// String names the proxy for messages: "sample/sleep-5d4f8 (10.42.0.7)".
func (p Proxy) String() string {
	return fmt.Sprintf("%s/%s (%s)", p.Namespace, p.PodName, p.ip())
}

// Metadata is the node metadata the sidecar's agent sends istiod (the
// fields of Istio's BootstrapNodeMetadata that istiod reads for a
// Kubernetes pod).
func (p Proxy) Metadata() (*structpb.Struct, error) {
	m := map[string]any{
		"ISTIO_VERSION":     p.IstioVersion,
		"NAME":              p.PodName,
		"NAMESPACE":         p.Namespace,
		"LABELS":            stringMap(p.Labels),
		"ANNOTATIONS":       stringMap(p.Annotations),
		"INSTANCE_IPS":      strings.Join(p.IPs, ","),
		"SERVICE_ACCOUNT":   p.ServiceAccount,
		"NODE_NAME":         p.NodeName,
		"WORKLOAD_NAME":     p.Workload,
		"OWNER":             p.Owner,
		"APP_CONTAINERS":    strings.Join(p.Containers, ","),
		"CLUSTER_ID":        p.ClusterID,
		"NETWORK":           p.Network,
		"MESH_ID":           p.MeshID,
		"INTERCEPTION_MODE": "REDIRECT",
		"PILOT_SAN":         []any{"istiod.istio-system.svc"},
	}
	for k, v := range m {
		if s, ok := v.(string); ok && s == "" {
			delete(m, k)
		}
	}
	return structpb.NewStruct(m)
}

// stringMap is a map as structpb takes it.
func stringMap(in map[string]string) map[string]any {
	out := make(map[string]any, len(in))
	for k, v := range in {
		out[k] = v
	}
	return out
}

// MetadataJSON is the metadata as JSON, for debugging and tests.
func (p Proxy) MetadataJSON() (string, error) {
	s, err := p.Metadata()
	if err != nil {
		return "", err
	}
	b, err := json.Marshal(s.AsMap())
	return string(b), err
}
