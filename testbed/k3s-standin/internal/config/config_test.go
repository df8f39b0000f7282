package config

import (
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestParseMergesFlagsEnvAndFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "config.yaml")
	yaml := `node-ip: 10.0.0.5
advertise-address: 10.0.0.6
tls-san: [a.example, 10.0.0.7]
node-name: from-file
cluster-init: true
cluster-cidr: 10.60.0.0/16
service-cidr: 10.61.0.0/16
disable: [traefik, servicelb]
write-kubeconfig-mode: "0644"
token: from-file
kube-apiserver-arg: ["v=2"]
standin-kubelet-port: 10260
unknown-key: 1
`
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"K3S_TOKEN": "from-env", "K3S_STANDIN_NATIVE_IMAGES": "/images"}
	var log strings.Builder
	c, err := Parse(RoleServer, []string{"--config", file, "--node-name", "from-flag"}, func(k string) string { return env[k] }, &log)
	if err != nil {
		t.Fatal(err)
	}
	if c.NodeName != "from-flag" || c.Token != "from-env" || c.NodeIP != "10.0.0.5" || c.AdvertiseAddress != "10.0.0.6" ||
		!c.ClusterInit || c.ClusterCIDR != "10.60.0.0/16" || c.ServiceCIDR != "10.61.0.0/16" || c.WriteKubeconfigMode != "0644" ||
		!slices.Equal(c.TLSSANs, []string{"a.example", "10.0.0.7"}) || !slices.Equal(c.Disable, []string{"traefik", "servicelb"}) ||
		!slices.Equal(c.KubeAPIServerArgs, []string{"v=2"}) || c.NativeImages != "/images" || c.KubeletPort != 10260 {
		t.Fatalf("merged config wrong: %+v", c)
	}
	if !strings.Contains(log.String(), `ignoring unknown key "unknown-key"`) {
		t.Fatalf("unknown key not logged: %q", log.String())
	}
}

func TestAgentNeedsServerAndToken(t *testing.T) {
	none := func(string) string { return "" }
	if _, err := Parse(RoleAgent, []string{"--config", "/nonexistent", "--node-ip", "127.0.0.2"}, none, io.Discard); err == nil {
		t.Fatal("agent without server accepted")
	}
	env := map[string]string{"K3S_URL": "https://127.0.0.1:6443", "K3S_TOKEN": "t"}
	c, err := Parse(RoleAgent, []string{"--config", "/nonexistent", "--node-ip", "127.0.0.2"}, func(k string) string { return env[k] }, io.Discard)
	if err != nil || c.Server != "https://127.0.0.1:6443" || c.Token != "t" {
		t.Fatalf("agent from env: %+v %v", c, err)
	}
}

func TestNativeImagesDefault(t *testing.T) {
	c, err := Parse(RoleServer, []string{"--config", "/nonexistent", "--node-ip", "127.0.0.1"}, func(string) string { return "" }, io.Discard)
	if err != nil || c.NativeImages != DefaultNativeImages || c.KubeletPort != 10250 {
		t.Fatalf("defaults: %+v %v", c, err)
	}
}

func TestEtcdPortsAndReset(t *testing.T) {
	none := func(string) string { return "" }
	for _, c := range []struct {
		name           string
		role           Role
		args           []string
		client, peer   int
		reset, wantErr bool
	}{
		{"defaults", RoleServer, nil, 2379, 2380, false, false},
		{"client port moves the peer port", RoleServer, []string{"--standin-etcd-port", "3379"}, 3379, 3380, false, false},
		{"peer port of its own", RoleServer, []string{"--standin-etcd-port", "3379", "--standin-etcd-peer-port", "4380"}, 3379, 4380, false, false},
		{"cluster reset", RoleServer, []string{"--cluster-reset", "--cluster-reset-restore-path", "/snap"}, 2379, 2380, true, false},
		{"restore path needs cluster-reset", RoleServer, []string{"--cluster-reset-restore-path", "/snap"}, 0, 0, false, true},
		{"etcd-snapshot reads the server's ports", RoleEtcdSnapshot, []string{"--standin-etcd-port", "3379", "--name", "pre"}, 3379, 3380, false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{"--config", "/nonexistent", "--node-ip", "127.0.0.1"}, c.args...)
			cfg, err := Parse(c.role, args, none, io.Discard)
			if c.wantErr {
				if err == nil {
					t.Fatal("accepted")
				}
				return
			}
			if err != nil || cfg.EtcdPort != c.client || cfg.EtcdPeerPort != c.peer || cfg.ClusterReset != c.reset {
				t.Fatalf("%+v %v", cfg, err)
			}
		})
	}
	cfg, err := Parse(RoleEtcdSnapshot, []string{"--config", "/nonexistent", "--node-ip", "127.0.0.1"}, none, io.Discard)
	if err != nil || cfg.EtcdSnapshotName != "on-demand" || cfg.EtcdSnapshotDir != "" {
		t.Fatalf("etcd-snapshot defaults: %+v %v", cfg, err)
	}
}
