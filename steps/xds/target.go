// Package xds asks an istiod what it tells one sidecar: it reaches the
// istiod's plaintext xDS port (15010), through the Kubernetes API's
// pods/portforward in the product, connects Istio's own ADS client as that
// sidecar (node ID and metadata as the sidecar sends them) and returns the
// clusters (CDS) and one cluster's endpoints (EDS) it receives.
package xds

import (
	"context"
	"net"
)

// IstiodXDSPort is istiod's plaintext xDS port.
const IstiodXDSPort = 15010

// IstiodCAPort is istiod's port for xDS and CSRs over TLS: it serves
// istiod's own certificate, signed by its CA (the plugged-in
// intermediate), so its chain shows which intermediate istiod signs with.
const IstiodCAPort = 15012

// Istiod is one istiod's plaintext xDS port, reached by Dial.
type Istiod struct {
	// Cluster is the cluster whose istiod this is; Pod the pod
	// (namespace/name) when reached through the API.
	Cluster string
	Pod     string
	// Name says which istiod and how it is reached, for messages:
	// "pod istio-system/istiod-5d4f8 port 15010 (port-forward)".
	Name string
	// Dial opens one connection to the xDS port; gRPC calls it again to
	// reconnect.
	Dial func(ctx context.Context) (net.Conn, error)
	// DialPort opens one connection to another port of istiod; nil when
	// only the xDS port is reachable (Direct).
	DialPort func(ctx context.Context, port int) (net.Conn, error)
	// Close releases what reaching it holds (the port-forward's
	// connection to the API). Connections from Dial must be closed first.
	Close func()
}

// DialIstiod reaches the istiod of cluster primary. The product's is
// PortForward; tests reach an istiod run outside a cluster with Direct.
type DialIstiod func(ctx context.Context, primary string) (*Istiod, error)

// Direct reaches istiods listening at plain TCP addresses (host:port),
// by cluster name: an istiod run outside any cluster.
func Direct(addrs map[string]string) DialIstiod {
	return func(ctx context.Context, primary string) (*Istiod, error) {
		addr, ok := addrs[primary]
		if !ok {
			return nil, &IstiodError{Cluster: primary, Reason: ReasonNoPod, Err: errNoDirectAddress}
		}
		var d net.Dialer
		return &Istiod{
			Cluster: primary,
			Name:    addr + " (direct)",
			Dial:    func(ctx context.Context) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) },
			Close:   func() {},
		}, nil
	}
}
