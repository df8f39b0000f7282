package kube

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
)

// pollBackoff is how often waits look again: soon at first (a CRD is
// Established, a small Deployment Available, within a few hundred
// milliseconds), then every half second.
func pollBackoff() wait.Backoff {
	return wait.Backoff{Duration: 100 * time.Millisecond, Factor: 1.5, Cap: 500 * time.Millisecond, Steps: math.MaxInt32}
}

// poll calls probe until it reports done, fails, or timeout passes; then
// the error carries the last thing probe saw.
func poll(ctx context.Context, timeout time.Duration, probe func(context.Context) (done bool, seen string, err error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	seen := "no answer yet"
	backoff := pollBackoff()
	for {
		done, s, err := probe(ctx)
		if err != nil && ctx.Err() == nil {
			return err
		}
		if done {
			return nil
		}
		if s != "" {
			seen = s
		}
		select {
		case <-ctx.Done():
			return &TimeoutError{Timeout: timeout, Seen: seen, cause: ctx.Err()}
		case <-time.After(backoff.Step()):
		}
	}
}

// TimeoutError is the error of a wait that ran out of time.
type TimeoutError struct {
	Timeout time.Duration
	// Seen is the last state observed.
	Seen  string
	cause error
}

func (e *TimeoutError) Error() string {
	if errors.Is(e.cause, context.Canceled) {
		return "cancelled; last seen: " + e.Seen
	}
	return fmt.Sprintf("not ready after %s; last seen: %s", e.Timeout, e.Seen)
}

func (e *TimeoutError) Unwrap() error { return e.cause }

// crdResource is the resource of CustomResourceDefinitions.
func crdResource() schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
}

// establishNudgeAfter is how long a CRD may have its names accepted but
// not be Established before WaitCRDsEstablished nudges it.
const establishNudgeAfter = 10 * time.Second

// establishNudgeManager is the field manager of the nudge.
const establishNudgeManager = FieldManager + "-establish"

// WaitCRDsEstablished waits until every named CRD is Established:
// Current by kstatus (ReadinessOf), then resets the client's REST mapper
// so that their kinds are found.
//
// The apiserver queues a CRD for its Established condition only on an
// update event whose CRD has NamesAccepted: when it restarts between
// accepting the names and establishing (k3s restarting during an install),
// the CRD stays NamesAccepted and never Established. So a CRD that stays
// so for establishNudgeAfter gets an update that changes nothing in the
// end (an annotation set, then removed, by a field manager of its own),
// which queues it again.
func (c *Client) WaitCRDsEstablished(ctx context.Context, names []string, timeout time.Duration, logf func(string, ...any)) error {
	stuckSince := map[string]time.Time{}
	err := poll(ctx, timeout, func(ctx context.Context) (bool, string, error) {
		var pending []string
		crds := make([]*unstructured.Unstructured, len(names))
		errs := make([]error, len(names))
		_ = atOnce(ctx, len(names), applyConcurrency, func(ctx context.Context, i int) error {
			crds[i], errs[i] = c.Dynamic.Resource(crdResource()).Get(ctx, names[i], metav1.GetOptions{})
			return nil
		})
		for i, name := range names {
			crd, err := crds[i], errs[i]
			if err != nil {
				pending = append(pending, name+": "+err.Error())
				continue
			}
			r := ReadinessOf(RefOf(crd), crd)
			if r.Current() {
				continue
			}
			pending = append(pending, fmt.Sprintf("%s: %s: %s", name, r.Status, r.Message))
			if !conditionTrue(crd, "NamesAccepted") {
				continue
			}
			if since, ok := stuckSince[name]; !ok {
				stuckSince[name] = time.Now()
			} else if time.Since(since) > establishNudgeAfter {
				if logf != nil {
					logf("CRD %s has its names accepted but is not Established after %s (an API server restart loses its queue); nudging it", name, establishNudgeAfter)
				}
				c.nudgeCRD(ctx, name)
				stuckSince[name] = time.Now()
			}
		}
		if len(pending) == 0 {
			c.mapper.Reset() // the new kinds are served now
			return true, "", nil
		}
		return false, "CRDs not Established: " + strings.Join(pending, ", "), nil
	})
	if err != nil {
		return fmt.Errorf("CRDs: %w", err)
	}
	return nil
}

// nudgeCRD updates a CRD twice, setting then removing an annotation of
// its own field manager: two update events, and the CRD as before.
func (c *Client) nudgeCRD(ctx context.Context, name string) {
	opts := metav1.PatchOptions{FieldManager: establishNudgeManager}
	for _, value := range []string{`"` + time.Now().UTC().Format(time.RFC3339Nano) + `"`, "null"} {
		patch := []byte(`{"metadata":{"annotations":{"mcplan.io/establish":` + value + `}}}`)
		_, _ = c.Dynamic.Resource(crdResource()).Patch(ctx, name, types.MergePatchType, patch, opts)
	}
}

func conditionTrue(o *unstructured.Unstructured, typ string) bool {
	conds, _, _ := unstructured.NestedSlice(o.Object, "status", "conditions")
	for _, c := range conds {
		cm, _ := c.(map[string]any)
		if cm["type"] == typ {
			return cm["status"] == "True"
		}
	}
	return false
}

// Diagnose describes a namespace for a timeout message: each pod's phase
// and conditions that are not True, and the most recent events. It never
// fails: what cannot be read is said so.
func (c *Client) Diagnose(ctx context.Context, namespace string) string {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	var b strings.Builder
	pods, err := c.Typed.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{})
	switch {
	case err != nil:
		fmt.Fprintf(&b, "\n  pods of %s: cannot list: %v", namespace, err)
	case len(pods.Items) == 0:
		fmt.Fprintf(&b, "\n  pods of %s: none", namespace)
	default:
		fmt.Fprintf(&b, "\n  pods of %s:", namespace)
		for _, p := range pods.Items {
			var bad []string
			for _, cond := range p.Status.Conditions {
				if cond.Status != corev1.ConditionTrue {
					s := fmt.Sprintf("%s=%s", cond.Type, cond.Status)
					if cond.Reason != "" || cond.Message != "" {
						s += fmt.Sprintf(" (%s: %s)", cond.Reason, cond.Message)
					}
					bad = append(bad, s)
				}
			}
			for _, cs := range p.Status.ContainerStatuses {
				if w := cs.State.Waiting; w != nil {
					bad = append(bad, fmt.Sprintf("container %s waiting: %s %s", cs.Name, w.Reason, w.Message))
				}
			}
			line := fmt.Sprintf("\n    %s: %s", p.Name, p.Status.Phase)
			if len(bad) > 0 {
				line += "; " + strings.Join(bad, "; ")
			}
			b.WriteString(line)
		}
	}
	events, err := c.Typed.CoreV1().Events(namespace).List(ctx, metav1.ListOptions{})
	switch {
	case err != nil:
		fmt.Fprintf(&b, "\n  events of %s: cannot list: %v", namespace, err)
	case len(events.Items) == 0:
		fmt.Fprintf(&b, "\n  events of %s: none", namespace)
	default:
		items := events.Items
		slices.SortFunc(items, func(a, b corev1.Event) int { return eventTime(a).Compare(eventTime(b)) })
		if len(items) > 15 {
			items = items[len(items)-15:]
		}
		fmt.Fprintf(&b, "\n  recent events of %s:", namespace)
		for _, e := range items {
			fmt.Fprintf(&b, "\n    %s %s %s/%s: %s: %s", eventTime(e).Format(time.TimeOnly), e.Type,
				e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Reason, e.Message)
		}
	}
	return b.String()
}

func eventTime(e corev1.Event) time.Time {
	switch {
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	}
	return e.CreationTimestamp.Time
}

// LoadBalancerAddress is the first ingress address of a Service's load
// balancer, "" while it has none.
func LoadBalancerAddress(svc *corev1.Service) string {
	for _, in := range svc.Status.LoadBalancer.Ingress {
		if in.IP != "" {
			return in.IP
		}
		if in.Hostname != "" {
			return in.Hostname
		}
	}
	return ""
}

// WaitLoadBalancer waits until a Service of type LoadBalancer has an
// ingress address and returns it.
func (c *Client) WaitLoadBalancer(ctx context.Context, namespace, name string, timeout time.Duration) (string, error) {
	var addr string
	err := poll(ctx, timeout, func(ctx context.Context) (bool, string, error) {
		svc, err := c.Typed.CoreV1().Services(namespace).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, "Service " + name + " does not exist", nil
		}
		if err != nil {
			return false, "API: " + err.Error(), nil
		}
		addr = LoadBalancerAddress(svc)
		return addr != "", "Service " + name + " has no load balancer ingress", nil
	})
	return addr, err
}

// WaitSecretKey waits until a Secret has a non-empty data key, and
// returns the Secret. Its content must not be logged.
func (c *Client) WaitSecretKey(ctx context.Context, namespace, name, key string, timeout time.Duration) (*corev1.Secret, error) {
	var secret *corev1.Secret
	err := poll(ctx, timeout, func(ctx context.Context) (bool, string, error) {
		s, err := c.Typed.CoreV1().Secrets(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, "Secret " + name + ": " + err.Error(), nil
		}
		secret = s
		return len(s.Data[key]) > 0, "Secret " + name + " has no " + key + " yet", nil
	})
	return secret, err
}

// WaitNamespaceGone waits until a namespace being deleted is gone: its
// objects deleted and its finalizers done.
func (c *Client) WaitNamespaceGone(ctx context.Context, name string, timeout time.Duration) error {
	return poll(ctx, timeout, func(ctx context.Context) (bool, string, error) {
		ns, err := c.Typed.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, "", nil
		}
		if err != nil {
			return false, "API: " + err.Error(), nil
		}
		return false, namespaceSeen(ns), nil
	})
}

// namespaceSeen says what keeps a terminating namespace: the namespace
// controller's conditions that hold (content or finalizers remaining, a
// discovery or deletion failure), with their messages.
func namespaceSeen(ns *corev1.Namespace) string {
	seen := fmt.Sprintf("namespace %s is %s", ns.Name, ns.Status.Phase)
	for _, c := range ns.Status.Conditions {
		if c.Status == corev1.ConditionTrue {
			seen += fmt.Sprintf("; %s: %s", c.Type, c.Message)
		}
	}
	return seen
}
