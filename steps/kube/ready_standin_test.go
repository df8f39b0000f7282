package kube

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/clientcmd"

	"mcplan.io/mcplan/testbed"
)

// standinClient starts a k3s stand-in (a real kube-apiserver, etcd and
// controller-manager; its node marks pods Running and Ready) for the
// test and returns a Client of it.
func standinClient(t *testing.T, ctx context.Context) *Client {
	t.Helper()
	bin := testbed.StandinBinary(t)
	testbed.HoldMachineLock(t, "kube-standin")
	s := testbed.StartStandinServer(t, ctx, bin, "kstatus", "127.0.0.50")
	s.AdminClient(t, ctx) // the API answers
	cfg, err := clientcmd.BuildConfigFromFlags("", s.K3sYAML)
	if err != nil {
		t.Fatal(err)
	}
	c, err := New("kstatus", cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestWaitCurrentOnStandin waits by kstatus against a real API server: a
// Deployment the controllers roll out is Current (Apply's WaitCurrent
// returns); a StatefulSet whose pod no node can take times out, the
// error naming it with kstatus's status and message and the pod's
// Unschedulable condition; a custom resource is Current only once its
// Ready condition, set through the status subresource, is True. Apply
// sends what needs no CRD before the CRDs, and their custom resources
// once they are Established.
func TestWaitCurrentOnStandin(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	c := standinClient(t, ctx)
	logf := t.Logf

	deployment := parseObjects(t, "deployment", `
apiVersion: v1
kind: Namespace
metadata: {name: kstatus}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: kstatus}
spec:
  replicas: 2
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec:
      containers: [{name: api, image: registry.invalid/api:1}]
`)
	if _, err := c.Apply(ctx, deployment, ApplyOptions{Logf: logf, WaitCurrent: 2 * time.Minute}); err != nil {
		t.Fatalf("Apply with WaitCurrent of a Deployment the stand-in rolls out: %v", err)
	}
	live, err := c.Get(ctx, Ref{Group: "apps", Version: "v1", Kind: "Deployment", Namespace: "kstatus", Name: "api"})
	if err != nil || live == nil {
		t.Fatalf("Deployment: %v", err)
	}
	if ok, why := IsCurrent(live); !ok {
		t.Fatalf("WaitCurrent returned, but the Deployment is not Current: %s", why)
	}
	if available, _, _ := unstructured.NestedInt64(live.Object, "status", "availableReplicas"); available != 2 {
		t.Errorf("Deployment Current with %d available replicas, want 2", available)
	}

	statefulSet := parseObjects(t, "statefulset", testbed.UnschedulableStatefulSet("kstatus"))
	const timeout = 20 * time.Second
	start := time.Now()
	_, err = c.Apply(ctx, statefulSet, ApplyOptions{Logf: logf, WaitCurrent: timeout})
	took := time.Since(start)
	var te *TimeoutError
	if !errors.As(err, &te) {
		t.Fatalf("Apply of an unschedulable StatefulSet with WaitCurrent: %v, want a TimeoutError", err)
	}
	if took > timeout+15*time.Second {
		t.Errorf("the wait took %s, beyond its timeout of %s", took, timeout)
	}
	msg := err.Error()
	t.Logf("the error: %s", msg)
	for _, want := range []string{"StatefulSet kstatus/db: InProgress: Ready: 0/1", "Unschedulable"} {
		if !strings.Contains(msg, want) {
			t.Errorf("the error does not say %q", want)
		}
	}
	if strings.Contains(te.Seen, "Deployment") {
		t.Errorf("the error names the Deployment, which is Current: %s", te.Seen)
	}

	widgets := parseObjects(t, "widgets", `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.mcplan.io}
spec:
  group: example.mcplan.io
  names: {kind: Widget, plural: widgets, singular: widget}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
---
apiVersion: example.mcplan.io/v1
kind: Widget
metadata: {name: blue, namespace: kstatus}
spec: {size: 1}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: widget-settings, namespace: kstatus}
data: {size: "1"}
`)
	// Applied tells each object once, in the apply's order: what needs
	// no CRD (the ConfigMap) first, then the CRD, then its Widget.
	var order []string
	if _, err := c.Apply(ctx, widgets, ApplyOptions{Logf: logf, Applied: func(r Ref) { order = append(order, r.Kind) }}); err != nil {
		t.Fatalf("Apply of a CRD and its custom resource (the CRD waited for until Current): %v", err)
	}
	if got, want := strings.Join(order, " "), "ConfigMap CustomResourceDefinition Widget"; got != want {
		t.Errorf("Applied in the order %q, want %q", got, want)
	}
	widget := Ref{Group: "example.mcplan.io", Version: "v1", Kind: "Widget", Namespace: "kstatus", Name: "blue"}
	setReady := func(status, reason, message string) {
		t.Helper()
		patch := `{"status":{"observedGeneration":1,"conditions":[{"type":"Ready","status":"` + status + `","reason":"` + reason + `","message":"` + message + `"}]}}`
		gvr := schema.GroupVersionResource{Group: "example.mcplan.io", Version: "v1", Resource: "widgets"}
		if _, err := c.Dynamic.Resource(gvr).Namespace("kstatus").Patch(ctx, "blue", types.MergePatchType, []byte(patch), metav1.PatchOptions{}, "status"); err != nil {
			t.Fatalf("set the Widget's Ready condition: %v", err)
		}
	}
	setReady("False", "BackendUnreachable", "backend does not answer")
	err = c.WaitCurrent(ctx, []Ref{widget}, 3*time.Second, logf)
	if err == nil || !strings.Contains(err.Error(), "Widget kstatus/blue: InProgress: backend does not answer") {
		t.Errorf("WaitCurrent of a Widget with Ready=False: %v, want it named with its condition's message", err)
	}
	setReady("True", "BackendAnswers", "")
	if err := c.WaitCurrent(ctx, []Ref{widget}, 30*time.Second, logf); err != nil {
		t.Errorf("WaitCurrent of a Widget with Ready=True: %v", err)
	}
}
