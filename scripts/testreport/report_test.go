package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"testing"

	"mcplan.io/mcplan/internal/golden"
)

// goTestJSON runs `go test -json` on a module of one package whose test
// file is src, and returns the event stream.
func goTestJSON(t *testing.T, src string) []byte {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"go.mod":         "module example.com/m\n\ngo 1.22\n",
		"m.go":           "package m\n",
		"m_test.go":      src,
		"sub/nothing.go": "package sub\n",
	}
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("go", "test", "-json", "-count=1", "./...")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=", "GOWORK=off")
	out, _ := cmd.Output() // a failing test exits 1; the stream says why
	return out
}

func TestReport(t *testing.T) {
	tests := []struct {
		name    string
		src     string
		allow   []string
		ok      bool
		failed  []string
		refused []string
	}{
		{
			name: "pass",
			src:  "package m\nimport \"testing\"\nfunc TestA(t *testing.T) {}\n",
			ok:   true,
		},
		{
			name:   "fail",
			src:    "package m\nimport \"testing\"\nfunc TestA(t *testing.T) { t.Log(\"seen\"); t.Error(\"broken\") }\nfunc TestB(t *testing.T) {}\n",
			failed: []string{"example.com/m.TestA", "example.com/m"},
		},
		{
			name:    "skip refused",
			src:     "package m\nimport \"testing\"\nfunc TestA(t *testing.T) { t.Skip(\"needs a tool\") }\nfunc TestB(t *testing.T) {}\n",
			refused: []string{"example.com/m.TestA"},
		},
		{
			name:  "skip allowed",
			src:   "package m\nimport \"testing\"\nfunc TestA(t *testing.T) { t.Skip(\"only as a child\") }\n",
			allow: []string{`^example\.com/m\.TestA$`},
			ok:    true,
		},
		{
			name:    "subtest skip",
			src:     "package m\nimport \"testing\"\nfunc TestA(t *testing.T) { t.Run(\"x\", func(t *testing.T) { t.Skipf(\"no %s\", \"root\") }) }\n",
			allow:   []string{`^example\.com/m\.TestA$`},
			refused: []string{"example.com/m.TestA/x"},
		},
		{
			name:   "build failure",
			src:    "package m\nimport \"testing\"\nfunc TestA(t *testing.T) { undefined() }\n",
			failed: []string{"build of example.com/m [example.com/m.test]", "example.com/m"},
		},
		{
			name:   "panic",
			src:    "package m\nimport \"testing\"\nfunc TestA(t *testing.T) { panic(\"boom\") }\n",
			failed: []string{"example.com/m.TestA", "example.com/m"},
		},
	}
	elapsed := regexp.MustCompile(`\d+\.\d+s|\(\d+\.\d+s\)|0x[0-9a-f]+|/tmp/[^\s:]+|goroutine \d+|\+0x[0-9a-f]+`)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := newPolicy(tt.allow)
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			sum, err := report(bytes.NewReader(goTestJSON(t, tt.src)), &out, p)
			if err != nil {
				t.Fatal(err)
			}
			var refused []string
			for _, s := range sum.Refused {
				refused = append(refused, s.Test)
			}
			if sum.ok() != tt.ok || !slices.Equal(sum.Failed, tt.failed) || !slices.Equal(refused, tt.refused) {
				t.Errorf("ok %v failed %q refused %q, want %v %q %q\n%s", sum.ok(), sum.Failed, refused, tt.ok, tt.failed, tt.refused, out.String())
			}
			if tt.name != "panic" { // a panic's trace holds paths and addresses
				golden.Check(t, filepath.Join("testdata", tt.name+".txt"), elapsed.ReplaceAllString(out.String(), "X"))
			}
		})
	}
}
