package steps

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"mcplan.io/mcplan/steps/statedir"
)

// k3s documents its server token as full-admin: it joins servers and is
// the passphrase of the datastore's CA keys. Agents need less, so mcplan
// gives every server of a cluster an agent-token and agents only that.
// The agent token is made on this machine, kept 0600 under the state
// directory (never in the state file or the logs), and written into the
// servers' and agents' config.yaml.

// agentTokenLen is the length of the hex token mcplan makes.
const agentTokenLen = 64

// readAgentToken returns the cluster's agent token, or "" when none was
// made yet.
func readAgentToken(stateDir, cluster string) (string, error) {
	path := statedir.AgentToken(stateDir, cluster)
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", nil
	case err != nil:
		return "", fmt.Errorf("agent token: %w", err)
	}
	token := strings.TrimSpace(string(b))
	if _, err := hex.DecodeString(token); err != nil || len(token) != agentTokenLen {
		return "", fmt.Errorf("agent token %s is not %d hex digits: remove it and apply again (the cluster's servers and agents then get a new one)", path, agentTokenLen)
	}
	return token, nil
}

// ensureAgentToken returns the cluster's agent token, making it when
// there is none. The file appears whole or not at all (a temporary file
// linked into place), and a token another step made first is kept.
func ensureAgentToken(stateDir, cluster string) (string, error) {
	if token, err := readAgentToken(stateDir, cluster); err != nil || token != "" {
		return token, err
	}
	path := statedir.AgentToken(stateDir, cluster)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("agent token: %w", err)
	}
	b := make([]byte, agentTokenLen/2)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("agent token: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".agent-token-*")
	if err != nil {
		return "", fmt.Errorf("agent token: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(hex.EncodeToString(b) + "\n")
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Link(tmp.Name(), path)
	}
	if err != nil && !errors.Is(err, fs.ErrExist) {
		return "", fmt.Errorf("agent token: %w", err)
	}
	return readAgentToken(stateDir, cluster)
}
