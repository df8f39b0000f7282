package server

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// k3s's names for an etcd member's Node: the annotations its server puts
// on it and the finalizer of k3s's etcd controller (wrangler's OnRemove
// handler "managed-etcd-controller").
const (
	annoEtcdNodeName    = "etcd.k3s.cattle.io/node-name"
	annoEtcdNodeAddress = "etcd.k3s.cattle.io/node-address"
	etcdFinalizer       = "wrangler.cattle.io/managed-etcd-controller"
)

// runMemberController removes a server's etcd member when its Node is
// deleted, as k3s's etcd controller does on every server: each etcd node
// carries the finalizer; when a Node being deleted has it, this server
// removes the member named in the node's annotation (or, without it, the
// members named <node name>-<suffix>) and then the finalizer. The member of
// this server itself is left to the other servers (unless it is the only
// one), so removing a member never needs the member being removed.
// Removing is idempotent: all servers may race on the same Node.
func (s *Server) runMemberController(ctx context.Context, admin kubernetes.Interface) error {
	factory := informers.NewSharedInformerFactory(admin, 10*time.Minute)
	nodes := factory.Core().V1().Nodes()
	queue := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]())
	defer queue.ShutDown()
	enqueue := func(obj any) {
		if n, ok := obj.(*corev1.Node); ok && n.DeletionTimestamp != nil && slices.Contains(n.Finalizers, etcdFinalizer) {
			queue.Add(n.Name)
		}
	}
	if _, err := nodes.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
	}); err != nil {
		return fmt.Errorf("server: member controller: %w", err)
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), nodes.Informer().HasSynced) {
		return nil
	}
	go wait.UntilWithContext(ctx, func(ctx context.Context) {
		for {
			name, shutdown := queue.Get()
			if shutdown {
				return
			}
			err := s.removeMemberOfNode(ctx, admin, name)
			if err != nil {
				s.logf("etcd member controller: node %s: %v (will retry)", name, err)
				queue.AddRateLimited(name)
			} else {
				queue.Forget(name)
			}
			queue.Done(name)
		}
	}, time.Second)
	<-ctx.Done()
	return nil
}

// removeMemberOfNode handles one Node being deleted.
func (s *Server) removeMemberOfNode(ctx context.Context, admin kubernetes.Interface, nodeName string) error {
	node, err := admin.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if node.DeletionTimestamp == nil || !slices.Contains(node.Finalizers, etcdFinalizer) {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	list, err := s.etcdClient.MemberList(ctx)
	if err != nil {
		return fmt.Errorf("list etcd members: %w", err)
	}
	want := node.Annotations[annoEtcdNodeName]
	for _, m := range list.Members {
		if !memberOfNode(m.Name, want, nodeName) {
			continue
		}
		if m.ID == s.etcdID {
			if len(list.Members) > 1 {
				return nil // the other servers remove this server's member
			}
			continue // the last member stays; just let the Node go
		}
		if _, err := s.etcdClient.MemberRemove(ctx, m.ID); err != nil && !errors.Is(err, rpctypes.ErrMemberNotFound) {
			return fmt.Errorf("remove etcd member %s (%x): %w", m.Name, m.ID, err)
		}
		s.logf("etcd member controller: removed etcd member %s (%x) of deleted node %s", m.Name, m.ID, nodeName)
	}
	return s.dropFinalizer(ctx, admin, nodeName)
}

// memberOfNode reports whether etcd member member belongs to the node: it
// is the member named in the node's annotation, or (no annotation) one
// named <node name>-<suffix>.
func memberOfNode(member, annotated, nodeName string) bool {
	if annotated != "" {
		return member == annotated
	}
	return memberNodeName(member) == nodeName
}

func (s *Server) dropFinalizer(ctx context.Context, admin kubernetes.Interface, nodeName string) error {
	for {
		node, err := admin.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		i := slices.Index(node.Finalizers, etcdFinalizer)
		if i < 0 {
			return nil
		}
		node.Finalizers = slices.Delete(node.Finalizers, i, i+1)
		_, err = admin.CoreV1().Nodes().Update(ctx, node, metav1.UpdateOptions{})
		switch {
		case err == nil, apierrors.IsNotFound(err):
			return nil
		case apierrors.IsConflict(err):
			continue
		default:
			return err
		}
	}
}
