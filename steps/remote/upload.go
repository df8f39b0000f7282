package remote

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"mcplan.io/mcplan/internal/digest"
)

// Upload copies a local file to the host unless the host already has it:
// it compares sha256 sums, streams the file to a temporary name next to
// the target, checks the sum on the host, then renames it into place.
// It reports whether it copied anything.
func (c *Client) Upload(ctx context.Context, local, remotePath string, mode os.FileMode) (bool, error) {
	sum, err := digest.FileSHA256(local)
	if err != nil {
		return false, fmt.Errorf("%s: upload %s: %w", c.endpoint, local, err)
	}
	return c.UploadFile(ctx, local, sum, remotePath, mode)
}

// UploadFile is Upload of a file whose sha256 the caller read already
// (a file uploaded to many hosts is read once for its sum).
func (c *Client) UploadFile(ctx context.Context, local, sum, remotePath string, mode os.FileMode) (bool, error) {
	return c.upload(ctx, sum, local, func() (io.ReadSeekCloser, error) { return os.Open(local) }, remotePath, mode)
}

// UploadBytes writes data to a file on the host as Upload does; for
// generated files (data may be secret: it is never logged).
func (c *Client) UploadBytes(ctx context.Context, data []byte, remotePath string, mode os.FileMode) (bool, error) {
	return c.upload(ctx, digest.SHA256Hex(data), "generated content", func() (io.ReadSeekCloser, error) {
		return nopSeekCloser{bytes.NewReader(data)}, nil
	}, remotePath, mode)
}

// nopSeekCloser is generated content as a file: it can be sent again
// after a lost connection.
type nopSeekCloser struct{ *bytes.Reader }

func (nopSeekCloser) Close() error { return nil }

// upload streams what open gives; the content is sent again, from its
// start, when the connection is lost during the copy (see Run).
func (c *Client) upload(ctx context.Context, sum, what string, open func() (io.ReadSeekCloser, error), remotePath string, mode os.FileMode) (bool, error) {
	if have, err := c.RemoteSHA256(ctx, remotePath); err != nil {
		return false, err
	} else if have == sum {
		return false, c.chmod(ctx, remotePath, mode)
	}
	content, err := open()
	if err != nil {
		return false, fmt.Errorf("%s: upload %s: %w", c.endpoint, what, err)
	}
	defer content.Close()
	tmp := remotePath + ".mcplan-upload"
	q, qt := ShellQuote(remotePath), ShellQuote(tmp)
	// The sum is checked from stdin, so no path is interpolated into the
	// comparison (sum is hex digits from this machine).
	script := fmt.Sprintf(`mkdir -p %s && (umask 077 && cat > %s) && chmod %o %s && [ "$(sha256sum < %s)" = %s ] && mv -f %s %s`,
		ShellQuote(path.Dir(remotePath)), qt, mode.Perm(), qt, qt, ShellQuote(sum+"  -"), qt, q)
	if _, err := c.Run(ctx, script, RunOptions{Stdin: content}); err != nil {
		_, _ = c.Run(context.WithoutCancel(ctx), "rm -f "+qt, RunOptions{})
		return false, fmt.Errorf("upload %s to %s (sha256 checked on the host): %w", what, remotePath, err)
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
