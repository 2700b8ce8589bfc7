// What a node looks like right now, for the prepare phases and the node preflight: one read-only
// POSIX probe per call (as root), parsed by a pure function. Every phase probes again before it
// changes anything, so a re-run after a crash, or after someone edited a host, plans from the truth.
import { parseProbeOutput } from "../facts/probe-output.js";
import type { Host } from "../hosts/host.js";
import { shellQuote } from "../hosts/sudo.js";
import { KUBELET_KERNEL_SETTINGS, NETWORK_SYSCTLS, sysctlPath } from "../templates/os.js";
import { CONTAINERD_CONFIG, CONTAINERD_SOCKET, INSTALL_RECORD, K8S_NAMESPACE } from "./paths.js";

/** The commands whose presence decides what to install and what the node preflight demands. */
export const NODE_TOOLS = [
  "containerd",
  "runc",
  "ctr",
  "crictl",
  "conntrack",
  "socat",
  "ethtool",
  "ip",
  "iptables",
  "mount",
  "nsenter",
  "dpkg",
  "systemctl",
  "kubelet",
] as const;

export interface UnitState {
  /** `systemctl is-enabled`: enabled, disabled, masked, … or `not-found`. */
  enabled: string;
  /** `systemctl is-active`: active, inactive, failed, activating, … */
  active: string;
}

export interface NodeState {
  /** Active swap devices (/proc/swaps). */
  swapDevices: string[];
  /** Uncommented swap entries in /etc/fstab. */
  fstabSwapEntries: number;
  /** sha256 of each small file asked about; absent when the file does not exist. */
  fileHashes: Map<string, string>;
  /** Current values of the network sysctls and the kubelet's kernel settings; absent when unreadable. */
  sysctls: Map<string, string>;
  /** Kernel settings whose /proc/sys file is writable (false on hosts that are containers). */
  writableSysctls: Set<string>;
  /** overlay in /proc/filesystems. */
  overlayFs: boolean;
  /** /proc/sys/net/bridge exists: br_netfilter is loaded (lsmod lies on some hosts, this does not). */
  bridgeNetfilter: boolean;
  tools: Set<string>;
  /** Installed Debian packages by name → version (only those asked about). */
  packages: Map<string, string>;
  /** Packages dpkg left half-done (unpacked, half-configured, …), e.g. after an interrupted dpkg -i. */
  unfinishedPackages: string[];
  /** containerd's version (`1.6.20`), or undefined when not installed. */
  containerdVersion: string | undefined;
  /** `kubelet --version` output, or undefined. */
  kubeletVersion: string | undefined;
  units: { containerd: UnitState; kubelet: UnitState };
  /** When containerd last became active and when its config last changed (epoch seconds), if known. */
  containerdSince: number | undefined;
  containerdConfigMtime: number | undefined;
  /** systemd has unit files for the kubelet newer than what it loaded (NeedDaemonReload). */
  kubeletNeedsReload: boolean;
  /** containerd answers on its socket. */
  criAnswers: boolean;
  /** Image refs in containerd's k8s.io namespace (empty when containerd does not answer). */
  images: Set<string>;
  /** The install record's text, when present. */
  installRecord: string | undefined;
}

export interface ProbeRequest {
  /** Small files to hash (configs, units). */
  hashFiles: readonly string[];
  /** Debian packages to ask dpkg about. */
  packages: readonly string[];
}

/** dpkg's states between "not installed" and "installed": an interrupted or failed dpkg run. */
const UNFINISHED_DPKG_STATES = new Set([
  "half-installed",
  "unpacked",
  "half-configured",
  "triggers-awaited",
  "triggers-pending",
]);

const SYSCTL_KEYS = [...Object.keys(NETWORK_SYSCTLS), ...Object.keys(KUBELET_KERNEL_SETTINGS)];

export function nodeStateScript(request: ProbeRequest): string {
  const ctr = `ctr --address ${CONTAINERD_SOCKET}`;
  return [
    'e() { printf \'%s=%s\\n\' "$1" "$2"; }',
    "awk 'NR > 1 {print \"swap=\" $1}' /proc/swaps",
    'e fstab_swap "$(awk \'$1 !~ /^#/ && $3 == "swap"\' /etc/fstab 2>/dev/null | wc -l)"',
    `for f in ${request.hashFiles.map(shellQuote).join(" ")}; do [ -f "$f" ] && e hash "$f $(sha256sum < "$f" | cut -d' ' -f1)"; done`,
    ...SYSCTL_KEYS.map(
      (key) =>
        `[ -r ${sysctlPath(key)} ] && e sysctl "${key} $(cat ${sysctlPath(key)})"; [ -w ${sysctlPath(key)} ] && e writable ${key}`,
    ),
    "grep -qw overlay /proc/filesystems && e overlay 1",
    "[ -d /proc/sys/net/bridge ] && e bridge_nf 1",
    `for t in ${NODE_TOOLS.join(" ")}; do command -v "$t" >/dev/null 2>&1 && e tool "$t"; done`,
    request.packages.length > 0
      ? `command -v dpkg-query >/dev/null 2>&1 && dpkg-query -W -f='pkg=\${Package} \${Version} \${db:Status-Status}\\n' ${request.packages.map(shellQuote).join(" ")} 2>/dev/null`
      : "",
    'command -v containerd >/dev/null 2>&1 && e containerd "$(containerd --version 2>/dev/null)"',
    'command -v kubelet >/dev/null 2>&1 && e kubelet "$(kubelet --version 2>/dev/null | head -n 1)"',
    "since=$(systemctl show -p ActiveEnterTimestamp --value containerd 2>/dev/null)",
    '[ -n "$since" ] && e containerd_since "$(date -d "$since" +%s 2>/dev/null)"',
    `[ -f ${CONTAINERD_CONFIG} ] && e containerd_config_mtime "$(stat -c %Y ${CONTAINERD_CONFIG})"`,
    'e kubelet_reload "$(systemctl show -p NeedDaemonReload --value kubelet 2>/dev/null)"',
    "for u in containerd kubelet; do",
    '  e "unit_enabled_$u" "$(systemctl is-enabled "$u" 2>/dev/null || true)"',
    '  e "unit_active_$u" "$(systemctl is-active "$u" 2>/dev/null || true)"',
    "done",
    `if command -v ctr >/dev/null 2>&1 && [ -S ${CONTAINERD_SOCKET} ] && timeout 5 ${ctr} version >/dev/null 2>&1; then`,
    "  e cri 1",
    `  timeout 10 ${ctr} -n ${K8S_NAMESPACE} images ls -q 2>/dev/null | sed 's/^/image=/'`,
    "fi",
    `[ -f ${INSTALL_RECORD} ] && e record "$(base64 -w0 < ${INSTALL_RECORD})"`,
    "true",
  ]
    .filter(Boolean)
    .join("\n");
}

/** `containerd github.com/containerd/containerd 1.6.20~ds1 …` (Debian) or `… v2.1.4 …` (upstream) → `1.6.20`. */
export function parseContainerdVersion(output: string): string | undefined {
  const match = /\sv?(\d+\.\d+\.\d+)/.exec(output);
  return match?.[1];
}

function unitState(enabled: string, active: string): UnitState {
  return { enabled: enabled || "not-found", active: active || "inactive" };
}

export function parseNodeState(output: string): NodeState {
  const probe = parseProbeOutput(output);
  const { one, all } = probe;
  const pairs = (key: string) =>
    new Map(
      all(key).map((entry) => {
        const space = entry.indexOf(" ");
        return [entry.slice(0, space), entry.slice(space + 1).trim()] as const;
      }),
    );
  const packages = new Map<string, string>();
  const unfinishedPackages: string[] = [];
  for (const entry of all("pkg")) {
    const [name = "", version = "", status = ""] = entry.split(" ");
    if (status === "installed") packages.set(name, version);
    else if (UNFINISHED_DPKG_STATES.has(status)) unfinishedPackages.push(name);
  }
  const seconds = (key: string) => (one(key) ? Number(one(key)) : undefined);
  const containerd = one("containerd");
  const record = one("record");
  return {
    swapDevices: all("swap"),
    fstabSwapEntries: Number(one("fstab_swap")) || 0,
    fileHashes: pairs("hash"),
    sysctls: pairs("sysctl"),
    writableSysctls: new Set(all("writable")),
    overlayFs: one("overlay") === "1",
    bridgeNetfilter: one("bridge_nf") === "1",
    tools: new Set(all("tool")),
    packages,
    unfinishedPackages,
    containerdVersion: containerd ? parseContainerdVersion(containerd) : undefined,
    kubeletVersion: one("kubelet") || undefined,
    units: {
      containerd: unitState(one("unit_enabled_containerd"), one("unit_active_containerd")),
      kubelet: unitState(one("unit_enabled_kubelet"), one("unit_active_kubelet")),
    },
    containerdSince: seconds("containerd_since"),
    containerdConfigMtime: seconds("containerd_config_mtime"),
    kubeletNeedsReload: one("kubelet_reload") === "yes",
    criAnswers: one("cri") === "1",
    images: new Set(all("image")),
    installRecord: record ? Buffer.from(record, "base64").toString("utf8") : undefined,
  };
}

export async function probeNode(
  host: Host,
  request: ProbeRequest,
  options: { sudo: boolean; signal?: AbortSignal },
): Promise<NodeState> {
  const { stdout } = await host.exec(nodeStateScript(request), {
    sudo: options.sudo,
    timeoutMs: 60_000,
    ...(options.signal && { signal: options.signal }),
  });
  return parseNodeState(stdout);
}
