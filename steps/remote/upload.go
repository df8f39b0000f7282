package remote

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
)

// Upload copies a local file to the host unless the host already has it:
// it compares sha256 sums, streams the file to a temporary name next to
// the target, checks the sum on the host, then renames it into place.
// It reports whether it copied anything.
func (c *Client) Upload(ctx context.Context, local, remotePath string, mode os.FileMode) (bool, error) {
	sum, err := fileSHA256(local)
	if err != nil {
		return false, fmt.Errorf("%s: upload %s: %w", c.endpoint, local, err)
	}
	if have, err := c.RemoteSHA256(ctx, remotePath); err != nil {
		return false, err
	} else if have == sum {
		if err := c.chmod(ctx, remotePath, mode); err != nil {
			return false, err
		}
		return false, nil
	}
	f, err := os.Open(local)
	if err != nil {
		return false, fmt.Errorf("%s: upload %s: %w", c.endpoint, local, err)
	}
	defer f.Close()
	tmp := remotePath + ".mcplan-upload"
	q, qt := ShellQuote(remotePath), ShellQuote(tmp)
	script := fmt.Sprintf("mkdir -p %s && cat > %s && chmod %o %s && echo \"%s  %s\" | sha256sum -c --status - && mv -f %s %s",
		ShellQuote(path.Dir(remotePath)), qt, mode.Perm(), qt, sum, tmp, qt, q)
	if _, err := c.Run(ctx, script, RunOptions{Stdin: f}); err != nil {
		_, _ = c.Run(context.WithoutCancel(ctx), "rm -f "+qt, RunOptions{})
		return false, fmt.Errorf("upload %s to %s (sha256 checked on the host): %w", local, remotePath, err)
	}
	return true, nil
}

// RemoteSHA256 returns the sha256 of a file on the host, or "" when it
// does not exist.
func (c *Client) RemoteSHA256(ctx context.Context, remotePath string) (string, error) {
	q := ShellQuote(remotePath)
	res, err := c.Run(ctx, fmt.Sprintf("if [ -f %s ]; then sha256sum %s; fi", q, q), RunOptions{})
	if err != nil {
		return "", err
	}
	fields := strings.Fields(res.Stdout)
	if len(fields) == 0 {
		return "", nil
	}
	return fields[0], nil
}

func (c *Client) chmod(ctx context.Context, remotePath string, mode os.FileMode) error {
	_, err := c.Run(ctx, fmt.Sprintf("chmod %o %s", mode.Perm(), ShellQuote(remotePath)), RunOptions{})
	return err
}

func fileSHA256(name string) (string, error) {
	f, err := os.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
