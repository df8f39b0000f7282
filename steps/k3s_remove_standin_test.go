package steps

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/clientcmd"

	"mcplan.io/mcplan/testbed"
)

// TestWaitEtcdFinalizerOnStandin: against a real kube-apiserver (the k3s
// stand-in, one server without an etcd cluster, so its Node has no etcd
// finalizer), the wait before a leaving server's Node is deleted times
// out naming the missing finalizer, and ends once k3s's etcd finalizer is
// on the Node (as k3s's etcd controller puts it, a moment after the Node
// registers and becomes Ready).
func TestWaitEtcdFinalizerOnStandin(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bin := testbed.StandinBinary(t)
	testbed.HoldMachineLock(t, "etcdfinalizer-standin")
	s := testbed.StartStandinServer(t, ctx, bin, "etcdfin", "127.0.0.53")
	cs := s.AdminClient(t, ctx)
	node := "etcdfin-server"
	cfg, err := clientcmd.BuildConfigFromFlags("", s.K3sYAML)
	if err != nil {
		t.Fatal(err)
	}
	if err := waitNodeReady(ctx, cfg, node, 2*time.Minute); err != nil {
		t.Fatal(err)
	}

	err = waitEtcdFinalizer(ctx, cs, node, time.Second)
	if err == nil || !strings.Contains(err.Error(), k3sEtcdFinalizer) || !strings.Contains(err.Error(), "would leave its etcd member") {
		t.Fatalf("wait on a Node without the etcd finalizer: %v, want a timeout naming %s", err, k3sEtcdFinalizer)
	}

	patch := func(finalizers []string) error {
		body, err := json.Marshal(map[string]any{"metadata": map[string]any{"finalizers": finalizers}})
		if err != nil {
			return err
		}
		_, err = cs.CoreV1().Nodes().Patch(ctx, node, types.MergePatchType, body, metav1.PatchOptions{})
		return err
	}
	t.Cleanup(func() { _ = patch(nil) })
	added := make(chan error, 1)
	go func() {
		time.Sleep(500 * time.Millisecond)
		added <- patch([]string{k3sEtcdFinalizer})
	}()
	if err := waitEtcdFinalizer(ctx, cs, node, time.Minute); err != nil {
		t.Fatalf("wait while the finalizer is added: %v", err)
	}
	if err := <-added; err != nil {
		t.Fatalf("add the finalizer: %v", err)
	}
}
