package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"mcplan.io/mcplan/testbed"
	"mcplan.io/mcplan/testbed/internet"
)

// standinAt returns the k3s stand-in built by build.sh with VERSION (a
// build.sh that takes none builds its own) and the version it reports.
func standinAt(t *testing.T, version string) (string, string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(repoRoot(t), "testbed", "k3s-standin", "build.sh"), version)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("build the k3s stand-in %s: %v", version, err)
	}
	bin := strings.TrimSpace(string(out))
	out, err = exec.Command(bin, "--version").Output()
	if err != nil {
		t.Fatalf("%s --version: %v", bin, err)
	}
	fields := strings.Fields(string(out))
	if len(fields) < 3 {
		t.Fatalf("%s --version: %q", bin, out)
	}
	return bin, fields[2]
}

// onlineK3s is a cluster's k3s: section without airgap.
type onlineK3s struct{ version, channel, mirror string }

func (k onlineK3s) yaml() string {
	var b strings.Builder
	for _, kv := range [][2]string{{"version", k.version}, {"channel", k.channel}, {"mirror", k.mirror}} {
		if kv[1] != "" {
			fmt.Fprintf(&b, "      %s: %s\n", kv[0], kv[1])
		}
	}
	return b.String()
}

// writeOnlinePlan writes plan.yaml: cluster1 = server h1, cluster2 =
// server h2 and agent h3, k3s installed online as c1 and c2 say.
func (w *world) writeOnlinePlan(c1, c2 onlineK3s) {
	w.t.Helper()
	h := w.bed.Hosts
	plan := fmt.Sprintf(`apiVersion: mcplan.io/v1alpha1
kind: Plan
metadata: {name: e2e-online}
ssh: {user: root, identityFile: %q, knownHosts: %q, connectTimeout: 3s}
hosts:
  - {name: h1, address: %s}
  - {name: h2, address: %s}
  - {name: h3, address: %s}
networks: [{name: network1}, {name: network2}]
clusters:
  - name: cluster1
    network: network1
    servers: [h1]
    k3s:
%s      args: ["--cluster-cidr=10.42.0.0/16", "--service-cidr=10.43.0.0/16"]
  - name: cluster2
    network: network2
    servers: [h2]
    agents: [h3]
    k3s:
%s      args: ["--cluster-cidr=10.52.0.0/16", "--service-cidr=10.53.0.0/16"]
kubeconfig: {path: ./kubeconfig}
`, w.bed.ClientKeyPath, w.knownHosts, h[0].Address, h[1].Address, h[2].Address, c1.yaml(), c2.yaml())
	if err := os.WriteFile(filepath.Join(w.dir, "plan.yaml"), []byte(plan), 0o644); err != nil {
		w.t.Fatal(err)
	}
}

// fetches is what each host asked the stand-in internet for from request
// n of its access log on: "<status> <url>" per request.
func (w *world) fetches(n int) map[string][]string {
	w.t.Helper()
	reqs, err := w.bed.Internet.Requests()
	if err != nil {
		w.t.Fatal(err)
	}
	byIP := map[string]string{}
	for _, h := range w.bed.Hosts {
		byIP[h.Address] = h.Name
	}
	out := map[string][]string{}
	for _, r := range reqs[n:] {
		ip, _, _ := net.SplitHostPort(r.Remote)
		name, ok := byIP[ip]
		if !ok {
			w.t.Errorf("a request from %s, not a test host: %+v", r.Remote, r)
			name = r.Remote
		}
		out[name] = append(out[name], fmt.Sprintf("%d %s", r.Status, r.URL()))
	}
	return out
}

// requestCount is how many requests the access log holds.
func (w *world) requestCount() int {
	w.t.Helper()
	reqs, err := w.bed.Internet.Requests()
	if err != nil {
		w.t.Fatal(err)
	}
	return len(reqs)
}

func checkFetches(t *testing.T, what string, got, want map[string][]string) {
	t.Helper()
	for _, h := range []string{"h1", "h2", "h3"} {
		if !slices.Equal(got[h], want[h]) {
			t.Errorf("%s: %s fetched\n  %s\nwant\n  %s", what, h, strings.Join(got[h], "\n  "), strings.Join(want[h], "\n  "))
		}
	}
	for h := range got {
		if _, ok := want[h]; !ok && len(got[h]) > 0 {
			t.Errorf("%s: %s fetched %v", what, h, got[h])
		}
	}
}

// nodeVersions is each node's kubeletVersion and its host's k3s --version.
func (w *world) nodeVersions(ctx context.Context) map[string]string {
	w.t.Helper()
	out := map[string]string{}
	for kctx, hosts := range map[string][]testbed.Host{"context-cluster1": w.bed.Hosts[:1], "context-cluster2": w.bed.Hosts[1:]} {
		for _, h := range hosts {
			n, err := w.clientFor(kctx).CoreV1().Nodes().Get(ctx, h.Name, metav1.GetOptions{})
			if err != nil {
				w.t.Fatalf("%s: node %s: %v", kctx, h.Name, err)
			}
			bin := append(strings.Fields(w.ssh(h, "/usr/local/bin/k3s --version | head -n1")), "", "", "")
			out[h.Name] = "kubelet " + n.Status.NodeInfo.KubeletVersion + ", k3s --version " + bin[2]
		}
	}
	return out
}

func checkVersions(t *testing.T, got map[string]string, want string) {
	t.Helper()
	for _, h := range []string{"h1", "h2", "h3"} {
		if got[h] != "kubelet "+want+", k3s --version "+want {
			t.Errorf("%s: %s, want %s", h, got[h], want)
		}
	}
}

// TestOnlineInstallThroughTheStandInInternet is issue 16 item 4: mcplan
// (unchanged) installs and upgrades k3s through the online path on hosts
// whose "internet" is the testbed's stand-in: get.k3s.io's script, the
// channel through update.k3s.io, the release from GitHub, and the China
// mirror (mirror: cn) for cluster2's server and agent. Then a version pin
// on both clusters upgrades them, and another pin on cluster1 takes it
// back. The stand-in's access log says what each host fetched; nothing
// else is reachable from the hosts.
func TestOnlineInstallThroughTheStandInInternet(t *testing.T) {
	skipShort(t)
	const v1, v2 = "v1.37.2+k3s1", "v1.37.3+k3s1"
	bin1, reports1 := standinAt(t, "v1.37.2")
	bin2, reports2 := standinAt(t, "v1.37.3")
	if reports1 != v1 {
		t.Fatalf("the stand-in built for v1.37.2 reports %s", reports1)
	}
	// build.sh VERSION makes a binary per version; one that takes no
	// VERSION builds the same binary for both, served under both names.
	distinct := reports2 == v2
	if !distinct {
		t.Logf("build.sh takes no VERSION here: %s and %s are the same binary (%s), so the upgrades are checked by what the install script fetched and recorded, not by the version the nodes report", v1, v2, reports2)
	}
	w := newWorldWith(t, 3, &internet.Config{
		InstallScript: filepath.Join(repoRoot(t), "testbed", "k3s-install", "install.sh"),
		Releases:      []internet.Release{{Version: v1, Binary: bin1}, {Version: v2, Binary: bin2}},
		Channels:      map[string]string{"stable": v1, "latest": v2},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	t.Logf("stand-in internet on %s; access log %s", w.bed.Internet.Addr, w.bed.Internet.LogFile)

	const (
		gh     = "https://github.com/k3s-io/k3s/releases"
		assets = "https://objects.githubusercontent.com/github-production-release-asset/k3s-io/k3s/"
		cn     = "https://rancher-mirror.rancher.cn/k3s"
	)
	github := func(v, asset string) []string {
		return []string{"302 " + gh + "/download/" + v + "/" + asset, "200 " + assets + v + "/" + asset}
	}
	mirror := func(v, asset string) []string {
		return []string{"200 " + cn + "/" + strings.ReplaceAll(v, "+", "-") + "/" + asset}
	}
	cat := func(parts ...[]string) []string { return slices.Concat(parts...) }

	// cluster1 as most users install: no version, so the stable channel,
	// through update.k3s.io and GitHub. cluster2 from the China mirror.
	w.writeOnlinePlan(onlineK3s{}, onlineK3s{channel: "stable", mirror: "cn"})
	n := w.requestCount()
	w.mustApply(t, ctx, "first apply (online)")
	if got := w.readyNodes(ctx, "context-cluster1"); !slices.Equal(got, []string{"h1"}) {
		t.Errorf("cluster1 Ready nodes %v, want [h1]", got)
	}
	if got := w.readyNodes(ctx, "context-cluster2"); !slices.Equal(got, []string{"h2", "h3"}) {
		t.Errorf("cluster2 Ready nodes %v, want [h2 h3]", got)
	}
	fromMirror := cat([]string{"200 " + cn + "/k3s-install.sh", "200 " + cn + "/channels/stable"}, mirror(v1, "sha256sum-amd64.txt"), mirror(v1, "k3s"))
	checkFetches(t, "first apply", w.fetches(n), map[string][]string{
		"h1": cat([]string{"200 https://get.k3s.io/", "302 https://update.k3s.io/v1-release/channels/stable", "200 " + gh + "/tag/" + v1},
			github(v1, "sha256sum-amd64.txt"), github(v1, "k3s")),
		"h2": fromMirror,
		"h3": fromMirror,
	})
	checkVersions(t, w.nodeVersions(ctx), v1)
	logs := w.commandLogs()
	for h, line := range map[string]string{
		"h1": "k3s " + v1 + ": installed /usr/local/bin/k3s from " + gh + "/download/" + v1 + "/k3s",
		"h2": "k3s " + v1 + ": installed /usr/local/bin/k3s from " + cn + "/v1.37.2-k3s1/k3s",
		"h3": "k3s " + v1 + ": installed /usr/local/bin/k3s from " + cn + "/v1.37.2-k3s1/k3s",
	} {
		if !strings.Contains(logs[h], line) {
			t.Errorf("%s's install log lacks %q:\n%s", h, line, logs[h])
		}
	}

	t.Run("second apply fetches nothing", func(t *testing.T) {
		n := w.requestCount()
		r := w.mustApply(t, ctx, "second apply")
		if ran := r.ran(); len(ran) != 0 {
			t.Errorf("second apply ran %v", ran)
		}
		checkFetches(t, "second apply", w.fetches(n), map[string][]string{})
	})

	t.Run("a version pin upgrades both clusters", func(t *testing.T) {
		w.writeOnlinePlan(onlineK3s{version: v2}, onlineK3s{version: v2, mirror: "cn"})
		n := w.requestCount()
		w.mustApply(t, ctx, "apply pinned to "+v2)
		// The sha256 file always; the binary only when the installed one
		// differs from the release's.
		h1 := cat([]string{"200 https://get.k3s.io/"}, github(v2, "sha256sum-amd64.txt"))
		h23 := cat([]string{"200 " + cn + "/k3s-install.sh"}, mirror(v2, "sha256sum-amd64.txt"))
		if distinct {
			h1, h23 = cat(h1, github(v2, "k3s")), cat(h23, mirror(v2, "k3s"))
		}
		checkFetches(t, "pin "+v2, w.fetches(n), map[string][]string{"h1": h1, "h2": h23, "h3": h23})
		logs := w.commandLogs()
		if distinct {
			eventually(t, time.Minute, "the nodes report "+v2, func() error {
				if got := w.nodeVersions(ctx); got["h1"] != "kubelet "+v2+", k3s --version "+v2 || got["h2"] != got["h1"] || got["h3"] != got["h1"] {
					return fmt.Errorf("versions %v", got)
				}
				return nil
			})
			for h, line := range map[string]string{
				"h1": "k3s " + v2 + ": installed /usr/local/bin/k3s from " + gh + "/download/" + v2 + "/k3s",
				"h2": "k3s " + v2 + ": installed /usr/local/bin/k3s from " + cn + "/v1.37.3-k3s1/k3s",
				"h3": "k3s " + v2 + ": installed /usr/local/bin/k3s from " + cn + "/v1.37.3-k3s1/k3s",
			} {
				if !strings.Contains(logs[h], line) {
					t.Errorf("%s's install log lacks %q", h, line)
				}
			}
			r := w.mustApply(t, ctx, "apply again at "+v2)
			if ran := r.ran(); len(ran) != 0 {
				t.Errorf("apply at %s ran %v", v2, ran)
			}
		} else {
			// The same binary: the script resolved and checked the pinned
			// release, found the installed binary matching, and kept it.
			for h, line := range map[string]string{
				"h1": "k3s " + v2 + ": /usr/local/bin/k3s matches " + gh + "/download/" + v2 + "/sha256sum-amd64.txt, not downloaded",
				"h2": "k3s " + v2 + ": /usr/local/bin/k3s matches " + cn + "/v1.37.3-k3s1/sha256sum-amd64.txt, not downloaded",
				"h3": "k3s " + v2 + ": /usr/local/bin/k3s matches " + cn + "/v1.37.3-k3s1/sha256sum-amd64.txt, not downloaded",
			} {
				if !strings.Contains(logs[h], line) {
					t.Errorf("%s's install log lacks %q", h, line)
				}
				if !strings.Contains(logs[h], "INSTALL_K3S_VERSION="+v2) {
					t.Errorf("%s's install log shows no run with INSTALL_K3S_VERSION=%s", h, v2)
				}
			}
		}
		if got := w.readyNodes(ctx, "context-cluster2"); !slices.Equal(got, []string{"h2", "h3"}) {
			t.Errorf("cluster2 Ready nodes %v after the upgrade", got)
		}
	})

	t.Run("a pin back to the older release is refused, nothing fetched", func(t *testing.T) {
		w.writeOnlinePlan(onlineK3s{version: v1}, onlineK3s{version: v2, mirror: "cn"})
		n := w.requestCount()
		r := w.apply(ctx)
		if r.code != 1 || !strings.Contains(r.output, "is older than the installed "+v2+": k3s does not support downgrades") {
			t.Errorf("apply pinned back to %s: exit %d, want 1 refusing the downgrade\n%s", v1, r.code, r.output)
		}
		checkFetches(t, "pin back to "+v1, w.fetches(n), map[string][]string{})
		w.writeOnlinePlan(onlineK3s{version: v2}, onlineK3s{version: v2, mirror: "cn"})
		if again := w.apply(ctx); again.code != 0 || len(again.ran()) != 0 {
			t.Errorf("the apply with the pin restored: exit %d, ran %v", again.code, again.ran())
		}
	})

	t.Run("nothing but the stand-in internet was reached", func(t *testing.T) {
		reqs, err := w.bed.Internet.Requests()
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range reqs {
			if !slices.Contains(internet.Names, r.Host) || r.SNI != r.Host || r.Status >= 400 {
				t.Errorf("request %+v", r)
			}
		}
		if data, err := os.ReadFile(w.bed.Internet.ErrorFile); err != nil || len(data) > 0 {
			t.Errorf("the stand-in internet's error log: %v %s", err, data)
		}
		for _, h := range w.bed.Hosts {
			if got := strings.TrimSpace(w.ssh(h, "ip route show default")); got != "unreachable default" {
				t.Errorf("%s: default route %q", h.Name, got)
			}
			if got := strings.TrimSpace(w.ssh(h, "getent hosts example.com || echo unresolved")); got != "unresolved" {
				t.Errorf("%s resolves example.com: %s", h.Name, got)
			}
		}
		t.Logf("%d requests to the stand-in internet in all", len(reqs))
	})
}
