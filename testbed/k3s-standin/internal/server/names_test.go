package server

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestNewMemberName(t *testing.T) {
	for _, node := range []string{"h1", "server-1", "ip-10-0-0-1", "node-12345678"} {
		a, err := newMemberName(node)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := newMemberName(node)
		if !regexp.MustCompile(`^`+regexp.QuoteMeta(node)+`-[0-9a-f]{8}$`).MatchString(a) || a == b {
			t.Errorf("newMemberName(%q) = %q, %q: want <node>-<8 hex>, different each time", node, a, b)
		}
		if got := memberNodeName(a); got != node {
			t.Errorf("memberNodeName(%q) = %q, want %q", a, got, node)
		}
	}
}

func TestMemberNodeName(t *testing.T) {
	for _, c := range []struct{ member, want string }{
		{"h1-0123abcd", "h1"},
		{"server-1-deadbeef", "server-1"},
		{"node-12345678-0badf00d", "node-12345678"},
		{"default", ""},      // older stand-ins' only member
		{"h1-xyz12345", ""},  // suffix not hex
		{"h1-0123abc", ""},   // suffix too short
		{"-0123abcd", ""},    // no node name
		{"h1-0123abcd0", ""}, // suffix too long
		{"", ""},
	} {
		if got := memberNodeName(c.member); got != c.want {
			t.Errorf("memberNodeName(%q) = %q, want %q", c.member, got, c.want)
		}
	}
}

func TestMemberOfNode(t *testing.T) {
	for _, c := range []struct {
		member, annotated, node string
		want                    bool
	}{
		{"h2-0123abcd", "h2-0123abcd", "h2", true},
		{"h2-0123abcd", "h2-ffffffff", "h2", false}, // another incarnation
		{"h2-0123abcd", "", "h2", true},             // no annotation: by prefix
		{"h20-0123abcd", "", "h2", false},
		{"h2-x-0123abcd", "", "h2", false},
		{"default", "", "default", false},
	} {
		if got := memberOfNode(c.member, c.annotated, c.node); got != c.want {
			t.Errorf("memberOfNode(%q, %q, %q) = %v, want %v", c.member, c.annotated, c.node, got, c.want)
		}
	}
}

func TestSnapshotName(t *testing.T) {
	at := time.Unix(1700000000, 0)
	for _, c := range []struct{ base, node, want string }{
		{"on-demand", "server-1", "on-demand-server-1-1700000000"},
		{"before-upgrade", "h1", "before-upgrade-h1-1700000000"},
	} {
		if got := snapshotName(c.base, c.node, at); got != c.want {
			t.Errorf("snapshotName(%q, %q) = %q, want %q", c.base, c.node, got, c.want)
		}
	}
}

func TestListSnapshots(t *testing.T) {
	dir := t.TempDir()
	for name, size := range map[string]int{"on-demand-h1-1700000100": 300, "on-demand-h1-1700000000": 12} {
		if err := os.WriteFile(filepath.Join(dir, name), make([]byte, size), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "not-a-snapshot"), 0o700); err != nil {
		t.Fatal(err)
	}
	created := time.Date(2023, 11, 14, 22, 13, 20, 0, time.UTC)
	for _, n := range []string{"on-demand-h1-1700000000", "on-demand-h1-1700000100"} {
		if err := os.Chtimes(filepath.Join(dir, n), created, created); err != nil {
			t.Fatal(err)
		}
	}
	var out strings.Builder
	if err := listSnapshots(dir, &out); err != nil {
		t.Fatal(err)
	}
	want := "Name                    Location                                     Size Created\n" +
		"on-demand-h1-1700000000 file://" + dir + "/on-demand-h1-1700000000 12   2023-11-14T22:13:20Z\n" +
		"on-demand-h1-1700000100 file://" + dir + "/on-demand-h1-1700000100 300  2023-11-14T22:13:20Z\n"
	// Column widths depend on the temp dir's length; compare fields.
	gotLines, wantLines := strings.Split(out.String(), "\n"), strings.Split(want, "\n")
	if len(gotLines) != len(wantLines) {
		t.Fatalf("ls printed\n%s\nwant\n%s", out.String(), want)
	}
	for i := range gotLines {
		if strings.Join(strings.Fields(gotLines[i]), " ") != strings.Join(strings.Fields(wantLines[i]), " ") {
			t.Errorf("line %d: %q, want %q", i, gotLines[i], wantLines[i])
		}
	}
	out.Reset()
	if err := listSnapshots(filepath.Join(dir, "missing"), &out); err != nil || strings.TrimSpace(out.String()) != "Name Location Size Created" {
		t.Errorf("empty dir: %q, %v", out.String(), err)
	}
}
