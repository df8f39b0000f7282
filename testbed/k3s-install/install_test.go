// Package k3sinstall tests install.sh, the testbed's stand-in for the k3s
// install script (the script is the product; this package has no code).
package k3sinstall

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.service from install.sh's output")

// host is a scratch install root: bin and systemd dirs, a command log, and
// a systemctl on PATH that records its arguments (the one piece of the
// host the script drives; everything else it does is real).
type host struct {
	t                             *testing.T
	dir, bin, systemd, log, calls string
}

func newHost(t *testing.T) *host {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("install.sh refuses to run as non-root, as upstream's needs root or sudo")
	}
	dir := t.TempDir()
	h := &host{t: t, dir: dir, bin: filepath.Join(dir, "bin"), systemd: filepath.Join(dir, "systemd"),
		log: filepath.Join(dir, "commands.log"), calls: filepath.Join(dir, "systemctl.calls")}
	fake := filepath.Join(dir, "fakebin")
	for _, d := range []string{h.bin, h.systemd, fake} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	h.writeBinary("#!/bin/sh\necho k3s v1\n")
	systemctl := "#!/bin/sh\necho \"$*\" >>" + h.calls + "\n"
	if err := os.WriteFile(filepath.Join(fake, "systemctl"), []byte(systemctl), 0o755); err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *host) writeBinary(content string) {
	h.t.Helper()
	if err := os.WriteFile(filepath.Join(h.bin, "k3s"), []byte(content), 0o755); err != nil {
		h.t.Fatal(err)
	}
}

// install runs install.sh with a clean environment plus env; it returns
// the script's output and the systemctl calls it made.
func (h *host) install(env ...string) (string, []string) {
	h.t.Helper()
	_ = os.Remove(h.calls)
	cmd := exec.Command("sh", "install.sh")
	cmd.Env = append([]string{
		"PATH=" + filepath.Join(h.dir, "fakebin") + ":/usr/sbin:/usr/bin:/sbin:/bin",
		"INSTALL_K3S_SKIP_DOWNLOAD=true",
		"INSTALL_K3S_BIN_DIR=" + h.bin,
		"INSTALL_K3S_SYSTEMD_DIR=" + h.systemd,
		"MCPLAN_TESTBED_COMMAND_LOG=" + h.log,
	}, env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		h.t.Fatalf("install.sh %v: %v\n%s", env, err, out)
	}
	calls, _ := os.ReadFile(h.calls)
	return string(out), strings.Split(strings.TrimSpace(string(calls)), "\n")
}

func (h *host) read(name string) (string, os.FileMode) {
	h.t.Helper()
	p := filepath.Join(h.systemd, name)
	b, err := os.ReadFile(p)
	if err != nil {
		h.t.Fatal(err)
	}
	fi, _ := os.Stat(p)
	return strings.ReplaceAll(string(b), h.dir, "/TMP"), fi.Mode().Perm()
}

func restarted(calls []string, unit string) bool {
	for _, c := range calls {
		if c == "restart "+unit {
			return true
		}
	}
	return false
}

func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to write it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from %s (-update rewrites it):\n%s", name, path, got)
	}
}

// TestUnitAndEnvFile checks the unit text against upstream's layout
// (golden files) and the environment file, for a server and an agent.
func TestUnitAndEnvFile(t *testing.T) {
	for _, c := range []struct {
		name, unit string
		env        []string
		wantEnv    string
	}{
		{"server", "k3s", []string{"INSTALL_K3S_EXEC=server"}, ""},
		{"agent with args and a quote", "k3s-agent", []string{
			"INSTALL_K3S_EXEC=agent --node-label it's=x",
			"K3S_URL=https://10.0.0.1:6443", "K3S_TOKEN=K10abc::server:secret", "CONTAINERD_LOG_LEVEL=debug", "HTTPS_PROXY=http://proxy:3128", "OTHER=no",
		}, "CONTAINERD_LOG_LEVEL='debug'\nK3S_TOKEN='K10abc::server:secret'\nK3S_URL='https://10.0.0.1:6443'\nHTTPS_PROXY='http://proxy:3128'\n"},
		{"agent from K3S_URL", "k3s-agent", []string{"K3S_URL=https://10.0.0.1:6443", "K3S_TOKEN=t"}, "K3S_TOKEN='t'\nK3S_URL='https://10.0.0.1:6443'\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHost(t)
			out, calls := h.install(c.env...)
			unit, mode := h.read(c.unit + ".service")
			if mode != 0o644 {
				t.Errorf("unit mode %v", mode)
			}
			checkGolden(t, strings.ReplaceAll(c.name, " ", "-")+".service", unit)
			env, mode := h.read(c.unit + ".service.env")
			if mode != 0o600 || env != c.wantEnv {
				t.Errorf("env file mode %v:\n%s\nwant\n%s", mode, env, c.wantEnv)
			}
			if !restarted(calls, c.unit) {
				t.Errorf("first install did not restart %s: %v\n%s", c.unit, calls, out)
			}
			if _, err := exec.LookPath("systemd-analyze"); err == nil {
				// systemd's own parser: the unit is valid as written.
				v := exec.Command("systemd-analyze", "verify", "--man=no", filepath.Join(h.systemd, c.unit+".service"))
				if vout, err := v.CombinedOutput(); err != nil || bytes.Contains(vout, []byte(c.unit+".service:")) {
					t.Errorf("systemd-analyze verify: %v\n%s", err, vout)
				}
			}
		})
	}
}

// TestRestartOnlyOnChange: like upstream, the service is restarted only
// when the sha256 of the binary, the unit or the environment file changed
// during the run, or with INSTALL_K3S_FORCE_RESTART.
func TestRestartOnlyOnChange(t *testing.T) {
	h := newHost(t)
	base := []string{"INSTALL_K3S_EXEC=server --cluster-init", "K3S_TOKEN=one"}
	if _, calls := h.install(base...); !restarted(calls, "k3s") {
		t.Fatalf("first install: %v", calls)
	}
	for _, c := range []struct {
		name    string
		change  func()
		env     []string
		restart bool
	}{
		{"nothing changed", nil, base, false},
		{"config.yaml is not the script's business", func() {
			_ = os.WriteFile(filepath.Join(h.dir, "config.yaml"), []byte("x: 1\n"), 0o600)
		}, base, false},
		{"force restart", nil, append(base, "INSTALL_K3S_FORCE_RESTART=true"), true},
		// As upstream with INSTALL_K3S_SKIP_DOWNLOAD: the binary was put
		// in place before the script ran, so it is in the "before" hashes
		// too and alone does not restart the service (an airgap upgrade
		// needs INSTALL_K3S_FORCE_RESTART or a restart by the caller).
		{"new airgap binary alone", func() { h.writeBinary("#!/bin/sh\necho k3s v2\n") }, base, false},
		{"new airgap binary, forced", func() { h.writeBinary("#!/bin/sh\necho k3s v3\n") }, append(base, "INSTALL_K3S_FORCE_RESTART=true"), true},
		{"new token in the env file", nil, []string{"INSTALL_K3S_EXEC=server --cluster-init", "K3S_TOKEN=two"}, true},
		{"new flags in the unit", nil, []string{"INSTALL_K3S_EXEC=server", "K3S_TOKEN=two"}, true},
		{"skip start", nil, []string{"INSTALL_K3S_EXEC=server --disable=traefik", "K3S_TOKEN=two", "INSTALL_K3S_SKIP_START=true"}, false},
	} {
		if c.change != nil {
			c.change()
		}
		out, calls := h.install(c.env...)
		if got := restarted(calls, "k3s"); got != c.restart {
			t.Errorf("%s: restarted %v, want %v (systemctl %v)\n%s", c.name, got, c.restart, calls, out)
		}
		if !c.restart && !strings.Contains(out, "INSTALL_K3S_SKIP_START") && !strings.Contains(out, "No change detected so skipping service start") {
			t.Errorf("%s: output does not say why it skipped the start:\n%s", c.name, out)
		}
	}
}
