package native

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// writeLog pumps stdout into a fresh log file, as a container run would.
func writeLog(t *testing.T, stdout string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "c", "0.log")
	l, err := openLog(path)
	if err != nil {
		t.Fatal(err)
	}
	l.pump(strings.NewReader(stdout), streamStdout)
	l.note(streamStderr, "from stderr")
	l.close()
	return path
}

func TestLogFileIsCRIFormat(t *testing.T) {
	long := strings.Repeat("x", logMaxLine+10)
	path := writeLog(t, "one\n"+long+"\nlast without newline")
	var raw bytes.Buffer
	if err := readLogs(context.Background(), path, LogOptions{}, func() bool { return false }, &raw); err != nil {
		t.Fatal(err)
	}
	// The unterminated last line is a partial entry, joined to the next.
	if want := "one\n" + long + "\nlast without newlinefrom stderr\n"; raw.String() != want {
		t.Fatalf("read back %.200q", raw.String())
	}
	b, err := readFile(path)
	if err != nil {
		t.Fatal(err)
	}
	entry := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z (stdout|stderr) [FP] `)
	lines := strings.Split(strings.TrimSuffix(b, "\n"), "\n")
	if len(lines) != 5 { // one, long as P+F, last (P), stderr
		t.Fatalf("%d entries: %q", len(lines), lines)
	}
	for _, l := range lines {
		if !entry.MatchString(l) {
			t.Fatalf("not a CRI log entry: %.80q", l)
		}
	}
}

func TestReadLogsOptions(t *testing.T) {
	path := writeLog(t, "a\nb\nc\nd\n")
	three, zero := int64(3), int64(0)
	limit := int64(3)
	for _, tc := range []struct {
		name string
		opts LogOptions
		want string
	}{
		{"all", LogOptions{}, "a\nb\nc\nd\nfrom stderr\n"},
		{"tail 3", LogOptions{TailLines: &three}, "c\nd\nfrom stderr\n"},
		{"tail 0", LogOptions{TailLines: &zero}, ""},
		{"limit bytes", LogOptions{LimitBytes: &limit}, "a\nb"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := readLogs(context.Background(), path, tc.opts, func() bool { return false }, &out); err != nil {
				t.Fatal(err)
			}
			if out.String() != tc.want {
				t.Fatalf("got %q, want %q", out.String(), tc.want)
			}
		})
	}
	var out bytes.Buffer
	if err := readLogs(context.Background(), path, LogOptions{Timestamps: true}, func() bool { return false }, &out); err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\S+Z a\n`).MatchString(out.String()) {
		t.Fatalf("timestamps: %q", out.String())
	}
}

func readFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	return string(b), err
}
