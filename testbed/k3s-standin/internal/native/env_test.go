package native

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestEnvBuilder(t *testing.T) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "istiod-1", Namespace: "istio-system", UID: "u-1",
			Labels: map[string]string{"app": "istiod"}, Annotations: map[string]string{"a": "b"}},
		Spec: corev1.PodSpec{NodeName: "node-1", ServiceAccountName: "istiod"},
	}
	field := func(path string) *corev1.EnvVarSource {
		return &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}
	}
	res := func(r, divisor string) *corev1.EnvVarSource {
		s := &corev1.ResourceFieldSelector{Resource: r}
		if divisor != "" {
			s.Divisor = resource.MustParse(divisor)
		}
		return &corev1.EnvVarSource{ResourceFieldRef: s}
	}
	c := &corev1.Container{
		Name: "discovery",
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("2Gi"), corev1.ResourceCPU: resource.MustParse("500m")},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")},
		},
		Env: []corev1.EnvVar{
			{Name: "POD_NAME", ValueFrom: field("metadata.name")},
			{Name: "POD_NAMESPACE", ValueFrom: field("metadata.namespace")},
			{Name: "POD_UID", ValueFrom: field("metadata.uid")},
			{Name: "APP", ValueFrom: field("metadata.labels['app']")},
			{Name: "ANN", ValueFrom: field("metadata.annotations['a']")},
			{Name: "NODE", ValueFrom: field("spec.nodeName")},
			{Name: "SA", ValueFrom: field("spec.serviceAccountName")},
			{Name: "HOST_IP", ValueFrom: field("status.hostIP")},
			{Name: "POD_IP", ValueFrom: field("status.podIP")},
			{Name: "POD_IPS", ValueFrom: field("status.podIPs")},
			{Name: "GOMAXPROCS", ValueFrom: res("limits.cpu", "")},
			{Name: "GOMEMLIMIT", ValueFrom: res("limits.memory", "")},
			{Name: "REQ_MEM_MI", ValueFrom: res("requests.memory", "1Mi")},
			{Name: "REQ_CPU_M", ValueFrom: res("requests.cpu", "1m")},
			{Name: "GREETING", Value: "$(POD_NAME) in $(POD_NAMESPACE) via $(KUBERNETES_SERVICE_HOST), $(UNDEFINED)"},
			{Name: "EMPTY"},
		},
	}
	alloc := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourceMemory: resource.MustParse("8Gi")}
	env, err := newEnvBuilder(nil, pod, "192.0.2.7", "192.0.2.7", alloc, APIEndpoint{Host: "192.0.2.1", Port: 6443}).build(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{
		"POD_NAME": "istiod-1", "POD_NAMESPACE": "istio-system", "POD_UID": "u-1", "APP": "istiod", "ANN": "b",
		"NODE": "node-1", "SA": "istiod", "HOST_IP": "192.0.2.7", "POD_IP": "192.0.2.7", "POD_IPS": "192.0.2.7",
		"GOMAXPROCS": "4",          // no limit: node allocatable
		"GOMEMLIMIT": "1073741824", // the limit
		"REQ_MEM_MI": "2048", "REQ_CPU_M": "500",
		"GREETING":                "istiod-1 in istio-system via 192.0.2.1, $(UNDEFINED)",
		"EMPTY":                   "",
		"KUBERNETES_SERVICE_HOST": "192.0.2.1", "KUBERNETES_SERVICE_PORT": "6443",
		"KUBERNETES_PORT_443_TCP": "tcp://192.0.2.1:6443",
		"HOSTNAME":                "istiod-1",
	} {
		if got, ok := env[k]; !ok || got != want {
			t.Errorf("%s = %q (set %v), want %q", k, got, ok, want)
		}
	}
}
