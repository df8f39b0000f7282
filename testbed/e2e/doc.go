// Package e2e runs mcplan end to end on the testbed: real sshd hosts
// under systemd, the k3s stand-in installed through mcplan's airgap path,
// and the stand-in's real kube-apiserver. Its tests need root; they skip
// with the reason otherwise.
package e2e
