// Package kubecfg writes kubeconfig files in the shape k3s writes k3s.yaml
// (cluster, user and context all named "default").
package kubecfg

import (
	"fmt"
	"os"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"mcplan.io/mcplan/testbed/k3s-standin/internal/pki"
)

// Creds is a server URL plus CA and client certificate PEM.
type Creds struct {
	Server  string
	CAPEM   []byte
	CertPEM []byte
	KeyPEM  []byte
}

// Config builds the kubeconfig.
func (c Creds) Config() *clientcmdapi.Config {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["default"] = &clientcmdapi.Cluster{Server: c.Server, CertificateAuthorityData: c.CAPEM}
	cfg.AuthInfos["default"] = &clientcmdapi.AuthInfo{ClientCertificateData: c.CertPEM, ClientKeyData: c.KeyPEM}
	cfg.Contexts["default"] = &clientcmdapi.Context{Cluster: "default", AuthInfo: "default"}
	cfg.CurrentContext = "default"
	return cfg
}

// Write writes the kubeconfig to path with mode.
func (c Creds) Write(path string, mode os.FileMode) error {
	b, err := clientcmd.Write(*c.Config())
	if err != nil {
		return fmt.Errorf("kubecfg: encode %s: %w", path, err)
	}
	if err := pki.WriteFile(path, b, mode); err != nil {
		return err
	}
	// WriteFile's rename keeps the temp file's mode; chmod again in case
	// the file existed with another mode and a umask interfered.
	if err := os.Chmod(path, mode); err != nil {
		return fmt.Errorf("kubecfg: chmod %s: %w", path, err)
	}
	return nil
}

// REST returns a client-go config.
func (c Creds) REST() *rest.Config {
	return &rest.Config{
		Host: c.Server,
		TLSClientConfig: rest.TLSClientConfig{
			CAData:   c.CAPEM,
			CertData: c.CertPEM,
			KeyData:  c.KeyPEM,
		},
		QPS:   50,
		Burst: 100,
	}
}
