package steps

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"mcplan.io/mcplan/engine"
	"mcplan.io/mcplan/plans"
	"mcplan.io/mcplan/steps/remote"
)

// HostFacts connects to a host (verifying its key) and reads what the
// later steps rely on: OS, architecture, init system, addresses and any
// k3s already installed. It refuses hosts k3s cannot be installed on.
type HostFacts struct {
	rt   *Runtime
	host plans.Host
	plan *plans.Plan
}

// NewHostFacts returns the host/facts step of spec.Host.
func NewHostFacts(p *plans.Plan, spec plans.StepSpec, rt *Runtime) *HostFacts {
	return &HostFacts{rt: rt, host: *p.Host(spec.Host), plan: p}
}

// HostOutputReach is the output of host/facts saying how the host was
// reached (JSON of its plans.Host with the effective SSH settings, paths
// absolute; key files only by path): a removal reaches a host that left
// the plan with it.
const HostOutputReach = "reach"

// reachRecord is the HostOutputReach output of the host.
func (s *HostFacts) reachRecord() (string, error) {
	h := s.host
	eff := s.plan.HostSSH(h.Name)
	eff.IdentityFile = s.plan.Resolve(eff.IdentityFile)
	if eff.KnownHosts != remote.KnownHostsPin {
		eff.KnownHosts = s.plan.Resolve(eff.KnownHosts)
	}
	h.SSH = &eff
	data, err := json.Marshal(h)
	if err != nil {
		return "", err
	}
	return string(data), nil
}

// recordedHost reads a HostOutputReach output.
func recordedHost(reach string) (plans.Host, bool) {
	var h plans.Host
	if reach == "" || json.Unmarshal([]byte(reach), &h) != nil || h.Name == "" || h.Address == "" || h.SSH == nil {
		return plans.Host{}, false
	}
	return h, true
}

// Facts are what host/facts records (all outputs, none secret).
type Facts struct {
	OS         string   // ID from /etc/os-release, e.g. debian
	OSVersion  string   // VERSION_ID
	Kernel     string   // uname -s
	Arch       string   // uname -m
	Hostname   string   //
	Init       string   // comm of PID 1
	Addresses  []string // IPv4 and IPv6 addresses, without loopback and the pod network k3s makes (cni0, flannel*, kube-ipvs0, veths)
	K3sVersion string   // "k3s --version" first line's version, or ""
}

// factsScript prints key=value lines; it changes nothing.
const factsScript = `echo "kernel=$(uname -s)"
echo "arch=$(uname -m)"
echo "hostname=$(hostname)"
. /etc/os-release 2>/dev/null && echo "os=$ID" && echo "os_version=$VERSION_ID"
echo "init=$(cat /proc/1/comm 2>/dev/null)"
echo "addresses=$(ip -o addr show 2>/dev/null | awk '$2 !~ /^(cni0|flannel|kube-ipvs0|veth)/ {print $4}' | cut -d/ -f1 | grep -v -e '^127\.' -e '^::1$' | tr '\n' ' ')"`

// factsK3sLine adds the installed k3s's version to factsScript, for
// Apply's log (Check compares only what the host is: see outputs).
const factsK3sLine = `
v=$(k3s --version 2>/dev/null | head -n1 | awk '{print $3}'); echo "k3s=$v"`

// ReadFacts reads a host's facts, with withK3s also the version of any
// k3s installed.
func (s *HostFacts) ReadFacts(ctx context.Context, env *engine.Env, withK3s bool) (Facts, error) {
	c, err := s.rt.Host(ctx, s.host.Name, env.Logf)
	if err != nil {
		return Facts{}, err
	}
	script := factsScript
	if withK3s {
		script += factsK3sLine
	}
	res, err := c.Run(ctx, script, remote.RunOptions{})
	if err != nil {
		return Facts{}, fmt.Errorf("read facts: %w", err)
	}
	return parseFacts(res.Stdout), nil
}

func parseFacts(out string) Facts {
	kv := parseKeyValues(out)
	return Facts{
		Kernel: kv["kernel"], Arch: kv["arch"], Hostname: kv["hostname"], OS: kv["os"],
		OSVersion: kv["os_version"], Init: kv["init"], Addresses: strings.Fields(kv["addresses"]), K3sVersion: kv["k3s"],
	}
}

// parseKeyValues reads the key=value lines that the read-only scripts of
// the host steps print; values are trimmed.
func parseKeyValues(out string) map[string]string {
	kv := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if key, value, ok := strings.Cut(line, "="); ok {
			kv[key] = strings.TrimSpace(value)
		}
	}
	return kv
}

// supported says why k3s cannot be installed on a host, or "".
func (s *HostFacts) unsupported(f Facts) string {
	switch {
	case f.Kernel != "Linux":
		return fmt.Sprintf("kernel %q: k3s needs Linux", f.Kernel)
	case !slices.Contains([]string{"x86_64", "aarch64", "armv7l", "s390x", "riscv64"}, f.Arch):
		return fmt.Sprintf("architecture %q: k3s ships for x86_64, aarch64, armv7l, s390x", f.Arch)
	case f.Init != "systemd":
		return fmt.Sprintf("init system %q: mcplan installs k3s as a systemd service; PID 1 must be systemd", f.Init)
	case s.host.PrivateIP != "" && !slices.Contains(f.Addresses, s.host.PrivateIP):
		return fmt.Sprintf("privateIP %s is not an address of the host (it has %s): k3s's node-ip must be local",
			s.host.PrivateIP, strings.Join(f.Addresses, ", "))
	}
	return ""
}

// outputs are the facts later applies compare: what the host is, not
// what mcplan installs on it (the k3s version is the k3s steps' to check).
func (f Facts) outputs() map[string]string {
	return map[string]string{
		"os": f.OS + " " + f.OSVersion, "arch": f.Arch, "hostname": f.Hostname, "init": f.Init,
		"addresses": strings.Join(f.Addresses, " "),
	}
}

// Check reads the facts again and compares them with the recorded ones.
func (s *HostFacts) Check(ctx context.Context, env *engine.Env) (engine.Drift, error) {
	f, err := s.ReadFacts(ctx, env, false)
	if err != nil {
		return engine.Drift{}, err
	}
	if why := s.unsupported(f); why != "" {
		return engine.Drifted("unsupported host: " + why), nil
	}
	for k, v := range f.outputs() {
		if prev, _ := env.Previous(k); prev != v {
			return engine.Drifted(fmt.Sprintf("%s is now %q (was %q)", k, v, prev)), nil
		}
	}
	return engine.InSync(), nil
}

// Apply reads and records the facts; an unsupported host is an error.
func (s *HostFacts) Apply(ctx context.Context, env *engine.Env) error {
	f, err := s.ReadFacts(ctx, env, true)
	if err != nil {
		return err
	}
	if why := s.unsupported(f); why != "" {
		return fmt.Errorf("unsupported host: %s", why)
	}
	for k, v := range f.outputs() {
		env.SetOutput(k, v)
	}
	reach, err := s.reachRecord()
	if err != nil {
		return err
	}
	env.SetOutput(HostOutputReach, reach)
	k3s := "no k3s"
	if f.K3sVersion != "" {
		k3s = "k3s " + f.K3sVersion
	}
	env.Logf("%s %s %s, %s, %s", f.OS, f.OSVersion, f.Arch, f.Init, k3s)
	return nil
}
