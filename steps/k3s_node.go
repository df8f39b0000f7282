package steps

import (
	"context"
	"fmt"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"mcplan.io/mcplan/engine"
	"mcplan.io/mcplan/internal/digest"
	"mcplan.io/mcplan/plans"
	"mcplan.io/mcplan/steps/remote"
)

// Upstream install script locations.
const (
	k3sInstallURL   = "https://get.k3s.io"
	k3sInstallURLCN = "https://rancher-mirror.rancher.cn/k3s/k3s-install.sh"
)

// K3sOutputCluster is the output of a k3s step naming its cluster: its
// removal drains the node through that cluster once the plan no longer
// says which it was.
const K3sOutputCluster = "cluster"

// K3sOutputFirst is the output of a k3s step saying whether its host is
// the cluster's first server, the one the others joined.
const K3sOutputFirst = "first"

// k3sReadyTimeout bounds the wait for a node to become Ready.
const k3sReadyTimeout = 5 * time.Minute

// K3sNode installs, configures or upgrades k3s on one host of a cluster,
// as a server (the first one initialises the cluster, later ones join it)
// or as an agent, then waits until the node is Ready through the API.
//
// mcplan writes /etc/rancher/k3s/config.yaml itself, so a later apply can
// compare it and the installed version with the plan and touch nothing
// when they match.
type K3sNode struct {
	rt      *Runtime
	cluster plans.Cluster
	host    plans.Host
	agent   bool
	planDir string
	timeout time.Duration
	// noDrain: the node's cluster left the plan, so its removal does not
	// drain it (its cluster goes with it).
	noDrain bool
	// joinedServerLeaves: a joined server leaves a cluster that stays; its
	// removal drains it and deletes its Node (and so its etcd member).
	joinedServerLeaves bool
}

// NewK3sServer returns the k3s/server step of server spec.Host of
// spec.Cluster.
func NewK3sServer(p *plans.Plan, spec plans.StepSpec, rt *Runtime) *K3sNode {
	return &K3sNode{rt: rt, cluster: *p.Cluster(spec.Cluster), host: *p.Host(spec.Host), planDir: p.Dir(), timeout: k3sReadyTimeout}
}

// NewK3sJoin returns the k3s/join step of agent spec.Host of spec.Cluster.
func NewK3sJoin(p *plans.Plan, spec plans.StepSpec, rt *Runtime) *K3sNode {
	s := NewK3sServer(p, spec, rt)
	s.agent = true
	return s
}

func (s *K3sNode) unit() string {
	if s.agent {
		return "k3s-agent"
	}
	return "k3s"
}

func (s *K3sNode) role() string {
	if s.agent {
		return "agent"
	}
	return "server"
}

func (s *K3sNode) isFirstServer() bool { return !s.agent && s.cluster.Servers[0] == s.host.Name }

// desiredConfig is the config.yaml this node should have, given the
// cluster's agent token. Servers get the agent token as agent-token;
// joining servers the cluster token, read from the first server; agents
// only the agent token. The result is secret and must not be logged.
func (s *K3sNode) desiredConfig(ctx context.Context, env *engine.Env, agentToken string) ([]byte, error) {
	c := newK3sConfig()
	c.set("node-name", s.host.Name)
	c.set("node-ip", s.host.PrivateIP)
	if !s.agent {
		c.set("advertise-address", s.host.PrivateIP)
		c.setList("tls-san", s.rt.plan.APISANs(s.cluster.Name))
		c.set("write-kubeconfig-mode", "0600")
		if s.cluster.API.Port != 0 && s.cluster.API.Port != 6443 {
			c.set("https-listen-port", fmt.Sprint(s.cluster.API.Port))
		}
		if s.isFirstServer() && len(s.cluster.Servers) > 1 {
			c.set("cluster-init", true)
		}
		c.set("agent-token", agentToken)
	}
	if !s.isFirstServer() {
		first := s.rt.plan.Host(s.cluster.Servers[0])
		c.set("server", apiURL(first.PrivateIP, s.cluster.API.Port))
		token := agentToken
		if !s.agent {
			var err error
			if token, err = s.clusterToken(ctx, env); err != nil {
				return nil, err
			}
		}
		c.set("token", token)
	}
	args := s.cluster.K3s.Args
	if s.agent {
		args = s.cluster.K3s.AgentArgs
	}
	if err := c.addArgs(args); err != nil {
		return nil, err
	}
	return c.render()
}

// clusterToken reads the cluster's join token from its first server.
func (s *K3sNode) clusterToken(ctx context.Context, env *engine.Env) (string, error) {
	first := s.cluster.Servers[0]
	c, err := s.rt.Host(ctx, first, env.Logf)
	if err != nil {
		return "", err
	}
	res, err := c.Run(ctx, "cat "+k3sTokenPath, remote.RunOptions{})
	if err != nil {
		return "", fmt.Errorf("read the cluster token from %s: %w", first, err)
	}
	token := strings.TrimSpace(res.Stdout)
	if token == "" {
		return "", fmt.Errorf("the cluster token on %s (%s) is empty", first, k3sTokenPath)
	}
	return token, nil
}

// liveState is what is installed on the host now.
type liveState struct {
	version, binarySHA, configSHA, active, enabled string
	// binaryStamp identifies the installed binary's version without
	// reading it (size, change time, inode): a binary whose stamp is the
	// one the last apply recorded has the sum it recorded.
	binaryStamp string
	// configWritten and serviceStarted are config.yaml's modification
	// time and when the service's running process started, in Unix
	// seconds (0: unknown).
	configWritten, serviceStarted int64
}

// configUnread says the running service started before config.yaml was
// last written: an apply that wrote it was cut off before its restart.
func (l liveState) configUnread() bool {
	return l.active == "active" && l.configWritten > 0 && l.serviceStarted > 0 && l.configWritten > l.serviceStarted
}

// Outputs of k3s/server and k3s/join that let a later Check take the
// binaries' sums without reading them (see liveState.binaryStamp and
// airgapBinarySHA).
const (
	k3sOutputBinary       = "binarySHA256"
	k3sOutputBinaryStamp  = "binaryStamp"
	k3sOutputAirgapBinary = "airgapBinary"
)

// readLive reads, in one command, what is installed: the binary's sum
// and version are read only when its stamp is not the one the last apply
// recorded
// (env.Previous; nil env: always), or, with uploaded set (the sum of a
// binary this apply just checked on the host), taken as that.
func (s *K3sNode) readLive(ctx context.Context, env *engine.Env, c *remote.Client, uploaded string) (liveState, error) {
	var knownStamp, knownSHA, knownVersion string
	if env != nil {
		knownStamp, _ = env.Previous(k3sOutputBinaryStamp)
		knownSHA, _ = env.Previous(k3sOutputBinary)
		knownVersion, _ = env.Previous("version")
	}
	if knownSHA == "" || knownVersion == "" {
		knownStamp = ""
	}
	if uploaded != "" {
		knownStamp = ""
	}
	mode := "read"
	if uploaded != "" {
		mode = "uploaded"
	}
	// The binary's path is a constant: as it is, as the e2e tests'
	// read-only command check expects; the rest is quoted.
	script := fmt.Sprintf(`stamp=$(stat -L -c '%%s %%Z %%i' %[1]s 2>/dev/null)
echo "binary_stamp=$stamp"
if [ -n "$stamp" ] && [ "$stamp" = %[4]s ]; then echo "known=yes"; else
echo "version=$(%[1]s --version 2>/dev/null | head -n1 | awk '{print $3}')"
[ %[5]s = uploaded ] || echo "binary=$(sha256sum %[1]s 2>/dev/null | cut -d' ' -f1)"
fi
echo "config=$(sha256sum %[2]s 2>/dev/null | cut -d' ' -f1)"
echo "config_written=$(stat -c %%Y %[2]s 2>/dev/null)"
echo "active=$(systemctl is-active %[3]s 2>/dev/null)"
started=$(systemctl show -p ExecMainStartTimestamp --value %[3]s 2>/dev/null)
echo "service_started=$([ -n "$started" ] && date -d "$started" +%%s 2>/dev/null)"
echo "enabled=$(systemctl is-enabled %[3]s 2>/dev/null)"`, k3sBinaryPath, k3sConfigPath, s.unit(), remote.ShellQuote(knownStamp), mode)
	res, err := c.Run(ctx, script, remote.RunOptions{})
	if err != nil {
		return liveState{}, fmt.Errorf("read installed state: %w", err)
	}
	kv := parseKeyValues(res.Stdout)
	l := liveState{version: kv["version"], binarySHA: kv["binary"], configSHA: kv["config"], active: kv["active"], enabled: kv["enabled"], binaryStamp: kv["binary_stamp"]}
	l.configWritten, _ = strconv.ParseInt(kv["config_written"], 10, 64)
	l.serviceStarted, _ = strconv.ParseInt(kv["service_started"], 10, 64)
	switch {
	case kv["known"] == "yes":
		l.version, l.binarySHA = knownVersion, knownSHA
	case uploaded != "" && l.binaryStamp != "":
		l.binarySHA = uploaded
	}
	return l, nil
}

// k3sDecision is what a k3s step found on its host, decided once: Check
// reports it, Apply acts on it.
type k3sDecision struct {
	// reasons say why the host does not match the plan, most important
	// first; empty when it matches.
	reasons []string
	// install: run the install script (k3s missing, another version or
	// binary wanted, or the service not enabled).
	install bool
	// restart: only the config changed, or the service is not running.
	restart bool
	// upgrade: k3s is installed and another version or binary is
	// wanted: the node is drained first and checked after (k3s_upgrade.go).
	upgrade bool
}

// decide compares what is installed with the plan: the wanted config's
// and airgap binary's sums ("" without airgap).
func (s *K3sNode) decide(l liveState, configSHA, binarySHA string) k3sDecision {
	var d k3sDecision
	wantVersion := s.cluster.K3s.Version
	switch {
	case l.version == "":
		d.reasons = append(d.reasons, "k3s not installed")
	case wantVersion != "" && l.version != wantVersion:
		d.reasons = append(d.reasons, fmt.Sprintf("k3s %s installed, plan wants %s", l.version, wantVersion))
	}
	binaryDiffers := binarySHA != "" && l.binarySHA != binarySHA
	if binaryDiffers && l.version != "" {
		d.reasons = append(d.reasons, "k3s binary differs from airgap.binary")
	}
	configDiffers := l.configSHA != configSHA
	if configDiffers {
		d.reasons = append(d.reasons, k3sConfigPath+" differs from the plan")
	}
	configUnread := !configDiffers && l.configUnread()
	if configUnread {
		d.reasons = append(d.reasons, fmt.Sprintf("%s was written after service %s started (an apply was cut off before restarting it)", k3sConfigPath, s.unit()))
	}
	if l.version != "" && l.active != "active" {
		d.reasons = append(d.reasons, fmt.Sprintf("service %s is %s", s.unit(), orUnknown(l.active)))
	}
	if l.version != "" && l.enabled != "enabled" {
		d.reasons = append(d.reasons, fmt.Sprintf("service %s is not enabled", s.unit()))
	}
	d.upgrade = l.version != "" && ((wantVersion != "" && l.version != wantVersion) || binaryDiffers)
	d.install = l.version == "" || d.upgrade || l.enabled != "enabled"
	d.restart = !d.install && (configDiffers || configUnread || l.active != "active")
	return d
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// airgapBinarySHA is the sha256 of the plan's airgap binary, or "", and
// its record for the next run (stampedSum): the recorded sum when the
// file's stamp is the one recorded (env.Previous), else read once per
// run.
func (s *K3sNode) airgapBinarySHA(env *engine.Env) (sum, record string, err error) {
	a := s.cluster.K3s.Airgap
	if a == nil {
		return "", "", nil
	}
	path := s.rt.plan.Resolve(a.Binary)
	stamp, err := digest.FileStamp(path)
	if err != nil {
		return "", "", fmt.Errorf("airgap.binary: %w", err)
	}
	if prev, ok := env.Previous(k3sOutputAirgapBinary); ok {
		if sum, ok := sumIfStamped(prev, stamp); ok {
			return sum, prev, nil
		}
	}
	sum, err = s.rt.fileSHA256(path)
	if err != nil {
		return "", "", fmt.Errorf("airgap.binary: %w", err)
	}
	return sum, stampedSum(sum, stamp), nil
}

// Check compares the host with the plan, read-only: version, binary,
// config.yaml, service, and the node's readiness through the API.
func (s *K3sNode) Check(ctx context.Context, env *engine.Env) (engine.Drift, error) {
	c, err := s.rt.Host(ctx, s.host.Name, env.Logf)
	if err != nil {
		return engine.Drift{}, err
	}
	live, err := s.readLive(ctx, env, c, "")
	if err != nil {
		return engine.Drift{}, err
	}
	agentToken, err := readAgentToken(env.Dir, s.cluster.Name)
	if err != nil {
		return engine.Drift{}, err
	}
	if agentToken == "" {
		return engine.Drifted("no agent token yet (agents are to join with an agent-token, not the server token)"), nil
	}
	config, err := s.desiredConfig(ctx, env, agentToken)
	if err != nil {
		return engine.Drift{}, err
	}
	binarySHA, _, err := s.airgapBinarySHA(env)
	if err != nil {
		return engine.Drift{}, err
	}
	d := s.decide(live, digest.SHA256Hex(config), binarySHA)
	if d.upgrade {
		// Refused here already, so plan says so.
		cs, err := s.clusterClient(ctx, env)
		if err != nil {
			return engine.Drift{}, err
		}
		if err := s.checkClusterReady(ctx, cs); err != nil {
			return engine.Drift{}, err
		}
		return engine.Drifted(strings.Join(d.reasons, "; ") + " (" + s.rolloutNote() + ")"), nil
	}
	if len(d.reasons) > 0 {
		return engine.Drifted(strings.Join(d.reasons, "; ")), nil
	}
	client, err := s.clusterClient(ctx, env)
	if err != nil {
		return engine.Drift{}, err
	}
	ready, why, err := nodeReadiness(ctx, client, s.host.Name)
	if err != nil {
		return engine.Drift{}, fmt.Errorf("read node: %w", err)
	}
	if !ready {
		return engine.Drifted(why), nil
	}
	if n, err := client.CoreV1().Nodes().Get(ctx, s.host.Name, metav1.GetOptions{}); err == nil && cordonedForUpgrade(n) {
		return engine.Drifted("node " + s.host.Name + " is still cordoned by an interrupted upgrade"), nil
	}
	return engine.InSync(), nil
}

// Apply converges the host: uploads (airgap), config.yaml, then the
// install script when k3s is missing or another version or binary is
// wanted, or a restart when only the config changed; then waits for the
// node to be Ready.
func (s *K3sNode) Apply(ctx context.Context, env *engine.Env) error {
	c, err := s.rt.Host(ctx, s.host.Name, env.Logf)
	if err != nil {
		return err
	}
	live, err := s.readLive(ctx, env, c, "")
	if err != nil {
		return err
	}
	binarySHA, airgapRecord, err := s.airgapBinarySHA(env)
	if err != nil {
		return err
	}
	agentToken, err := ensureAgentToken(env.Dir, s.cluster.Name)
	if err != nil {
		return err
	}
	config, err := s.desiredConfig(ctx, env, agentToken)
	if err != nil {
		return err
	}
	d := s.decide(live, digest.SHA256Hex(config), binarySHA)
	if d.upgrade {
		if err := s.startUpgrade(ctx, env, c, live); err != nil {
			return err
		}
	}
	binaryCopied, configChanged, err := s.writeFiles(ctx, env, c, config)
	if err != nil {
		return err
	}
	// What the outputs record of the binary is read once it is in place,
	// while k3s comes up: an airgap binary now (the install script, told
	// to skip the download, leaves it as it is), a downloaded one after
	// the install script. The airgap binary's sum was checked on the host
	// as it was uploaded (or found there): only a downloaded one is read
	// again.
	var after liveState
	readCtx, cancelRead := context.WithCancel(ctx)
	var read errgroup.Group
	defer func() { cancelRead(); _ = read.Wait() }()
	readBinary := sync.OnceFunc(func() {
		read.Go(func() error {
			var err error
			after, err = s.readLive(readCtx, nil, c, binarySHA)
			return err
		})
	})
	if s.cluster.K3s.Airgap != nil {
		readBinary()
	}
	switch {
	case d.install:
		if err := env.Wait("install script on "+s.host.Name+" (starts "+s.unit()+")", func() error { return s.runInstall(ctx, env, c) }); err != nil {
			return err
		}
		// The install script restarts k3s only when it changed the
		// binary, unit or environment itself: an uploaded airgap binary
		// was in place before it ran, and it does not read config.yaml.
		// So a service that ran before the install runs old files and is
		// restarted. One that did not run was started by the script with
		// the new files in place (a fresh install), unless the script
		// found nothing to change (a run of it again, after one that was
		// cut off): it is then started.
		if (binaryCopied || configChanged) && live.active == "active" {
			if err := s.restart(ctx, env, c, map[bool]string{true: "binary", false: "config"}[binaryCopied]); err != nil {
				return err
			}
		} else if err := s.ensureStarted(ctx, env, c); err != nil {
			return err
		}
	case d.restart:
		if err := s.restart(ctx, env, c, "config"); err != nil {
			return err
		}
	}
	readBinary()
	if err := s.comeUp(ctx, env, c, d); err != nil {
		return err
	}
	if err := read.Wait(); err != nil {
		return err
	}
	env.SetOutput("version", after.version)
	env.SetOutput(k3sOutputBinary, after.binarySHA)
	env.SetOutput(k3sOutputBinaryStamp, after.binaryStamp)
	if airgapRecord != "" {
		env.SetOutput(k3sOutputAirgapBinary, airgapRecord)
	}
	env.SetOutput("role", s.role())
	env.SetOutput(K3sOutputCluster, s.cluster.Name)
	env.SetOutput(K3sOutputAddress, s.host.Address)
	env.SetOutput(K3sOutputFirst, strconv.FormatBool(s.isFirstServer()))
	env.SetOutput(K3sOutputRelease, s.cluster.K3sRelease())
	env.Logf("node %s Ready, k3s %s", s.host.Name, after.version)
	return nil
}

// comeUp waits for the node to be Ready, then ends an upgrade (d): the
// node checked and uncordoned.
func (s *K3sNode) comeUp(ctx context.Context, env *engine.Env, c *remote.Client, d k3sDecision) error {
	if err := env.Wait("node "+s.host.Name+" Ready", func() error { return s.waitReady(ctx, env) }); err != nil {
		return fmt.Errorf("%w%s", err, s.journalTail(ctx, c))
	}
	if d.upgrade {
		if err := s.finishUpgrade(ctx, env, c); err != nil {
			return err
		}
	}
	return s.uncordonAfterUpgrade(ctx, env)
}

// writeFiles puts the step's files on the host: the airgap files, each
// only when the host lacks it (every pinned sum checked first: nothing is
// written when one differs), and config.yaml, written on a session of
// its own beside the uploads. It says whether the binary was copied and
// whether the config changed.
func (s *K3sNode) writeFiles(ctx context.Context, env *engine.Env, c *remote.Client, config []byte) (binaryCopied, configChanged bool, err error) {
	files, err := s.airgapFiles()
	if err != nil {
		return false, false, err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		var err error
		binaryCopied, err = s.uploadAirgap(gctx, env, c, files)
		return err
	})
	g.Go(func() error {
		var err error
		if configChanged, err = c.UploadBytes(gctx, config, k3sConfigPath, 0o600); err != nil {
			return fmt.Errorf("write %s: %w", k3sConfigPath, err)
		}
		if configChanged {
			env.Logf("wrote %s", k3sConfigPath)
		}
		return nil
	})
	err = g.Wait()
	return binaryCopied, configChanged, err
}

// restart restarts the k3s service for a new binary or config (why).
func (s *K3sNode) restart(ctx context.Context, env *engine.Env, c *remote.Client, why string) error {
	env.Logf("restarting %s for the new %s", s.unit(), why)
	if err := s.startUnit(ctx, env, c, "restart", "systemctl restart "+remote.ShellQuote(s.unit())); err != nil {
		return fmt.Errorf("restart: %w", err)
	}
	return nil
}

// ensureStarted starts the k3s service unless it runs.
func (s *K3sNode) ensureStarted(ctx context.Context, env *engine.Env, c *remote.Client) error {
	unit := remote.ShellQuote(s.unit())
	if err := s.startUnit(ctx, env, c, "start", "systemctl is-active --quiet "+unit+" || systemctl start "+unit); err != nil {
		return fmt.Errorf("start %s: %w", s.unit(), err)
	}
	return nil
}

// startUnit runs command, a systemctl start or restart, which returns once
// k3s says it is up: k3s's unit has no start timeout of its own, so the
// wait is bounded by the step's node timeout, and a start that did not
// end says what k3s's log shows.
func (s *K3sNode) startUnit(ctx context.Context, env *engine.Env, c *remote.Client, what, command string) error {
	return env.Wait(what+" of "+s.unit()+" on "+s.host.Name, func() error {
		runCtx, cancel := context.WithTimeout(ctx, s.timeout)
		defer cancel()
		_, err := c.Run(runCtx, command, remoteOptions(env))
		if err != nil && ctx.Err() == nil && runCtx.Err() != nil {
			return fmt.Errorf("%s did not come up within %s%s", s.unit(), s.timeout, s.journalTail(ctx, c))
		}
		return err
	})
}

// waitReady waits, within the step's timeout, for the first server to
// write its kubeconfig (k3s does once its API is up) and then for this
// node to be Ready through the API.
func (s *K3sNode) waitReady(ctx context.Context, env *engine.Env) error {
	deadline := time.Now().Add(s.timeout)
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	for {
		cfg, err := s.rt.clusterREST(ctx, s.cluster, env.Logf)
		if err == nil {
			return waitNodeReady(ctx, cfg, s.host.Name, time.Until(deadline))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the API of cluster %s did not come up within %s: %w", s.cluster.Name, s.timeout, err)
		case <-time.After(time.Second):
		}
	}
}

// airgapFile is one file of the plan's airgap set: its local path
// (resolved), where it goes on the host, the plan field that may pin its
// sum and the sum pinned there (or ""), and its sum.
type airgapFile struct{ local, remote, field, pinned, sum string }

// airgapFiles are the plan's airgap files with their sums, each checked
// against the sum the plan pins (an error names the first that differs);
// none without airgap.
func (s *K3sNode) airgapFiles() ([]airgapFile, error) {
	a := s.cluster.K3s.Airgap
	if a == nil {
		return nil, nil
	}
	files := []airgapFile{
		{local: a.Binary, remote: k3sBinaryPath, field: "binarySHA256", pinned: a.BinarySHA256},
		{local: a.InstallScript, remote: k3sScriptPath, field: "installScriptSHA256", pinned: a.InstallScriptSHA256},
	}
	if a.Images != "" {
		files = append(files, airgapFile{local: a.Images, remote: path.Join(k3sImagesDir, path.Base(a.Images)), field: "imagesSHA256", pinned: a.ImagesSHA256})
	}
	for i, f := range files {
		local := s.rt.plan.Resolve(f.local)
		got, err := s.rt.fileSHA256(local)
		if err != nil {
			return nil, fmt.Errorf("airgap: %w", err)
		}
		if f.pinned != "" && got != f.pinned {
			return nil, fmt.Errorf("airgap: %s has sha256 %s, but airgap.%s pins %s: nothing was uploaded", local, got, f.field, f.pinned)
		}
		files[i].local, files[i].sum = local, got
	}
	return files, nil
}

// uploadAirgap copies the airgap files, each only when the host lacks it;
// it says whether the binary was copied.
func (s *K3sNode) uploadAirgap(ctx context.Context, env *engine.Env, c *remote.Client, files []airgapFile) (binaryCopied bool, err error) {
	for _, f := range files {
		var copied bool
		err := env.Wait("upload of "+path.Base(f.local)+" to "+s.host.Name, func() error {
			var err error
			copied, err = c.UploadFile(ctx, f.local, f.sum, f.remote, 0o755)
			return err
		})
		if err != nil {
			return false, err
		}
		if copied {
			env.Logf("uploaded %s to %s", f.local, f.remote)
			binaryCopied = binaryCopied || f.remote == k3sBinaryPath
		}
	}
	return binaryCopied, nil
}

// runInstall runs the install script with the INSTALL_K3S_* settings of
// the plan: the uploaded script for airgap, else the upstream (or China
// mirror) script downloaded on the host. Every value is quoted. The
// download goes to a file first: piped into sh, a failed curl would leave
// sh reading nothing and exiting 0 (dash has no pipefail).
func (s *K3sNode) runInstall(ctx context.Context, env *engine.Env, c *remote.Client) error {
	vars := [][2]string{{"INSTALL_K3S_EXEC", s.role()}}
	k := s.cluster.K3s
	if k.Version != "" {
		vars = append(vars, [2]string{"INSTALL_K3S_VERSION", k.Version})
	} else if k.Channel != "" {
		vars = append(vars, [2]string{"INSTALL_K3S_CHANNEL", k.Channel})
	}
	if k.Mirror == "cn" {
		vars = append(vars, [2]string{"INSTALL_K3S_MIRROR", "cn"})
	}
	if k.Airgap != nil {
		vars = append(vars, [2]string{"INSTALL_K3S_SKIP_DOWNLOAD", "true"})
	}
	assign, shown := make([]string, len(vars)), make([]string, len(vars))
	for i, v := range vars {
		assign[i] = v[0] + "=" + remote.ShellQuote(v[1])
		shown[i] = v[0] + "=" + v[1]
	}
	run := "env " + strings.Join(assign, " ") + " sh "
	var command string
	if k.Airgap != nil {
		command = run + remote.ShellQuote(k3sScriptPath)
	} else {
		url := k3sInstallURL
		if k.Mirror == "cn" {
			url = k3sInstallURLCN
		}
		command = `script=$(mktemp) && trap 'rm -f "$script"' EXIT && curl -sfL ` + remote.ShellQuote(url) + ` -o "$script" && ` + run + `"$script"`
	}
	env.Logf("installing k3s %s (%s)", s.role(), strings.Join(shown, " "))
	if _, err := c.Run(ctx, command, remoteOptions(env)); err != nil {
		return fmt.Errorf("install script: %w", err)
	}
	return nil
}

// journalTail is the end of the k3s service's log, to explain a failure.
func (s *K3sNode) journalTail(ctx context.Context, c *remote.Client) string {
	res, err := c.Run(ctx, "journalctl -u "+s.unit()+" -n 15 --no-pager 2>/dev/null || systemctl status "+s.unit()+" --no-pager 2>/dev/null", remote.RunOptions{})
	if err != nil || strings.TrimSpace(res.Stdout) == "" {
		return ""
	}
	return "\nlast lines of " + s.unit() + "'s log:\n" + res.Stdout
}
