// Package plans holds the mcplan plan format: its types, the strict YAML
// loader, defaults, validation, and the step graph a plan describes.
package plans

// APIVersion and Kind identify a plan document.
const (
	APIVersion = "mcplan.io/v1alpha1"
	Kind       = "Plan"
)

// Mesh models.
const (
	ModelMultiPrimary  = "multi-primary"
	ModelPrimaryRemote = "primary-remote"
)

// Plan is one mcplan document: hosts reached by SSH, the k3s clusters built
// on them, the networks they sit on and the Istio meshes that join them.
type Plan struct {
	APIVersion string      `yaml:"apiVersion" json:"apiVersion" jsonschema:"description=Always mcplan.io/v1alpha1."`
	Kind       string      `yaml:"kind" json:"kind" jsonschema:"description=Always Plan."`
	Metadata   Metadata    `yaml:"metadata" json:"metadata"`
	SSH        SSH         `yaml:"ssh,omitempty" json:"ssh,omitempty" jsonschema:"description=SSH defaults for every host; a host may override each field."`
	Hosts      []Host      `yaml:"hosts" json:"hosts" jsonschema:"description=The machines mcplan installs on."`
	Networks   []Network   `yaml:"networks,omitempty" json:"networks,omitempty" jsonschema:"description=Networks: clusters on different networks reach each other only through east-west gateways."`
	Clusters   []Cluster   `yaml:"clusters" json:"clusters" jsonschema:"description=k3s clusters."`
	Meshes     []Mesh      `yaml:"meshes,omitempty" json:"meshes,omitempty" jsonschema:"description=Istio meshes joining clusters."`
	Kubeconfig *Kubeconfig `yaml:"kubeconfig,omitempty" json:"kubeconfig,omitempty" jsonschema:"description=Where the merged kubeconfig of all clusters is written."`
	State      *State      `yaml:"state,omitempty" json:"state,omitempty" jsonschema:"description=Where mcplan keeps its state and generated files."`
	// Timeouts bound one run of a step (or of its removal) by step kind.
	Timeouts map[string]string `yaml:"timeouts,omitempty" json:"timeouts,omitempty" jsonschema:"description=How long one run of a step of a kind (k3s/server, istio/controlplane, ...) or its removal may take, as a Go duration; the step then fails naming itself. Default per kind: see the plan reference."`

	// src is where the plan was loaded from (file name, directory, node
	// positions); nil for a plan built in Go code.
	src *source
}

// Metadata names the plan.
type Metadata struct {
	Name string `yaml:"name" json:"name" jsonschema:"description=Plan name (DNS-1123 label)."`
}

// SSH says how mcplan reaches a host. Fields left empty take the plan's
// defaults, then the built-in defaults.
type SSH struct {
	User           string `yaml:"user,omitempty" json:"user,omitempty" jsonschema:"description=Login user; non-root users run commands through sudo. Default root."`
	Port           int    `yaml:"port,omitempty" json:"port,omitempty" jsonschema:"minimum=1,maximum=65535,description=SSH port. Default 22."`
	IdentityFile   string `yaml:"identityFile,omitempty" json:"identityFile,omitempty" jsonschema:"description=Private key file; ~ is expanded. Default ~/.ssh/id_ed25519 unless useAgent is set."`
	PassphraseEnv  string `yaml:"passphraseEnv,omitempty" json:"passphraseEnv,omitempty" jsonschema:"description=Environment variable holding the key's passphrase."`
	UseAgent       *bool  `yaml:"useAgent,omitempty" json:"useAgent,omitempty" jsonschema:"description=Use the ssh-agent at SSH_AUTH_SOCK."`
	KnownHosts     string `yaml:"knownHosts,omitempty" json:"knownHosts,omitempty" jsonschema:"description=known_hosts file to verify host keys against, or 'pin' to trust on first use and store the key in state. Default ~/.ssh/known_hosts."`
	ProxyJump      string `yaml:"proxyJump,omitempty" json:"proxyJump,omitempty" jsonschema:"description=Bastion as [user@]host[:port]."`
	ConnectTimeout string `yaml:"connectTimeout,omitempty" json:"connectTimeout,omitempty" jsonschema:"description=Dial timeout as a Go duration. Default 10s."`
}

// Host is a machine reached by SSH.
type Host struct {
	Name      string `yaml:"name" json:"name" jsonschema:"description=Host name (DNS-1123 label), used in step IDs."`
	Address   string `yaml:"address" json:"address" jsonschema:"description=Address mcplan connects to over SSH (IP or DNS name)."`
	PrivateIP string `yaml:"privateIP,omitempty" json:"privateIP,omitempty" jsonschema:"description=IP other nodes and clusters reach this host at; becomes k3s node-ip. Default: address when it is an IP."`
	SSH       *SSH   `yaml:"ssh,omitempty" json:"ssh,omitempty" jsonschema:"description=Per-host SSH overrides."`
}

// Network is a flat L3 network: pods of clusters on it reach each other directly.
type Network struct {
	Name string `yaml:"name" json:"name" jsonschema:"description=Network name, the value of topology.istio.io/network."`
}

// Cluster is one k3s cluster.
type Cluster struct {
	Name    string   `yaml:"name" json:"name" jsonschema:"description=Cluster name (DNS-1123 label); Istio's clusterName."`
	Network string   `yaml:"network,omitempty" json:"network,omitempty" jsonschema:"description=Network this cluster is on. Default: the only network when the plan has one."`
	Servers []string `yaml:"servers,omitempty" json:"servers,omitempty" jsonschema:"description=Hosts running k3s server; the first initialises the cluster. Exclusive with kubeconfig."`
	Agents  []string `yaml:"agents,omitempty" json:"agents,omitempty" jsonschema:"description=Hosts joining as k3s agents."`
	// Kubeconfig, instead of servers and agents, names a cluster mcplan
	// did not install: it only builds the mesh on it.
	Kubeconfig *ClusterKubeconfig `yaml:"kubeconfig,omitempty" json:"kubeconfig,omitempty" jsonschema:"description=A cluster mcplan did not install (k3s by hand, kubeadm, a managed Kubernetes), reached by this kubeconfig instead of servers and agents: mcplan installs only the mesh on it and never touches its nodes. Needs api.meshAddress."`
	K3s        K3s                `yaml:"k3s,omitempty" json:"k3s,omitempty"`
	API        API                `yaml:"api,omitempty" json:"api,omitempty" jsonschema:"description=Addresses of this cluster's Kubernetes API."`
	EastWest   *EastWest          `yaml:"eastWest,omitempty" json:"eastWest,omitempty" jsonschema:"description=East-west gateway settings."`
	// Manifests are the user's own objects applied to this cluster once
	// its mesh is up.
	Manifests []ManifestSource `yaml:"manifests,omitempty" json:"manifests,omitempty" jsonschema:"description=Your own Kubernetes manifests applied to this cluster once its mesh is up (server-side apply; what a later run no longer reads is pruned)."`
}

// ClusterKubeconfig locates the kubeconfig of a cluster mcplan did not
// install. The file is read, never written.
type ClusterKubeconfig struct {
	Path    string `yaml:"path" json:"path" jsonschema:"description=Kubeconfig file, relative to the plan; ~ is expanded. Read only: mcplan keeps its own copy of the context's entries."`
	Context string `yaml:"context,omitempty" json:"context,omitempty" jsonschema:"description=Context of the file. Default its current-context."`
}

// ManifestSource is one place the user's manifests are read from, as
// kubectl apply -f (or -k) reads it.
type ManifestSource struct {
	Path      string `yaml:"path" json:"path" jsonschema:"description=A manifest file or a directory of them (.yaml, .yml, .json), relative to the plan; with kustomize, a kustomization directory."`
	Recursive bool   `yaml:"recursive,omitempty" json:"recursive,omitempty" jsonschema:"description=Read the directory's subdirectories too (kubectl -R). Default false."`
	Kustomize bool   `yaml:"kustomize,omitempty" json:"kustomize,omitempty" jsonschema:"description=The path is a kustomization directory, built as kubectl apply -k builds it. Default false."`
}

// K3s are the k3s install settings of a cluster.
type K3s struct {
	Version   string   `yaml:"version,omitempty" json:"version,omitempty" jsonschema:"description=k3s version such as v1.31.4+k3s1. Exclusive with channel."`
	Channel   string   `yaml:"channel,omitempty" json:"channel,omitempty" jsonschema:"description=k3s release channel (stable, latest, v1.31...). Default stable when no version is set."`
	Mirror    string   `yaml:"mirror,omitempty" json:"mirror,omitempty" jsonschema:"enum=,enum=cn,description=Download mirror; cn uses rancher-mirror.rancher.cn and INSTALL_K3S_MIRROR=cn."`
	Args      []string `yaml:"args,omitempty" json:"args,omitempty" jsonschema:"description=Extra k3s server arguments."`
	AgentArgs []string `yaml:"agentArgs,omitempty" json:"agentArgs,omitempty" jsonschema:"description=Extra k3s agent arguments."`
	Airgap    *Airgap  `yaml:"airgap,omitempty" json:"airgap,omitempty" jsonschema:"description=Install from local files instead of downloading."`
	Upgrade   *Upgrade `yaml:"upgrade,omitempty" json:"upgrade,omitempty" jsonschema:"description=How a change of version, channel or airgap binary rolls over the cluster's nodes."`
	Hooks     *Hooks   `yaml:"hooks,omitempty" json:"hooks,omitempty" jsonschema:"description=Shell commands run on each node over SSH around its upgrade."`
}

// Upgrade says how a cluster's k3s upgrade rolls: servers one at a time
// after an etcd snapshot, then agents in batches.
type Upgrade struct {
	MaxUnavailable string `yaml:"maxUnavailable,omitempty" json:"maxUnavailable,omitempty" jsonschema:"description=Agents upgraded at once: a count (2) or a percentage of the agents (25%). Default 1."`
	Drain          *bool  `yaml:"drain,omitempty" json:"drain,omitempty" jsonschema:"description=Cordon and drain each node (eviction API, PodDisruptionBudgets honoured) before its upgrade. Default true."`
}

// Hooks are commands run on a node, as root through its shell, around its
// upgrade; a non-zero exit fails the node's step.
type Hooks struct {
	BeforeUpgrade []string `yaml:"beforeUpgrade,omitempty" json:"beforeUpgrade,omitempty" jsonschema:"description=Run on each node before its upgrade (after the drain)."`
	AfterUpgrade  []string `yaml:"afterUpgrade,omitempty" json:"afterUpgrade,omitempty" jsonschema:"description=Run on each node once it is Ready at the new version (before the uncordon)."`
}

// Airgap names the local files uploaded for an offline k3s install.
type Airgap struct {
	Binary        string `yaml:"binary" json:"binary" jsonschema:"description=Local k3s binary."`
	Images        string `yaml:"images,omitempty" json:"images,omitempty" jsonschema:"description=Local images tarball (k3s-airgap-images-*.tar[.zst|.gz])."`
	InstallScript string `yaml:"installScript" json:"installScript" jsonschema:"description=Local copy of the k3s install script."`
	// Pinned sums: each file is checked against its sum before anything is
	// uploaded or run.
	BinarySHA256        string `yaml:"binarySHA256,omitempty" json:"binarySHA256,omitempty" jsonschema:"description=sha256 (64 hex digits) the binary must have; checked before anything is uploaded."`
	ImagesSHA256        string `yaml:"imagesSHA256,omitempty" json:"imagesSHA256,omitempty" jsonschema:"description=sha256 the images tarball must have."`
	InstallScriptSHA256 string `yaml:"installScriptSHA256,omitempty" json:"installScriptSHA256,omitempty" jsonschema:"description=sha256 the install script must have."`
}

// API are the addresses of a cluster's Kubernetes API server.
type API struct {
	Port int `yaml:"port,omitempty" json:"port,omitempty" jsonschema:"minimum=1,maximum=65535,description=API port. Default 6443."`
	// OperatorAddress is where mcplan (and the merged kubeconfig) reaches the API.
	OperatorAddress string `yaml:"operatorAddress,omitempty" json:"operatorAddress,omitempty" jsonschema:"description=Address mcplan and the merged kubeconfig use. Default: first server's privateIP."`
	// MeshAddress is where other clusters' istiod reach the API (remote secrets).
	MeshAddress string `yaml:"meshAddress,omitempty" json:"meshAddress,omitempty" jsonschema:"description=Address other clusters reach this API at (remote secrets). Never 127.0.0.1. Default: first server's privateIP."`
}

// EastWest overrides how the east-west gateway is reached.
type EastWest struct {
	// Address, when set, is given to the gateway Service as an external IP and
	// used by other clusters instead of waiting for a LoadBalancer address.
	Address string `yaml:"address,omitempty" json:"address,omitempty" jsonschema:"description=Address other networks reach this cluster's east-west gateway at; set when no LoadBalancer address comes."`
}

// Mesh is one Istio mesh over several clusters.
type Mesh struct {
	Name      string   `yaml:"name" json:"name" jsonschema:"description=Mesh name; Istio's meshID."`
	Model     string   `yaml:"model,omitempty" json:"model,omitempty" jsonschema:"enum=multi-primary,enum=primary-remote,description=Control plane model. Default multi-primary."`
	Clusters  []string `yaml:"clusters" json:"clusters" jsonschema:"minItems=1,description=Clusters of this mesh."`
	Primaries []string `yaml:"primaries,omitempty" json:"primaries,omitempty" jsonschema:"description=primary-remote only: clusters running istiod, one or more per network; the others are remotes of the primary on their network."`
	Istio     Istio    `yaml:"istio,omitempty" json:"istio,omitempty"`
	CA        CA       `yaml:"ca,omitempty" json:"ca,omitempty"`
	// RemoteSecrets configures the remote secrets' reader tokens.
	RemoteSecrets *RemoteSecrets `yaml:"remoteSecrets,omitempty" json:"remoteSecrets,omitempty"`
	Verify        Verify         `yaml:"verify,omitempty" json:"verify,omitempty"`
	// Manifests are the user's own objects applied to each cluster of
	// the mesh once the mesh is up.
	Manifests []ManifestSource `yaml:"manifests,omitempty" json:"manifests,omitempty" jsonschema:"description=Your own Kubernetes manifests applied to each cluster of the mesh once the mesh is up, before the cluster's own manifests."`
}

// Istio are the Istio install settings of a mesh.
type Istio struct {
	Hub        string         `yaml:"hub,omitempty" json:"hub,omitempty" jsonschema:"description=Image registry. Default: the public release registry."`
	Tag        string         `yaml:"tag,omitempty" json:"tag,omitempty" jsonschema:"description=Image tag. Default: the release matching mcplan's embedded charts."`
	Revision   string         `yaml:"revision,omitempty" json:"revision,omitempty" jsonschema:"description=Istio revision. Changing it (or setting one) canaries the mesh to the new revision: installed beside the old, gated on istiod's xDS, tags moved, gateways moved, the old removed."`
	Tags       []string       `yaml:"tags,omitempty" json:"tags,omitempty" jsonschema:"description=Revision tags pointed at the revision (as istioctl tag set makes them). Default [default]; only with a revision."`
	Upgrade    *IstioUpgrade  `yaml:"upgrade,omitempty" json:"upgrade,omitempty" jsonschema:"description=How a canary to a new revision proceeds."`
	MeshConfig map[string]any `yaml:"meshConfig,omitempty" json:"meshConfig,omitempty" jsonschema:"description=IstioOperator spec.meshConfig."`
	Values     map[string]any `yaml:"values,omitempty" json:"values,omitempty" jsonschema:"description=IstioOperator spec.values, merged under mcplan's own."`
}

// IstioUpgrade says how a canary to a new revision proceeds.
type IstioUpgrade struct {
	RestartWorkloads bool `yaml:"restartWorkloads,omitempty" json:"restartWorkloads,omitempty" jsonschema:"description=Once the tags moved, restart the Deployments of the namespaces they inject (kubectl rollout restart) and wait for them. Default false."`
	KeepPrevious     bool `yaml:"keepPrevious,omitempty" json:"keepPrevious,omitempty" jsonschema:"description=Keep the previous revision's control plane installed after the canary. Default false: it is removed."`
}

// RemoteSecrets configures the reader tokens of a mesh's remote secrets.
type RemoteSecrets struct {
	RotateAfter string `yaml:"rotateAfter,omitempty" json:"rotateAfter,omitempty" jsonschema:"description=Age after which apply gives a reader a new token: a new token Secret, the remote secret rewritten, the reading istiod seen using it and synced, then the old token deleted (revoked). Days (30d) or a Go duration. Default: never."`
}

// CA configures the mesh's certificate authority: a root per mesh and an
// intermediate per cluster, as Istio's tools/certs make them.
type CA struct {
	RootValidityDays         int    `yaml:"rootValidityDays,omitempty" json:"rootValidityDays,omitempty" jsonschema:"minimum=1,description=Root certificate validity. Default 3650."`
	IntermediateValidityDays int    `yaml:"intermediateValidityDays,omitempty" json:"intermediateValidityDays,omitempty" jsonschema:"minimum=1,description=Intermediate certificate validity. Default 730."`
	KeySize                  int    `yaml:"keySize,omitempty" json:"keySize,omitempty" jsonschema:"enum=2048,enum=3072,enum=4096,description=RSA key size. Default 4096."`
	RootCert                 string `yaml:"rootCert,omitempty" json:"rootCert,omitempty" jsonschema:"description=Your own root certificate (PEM file); needs rootKey."`
	RootKey                  string `yaml:"rootKey,omitempty" json:"rootKey,omitempty" jsonschema:"description=Your own root private key (PEM file); needs rootCert."`
	RenewBefore              string `yaml:"renewBefore,omitempty" json:"renewBefore,omitempty" jsonschema:"description=How long before its expiry a certificate counts as due: plan and verify warn and apply re-issues an intermediate. Days (90d) or a Go duration. Default 90d."`
}

// Verify configures the end-to-end check of a mesh.
type Verify struct {
	Enabled  *bool  `yaml:"enabled,omitempty" json:"enabled,omitempty" jsonschema:"description=Run the verification. Default true."`
	Sample   string `yaml:"sample,omitempty" json:"sample,omitempty" jsonschema:"enum=helloworld,description=Sample application. Default helloworld."`
	Requests int    `yaml:"requests,omitempty" json:"requests,omitempty" jsonschema:"minimum=1,description=Requests sent from each cluster. Default 20."`
	Timeout  string `yaml:"timeout,omitempty" json:"timeout,omitempty" jsonschema:"description=How long to wait for the sample as a Go duration. Default 5m."`
}

// On is the verification's enabled setting: true unless set to false.
func (v Verify) On() bool { return v.Enabled == nil || *v.Enabled }

// Kubeconfig says where the merged kubeconfig goes and how entries are named.
type Kubeconfig struct {
	Path    string `yaml:"path,omitempty" json:"path,omitempty" jsonschema:"description=Merged kubeconfig file, relative to the plan. Default ./kubeconfig."`
	Cluster string `yaml:"cluster,omitempty" json:"cluster,omitempty" jsonschema:"description=Cluster entry name pattern; {cluster} is replaced. Default {cluster}."`
	User    string `yaml:"user,omitempty" json:"user,omitempty" jsonschema:"description=User entry name pattern. Default user-{cluster}."`
	Context string `yaml:"context,omitempty" json:"context,omitempty" jsonschema:"description=Context name pattern. Default context-{cluster}."`
}

// State says where mcplan keeps state.
type State struct {
	Dir string `yaml:"dir,omitempty" json:"dir,omitempty" jsonschema:"description=State directory, relative to the plan. Default .mcplan. With backend kubernetes it is a cache, rebuilt from the backend."`
	// Backend is where the state is kept: BackendLocal or BackendKubernetes.
	Backend    string             `yaml:"backend,omitempty" json:"backend,omitempty" jsonschema:"enum=local,enum=kubernetes,description=Where the state is kept: local (the state directory) or kubernetes (Secrets and a Lease in a cluster: a team or CI can share it). Default local."`
	Kubernetes *KubernetesBackend `yaml:"kubernetes,omitempty" json:"kubernetes,omitempty" jsonschema:"description=The cluster and Secrets of the kubernetes backend (also read by mcplan state migrate)."`
	// LockTimeout is how long a kubernetes backend's lock may go
	// unrenewed before another run takes it over.
	LockTimeout string `yaml:"lockTimeout,omitempty" json:"lockTimeout,omitempty" jsonschema:"description=kubernetes backend: how long the lock may go unrenewed (its holder killed) before another run takes it over. A Go duration. Default 1m."`
	// Encryption seals the state at rest.
	Encryption *StateEncryption `yaml:"encryption,omitempty" json:"encryption,omitempty" jsonschema:"description=Seal the state at rest (local files and backend Secrets alike) with a key derived from a passphrase."`
}

// StateEncryption seals the state with a passphrase.
type StateEncryption struct {
	PassphraseEnv string `yaml:"passphraseEnv" json:"passphraseEnv" jsonschema:"description=Environment variable holding the passphrase (Argon2id, then AES-256-GCM). The plan never holds the passphrase itself."`
}

// State backends.
const (
	BackendLocal      = "local"
	BackendKubernetes = "kubernetes"
)

// KubernetesBackend locates the state in a cluster.
type KubernetesBackend struct {
	Kubeconfig string `yaml:"kubeconfig,omitempty" json:"kubeconfig,omitempty" jsonschema:"description=Kubeconfig file, relative to the plan. Default: $KUBECONFIG, else ~/.kube/config."`
	Context    string `yaml:"context,omitempty" json:"context,omitempty" jsonschema:"description=Context of the kubeconfig. Default its current context."`
	Namespace  string `yaml:"namespace" json:"namespace" jsonschema:"description=Namespace of the state's Secrets and Lease (it must exist; give mcplan's identity the Role of mcplan state rbac in it)."`
	Name       string `yaml:"name,omitempty" json:"name,omitempty" jsonschema:"description=Name of the state's index Secret; its chunks and Lease are named after it. Default mcplan-state-<metadata.name>."`
}
