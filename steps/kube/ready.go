package kube

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

// Readiness is an object's kstatus (sigs.k8s.io/cli-utils): Current when
// it is reconciled and ready by its kind's rules (a Deployment rolled out
// and Available, a StatefulSet's replicas Ready, a Job started and not
// Failed, a CRD Established, another object's Ready condition True or
// none), else InProgress, Failed, Terminating, NotFound or Unknown, with
// kstatus's message saying why.
type Readiness struct {
	Ref     Ref
	Status  status.Status
	Message string
	// unread: the object could not be read (Message says why).
	unread bool
}

// String is "Kind namespace/name: Status: message".
func (r Readiness) String() string {
	return fmt.Sprintf("%s: %s: %s", r.Ref, r.Status, r.Message)
}

// Current says whether the object is Current.
func (r Readiness) Current() bool { return r.Status == status.CurrentStatus }

// ReadinessOf is the kstatus of the object ref names, as read (nil: it
// does not exist).
func ReadinessOf(ref Ref, live *unstructured.Unstructured) Readiness {
	if live == nil {
		return Readiness{Ref: ref, Status: status.NotFoundStatus, Message: "does not exist"}
	}
	res, err := status.Compute(live)
	if err != nil {
		return Readiness{Ref: ref, Status: status.UnknownStatus, Message: err.Error()}
	}
	msg := res.Message
	if msg == "" && len(res.Conditions) > 0 {
		msg = res.Conditions[0].Reason // a condition with a reason and no message
	}
	return Readiness{Ref: ref, Status: res.Status, Message: msg}
}

// IsCurrent says whether a live object is Current by kstatus, and if
// not, which object it is, its status and why ("Deployment
// istio-system/istiod: InProgress: Available: 0/1").
func IsCurrent(live *unstructured.Unstructured) (bool, string) {
	r := ReadinessOf(RefOf(live), live)
	if r.Current() {
		return true, ""
	}
	return false, r.String()
}

// notCurrent lists the objects that are not Current, one line each
// (Readiness.String), in the order given.
func notCurrent(rs []Readiness) []string {
	var out []string
	for _, r := range rs {
		if !r.Current() {
			out = append(out, r.String())
		}
	}
	return out
}

// readiness reads each object (at most readConcurrency at once) and
// computes its kstatus. An object that cannot be read (the API failing,
// its kind not served yet) is Unknown, with the error as its message.
func (c *Client) readiness(ctx context.Context, refs []Ref) []Readiness {
	out := make([]Readiness, len(refs))
	_ = atOnce(ctx, len(refs), readConcurrency, func(ctx context.Context, i int) error {
		live, err := c.Get(ctx, refs[i])
		if err != nil {
			out[i] = Readiness{Ref: refs[i], Status: status.UnknownStatus, Message: err.Error(), unread: true}
			return nil
		}
		out[i] = ReadinessOf(refs[i], live)
		return nil
	})
	return out
}

// NotCurrentAmong lists, of objects already read (the live objects
// Client.Unchanged returns), those that are not Current, one line each
// (Readiness.String), in the order of their Refs.
func NotCurrentAmong(live map[Ref]*unstructured.Unstructured) []string {
	refs := slices.SortedFunc(maps.Keys(live), func(a, b Ref) int { return strings.Compare(a.String(), b.String()) })
	rs := make([]Readiness, len(refs))
	for i, ref := range refs {
		rs[i] = ReadinessOf(ref, live[ref])
	}
	return notCurrent(rs)
}

// NotCurrent reads the objects refs name and lists those that are not
// Current, one line each (Readiness.String).
func (c *Client) NotCurrent(ctx context.Context, refs []Ref) []string {
	return notCurrent(c.readiness(ctx, refs))
}

// WaitCurrent waits until every object refs name is Current (kstatus).
// On timeout the error names each object that is not, with its status
// and why ("StatefulSet sample/web: InProgress: Ready: 0/1"), and
// describes their namespaces' pods and events (Diagnose). An object that
// turns Failed (a Job failed, a Deployment past its progress deadline) is
// said to logf when it does; the wait goes on, as it may still recover.
func (c *Client) WaitCurrent(ctx context.Context, refs []Ref, timeout time.Duration, logf func(string, ...any)) error {
	if len(refs) == 0 {
		return nil
	}
	var last []Readiness
	failed := map[Ref]string{}
	err := poll(ctx, timeout, func(ctx context.Context) (bool, string, error) {
		last = keepLastRead(last, c.readiness(ctx, refs))
		for _, r := range last {
			if r.Status == status.FailedStatus && failed[r.Ref] != r.Message && logf != nil {
				logf("%s", r)
			}
			if r.Status == status.FailedStatus {
				failed[r.Ref] = r.Message
			}
		}
		pending := notCurrent(last)
		return len(pending) == 0, strings.Join(pending, "; "), nil
	})
	if err != nil {
		what := fmt.Sprintf("%d objects", len(refs))
		if len(refs) == 1 {
			what = refs[0].String()
		}
		return fmt.Errorf("wait for %s to be Current: %w%s", what, err, c.diagnoseNotCurrent(ctx, last))
	}
	return nil
}

// keepLastRead is now, where an object that could not be read this time
// (a lost answer, the wait's deadline near) keeps what it was last read
// as: the timeout's "last seen" names its status, not the failed read.
func keepLastRead(last, now []Readiness) []Readiness {
	for i := range now {
		if now[i].unread && i < len(last) && !last[i].unread {
			now[i] = last[i]
		}
	}
	return now
}

// diagnoseNotCurrent describes the namespaces of the objects that are not
// Current (Diagnose), each once.
func (c *Client) diagnoseNotCurrent(ctx context.Context, rs []Readiness) string {
	var namespaces []string
	for _, r := range rs {
		if !r.Current() && r.Ref.Namespace != "" && !slices.Contains(namespaces, r.Ref.Namespace) {
			namespaces = append(namespaces, r.Ref.Namespace)
		}
	}
	var b strings.Builder
	for _, ns := range namespaces {
		b.WriteString(c.Diagnose(ctx, ns))
	}
	return b.String()
}

// Refs are the Refs of objects.
func Refs(objs []*unstructured.Unstructured) []Ref {
	out := make([]Ref, len(objs))
	for i, o := range objs {
		out[i] = RefOf(o)
	}
	return out
}
