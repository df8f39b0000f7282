package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCredentialsListedWithTheirExpiry: verify lists the mesh root and
// the intermediates with their expiry; intermediates made for 30 days
// are within ca.renewBefore (90 days) and warned about, the root is not.
func TestCredentialsListedWithTheirExpiry(t *testing.T) {
	plan := copyExample(t, "walkthrough")
	data, err := os.ReadFile(plan)
	if err != nil {
		t.Fatal(err)
	}
	short := strings.Replace(string(data), "    verify:\n", "    ca: {keySize: 2048, intermediateValidityDays: 30}\n    verify:\n", 1)
	if short == string(data) {
		t.Fatal("the example's mesh has no verify: section to put ca: before")
	}
	if err := os.WriteFile(plan, []byte(short), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := mcplan(t, append(append([]string{"apply"}, caTargets...), plan)...); r.code != 0 {
		t.Fatalf("apply: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	r := mcplan(t, "verify", plan) // no kubeconfigs: the clusters are not contacted
	line := func(what string) string {
		for _, l := range strings.Split(r.stdout, "\n") {
			if strings.Contains(l, what) {
				return strings.Join(strings.Fields(l), " ")
			}
		}
		t.Errorf("verify's credentials lack %s:\n%s", what, r.stdout)
		return ""
	}
	for what, want := range map[string][]string{
		"root CA of mesh mesh1":        {"ok root CA of mesh mesh1", "days left)"},
		"intermediate CA of cluster1":  {"renew soon intermediate CA of cluster1", "(expires in 29 days, within 90 days (renewBefore))", filepath.Join(".mcplan", "ca", "mesh1", "cluster1", "ca-cert.pem")},
		"admin kubeconfig of cluster1": {"not read admin kubeconfig of cluster1", "(missing)"},
	} {
		got := line(what)
		for _, w := range want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: %q lacks %q", what, got, w)
			}
		}
	}
	for _, want := range []string{
		"Warning: the intermediate CA of cluster1 expires in 29 days, within 90 days (renewBefore)",
		"Warning: the intermediate CA of cluster2 expires in 29 days",
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("verify's warnings lack %q:\n%s", want, r.stderr)
		}
	}
	if strings.Contains(r.stderr, "root CA of mesh mesh1 expires") {
		t.Errorf("the root is warned about:\n%s", r.stderr)
	}
}
