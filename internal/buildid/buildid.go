// Package buildid names the build of the running program, for what it
// keeps that must not outlive a change of its code (a cache of what its
// renders produce).
package buildid

import (
	"fmt"
	"os"
	"runtime/debug"
)

// ID names this build: its module version and VCS revision; for a build
// with local changes or without VCS information (go run, go test), also
// its executable's size and modification time, so that two such builds
// are told apart.
func ID() string {
	version, revision, modified := "(devel)", "", true
	if info, ok := debug.ReadBuildInfo(); ok {
		version = info.Main.Version
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				revision = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	id := version + " " + revision
	if revision == "" || modified {
		id += " " + executableStamp()
	}
	return id
}

// executableStamp is the running executable's size and modification
// time, or "" when it cannot be read.
func executableStamp() string {
	path, err := os.Executable()
	if err != nil {
		return ""
	}
	fi, err := os.Stat(path)
	if err != nil {
		return ""
	}
	return fmt.Sprintf("%d@%d", fi.Size(), fi.ModTime().UnixNano())
}
