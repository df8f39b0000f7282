package testbed

import "fmt"

// UnschedulableStatefulSet is a manifest of a StatefulSet "db" in
// namespace whose pod asks for a node label no node has: it never
// becomes ready, so a wait for it fails with kstatus's reason. The
// manifests tests of steps and of the e2e suite apply it.
func UnschedulableStatefulSet(namespace string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: %s}
spec:
  serviceName: db
  replicas: 1
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      nodeSelector: {mcplan.io/no-such-node: "true"}
      containers: [{name: db, image: registry.invalid/db:1}]
`, namespace)
}
