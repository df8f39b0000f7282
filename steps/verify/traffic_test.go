package verify

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"mcplan.io/mcplan/plans"
)

// recorded replays recorded curl outputs per source cluster, in turn.
type recorded struct {
	responses map[string][]string // "" entries stand for a failed request
	calls     map[string]int
}

func (r *recorded) Curl(_ context.Context, cluster, pod, url string) (string, error) {
	if pod == "" || url != SampleURL {
		return "", fmt.Errorf("unexpected call: pod %q url %q", pod, url)
	}
	rs := r.responses[cluster]
	i := r.calls[cluster]
	r.calls[cluster]++
	body := rs[i%len(rs)]
	if body == "" {
		return "", errors.New("curl: (56) Recv failure: Connection reset by peer")
	}
	return body, nil
}

func trafficPlan(model string, networks ...string) *plans.Plan {
	p := &plans.Plan{}
	m := plans.Mesh{Name: "mesh1", Model: model}
	for i, n := range networks {
		name := fmt.Sprintf("cluster%d", i+1)
		p.Clusters = append(p.Clusters, plans.Cluster{Name: name, Network: n})
		m.Clusters = append(m.Clusters, name)
	}
	if model == plans.ModelPrimaryRemote {
		m.Primaries = []string{"cluster1"}
	}
	p.Meshes = []plans.Mesh{m}
	return p
}

func TestParseHello(t *testing.T) {
	for _, tc := range []struct {
		body, version string
		ok            bool
	}{
		{"Hello version: v1, instance: helloworld-v1-776f57d5f6-s7zfc\n", "v1", true},
		{"Hello version: v2, instance: helloworld-v2-54df5f84b-9hxgx", "v2", true},
		{"upstream connect error or disconnect/reset before headers. reset reason: connection failure", "", false},
		{"no healthy upstream", "", false},
		{"Hello version: , instance: x", "", false},
	} {
		v, ok := ParseHello(tc.body)
		if v != tc.version || ok != tc.ok {
			t.Errorf("ParseHello(%q) = %q, %v; want %q, %v", tc.body, v, ok, tc.version, tc.ok)
		}
	}
}

func TestTrafficCountsAndHints(t *testing.T) {
	v1 := "Hello version: v1, instance: helloworld-v1-776f57d5f6-s7zfc\n"
	v2 := "Hello version: v2, instance: helloworld-v2-54df5f84b-9hxgx\n"
	reset := "upstream connect error or disconnect/reset before headers. reset reason: connection failure"
	for _, tc := range []struct {
		name      string
		plan      *plans.Plan
		responses map[string][]string
		// per source cluster: "" when OK, else substrings of the detail
		want map[string][]string
		// counts expected in the detail
		counts map[string]string
	}{
		{
			name:      "both versions from both clusters",
			plan:      trafficPlan(plans.ModelMultiPrimary, "network1", "network2"),
			responses: map[string][]string{"cluster1": {v1, v2}, "cluster2": {v2, v1, v1}},
			want:      map[string][]string{"cluster1": nil, "cluster2": nil},
			counts:    map[string]string{"cluster1": "v1: 5, v2: 5", "cluster2": "v1: 6, v2: 4"},
		},
		{
			name:      "other network never answers",
			plan:      trafficPlan(plans.ModelMultiPrimary, "network1", "network2"),
			responses: map[string][]string{"cluster1": {v1}, "cluster2": {v2, v1}},
			want: map[string][]string{
				"cluster1": {"never answered: v2 (cluster2)", "Secret istio-system/istio-remote-secret-cluster2 in cluster1",
					"topology.istio.io/network=network2 in cluster2", "east-west gateway", "cross-network-gateway",
					"pod IPs", "istioctl proxy-config endpoint sleep-1.sample"},
				"cluster2": nil,
			},
			counts: map[string]string{"cluster1": "v1: 10"},
		},
		{
			name:      "same network: pod routing hint, no gateway hint",
			plan:      trafficPlan(plans.ModelMultiPrimary, "network1", "network1"),
			responses: map[string][]string{"cluster1": {v1}, "cluster2": {v2, v1}},
			want: map[string][]string{
				"cluster1": {"never answered: v2 (cluster2)", "share network network1", "istio-remote-secret-cluster2"},
				"cluster2": nil,
			},
		},
		{
			name:      "primary-remote: the remote's istiod is the primary's",
			plan:      trafficPlan(plans.ModelPrimaryRemote, "network1", "network1"),
			responses: map[string][]string{"cluster1": {v1, v2}, "cluster2": {v2}},
			want: map[string][]string{
				"cluster1": nil,
				"cluster2": {"never answered: v1 (cluster1)", "cluster2's istiod (in cluster1) must read cluster1's endpoints"},
			},
		},
		{
			name:      "nothing answers",
			plan:      trafficPlan(plans.ModelMultiPrimary, "network1", "network2"),
			responses: map[string][]string{"cluster1": {"", reset}, "cluster2": {v2, v1}},
			want: map[string][]string{
				"cluster1": {"never answered: v1 (cluster1), v2 (cluster2)", "10 failed", "Connection reset by peer",
					"unexpected response", "No request from cluster1 got a helloworld answer", "istio-injection=enabled"},
				"cluster2": nil,
			},
		},
		{
			name:      "local version missing",
			plan:      trafficPlan(plans.ModelMultiPrimary, "network1", "network2"),
			responses: map[string][]string{"cluster1": {v2}, "cluster2": {v2, v1}},
			want: map[string][]string{
				"cluster1": {"never answered: v1 (cluster1)", "cluster1's own helloworld-v1 does not answer"},
				"cluster2": nil,
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := New(tc.plan, tc.plan.Meshes[0])
			req := &recorded{responses: tc.responses, calls: map[string]int{}}
			clusters := tc.plan.Meshes[0].Clusters
			pods := map[string]string{}
			for i, c := range clusters {
				pods[c] = fmt.Sprintf("sleep-%d", i+1)
			}
			fs := v.EvaluateTraffic(SendRequests(context.Background(), req, clusters, pods, SampleURL, 10))
			if len(fs) != len(clusters) {
				t.Fatalf("%d findings, want %d", len(fs), len(clusters))
			}
			for _, f := range fs {
				want := tc.want[f.Cluster]
				if f.OK != (want == nil) {
					t.Errorf("%s: OK=%v, want %v: %s", f.Cluster, f.OK, want == nil, f.Detail)
				}
				for _, w := range want {
					if !strings.Contains(f.Detail, w) {
						t.Errorf("%s: detail lacks %q:\n%s", f.Cluster, w, f.Detail)
					}
				}
				if c := tc.counts[f.Cluster]; c != "" && !strings.Contains(f.Detail, "10 requests: "+c) {
					t.Errorf("%s: detail lacks counts %q: %s", f.Cluster, c, f.Detail)
				}
				if f.Check != CheckTraffic || !strings.Contains(f.Object, SampleURL) {
					t.Errorf("finding %+v", f)
				}
			}
			if t.Failed() {
				return
			}
			for _, f := range fs {
				t.Logf("%s OK=%v %s", f.Cluster, f.OK, f.Detail)
			}
		})
	}
}

func TestSampleObjects(t *testing.T) {
	for i, want := range []string{"v1", "v2", "v3"} {
		objs := sampleObjects(i)
		var names []string
		for _, o := range objs {
			names = append(names, o.GetKind()+" "+o.GetName())
		}
		got := strings.Join(names, ", ")
		if exp := "Namespace sample, Service helloworld, Deployment helloworld-" + want + ", ServiceAccount sleep, Deployment sleep"; got != exp {
			t.Errorf("cluster %d: %s, want %s", i, got, exp)
		}
		if objs[0].GetLabels()[injectionLabel] != "enabled" {
			t.Errorf("namespace labels %v", objs[0].GetLabels())
		}
	}
}
