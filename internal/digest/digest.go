// Package digest is the one sha256 helper mcplan's packages share: sums
// of bytes and files as lowercase hex.
package digest

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
)

// SHA256Hex is the hex sha256 of data.
func SHA256Hex(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// FileSHA256 is the hex sha256 of a file's content.
func FileSHA256(name string) (string, error) {
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

// Short abbreviates a hex sum for messages: its first 16 digits and an
// ellipsis.
func Short(sum string) string {
	if len(sum) <= 16 {
		return sum
	}
	return sum[:16] + "…"
}
