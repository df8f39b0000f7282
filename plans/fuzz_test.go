package plans

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary bytes to Parse: it must not panic, and every
// error must be a non-empty message starting with the file name. A plan
// that parses must survive Validate, Warnings, ApplyDefaults and
// MarshalEffective, and its effective YAML must parse again.
func FuzzParse(f *testing.F) {
	for _, pattern := range []string{"testdata/valid/*.yaml", "testdata/invalid/*.yaml"} {
		files, err := filepath.Glob(pattern)
		if err != nil {
			f.Fatal(err)
		}
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	const name = "fuzz.yaml"
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(name, data)
		if err != nil {
			checkErr(t, name, err)
			return
		}
		if err := Validate(p); err != nil {
			checkErr(t, name, err)
		}
		_ = Warnings(p)
		out, err := MarshalEffective(p)
		if err != nil {
			t.Fatalf("MarshalEffective: %v", err)
		}
		ApplyDefaults(p)
		if _, err := Parse(name, out); err != nil {
			t.Fatalf("effective plan does not parse: %v\n%s", err, out)
		}
	})
}

func checkErr(t *testing.T, name string, err error) {
	t.Helper()
	msg := err.Error()
	if msg == "" {
		t.Fatal("empty error message")
	}
	for _, line := range strings.Split(msg, "\n") {
		if !strings.HasPrefix(line, name+":") {
			t.Fatalf("error line does not start with %q: %q", name, line)
		}
	}
}
