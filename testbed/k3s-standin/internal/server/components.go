package server

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spf13/pflag"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	cliflag "k8s.io/component-base/cli/flag"
	apiserverapp "k8s.io/kubernetes/cmd/kube-apiserver/app"
	apiserveroptions "k8s.io/kubernetes/cmd/kube-apiserver/app/options"
	kcmapp "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	kcmoptions "k8s.io/kubernetes/cmd/kube-controller-manager/app/options"
	schedulerapp "k8s.io/kubernetes/cmd/kube-scheduler/app"
	scheduleroptions "k8s.io/kubernetes/cmd/kube-scheduler/app/options"
)

// The components are run through their exported option/Run functions rather
// than their cobra commands: the commands install process-wide signal
// handlers, which may be installed only once per process.

// flagArgs turns a map plus k3s-style extra args ("name=value") into
// command-line arguments; extra args win.
func flagArgs(base map[string]string, extra []string) []string {
	m := map[string]string{}
	for k, v := range base {
		m[k] = v
	}
	for _, e := range extra {
		k, v, _ := strings.Cut(strings.TrimPrefix(e, "--"), "=")
		m[k] = v
	}
	args := make([]string, 0, len(m))
	for k, v := range m {
		args = append(args, "--"+k+"="+v)
	}
	return args
}

func parseNamed(name string, fss cliflag.NamedFlagSets, args []string) error {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	for _, f := range fss.FlagSets {
		fs.AddFlagSet(f)
	}
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("server: %s flags: %w", name, err)
	}
	return nil
}

func (s *Server) apiserverArgs() []string {
	c := s.certs
	m := map[string]string{
		"etcd-servers":                       "https://127.0.0.1:" + strconv.Itoa(s.cfg.EtcdPort),
		"etcd-cafile":                        c.path("etcd/server-ca.crt"),
		"etcd-certfile":                      c.path("etcd/client.crt"),
		"etcd-keyfile":                       c.path("etcd/client.key"),
		"bind-address":                       "127.0.0.1",
		"secure-port":                        strconv.Itoa(s.apiPort()),
		"advertise-address":                  s.cfg.AdvertiseAddress,
		"tls-cert-file":                      c.path("serving-kube-apiserver.crt"),
		"tls-private-key-file":               c.path("serving-kube-apiserver.key"),
		"client-ca-file":                     c.path("client-ca.crt"),
		"authorization-mode":                 "Node,RBAC",
		"enable-admission-plugins":           "NodeRestriction",
		"anonymous-auth":                     "false",
		"allow-privileged":                   "true",
		"service-account-issuer":             "https://kubernetes.default.svc.cluster.local",
		"api-audiences":                      "https://kubernetes.default.svc.cluster.local,k3s",
		"service-account-key-file":           c.path("service.key"),
		"service-account-signing-key-file":   c.path("service.key"),
		"service-cluster-ip-range":           s.cfg.ServiceCIDR,
		"service-node-port-range":            "30000-32767",
		"requestheader-client-ca-file":       c.path("request-header-ca.crt"),
		"requestheader-allowed-names":        "system:auth-proxy",
		"requestheader-username-headers":     "X-Remote-User",
		"requestheader-group-headers":        "X-Remote-Group",
		"requestheader-extra-headers-prefix": "X-Remote-Extra-",
		"proxy-client-cert-file":             c.path("client-auth-proxy.crt"),
		"proxy-client-key-file":              c.path("client-auth-proxy.key"),
		"enable-aggregator-routing":          "true",
		"kubelet-client-certificate":         c.path("client-kube-apiserver.crt"),
		"kubelet-client-key":                 c.path("client-kube-apiserver.key"),
		"kubelet-certificate-authority":      c.path("server-ca.crt"),
		"kubelet-preferred-address-types":    "InternalIP,ExternalIP,Hostname",
		"profiling":                          "false",
		"endpoint-reconciler-type":           "lease",
	}
	return flagArgs(m, s.cfg.KubeAPIServerArgs)
}

// runAPIServer runs kube-apiserver until ctx ends.
func (s *Server) runAPIServer(ctx context.Context) error {
	opts := apiserveroptions.NewServerRunOptions()
	if err := parseNamed("kube-apiserver", opts.Flags(), s.apiserverArgs()); err != nil {
		return err
	}
	if err := opts.GenericServerRunOptions.ComponentGlobalsRegistry.Set(); err != nil {
		return fmt.Errorf("server: kube-apiserver feature gates: %w", err)
	}
	completed, err := opts.Complete(ctx)
	if err != nil {
		return fmt.Errorf("server: kube-apiserver options: %w", err)
	}
	if errs := completed.Validate(); len(errs) > 0 {
		return fmt.Errorf("server: kube-apiserver options: %w", utilerrors.NewAggregate(errs))
	}
	if err := apiserverapp.Run(ctx, completed); err != nil {
		return fmt.Errorf("server: kube-apiserver: %w", err)
	}
	return nil
}

// runControllerManager runs kube-controller-manager until ctx ends.
func (s *Server) runControllerManager(ctx context.Context) error {
	c := s.certs
	opts, err := kcmoptions.NewKubeControllerManagerOptions()
	if err != nil {
		return fmt.Errorf("server: kube-controller-manager options: %w", err)
	}
	all, disabled, aliases := kcmapp.KnownControllers(), kcmapp.ControllersDisabledByDefault(), kcmapp.ControllerAliases()
	kubeconfig := s.credPath("controller.kubeconfig")
	m := map[string]string{
		"kubeconfig":                       kubeconfig,
		"authentication-kubeconfig":        kubeconfig,
		"authorization-kubeconfig":         kubeconfig,
		"secure-port":                      "0",
		"leader-elect":                     "false", // see runElected
		"use-service-account-credentials":  "true",
		"service-account-private-key-file": c.path("service.key"),
		"root-ca-file":                     c.path("server-ca.crt"),
		"cluster-signing-cert-file":        c.path("client-ca.crt"),
		"cluster-signing-key-file":         c.path("client-ca.key"),
		"allocate-node-cidrs":              "true",
		"cluster-cidr":                     s.cfg.ClusterCIDR,
		"service-cluster-ip-range":         s.cfg.ServiceCIDR,
		"configure-cloud-routes":           "false",
		"controllers":                      "*,token-cleaner-controller",
		"profiling":                        "false",
	}
	fss := opts.Flags(all, disabled, aliases)
	if err := parseNamed("kube-controller-manager", fss, flagArgs(m, s.cfg.KubeControllerArgs)); err != nil {
		return err
	}
	if err := opts.ComponentGlobalsRegistry.Set(); err != nil {
		return fmt.Errorf("server: kube-controller-manager feature gates: %w", err)
	}
	kc, err := opts.Config(ctx, all, disabled, aliases)
	if err != nil {
		return fmt.Errorf("server: kube-controller-manager config: %w", err)
	}
	if err := kcmapp.Run(ctx, kc.Complete()); err != nil {
		return fmt.Errorf("server: kube-controller-manager: %w", err)
	}
	return nil
}

// runScheduler runs kube-scheduler until ctx ends.
func (s *Server) runScheduler(ctx context.Context) error {
	opts := scheduleroptions.NewOptions()
	kubeconfig := s.credPath("scheduler.kubeconfig")
	m := map[string]string{
		"kubeconfig":                kubeconfig,
		"authentication-kubeconfig": kubeconfig,
		"authorization-kubeconfig":  kubeconfig,
		"secure-port":               "0",
		"leader-elect":              "false", // see runElected
		"profiling":                 "false",
	}
	if err := parseNamed("kube-scheduler", *opts.Flags, flagArgs(m, s.cfg.KubeSchedulerArgs)); err != nil {
		return err
	}
	if err := opts.ComponentGlobalsRegistry.Set(); err != nil {
		return fmt.Errorf("server: kube-scheduler feature gates: %w", err)
	}
	cc, sched, err := schedulerapp.Setup(ctx, opts)
	if err != nil {
		return fmt.Errorf("server: kube-scheduler setup: %w", err)
	}
	if err := schedulerapp.Run(ctx, cc, sched); err != nil {
		return fmt.Errorf("server: kube-scheduler: %w", err)
	}
	return nil
}

// Leader election of kube-controller-manager and kube-scheduler, with
// their upstream lease names and timings.
const (
	leaseDuration = 15 * time.Second
	renewDeadline = 10 * time.Second
	retryPeriod   = 2 * time.Second
)

// runElected runs a component on the server that holds its lease
// (kube-system/<lock>), when the server is an etcd cluster member and so
// may have peers; a standalone server runs it at once. The election is
// done here rather than by the component (--leader-elect): in-process, the
// components end the whole process when their context ends while they
// lead. Here the component stops with ctx, the lease is released (the next
// server takes over at once), and losing the lease ends the server with
// an error, as it ends k3s (systemd starts it again).
func (s *Server) runElected(ctx context.Context, client kubernetes.Interface, lock string, run func(context.Context) error) error {
	if !s.etcdCluster {
		return run(ctx)
	}
	id := s.cfg.NodeName + "_" + string(uuid.NewUUID())
	lk := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: "kube-system", Name: lock},
		Client:     client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: id},
	}
	var runErr error
	var leading atomic.Bool
	ran := make(chan struct{})
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock: lk, Name: lock, ReleaseOnCancel: true,
		LeaseDuration: leaseDuration, RenewDeadline: renewDeadline, RetryPeriod: retryPeriod,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(lctx context.Context) {
				leading.Store(true)
				defer close(ran)
				s.logf("%s: leading as %s", lock, id)
				runErr = run(lctx)
			},
			OnStoppedLeading: func() {},
		},
	})
	if err != nil {
		return fmt.Errorf("server: %s leader election: %w", lock, err)
	}
	le.Run(ctx)
	// Run has ended the component's context; wait for it to stop. (The
	// callback runs in a goroutine Run starts once it leads: give it a
	// moment to have begun.)
	if !leading.Load() {
		time.Sleep(100 * time.Millisecond)
	}
	if leading.Load() {
		<-ran
	}
	if ctx.Err() != nil || runErr != nil {
		return runErr
	}
	return fmt.Errorf("server: %s: lost the leader lease %s/%s", lock, lk.LeaseMeta.Namespace, lock)
}
