// Command gen writes schemas/plan.schema.json from the Go types of package
// plans. Run it with `go generate ./schemas` or `go run ./schemas/gen` from
// anywhere inside the module.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"mcplan.io/mcplan/schemas"
)

func main() {
	out := flag.String("o", "", "output file (default: <module root>/schemas/plan.schema.json)")
	flag.Parse()
	if err := run(*out); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(out string) error {
	if out == "" {
		root, err := moduleRoot()
		if err != nil {
			return err
		}
		out = filepath.Join(root, "schemas", "plan.schema.json")
	}
	data, err := schemas.Generate()
	if err != nil {
		return err
	}
	if old, err := os.ReadFile(out); err == nil && bytes.Equal(old, data) {
		return nil // unchanged: keep the file's mtime
	}
	return os.WriteFile(out, data, 0o644)
}

// moduleRoot walks up from the working directory to the directory holding
// go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory; use -o")
		}
		dir = parent
	}
}
