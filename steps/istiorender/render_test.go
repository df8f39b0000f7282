package istiorender

import (
	"context"
	"strings"
	"testing"
	"time"

	"mcplan.io/mcplan/internal/golden"
)

func testCluster(name, network string) Cluster {
	return Cluster{
		Mesh: "mesh1", Cluster: name, Network: network,
		MeshConfig: map[string]any{"accessLogFile": "/dev/stdout", "accessLogEncoding": "JSON"},
		// A user value mcplan does not set, and one it overrides.
		Values: map[string]any{
			"pilot":  map[string]any{"traceSampling": 1.0},
			"global": map[string]any{"network": "user-network", "logAsJson": true},
		},
	}
}

func TestRenderGolden(t *testing.T) {
	cases := []struct {
		name string
		op   map[string]any
		// minObjects guards against a render that silently drops components.
		minObjects int
	}{
		{"primary", ControlPlane{Cluster: testCluster("cluster1", "network1")}.IstioOperator(), 30},
		{"primary-external-istiod", ControlPlane{Cluster: testCluster("cluster1", "network1"), ExternalIstiod: true}.IstioOperator(), 30},
		{"remote", ControlPlane{Cluster: testCluster("cluster2", "network1"), RemotePilotAddress: "192.0.2.31"}.IstioOperator(), 10},
		// A remote of revision r2: its injector and its Service istiod-r2
		// (through which its API server calls the primary's istiod-r2).
		{"remote-revision", ControlPlane{Cluster: func() Cluster {
			c := testCluster("cluster2", "network1")
			c.Revision = "r2"
			return c
		}(), RemotePilotAddress: "192.0.2.31"}.IstioOperator(), 10},
		{"eastwest", EastWest{Cluster: testCluster("cluster1", "network1")}.IstioOperator(), 5},
		{"eastwest-address", EastWest{Cluster: testCluster("cluster2", "network2"), Address: "192.0.2.32"}.IstioOperator(), 5},
		{"primary-hub-tag-revision", ControlPlane{Cluster: func() Cluster {
			c := testCluster("cluster1", "network1")
			c.Hub, c.Tag, c.Revision = "registry.example/istio", "1.31.0-distroless", "canary"
			return c
		}()}.IstioOperator(), 30},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // renders of several clusters run at once in an apply
			start := time.Now()
			m, err := Render(context.Background(), tc.op)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %d objects in %s", tc.name, len(m.Objects), time.Since(start).Round(time.Millisecond))
			if len(m.Objects) < tc.minObjects {
				t.Errorf("%d objects, want at least %d", len(m.Objects), tc.minObjects)
			}
			for _, w := range m.Warnings {
				t.Logf("warning: %s", w)
			}
			golden.Check(t, "testdata/"+tc.name+".txt", Summary(m))
		})
	}
}

func TestRenderUsesPlanValues(t *testing.T) {
	m, err := Render(context.Background(), ControlPlane{Cluster: testCluster("cluster1", "network1")}.IstioOperator())
	if err != nil {
		t.Fatal(err)
	}
	s := Summary(m)
	for _, want := range []string{
		"meshID=mesh1 clusterName=cluster1 network=network1", // ours win over the user's global.network
		"hub=" + DefaultHub + " tag=" + DefaultTag,
		"image=" + DefaultHub + "/pilot:" + DefaultTag,
		"accessLogFile=/dev/stdout",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("summary lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "registry.istio.io/testing") || strings.Contains(s, ":latest") {
		t.Errorf("the chart's testing registry leaked through:\n%s", s)
	}
	if got, _, _ := nestedString(m.Values, "spec", "values", "pilot", "traceSampling"); got != "1" {
		t.Errorf("user value pilot.traceSampling = %q, want kept", got)
	}
}

func TestEastWestIstioOperator(t *testing.T) {
	m, err := Render(context.Background(), EastWest{Cluster: testCluster("cluster1", "network1"), Address: "192.0.2.31"}.IstioOperator())
	if err != nil {
		t.Fatal(err)
	}
	var svc, dep bool
	for _, o := range m.Objects {
		switch {
		case o.GetKind() == "Service" && o.GetName() == EastWestGatewayName:
			svc = true
			line := objectLine(o)
			for _, want := range []string{"type=LoadBalancer", "status-port:15021", "tls:15443", "tls-istiod:15012", "tls-webhook:15017", "externalIPs=192.0.2.31"} {
				if !strings.Contains(line, want) {
					t.Errorf("Service: %q lacks %q", line, want)
				}
			}
			if l := o.GetLabels(); l["istio"] != "eastwestgateway" || l["app"] != EastWestGatewayName || l[NetworkLabel] != "network1" {
				t.Errorf("Service labels %v", l)
			}
		case o.GetKind() == "Deployment" && o.GetName() == EastWestGatewayName:
			dep = true
			if line := objectLine(o); !strings.Contains(line, "ISTIO_META_REQUESTED_NETWORK_VIEW=network1") {
				t.Errorf("Deployment: %q lacks the network view", line)
			}
		}
	}
	if !svc || !dep {
		t.Errorf("Service %v, Deployment %v: want both", svc, dep)
	}
}

func TestMergeValues(t *testing.T) {
	user := map[string]any{"global": map[string]any{"a": 1, "network": "x"}, "list": []any{1}}
	ours := map[string]any{"global": map[string]any{"network": "n1"}}
	got := MergeValues(user, ours)
	g := got["global"].(map[string]any)
	if g["a"] != 1 || g["network"] != "n1" {
		t.Errorf("merged global %v", g)
	}
	g["a"] = 2
	if user["global"].(map[string]any)["a"] != 1 {
		t.Error("MergeValues modified its input")
	}
}
