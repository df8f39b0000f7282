// Package digest is the one sha256 helper mcplan's packages share: sums
// of bytes and files as lowercase hex.
package digest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"syscall"
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

// FileStamp identifies a version of a file without reading it: its
// size, modification and change times, inode and device. A file written
// again gets another stamp (its change time moves, and no program sets
// that back), so a sum recorded with a stamp still holds while the
// stamp does: the quick check of rsync and make.
func FileStamp(name string) (string, error) {
	fi, err := os.Stat(name)
	if err != nil {
		return "", err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Sprintf("%d %d", fi.Size(), fi.ModTime().UnixNano()), nil
	}
	return fmt.Sprintf("%d %d %d.%d %d %d", fi.Size(), fi.ModTime().UnixNano(), st.Ctim.Sec, st.Ctim.Nsec, st.Ino, st.Dev), nil
}
