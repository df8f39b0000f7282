package status

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"mcplan.io/mcplan/internal/lists"
	"mcplan.io/mcplan/plans"
	"mcplan.io/mcplan/steps/istiorender"
	"mcplan.io/mcplan/steps/kube"
)

// readEastWest reads the addresses of a cluster's east-west gateway
// Service: its LoadBalancer ingress, then its external IPs.
func readEastWest(ctx context.Context, c *kube.Client, cluster *plans.Cluster) (*EastWest, error) {
	ew := &EastWest{Addresses: []string{}}
	if cluster.EastWest != nil {
		ew.PlanAddress = cluster.EastWest.Address
	}
	svc, err := c.Typed.CoreV1().Services(istiorender.Namespace).Get(ctx, istiorender.EastWestGatewayName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		ew.Missing = true
		return ew, nil
	case err != nil:
		return ew, fmt.Errorf("get Service %s/%s in %s: %w", istiorender.Namespace, istiorender.EastWestGatewayName, c.Name, err)
	}
	for _, in := range svc.Status.LoadBalancer.Ingress {
		ew.Addresses = lists.AppendNew(ew.Addresses, in.IP, in.Hostname)
	}
	ew.Addresses = lists.AppendNew(ew.Addresses, svc.Spec.ExternalIPs...)
	return ew, nil
}
