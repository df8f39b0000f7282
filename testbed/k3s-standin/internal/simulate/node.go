package simulate

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"runtime"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"mcplan.io/mcplan/testbed/k3s-standin/internal/native"
)

// Heartbeat intervals, shorter than the node lifecycle controller's
// grace period (50s).
const (
	leaseDuration  = 40 * time.Second
	leaseRenew     = 10 * time.Second
	statusInterval = 20 * time.Second
)

// Node is a simulated kubelet for one node. Client must act as the node
// (user system:node:<Name> in system:nodes) so the real Node authorizer and
// NodeRestriction admission apply.
type Node struct {
	Client         kubernetes.Interface
	Name           string
	IP             string
	KubeletVersion string
	Labels         map[string]string
	Logf           func(format string, args ...any)
	// Native, when set, runs the pods whose images have executables in
	// Native.ImagesDir as real processes (internal/native).
	Native *Native
	// KubeletAPI, when set, serves the kubelet API (port-forward, logs).
	KubeletAPI *KubeletAPI
	// Registered, when set, is called once the Node object exists.
	Registered func()
	// NodesClient, when set, may list and watch every Node (a server's
	// admin client): the node then keeps routes to the other nodes' pod
	// CIDRs (Routes). A node's own identity may read only its own Node
	// (the Node authorizer's selector rule), so agents have none.
	NodesClient kubernetes.Interface
	// Routes, when set, may read VirtualServices (a server's admin
	// client): the node then passes the east-west gateway's istiod ports
	// through (EastWestPassthrough); agents do not.
	Routes dynamic.Interface
}

// Native configures the native pods of a node.
type Native struct {
	ImagesDir string
	StateDir  string // <data-dir>/agent/native-pods
	LogDir    string // /var/log/pods
	API       native.APIEndpoint
	// CNIBinDir and CNIBridge are the CNI plugins' folder and the pod
	// bridge; CNIDir holds host-local's allocations and libcni's cache
	// (<data-dir>/agent/cni). Without CNIBinDir, native pods share the
	// node's network namespace.
	CNIBinDir, CNIBridge, CNIDir string
}

// NewNative configures native pods with kubelet's layout under dataDir:
// <dataDir>/agent/native-pods holds their volumes and state,
// <dataDir>/agent/cni the CNI plugins' state.
func NewNative(imagesDir, dataDir, logDir, cniBinDir, cniBridge string, api native.APIEndpoint) *Native {
	return &Native{ImagesDir: imagesDir, StateDir: filepath.Join(dataDir, "agent", "native-pods"), LogDir: logDir, API: api,
		CNIBinDir: cniBinDir, CNIBridge: cniBridge, CNIDir: filepath.Join(dataDir, "agent", "cni")}
}

// KubeletAPI configures the node's kubelet API on <IP>:Port.
type KubeletAPI struct {
	Port                          int
	ServingCertPEM, ServingKeyPEM []byte
	ClientCAPEM                   []byte
}

func (n *Node) kubeletPort() int32 {
	if n.KubeletAPI != nil {
		return int32(n.KubeletAPI.Port)
	}
	return 10250
}

// Run registers the node, keeps it Ready, and runs the pod simulator until
// ctx ends.
func (n *Node) Run(ctx context.Context) error {
	if err := n.register(ctx); err != nil {
		return err
	}
	if n.Registered != nil {
		n.Registered()
	}
	if err := n.updateStatus(ctx); err != nil {
		n.Logf("node %s: first status update (will retry): %v", n.Name, err)
	}
	errc := make(chan error, 1)
	go func() {
		p := &pods{node: n}
		errc <- p.run(ctx)
	}()
	if n.NodesClient != nil {
		go func() {
			routes := &Routes{Client: n.NodesClient, Name: n.Name, Logf: n.Logf}
			if err := routes.Run(ctx); err != nil && ctx.Err() == nil {
				n.Logf("node %s: routes: %v", n.Name, err)
			}
		}()
	} else {
		n.Logf("node %s: no routes to other nodes' pod CIDRs (an agent may not list Nodes)", n.Name)
	}
	if n.Routes != nil {
		go func() {
			ew := &EastWestPassthrough{Client: n.Client, Routes: n.Routes, NodeIP: n.IP, Logf: n.Logf}
			if err := ew.Run(ctx); err != nil && ctx.Err() == nil {
				n.Logf("node %s: east-west passthrough (simulated): %v", n.Name, err)
			}
		}()
	} else {
		n.Logf("node %s: no east-west passthrough (simulated): an agent may not read VirtualServices", n.Name)
	}
	go wait.UntilWithContext(ctx, func(ctx context.Context) {
		if err := n.renewLease(ctx); err != nil {
			n.Logf("node %s: renew lease: %v", n.Name, err)
		}
	}, leaseRenew)
	go wait.UntilWithContext(ctx, func(ctx context.Context) {
		if err := n.updateStatus(ctx); err != nil {
			n.Logf("node %s: update status: %v", n.Name, err)
		}
	}, statusInterval)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		// The pod simulator stops the native processes before it returns.
		<-errc
		return nil
	}
}

func (n *Node) register(ctx context.Context) error {
	labels := map[string]string{
		corev1.LabelHostname:               n.Name,
		corev1.LabelOSStable:               "linux",
		corev1.LabelArchStable:             runtime.GOARCH,
		"beta.kubernetes.io/os":            "linux",
		"beta.kubernetes.io/arch":          runtime.GOARCH,
		corev1.LabelInstanceTypeStable:     "k3s",
		"beta.kubernetes.io/instance-type": "k3s",
	}
	for k, v := range n.Labels {
		labels[k] = v
	}
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:   n.Name,
			Labels: labels,
			Annotations: map[string]string{
				"k3s.io/internal-ip":           n.IP,
				"k3s.io/hostname":              n.Name,
				"node.alpha.kubernetes.io/ttl": "0",
				"volumes.kubernetes.io/controller-managed-attach-detach": "true",
				"k3s.io/standin": n.standinNote(),
			},
		},
		Spec: corev1.NodeSpec{ProviderID: "k3s://" + n.Name},
	}
	return wait.PollUntilContextTimeout(ctx, time.Second, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := n.Client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
		switch {
		case err == nil:
			n.Logf("node %s: registered", n.Name)
			return true, nil
		case apierrors.IsAlreadyExists(err):
			return true, nil
		default:
			n.Logf("node %s: register (will retry): %v", n.Name, err)
			return false, nil
		}
	})
}

func (n *Node) standinNote() string {
	if n.Native == nil {
		return "simulated kubelet; no containers run"
	}
	return "simulated kubelet; pods whose images have executables in " + n.Native.ImagesDir + " run natively, others are simulated"
}

// capacity is what the node reports as capacity and allocatable.
func capacity() corev1.ResourceList {
	return corev1.ResourceList{
		corev1.ResourceCPU:              resource.MustParse("4"),
		corev1.ResourceMemory:           resource.MustParse("8Gi"),
		corev1.ResourcePods:             resource.MustParse("110"),
		corev1.ResourceEphemeralStorage: resource.MustParse("50Gi"),
	}
}

// updateStatus merge-patches only the node's status, as kubelet patches
// nodes/status: sending the whole object could race with the server adding
// role labels, which NodeRestriction would reject as a label change.
func (n *Node) updateStatus(ctx context.Context) error {
	node, err := n.Client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("simulate: get node %s: %w", n.Name, err)
	}
	st := node.Status.DeepCopy()
	n.fillStatus(st)
	patch, err := json.Marshal(map[string]any{"status": st})
	if err != nil {
		return fmt.Errorf("simulate: encode node %s status: %w", n.Name, err)
	}
	if _, err := n.Client.CoreV1().Nodes().PatchStatus(ctx, n.Name, patch); err != nil {
		return fmt.Errorf("simulate: patch node %s status: %w", n.Name, err)
	}
	return nil
}

func (n *Node) fillStatus(st *corev1.NodeStatus) {
	now := metav1.Now()
	cond := func(t corev1.NodeConditionType, s corev1.ConditionStatus, reason, msg string) corev1.NodeCondition {
		c := corev1.NodeCondition{Type: t, Status: s, Reason: reason, Message: msg, LastHeartbeatTime: now, LastTransitionTime: now}
		for _, old := range st.Conditions {
			if old.Type == t && old.Status == s {
				c.LastTransitionTime = old.LastTransitionTime
			}
		}
		return c
	}
	st.Conditions = []corev1.NodeCondition{
		cond(corev1.NodeMemoryPressure, corev1.ConditionFalse, "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
		cond(corev1.NodeDiskPressure, corev1.ConditionFalse, "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
		cond(corev1.NodePIDPressure, corev1.ConditionFalse, "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
		cond(corev1.NodeReady, corev1.ConditionTrue, "KubeletReady", "kubelet is posting ready status (simulated by k3s-standin)"),
	}
	st.Capacity = capacity()
	st.Allocatable = capacity()
	st.Addresses = []corev1.NodeAddress{
		{Type: corev1.NodeInternalIP, Address: n.IP},
		{Type: corev1.NodeHostName, Address: n.Name},
	}
	st.DaemonEndpoints = corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: n.kubeletPort()}}
	st.NodeInfo = corev1.NodeSystemInfo{
		MachineID:               "standin-" + n.Name,
		SystemUUID:              "standin-" + n.Name,
		BootID:                  "standin-" + n.Name,
		KernelVersion:           "standin",
		OSImage:                 "k3s-standin",
		ContainerRuntimeVersion: "containerd://standin",
		KubeletVersion:          n.KubeletVersion,
		KubeProxyVersion:        "",
		OperatingSystem:         "linux",
		Architecture:            runtime.GOARCH,
	}
}

func (n *Node) renewLease(ctx context.Context) error {
	leases := n.Client.CoordinationV1().Leases(corev1.NamespaceNodeLease)
	now := metav1.NewMicroTime(time.Now())
	lease, err := leases.Get(ctx, n.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		node, err := n.Client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("simulate: get node %s for lease owner: %w", n.Name, err)
		}
		secs := int32(leaseDuration.Seconds())
		holder := n.Name
		_, err = leases.Create(ctx, &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{
				Name:      n.Name,
				Namespace: corev1.NamespaceNodeLease,
				OwnerReferences: []metav1.OwnerReference{{
					APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID,
				}},
			},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &secs, RenewTime: &now},
		}, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("simulate: create lease %s: %w", n.Name, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("simulate: get lease %s: %w", n.Name, err)
	}
	lease.Spec.RenewTime = &now
	if _, err := leases.Update(ctx, lease, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("simulate: renew lease %s: %w", n.Name, err)
	}
	return nil
}
