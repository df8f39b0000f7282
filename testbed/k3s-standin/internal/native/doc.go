// Package native runs the pods whose images the stand-in can run as real
// processes: an image docker.io/istio/pilot:1.31.0 stands for the
// executable <images dir>/pilot. Everything a kubelet does for such a pod
// is done for real: a network namespace of its own attached by the real
// CNI plugins (bridge + host-local + loopback through libcni, cni.go,
// network.go, netns.go; hostNetwork pods share the node's), env and
// downward API, volumes materialised with kubelet's atomic-writer layout
// and refreshed, a private mount namespace per process with the volumes
// bind-mounted at their mountPaths, logs in /var/log/pods, restart
// back-off, probes and graceful termination.
// Container images themselves are not pulled or unpacked: the process sees
// the node's file system plus its volumes, and runs as root.
package native
