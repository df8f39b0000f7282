package native

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	podresource "k8s.io/kubernetes/pkg/api/v1/resource"
	"k8s.io/kubernetes/pkg/fieldpath"
	"k8s.io/kubernetes/third_party/forked/golang/expansion"
)

// APIEndpoint is where the processes reach the Kubernetes API: the
// kubernetes Service's cluster IP is not routable on the test hosts, so
// KUBERNETES_SERVICE_HOST/PORT name an address that serves the API with a
// certificate for that address under the cluster's server CA (the
// supervisor on :6443).
type APIEndpoint struct {
	Host string
	Port int
}

// envBuilder resolves a container's environment the way kubelet's
// makeEnvironmentVariables does.
type envBuilder struct {
	client      kubernetes.Interface
	pod         *corev1.Pod
	nodeIP      string
	podIP       string
	allocatable corev1.ResourceList
	api         APIEndpoint
	configMaps  map[string]*corev1.ConfigMap
	secrets     map[string]*corev1.Secret
}

func newEnvBuilder(client kubernetes.Interface, pod *corev1.Pod, nodeIP, podIP string, allocatable corev1.ResourceList, api APIEndpoint) *envBuilder {
	return &envBuilder{client: client, pod: pod, nodeIP: nodeIP, podIP: podIP, allocatable: allocatable, api: api,
		configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{}}
}

// serviceEnv is the kubernetes Service's env, which kubelet always adds
// (other Services' links are not added: their cluster IPs are not
// routable here).
func (b *envBuilder) serviceEnv() map[string]string {
	host, port := b.api.Host, strconv.Itoa(b.api.Port)
	url := "tcp://" + net.JoinHostPort(host, port)
	return map[string]string{
		"KUBERNETES_SERVICE_HOST":       host,
		"KUBERNETES_SERVICE_PORT":       port,
		"KUBERNETES_SERVICE_PORT_HTTPS": port,
		"KUBERNETES_PORT":               url,
		"KUBERNETES_PORT_443_TCP":       url,
		"KUBERNETES_PORT_443_TCP_PROTO": "tcp",
		"KUBERNETES_PORT_443_TCP_PORT":  port,
		"KUBERNETES_PORT_443_TCP_ADDR":  host,
	}
}

// build returns the container's environment as a map: envFrom, then env
// (with $(VAR) expansion against the variables defined so far and the
// service env), then the service env, then HOSTNAME = pod name.
func (b *envBuilder) build(ctx context.Context, c *corev1.Container) (map[string]string, error) {
	vars := map[string]string{}
	service := b.serviceEnv()
	for _, from := range c.EnvFrom {
		switch {
		case from.ConfigMapRef != nil:
			cm, err := b.configMap(ctx, from.ConfigMapRef.Name, from.ConfigMapRef.Optional)
			if err != nil {
				return nil, err
			}
			if cm == nil {
				continue
			}
			for k, v := range cm.Data {
				vars[from.Prefix+k] = v
			}
		case from.SecretRef != nil:
			s, err := b.secret(ctx, from.SecretRef.Name, from.SecretRef.Optional)
			if err != nil {
				return nil, err
			}
			if s == nil {
				continue
			}
			for k, v := range s.Data {
				vars[from.Prefix+k] = string(v)
			}
		}
	}
	mapping := expansion.MappingFuncFor(vars, service)
	for _, e := range c.Env {
		v := e.Value
		if v != "" {
			vars[e.Name] = expansion.Expand(v, mapping)
			continue
		}
		if e.ValueFrom == nil {
			vars[e.Name] = ""
			continue
		}
		v, ok, err := b.valueFrom(ctx, c, e.ValueFrom)
		if err != nil {
			return nil, fmt.Errorf("env %s: %w", e.Name, err)
		}
		if ok {
			vars[e.Name] = v
		}
	}
	for k, v := range service {
		if _, set := vars[k]; !set {
			vars[k] = v
		}
	}
	if _, set := vars["HOSTNAME"]; !set {
		vars["HOSTNAME"] = podHostname(b.pod)
	}
	return vars, nil
}

// valueFrom resolves one env source; ok is false for a missing optional
// key, which leaves the variable unset.
func (b *envBuilder) valueFrom(ctx context.Context, c *corev1.Container, from *corev1.EnvVarSource) (string, bool, error) {
	switch {
	case from.FieldRef != nil:
		v, err := b.fieldRef(from.FieldRef.FieldPath)
		return v, err == nil, err
	case from.ResourceFieldRef != nil:
		v, err := b.resourceFieldRef(c, from.ResourceFieldRef)
		return v, err == nil, err
	case from.ConfigMapKeyRef != nil:
		ref := from.ConfigMapKeyRef
		cm, err := b.configMap(ctx, ref.Name, ref.Optional)
		if err != nil || cm == nil {
			return "", false, err
		}
		if v, ok := cm.Data[ref.Key]; ok {
			return v, true, nil
		}
		if isTrue(ref.Optional) {
			return "", false, nil
		}
		return "", false, fmt.Errorf("couldn't find key %s in ConfigMap %s/%s", ref.Key, b.pod.Namespace, ref.Name)
	case from.SecretKeyRef != nil:
		ref := from.SecretKeyRef
		s, err := b.secret(ctx, ref.Name, ref.Optional)
		if err != nil || s == nil {
			return "", false, err
		}
		if v, ok := s.Data[ref.Key]; ok {
			return string(v), true, nil
		}
		if isTrue(ref.Optional) {
			return "", false, nil
		}
		return "", false, fmt.Errorf("couldn't find key %s in Secret %s/%s", ref.Key, b.pod.Namespace, ref.Name)
	}
	return "", false, fmt.Errorf("unsupported env source (the stand-in handles fieldRef, resourceFieldRef, configMapKeyRef and secretKeyRef)")
}

// fieldRef is kubelet's podFieldSelectorRuntimeValue: host IPs are the
// node IP, pod IPs the pod's (the node IP for hostNetwork pods).
func (b *envBuilder) fieldRef(path string) (string, error) {
	switch path {
	case "spec.nodeName":
		return b.pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return b.pod.Spec.ServiceAccountName, nil
	case "status.hostIP", "status.hostIPs":
		return b.nodeIP, nil
	case "status.podIP", "status.podIPs":
		return b.podIP, nil
	}
	return fieldpath.ExtractFieldPathAsString(b.pod, path)
}

// resourceFieldRef defaults unset limits to the node's allocatable, as
// kubelet does for the downward API.
func (b *envBuilder) resourceFieldRef(c *corev1.Container, fs *corev1.ResourceFieldSelector) (string, error) {
	if fs.ContainerName == "" || fs.ContainerName == c.Name {
		defaulted := c.DeepCopy()
		podresource.MergeContainerResourceLimits(defaulted, b.allocatable)
		return podresource.ExtractContainerResourceValue(fs, defaulted)
	}
	return podresource.ExtractResourceValueByContainerNameAndNodeAllocatable(fs, b.pod, fs.ContainerName, b.allocatable)
}

// configMap returns the named ConfigMap of the pod's namespace, nil when it
// is missing and optional.
func (b *envBuilder) configMap(ctx context.Context, name string, optional *bool) (*corev1.ConfigMap, error) {
	if cm, ok := b.configMaps[name]; ok {
		return cm, nil
	}
	cm, err := b.client.CoreV1().ConfigMaps(b.pod.Namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) && isTrue(optional) {
		b.configMaps[name] = nil
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get ConfigMap %s/%s: %w", b.pod.Namespace, name, err)
	}
	b.configMaps[name] = cm
	return cm, nil
}

// secret returns the named Secret of the pod's namespace, nil when it is
// missing and optional.
func (b *envBuilder) secret(ctx context.Context, name string, optional *bool) (*corev1.Secret, error) {
	if s, ok := b.secrets[name]; ok {
		return s, nil
	}
	s, err := b.client.CoreV1().Secrets(b.pod.Namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) && isTrue(optional) {
		b.secrets[name] = nil
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get Secret %s/%s: %w", b.pod.Namespace, name, err)
	}
	b.secrets[name] = s
	return s, nil
}

func isTrue(b *bool) bool { return b != nil && *b }

// envList turns the map into sorted KEY=VALUE entries for exec.
func envList(vars map[string]string) []string {
	out := make([]string, 0, len(vars))
	for k, v := range vars {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// expander resolves $(VAR) in command and args against the environment.
func expander(vars map[string]string) func(string) string {
	mapping := expansion.MappingFuncFor(vars)
	return func(s string) string { return expansion.Expand(s, mapping) }
}

// podHostname is what a pod's containers see as HOSTNAME: spec.hostname,
// else the pod name (the process runs in the node's UTS namespace, so
// gethostname(2) returns the node's name).
func podHostname(pod *corev1.Pod) string {
	if pod.Spec.Hostname != "" {
		return pod.Spec.Hostname
	}
	return pod.Name
}
