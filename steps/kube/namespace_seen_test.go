package kube

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestNamespaceSeen(t *testing.T) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "istio-system"}, Status: corev1.NamespaceStatus{Phase: corev1.NamespaceTerminating,
		Conditions: []corev1.NamespaceCondition{
			{Type: corev1.NamespaceDeletionDiscoveryFailure, Status: corev1.ConditionFalse, Message: "all resources discovered"},
			{Type: corev1.NamespaceContentRemaining, Status: corev1.ConditionTrue, Message: "Some resources are remaining: pods. has 1 resource instances"},
		}}}
	want := "namespace istio-system is Terminating; NamespaceContentRemaining: Some resources are remaining: pods. has 1 resource instances"
	if got := namespaceSeen(ns); got != want {
		t.Errorf("namespaceSeen = %q, want %q", got, want)
	}
}
