// Package kube is what mcplan's Kubernetes steps share: a client for one
// cluster, server-side apply of rendered objects (CRDs first, then the
// rest) with an inventory that prunes what a later render drops, a
// read-only diff for Check, and waits that explain themselves on timeout.
package kube

import (
	"context"
	"errors"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
)

// FieldManager is the server-side apply field manager of every object
// mcplan applies.
const FieldManager = "mcplan"

// Client talks to one cluster's API.
type Client struct {
	// Name is the cluster's name, for messages.
	Name    string
	REST    *rest.Config
	Typed   kubernetes.Interface
	Dynamic dynamic.Interface
	raw     rest.Interface
	mapper  *restmapper.DeferredDiscoveryRESTMapper
}

// FromKubeconfig makes a client from mcplan's copy of a cluster's
// kubeconfig (kubeconfig/fetch or kubeconfig/import), read the way its
// origin allows (ReadKeptKubeconfig): a fetched one gives its server, CA
// and client certificate, nothing else; a user's one is read by
// client-go as kubectl reads it. Requests that may be sent twice are
// tried again when they fail transiently (see retryTransport). The API's
// warnings (deprecated fields...) and the retries go to warn; nil drops
// them. (Without a handler client-go logs them through klog, which
// Istio's packages redirect to stdout.)
func FromKubeconfig(name, path string, warn func(format string, args ...any)) (*Client, error) {
	kept, err := ReadKeptKubeconfig(path)
	if err != nil {
		return nil, err
	}
	cfg := kept.REST
	cfg.WarningHandler = warningHandler(warn)
	// Transient failures are tried again, each attempt logged where the
	// warnings go (the step's log).
	Retrying(cfg, warn)
	return New(name, cfg)
}

// warningHandler passes the API's warnings to warn.
type warningHandler func(format string, args ...any)

func (w warningHandler) HandleWarningHeader(code int, _, text string) {
	if w != nil && code == 299 && text != "" {
		w("API warning: %s", text)
	}
}

// New makes a client from a REST config. It raises client-go's default
// rate limit (5 requests/s), which would make an install of ~40 objects
// crawl, and bounds every request. Its discovery is cached in
// DefaultDiscoveryCache (discovery_cache.go).
func New(name string, cfg *rest.Config) (*Client, error) {
	return NewWithDiscoveryCache(name, cfg, DefaultDiscoveryCache())
}

// NewWithDiscoveryCache is New with discovery cached under cacheDir (in
// memory only when it is "").
func NewWithDiscoveryCache(name string, cfg *rest.Config, cacheDir string) (*Client, error) {
	cfg = rest.CopyConfig(cfg)
	if cfg.WarningHandler == nil && cfg.WarningHandlerWithContext == nil {
		cfg.WarningHandler = rest.NoWarnings{}
	}
	if cfg.QPS == 0 {
		cfg.QPS, cfg.Burst = 50, 100
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 30 * time.Second
	}
	typed, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	raw, err := rawClient(cfg)
	if err != nil {
		return nil, err
	}
	disc, err := discoveryClient(cfg, cacheDir)
	if err != nil {
		return nil, err
	}
	return &Client{
		Name:    name,
		REST:    cfg,
		Typed:   typed,
		Dynamic: dyn,
		raw:     raw,
		mapper:  restmapper.NewDeferredDiscoveryRESTMapper(disc),
	}, nil
}

// mapping finds the resource of a kind, refreshing discovery once when the
// kind is unknown (a CRD applied a moment ago).
func (c *Client) mapping(gvk schema.GroupVersionKind) (*meta.RESTMapping, error) {
	m, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if meta.IsNoMatchError(err) {
		c.mapper.Reset()
		m, err = c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	}
	return m, err
}

// errNoKind is the error of an object whose kind the API does not serve.
var errNoKind = errors.New("the API has no such kind")

// mappingOf is the mapping of an object's kind; an unknown kind's error
// wraps errNoKind.
func (c *Client) mappingOf(ref Ref) (*meta.RESTMapping, error) {
	m, err := c.mapping(ref.GVK())
	if err != nil {
		if meta.IsNoMatchError(err) {
			return nil, fmt.Errorf("%s: %w: %s (is its CRD installed?)", ref, errNoKind, ref.GVK())
		}
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	return m, nil
}

// resource returns the dynamic client of an object's resource.
func (c *Client) resource(ref Ref) (dynamic.ResourceInterface, error) {
	m, err := c.mappingOf(ref)
	if err != nil {
		return nil, err
	}
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		return c.Dynamic.Resource(m.Resource).Namespace(ref.Namespace), nil
	}
	return c.Dynamic.Resource(m.Resource), nil
}

// reachableTimeout bounds Reachable: long enough for the retrying
// transport to ride through a short outage (an API server restarting, a
// link down for 20 s: an attempt with no answer is bounded by
// attemptTimeout, then sent again), short enough that a cluster that is
// gone fails the step with one clear line.
const reachableTimeout = 75 * time.Second

// Reachable checks that the API answers: steps call it first so that an
// unreachable cluster fails with one clear line.
func (c *Client) Reachable(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, reachableTimeout)
	defer cancel()
	_, err := c.Typed.Discovery().RESTClient().Get().AbsPath("/version").DoRaw(ctx)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("API %s does not answer (waited %s)", c.REST.Host, reachableTimeout)
		}
		return fmt.Errorf("API %s: %w", c.REST.Host, err)
	}
	return nil
}

// ManagedByMcplan says whether mcplan wrote any field of obj (its field
// manager is in the object's managedFields): what mcplan may remove.
func ManagedByMcplan(obj metav1.Object) bool {
	for _, m := range obj.GetManagedFields() {
		if m.Manager == FieldManager {
			return true
		}
	}
	return false
}
