package kube

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/yaml"

	"mcplan.io/mcplan/internal/golden"
)

// absentAnnotation marks an object of testdata/kstatus that the test
// reads as asked for but not found.
const absentAnnotation = "test.mcplan.io/absent"

// TestKstatusReport turns each testdata/kstatus/*.yaml (live objects,
// "---" between them) into the report of those not Current, compared
// with its .golden file; for a file of one object, IsCurrent must say
// the same.
func TestKstatusReport(t *testing.T) {
	inputs, err := filepath.Glob(filepath.Join("testdata", "kstatus", "*.yaml"))
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no testdata/kstatus/*.yaml: %v", err)
	}
	for _, in := range inputs {
		t.Run(strings.TrimSuffix(filepath.Base(in), ".yaml"), func(t *testing.T) {
			objs := readObjects(t, in)
			var rs []Readiness
			for _, o := range objs {
				live := o
				if o.GetAnnotations()[absentAnnotation] == "true" {
					live = nil
				}
				rs = append(rs, ReadinessOf(RefOf(o), live))
			}
			report := notCurrent(rs)
			got := "(all Current)\n"
			if len(report) > 0 {
				got = strings.Join(report, "\n") + "\n"
			}
			golden.Check(t, strings.TrimSuffix(in, ".yaml")+".golden", got)

			if len(objs) == 1 && objs[0].GetAnnotations()[absentAnnotation] == "" {
				ok, why := IsCurrent(objs[0])
				if ok != (len(report) == 0) || (!ok && why != report[0]) {
					t.Errorf("IsCurrent = %v, %q; the report says %q", ok, why, report)
				}
			}
		})
	}
}

// readObjects reads the objects of a YAML file, "---" between them.
func readObjects(t *testing.T, path string) []*unstructured.Unstructured {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return parseObjects(t, path, string(data))
}

// parseObjects parses YAML objects, "---" between them; from names them
// in errors.
func parseObjects(t *testing.T, from, data string) []*unstructured.Unstructured {
	t.Helper()
	var out []*unstructured.Unstructured
	for _, doc := range strings.Split(data, "\n---\n") {
		// As from the API: JSON, whose integers unstructured makes int64.
		js, err := yaml.YAMLToJSON([]byte(doc))
		if err != nil {
			t.Fatalf("%s: %v", from, err)
		}
		o := &unstructured.Unstructured{}
		if err := o.UnmarshalJSON(js); err != nil {
			t.Fatalf("%s: %v", from, err)
		}
		out = append(out, o)
	}
	return out
}

// TestKeepLastRead: an object whose read failed keeps its last status
// read; one never read yet shows the failed read; one read now is as
// read now.
func TestKeepLastRead(t *testing.T) {
	db := Ref{Group: "apps", Version: "v1", Kind: "StatefulSet", Namespace: "ns", Name: "db"}
	inProgress := Readiness{Ref: db, Status: status.InProgressStatus, Message: "Ready: 0/1"}
	current := Readiness{Ref: db, Status: status.CurrentStatus, Message: "All replicas ready"}
	unread := Readiness{Ref: db, Status: status.UnknownStatus, Message: "rate: Wait(n=1) would exceed context deadline", unread: true}
	for _, tc := range []struct {
		name      string
		last, now []Readiness
		want      Readiness
	}{
		{"read failed, last read kept", []Readiness{inProgress}, []Readiness{unread}, inProgress},
		{"read failed, never read before", nil, []Readiness{unread}, unread},
		{"read failed twice", []Readiness{unread}, []Readiness{unread}, unread},
		{"read now", []Readiness{inProgress}, []Readiness{current}, current},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := keepLastRead(tc.last, tc.now); len(got) != 1 || got[0] != tc.want {
				t.Errorf("keepLastRead = %v, want [%v]", got, tc.want)
			}
		})
	}
}
