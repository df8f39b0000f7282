package istiorender

import (
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// Summary is a stable, readable digest of a rendered install: the values
// that make a cluster part of its mesh, then one line per object (kind,
// namespace/name) with what matters about it (images, network settings,
// Service ports). Golden tests and plan output use it instead of the YAML.
func Summary(m *Manifest) string {
	var b strings.Builder
	v := valuesMap(m.Values)
	str := func(path ...string) string {
		x, ok, _ := unstructured.NestedFieldNoCopy(v, append([]string{"spec", "values"}, path...)...)
		if !ok || x == nil {
			return "-"
		}
		return fmt.Sprint(x)
	}
	fmt.Fprintf(&b, "profile=%s revision=%s\n", str("profile"), str("revision"))
	fmt.Fprintf(&b, "meshID=%s clusterName=%s network=%s\n", str("global", "meshID"), str("global", "multiCluster", "clusterName"), str("global", "network"))
	fmt.Fprintf(&b, "hub=%s tag=%s\n", str("global", "hub"), str("global", "tag"))
	fmt.Fprintf(&b, "externalIstiod=%s remotePilotAddress=%s injectionPath=%s\n", str("global", "externalIstiod"), str("global", "remotePilotAddress"), str("istiodRemote", "injectionPath"))
	fmt.Fprintf(&b, "objects: %d\n", len(m.Objects))
	for _, o := range m.Objects {
		b.WriteString("  " + objectLine(o) + "\n")
	}
	return b.String()
}

func valuesMap(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

// ObjectName is "Kind namespace/name", or "Kind name" for cluster objects.
func ObjectName(o *unstructured.Unstructured) string {
	if o.GetNamespace() == "" {
		return o.GetKind() + " " + o.GetName()
	}
	return o.GetKind() + " " + o.GetNamespace() + "/" + o.GetName()
}

// summaryEnv says which container environment variables Summary shows.
func summaryEnv(name string) bool {
	switch name {
	case "CLUSTER_ID", "ISTIO_META_REQUESTED_NETWORK_VIEW", "EXTERNAL_ISTIOD", "ISTIO_META_NETWORK", "ISTIO_META_CLUSTER_ID":
		return true
	}
	return false
}

func objectLine(o *unstructured.Unstructured) string {
	parts := []string{ObjectName(o)}
	switch o.GetKind() {
	case "Deployment":
		if net := o.GetLabels()[NetworkLabel]; net != "" {
			parts = append(parts, "network-label="+net)
		}
		containers, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
		for _, c := range containers {
			cm, _ := c.(map[string]any)
			parts = append(parts, fmt.Sprintf("image=%v", cm["image"]))
			env, _ := cm["env"].([]any)
			var kept []string
			for _, e := range env {
				em, _ := e.(map[string]any)
				name, _ := em["name"].(string)
				if summaryEnv(name) {
					kept = append(kept, fmt.Sprintf("%s=%v", name, em["value"]))
				}
			}
			sort.Strings(kept)
			parts = append(parts, kept...)
		}
	case "Service":
		typ, _, _ := unstructured.NestedString(o.Object, "spec", "type")
		if typ != "" {
			parts = append(parts, "type="+typ)
		}
		ports, _, _ := unstructured.NestedSlice(o.Object, "spec", "ports")
		var ps []string
		for _, p := range ports {
			pm, _ := p.(map[string]any)
			ps = append(ps, fmt.Sprintf("%v:%v", pm["name"], pm["port"]))
		}
		if len(ps) > 0 {
			parts = append(parts, "ports="+strings.Join(ps, ","))
		}
		if ips, _, _ := unstructured.NestedStringSlice(o.Object, "spec", "externalIPs"); len(ips) > 0 {
			parts = append(parts, "externalIPs="+strings.Join(ips, ","))
		}
	case "EndpointSlice":
		eps, _, _ := unstructured.NestedSlice(o.Object, "endpoints")
		for _, e := range eps {
			em, _ := e.(map[string]any)
			parts = append(parts, fmt.Sprintf("addresses=%v", em["addresses"]))
		}
	case "ConfigMap":
		if o.GetName() == "istio" {
			mesh, _, _ := unstructured.NestedString(o.Object, "data", "mesh")
			var mc map[string]any
			if yaml.Unmarshal([]byte(mesh), &mc) == nil {
				for _, k := range []string{"accessLogFile", "accessLogEncoding", "trustDomain"} {
					if v, ok := mc[k]; ok {
						parts = append(parts, fmt.Sprintf("%s=%v", k, v))
					}
				}
				if dc, ok := mc["defaultConfig"].(map[string]any); ok {
					if id, ok := dc["meshId"]; ok {
						parts = append(parts, fmt.Sprintf("defaultConfig.meshId=%v", id))
					}
				}
			}
		}
	}
	return strings.Join(parts, " ")
}

func nestedString(m map[string]any, path ...string) (string, bool, error) {
	v, ok, err := unstructured.NestedFieldNoCopy(m, path...)
	if !ok || err != nil {
		return "", ok, err
	}
	return fmt.Sprint(v), true, nil
}
