package testbed

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mcplan.io/mcplan/testbed/internet"
)

// TestInternetOnLightHosts runs the install stand-in's download path on a
// light host against the stand-in internet: version pins and channels,
// from GitHub and from the China mirror, the installed binary kept when
// its sum matches, a tampered download refused; and the host reaches the
// stand-in's names and nothing else.
func TestInternetOnLightHosts(t *testing.T) {
	dir := t.TempDir()
	bins := map[string]string{"v1.37.2+k3s1": "#!/bin/sh\necho 'k3s version v1.37.2+k3s1 (fake)'\n", "v1.37.3+k3s1": "#!/bin/sh\necho 'k3s version v1.37.3+k3s1 (fake)'\n"}
	var rels []internet.Release
	for v, data := range bins {
		p := filepath.Join(dir, v)
		if err := os.WriteFile(p, []byte(data), 0o755); err != nil {
			t.Fatal(err)
		}
		rels = append(rels, internet.Release{Version: v, Binary: p})
	}
	script, err := filepath.Abs(filepath.Join("k3s-install", "install.sh"))
	if err != nil {
		t.Fatal(err)
	}
	b := ForTestWith(t, Options{Hosts: 1, Kind: KindLight, Internet: &internet.Config{
		InstallScript: script, Releases: rels,
		Channels: map[string]string{"stable": "v1.37.2+k3s1", "latest": "v1.37.3+k3s1"},
	}})
	h := b.Hosts[0]
	c, err := dial(t, b, h, b.KnownHostsPath)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sh := func(cmd string) string { return run(t, c, cmd, time.Minute) }
	fails := func(cmd string) string {
		t.Helper()
		s, err := c.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		out, err := s.CombinedOutput(cmd)
		if err == nil {
			t.Fatalf("%q succeeded:\n%s", cmd, out)
		}
		return string(out)
	}

	// The host resolves the names to the bridge and trusts the test CA
	// (curl verifies it); other names do not resolve and nothing is routed
	// beyond the bridge.
	gw := strings.TrimSuffix(b.Internet.Addr, ":443")
	resolved := strings.Split(sh("for n in "+strings.Join(internet.Names, " ")+"; do echo $(getent hosts $n); done"), "\n")
	for i, name := range internet.Names {
		if got := strings.Fields(resolved[min(i, len(resolved)-1)]); len(resolved) != len(internet.Names) || len(got) == 0 || got[0] != gw {
			t.Errorf("%s resolves to %v on the host, want %s", name, got, gw)
		}
	}
	want, _ := os.ReadFile(script)
	if got := sh("curl -fsS https://get.k3s.io"); got != strings.TrimSpace(string(want)) {
		t.Errorf("get.k3s.io served %d bytes, want the install script's %d", len(got), len(want))
	}
	fails("getent hosts example.com")
	fails("ip route get 192.0.2.1")

	// A stub systemctl: the download path is what this test is about.
	sh(`mkdir -p /opt/t/fakebin && printf '#!/bin/sh\ncase "$1" in is-active|is-enabled) exit 1;; esac\nexit 0\n' >/opt/t/fakebin/systemctl && chmod +x /opt/t/fakebin/systemctl`)
	install := func(env string) string {
		return "env PATH=/opt/t/fakebin:$PATH INSTALL_K3S_BIN_DIR=/opt/t/bin INSTALL_K3S_SYSTEMD_DIR=/opt/t/systemd MCPLAN_TESTBED_COMMAND_LOG=/opt/t/commands.log " +
			env + " sh -c 'script=$(mktemp) && curl -sfL https://get.k3s.io -o $script && sh $script'"
	}
	requests := func() []internet.Request {
		reqs, err := b.Internet.Requests()
		if err != nil {
			t.Fatal(err)
		}
		return reqs
	}
	urlsSince := func(n int) []string {
		var urls []string
		for _, r := range requests()[n:] {
			if !strings.HasPrefix(r.Remote, h.Address+":") {
				t.Errorf("request from %s, not from the host", r.Remote)
			}
			urls = append(urls, r.URL())
		}
		return urls
	}
	binary := func() string { return sh("/opt/t/bin/k3s") }

	for _, tc := range []struct {
		name, env, version string
		urls               []string
	}{
		{"pin from GitHub", "INSTALL_K3S_EXEC=server INSTALL_K3S_VERSION=v1.37.2+k3s1", "v1.37.2+k3s1", []string{
			"https://get.k3s.io/",
			"https://github.com/k3s-io/k3s/releases/download/v1.37.2+k3s1/sha256sum-amd64.txt",
			"https://objects.githubusercontent.com/github-production-release-asset/k3s-io/k3s/v1.37.2+k3s1/sha256sum-amd64.txt",
			"https://github.com/k3s-io/k3s/releases/download/v1.37.2+k3s1/k3s",
			"https://objects.githubusercontent.com/github-production-release-asset/k3s-io/k3s/v1.37.2+k3s1/k3s",
		}},
		{"the same pin keeps the binary", "INSTALL_K3S_EXEC=server INSTALL_K3S_VERSION=v1.37.2+k3s1", "v1.37.2+k3s1", []string{
			"https://get.k3s.io/",
			"https://github.com/k3s-io/k3s/releases/download/v1.37.2+k3s1/sha256sum-amd64.txt",
			"https://objects.githubusercontent.com/github-production-release-asset/k3s-io/k3s/v1.37.2+k3s1/sha256sum-amd64.txt",
		}},
		{"channel through update.k3s.io", "INSTALL_K3S_EXEC=server INSTALL_K3S_CHANNEL=latest", "v1.37.3+k3s1", []string{
			"https://get.k3s.io/",
			"https://update.k3s.io/v1-release/channels/latest",
			"https://github.com/k3s-io/k3s/releases/tag/v1.37.3+k3s1",
			"https://github.com/k3s-io/k3s/releases/download/v1.37.3+k3s1/sha256sum-amd64.txt",
			"https://objects.githubusercontent.com/github-production-release-asset/k3s-io/k3s/v1.37.3+k3s1/sha256sum-amd64.txt",
			"https://github.com/k3s-io/k3s/releases/download/v1.37.3+k3s1/k3s",
			"https://objects.githubusercontent.com/github-production-release-asset/k3s-io/k3s/v1.37.3+k3s1/k3s",
		}},
		{"China mirror, default channel", "INSTALL_K3S_EXEC=server INSTALL_K3S_MIRROR=cn", "v1.37.2+k3s1", []string{
			"https://get.k3s.io/",
			"https://rancher-mirror.rancher.cn/k3s/channels/stable",
			"https://rancher-mirror.rancher.cn/k3s/v1.37.2-k3s1/sha256sum-amd64.txt",
			"https://rancher-mirror.rancher.cn/k3s/v1.37.2-k3s1/k3s",
		}},
		{"China mirror, pin", "INSTALL_K3S_EXEC=server INSTALL_K3S_MIRROR=cn INSTALL_K3S_VERSION=v1.37.3+k3s1", "v1.37.3+k3s1", []string{
			"https://get.k3s.io/",
			"https://rancher-mirror.rancher.cn/k3s/v1.37.3-k3s1/sha256sum-amd64.txt",
			"https://rancher-mirror.rancher.cn/k3s/v1.37.3-k3s1/k3s",
		}},
	} {
		n := len(requests())
		out := sh(install(tc.env))
		if got := urlsSince(n); strings.Join(got, "\n") != strings.Join(tc.urls, "\n") {
			t.Errorf("%s: fetched\n  %s\nwant\n  %s\n%s", tc.name, strings.Join(got, "\n  "), strings.Join(tc.urls, "\n  "), out)
		}
		if got := binary(); !strings.Contains(got, tc.version) {
			t.Errorf("%s: installed k3s says %q, want %s", tc.name, got, tc.version)
		}
	}
	log := sh("cat /opt/t/commands.log")
	for _, line := range []string{
		"k3s v1.37.2+k3s1: installed /opt/t/bin/k3s from https://github.com/k3s-io/k3s/releases/download/v1.37.2+k3s1/k3s",
		"k3s v1.37.2+k3s1: /opt/t/bin/k3s matches https://github.com/k3s-io/k3s/releases/download/v1.37.2+k3s1/sha256sum-amd64.txt, not downloaded",
		"channel latest at https://update.k3s.io/v1-release/channels/latest: v1.37.3+k3s1",
		"channel stable at https://rancher-mirror.rancher.cn/k3s/channels/stable: v1.37.2+k3s1",
		"k3s v1.37.3+k3s1: installed /opt/t/bin/k3s from https://rancher-mirror.rancher.cn/k3s/v1.37.3-k3s1/k3s",
	} {
		if !strings.Contains(log, line) {
			t.Errorf("command log lacks %q:\n%s", line, log)
		}
	}

	// Failures: an unknown release, an unknown channel, a download whose
	// sum differs; each leaves the installed binary alone.
	if out := fails(install("INSTALL_K3S_VERSION=v1.30.0+k3s1")); !strings.Contains(out, "Download failed: https://github.com/k3s-io/k3s/releases/download/v1.30.0+k3s1/sha256sum-amd64.txt") {
		t.Errorf("unknown release: %s", out)
	}
	if out := fails(install("INSTALL_K3S_CHANNEL=testing")); !strings.Contains(out, "could not find the release of channel testing") {
		t.Errorf("unknown channel: %s", out)
	}
	if err := os.WriteFile(filepath.Join(dir, "v1.37.2+k3s1"), []byte("#!/bin/sh\necho tampered\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if out := fails(install("INSTALL_K3S_VERSION=v1.37.2+k3s1")); !strings.Contains(out, "Download sha256 does not match") {
		t.Errorf("tampered download: %s", out)
	}
	if got := binary(); !strings.Contains(got, "v1.37.3+k3s1") {
		t.Errorf("after the failures k3s says %q, want v1.37.3+k3s1 still", got)
	}

	// The airgap path fetches nothing but the script the test itself asked for.
	n := len(requests())
	sh(install("INSTALL_K3S_SKIP_DOWNLOAD=true INSTALL_K3S_VERSION=v1.37.2+k3s1"))
	if got := urlsSince(n); len(got) != 1 || got[0] != "https://get.k3s.io/" {
		t.Errorf("the airgap path fetched %v", got)
	}
	for _, r := range requests() {
		if !strings.EqualFold(r.SNI, r.Host) || r.Status >= 500 {
			t.Errorf("request %+v", r)
		}
	}
}
