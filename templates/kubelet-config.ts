// The kubelet's two files that `kubeadm init`/`join` write on a node, per supported version:
// /var/lib/kubelet/config.yaml (KubeletConfiguration, kubelet.config.k8s.io/v1beta1) and
// /var/lib/kubelet/kubeadm-flags.env (KUBELET_KUBEADM_ARGS, read by the packages' drop-in, see
// templates/kubelet-unit.ts). Pure functions; every difference between minors comes from
// kubeletGates() (config/version-gates.ts, where the kubeadm sources are cited).
//
// What kubeadm does (cmd/kubeadm/app/componentconfigs/kubelet.go Default(), kubelet_unix.go Mutate(),
// phases/kubelet/flags.go, util/arguments.go; read through the code index, see KubeletGateRow):
// - config.yaml is the Go struct marshalled as is: keys sorted, fields kubeadm never sets written with
//   zero values (durations "0s", `logging`, `memorySwap`, …: the row's configZeroValues). The kubelet
//   treats those zeros as "use the default", so they only matter for byte-level parity.
// - clusterDNS is the 10th address of the (first) service CIDR (constants.GetDNSIP).
// - resolvConf is /run/systemd/resolve/resolv.conf when systemd-resolved is active on the node.
// - kubeadm-flags.env: the flags sorted by name, `KUBELET_KUBEADM_ARGS=%q`. `--node-ip` is not a
//   kubeadm default: kubeforge passes it as kubeadm's `kubeletExtraArgs` (as kind does), and extra
//   args are merged into the same sorted list.
// - Unverified: whether a v1.21 `join` re-derives resolvConf on the joining node (v1.21 defaults it
//   at init and joins download the ConfigMap; kubeforge decides per node, as v1.30+ Mutate() does).
//
// Hosts that are containers (HostFacts.container), as kind configures its node containers
// (sigs.k8s.io/kind pkg/cluster/internal/kubeadm/config.go, KubeletConfiguration):
// - `imageGCHighThresholdPercent: 100` and `evictionHard` at 0% for nodefs/imagefs: the kubelet sees
//   the host's disk; without these it garbage-collects images and evicts pods when the HOST fills up,
//   and kubeforge's images come from an offline bundle, so a collected image cannot be pulled back.
// - `failSwapOn: false`: /proc/swaps in a container lists the host's swap, which the container can
//   neither turn off nor is charged for.
// - `failCgroupV1: false` on cgroup v1 only where the kubelet's default is true (v1.35+, KEP-5573).
//   The field exists from v1.31 (default false) and not at all in v1.21/v1.30, so no supported minor
//   writes it today; a later row with failCgroupV1Default: true gets it.
// - Left out: `cgroupRoot: /kubelet` (kind nests the kubelet's cgroups under its node container's
//   cgroup namespace root; a systemd-nspawn host has its own systemd with a delegated subtree and the
//   systemd cgroup driver places pods under kubepods.slice there), `--provider-id=kind://…` and
//   `--runtime-cgroups` (kind's own), `address`/`healthzBindAddress: "::"` (kind's IPv6 clusters).
import yaml from "js-yaml";
import { pauseImage } from "../config/images.js";
import { parseCidrList } from "../config/net.js";
import type { ClusterFile } from "../config/schema.js";
import { type KubeletGateRow, kubeletGates } from "../config/version-gates.js";
import { CONTAINERD_SOCKET, KUBELET_DIR, KUBERNETES_DIR, MANIFESTS_DIR } from "../node/paths.js";
import { InternalError } from "../workflow/errors.js";

export const KUBELET_CONFIG_FILE = `${KUBELET_DIR}/config.yaml`;
export const KUBEADM_FLAGS_FILE = `${KUBELET_DIR}/kubeadm-flags.env`;
/** kubeadm's criSocket for containerd, with the URL scheme kubeadm requires since v1.24. */
export const CRI_SOCKET = `unix://${CONTAINERD_SOCKET}`;
/** componentconfigs/kubelet.go kubeletSystemdResolverConfig. */
export const SYSTEMD_RESOLVED_RESOLV_CONF = "/run/systemd/resolve/resolv.conf";

type Taint = ClusterFile["spec"]["hosts"][number]["taints"][number];

/** What the node itself contributes (from HostFacts and a probe of systemd-resolved). */
export interface KubeletHost {
  /** `systemctl is-active systemd-resolved` succeeds (kubeadm's initsystem ServiceIsActive). */
  systemdResolvedActive: boolean;
  /** HostFacts.container: what `systemd-detect-virt --container` says; undefined on a machine. */
  container: string | undefined;
  cgroupVersion: 1 | 2;
}

export interface KubeletNode {
  /** The Node name (the cluster file's host name). */
  name: string;
  /** The host's own hostname (HostFacts.hostname). */
  hostname: string;
  /** `--node-ip`: privateAddress, else address. */
  nodeIP: string;
  role: "control-plane" | "worker";
  /** Which kubeadm command writes the files: only a worker's `join` registers taints by flag. */
  command: "init" | "join";
  /** The host's taints (cluster file). */
  taints: readonly Taint[];
}

/** The inputs of config.yaml that come from the cluster file. */
export interface KubeletClusterInputs {
  serviceSubnet: string;
  dnsDomain: string;
  /** kubeadm feature gates from the cluster file (NodeLocalCRISocket is read). */
  featureGates: Readonly<Record<string, boolean>>;
}

/** The 10th address of the first service CIDR, as kubeadm's constants.GetDNSIP computes it. */
export function clusterDNSIP(serviceSubnet: string): string {
  const cidr = parseCidrList(serviceSubnet)?.[0];
  if (!cidr) throw new InternalError(`${serviceSubnet} is not a service subnet`);
  const size = 1n << BigInt((cidr.family === 4 ? 32 : 128) - cidr.prefix);
  // kubeadm's GetIndexedIP fails when the address falls outside the CIDR; validation keeps ≥ /28.
  if (size <= 10n) throw new InternalError(`${serviceSubnet} has no 10th address`);
  return formatIp(cidr.family, cidr.network + 10n);
}

/** An address as Go's net.IP.String() prints it (RFC 5952 for IPv6). */
export function formatIp(family: 4 | 6, value: bigint): string {
  if (family === 4) return [24n, 16n, 8n, 0n].map((shift) => String((value >> shift) & 0xffn)).join(".");
  const groups = Array.from({ length: 8 }, (_, index) =>
    Number((value >> BigInt(112 - 16 * index)) & 0xffffn),
  );
  // The longest run of two or more zero groups becomes "::" (the first of equal runs).
  let best = { start: -1, length: 0 };
  for (let start = 0; start < 8; ) {
    if (groups[start] !== 0) {
      start += 1;
      continue;
    }
    let end = start;
    while (end < 8 && groups[end] === 0) end += 1;
    if (end - start > best.length) best = { start, length: end - start };
    start = end;
  }
  const hex = (part: number[]) => part.map((group) => group.toString(16)).join(":");
  if (best.length < 2) return hex(groups);
  return `${hex(groups.slice(0, best.start))}::${hex(groups.slice(best.start + best.length))}`;
}

/** Whether kubeadm puts the CRI socket into config.yaml (NodeLocalCRISocket) rather than a flag. */
function nodeLocalCRISocket(gates: KubeletGateRow, inputs: KubeletClusterInputs): boolean {
  if (gates.nodeLocalCRISocket === undefined) return false;
  return inputs.featureGates.NodeLocalCRISocket ?? gates.nodeLocalCRISocket;
}

/**
 * config.yaml as kubeadm of the gates' minor writes it, as an object (the YAML's keys sorted as Go
 * marshals them). Exported for tests that try a gate row no supported minor has.
 */
export function buildKubeletConfiguration(
  gates: KubeletGateRow,
  inputs: KubeletClusterInputs,
  host: KubeletHost,
): Record<string, unknown> {
  const config: Record<string, unknown> = {
    ...structuredClone(gates.configZeroValues),
    apiVersion: "kubelet.config.k8s.io/v1beta1",
    kind: "KubeletConfiguration",
    authentication: {
      anonymous: { enabled: false },
      webhook: { cacheTTL: "0s", enabled: true },
      x509: { clientCAFile: `${KUBERNETES_DIR}/pki/ca.crt` },
    },
    authorization: { mode: "Webhook", webhook: { cacheAuthorizedTTL: "0s", cacheUnauthorizedTTL: "0s" } },
    cgroupDriver: "systemd",
    clusterDNS: [clusterDNSIP(inputs.serviceSubnet)],
    clusterDomain: inputs.dnsDomain,
    healthzBindAddress: "127.0.0.1",
    healthzPort: 10248,
    rotateCertificates: true,
    staticPodPath: MANIFESTS_DIR,
  };
  if (nodeLocalCRISocket(gates, inputs)) config.containerRuntimeEndpoint = CRI_SOCKET;
  if (host.systemdResolvedActive) config.resolvConf = SYSTEMD_RESOLVED_RESOLV_CONF;
  if (host.container !== undefined) {
    config.failSwapOn = false;
    config.imageGCHighThresholdPercent = 100;
    config.evictionHard = { "imagefs.available": "0%", "nodefs.available": "0%", "nodefs.inodesFree": "0%" };
    if (host.cgroupVersion === 1 && gates.failCgroupV1Default === true) config.failCgroupV1 = false;
  }
  return sortKeys(config);
}

function sortKeys(object: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(object).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

function clusterInputs(cluster: ClusterFile): KubeletClusterInputs {
  const { networking, featureGates } = cluster.spec.kubernetes;
  return { serviceSubnet: networking.serviceSubnet, dnsDomain: networking.dnsDomain, featureGates };
}

/** /var/lib/kubelet/config.yaml for a node of the cluster, as an object. */
export function kubeletConfiguration(cluster: ClusterFile, host: KubeletHost): Record<string, unknown> {
  return buildKubeletConfiguration(
    kubeletGates(cluster.spec.kubernetes.version),
    clusterInputs(cluster),
    host,
  );
}

/** /var/lib/kubelet/config.yaml for a node of the cluster, as kubeadm lays the YAML out. */
export function renderKubeletConfig(cluster: ClusterFile, host: KubeletHost): string {
  return yaml.dump(kubeletConfiguration(cluster, host), {
    sortKeys: true,
    noArrayIndent: true,
    lineWidth: -1,
    quotingType: '"',
  });
}

/** A taint as kubeadm's v1.Taint.ToString() prints it: `key=value:effect`, `key:effect` without value. */
function taintString(taint: Taint): string {
  return `${taint.key}${taint.value ? `=${taint.value}` : ""}:${taint.effect}`;
}

/**
 * The kubelet flags kubeadm writes, `--name=value`, sorted by name as kubeadm's
 * BuildArgumentListFromMap (≤v1.30) and ArgumentsToCommand (v1.31+) sort them.
 */
export function buildKubeadmFlags(
  gates: KubeletGateRow,
  inputs: KubeletClusterInputs & { pauseImage: string },
  node: KubeletNode,
): string[] {
  const flags = new Map<string, string>();
  if (!nodeLocalCRISocket(gates, inputs)) {
    if (gates.containerRuntimeRemoteFlag) flags.set("container-runtime", "remote");
    flags.set("container-runtime-endpoint", CRI_SOCKET);
  }
  if (gates.podInfraContainerImageFlag) flags.set("pod-infra-container-image", inputs.pauseImage);
  // join.go: registerTaintsUsingFlags = (no controlPlane section); init applies taints in mark-control-plane.
  const registerTaints = node.command === "join" && node.role === "worker";
  if (registerTaints && node.taints.length > 0) {
    flags.set("register-with-taints", node.taints.map(taintString).join(","));
  }
  if (node.name !== node.hostname) flags.set("hostname-override", node.name);
  // kubeletExtraArgs (kubeforge's only one is the node IP) override base flags of the same name.
  flags.set("node-ip", node.nodeIP);
  return [...flags.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, value]) => `--${name}=${value}`);
}

/** The flags of a node of the cluster. */
export function kubeadmFlags(cluster: ClusterFile, node: KubeletNode): string[] {
  return buildKubeadmFlags(
    kubeletGates(cluster.spec.kubernetes.version),
    { ...clusterInputs(cluster), pauseImage: pauseImage(cluster) },
    node,
  );
}

/** Go's %q for the plain ASCII flag text kubeadm quotes (backslash and double quote escaped). */
function goQuote(text: string): string {
  return `"${text.replace(/[\\"]/g, (char) => `\\${char}`)}"`;
}

/** /var/lib/kubelet/kubeadm-flags.env for a node of the cluster (flags.go WriteKubeletDynamicEnvFile). */
export function renderKubeadmFlagsEnv(cluster: ClusterFile, node: KubeletNode): string {
  return `KUBELET_KUBEADM_ARGS=${goQuote(kubeadmFlags(cluster, node).join(" "))}\n`;
}
