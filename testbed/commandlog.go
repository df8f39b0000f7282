package testbed

import (
	"encoding/base64"
	"fmt"
	"strings"
)

// LoggedCommand is one line of a host's SSHCommandLog.
type LoggedCommand struct {
	Time    string // UTC, as the host's date printed it
	Command string
}

// ParseSSHCommandLog reads the content of a host's SSHCommandLog.
func ParseSSHCommandLog(content string) ([]LoggedCommand, error) {
	var out []LoggedCommand
	for i, line := range strings.Split(strings.TrimRight(content, "\n"), "\n") {
		if line == "" {
			continue
		}
		ts, enc, _ := strings.Cut(line, " ")
		cmd, err := base64.StdEncoding.DecodeString(enc)
		if err != nil {
			return nil, fmt.Errorf("%s line %d: %w", SSHCommandLog, i+1, err)
		}
		out = append(out, LoggedCommand{Time: ts, Command: string(cmd)})
	}
	return out, nil
}
