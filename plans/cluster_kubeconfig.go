package plans

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"slices"
	"strings"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// LoadClusterKubeconfig reads the kubeconfig file of a cluster mcplan did
// not install and returns it with the context the plan names (default:
// the file's current-context). It only reads the file: decoding follows
// no file path the file names and runs nothing. Its context's cluster and
// user must pass CheckUserKubeconfigAuth. The error says what is
// wrong in the plan's words; field is the plan field it is about
// ("path" or "context").
func LoadClusterKubeconfig(file string, ck ClusterKubeconfig) (cfg *clientcmdapi.Config, context string, field string, err error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, "", "path", fmt.Errorf("cannot read kubeconfig %s: %w", quote(ck.Path), err)
	}
	cfg, err = clientcmd.Load(raw)
	if err != nil {
		return nil, "", "path", fmt.Errorf("%s is not a kubeconfig: %w", quote(ck.Path), err)
	}
	context, field = ck.Context, "context"
	if context == "" {
		context, field = cfg.CurrentContext, "path"
		if context == "" {
			return nil, "", field, fmt.Errorf("kubeconfig %s sets no current-context: name the context", quote(ck.Path))
		}
	}
	kctx := cfg.Contexts[context]
	if kctx == nil {
		names := slices.Sorted(maps.Keys(cfg.Contexts))
		return nil, "", field, fmt.Errorf("context %s is not in kubeconfig %s (it has %s)", quote(context), quote(ck.Path), contextList(names))
	}
	if cfg.Clusters[kctx.Cluster] == nil {
		return nil, "", field, fmt.Errorf("context %s of kubeconfig %s names cluster %s, which the file does not have", quote(context), quote(ck.Path), quote(kctx.Cluster))
	}
	if cfg.AuthInfos[kctx.AuthInfo] == nil {
		return nil, "", field, fmt.Errorf("context %s of kubeconfig %s names user %s, which the file does not have", quote(context), quote(ck.Path), quote(kctx.AuthInfo))
	}
	if err := CheckUserKubeconfigAuth(cfg.Clusters[kctx.Cluster], cfg.AuthInfos[kctx.AuthInfo]); err != nil {
		return nil, "", field, fmt.Errorf("context %s of kubeconfig %s (cluster %s, user %s): %w", quote(context), quote(ck.Path), quote(kctx.Cluster), quote(kctx.AuthInfo), err)
	}
	return cfg, context, field, nil
}

func contextList(names []string) string {
	if len(names) == 0 {
		return "no contexts"
	}
	return strings.Join(quoteAll(names), ", ")
}

// clusterKubeconfig checks the kubeconfig of a cluster mcplan did not
// install: named, not the file mcplan merges into, readable, with the
// context the plan names.
func (v *validator) clusterKubeconfig(c Cluster, path string) {
	kp := fieldPath(path, "kubeconfig")
	if c.Kubeconfig.Path == "" {
		v.add(fieldPath(kp, "path"), "required field missing: the kubeconfig file of the cluster", "")
		return
	}
	if file := v.p.ClusterKubeconfigFile(c); file == v.p.KubeconfigPath() {
		v.add(fieldPath(kp, "path"), fmt.Sprintf("%s is the plan's merged kubeconfig (kubeconfig.path), which mcplan writes: it never writes a cluster's own kubeconfig", quote(c.Kubeconfig.Path)),
			"set kubeconfig.path to another file")
		return
	}
	if _, _, field, err := LoadClusterKubeconfig(v.p.ClusterKubeconfigFile(c), *c.Kubeconfig); err != nil {
		v.add(fieldPath(kp, field), err.Error(), "")
	}
}
