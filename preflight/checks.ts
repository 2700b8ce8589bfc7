// Host-stage preflight: what kubeforge cannot fix itself, decided purely from facts and the cluster
// file. Check names are kubeadm's where kubeadm has the check, so --ignore-preflight-errors habits
// carry over. What `prepare` will fix is reported as such, never as an error.

import type { ClusterFile, HostSpec } from "../config/schema.js";
import type { HostFacts } from "../facts/facts.js";
import { parseContainerdVersion } from "../node/state.js";
import { containerdConfigVersion } from "../templates/containerd.js";

export type CheckStatus = "ok" | "warning" | "error" | "fixable" | "ignored";

export interface CheckResult {
  host: string;
  check: string;
  status: CheckStatus;
  message: string;
}

export interface FactsOf {
  spec: HostSpec;
  facts: HostFacts;
  /**
   * Already a node of this cluster (its CA is the local store's): its ports and directories are in
   * use by this cluster, so a re-run converges instead of asking for a reset.
   */
  member?: boolean;
}

// kubeadm's constants.go: ControlPlaneNumCPU, ControlPlaneMem (MB).
const CONTROL_PLANE_CPUS = 2;
const CONTROL_PLANE_MEM_MB = 1700;
// Certificates are signed with the workstation's clock and back-dated a few minutes; beyond this a
// host may see them as not yet valid.
const MAX_CLOCK_SKEW_MS = 60_000;
const SUPPORTED_OS = ["debian", "ubuntu"];
const SUPPORTED_ARCH = ["x86_64", "aarch64"];
const DNS_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** The ports each role needs free (kubeadm's Port-N checks). */
export function requiredPorts(cluster: ClusterFile, role: HostSpec["role"]): number[] {
  const kubelet = 10250;
  if (role === "worker") return [kubelet];
  return [cluster.spec.kubernetes.apiServer.bindPort, kubelet, 10257, 10259, 2379, 2380];
}

/** kubeadm names directory checks after the path: /var/lib/etcd → DirAvailable--var-lib-etcd. */
function dirCheckName(path: string): string {
  return `DirAvailable-${path.replace(/\//g, "-")}`;
}

/** Directories whose contents the probe must report (leftovers of an earlier cluster). */
export function inspectedDirs(cluster: ClusterFile): string[] {
  return ["/etc/kubernetes/manifests", cluster.spec.kubernetes.etcd.local.dataDir];
}

function hostChecks(cluster: ClusterFile, { spec, facts, member }: FactsOf): Omit<CheckResult, "host">[] {
  const results: Omit<CheckResult, "host">[] = [];
  const add = (check: string, status: CheckStatus, message: string) =>
    results.push({ check, status, message });
  const controlPlane = spec.role === "control-plane";

  add(
    "IsPrivilegedUser",
    facts.privilegedUid === 0 ? "ok" : "error",
    facts.privilegedUid === 0
      ? "commands run as root"
      : `privileged commands run as uid ${facts.privilegedUid}, not root`,
  );

  const osSupported = [facts.os.id, ...facts.os.like].some((id) => SUPPORTED_OS.includes(id));
  const archSupported = SUPPORTED_ARCH.includes(facts.arch);
  add(
    "SystemVerification",
    osSupported && archSupported ? "ok" : "error",
    osSupported && archSupported
      ? `${facts.os.prettyName || facts.os.id}, ${facts.arch}, kernel ${facts.kernel}, cgroup v${facts.cgroupVersion}`
      : `${facts.os.prettyName || facts.os.id || "unknown OS"} on ${facts.arch} is not supported yet (supported: ${SUPPORTED_OS.join(", ")} on ${SUPPORTED_ARCH.join(", ")})`,
  );
  if (facts.init !== "systemd") {
    add(
      "SystemVerification-Init",
      "error",
      `PID 1 is ${facts.init || "unknown"}, not systemd: the kubelet runs as a systemd service`,
    );
  }

  if (controlPlane) {
    add(
      "NumCPU",
      facts.cpus >= CONTROL_PLANE_CPUS ? "ok" : "error",
      `${facts.cpus} CPU(s)${facts.cpus >= CONTROL_PLANE_CPUS ? "" : `; a control plane needs at least ${CONTROL_PLANE_CPUS}`}`,
    );
    const memoryMB = Math.floor(facts.memoryKiB / 1024);
    add(
      "Mem",
      memoryMB >= CONTROL_PLANE_MEM_MB ? "ok" : "error",
      `${memoryMB} MB${memoryMB >= CONTROL_PLANE_MEM_MB ? "" : `; a control plane needs at least ${CONTROL_PLANE_MEM_MB} MB`}`,
    );
  }

  add(
    "Hostname",
    DNS_SUBDOMAIN.test(facts.hostname) ? "ok" : "error",
    DNS_SUBDOMAIN.test(facts.hostname)
      ? facts.hostname
      : `"${facts.hostname}" is not a lowercase DNS-1123 subdomain; rename the host (hostnamectl set-hostname)`,
  );

  const ours = "in use by this cluster (the host's CA is the local store's)";
  for (const port of requiredPorts(cluster, spec.role)) {
    if (member) {
      add(`Port-${port}`, "ok", `port ${port}: ${ours}`);
      continue;
    }
    const taken = facts.listeningPorts.includes(port);
    add(`Port-${port}`, taken ? "error" : "ok", taken ? `port ${port} is in use` : `port ${port} is free`);
  }

  const manifests = "/etc/kubernetes/manifests";
  const leftovers = !member && (facts.manifests.length > 0 || facts.nonEmptyDirs.includes(manifests));
  add(
    dirCheckName(manifests),
    leftovers ? "error" : "ok",
    leftovers
      ? `${manifests} is not empty (${facts.manifests.join(", ") || "files"}): an earlier cluster is here; run kubeforge reset first`
      : member
        ? `${manifests}: ${ours}`
        : `${manifests} is empty or absent`,
  );
  if (controlPlane) {
    const dataDir = cluster.spec.kubernetes.etcd.local.dataDir;
    const used = !member && facts.nonEmptyDirs.includes(dataDir);
    add(
      dirCheckName(dataDir),
      used ? "error" : "ok",
      used
        ? `${dataDir} is not empty: etcd data of an earlier cluster; run kubeforge reset first`
        : member
          ? `${dataDir}: ${ours}`
          : `${dataDir} is empty or absent`,
    );
  }

  const skewed = Math.abs(facts.clockSkewMs) - facts.clockUncertaintyMs > MAX_CLOCK_SKEW_MS;
  const seconds = (facts.clockSkewMs / 1000).toFixed(1);
  add(
    "ClockSkew",
    skewed ? "error" : "ok",
    skewed
      ? `the host's clock is ${seconds}s off the workstation's, which signs the certificates; sync both (NTP)`
      : `${seconds}s off the workstation`,
  );

  // What `prepare` fixes: reported so the user knows, never an error here.
  const swapKiB = facts.swap.reduce((sum, device) => sum + device.sizeKiB, 0);
  add(
    "Swap",
    facts.swap.length === 0 ? "ok" : "fixable",
    facts.swap.length === 0
      ? "swap is off"
      : `swap is on (${facts.swap.map((d) => d.device).join(", ")}, ${Math.round(swapKiB / 1024)} MiB): will be fixed by prepare`,
  );
  add(
    "FileContent--proc-sys-net-ipv4-ip_forward",
    facts.ipForward ? "ok" : "fixable",
    facts.ipForward ? "IP forwarding is on" : "IP forwarding is off: will be fixed by prepare",
  );
  add(
    "FileContent--proc-sys-net-bridge-bridge-nf-call-iptables",
    facts.bridgeNfCallIptables ? "ok" : "fixable",
    facts.bridgeNfCallIptables
      ? "bridged traffic passes iptables"
      : `${facts.bridgeNfCallIptables === undefined ? "br_netfilter is not loaded" : "bridge-nf-call-iptables is 0"}: will be fixed by prepare`,
  );
  results.push({ check: "CRI", ...containerdCheck(facts.containerd) });
  return results;
}

/** An installed containerd prepare cannot configure stops the run before anything changes. */
function containerdCheck(installed: string | undefined): { status: CheckStatus; message: string } {
  if (!installed)
    return { status: "fixable", message: "containerd is not installed: will be installed by prepare" };
  const version = parseContainerdVersion(installed);
  if (version && containerdConfigVersion(version) !== undefined) return { status: "ok", message: installed };
  return {
    status: "error",
    message: `${installed}: kubeforge configures containerd 1.6 or later; upgrade it, or remove it (prepare then installs the bundle's)`,
  };
}

/** Facts that must differ between hosts (k0sctl's validate-hosts): the same machine twice breaks the cluster. */
function uniquenessChecks(hosts: readonly FactsOf[]): CheckResult[] {
  const results: CheckResult[] = [];
  const unique = (check: string, what: string, value: (facts: HostFacts) => string) => {
    const firstWith = new Map<string, string>();
    for (const { spec, facts } of hosts) {
      const key = value(facts);
      const first = firstWith.get(key);
      if (first === undefined) firstWith.set(key, spec.name);
      results.push({
        host: spec.name,
        check,
        status: first === undefined ? "ok" : "error",
        message: first === undefined ? `${what} ${key} is unique` : `${what} ${key} is also ${first}'s`,
      });
    }
  };
  unique("HostnameUnique", "hostname", (facts) => facts.hostname);
  unique("MachineIDUnique", "machine-id", (facts) => facts.machineId);
  return results;
}

export interface PreflightOptions {
  /** kubeadm's --ignore-preflight-errors: names (case-insensitive) or `all`. */
  ignore: readonly string[];
}

/** Every check on every host, errors named in `ignore` turned into `ignored`. */
export function runChecks(
  cluster: ClusterFile,
  hosts: readonly FactsOf[],
  options: PreflightOptions,
): CheckResult[] {
  const perHost = hosts.flatMap((entry) =>
    hostChecks(cluster, entry).map((result) => ({ host: entry.spec.name, ...result })),
  );
  return applyIgnored([...perHost, ...uniquenessChecks(hosts)], options);
}

/** Errors of checks named in `ignore` (or all, with `all`) become `ignored`. */
export function applyIgnored(results: readonly CheckResult[], options: PreflightOptions): CheckResult[] {
  const ignored = new Set(options.ignore.map((name) => name.toLowerCase()));
  return results.map((result) =>
    result.status === "error" && (ignored.has("all") || ignored.has(result.check.toLowerCase()))
      ? { ...result, status: "ignored" as const }
      : result,
  );
}
