package plans

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// DefaultRenewBefore is how long before its expiry a certificate is due.
const DefaultRenewBefore = 90 * 24 * time.Hour

// parseLifetime reads a duration given in days ("90d") or as a Go
// duration ("2160h").
func parseLifetime(s string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n < 1 {
			return 0, fmt.Errorf("%s is not a number of days such as 90d", quote(s))
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s is neither days (90d) nor a positive duration (2160h)", quote(s))
	}
	return d, nil
}

// TokenRotation is meshes[].remoteSecrets.rotateAfter; ok is false when
// tokens are not rotated (the default).
func (m Mesh) TokenRotation() (after time.Duration, ok bool) {
	if m.RemoteSecrets == nil || m.RemoteSecrets.RotateAfter == "" {
		return 0, false
	}
	d, err := parseLifetime(m.RemoteSecrets.RotateAfter)
	if err != nil {
		return 0, false // a validated plan has none
	}
	return d, true
}

// RenewWindow is how long before its expiry a certificate of the mesh is
// due (ca.renewBefore, default DefaultRenewBefore).
func (c CA) RenewWindow() time.Duration {
	if c.RenewBefore == "" {
		return DefaultRenewBefore
	}
	d, err := parseLifetime(c.RenewBefore)
	if err != nil {
		return DefaultRenewBefore // a validated plan has none
	}
	return d
}
