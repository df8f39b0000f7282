package xds

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"
	streamhttp "k8s.io/streaming/pkg/httpstream"

	"mcplan.io/mcplan/steps/istiorender"
	"mcplan.io/mcplan/steps/kube"
)

// PortForward reaches, in each cluster, a Running and Ready istiod pod
// (label app=istiod, and istio.io/rev=revision when revision is set) on
// port 15010 through its API's pods/portforward subresource, as kubectl
// port-forward does since 1.31: SPDY tunnelled over a websocket, falling
// back to plain SPDY when the API does not upgrade to websockets. One
// connection to the API carries a pair of streams (error, data) per
// connection to the pod. Opening the connection is tried again while it
// fails transiently (kube.RetryTransient), each attempt logged to logf.
func PortForward(clients map[string]*kube.Client, revision string, logf func(string, ...any)) DialIstiod {
	return func(ctx context.Context, primary string) (*Istiod, error) {
		c := clients[primary]
		if c == nil {
			return nil, &IstiodError{Cluster: primary, Reason: ReasonNoPod, Err: fmt.Errorf("no API client for the cluster")}
		}
		pod, err := readyIstiodPod(ctx, c, revision)
		if err != nil {
			return nil, err
		}
		podRef := pod.Namespace + "/" + pod.Name
		var conn streamhttp.Connection
		err = kube.RetryTransient(ctx, logf, "pods/portforward "+podRef+" in "+primary, func(ctx context.Context) error {
			var ferr error
			conn, ferr = forwardConnection(ctx, c, pod)
			return ferr
		})
		if err != nil {
			return nil, &IstiodError{Cluster: primary, Pod: podRef, Reason: ReasonForwardFailed, Err: fmt.Errorf(
				"pods/portforward through the API %s: %w (the API server forwards to the kubelet of node %s)", c.REST.Host, err, pod.Spec.NodeName)}
		}
		var requests atomic.Int64
		target := fmt.Sprintf("pod %s port %d", podRef, IstiodXDSPort)
		return &Istiod{
			Cluster: primary,
			Pod:     podRef,
			Name:    target + " (port-forward)",
			Dial: func(ctx context.Context) (net.Conn, error) {
				sc, err := openStreams(ctx, conn, IstiodXDSPort, requests.Add(1)-1, target)
				if err != nil {
					return nil, &IstiodError{Cluster: primary, Pod: podRef, Reason: ReasonForwardFailed, Err: err}
				}
				return sc, nil
			},
			DialPort: func(ctx context.Context, port int) (net.Conn, error) {
				sc, err := openStreams(ctx, conn, port, requests.Add(1)-1, fmt.Sprintf("pod %s port %d", podRef, port))
				if err != nil {
					return nil, &IstiodError{Cluster: primary, Pod: podRef, Reason: ReasonForwardFailed, Err: err}
				}
				return sc, nil
			},
			Close: func() { _ = conn.Close() },
		}, nil
	}
}

// istiodSelector selects the istiod pods of a revision.
func istiodSelector(revision string) string {
	sel := "app=istiod"
	if revision != "" {
		sel += ",istio.io/rev=" + revision
	}
	return sel
}

// readyIstiodPod returns a Running, Ready istiod pod that is not being
// deleted, or an IstiodError saying what the pods are doing.
func readyIstiodPod(ctx context.Context, c *kube.Client, revision string) (*corev1.Pod, error) {
	sel := istiodSelector(revision)
	pods, err := c.Typed.CoreV1().Pods(istiorender.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, &IstiodError{Cluster: c.Name, Reason: ReasonNoPod, Err: fmt.Errorf("list pods %s in %s: %w", sel, istiorender.Namespace, err)}
	}
	if len(pods.Items) == 0 {
		return nil, &IstiodError{Cluster: c.Name, Reason: ReasonNoPod, Err: fmt.Errorf("no pod with labels %s in namespace %s", sel, istiorender.Namespace)}
	}
	var states []string
	items := pods.Items
	slices.SortFunc(items, func(a, b corev1.Pod) int { return strings.Compare(a.Name, b.Name) })
	for i := range items {
		p := &items[i]
		ready, state := PodReadiness(p)
		if ready {
			return p, nil
		}
		states = append(states, p.Name+": "+state)
	}
	return nil, &IstiodError{Cluster: c.Name, Reason: ReasonNotReady, Err: fmt.Errorf("no Running and Ready pod: %s", strings.Join(states, "; "))}
}

// PodReadiness says whether a pod is Running, Ready and not being
// deleted, and otherwise what it is doing.
func PodReadiness(p *corev1.Pod) (bool, string) {
	if p.DeletionTimestamp != nil {
		return false, "being deleted"
	}
	state := string(p.Status.Phase)
	if p.Status.Phase != corev1.PodRunning {
		if p.Status.Reason != "" {
			state += " (" + p.Status.Reason + ")"
		}
		return false, state
	}
	for _, cond := range p.Status.Conditions {
		if cond.Type != corev1.PodReady {
			continue
		}
		if cond.Status == corev1.ConditionTrue {
			return true, "Ready"
		}
		s := fmt.Sprintf("%s, Ready=%s", state, cond.Status)
		if cond.Reason != "" || cond.Message != "" {
			s += fmt.Sprintf(" (%s: %s)", cond.Reason, cond.Message)
		}
		return false, s
	}
	return false, state + ", no Ready condition"
}

// forwardConnection opens the pod's pods/portforward connection: the
// websocket tunnel first, SPDY when the API does not upgrade to it.
func forwardConnection(ctx context.Context, c *kube.Client, pod *corev1.Pod) (streamhttp.Connection, error) {
	url := c.Typed.CoreV1().RESTClient().Post().Resource("pods").Namespace(pod.Namespace).Name(pod.Name).SubResource("portforward").URL()
	cfg := rest.CopyConfig(c.REST)
	transport, upgrader, err := spdy.RoundTripperFor(cfg)
	if err != nil {
		return nil, err
	}
	spdyDialer := spdy.NewDialerForStreaming(upgrader, &http.Client{Transport: transport}, http.MethodPost, url)
	websocketDialer, err := portforward.NewSPDYOverWebsocketDialerForStreaming(url, cfg)
	if err != nil {
		return nil, err
	}
	dialer := portforward.NewFallbackDialerForStreaming(websocketDialer, spdyDialer, func(err error) bool {
		return streamhttp.IsUpgradeFailure(err) || streamhttp.IsHTTPSProxyError(err)
	})
	type dialed struct {
		conn     streamhttp.Connection
		protocol string
		err      error
	}
	// Dial takes no context: it runs aside, and a connection that comes
	// after ctx ended is closed.
	done := make(chan dialed, 1)
	go func() {
		conn, protocol, err := dialer.Dial(portforward.PortForwardProtocolV1Name)
		done <- dialed{conn, protocol, err}
	}()
	select {
	case d := <-done:
		if d.err != nil {
			return nil, d.err
		}
		if d.protocol != portforward.PortForwardProtocolV1Name {
			_ = d.conn.Close()
			return nil, fmt.Errorf("the API speaks protocol %q, not %q", d.protocol, portforward.PortForwardProtocolV1Name)
		}
		return d.conn, nil
	case <-ctx.Done():
		go func() {
			if d := <-done; d.conn != nil {
				_ = d.conn.Close()
			}
		}()
		return nil, ctx.Err()
	}
}
