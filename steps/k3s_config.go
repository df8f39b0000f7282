package steps

import (
	"fmt"
	"strings"

	"github.com/goccy/go-yaml"
)

// Paths on the hosts, as k3s and its install script use them.
const (
	k3sConfigPath     = "/etc/rancher/k3s/config.yaml"
	k3sKubeconfigPath = "/etc/rancher/k3s/k3s.yaml"
	k3sTokenPath      = "/var/lib/rancher/k3s/server/token"
	k3sBinaryPath     = "/usr/local/bin/k3s"
	k3sImagesDir      = "/var/lib/rancher/k3s/agent/images"
	k3sScriptPath     = "/var/lib/mcplan/k3s-install.sh"
)

// k3sConfig is the content of /etc/rancher/k3s/config.yaml that mcplan
// writes: the settings k3s reads at start, so a re-apply can compare them
// and restart k3s only when they changed.
type k3sConfig struct {
	// entries in the order they are written.
	keys   []string
	values map[string]any
}

func newK3sConfig() *k3sConfig { return &k3sConfig{values: map[string]any{}} }

// set sets a key; setting it again turns it into a list.
func (c *k3sConfig) set(key string, value any) {
	old, ok := c.values[key]
	if !ok {
		c.keys = append(c.keys, key)
		c.values[key] = value
		return
	}
	switch o := old.(type) {
	case []string:
		c.values[key] = append(o, fmt.Sprint(value))
	default:
		c.values[key] = []string{fmt.Sprint(o), fmt.Sprint(value)}
	}
}

// setList sets a key to a list, whatever its length.
func (c *k3sConfig) setList(key string, values []string) {
	if _, ok := c.values[key]; !ok {
		c.keys = append(c.keys, key)
	}
	c.values[key] = values
}

// addArgs adds command-line arguments as config keys: "--disable=traefik"
// and "--disable traefik" become disable: traefik, a flag alone becomes
// true, and a repeated flag becomes a list, as k3s reads them.
func (c *k3sConfig) addArgs(args []string) error {
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if !strings.HasPrefix(arg, "-") {
			return fmt.Errorf("k3s argument %q: expected a flag such as --disable=traefik", arg)
		}
		key, value, hasValue := strings.Cut(strings.TrimLeft(arg, "-"), "=")
		if !hasValue && i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
			value, hasValue = args[i+1], true
			i++
		}
		if hasValue {
			c.set(key, value)
		} else {
			c.set(key, true)
		}
	}
	return nil
}

// render is the file content, with a header that says who owns it.
func (c *k3sConfig) render() ([]byte, error) {
	var b strings.Builder
	b.WriteString("# Written by mcplan: changes here are replaced by the next apply.\n")
	for _, k := range c.keys {
		out, err := yaml.Marshal(map[string]any{k: c.values[k]})
		if err != nil {
			return nil, fmt.Errorf("k3s config %s: %w", k, err)
		}
		b.Write(out)
	}
	return []byte(b.String()), nil
}
