package plans

import (
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Validate checks the plan and reports every problem at once as Errors,
// each positioned at the offending node when the plan was parsed from a
// file. It accepts a plan with or without defaults applied: empty fields are
// judged by the value their default would give. The one file it reads is
// the kubeconfig of each cluster given by kubeconfig (read, never written).
func Validate(p *Plan) error {
	if p == nil {
		return Errors{{Path: RootPath, Message: "no plan"}}
	}
	v := &validator{p: p}
	v.header()
	v.ssh(p.SSH, "ssh")
	v.hosts()
	v.networks()
	v.clusters()
	v.meshes()
	v.kubeconfig()
	v.timeouts()
	v.state()
	return v.errs.err()
}

// validator collects the problems of one plan.
type validator struct {
	p    *Plan
	errs Errors
}

func (v *validator) add(path, msg, hint string) {
	v.errs = append(v.errs, v.p.errAt(path, msg, hint))
}

// set reports whether path was written in the plan file.
func (v *validator) set(path string) bool { return v.p.src.has(path) }

func (v *validator) header() {
	p := v.p
	switch {
	case p.APIVersion == "":
		v.add("apiVersion", "required field missing", "set apiVersion: "+APIVersion)
	case p.APIVersion != APIVersion:
		v.add("apiVersion", fmt.Sprintf("unsupported apiVersion %s: this mcplan reads %s", quote(p.APIVersion), quote(APIVersion)), "")
	}
	switch {
	case p.Kind == "":
		v.add("kind", "required field missing", "set kind: "+Kind)
	case p.Kind != Kind:
		v.add("kind", fmt.Sprintf("kind is %s, want %s", quote(p.Kind), quote(Kind)), "")
	}
	v.label("metadata.name", p.Metadata.Name, "plan")
}

// label checks a required DNS-1123 name.
func (v *validator) label(path, name, what string) {
	if name == "" {
		v.add(path, fmt.Sprintf("required field missing: every %s needs a name", what), "")
		return
	}
	if msg, hint := checkLabel(name); msg != "" {
		v.add(path, msg, hint)
	}
}

// names checks the names of one list: valid and unique. name(i) is the
// i-th name.
func (v *validator) names(list string, n int, name func(int) string, what string) {
	first := map[string]int{}
	for i := range n {
		path := fieldPath(indexPath(list, i), "name")
		nm := name(i)
		v.label(path, nm, what)
		if nm == "" {
			continue
		}
		if j, dup := first[nm]; dup {
			v.add(path, fmt.Sprintf("duplicate %s name %s (also %s[%d])", what, quote(nm), list, j), "")
			continue
		}
		first[nm] = i
	}
}

func (v *validator) ssh(s SSH, path string) {
	if s.Port != 0 || v.set(fieldPath(path, "port")) {
		v.port(fieldPath(path, "port"), s.Port)
	}
	if kh := s.KnownHosts; kh != "" && kh != KnownHostsPin {
		if strings.ContainsAny(kh, "\x00\n\r") || (!strings.ContainsAny(kh, `/\.~`) && (strings.EqualFold(kh, KnownHostsPin) || levenshtein(strings.ToLower(kh), KnownHostsPin) <= 2)) {
			v.add(fieldPath(path, "knownHosts"), fmt.Sprintf("%s is neither a known_hosts file path nor %s", quote(kh), quote(KnownHostsPin)), didYouMean(kh, []string{KnownHostsPin}))
		}
	}
	if s.ConnectTimeout != "" {
		if msg := checkDuration(s.ConnectTimeout); msg != "" {
			v.add(fieldPath(path, "connectTimeout"), msg, "")
		}
	}
}

func (v *validator) port(path string, port int) {
	if port < 1 || port > 65535 {
		v.add(path, fmt.Sprintf("port %d is out of range: use 1 to 65535", port), "")
	}
}

func (v *validator) hosts() {
	p := v.p
	if len(p.Hosts) == 0 && !slices.ContainsFunc(p.Clusters, func(c Cluster) bool { return !c.Installed() }) {
		v.add("hosts", "a plan needs at least one host", "")
	}
	v.names("hosts", len(p.Hosts), func(i int) string { return p.Hosts[i].Name }, "host")
	for i, h := range p.Hosts {
		path := indexPath("hosts", i)
		switch {
		case h.Address == "":
			v.add(fieldPath(path, "address"), "required field missing: the address mcplan reaches the host at over SSH", "")
		default:
			if _, ok := parseIP(h.Address); !ok && !isDNSName(h.Address) {
				v.add(fieldPath(path, "address"), fmt.Sprintf("%s is neither an IP address nor a DNS name", quote(h.Address)), "")
			}
		}
		if h.PrivateIP != "" {
			if _, ok := parseIP(h.PrivateIP); !ok {
				v.add(fieldPath(path, "privateIP"), fmt.Sprintf("%s is not an IP address", quote(h.PrivateIP)), "")
			}
		}
		if h.SSH != nil {
			v.ssh(*h.SSH, fieldPath(path, "ssh"))
		}
	}
}

func (v *validator) networks() {
	p := v.p
	v.names("networks", len(p.Networks), func(i int) string { return p.Networks[i].Name }, "network")
}

func (v *validator) hostNames() []string {
	out := make([]string, len(v.p.Hosts))
	for i, h := range v.p.Hosts {
		out[i] = h.Name
	}
	return out
}

func (v *validator) clusters() {
	p := v.p
	if len(p.Clusters) == 0 {
		v.add("clusters", "a plan needs at least one cluster", "")
	}
	v.names("clusters", len(p.Clusters), func(i int) string { return p.Clusters[i].Name }, "cluster")
	hosts := v.hostNames()
	var networks []string
	for _, n := range p.Networks {
		networks = append(networks, n.Name)
	}
	owner := map[string]string{} // host -> path where it was first used
	for i, c := range p.Clusters {
		path := indexPath("clusters", i)
		switch {
		case c.Network != "" && p.Network(c.Network) == nil:
			if len(p.Networks) == 0 {
				v.add(fieldPath(path, "network"), fmt.Sprintf("network %s is not declared: the plan has no networks", quote(c.Network)),
					"declare it under networks, or leave network empty to use the default "+DefaultNetwork)
			} else {
				v.add(fieldPath(path, "network"), fmt.Sprintf("network %s is not declared in networks", quote(c.Network)), didYouMean(c.Network, networks))
			}
		case c.Network == "" && len(p.Networks) > 1:
			v.add(fieldPath(path, "network"), fmt.Sprintf("required field missing: the plan has %d networks, say which one this cluster is on", len(p.Networks)),
				"one of "+strings.Join(quoteAll(networks), ", "))
		}
		switch {
		case !c.Installed() && len(c.Hosts()) > 0:
			v.add(fieldPath(path, "kubeconfig"), "a cluster has servers and agents (mcplan installs it) or a kubeconfig (it exists already), not both", "")
		case !c.Installed():
			v.clusterKubeconfig(c, path)
		case len(c.Servers) == 0:
			v.add(fieldPath(path, "servers"), "a cluster needs at least one server", "or give the kubeconfig of a cluster mcplan did not install")
		}
		for _, r := range []struct {
			role  string
			hosts []string
		}{{"servers", c.Servers}, {"agents", c.Agents}} {
			for j, h := range r.hosts {
				hp := indexPath(fieldPath(path, r.role), j)
				if p.Host(h) == nil {
					v.add(hp, fmt.Sprintf("host %s is not declared in hosts", quote(h)), didYouMean(h, hosts))
				}
			}
		}
		for j, h := range c.Hosts() {
			hp := indexPath(fieldPath(path, "servers"), j)
			if j >= len(c.Servers) {
				hp = indexPath(fieldPath(path, "agents"), j-len(c.Servers))
			}
			if prev, used := owner[h]; used {
				v.add(hp, fmt.Sprintf("host %s is already used at %s: a host belongs to one cluster, once", quote(h), prev), "")
				continue
			}
			owner[h] = hp
		}
		if !c.Installed() && v.set(fieldPath(path, "k3s")) {
			v.add(fieldPath(path, "k3s"), "k3s settings apply to clusters mcplan installs, not to one given by kubeconfig", "")
		}
		v.k3s(c.K3s, fieldPath(path, "k3s"))
		v.api(c, path)
		if c.EastWest != nil && c.EastWest.Address != "" {
			if _, ok := parseIP(c.EastWest.Address); !ok {
				v.add(fieldPath(path, "eastWest.address"), fmt.Sprintf("%s is not an IP address", quote(c.EastWest.Address)), "")
			}
		}
		v.manifests(c.Manifests, fieldPath(path, "manifests"))
	}
}

func (v *validator) k3s(k K3s, path string) {
	if k.Version != "" && !k3sVersionRE.MatchString(k.Version) {
		v.add(fieldPath(path, "version"), fmt.Sprintf("%s is not a k3s version", quote(k.Version)), "k3s versions look like v1.31.4+k3s1")
	}
	if k.Version != "" && k.Channel != "" {
		v.add(fieldPath(path, "channel"), "version and channel are exclusive: set one", "")
	}
	if k.Channel != "" && !k3sChannelRE.MatchString(k.Channel) {
		v.add(fieldPath(path, "channel"), fmt.Sprintf("%s is not a k3s channel", quote(k.Channel)), "use stable, latest, testing or a minor version such as v1.31")
	}
	for _, set := range []struct {
		field string
		args  []string
	}{{"args", k.Args}, {"agentArgs", k.AgentArgs}} {
		for i, arg := range set.args {
			key, _, _ := strings.Cut(strings.TrimLeft(arg, "-"), "=")
			if strings.HasPrefix(arg, "-") && slices.Contains(k3sKeysOfMcplan, key) {
				v.add(indexPath(fieldPath(path, set.field), i), fmt.Sprintf("%s is set by mcplan and cannot be overridden", quote(arg)),
					"mcplan writes node-name, node-ip, advertise-address, write-kubeconfig-mode, https-listen-port (from api.port), cluster-init, server, token and agent-token itself")
			}
		}
	}
	if u := k.Upgrade; u != nil && u.MaxUnavailable != "" {
		if _, err := parseMaxUnavailable(u.MaxUnavailable); err != nil {
			v.add(fieldPath(path, "upgrade.maxUnavailable"), err.Error(), "a count such as 2 or a percentage such as 25%")
		}
	}
	if h := k.Hooks; h != nil {
		for _, set := range []struct {
			field string
			cmds  []string
		}{{"beforeUpgrade", h.BeforeUpgrade}, {"afterUpgrade", h.AfterUpgrade}} {
			for i, c := range set.cmds {
				if strings.TrimSpace(c) == "" || strings.ContainsRune(c, 0) {
					v.add(indexPath(fieldPath(path, "hooks."+set.field), i), "a hook must be a non-empty shell command", "")
				}
			}
		}
	}
	if k.Mirror != "" && k.Mirror != "cn" {
		v.add(fieldPath(path, "mirror"), fmt.Sprintf("unknown mirror %s: leave it empty or use \"cn\"", quote(k.Mirror)), "")
	}
	if a := k.Airgap; a != nil {
		if a.Binary == "" {
			v.add(fieldPath(path, "airgap.binary"), "required field missing: airgap needs the local k3s binary", "")
		}
		if a.InstallScript == "" {
			v.add(fieldPath(path, "airgap.installScript"), "required field missing: airgap needs a local copy of the k3s install script", "")
		}
		// Each uploaded file, and its optional pinned sum (field + "SHA256").
		for _, f := range []struct{ field, file, sum string }{
			{"binary", a.Binary, a.BinarySHA256}, {"images", a.Images, a.ImagesSHA256}, {"installScript", a.InstallScript, a.InstallScriptSHA256},
		} {
			if name := filepath.Base(f.file); f.file != "" && !uploadNameRE.MatchString(name) {
				v.add(fieldPath(path, "airgap."+f.field), fmt.Sprintf("file name %s has characters an uploaded file's name may not have", quote(name)),
					"use letters, digits, '.', '_', '+' and '-'")
			}
			sumPath := fieldPath(path, "airgap."+f.field+"SHA256")
			switch {
			case f.sum == "":
			case !sha256HexRE.MatchString(f.sum):
				v.add(sumPath, fmt.Sprintf("%s is not a sha256 (64 hex digits)", quote(f.sum)), "sha256sum FILE prints it")
			case f.file == "":
				v.add(sumPath, "a sum for a file the plan does not name", "")
			}
		}
	}
}

func (v *validator) api(c Cluster, path string) {
	a := c.API
	ap := fieldPath(path, "api")
	if a.Port != 0 || v.set(fieldPath(ap, "port")) {
		v.port(fieldPath(ap, "port"), a.Port)
	}
	if s := a.OperatorAddress; s != "" && !c.Installed() {
		v.add(fieldPath(ap, "operatorAddress"), "a cluster given by kubeconfig is reached at its kubeconfig's server", "leave operatorAddress out, or change the server in the kubeconfig file")
	} else if s != "" {
		if _, ok := parseIP(s); !ok && !isDNSName(s) {
			v.add(fieldPath(ap, "operatorAddress"), fmt.Sprintf("%s is neither an IP address nor a DNS name", quote(s)), "")
		}
	}
	mp := fieldPath(ap, "meshAddress")
	switch s := a.MeshAddress; {
	case s != "":
		if _, ok := parseIP(s); !ok && !isDNSName(s) {
			v.add(mp, fmt.Sprintf("%s is neither an IP address nor a DNS name", quote(s)), "")
		} else if isLoopback(s) {
			v.add(mp, fmt.Sprintf("%s is a loopback address: other clusters cannot reach it", quote(s)), "use an address the other clusters can reach")
		}
	case !c.Installed():
		v.add(mp, "required field missing: other clusters reach the API of a cluster given by kubeconfig at api.meshAddress", "set it to an address of the API server the other clusters reach")
	default:
		if ip := v.p.firstServerIP(c); ip != "" && isLoopback(ip) {
			v.add(mp, fmt.Sprintf("defaults to %s, the private IP of first server %s, a loopback address: other clusters cannot reach it", quote(ip), quote(c.Servers[0])),
				"set api.meshAddress or the host's privateIP")
		}
	}
}

func (v *validator) meshes() {
	p := v.p
	v.names("meshes", len(p.Meshes), func(i int) string { return p.Meshes[i].Name }, "mesh")
	var clusterNames []string
	for _, c := range p.Clusters {
		clusterNames = append(clusterNames, c.Name)
	}
	owner := map[string]string{} // cluster -> path where it joined a mesh
	for i, m := range p.Meshes {
		path := indexPath("meshes", i)
		if len(m.Clusters) == 0 {
			v.add(fieldPath(path, "clusters"), "a mesh needs at least one cluster", "")
		}
		for j, c := range m.Clusters {
			cp := indexPath(fieldPath(path, "clusters"), j)
			if p.Cluster(c) == nil {
				v.add(cp, fmt.Sprintf("cluster %s is not declared in clusters", quote(c)), didYouMean(c, clusterNames))
				continue
			}
			if prev, used := owner[c]; used {
				v.add(cp, fmt.Sprintf("cluster %s is already in a mesh at %s: a cluster belongs to one mesh, once", quote(c), prev), "")
				continue
			}
			owner[c] = cp
		}
		switch m.Model {
		case "", ModelMultiPrimary, ModelPrimaryRemote:
		default:
			v.add(fieldPath(path, "model"), fmt.Sprintf("unknown model %s: use %s or %s", quote(m.Model), quote(ModelMultiPrimary), quote(ModelPrimaryRemote)),
				didYouMean(m.Model, []string{ModelMultiPrimary, ModelPrimaryRemote}))
		}
		v.primaries(m, path)
		v.ca(m.CA, fieldPath(path, "ca"))
		v.istio(m.Istio, fieldPath(path, "istio"))
		if m.RemoteSecrets != nil && m.RemoteSecrets.RotateAfter != "" {
			if _, err := parseLifetime(m.RemoteSecrets.RotateAfter); err != nil {
				v.add(fieldPath(path, "remoteSecrets.rotateAfter"), err.Error(), "")
			}
		}
		v.verify(m.Verify, fieldPath(path, "verify"))
		v.manifests(m.Manifests, fieldPath(path, "manifests"))
	}
}

func (v *validator) primaries(m Mesh, path string) {
	pp := fieldPath(path, "primaries")
	if m.Model != ModelPrimaryRemote {
		if len(m.Primaries) > 0 {
			model := m.Model
			if model == "" {
				model = DefaultModel
			}
			v.add(pp, fmt.Sprintf("primaries only apply to model %s; this mesh is %s", quote(ModelPrimaryRemote), quote(model)), "")
		}
		return
	}
	for j, c := range m.Primaries {
		if !slices.Contains(m.Clusters, c) {
			hint := didYouMean(c, m.Clusters)
			if v.p.Cluster(c) != nil {
				hint = "add it to this mesh's clusters"
			}
			v.add(indexPath(pp, j), fmt.Sprintf("primary %s is not one of this mesh's clusters", quote(c)), hint)
		}
	}
	// Every network with clusters of the mesh needs a primary.
	var order []string
	members := map[string][]string{}
	for _, c := range m.Clusters {
		if v.p.Cluster(c) == nil {
			continue
		}
		n := v.p.ClusterNetwork(c)
		if n == "" {
			continue // reported on the cluster
		}
		if _, ok := members[n]; !ok {
			order = append(order, n)
		}
		members[n] = append(members[n], c)
	}
	for _, n := range order {
		has := slices.ContainsFunc(m.Primaries, func(c string) bool {
			return slices.Contains(m.Clusters, c) && v.p.ClusterNetwork(c) == n
		})
		if !has {
			at := pp
			if len(m.Primaries) == 0 {
				at = path
			}
			v.add(at, fmt.Sprintf("network %s has clusters of this primary-remote mesh (%s) but no primary", quote(n), strings.Join(members[n], ", ")),
				"list one of them under primaries")
		}
	}
}

func (v *validator) ca(c CA, path string) {
	if (c.RootCert == "") != (c.RootKey == "") {
		if c.RootCert == "" {
			v.add(fieldPath(path, "rootKey"), "rootKey needs rootCert: give both or neither", "")
		} else {
			v.add(fieldPath(path, "rootCert"), "rootCert needs rootKey: give both or neither", "")
		}
	}
	for _, f := range []struct {
		name string
		days int
	}{{"rootValidityDays", c.RootValidityDays}, {"intermediateValidityDays", c.IntermediateValidityDays}} {
		fp := fieldPath(path, f.name)
		if f.days < 0 || (f.days == 0 && v.set(fp)) {
			v.add(fp, fmt.Sprintf("validity must be at least 1 day, got %d", f.days), "")
		}
	}
	if c.RenewBefore != "" {
		if _, err := parseLifetime(c.RenewBefore); err != nil {
			v.add(fieldPath(path, "renewBefore"), err.Error(), "")
		}
	}
	if kp := fieldPath(path, "keySize"); c.KeySize != 0 || v.set(kp) {
		if c.KeySize != 2048 && c.KeySize != 3072 && c.KeySize != 4096 {
			v.add(kp, fmt.Sprintf("unsupported RSA key size %d: use 2048, 3072 or 4096", c.KeySize), "")
		}
	}
}

// istio checks the revision and its tags: DNS-1123 labels (they name
// Deployments, webhooks and Services), tags unique, not the revision's
// own name, and only with a revision.
func (v *validator) istio(in Istio, path string) {
	if in.Revision != "" {
		if msg, hint := checkLabel(in.Revision); msg != "" {
			v.add(fieldPath(path, "revision"), msg, hint)
		}
		if in.Revision == DefaultRevisionTag {
			v.add(fieldPath(path, "revision"), fmt.Sprintf("revision %s is the name of the default tag; name the revision otherwise (e.g. the release, 1-31)", quote(in.Revision)), "")
		}
	}
	tp := fieldPath(path, "tags")
	if len(in.Tags) > 0 && in.Revision == "" {
		v.add(tp, "revision tags need istio.revision: without one the control plane's own webhooks inject", "")
	}
	seen := map[string]bool{}
	for i, t := range in.Tags {
		p := indexPath(tp, i)
		switch msg, hint := checkLabel(t); {
		case msg != "":
			v.add(p, msg, hint)
		case seen[t]:
			v.add(p, fmt.Sprintf("duplicate tag %s", quote(t)), "")
		case t == in.Revision:
			v.add(p, fmt.Sprintf("tag %s is the revision's own name", quote(t)), "")
		}
		seen[t] = true
	}
}

func (v *validator) verify(vf Verify, path string) {
	if vf.Sample != "" && vf.Sample != DefaultSample {
		v.add(fieldPath(path, "sample"), fmt.Sprintf("unknown sample %s: the only sample is %s", quote(vf.Sample), quote(DefaultSample)), "")
	}
	if rp := fieldPath(path, "requests"); vf.Requests < 0 || (vf.Requests == 0 && v.set(rp)) {
		v.add(rp, fmt.Sprintf("requests must be at least 1, got %d", vf.Requests), "")
	}
	if vf.Timeout != "" {
		if msg := checkDuration(vf.Timeout); msg != "" {
			v.add(fieldPath(path, "timeout"), msg, "")
		}
	}
}

func (v *validator) kubeconfig() {
	k := v.p.Kubeconfig
	if k == nil {
		return
	}
	for _, f := range []struct{ name, value string }{{"cluster", k.Cluster}, {"user", k.User}, {"context", k.Context}} {
		if f.value != "" && !strings.Contains(f.value, ClusterPlaceholder) {
			v.add(fieldPath("kubeconfig", f.name), fmt.Sprintf("name pattern %s must contain %s, or every cluster gets the same name", quote(f.value), ClusterPlaceholder), "")
		}
	}
}

func quoteAll(s []string) []string {
	out := make([]string, len(s))
	for i, x := range s {
		out[i] = quote(x)
	}
	return out
}

// timeouts checks that each entry names a step kind and a duration.
func (v *validator) timeouts() {
	kinds := Kinds()
	for _, kind := range slices.Sorted(maps.Keys(v.p.Timeouts)) {
		path := fieldPath("timeouts", kind)
		if !slices.Contains(kinds, kind) {
			v.add(path, fmt.Sprintf("unknown step kind %s", quote(kind)), didYouMean(kind, kinds))
			continue
		}
		if msg := checkDuration(v.p.Timeouts[kind]); msg != "" {
			v.add(path, msg, "")
		}
	}
}

// state checks where the state is kept.
func (v *validator) state() {
	st := v.p.State
	if st == nil {
		return
	}
	backends := []string{BackendLocal, BackendKubernetes}
	switch {
	case st.Backend != "" && !slices.Contains(backends, st.Backend):
		v.add("state.backend", fmt.Sprintf("unknown backend %s: use %s or %s", quote(st.Backend), quote(BackendLocal), quote(BackendKubernetes)), didYouMean(st.Backend, backends))
	case st.Backend == BackendKubernetes && st.Kubernetes == nil:
		v.add("state.backend", "backend kubernetes needs state.kubernetes (at least its namespace)", "add state.kubernetes: {namespace: mcplan}")
	}
	if st.LockTimeout != "" {
		if msg := checkDuration(st.LockTimeout); msg != "" {
			v.add("state.lockTimeout", msg, "")
		} else if d, _ := time.ParseDuration(st.LockTimeout); d < 5*time.Second {
			v.add("state.lockTimeout", fmt.Sprintf("%s is too short: the lock is renewed every few seconds", quote(st.LockTimeout)), "use at least 5s; the default is 1m")
		}
	}
	if e := st.Encryption; e != nil && !envNameRE.MatchString(e.PassphraseEnv) {
		msg := "required field missing"
		if e.PassphraseEnv != "" {
			msg = fmt.Sprintf("%s is not an environment variable name", quote(e.PassphraseEnv))
		}
		v.add("state.encryption.passphraseEnv", msg, "name the variable that holds the passphrase, such as MCPLAN_STATE_PASSPHRASE")
	}
	if st.Kubernetes == nil {
		return
	}
	if st.Kubernetes.Namespace == "" {
		v.add("state.kubernetes.namespace", "required field missing", "name the namespace that holds the state's Secrets and Lease")
	} else if msg, hint := checkLabel(st.Kubernetes.Namespace); msg != "" {
		v.add("state.kubernetes.namespace", msg, hint)
	}
	k, _ := v.p.KubernetesState()
	if msg, hint := checkLabel(k.Name); msg != "" {
		path := "state.kubernetes.name"
		if st.Kubernetes.Name == "" {
			msg = "the default name " + msg[strings.Index(msg, quote(k.Name)):]
			hint = "set state.kubernetes.name"
		}
		v.add(path, msg, hint)
	}
}
