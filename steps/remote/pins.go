package remote

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"mcplan.io/mcplan/internal/atomicfile"
)

// PinFile keeps the host keys pinned on first use (ssh.knownHosts: pin) in
// a known_hosts file beside the state, keyed by address and port: a file
// a team can commit, so that a fresh checkout or a CI job checks the keys
// pinned before instead of pinning again, and a host renamed in the plan
// keeps its pin. It implements TrustStore for the keys pinKey makes.
type PinFile struct {
	path string
	// noNew refuses to pin a host that has no pin yet (--no-new-pins).
	noNew bool

	mu   sync.Mutex
	pins map[string]string // knownhosts.Normalize(host:port) -> "type base64"
}

// pinFileHeader opens the file; it names what the file is.
const pinFileHeader = "# Host keys mcplan pinned on first use (ssh.knownHosts: pin), in known_hosts format.\n" +
	"# Commit this file: later runs and other machines then check these keys.\n"

// OpenPinFile reads the pin file at path (missing is empty). legacy are the
// pins earlier versions kept in the state ("ssh-host-key/<name>@<host:port>"
// -> key): those the file lacks are added to it.
func OpenPinFile(path string, legacy map[string]string, noNewPins bool) (*PinFile, error) {
	p := &PinFile{path: path, noNew: noNewPins, pins: map[string]string{}}
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("host key pins: %w", err)
	}
	for rest := data; len(bytes.TrimSpace(rest)) > 0; {
		var hosts []string
		var key ssh.PublicKey
		_, hosts, key, _, rest, err = ssh.ParseKnownHosts(rest)
		if err != nil {
			return nil, fmt.Errorf("host key pins %s: %w", path, err)
		}
		for _, h := range hosts {
			p.pins[h] = authorizedLine(key)
		}
	}
	added := false
	for k, v := range legacy {
		name, ok := strings.CutPrefix(k, pinKeyPrefix)
		if !ok {
			continue
		}
		_, hostport, ok := strings.Cut(name, "@")
		if !ok {
			continue
		}
		if h := knownhosts.Normalize(hostport); p.pins[h] == "" {
			p.pins[h], added = v, true
		}
	}
	if added {
		if err := p.write(); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func authorizedLine(key ssh.PublicKey) string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key)))
}

// Trusted returns the pinned key of a pinKey.
func (p *PinFile) Trusted(key string) (string, bool) {
	hostport, ok := strings.CutPrefix(key, pinKeyPrefix)
	if !ok {
		return "", false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	v, ok := p.pins[knownhosts.Normalize(hostport)]
	return v, ok
}

// Trust pins a key and writes the file, unless new pins are refused.
func (p *PinFile) Trust(key, value string) error {
	hostport, ok := strings.CutPrefix(key, pinKeyPrefix)
	if !ok {
		return fmt.Errorf("host key pins: unknown key %q", key)
	}
	if p.noNew {
		return fmt.Errorf("no pinned host key for %s in %s, and this run pins none (apply's --no-new-pins, or a read-only command such as verify): check the host's key (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub on it), then run mcplan apply once without --no-new-pins and commit %s", hostport, p.path, p.path)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pins[knownhosts.Normalize(hostport)] = value
	return p.write()
}

// write rewrites the file, sorted. Called with mu held (or before p is
// shared).
func (p *PinFile) write() error {
	hosts := make([]string, 0, len(p.pins))
	for h := range p.pins {
		hosts = append(hosts, h)
	}
	slices.Sort(hosts)
	var b strings.Builder
	b.WriteString(pinFileHeader)
	for _, h := range hosts {
		b.WriteString(h + " " + p.pins[h] + "\n")
	}
	// Public keys only: readable, like ~/.ssh/known_hosts.
	if err := atomicfile.Write(p.path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("host key pins: %w", err)
	}
	return nil
}
