// Package statedir is the layout of mcplan's state directory (state.dir,
// default .mcplan beside the plan): where each file lives and the modes of
// what is secret. It imports nothing of mcplan, so every package that
// reads or writes the state directory names its files through it.
//
//	<state>/state.json, state.lock, .gitignore       (engine)
//	<state>/known_hosts                              host keys pinned on first use
//	<state>/ca/<mesh>/root-cert.pem, root-key.pem
//	<state>/ca/<mesh>/<cluster>/ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem
//	<state>/kubeconfig/<cluster>.yaml                admin kubeconfigs kubeconfig/fetch keeps
//	<state>/inventory/<cluster>/<set>.json           what an Istio step applied
//	<state>/k3s/<cluster>/agent-token
package statedir

import (
	"os"
	"path/filepath"
)

// File modes: directories and secrets are the user's alone.
const (
	DirMode  os.FileMode = 0o700 // every directory
	KeyMode  os.FileMode = 0o600 // private keys, tokens, kubeconfigs
	CertMode os.FileMode = 0o644 // certificates
)

// Files of a mesh's CA, laid out as Istio's tools/certs Makefile lays
// them out. The per-cluster files are the keys of Istio's "cacerts"
// Secret.
const (
	RootCertFile  = "root-cert.pem"  // root certificate, in the mesh and in each cluster directory
	RootKeyFile   = "root-key.pem"   // root private key, mesh directory only
	CACertFile    = "ca-cert.pem"    // the cluster's intermediate certificate
	CAKeyFile     = "ca-key.pem"     // the cluster's intermediate private key
	CertChainFile = "cert-chain.pem" // intermediate then root
)

// CARoot is the directory of a mesh's root CA.
func CARoot(dir, mesh string) string { return filepath.Join(dir, "ca", mesh) }

// CACluster is the directory of a cluster's intermediate CA.
func CACluster(dir, mesh, cluster string) string { return filepath.Join(CARoot(dir, mesh), cluster) }

// Kubeconfig is where kubeconfig/fetch keeps a cluster's admin kubeconfig.
func Kubeconfig(dir, cluster string) string {
	return filepath.Join(dir, "kubeconfig", cluster+".yaml")
}

// Inventory is where a step keeps its inventory of a cluster's objects.
func Inventory(dir, cluster, set string) string {
	return filepath.Join(dir, "inventory", cluster, set+".json")
}

// AgentToken is where mcplan keeps a cluster's k3s agent token.
func AgentToken(dir, cluster string) string {
	return filepath.Join(dir, "k3s", cluster, "agent-token")
}

// Pins is the known_hosts file of the host keys pinned on first use. It
// holds public keys only and may be committed.
func Pins(dir string) string { return filepath.Join(dir, "known_hosts") }

// ReadFile reads one file of dir and returns its content and permission
// bits. A missing file gives an error matching fs.ErrNotExist.
func ReadFile(dir, name string) (data []byte, mode os.FileMode, err error) {
	path := filepath.Join(dir, name)
	fi, err := os.Stat(path)
	if err != nil {
		return nil, 0, err
	}
	data, err = os.ReadFile(path)
	if err != nil {
		return nil, 0, err
	}
	return data, fi.Mode().Perm(), nil
}
