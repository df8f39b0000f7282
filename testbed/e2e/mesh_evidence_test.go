package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"

	"mcplan.io/mcplan/steps/istiorender"
	"mcplan.io/mcplan/steps/kube"
	"mcplan.io/mcplan/steps/statedir"
	"mcplan.io/mcplan/steps/verify"
)

// secretsOf reads, from the clusters and the merged kubeconfig, the
// secrets that must never be saved: each reader token (the Secret in each
// source cluster for each reader) and each client key of the merged
// kubeconfig. A read error fails the test: a search for nothing passes.
func (w *world) secretsOf(t *testing.T, ctx context.Context, pairs map[string]string) map[string][]byte {
	t.Helper()
	secrets := map[string][]byte{}
	for source, reader := range pairs {
		name := istiorender.ReaderTokenSecretFor(reader)
		sec, err := w.clientFor("context-"+source).CoreV1().Secrets(istiorender.Namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("read the reader token %s in %s: %v", name, source, err)
		}
		if len(sec.Data["token"]) == 0 {
			t.Fatalf("reader token %s in %s is empty", name, source)
		}
		secrets["reader token "+name+" of "+source] = sec.Data["token"]
	}
	cfg, err := clientcmd.LoadFromFile(filepath.Join(w.dir, "kubeconfig"))
	if err != nil {
		t.Fatalf("read the merged kubeconfig: %v", err)
	}
	for name, a := range cfg.AuthInfos {
		if len(a.ClientKeyData) == 0 {
			t.Fatalf("merged kubeconfig: user %s has no client-key-data", name)
		}
		secrets["client key of "+name] = a.ClientKeyData
	}
	return secrets
}

// savedFiles are the files mcplan keeps that must hold no secret: the
// state and every inventory.
func (w *world) savedFiles(t *testing.T) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	state := filepath.Join(w.dir, ".mcplan", "state.json")
	inventories, err := filepath.Glob(filepath.Join(w.dir, ".mcplan", "inventory", "*", "*.json"))
	if err != nil || len(inventories) == 0 {
		t.Fatalf("no inventories (%v)", err)
	}
	for _, path := range append([]string{state}, inventories...) {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("read %s: %v", path, err)
		}
		files[path] = data
	}
	return files
}

// checkNoSecret fails the test for each secret found, raw, base64 or by
// a line of its PEM body, in any of the haystacks.
func checkNoSecret(t *testing.T, secrets, haystacks map[string][]byte) {
	t.Helper()
	for what, secret := range secrets {
		needles := [][]byte{secret, []byte(base64.StdEncoding.EncodeToString(secret))}
		for _, line := range bytes.Split(secret, []byte("\n")) {
			if len(line) >= 40 && !bytes.HasPrefix(line, []byte("-----")) {
				needles = append(needles, line)
			}
		}
		for where, data := range haystacks {
			for _, n := range needles {
				if bytes.Contains(data, n) {
					t.Errorf("the %s is in %s", what, where)
					break
				}
			}
		}
	}
}

// objectVersions returns the resourceVersion of every object the Istio
// steps made (their inventories and what they apply without one) and of
// every webhook configuration, in each
// cluster: what a second apply must leave alone. Keys are "cluster: ref".
func (w *world) objectVersions(t *testing.T, ctx context.Context, clusters []string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, c := range clusters {
		cl, err := kube.FromKubeconfig(c, statedir.Kubeconfig(filepath.Join(w.dir, ".mcplan"), c), nil)
		if err != nil {
			t.Fatal(err)
		}
		paths, err := filepath.Glob(filepath.Join(w.dir, ".mcplan", "inventory", c, "*.json"))
		if err != nil || len(paths) == 0 {
			t.Fatalf("%s: no inventories (%v)", c, err)
		}
		// What the Istio steps apply without an inventory: the namespace,
		// cacerts, the reader account, and per other cluster its remote
		// secret and reader token.
		refs := []kube.Ref{
			{Version: "v1", Kind: "Namespace", Name: istiorender.Namespace},
			{Version: "v1", Kind: "Secret", Namespace: istiorender.Namespace, Name: istiorender.CACertsSecret},
			{Version: "v1", Kind: "ServiceAccount", Namespace: istiorender.Namespace, Name: istiorender.ReaderServiceAccount},
		}
		for _, other := range clusters {
			if other != c {
				refs = append(refs,
					kube.Ref{Version: "v1", Kind: "Secret", Namespace: istiorender.Namespace, Name: istiorender.RemoteSecretName(other)},
					kube.Ref{Version: "v1", Kind: "Secret", Namespace: istiorender.Namespace, Name: istiorender.ReaderTokenSecretFor(other)})
			}
		}
		for _, p := range paths {
			more, err := (&kube.Inventory{Path: p}).Load()
			if err != nil {
				t.Fatal(err)
			}
			refs = append(refs, more...)
		}
		for _, ref := range refs {
			o, err := cl.Get(ctx, ref)
			if err != nil {
				t.Fatalf("%s: %s: %v", c, ref, err)
			}
			if o != nil {
				out[c+": "+ref.String()] = o.GetResourceVersion()
			}
		}
		admission := cl.Typed.AdmissionregistrationV1()
		mutating, err := admission.MutatingWebhookConfigurations().List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range mutating.Items {
			out[c+": MutatingWebhookConfiguration "+m.Name] = m.ResourceVersion
		}
		validating, err := admission.ValidatingWebhookConfigurations().List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range validating.Items {
			out[c+": ValidatingWebhookConfiguration "+v.Name] = v.ResourceVersion
		}
	}
	return out
}

// checkSameVersions fails the test for each object changed, made or gone.
func checkSameVersions(t *testing.T, what string, before, after map[string]string) {
	t.Helper()
	for k, v := range before {
		if a, ok := after[k]; !ok {
			t.Errorf("%s removed %s", what, k)
		} else if a != v {
			t.Errorf("%s changed %s (resourceVersion %s -> %s)", what, k, v, a)
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			t.Errorf("%s made %s", what, k)
		}
	}
}

// xdsRows are the rows of the report of primary's istiod for network's
// sidecar.
func xdsRows(t *testing.T, doc xdsDoc, primary, network string) []verify.XDSRow {
	t.Helper()
	for _, m := range doc.Meshes {
		for _, r := range m.XDS {
			if r.Primary == primary && r.Network == network {
				return r.Rows
			}
		}
	}
	t.Fatalf("no xDS report of %s's istiod for %s", primary, network)
	return nil
}

// checkRepaired fails the test unless the repair ran step for a drift
// whose reason says want.
func checkRepaired(t *testing.T, r applyResult, step, want string) {
	t.Helper()
	if o := r.outcomes[step]; o != "succeeded" {
		t.Errorf("repair: %s %s, want succeeded (ran %v)", step, o, r.ran())
		return
	}
	if reason := r.reasons[step]; !strings.HasPrefix(reason, "drift: ") || !strings.Contains(reason, want) {
		t.Errorf("repair: %s ran for %q, want a drift naming %q", step, reason, want)
	}
}

// renderedBy are the steps whose log, in apply -o json output, says they
// rendered Istio's charts ("rendered N objects").
func renderedBy(t *testing.T, output string) []string {
	t.Helper()
	var steps []string
	dec := json.NewDecoder(strings.NewReader(output))
	for dec.More() {
		var ev struct{ Type, Step, Message string }
		if err := dec.Decode(&ev); err != nil {
			break // the human summary on stderr follows the JSON
		}
		if ev.Type == "log" && strings.HasPrefix(ev.Message, "rendered ") && !slices.Contains(steps, ev.Step) {
			steps = append(steps, ev.Step)
		}
	}
	return steps
}
