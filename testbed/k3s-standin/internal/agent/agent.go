// Package agent runs "k3s agent": it joins a server with the token and runs
// the simulated kubelet of its node (with native pods and the kubelet API).
package agent

import (
	"context"
	"fmt"
	"io"
	"log"
	"path/filepath"
	"strings"

	"k8s.io/client-go/kubernetes"
	"k8s.io/component-base/version"

	"mcplan.io/mcplan/testbed/k3s-standin/internal/config"
	"mcplan.io/mcplan/testbed/k3s-standin/internal/join"
	"mcplan.io/mcplan/testbed/k3s-standin/internal/kubecfg"
	"mcplan.io/mcplan/testbed/k3s-standin/internal/native"
	"mcplan.io/mcplan/testbed/k3s-standin/internal/pki"
	"mcplan.io/mcplan/testbed/k3s-standin/internal/sdnotify"
	"mcplan.io/mcplan/testbed/k3s-standin/internal/simulate"
)

// Run joins cfg.Server and keeps the node Ready until ctx ends. The agent
// verifies the server CA against the token's K10 hash, then gets a node
// client certificate (system:node:<name>) for a locally made key by
// presenting the token, and from then on acts as a kubelet would.
func Run(ctx context.Context, cfg *config.Config, logw io.Writer) error {
	logger := log.New(logw, "k3s-standin agent: ", log.LstdFlags)
	jc, err := join.New(ctx, cfg.Server, cfg.Token, logger.Printf)
	if err != nil {
		return err
	}
	certPEM, keyPEM, err := jc.NodeCert(ctx, cfg.NodeName)
	if err != nil {
		return err
	}
	creds := kubecfg.Creds{Server: jc.URL.String(), CAPEM: jc.CAPEM, CertPEM: certPEM, KeyPEM: keyPEM}
	dir := filepath.Join(cfg.DataDir, "agent")
	if err := pki.WriteFile(filepath.Join(dir, "server-ca.crt"), jc.CAPEM, 0o644); err != nil {
		return err
	}
	if err := creds.Write(filepath.Join(dir, "kubelet.kubeconfig"), 0o600); err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(creds.REST())
	if err != nil {
		return fmt.Errorf("agent: client: %w", err)
	}
	logger.Printf("joined %s as node %s (%s)", jc.URL, cfg.NodeName, cfg.NodeIP)
	labels := map[string]string{}
	for _, l := range cfg.NodeLabels {
		k, v, _ := strings.Cut(l, "=")
		labels[k] = v
	}
	node, err := JoinedNode(ctx, jc, cfg, client, logger.Printf)
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	node.Labels = labels
	// As k3s: READY=1 once the node is registered.
	node.Registered = func() { sdnotify.Ready(logger.Printf) }
	if err := node.Run(ctx); err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	return nil
}

// JoinedNode is the simulated kubelet of a node that joined through jc (an
// agent, or a server joining another server): native pods reach the API
// through the supervisor it joined, and its kubelet API has a serving
// certificate from that supervisor.
func JoinedNode(ctx context.Context, jc *join.Client, cfg *config.Config, client kubernetes.Interface, logf func(string, ...any)) (*simulate.Node, error) {
	certPEM, keyPEM, clientCAPEM, err := jc.KubeletAPI(ctx, filepath.Join(cfg.DataDir, "agent"), cfg.NodeName, cfg.NodeIP)
	if err != nil {
		return nil, err
	}
	host, port, err := jc.APIEndpoint()
	if err != nil {
		return nil, err
	}
	return &simulate.Node{
		Client: client, Name: cfg.NodeName, IP: cfg.NodeIP, KubeletVersion: version.Get().GitVersion, Logf: logf,
		Native:     simulate.NewNative(cfg.NativeImages, cfg.DataDir, cfg.PodLogDir, cfg.CNIBinDir, cfg.CNIBridge, native.APIEndpoint{Host: host, Port: port}),
		KubeletAPI: &simulate.KubeletAPI{Port: cfg.KubeletPort, ServingCertPEM: certPEM, ServingKeyPEM: keyPEM, ClientCAPEM: clientCAPEM},
	}, nil
}
