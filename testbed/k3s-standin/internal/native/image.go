package native

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// imageName is the last path element of an image reference without tag or
// digest: docker.io/istio/pilot:1.31.0 and istio/pilot@sha256:... are
// both "pilot"; a registry port (localhost:5000/pilot) is not a tag.
func imageName(image string) string {
	ref, _, _ := strings.Cut(image, "@")
	ref = path.Base(ref)
	name, _, _ := strings.Cut(ref, ":")
	return name
}

// executableFor returns <dir>/<image name> when that is an executable
// regular file (or a link to one).
func executableFor(dir, image string) (string, bool) {
	name := imageName(image)
	if dir == "" || name == "" || name == "." || name == "/" {
		return "", false
	}
	exe := filepath.Join(dir, name)
	fi, err := os.Stat(exe)
	if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return "", false
	}
	return exe, true
}

// imageEntrypoint is the basename of the ENTRYPOINT of the images the
// stand-in knows, so a container's command naming it is accepted.
func imageEntrypoint(name string) string {
	switch name {
	case "pilot":
		return "pilot-discovery"
	case "proxyv2":
		return "pilot-agent"
	}
	return ""
}

// containerArgv is the argv of a container run by exe, which stands for the
// image's entrypoint: [exe] + args, or [exe] + command[1:] + args when the
// command names the entrypoint (or the executable itself). Any other
// command would need a program from the image's file system, which is not
// there. expand resolves $(VAR) references, as kubelet does. argv[0] is
// the entrypoint's path in the image when the stand-in knows it, as in a
// container: programs name themselves after it (istiod's field manager and
// user agent are its basename, pilot-discovery).
func containerArgv(exe string, c *corev1.Container, expand func(string) string) ([]string, error) {
	argv := []string{exe}
	if entry := imageEntrypoint(imageName(c.Image)); entry != "" {
		argv[0] = "/usr/local/bin/" + entry
	}
	if len(c.Command) > 0 {
		base := path.Base(c.Command[0])
		name := filepath.Base(exe)
		entry := imageEntrypoint(imageName(c.Image))
		if base != name && (entry == "" || base != entry) {
			want := name
			if entry != "" {
				want = entry + " or " + name
			}
			return nil, fmt.Errorf("command %q cannot run natively: %s stands for the image's entrypoint (%s), and the image's other programs are not available", c.Command[0], exe, want)
		}
		for _, a := range c.Command[1:] {
			argv = append(argv, expand(a))
		}
	}
	for _, a := range c.Args {
		argv = append(argv, expand(a))
	}
	return argv, nil
}
