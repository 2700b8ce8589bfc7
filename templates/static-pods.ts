// The four static pod manifests `kubeadm init` writes on a control-plane node of a stacked-etcd
// cluster (etcd, kube-apiserver, kube-controller-manager, kube-scheduler), as pure functions of the
// validated cluster file and the node. Semantic equality with what kubeadm of the cluster's minor
// writes is the contract (golden fixtures: templates/testdata/static-pods/v<minor>/); every
// difference between minors comes from one table, config/version-gates.ts `staticPodGates`.
//
// Sources (kubernetes/kubernetes, read through the code index; which copy of each file was read is
// listed in config/version-gates.ts StaticPodGates):
//   cmd/kubeadm/app/phases/controlplane/manifests.go  GetStaticPodSpecs, getAPIServerCommand,
//     getControllerManagerCommand, getSchedulerCommand
//   cmd/kubeadm/app/phases/controlplane/volumes.go    getHostPathVolumesForTheControlPlane,
//     AddExtraHostPathMounts (an extra volume replaces a default one of the same name)
//   cmd/kubeadm/app/phases/etcd/local.go              GetEtcdPodSpec, getEtcdCommand
//   cmd/kubeadm/app/util/staticpod/utils.go           ComponentPod, Liveness/Readiness/StartupProbe,
//     Get*ProbeAddress, GetEtcdProbeEndpoint, VolumeMapToSlice (volumes sorted by name)
//   cmd/kubeadm/app/util/arguments.go                 ArgumentsToCommand (v1.21: BuildArgumentListFromMap)
//
// Not reproduced: the `*_proxy` variables of the kubeadm process (kubeforge runs elsewhere), kubeadm
// `--patches`, external etcd and external-CA mode (the schema has neither), RootlessControlPlane
// (refused), v1.21's filtering of unknown `authorization-mode` values.
import { isIPv6 } from "node:net";
import yaml from "js-yaml";
import { nodeIp } from "../certs/specs.js";
import { clusterImages } from "../config/images.js";
import type { ClusterFile, HostSpec } from "../config/schema.js";
import { type StaticPodGates, staticPodGates } from "../config/version-gates.js";
import { KUBERNETES_DIR, MANIFESTS_DIR } from "../node/paths.js";
import { UsageError } from "../workflow/errors.js";

export const STATIC_POD_COMPONENTS = [
  "etcd",
  "kube-apiserver",
  "kube-controller-manager",
  "kube-scheduler",
] as const;
export type StaticPodComponent = (typeof STATIC_POD_COMPONENTS)[number];

/**
 * The host CA directories of a Debian/Ubuntu node (the `ca-certificates` package): what kubeadm
 * mounts there besides /etc/ssl/certs. /etc/pki (RHEL family) is absent.
 */
export const DEBIAN_CA_CERTIFICATE_DIRS: readonly string[] = [
  "/etc/ca-certificates",
  "/usr/share/ca-certificates",
  "/usr/local/share/ca-certificates",
];

export interface ControlPlaneNode {
  /** Node name: etcd's member name. */
  name: string;
  /** `privateAddress`, else `address`: the API server's advertise address and etcd's URLs. */
  advertiseAddress: string;
  /**
   * The node's facts: which host directories exist, of those kubeadm mounts as extra CA locations
   * when present (StaticPodGates.caCertificateDirs). Default: DEBIAN_CA_CERTIFICATE_DIRS.
   */
  existingCaCertificateDirs?: readonly string[];
}

export interface StaticPod {
  component: StaticPodComponent;
  /** /etc/kubernetes/manifests/<component>.yaml (kubeadm writes it 0600, the directory 0700). */
  path: string;
  content: string;
}

/** The control-plane node of a host of the cluster file; its node IP must be known. */
export function controlPlaneNode(
  host: HostSpec,
  existingCaCertificateDirs?: readonly string[],
): ControlPlaneNode {
  const advertiseAddress = nodeIp(host);
  if (!advertiseAddress) {
    throw new UsageError(
      `host ${host.name}: its address ${host.address} is not an IP address; set privateAddress to the node's IP`,
    );
  }
  return {
    name: host.name,
    advertiseAddress,
    ...(existingCaCertificateDirs ? { existingCaCertificateDirs } : {}),
  };
}

const PKI_DIR = `${KUBERNETES_DIR}/pki`;
const ETCD_CLIENT_PORT = 2379;
const ETCD_PEER_PORT = 2380;
const ETCD_METRICS_PORT = 2381;
const CONTROLLER_MANAGER_PORT = 10257;
const SCHEDULER_PORT = 10259;
const CA_CERTS_DIR = "/etc/ssl/certs";
const FLEXVOLUME_DIR = "/usr/libexec/kubernetes/kubelet-plugins/volume/exec";
/** kubeadm's ControlPlaneComponentHealthCheck (v1.21: timeoutForControlPlane): 4m. */
const CONTROL_PLANE_HEALTH_CHECK_SECONDS = 240;
/** kubeadm feature gates that change the manifests in a way kubeforge does not reproduce. */
const UNSUPPORTED_GATES = ["RootlessControlPlane"];

interface Arg {
  name: string;
  value: string;
}

type Json = Record<string, unknown>;

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * kubeadm's ArgumentsToCommand: a name present in `overrides` drops every default of that name, all
 * override instances are kept (a repeated name appends), and the result is sorted by name, then value.
 */
function argumentsToCommand(base: readonly Arg[], overrides: readonly Arg[]): string[] {
  const overridden = new Set(overrides.map((arg) => arg.name));
  const args = [...overrides, ...base.filter((arg) => !overridden.has(arg.name))];
  args.sort((a, b) => (a.name === b.name ? compare(a.value, b.value) : compare(a.name, b.name)));
  return args.map((arg) => `--${arg.name}=${arg.value}`);
}

/** kubeadm's GetArgValue(args, name, -1): the last value given for the name. */
function lastArg(args: readonly Arg[], name: string): string | undefined {
  return args.findLast((arg) => arg.name === name)?.value;
}

function hostPort(host: string, port: number): string {
  return isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
}

function localhostFor(advertiseAddress: string): string {
  return isIPv6(advertiseAddress) ? "::1" : "127.0.0.1";
}

/** getProbeAddress: an unspecified bind address leaves the probe host empty (the pod IP). */
function probeAddress(address: string): string {
  return address === "0.0.0.0" || address === "::" ? "" : address;
}

type Scheme = "HTTP" | "HTTPS";

function httpProbe(
  host: string,
  path: string,
  port: number,
  scheme: Scheme,
  initialDelaySeconds: number,
  timeoutSeconds: number,
  failureThreshold: number,
  periodSeconds: number,
): Json {
  // Go's omitempty drops a zero initialDelaySeconds and an empty host.
  return {
    failureThreshold,
    httpGet: { ...(host ? { host } : {}), path, port, scheme },
    ...(initialDelaySeconds ? { initialDelaySeconds } : {}),
    periodSeconds,
    timeoutSeconds,
  };
}

const liveness = (host: string, path: string, port: number, scheme: Scheme) =>
  httpProbe(host, path, port, scheme, 10, 15, 8, 10);
const readiness = (host: string, path: string, port: number, scheme: Scheme) =>
  httpProbe(host, path, port, scheme, 0, 15, 3, 1);
const startup = (host: string, path: string, port: number, scheme: Scheme) =>
  httpProbe(host, path, port, scheme, 10, 15, Math.ceil(CONTROL_PLANE_HEALTH_CHECK_SECONDS / 10), 10);

interface Mount {
  name: string;
  hostPath: string;
  mountPath: string;
  readOnly: boolean;
  type: string;
}

/** Volumes and mounts keyed by name, as kubeadm's controlPlaneHostPathMounts: a later one replaces. */
class Mounts {
  private readonly byName = new Map<string, Mount>();

  add(name: string, hostPath: string, readOnly: boolean, type: string, mountPath = hostPath): void {
    this.byName.set(name, { name, hostPath, mountPath, readOnly, type });
  }

  private sorted(): Mount[] {
    return [...this.byName.values()].sort((a, b) => compare(a.name, b.name));
  }

  volumes(): Json[] {
    return this.sorted().map((m) => ({ hostPath: { path: m.hostPath, type: m.type }, name: m.name }));
  }

  volumeMounts(): Json[] {
    return this.sorted().map((m) => ({
      mountPath: m.mountPath,
      name: m.name,
      ...(m.readOnly ? { readOnly: true } : {}),
    }));
  }
}

type EnvVar = ClusterFile["spec"]["kubernetes"]["etcd"]["local"]["extraEnvs"][number];
/** extraArgs, extraEnvs, extraVolumes: what every control-plane component of the schema has. */
type ComponentSpec = Pick<
  ClusterFile["spec"]["kubernetes"]["apiServer"],
  "extraArgs" | "extraEnvs" | "extraVolumes"
>;

/** controllerManager and scheduler, which the schema types loosely; validated, they have the fields. */
function componentSpec(value: unknown): ComponentSpec {
  return value as ComponentSpec;
}

function addExtraVolumes(mounts: Mounts, component: ComponentSpec): void {
  for (const volume of component.extraVolumes) {
    mounts.add(volume.name, volume.hostPath, volume.readOnly, volume.pathType ?? "", volume.mountPath);
  }
}

/** MergeKubeadmEnvVars: later values win, sorted by name; no `env` at all when empty. */
function env(envs: readonly EnvVar[]): Json {
  const byName = new Map(envs.map((e) => [e.name, e.value]));
  const merged = [...byName.entries()].sort(([a], [b]) => compare(a, b));
  return merged.length ? { env: merged.map(([name, value]) => ({ name, value })) } : {};
}

function componentFeatureGates(cluster: ClusterFile, gates: StaticPodGates): Arg[] {
  const set = Object.entries(cluster.spec.kubernetes.featureGates)
    .filter(([name]) => gates.componentFeatureGates.includes(name))
    .sort(([a], [b]) => compare(a, b));
  return set.length
    ? [{ name: "feature-gates", value: set.map(([name, on]) => `${name}=${on}`).join(",") }]
    : [];
}

function caCertificateMounts(mounts: Mounts, gates: StaticPodGates, node: ControlPlaneNode): void {
  const existing = node.existingCaCertificateDirs ?? DEBIAN_CA_CERTIFICATE_DIRS;
  mounts.add("ca-certs", CA_CERTS_DIR, true, "DirectoryOrCreate");
  for (const dir of gates.caCertificateDirs) {
    if (existing.includes(dir)) mounts.add(dir.replaceAll("/", "-").slice(1), dir, true, "DirectoryOrCreate");
  }
}

function pod(
  gates: StaticPodGates,
  container: Json,
  mounts: { volumes: Json[]; volumeMounts: Json[] },
  annotations?: Record<string, string>,
): Json {
  const name = container.name as string;
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      ...(annotations ? { annotations } : {}),
      creationTimestamp: null,
      labels: { component: name, tier: "control-plane" },
      name,
      namespace: "kube-system",
    },
    spec: {
      containers: [{ ...container, volumeMounts: mounts.volumeMounts }],
      hostNetwork: true,
      ...(gates.priority ? { priority: 2000001000 } : {}),
      priorityClassName: "system-node-critical",
      ...(gates.seccompRuntimeDefault
        ? { securityContext: { seccompProfile: { type: "RuntimeDefault" } } }
        : {}),
      volumes: mounts.volumes,
    },
    status: {},
  };
}

interface Context {
  cluster: ClusterFile;
  node: ControlPlaneNode;
  gates: StaticPodGates;
  images: Map<string, string>;
}

function image(ctx: Context, component: string): string {
  const ref = ctx.images.get(component);
  if (!ref) throw new Error(`no image for ${component}`);
  return ref;
}

function apiServer(ctx: Context): Json {
  const { cluster, node, gates } = ctx;
  const k8s = cluster.spec.kubernetes;
  const { apiServer: spec } = k8s;
  const adv = node.advertiseAddress;
  const etcdServers =
    lastArg(k8s.etcd.local.extraArgs, "advertise-client-urls") ??
    `https://${hostPort(localhostFor(adv), ETCD_CLIENT_PORT)}`;
  const base: Arg[] = [
    { name: "advertise-address", value: adv },
    ...(gates.apiServerInsecurePort ? [{ name: "insecure-port", value: "0" }] : []),
    { name: "enable-admission-plugins", value: "NodeRestriction" },
    { name: "service-cluster-ip-range", value: k8s.networking.serviceSubnet },
    { name: "service-account-key-file", value: `${PKI_DIR}/sa.pub` },
    { name: "service-account-signing-key-file", value: `${PKI_DIR}/sa.key` },
    { name: "service-account-issuer", value: `https://kubernetes.default.svc.${k8s.networking.dnsDomain}` },
    { name: "client-ca-file", value: `${PKI_DIR}/ca.crt` },
    { name: "tls-cert-file", value: `${PKI_DIR}/apiserver.crt` },
    { name: "tls-private-key-file", value: `${PKI_DIR}/apiserver.key` },
    { name: "kubelet-client-certificate", value: `${PKI_DIR}/apiserver-kubelet-client.crt` },
    { name: "kubelet-client-key", value: `${PKI_DIR}/apiserver-kubelet-client.key` },
    { name: "enable-bootstrap-token-auth", value: "true" },
    { name: "secure-port", value: String(spec.bindPort) },
    { name: "allow-privileged", value: "true" },
    { name: "kubelet-preferred-address-types", value: "InternalIP,ExternalIP,Hostname" },
    { name: "requestheader-username-headers", value: "X-Remote-User" },
    { name: "requestheader-group-headers", value: "X-Remote-Group" },
    { name: "requestheader-extra-headers-prefix", value: "X-Remote-Extra-" },
    { name: "requestheader-client-ca-file", value: `${PKI_DIR}/front-proxy-ca.crt` },
    { name: "requestheader-allowed-names", value: "front-proxy-client" },
    { name: "proxy-client-cert-file", value: `${PKI_DIR}/front-proxy-client.crt` },
    { name: "proxy-client-key-file", value: `${PKI_DIR}/front-proxy-client.key` },
    { name: "etcd-servers", value: etcdServers },
    { name: "etcd-cafile", value: `${PKI_DIR}/etcd/ca.crt` },
    { name: "etcd-certfile", value: `${PKI_DIR}/apiserver-etcd-client.crt` },
    { name: "etcd-keyfile", value: `${PKI_DIR}/apiserver-etcd-client.key` },
    ...componentFeatureGates(cluster, gates),
    // Structured authorization (`authorization-config`) replaces the mode flag (≥v1.29 kubeadm).
    ...(lastArg(spec.extraArgs, "authorization-config") === undefined
      ? [{ name: "authorization-mode", value: "Node,RBAC" }]
      : []),
  ];
  const mounts = new Mounts();
  mounts.add("k8s-certs", PKI_DIR, true, "DirectoryOrCreate");
  caCertificateMounts(mounts, gates, node);
  addExtraVolumes(mounts, spec);
  const probeHost = probeAddress(adv);
  const container = {
    command: ["kube-apiserver", ...argumentsToCommand(base, spec.extraArgs)],
    ...env(spec.extraEnvs),
    image: image(ctx, "kube-apiserver"),
    imagePullPolicy: "IfNotPresent",
    livenessProbe: liveness(probeHost, "/livez", spec.bindPort, "HTTPS"),
    name: "kube-apiserver",
    readinessProbe: readiness(probeHost, "/readyz", spec.bindPort, "HTTPS"),
    resources: { requests: { cpu: "250m" } },
    startupProbe: startup(probeHost, "/livez", spec.bindPort, "HTTPS"),
  };
  return pod(
    gates,
    container,
    { volumes: mounts.volumes(), volumeMounts: mounts.volumeMounts() },
    {
      "kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint": hostPort(adv, spec.bindPort),
    },
  );
}

/** What the controller-manager and the scheduler both start with: local-only, leader-elected, one kubeconfig. */
function leaderArgs(gates: Context["gates"], kubeconfig: string): Arg[] {
  return [
    ...(gates.componentPortZero ? [{ name: "port", value: "0" }] : []),
    { name: "bind-address", value: "127.0.0.1" },
    { name: "leader-elect", value: "true" },
    { name: "kubeconfig", value: kubeconfig },
    { name: "authentication-kubeconfig", value: kubeconfig },
    { name: "authorization-kubeconfig", value: kubeconfig },
  ];
}

function controllerManager(ctx: Context): Json {
  const { cluster, node, gates } = ctx;
  const k8s = cluster.spec.kubernetes;
  const spec = componentSpec(k8s.controllerManager);
  const kubeconfig = `${KUBERNETES_DIR}/controller-manager.conf`;
  const base: Arg[] = [
    ...leaderArgs(gates, kubeconfig),
    { name: "client-ca-file", value: `${PKI_DIR}/ca.crt` },
    { name: "requestheader-client-ca-file", value: `${PKI_DIR}/front-proxy-ca.crt` },
    { name: "root-ca-file", value: `${PKI_DIR}/ca.crt` },
    { name: "service-account-private-key-file", value: `${PKI_DIR}/sa.key` },
    { name: "cluster-signing-cert-file", value: `${PKI_DIR}/ca.crt` },
    { name: "cluster-signing-key-file", value: `${PKI_DIR}/ca.key` },
    { name: "use-service-account-credentials", value: "true" },
    { name: "controllers", value: "*,bootstrapsigner,tokencleaner" },
    // podSubnet always has a value in a validated file (kubeforge's default).
    { name: "allocate-node-cidrs", value: "true" },
    { name: "cluster-cidr", value: k8s.networking.podSubnet },
    { name: "service-cluster-ip-range", value: k8s.networking.serviceSubnet },
    { name: "cluster-name", value: k8s.clusterName },
    ...componentFeatureGates(cluster, gates),
  ];
  const mounts = new Mounts();
  mounts.add("k8s-certs", PKI_DIR, true, "DirectoryOrCreate");
  mounts.add("kubeconfig", kubeconfig, true, "FileOrCreate");
  // Read-write: third-party flexvolume plugins talk over unix sockets in it.
  mounts.add(
    "flexvolume-dir",
    lastArg(spec.extraArgs, "flex-volume-plugin-dir") ?? FLEXVOLUME_DIR,
    false,
    "DirectoryOrCreate",
  );
  caCertificateMounts(mounts, gates, node);
  addExtraVolumes(mounts, spec);
  const bind = lastArg(spec.extraArgs, "bind-address");
  const probeHost = bind === undefined ? "127.0.0.1" : probeAddress(bind);
  const container = {
    command: ["kube-controller-manager", ...argumentsToCommand(base, spec.extraArgs)],
    ...env(spec.extraEnvs),
    image: image(ctx, "kube-controller-manager"),
    imagePullPolicy: "IfNotPresent",
    livenessProbe: liveness(probeHost, "/healthz", CONTROLLER_MANAGER_PORT, "HTTPS"),
    name: "kube-controller-manager",
    resources: { requests: { cpu: "200m" } },
    startupProbe: startup(probeHost, "/healthz", CONTROLLER_MANAGER_PORT, "HTTPS"),
  };
  return pod(gates, container, { volumes: mounts.volumes(), volumeMounts: mounts.volumeMounts() });
}

function scheduler(ctx: Context): Json {
  const { cluster, gates } = ctx;
  const spec = componentSpec(cluster.spec.kubernetes.scheduler);
  const kubeconfig = `${KUBERNETES_DIR}/scheduler.conf`;
  const base: Arg[] = [...leaderArgs(gates, kubeconfig), ...componentFeatureGates(cluster, gates)];
  const mounts = new Mounts();
  mounts.add("kubeconfig", kubeconfig, true, "FileOrCreate");
  addExtraVolumes(mounts, spec);
  const bind = lastArg(spec.extraArgs, "bind-address");
  const probeHost = bind === undefined ? "127.0.0.1" : probeAddress(bind);
  const livez = gates.schedulerProbes === "livez-readyz";
  const container = {
    command: ["kube-scheduler", ...argumentsToCommand(base, spec.extraArgs)],
    ...env(spec.extraEnvs),
    image: image(ctx, "kube-scheduler"),
    imagePullPolicy: "IfNotPresent",
    livenessProbe: liveness(probeHost, livez ? "/livez" : "/healthz", SCHEDULER_PORT, "HTTPS"),
    name: "kube-scheduler",
    ...(livez ? { readinessProbe: readiness(probeHost, "/readyz", SCHEDULER_PORT, "HTTPS") } : {}),
    resources: { requests: { cpu: "100m" } },
    startupProbe: startup(probeHost, livez ? "/livez" : "/healthz", SCHEDULER_PORT, "HTTPS"),
  };
  return pod(gates, container, { volumes: mounts.volumes(), volumeMounts: mounts.volumeMounts() });
}

/** version.ParseSemantic(tag).AtLeast(3.6.0), false when the tag is no semantic version. */
export function etcdAtLeast36(tag: string): boolean {
  const match = /^v?(\d+)\.(\d+)\.(\d+)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$/.exec(tag);
  if (!match) return false;
  const [major, minor, patch] = match.slice(1, 4).map(Number) as [number, number, number];
  const core = major !== 3 ? major - 3 : minor !== 6 ? minor - 6 : patch;
  // 3.6.0-rc.0 sorts before 3.6.0; 3.6.5-0 is after it.
  return core > 0 || (core === 0 && match[4] === undefined);
}

/** GetEtcdProbeEndpoint: the first `listen-metrics-urls` URL given, else http://localhost:2381. */
function etcdProbeEndpoint(
  args: readonly Arg[],
  localhost: string,
): { host: string; port: number; scheme: Scheme } {
  const fallback = { host: localhost, port: ETCD_METRICS_PORT, scheme: "HTTP" as Scheme };
  const urls = lastArg(args, "listen-metrics-urls");
  if (urls === undefined) return fallback;
  let url: URL;
  try {
    url = new URL(urls.split(",")[0] ?? "");
  } catch {
    return fallback;
  }
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
  return {
    host: host || localhost,
    port: url.port ? Number(url.port) : ETCD_METRICS_PORT,
    scheme: url.protocol === "https:" ? "HTTPS" : "HTTP",
  };
}

function etcd(ctx: Context): Json {
  const { cluster, node, gates } = ctx;
  const local = cluster.spec.kubernetes.etcd.local;
  const adv = node.advertiseAddress;
  const localhost = localhostFor(adv);
  const clientUrl = `https://${hostPort(adv, ETCD_CLIENT_PORT)}`;
  const peerUrl = `https://${hostPort(adv, ETCD_PEER_PORT)}`;
  const etcdImage = image(ctx, "etcd");
  const progress =
    gates.etcdProgressFlags === "none"
      ? []
      : gates.etcdProgressFlags === "by-etcd-version" &&
          etcdAtLeast36(etcdImage.slice(etcdImage.lastIndexOf(":") + 1))
        ? [
            { name: "feature-gates", value: "InitialCorruptCheck=true" },
            { name: "watch-progress-notify-interval", value: "5s" },
          ]
        : [
            { name: "experimental-initial-corrupt-check", value: "true" },
            { name: "experimental-watch-progress-notify-interval", value: "5s" },
          ];
  const base: Arg[] = [
    { name: "name", value: node.name },
    { name: "listen-client-urls", value: `https://${hostPort(localhost, ETCD_CLIENT_PORT)},${clientUrl}` },
    { name: "advertise-client-urls", value: clientUrl },
    { name: "listen-peer-urls", value: peerUrl },
    { name: "initial-advertise-peer-urls", value: peerUrl },
    { name: "data-dir", value: local.dataDir },
    { name: "cert-file", value: `${PKI_DIR}/etcd/server.crt` },
    { name: "key-file", value: `${PKI_DIR}/etcd/server.key` },
    { name: "trusted-ca-file", value: `${PKI_DIR}/etcd/ca.crt` },
    { name: "client-cert-auth", value: "true" },
    { name: "peer-cert-file", value: `${PKI_DIR}/etcd/peer.crt` },
    { name: "peer-key-file", value: `${PKI_DIR}/etcd/peer.key` },
    { name: "peer-trusted-ca-file", value: `${PKI_DIR}/etcd/ca.crt` },
    { name: "peer-client-cert-auth", value: "true" },
    { name: "snapshot-count", value: "10000" },
    { name: "listen-metrics-urls", value: `http://${hostPort(localhost, ETCD_METRICS_PORT)}` },
    ...progress,
    // init: a one-member cluster (join's existing-cluster form comes with control-plane join).
    { name: "initial-cluster", value: `${node.name}=${peerUrl}` },
  ];
  const probe = etcdProbeEndpoint(local.extraArgs, localhost);
  const probes = (paths: { liveness: string; readiness?: string; startup: string }): Json => ({
    livenessProbe: liveness(probe.host, paths.liveness, probe.port, probe.scheme),
    ...(paths.readiness
      ? { readinessProbe: readiness(probe.host, paths.readiness, probe.port, probe.scheme) }
      : {}),
    startupProbe: startup(probe.host, paths.startup, probe.port, probe.scheme),
  });
  const byGate = {
    health: { liveness: "/health", startup: "/health" },
    "health-serializable": {
      liveness: "/health?exclude=NOSPACE&serializable=true",
      startup: "/health?serializable=false",
    },
    "livez-readyz": { liveness: "/livez", readiness: "/readyz", startup: "/readyz" },
  } as const;
  const container = {
    command: ["etcd", ...argumentsToCommand(base, local.extraArgs)],
    ...env(local.extraEnvs),
    image: etcdImage,
    imagePullPolicy: "IfNotPresent",
    name: "etcd",
    resources: { requests: { cpu: "100m", memory: "100Mi" } },
    ...probes(byGate[gates.etcdProbes]),
  };
  const certsDir = `${PKI_DIR}/etcd`;
  // kubeadm lists etcd's mounts as written (data first), its volumes sorted by name.
  return pod(
    gates,
    container,
    {
      volumes: [
        { hostPath: { path: certsDir, type: "DirectoryOrCreate" }, name: "etcd-certs" },
        { hostPath: { path: local.dataDir, type: "DirectoryOrCreate" }, name: "etcd-data" },
      ],
      volumeMounts: [
        { mountPath: local.dataDir, name: "etcd-data" },
        { mountPath: certsDir, name: "etcd-certs" },
      ],
    },
    { "kubeadm.kubernetes.io/etcd.advertise-client-urls": clientUrl },
  );
}

/** The manifests as objects, in kubeadm's shape (for callers that compare or patch). */
export function staticPodObjects(
  cluster: ClusterFile,
  node: ControlPlaneNode,
): { component: StaticPodComponent; path: string; pod: Json }[] {
  for (const gate of UNSUPPORTED_GATES) {
    if (cluster.spec.kubernetes.featureGates[gate]) {
      throw new UsageError(`spec.kubernetes.featureGates.${gate} is not supported by kubeforge`);
    }
  }
  const ctx: Context = {
    cluster,
    node,
    gates: staticPodGates(cluster.spec.kubernetes.version),
    images: new Map(clusterImages(cluster).map((i) => [i.component, i.ref])),
  };
  const render: Record<StaticPodComponent, (c: Context) => Json> = {
    etcd,
    "kube-apiserver": apiServer,
    "kube-controller-manager": controllerManager,
    "kube-scheduler": scheduler,
  };
  return STATIC_POD_COMPONENTS.map((component) => ({
    component,
    path: `${MANIFESTS_DIR}/${component}.yaml`,
    pod: render[component](ctx),
  }));
}

/** The four manifests kubeadm init writes on `node`, as YAML. */
export function staticPods(cluster: ClusterFile, node: ControlPlaneNode): StaticPod[] {
  return staticPodObjects(cluster, node).map(({ component, path, pod }) => ({
    component,
    path,
    content: yaml.dump(pod, { lineWidth: -1, noRefs: true }),
  }));
}
