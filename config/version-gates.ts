// What kubeadm does differently per supported version, in one table: the identities (O=) of the
// certificates and kubeconfigs it writes. Later issues (init's RBAC objects, upgrade) read the same
// rows, so a version difference is decided here once.
import { InternalError } from "../workflow/errors.js";
import { type KubernetesVersion, parseSupportedVersion, type SupportedMinor } from "./versions.js";

const MASTERS = "system:masters";
const CLUSTER_ADMINS = "kubeadm:cluster-admins";

interface GateRow {
  /** O of admin.conf's client certificate. */
  adminOrganization: string;
  /** Whether init writes super-admin.conf (CN=kubernetes-super-admin, O=system:masters). */
  superAdminConf: boolean;
  /** O of apiserver-kubelet-client; `fromPatch` replaces it from that patch release of the minor on. */
  apiserverKubeletClient: { organizations: string[]; fromPatch?: { patch: number; organizations: string[] } };
  /** O of etcd/healthcheck-client and apiserver-etcd-client. */
  etcdClientOrganizations: string[];
  /**
   * Default of kubeadm's ControlPlaneKubeletLocalMode feature gate (a control plane's kubelet.conf
   * dials its own API server); absent where the minor has no such gate.
   */
  controlPlaneKubeletLocalMode?: boolean;
  /** What the minor's static pod manifests (etcd, kube-apiserver, -controller-manager, -scheduler) differ in. */
  staticPods: StaticPodGates;
  /** The kubelet's files and the control-plane node's label/taint (templates/kubelet-config.ts). */
  kubelet: KubeletGateRow;
  /** What init's upload-config writes into the kubeadm-config ConfigMap (api/objects.ts). */
  kubeadmConfig: KubeadmConfigGates;
  /** The kube-proxy and CoreDNS objects of init's addon phase (api/addons.ts). */
  addons: AddonGates;
}

/**
 * The kubeadm-config ConfigMap that init's upload-config/kubeadm phase writes
 * (phases/uploadconfig/uploadconfig.go; the ClusterConfiguration type of the API version,
 * apis/kubeadm/v1beta2|v1beta3|v1beta4/types.go; kubeadm-spec.md §0 and §10).
 */
export interface KubeadmConfigGates {
  /** apiVersion of the uploaded ClusterConfiguration (v1beta3 arrived in v1.22, v1beta4 in v1.31). */
  apiVersion: "kubeadm.k8s.io/v1beta2" | "kubeadm.k8s.io/v1beta3" | "kubeadm.k8s.io/v1beta4";
  /**
   * The ConfigMap also holds key ClusterStatus (apiEndpoints per control-plane node): v1.21's
   * uploadconfig.go writes it; gone with v1beta3 in v1.22 (kubeadm-spec.md §0).
   */
  clusterStatus: boolean;
  /** `extraArgs` as a map (v1beta2, v1beta3) or a list of `{name, value}` (v1beta4). */
  extraArgs: "map" | "list";
  /**
   * v1beta4-only fields: `extraEnvs`, `proxy`, `encryptionAlgorithm`, `certificateValidityPeriod`,
   * `caCertificateValidityPeriod`, `dns.disabled`/`proxy.disabled`.
   */
  v1beta4Fields: boolean;
  /** `apiServer.timeoutForControlPlane: 4m0s` (v1beta2/v1beta3; moved to InitConfiguration.timeouts in v1beta4). */
  timeoutForControlPlane: boolean;
  /** `dns.type: CoreDNS` (v1beta2 only; the field is gone in v1beta3). */
  dnsType: boolean;
  /**
   * `apiServer.extraArgs.authorization-mode: Node,RBAC` written by kubeadm's defaulting into the
   * uploaded config: seen in kubeadm-config ConfigMaps of v1.15 (v1beta2) and v1.28 (v1beta3).
   * Unverified for v1.30 (assumed still there) and v1.34 (assumed gone with v1beta4).
   */
  authorizationModeArg: boolean;
}

/**
 * The differences between the static pod manifests kubeadm of each minor writes
 * (phases/controlplane/manifests.go + volumes.go, phases/etcd/local.go, util/staticpod/utils.go).
 * Read through the code index: a v1.20/v1.21 manifests.go (map-based flags, --insecure-port,
 * --port=0, IPv6DualStack pass-through), a ≥v1.30 manifests.go ([]Arg flags, scheduler /healthz),
 * the ≥v1.31 volumes.go (/etc/pki/ca-trust), local.go copies from before v1.25, v1.25–v1.30 and
 * after v1.34, utils.go copies from v1.22–v1.26 and ≥v1.27. What was not read for the exact minor
 * is pinned by the kubernetes/kubernetes PR that changed it, named at each field.
 */
export interface StaticPodGates {
  /** kube-apiserver `--insecure-port=0`: v1.21 only (the flag is gone from kubeadm's defaults in v1.22). */
  apiServerInsecurePort: boolean;
  /** `--port=0` on kube-controller-manager and kube-scheduler (v1.21; gone by v1.22/v1.23). */
  componentPortZero: boolean;
  /**
   * kubeadm feature gates kubeadm passes on to kube-apiserver, -controller-manager and -scheduler as
   * `--feature-gates=Name=bool` when set in the config: v1.20/v1.21 did so for IPv6DualStack only.
   * The same gates go into kube-proxy's KubeProxyConfiguration featureGates (componentconfigs/kubeproxy.go
   * Default). Every other kubeadm gate is kubeadm's own and never reaches a component.
   */
  componentFeatureGates: string[];
  /**
   * kube-scheduler probes: `healthz` = liveness + startup on /healthz; `livez-readyz` = liveness and
   * startup on /livez, readiness on /readyz (kubernetes#126945, v1.32).
   */
  schedulerProbes: "healthz" | "livez-readyz";
  /**
   * etcd probes on its metrics port: `health` = liveness + startup on /health (≤v1.24);
   * `health-serializable` = liveness /health?exclude=NOSPACE&serializable=true, startup
   * /health?serializable=false (kubernetes#110072, #110744, v1.25–v1.30); `livez-readyz` =
   * liveness /livez, readiness and startup /readyz (kubernetes#124465, v1.31).
   */
  etcdProbes: "health" | "health-serializable" | "livez-readyz";
  /**
   * etcd's initial corruption check and watch progress notifications: `none` (v1.21);
   * `experimental` = --experimental-initial-corrupt-check=true and
   * --experimental-watch-progress-notify-interval=5s (kubernetes#111383 v1.25, kubeadm#2676);
   * `by-etcd-version` = those for an etcd image tag below 3.6.0, else --feature-gates=InitialCorruptCheck=true
   * and --watch-progress-notify-interval=5s (kubernetes#132838, v1.34: local.go compares the tag
   * with version.ParseSemantic(...).AtLeast(3.6.0)).
   */
  etcdProgressFlags: "none" | "experimental" | "by-etcd-version";
  /** Pod `securityContext.seccompProfile.type: RuntimeDefault` (kubernetes#100234, v1.22). */
  seccompRuntimeDefault: boolean;
  /** Pod `priority: 2000001000` next to priorityClassName system-node-critical (kubernetes#114338, v1.27). */
  priority: boolean;
  /**
   * Host CA directories kubeadm mounts into kube-apiserver and -controller-manager when they exist on
   * the node, besides /etc/ssl/certs (volume name: the path with "/" → "-", leading one dropped).
   * /etc/pki became /etc/pki/ca-trust + /etc/pki/tls/certs in v1.31 (kubernetes#124361).
   */
  caCertificateDirs: string[];
}

const CA_DIRS_BEFORE_1_31 = [
  "/etc/pki",
  "/usr/share/ca-certificates",
  "/usr/local/share/ca-certificates",
  "/etc/ca-certificates",
];
const CA_DIRS_SINCE_1_31 = [
  "/etc/pki/ca-trust",
  "/etc/pki/tls/certs",
  "/etc/ca-certificates",
  "/usr/share/ca-certificates",
  "/usr/local/share/ca-certificates",
];

// Kubelet: node-role names (constants.go: LabelNodeRoleOldControlPlane, LabelNodeRoleControlPlane,
// LabelExcludeFromExternalLB) and the duration fields of KubeletConfiguration v1beta1 that kubeadm's
// marshalling always writes (metav1.Duration is a struct, so `omitempty` never drops it): "0s".
const ROLE_MASTER = "node-role.kubernetes.io/master";
const ROLE_CONTROL_PLANE = "node-role.kubernetes.io/control-plane";
const EXCLUDE_FROM_LB = "node.kubernetes.io/exclude-from-external-load-balancers";
const KUBELET_ZERO_DURATIONS_121 = [
  "cpuManagerReconcilePeriod",
  "evictionPressureTransitionPeriod",
  "fileCheckFrequency",
  "httpCheckFrequency",
  "imageMinimumGCAge",
  "nodeStatusReportFrequency",
  "nodeStatusUpdateFrequency",
  "runtimeRequestTimeout",
  "shutdownGracePeriod",
  "shutdownGracePeriodCriticalPods",
  "streamingConnectionIdleTimeout",
  "syncFrequency",
  "volumeStatsAggPeriod",
];
// v1.29 added imageMaximumGCAge (a Duration); v1.27 containerRuntimeEndpoint (a string without
// omitempty); component-base logging of v1.30 marshals flushFrequency, verbosity and the json/text
// infoBufferSize (text options are new in v1.30); memorySwap is a struct since v1.22.
const KUBELET_ZERO_130 = {
  ...Object.fromEntries([...KUBELET_ZERO_DURATIONS_121, "imageMaximumGCAge"].map((name) => [name, "0s"])),
  containerRuntimeEndpoint: "",
  logging: {
    flushFrequency: 0,
    options: { json: { infoBufferSize: "0" }, text: { infoBufferSize: "0" } },
    verbosity: 0,
  },
  memorySwap: {},
};

/**
 * What kubeadm's addon phase creates differently per minor (api/addons.ts). Sources, kubernetes/kubernetes
 * read through the code index: cmd/kubeadm/app/phases/addons/proxy/proxy.go (a pre-v1.25 copy: ServiceAccount
 * first; a v1.25+ copy after #109995 `--print-manifest`: ConfigMap, DaemonSet, then ServiceAccount and RBAC),
 * dns/dns.go and dns/manifests.go (current copy; earlier states pinned by the PR named at each field and
 * by a CoreDNS Deployment kubeadm v1.21.0 created, dumped with kubectl), componentconfigs/kubeproxy.go, and
 * k8s.io/kube-proxy/config/v1alpha1/types.go (a v1.20/v1.21 copy and the current one).
 */
export interface AddonGates {
  /** Init's order of the kube-proxy objects: the ServiceAccount first (before v1.25) or after the DaemonSet. */
  kubeProxyOrder: "service-account-first" | "config-map-first";
  /**
   * KubeProxyConfiguration v1alpha1 as kubeadm's marshalling writes it before kubeadm's defaults: every
   * field without omitempty, at its zero value (pointers null, durations "0s").
   */
  kubeProxyConfigZeroValues: Record<string, unknown>;
  coreDNS: CoreDNSGates;
}

export interface CoreDNSGates {
  /** ClusterRole system:coredns may also `get` nodes (removed by kubernetes#117521, v1.28). */
  clusterRoleNodesGet: boolean;
  /**
   * ClusterRole system:coredns may list/watch EndpointSlices (CoreDNS 1.8.1+ reads them; kubeadm v1.21
   * ships CoreDNS 1.8.0 without the rule: aws/eks-distro#545 shows v1.21 with 1.8.3 failing on it).
   */
  clusterRoleEndpointSlices: boolean;
  /** Preferred pod anti-affinity on kubernetes.io/hostname (kubernetes#110593, v1.25). */
  podAntiAffinity: boolean;
  /** Taint keys the Deployment tolerates with effect NoSchedule, besides CriticalAddonsOnly. */
  controlPlaneTolerations: string[];
  /** The capability dropped: `all` until kubernetes#121384 (v1.29) wrote `ALL`. */
  dropCapability: "all" | "ALL";
  /** Probes on named container ports liveness-probe (8080) and readiness-probe (8181) (kubernetes#131587, v1.34). */
  namedProbePorts: boolean;
  /** Corefile `cache 30 { disable success|denial <domain> }` (kubernetes#128359, merged Nov 2024). */
  cacheDisablesClusterDomain: boolean;
}

// KubeProxyConfiguration v1alpha1 zero values. v1.21: the v1.20/v1.21 types.go (udpIdleTimeout,
// detectLocalMode, three winkernel fields; a v1.20 cluster's kube-proxy ConfigMap has exactly these).
// v1.30 and v1.34: logging (kubernetes#117800, v1.28), detectLocal, iptables.localhostNodePorts,
// nftables and the conntrack UDP/liberal fields (v1.29), windowsRunAsService omitted when false;
// `kubeadm config print init-defaults` of v1.32 prints exactly these (no v1alpha1 field change up to
// v1.34 was found; snatNodeInternalIP is a later proposal).
const PROXY_CLIENT_CONNECTION = { acceptContentTypes: "", burst: 0, contentType: "", kubeconfig: "", qps: 0 };
const PROXY_IPVS = {
  excludeCIDRs: null,
  minSyncPeriod: "0s",
  scheduler: "",
  strictARP: false,
  syncPeriod: "0s",
  tcpFinTimeout: "0s",
  tcpTimeout: "0s",
  udpTimeout: "0s",
};
const PROXY_COMMON = {
  bindAddress: "",
  bindAddressHardFail: false,
  clientConnection: PROXY_CLIENT_CONNECTION,
  clusterCIDR: "",
  configSyncPeriod: "0s",
  detectLocalMode: "",
  enableProfiling: false,
  healthzBindAddress: "",
  hostnameOverride: "",
  ipvs: PROXY_IPVS,
  metricsBindAddress: "",
  mode: "",
  nodePortAddresses: null,
  oomScoreAdj: null,
  portRange: "",
  showHiddenMetricsForVersion: "",
};
const PROXY_ZERO_121 = {
  ...PROXY_COMMON,
  conntrack: { maxPerCore: null, min: null, tcpCloseWaitTimeout: null, tcpEstablishedTimeout: null },
  iptables: { masqueradeAll: false, masqueradeBit: null, minSyncPeriod: "0s", syncPeriod: "0s" },
  udpIdleTimeout: "0s",
  winkernel: { enableDSR: false, networkName: "", sourceVip: "" },
};
const PROXY_ZERO_130 = {
  ...PROXY_COMMON,
  conntrack: {
    maxPerCore: null,
    min: null,
    tcpBeLiberal: false,
    tcpCloseWaitTimeout: null,
    tcpEstablishedTimeout: null,
    udpStreamTimeout: "0s",
    udpTimeout: "0s",
  },
  detectLocal: { bridgeInterface: "", interfaceNamePrefix: "" },
  iptables: {
    localhostNodePorts: null,
    masqueradeAll: false,
    masqueradeBit: null,
    minSyncPeriod: "0s",
    syncPeriod: "0s",
  },
  logging: KUBELET_ZERO_130.logging,
  nftables: { masqueradeAll: false, masqueradeBit: null, minSyncPeriod: "0s", syncPeriod: "0s" },
  winkernel: {
    enableDSR: false,
    forwardHealthCheckVip: false,
    networkName: "",
    rootHnsEndpointName: "",
    sourceVip: "",
  },
};

const ROWS: Record<SupportedMinor, GateRow> = {
  // v1.21: phases/certs/certlist.go (every client cert O=MastersGroup) and
  // phases/kubeconfig/kubeconfig.go (admin.conf O=SystemPrivilegedGroup, no super-admin.conf).
  "1.21": {
    adminOrganization: MASTERS,
    superAdminConf: false,
    apiserverKubeletClient: { organizations: [MASTERS] },
    etcdClientOrganizations: [MASTERS],
    // v1.20/v1.21 manifests.go: --insecure-port=0, --port=0 on controller-manager and scheduler,
    // IPv6DualStack passed on as --feature-gates; utils.go before kubernetes#100234 and #114338: no
    // seccompProfile, no priority; local.go before kubernetes#110072: probes on /health, no
    // corruption-check or progress flags (etcd 3.4.13).
    staticPods: {
      apiServerInsecurePort: true,
      componentPortZero: true,
      componentFeatureGates: ["IPv6DualStack"],
      schedulerProbes: "healthz",
      etcdProbes: "health",
      etcdProgressFlags: "none",
      seccompRuntimeDefault: false,
      priority: false,
      caCertificateDirs: CA_DIRS_BEFORE_1_31,
    },
    // v1.21 (see KubeletGateRow for sources): versioned ConfigMap; master label + taint.
    kubelet: {
      configMap: "kubelet-config-1.21",
      configMapRole: "kubeadm:kubelet-config-1.21",
      controlPlaneLabels: [ROLE_MASTER, ROLE_CONTROL_PLANE, EXCLUDE_FROM_LB],
      controlPlaneTaints: [{ key: ROLE_MASTER, effect: "NoSchedule" }],
      containerRuntimeRemoteFlag: true,
      podInfraContainerImageFlag: true,
      configZeroValues: {
        ...Object.fromEntries(KUBELET_ZERO_DURATIONS_121.map((name) => [name, "0s"])),
        logging: {},
      },
    },
    // v1.21: v1beta2 with ClusterStatus (uploadconfig.go of v1.21 writes both keys).
    kubeadmConfig: {
      apiVersion: "kubeadm.k8s.io/v1beta2",
      clusterStatus: true,
      extraArgs: "map",
      v1beta4Fields: false,
      timeoutForControlPlane: true,
      dnsType: true,
      authorizationModeArg: true,
    },
    // v1.21: SA first; CoreDNS 1.8.0 with `get nodes`, no EndpointSlices, no anti-affinity, master
    // and control-plane tolerations (the v1.21.0 Deployment dump), `drop: all`, numbered probe ports.
    addons: {
      kubeProxyOrder: "service-account-first",
      kubeProxyConfigZeroValues: PROXY_ZERO_121,
      coreDNS: {
        clusterRoleNodesGet: true,
        clusterRoleEndpointSlices: false,
        podAntiAffinity: false,
        controlPlaneTolerations: [ROLE_MASTER, ROLE_CONTROL_PLANE],
        dropCapability: "all",
        namedProbePorts: false,
        cacheDisablesClusterDomain: false,
      },
    },
  },
  // v1.30: kubeconfig.go since v1.29 (admin.conf O=ClusterAdminsGroupAndClusterRoleBinding +
  // super-admin.conf); certlist.go since v1.29: apiserver-kubelet-client
  // O=ClusterAdminsGroupAndClusterRoleBinding (kubernetes/kubernetes#121837), no O on
  // healthcheck-client (#119859) and apiserver-etcd-client (#120521).
  "1.30": {
    adminOrganization: CLUSTER_ADMINS,
    superAdminConf: true,
    apiserverKubeletClient: { organizations: [CLUSTER_ADMINS] },
    etcdClientOrganizations: [],
    // v1.30: the []Arg manifests.go (scheduler still on /healthz, #126945 is v1.32), local.go
    // between #111383 and #124465 (experimental flags always, /health?… probes), /etc/pki still
    // mounted whole (#124361 is v1.31).
    staticPods: {
      apiServerInsecurePort: false,
      componentPortZero: false,
      componentFeatureGates: [],
      schedulerProbes: "healthz",
      etcdProbes: "health-serializable",
      etcdProgressFlags: "experimental",
      seccompRuntimeDefault: true,
      priority: true,
      caCertificateDirs: CA_DIRS_BEFORE_1_31,
    },
    // v1.30: unversioned ConfigMap (UnversionedKubeletConfigMap, on by default since v1.23), the
    // control-plane label and taint only (master ones gone by v1.25); CRI socket still a flag;
    // --container-runtime gone since v1.27.
    kubelet: {
      configMap: "kubelet-config",
      configMapRole: "kubeadm:kubelet-config",
      controlPlaneLabels: [ROLE_CONTROL_PLANE, EXCLUDE_FROM_LB],
      controlPlaneTaints: [{ key: ROLE_CONTROL_PLANE, effect: "NoSchedule" }],
      containerRuntimeRemoteFlag: false,
      podInfraContainerImageFlag: true,
      configZeroValues: KUBELET_ZERO_130,
    },
    // v1.30: v1beta3 (the default until v1beta4 in v1.31), no ClusterStatus.
    kubeadmConfig: {
      apiVersion: "kubeadm.k8s.io/v1beta3",
      clusterStatus: false,
      extraArgs: "map",
      v1beta4Fields: false,
      timeoutForControlPlane: true,
      dnsType: false,
      authorizationModeArg: true,
    },
    // v1.30: after #109995, #110593, #117521 and #121384; before #128359 and #131587.
    addons: {
      kubeProxyOrder: "config-map-first",
      kubeProxyConfigZeroValues: PROXY_ZERO_130,
      coreDNS: {
        clusterRoleNodesGet: false,
        clusterRoleEndpointSlices: true,
        podAntiAffinity: true,
        controlPlaneTolerations: [ROLE_CONTROL_PLANE],
        dropCapability: "ALL",
        namedProbePorts: false,
        cacheDisablesClusterDomain: false,
      },
    },
  },
  // v1.34: as v1.30, except that kubernetes/kubernetes#138957, cherry-picked into v1.34.8 (and
  // v1.33.12, v1.35.5, v1.36.1), drops O from apiserver-kubelet-client: the user
  // kube-apiserver-kubelet-client is bound to ClusterRole system:kubelet-api-admin by the
  // ClusterRoleBinding kubeadm:apiserver-kubelet-client instead (kubernetes/kubeadm#3307).
  "1.34": {
    adminOrganization: CLUSTER_ADMINS,
    superAdminConf: true,
    apiserverKubeletClient: { organizations: [CLUSTER_ADMINS], fromPatch: { patch: 8, organizations: [] } },
    etcdClientOrganizations: [],
    // ControlPlaneKubeletLocalMode: alpha in v1.31 (kubernetes/kubernetes#125780), beta and on by
    // default since v1.33 (#129956), so init's kubelet.conf dials the node's own API server.
    controlPlaneKubeletLocalMode: true,
    // v1.34: scheduler on /livez + /readyz (#126945, v1.32), etcd on /livez + /readyz (#124465,
    // v1.31), etcd flags by the etcd tag (#132838; the 3.6.5-0 default takes the ≥3.6 forms),
    // /etc/pki/ca-trust and /etc/pki/tls/certs instead of /etc/pki (#124361, v1.31).
    staticPods: {
      apiServerInsecurePort: false,
      componentPortZero: false,
      componentFeatureGates: [],
      schedulerProbes: "livez-readyz",
      etcdProbes: "livez-readyz",
      etcdProgressFlags: "by-etcd-version",
      seccompRuntimeDefault: true,
      priority: true,
      caCertificateDirs: CA_DIRS_SINCE_1_31,
    },
    // v1.34: NodeLocalCRISocket is beta and on: the CRI socket moves from kubeadm-flags.env into
    // config.yaml (via /var/lib/kubelet/instance-config.yaml); crashLoopBackOff (v1.32) is a struct;
    // failCgroupV1 exists (v1.31, kubernetes#126031) and defaults to false until v1.35.
    kubelet: {
      configMap: "kubelet-config",
      configMapRole: "kubeadm:kubelet-config",
      controlPlaneLabels: [ROLE_CONTROL_PLANE, EXCLUDE_FROM_LB],
      controlPlaneTaints: [{ key: ROLE_CONTROL_PLANE, effect: "NoSchedule" }],
      nodeLocalCRISocket: true,
      containerRuntimeRemoteFlag: false,
      podInfraContainerImageFlag: true,
      failCgroupV1Default: false,
      configZeroValues: { ...KUBELET_ZERO_130, crashLoopBackOff: {} },
    },
    // v1.34: v1beta4 (v1.31+): list extraArgs, validity periods and encryptionAlgorithm, proxy.
    kubeadmConfig: {
      apiVersion: "kubeadm.k8s.io/v1beta4",
      clusterStatus: false,
      extraArgs: "list",
      v1beta4Fields: true,
      timeoutForControlPlane: false,
      dnsType: false,
      authorizationModeArg: false,
    },
    // v1.34: as v1.30, plus the Corefile cache block (#128359) and named probe ports (#131587).
    addons: {
      kubeProxyOrder: "config-map-first",
      kubeProxyConfigZeroValues: PROXY_ZERO_130,
      coreDNS: {
        clusterRoleNodesGet: false,
        clusterRoleEndpointSlices: true,
        podAntiAffinity: true,
        controlPlaneTolerations: [ROLE_CONTROL_PLANE],
        dropCapability: "ALL",
        namedProbePorts: true,
        cacheDisablesClusterDomain: true,
      },
    },
  },
};

export interface IdentityGates {
  adminOrganization: string;
  superAdminConf: boolean;
  apiserverKubeletClientOrganizations: string[];
  /** init must create ClusterRoleBinding kubeadm:apiserver-kubelet-client (when the cert has no O). */
  apiserverKubeletClientRoleBinding: boolean;
  etcdHealthcheckClientOrganizations: string[];
  apiserverEtcdClientOrganizations: string[];
  /** kubeadm's ControlPlaneKubeletLocalMode gate: its default, or undefined where it does not exist. */
  controlPlaneKubeletLocalMode: boolean | undefined;
}

/**
 * The gates of a version (`v1.30.4` or a parsed version). CertificateBackdate (5 min) applies to
 * every supported version, so it is no gate: v1.21/v1.30 back-date the CA (pkiutil
 * NewCertificateAuthority) and leaves copy the CA's NotBefore; v1.31+ back-date every cert
 * (certlist.go KubeadmCert.GetConfig). kubeforge back-dates every cert, as v1.31+ does.
 */
export function identityGates(version: string | KubernetesVersion): IdentityGates {
  const parsed = typeof version === "string" ? parseSupportedVersion(version) : version;
  // A validated cluster file always names a supported version.
  if (!parsed) throw new InternalError(`${String(version)} is not a supported Kubernetes version`);
  const row = ROWS[parsed.minorKey];
  const later = row.apiserverKubeletClient.fromPatch;
  const kubeletClient =
    later && parsed.patch >= later.patch ? later.organizations : row.apiserverKubeletClient.organizations;
  return {
    adminOrganization: row.adminOrganization,
    superAdminConf: row.superAdminConf,
    apiserverKubeletClientOrganizations: [...kubeletClient],
    apiserverKubeletClientRoleBinding: kubeletClient.length === 0,
    etcdHealthcheckClientOrganizations: [...row.etcdClientOrganizations],
    apiserverEtcdClientOrganizations: [...row.etcdClientOrganizations],
    controlPlaneKubeletLocalMode: row.controlPlaneKubeletLocalMode,
  };
}

/** The static pod manifest gates of a version (`v1.30.4` or a parsed version); copies. */
export function staticPodGates(version: string | KubernetesVersion): StaticPodGates {
  const parsed = typeof version === "string" ? parseSupportedVersion(version) : version;
  // A validated cluster file always names a supported version.
  if (!parsed) throw new InternalError(`${String(version)} is not a supported Kubernetes version`);
  const row = ROWS[parsed.minorKey].staticPods;
  return {
    ...row,
    componentFeatureGates: [...row.componentFeatureGates],
    caCertificateDirs: [...row.caCertificateDirs],
  };
}

/**
 * What kubeadm of a minor writes for the kubelet (templates/kubelet-config.ts) and on the control-plane
 * Node. Sources, kubernetes/kubernetes read through the code index (one stored copy per file, release
 * tag not always known): cmd/kubeadm/app/phases/kubelet/flags.go (v1.21-era map copy: pause image for
 * every runtime after #99476, merged 2021-02-26 for v1.21; `--container-runtime=remote` +
 * `--container-runtime-endpoint` for any non-dockershim socket; `--network-plugin=cni` ONLY for the
 * dockershim socket, so never with containerd; >=v1.32 Arg-slice copy: the endpoint flag dropped when
 * NodeLocalCRISocket is on, `--pod-infra-container-image` still written), util/arguments.go
 * (BuildArgumentListFromMap / ArgumentsToCommand: flags sorted by name), componentconfigs/kubelet.go and
 * kubelet_unix.go (the defaults; resolvConf when systemd-resolved is active), PRs #99471 (v1.21 init
 * sets cgroupDriver systemd), #114409 (v1.27 drops --container-runtime), kubeadm#3108 / #133778 (the
 * pause flag stays until v1.35). Real files kubeadm wrote (v1.21.1, v1.29, v1.30+, v1.34 in kind)
 * confirm the zero values. The ConfigMap names and v1.21's label set are from constants.go copies and
 * kubeadm-spec.md §0 (the exact v1.21 markcontrolplane label list is not read: unverified).
 */
export interface KubeletGateRow {
  /** The kubelet-config ConfigMap in kube-system (and the Role/RoleBinding that reads it). */
  configMap: string;
  configMapRole: string;
  /** Labels and taints mark-control-plane puts on a control-plane Node (labels have value ""). */
  controlPlaneLabels: string[];
  controlPlaneTaints: { key: string; effect: "NoSchedule" }[];
  /**
   * Default of kubeadm's NodeLocalCRISocket gate: on, the CRI socket goes into config.yaml instead of
   * `--container-runtime-endpoint`; absent before v1.32 (always the flag).
   */
  nodeLocalCRISocket?: boolean;
  /** `--container-runtime=remote` next to the endpoint (before v1.27). */
  containerRuntimeRemoteFlag: boolean;
  /** `--pod-infra-container-image=<pause>` (every supported minor; kubeadm stops in v1.35). */
  podInfraContainerImageFlag: boolean;
  /** The kubelet's default of failCgroupV1; absent where the field does not exist (before v1.31). */
  failCgroupV1Default?: boolean;
  /** Top-level fields kubeadm's Go marshalling writes with zero values in config.yaml. */
  configZeroValues: Record<string, unknown>;
}

/** The kubelet gates of a version (`v1.30.4` or a parsed version); a deep copy. */
export function kubeletGates(version: string | KubernetesVersion): KubeletGateRow {
  const parsed = typeof version === "string" ? parseSupportedVersion(version) : version;
  if (!parsed) throw new InternalError(`${String(version)} is not a supported Kubernetes version`);
  return structuredClone(ROWS[parsed.minorKey].kubelet);
}

/** The kubeadm-config ConfigMap gates of a version (`v1.30.4` or a parsed version); a copy. */
export function kubeadmConfigGates(version: string | KubernetesVersion): KubeadmConfigGates {
  const parsed = typeof version === "string" ? parseSupportedVersion(version) : version;
  if (!parsed) throw new InternalError(`${String(version)} is not a supported Kubernetes version`);
  return { ...ROWS[parsed.minorKey].kubeadmConfig };
}

/** The add-on gates of a version (`v1.30.4` or a parsed version); a deep copy. */
export function addonGates(version: string | KubernetesVersion): AddonGates {
  const parsed = typeof version === "string" ? parseSupportedVersion(version) : version;
  if (!parsed) throw new InternalError(`${String(version)} is not a supported Kubernetes version`);
  return structuredClone(ROWS[parsed.minorKey].addons);
}
