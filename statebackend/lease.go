package statebackend

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// HolderAnnotation holds, on the lock's Lease, who holds it (Holder as
// JSON).
const HolderAnnotation = "mcplan.io/holder"

// DefaultLockTimeout is how long a lock may go unrenewed before another
// run takes it over: a killed run frees it by itself.
const DefaultLockTimeout = time.Minute

// Holder says who holds a lock.
type Holder struct {
	User    string    `json:"user"`
	Host    string    `json:"host"`
	PID     int       `json:"pid"`
	Command string    `json:"command"`
	Since   time.Time `json:"since"`
}

func (h Holder) identity() string { return fmt.Sprintf("%s@%s pid %d", h.User, h.Host, h.PID) }

func (h Holder) String() string {
	return fmt.Sprintf("%q (%s since %s)", h.Command, h.identity(), h.Since.Format(time.RFC3339))
}

// LeaseLock is the lock of a state kept in Kubernetes: a
// coordination.k8s.io Lease, acquired and renewed with its
// resourceVersion, taken over by another run only once it has not been
// renewed for Timeout (by its renewTime, or, whatever the clocks say, by
// this run seeing it unchanged for that long).
//
// client-go's leaderelection is not used: it takes a lease over only
// after watching it unchanged for a whole lease duration, so a lock left
// an hour ago by a killed CI job would still cost every run a minute, and
// it has no way to refuse at once naming the holder.
type LeaseLock struct {
	Client    kubernetes.Interface
	Namespace string
	Name      string
	Timeout   time.Duration
	Holder    Holder
	Logf      func(format string, args ...any)
}

// LockedError is the error of a lock another run holds.
type LockedError struct {
	Where   string
	Holder  Holder
	Renewed time.Time
	Timeout time.Duration
}

func (e *LockedError) Error() string {
	return fmt.Sprintf("state is locked by %s, renewed %s ago (Lease %s; it is free once not renewed for %s): wait with --lock-timeout, or if that run is gone run \"mcplan state unlock\"",
		e.Holder, time.Since(e.Renewed).Round(time.Second), e.Where, e.Timeout)
}

// ErrLockLost is the cause of a run's end when its lock was taken over or
// could not be renewed for its timeout.
var ErrLockLost = errors.New("the state lock was lost")

// Held is a held lock, renewed until Release.
type Held struct {
	l      *LeaseLock
	stop   context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	lease  *coordinationv1.Lease
	onLost func(error)
}

func (l *LeaseLock) where() string { return l.Namespace + "/" + l.Name }

// renewEvery is how often a held lock is renewed: a few times per
// timeout, at most every 5 s.
func (l *LeaseLock) renewEvery() time.Duration { return min(l.Timeout/4, 5*time.Second) }

// Acquire takes the lock, waiting up to wait for a held one to be
// released or to expire (0: refuse at once with a *LockedError). onLost
// is called, once, when the lock is lost while held.
func (l *LeaseLock) Acquire(ctx context.Context, wait time.Duration, onLost func(error)) (*Held, error) {
	leases := l.Client.CoordinationV1().Leases(l.Namespace)
	deadline := time.Now().Add(wait)
	var seenVersion string
	var seenSince time.Time
	told := false
	for {
		lease, err := leases.Get(ctx, l.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			lease, err = leases.Create(ctx, l.held(&coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: l.Name, Namespace: l.Namespace,
				Labels: map[string]string{ManagedByLabel: ManagedBy}}}), metav1.CreateOptions{FieldManager: ManagedBy})
			if err == nil {
				return l.hold(lease, onLost), nil
			}
			if !apierrors.IsAlreadyExists(err) {
				return nil, fmt.Errorf("lock the state (Lease %s): %w", l.where(), err)
			}
			continue
		case err != nil:
			return nil, fmt.Errorf("lock the state (Lease %s): %w", l.where(), err)
		}
		holder, renewed := leaseHolder(lease)
		if lease.ResourceVersion != seenVersion {
			seenVersion, seenSince = lease.ResourceVersion, time.Now()
		}
		free := lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity == ""
		expired := time.Since(renewed) > l.Timeout || time.Since(seenSince) > l.Timeout
		if free || expired {
			if expired && !free && l.Logf != nil {
				l.Logf("state lock: taking over the lock of %s, not renewed for %s", holder, time.Since(renewed).Round(time.Second))
			}
			taken, err := leases.Update(ctx, l.held(lease.DeepCopy()), metav1.UpdateOptions{FieldManager: ManagedBy})
			if err == nil {
				return l.hold(taken, onLost), nil
			}
			if !apierrors.IsConflict(err) {
				return nil, fmt.Errorf("lock the state (Lease %s): %w", l.where(), err)
			}
			continue // someone else moved first: look again
		}
		if time.Now().After(deadline) {
			return nil, &LockedError{Where: l.where(), Holder: holder, Renewed: renewed, Timeout: l.Timeout}
		}
		if l.Logf != nil && !told {
			l.Logf("state lock: held by %s; waiting up to %s", holder, time.Until(deadline).Round(time.Second))
			told = true
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(min(time.Second, time.Until(deadline)+time.Millisecond)):
		}
	}
}

// held is lease made ours: holder, times, duration.
func (l *LeaseLock) held(lease *coordinationv1.Lease) *coordinationv1.Lease {
	now := metav1.NewMicroTime(time.Now())
	data, _ := json.Marshal(l.Holder)
	if lease.Annotations == nil {
		lease.Annotations = map[string]string{}
	}
	lease.Annotations[HolderAnnotation] = string(data)
	if lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity != l.Holder.identity() {
		lease.Spec.LeaseTransitions = ptr.To(ptr.Deref(lease.Spec.LeaseTransitions, 0) + 1)
	}
	lease.Spec.HolderIdentity = ptr.To(l.Holder.identity())
	lease.Spec.LeaseDurationSeconds = ptr.To(int32(l.Timeout / time.Second))
	lease.Spec.AcquireTime = &now
	lease.Spec.RenewTime = &now
	return lease
}

// leaseHolder is who a Lease names and when it was last renewed.
func leaseHolder(lease *coordinationv1.Lease) (Holder, time.Time) {
	var h Holder
	if err := json.Unmarshal([]byte(lease.Annotations[HolderAnnotation]), &h); err != nil {
		h = Holder{Command: "?", User: ptr.Deref(lease.Spec.HolderIdentity, "?")}
	}
	var renewed time.Time
	if lease.Spec.RenewTime != nil {
		renewed = lease.Spec.RenewTime.Time
	}
	return h, renewed
}

func (l *LeaseLock) hold(lease *coordinationv1.Lease, onLost func(error)) *Held {
	ctx, stop := context.WithCancel(context.Background())
	h := &Held{l: l, stop: stop, done: make(chan struct{}), lease: lease, onLost: onLost}
	go h.renew(ctx)
	return h
}

// renew renews the lease until Release; a lease taken over, or not
// renewed for the timeout, is lost.
func (h *Held) renew(ctx context.Context) {
	defer close(h.done)
	leases := h.l.Client.CoordinationV1().Leases(h.l.Namespace)
	t := time.NewTicker(h.l.renewEvery())
	defer t.Stop()
	lastRenewed := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		h.mu.Lock()
		next := h.lease.DeepCopy()
		h.mu.Unlock()
		now := metav1.NewMicroTime(time.Now())
		next.Spec.RenewTime = &now
		rctx, cancel := context.WithTimeout(ctx, h.l.renewEvery())
		renewed, err := leases.Update(rctx, next, metav1.UpdateOptions{FieldManager: ManagedBy})
		cancel()
		switch {
		case err == nil:
			h.mu.Lock()
			h.lease = renewed
			h.mu.Unlock()
			lastRenewed = time.Now()
			continue
		case ctx.Err() != nil:
			return
		case apierrors.IsConflict(err) || apierrors.IsNotFound(err):
			h.lost(fmt.Errorf("%w: Lease %s was changed by another run (%v)", ErrLockLost, h.l.where(), err))
			return
		}
		if h.l.Logf != nil {
			h.l.Logf("state lock: renewing Lease %s failed (will retry): %v", h.l.where(), err)
		}
		if time.Since(lastRenewed) > h.l.Timeout {
			h.lost(fmt.Errorf("%w: Lease %s not renewed for %s: %v", ErrLockLost, h.l.where(), h.l.Timeout, err))
			return
		}
	}
}

func (h *Held) lost(err error) {
	if h.onLost != nil {
		h.onLost(err)
	}
}

// Release stops renewing and frees the lock, if it is still ours.
func (h *Held) Release() error {
	h.stop()
	<-h.done
	h.mu.Lock()
	lease := h.lease.DeepCopy()
	h.mu.Unlock()
	lease.Spec.HolderIdentity = nil
	lease.Spec.RenewTime = nil
	lease.Spec.AcquireTime = nil
	delete(lease.Annotations, HolderAnnotation)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := h.l.Client.CoordinationV1().Leases(h.l.Namespace).Update(ctx, lease, metav1.UpdateOptions{FieldManager: ManagedBy})
	if err != nil && !apierrors.IsConflict(err) && !apierrors.IsNotFound(err) {
		return fmt.Errorf("unlock the state (Lease %s): %w", h.l.where(), err)
	}
	return nil
}

// ForceUnlock frees the lock whoever holds it and returns who did; ok is
// false when it was free.
func (l *LeaseLock) ForceUnlock(ctx context.Context) (Holder, bool, error) {
	leases := l.Client.CoordinationV1().Leases(l.Namespace)
	lease, err := leases.Get(ctx, l.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return Holder{}, false, nil
	}
	if err != nil {
		return Holder{}, false, fmt.Errorf("unlock the state (Lease %s): %w", l.where(), err)
	}
	if lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity == "" {
		return Holder{}, false, nil
	}
	holder, _ := leaseHolder(lease)
	lease.Spec.HolderIdentity, lease.Spec.RenewTime, lease.Spec.AcquireTime = nil, nil, nil
	delete(lease.Annotations, HolderAnnotation)
	if _, err := leases.Update(ctx, lease, metav1.UpdateOptions{FieldManager: ManagedBy}); err != nil {
		return Holder{}, false, fmt.Errorf("unlock the state (Lease %s): %w", l.where(), err)
	}
	return holder, true, nil
}
