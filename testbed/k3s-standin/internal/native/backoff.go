package native

import "time"

// kubelet's crash-loop back-off: a container that stops is restarted at
// once the first time, then after 10s, 20s, 40s ... at most 5 minutes; a
// run of 10 minutes resets it.
const (
	backoffInitial = 10 * time.Second
	backoffMax     = 5 * time.Minute
	backoffReset   = 10 * time.Minute
)

type crashBackoff struct {
	next time.Duration
}

// delay is how long to wait before the next start, after a run that
// lasted ran.
func (b *crashBackoff) delay(ran time.Duration) time.Duration {
	if ran >= backoffReset {
		b.next = 0
	}
	d := b.next
	switch {
	case b.next == 0:
		b.next = backoffInitial
	default:
		b.next = min(2*b.next, backoffMax)
	}
	return d
}
