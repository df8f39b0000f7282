package kubeletapi

import (
	"net/http"
	"slices"
)

// authorizedGroup is the group whose client certificates may use the
// kubelet API: the apiserver's kubelet client certificate
// (system:apiserver) and the admin's are in it. kubelet would ask the
// apiserver (SubjectAccessReview on nodes/proxy etc.); the stand-in only
// admits cluster admins.
const authorizedGroup = "system:masters"

// authenticated requires a client certificate verified against the client
// CA (else 401) in authorizedGroup (else 403).
func (s *Server) authenticated(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
			http.Error(w, "Unauthorized: the kubelet API needs a client certificate signed by the cluster's client CA", http.StatusUnauthorized)
			return
		}
		leaf := r.TLS.VerifiedChains[0][0]
		if !slices.Contains(leaf.Subject.Organization, authorizedGroup) {
			http.Error(w, "Forbidden (user="+leaf.Subject.CommonName+"): the stand-in's kubelet API admits only "+authorizedGroup, http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}
