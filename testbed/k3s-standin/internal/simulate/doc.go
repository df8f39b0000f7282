// Package simulate stands in for what a real k3s node runs but this testbed
// cannot: kubelet, containerd and the CNI (no container images can be pulled
// or run here), and k3s's servicelb (klipper-lb, which would run svclb pods).
//
// Everything in this package is SIMULATION. It only writes what those
// components would report: a Node with Ready heartbeats (status and a Lease in
// kube-node-lease), pod status Running/Ready with an IP from the node's
// podCIDR, graceful pod deletion finished once "containers" stop, and
// status.loadBalancer.ingress of LoadBalancer Services. No container is
// started and no traffic is forwarded.
//
// The exception are pods whose images all have an executable in the node's
// native images folder: the node hands them to internal/native, which runs
// them as real processes, and reports their status from those processes;
// the node's kubelet API (internal/kubeletapi) serves their logs and
// port-forwards. All other behaviour (scheduling, RBAC, tokens, admission,
// controllers) is the real upstream code.
package simulate
