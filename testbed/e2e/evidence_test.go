package e2e

import (
	"bufio"
	"context"
	"maps"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"mcplan.io/mcplan/testbed"
)

// What the tests read on a host to gather evidence; they are left out of
// the commands attributed to mcplan.
const (
	readSSHLog = "cat " + testbed.SSHCommandLog + " 2>/dev/null || true"
	// snapshotScript prints what an apply that changes nothing must
	// leave as it was: content, inode and mtime of k3s's config, binary,
	// units and their environment files, and each k3s service's
	// invocation and restart count.
	snapshotScript = `for f in /etc/rancher/k3s/config.yaml /usr/local/bin/k3s /etc/systemd/system/k3s.service /etc/systemd/system/k3s.service.env /etc/systemd/system/k3s-agent.service /etc/systemd/system/k3s-agent.service.env; do
  if [ -e "$f" ]; then echo "$f sha256=$(sha256sum < "$f" | cut -d' ' -f1) inode=$(stat -c %i "$f") mtime=$(stat -c %y "$f")"; else echo "$f absent"; fi
done
for u in k3s k3s-agent; do echo "$u $(systemctl show -p InvocationID -p NRestarts -p ActiveState $u | sort | tr '\n' ' ')"; done`
)

// sshLogMarks returns how many commands each host's SSH command log holds
// (its own read included).
func (w *world) sshLogMarks() map[string]int {
	w.t.Helper()
	marks := map[string]int{}
	for _, h := range w.bed.Hosts {
		marks[h.Name] = len(w.sshLog(h))
	}
	return marks
}

// sshLog is a host's SSH command log.
func (w *world) sshLog(h testbed.Host) []testbed.LoggedCommand {
	w.t.Helper()
	cmds, err := testbed.ParseSSHCommandLog(w.ssh(h, readSSHLog))
	if err != nil {
		w.t.Fatalf("%s: %v", h.Name, err)
	}
	return cmds
}

// sshCommandsSince returns the commands that reached each host after
// marks, but for the test's own evidence reads.
func (w *world) sshCommandsSince(marks map[string]int) map[string][]string {
	w.t.Helper()
	out := map[string][]string{}
	for _, h := range w.bed.Hosts {
		cmds := w.sshLog(h)
		if len(cmds) < marks[h.Name] {
			w.t.Fatalf("%s: the SSH command log shrank from %d to %d lines", h.Name, marks[h.Name], len(cmds))
		}
		for _, c := range cmds[marks[h.Name]:] {
			if c.Command != readSSHLog && c.Command != snapshotScript {
				out[h.Name] = append(out[h.Name], c.Command)
			}
		}
	}
	return out
}

// hostSnapshots returns each host's snapshotScript output.
func (w *world) hostSnapshots() map[string]string {
	w.t.Helper()
	snaps := map[string]string{}
	for _, h := range w.bed.Hosts {
		snaps[h.Name] = w.ssh(h, snapshotScript)
	}
	return snaps
}

// serviceInvocations returns, per host, the InvocationID of its k3s
// service (k3s on a server, k3s-agent on an agent): a restart changes it.
func (w *world) serviceInvocations() map[string]string {
	w.t.Helper()
	ids := map[string]string{}
	for _, h := range w.bed.Hosts {
		ids[h.Name] = strings.TrimSpace(w.ssh(h, "for u in k3s k3s-agent; do systemctl show -p InvocationID --value $u; done | tr -s '\\n' ' '"))
	}
	return ids
}

// readCommands are the commands mcplan sends to read a host: facts, the
// installed k3s, the kubeconfig and token, file sums, the journal for an
// error message. Anything else is a write (or a read this list does not
// know yet: add it here once you have checked it changes nothing).
var readCommands = []*regexp.Regexp{
	regexp.MustCompile(`^echo "kernel=\$\(uname -s\)"\n`),                                     // host/facts
	regexp.MustCompile(`^echo "version=\$\(/usr/local/bin/k3s --version `),                    // k3s: installed state
	regexp.MustCompile(`^stamp=\$\(stat -L -c '%s %Z %i' /usr/local/bin/k3s 2>/dev/null\)\n`), // k3s: installed state, by stamp
	regexp.MustCompile(`^cat /etc/rancher/k3s/k3s\.yaml$`),                                    // kubeconfig
	regexp.MustCompile(`^cat /var/lib/rancher/k3s/server/(token|agent-token)$`),               // cluster token
	regexp.MustCompile(`^if \[ -f '[^']+' \]; then sha256sum '[^']+'; fi$`),                   // remote.RemoteSHA256
	regexp.MustCompile(`^journalctl -u k3s(-agent)? `),                                        // an error's context
}

// writeWord finds, in a command that starts as a known read, what would
// make it write: a redirection other than of errors to /dev/null, or a
// command that changes files or services.
var writeWord = regexp.MustCompile(`(^|[^2])>[^&]|\b(rm|mv|cp|tee|touch|chmod|chown|mkdir|ln|install|dd|truncate|sed -i)\s|systemctl\s+(start|stop|restart|reload|enable|disable|daemon-reload|kill)\b`)

// killableWrapper is how steps/remote wraps every command so that a
// cancelled run can kill it: a PID file in /run/mcplan (tmpfs, removed
// when the command ends), then the command in a subshell. The wrapper
// changes nothing that lasts; checkReadOnly judges what it wraps.
var killableWrapper = regexp.MustCompile(`(?s)^mkdir -p -m 0700 '/run/mcplan' && echo \$\$ > '/run/mcplan/run-[0-9a-f]+\.pid' && trap 'rm -f '\\''/run/mcplan/run-[0-9a-f]+\.pid'\\''' EXIT && \((.*)\n\)$`)

// unwrap is the command inside killableWrapper.
func unwrap(c string) string {
	if m := killableWrapper.FindStringSubmatch(c); m != nil {
		return m[1]
	}
	return c
}

// checkReadOnly fails the test for each command that is not a known read,
// and when a host in want got no command at all (an empty log proves
// nothing).
func checkReadOnly(t *testing.T, what string, cmds map[string][]string, want []string) {
	t.Helper()
	for _, p := range readOnlyProblems(cmds, want) {
		t.Errorf("%s: %s", what, p)
	}
}

// readOnlyProblems is what checkReadOnly reports.
func readOnlyProblems(cmds map[string][]string, want []string) []string {
	var problems []string
	for _, h := range want {
		if len(cmds[h]) == 0 {
			problems = append(problems, "no command reached "+h+" (its SSH command log is empty: the evidence is missing)")
		}
	}
	for _, h := range slices.Sorted(maps.Keys(cmds)) {
		for _, c := range cmds[h] {
			inner := unwrap(c)
			if !slices.ContainsFunc(readCommands, func(re *regexp.Regexp) bool { return re.MatchString(inner) }) {
				problems = append(problems, h+" got a command that is not a known read:\n"+indent(c))
			} else if w := writeWord.FindString(inner); w != "" {
				problems = append(problems, h+" got a read that writes ("+strings.TrimSpace(w)+"):\n"+indent(c))
			}
		}
	}
	return problems
}

// checkSnapshotsEqual fails the test for each host whose snapshot changed.
func checkSnapshotsEqual(t *testing.T, what string, before, after map[string]string) {
	t.Helper()
	for h, b := range before {
		if a := after[h]; a != b {
			t.Errorf("%s changed %s:\nbefore:\n%s\nafter:\n%s", what, h, indent(b), indent(a))
		}
	}
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ")
}

// TestReadCommandsTellReadsFromWrites: the classifier of checkReadOnly
// lets mcplan's reads through, inside or outside the kill wrapper, and
// flags its writes.
func TestReadCommandsTellReadsFromWrites(t *testing.T) {
	wrap := func(c string) string {
		return "mkdir -p -m 0700 '/run/mcplan' && echo $$ > '/run/mcplan/run-ab12.pid' && trap 'rm -f '\\''/run/mcplan/run-ab12.pid'\\''' EXIT && (" + c + "\n)"
	}
	for _, tt := range []struct {
		command string
		read    bool
	}{
		{wrap("cat /etc/rancher/k3s/k3s.yaml"), true},
		{"cat /var/lib/rancher/k3s/server/token", true},
		{wrap("if [ -f '/etc/rancher/k3s/config.yaml' ]; then sha256sum '/etc/rancher/k3s/config.yaml'; fi"), true},
		{wrap("systemctl restart k3s"), false},
		{wrap("chmod 600 '/etc/rancher/k3s/config.yaml'"), false},
		{wrap("mkdir -p '/etc/rancher/k3s' && (umask 077 && cat > '/etc/rancher/k3s/config.yaml.mcplan-upload')"), false},
		{wrap("cat /etc/rancher/k3s/k3s.yaml; rm -rf /var/lib/rancher"), false},
		{wrap("echo \"version=$(/usr/local/bin/k3s --version 2>/dev/null | head -n1)\"\ntouch /etc/rancher/k3s/config.yaml"), false},
		{wrap("echo \"version=$(/usr/local/bin/k3s --version 2>/dev/null | head -n1)\"\necho x > /etc/rancher/k3s/config.yaml"), false},
		{wrap("echo \"version=$(/usr/local/bin/k3s --version 2>/dev/null | head -n1)\"\necho \"active=$(systemctl is-active k3s 2>/dev/null)\""), true},
		{wrap("stamp=$(stat -L -c '%s %Z %i' /usr/local/bin/k3s 2>/dev/null)\necho \"binary_stamp=$stamp\"\nif [ -n \"$stamp\" ] && [ \"$stamp\" = '1 2 3' ]; then echo \"known=yes\"; fi"), true},
		{wrap("stamp=$(stat -L -c '%s %Z %i' /usr/local/bin/k3s 2>/dev/null)\ntouch /usr/local/bin/k3s"), false},
	} {
		problems := readOnlyProblems(map[string][]string{"h1": {tt.command}}, nil)
		if read := len(problems) == 0; read != tt.read {
			t.Errorf("%q: read %v, want %v", tt.command, read, tt.read)
		}
	}
}

// addUserContext adds a context of the user's own (not mcplan's) to a
// kubeconfig file.
func (w *world) addUserContext(t *testing.T, path string) {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Clusters["user-cluster"] = &clientcmdapi.Cluster{Server: "https://127.0.0.1:1"}
	cfg.AuthInfos["user-user"] = &clientcmdapi.AuthInfo{Token: "not-a-real-token"}
	cfg.Contexts["user-own"] = &clientcmdapi.Context{Cluster: "user-cluster", AuthInfo: "user-user"}
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
}

// killDuring runs mcplan with args and SIGKILLs it as soon as a line of
// its output contains moment; it fails the test if mcplan ends first.
func (w *world) killDuring(t *testing.T, ctx context.Context, moment string, args ...string) {
	t.Helper()
	cmd := exec.CommandContext(ctx, w.mcplan, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var seen []string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		seen = append(seen, sc.Text())
		if strings.Contains(sc.Text(), moment) {
			cmd.Process.Signal(syscall.SIGKILL)
			cmd.Wait()
			t.Logf("killed mcplan %s at %q", args[0], sc.Text())
			return
		}
	}
	cmd.Wait()
	t.Fatalf("mcplan %s ended before %q:\n%s", args[0], moment, strings.Join(seen, "\n"))
}
