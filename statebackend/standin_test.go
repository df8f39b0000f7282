package statebackend

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"mcplan.io/mcplan/testbed"
)

// These tests keep states in a real kube-apiserver: the testbed's k3s
// stand-in, on a loopback address. TestKubernetesBackend starts one and
// runs the package's API tests as its subtests, each in a namespace of
// its own.

// standinAPI starts a stand-in for the test and returns its admin
// client.
func standinAPI(t *testing.T) kubernetes.Interface {
	t.Helper()
	bin := testbed.StandinBinary(t)
	testbed.HoldMachineLock(t, "statebackend-standin")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return testbed.StartStandinServer(t, ctx, bin, "state", "127.0.0.40").AdminClient(t, ctx)
}

func makeNamespace(t *testing.T, c kubernetes.Interface, name string) {
	t.Helper()
	if _, err := c.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}
