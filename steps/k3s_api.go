package steps

import (
	"context"
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"mcplan.io/mcplan/plans"
	"mcplan.io/mcplan/steps/kube"
	"mcplan.io/mcplan/steps/remote"
)

// apiURL is the https URL of a cluster's API at an address.
func apiURL(address string, port int) string {
	if port == 0 {
		port = 6443
	}
	return "https://" + net.JoinHostPort(address, strconv.Itoa(port))
}

// readK3sKubeconfig reads /etc/rancher/k3s/k3s.yaml from a server. It
// holds the admin's client key: never log it.
func readK3sKubeconfig(ctx context.Context, c *remote.Client) ([]byte, error) {
	res, err := c.Run(ctx, "cat "+k3sKubeconfigPath, remote.RunOptions{})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", k3sKubeconfigPath, err)
	}
	return []byte(res.Stdout), nil
}

// clusterREST returns a client config for a cluster's API as the operator
// reaches it: k3s.yaml of its first server, pointed at api.operatorAddress.
func (r *Runtime) clusterREST(ctx context.Context, cluster plans.Cluster, logf func(string, ...any)) (*rest.Config, error) {
	c, err := r.Host(ctx, cluster.Servers[0], logf)
	if err != nil {
		return nil, err
	}
	data, err := readK3sKubeconfig(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", cluster.Name, err)
	}
	creds, err := kube.ParseCertKubeconfig(data)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %s on host %s: %w", cluster.Name, k3sKubeconfigPath, cluster.Servers[0], err)
	}
	cfg := creds.REST(apiURL(cluster.API.OperatorAddress, cluster.API.Port))
	kube.Retrying(cfg, logf)
	return cfg, nil
}

// nodeReadiness says whether a node is Ready, and if not what was seen.
func nodeReadiness(ctx context.Context, client kubernetes.Interface, name string) (bool, string, error) {
	node, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		list, lerr := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		seen := "none"
		if lerr == nil && len(list.Items) > 0 {
			var names []string
			for _, n := range list.Items {
				names = append(names, n.Name)
			}
			seen = strings.Join(names, ", ")
		}
		return false, fmt.Sprintf("node %s is not registered (nodes: %s)", name, seen), nil
	}
	if err != nil {
		return false, "", err
	}
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			if c.Status == corev1.ConditionTrue {
				return true, "", nil
			}
			return false, fmt.Sprintf("node %s: Ready=%s (%s: %s)", name, c.Status, c.Reason, c.Message), nil
		}
	}
	return false, fmt.Sprintf("node %s has no Ready condition yet", name), nil
}

// waitNodeReady polls until a node is Ready or the timeout passes; the
// error says what was last seen.
func waitNodeReady(ctx context.Context, cfg *rest.Config, name string, timeout time.Duration) error {
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	seen := "no answer from the API yet"
	// A node is often Ready within a second of its API answering: look
	// soon, then every second.
	backoff := wait.Backoff{Duration: 100 * time.Millisecond, Factor: 2, Cap: time.Second, Steps: math.MaxInt32}
	for {
		ready, why, err := nodeReadiness(ctx, client, name)
		switch {
		case ready:
			return nil
		case err != nil:
			seen = "API " + cfg.Host + ": " + err.Error()
		default:
			seen = why
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("node %s not Ready after %s: last seen: %s", name, timeout, seen)
		case <-time.After(backoff.Step()):
		}
	}
}
