package xds

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"istio.io/istio/pkg/cluster"
)

// IstiodMonitoringPort serves istiod's /debug endpoints (to local
// clients: a port-forward arrives at the pod's localhost, as for
// istioctl).
const IstiodMonitoringPort = 15014

// SyncStatusSynced is a remote cluster's sync status once istiod has read
// it (pkg/kube/multicluster's SyncStatusSynced).
const SyncStatusSynced = "synced"

// RemoteClusters is what `istioctl remote-clusters` shows for one istiod:
// its /debug/clusterz, the clusters it reads (its own first) with the
// secret each came from and its sync status.
func RemoteClusters(ctx context.Context, ist *Istiod) ([]cluster.DebugInfo, error) {
	if ist.DialPort == nil {
		return nil, fmt.Errorf("%s: only its xDS port is reachable", ist.Name)
	}
	client := &http.Client{
		Timeout: 20 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return ist.DialPort(ctx, IstiodMonitoringPort)
			},
			DisableKeepAlives: true,
		},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://localhost:%d/debug/clusterz", IstiodMonitoringPort), nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s /debug/clusterz: %w", ist.Pod, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("%s /debug/clusterz: %w", ist.Pod, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s /debug/clusterz: %s", ist.Pod, resp.Status)
	}
	var out []cluster.DebugInfo
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("%s /debug/clusterz: %w", ist.Pod, err)
	}
	return out, nil
}
