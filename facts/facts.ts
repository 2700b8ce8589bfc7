// Facts about a host, read-only, in one round trip: a POSIX sh probe prints `key=value` lines and
// a pure parser turns them into HostFacts. Phases decide from these, so a re-run converges.

import type { Host } from "../hosts/host.js";
import { parseProbeOutput } from "./probe-output.js";

export interface SwapDevice {
  device: string;
  sizeKiB: number;
}

export interface HostFacts {
  os: { id: string; versionId: string; like: string[]; prettyName: string };
  /** `apt-get`, `dnf`, `yum`, `zypper`, `apk`, or undefined. */
  packageManager: string | undefined;
  arch: string;
  kernel: string;
  hostname: string;
  machineId: string;
  cpus: number;
  memoryKiB: number;
  /** From /proc/swaps: what is on now, whatever fstab says. */
  swap: SwapDevice[];
  cgroupVersion: 1 | 2;
  /** PID 1's name; `systemd` means the kubelet and containerd use the systemd cgroup driver. */
  init: string;
  /** What `systemd-detect-virt --container` says, or undefined on a machine that is not a container. */
  container: string | undefined;
  /** systemd-resolved is active: the kubelet then reads its resolv.conf (kubeadm's kubelet config). */
  systemdResolved: boolean;
  /** `containerd --version` output, or undefined when not installed. */
  containerd: string | undefined;
  /** `kubelet --version` output, or undefined when not installed. */
  kubelet: string | undefined;
  /** Static pod manifests present in /etc/kubernetes/manifests. */
  manifests: string[];
  /** Directories (asked about by path) that exist and are not empty. */
  nonEmptyDirs: string[];
  /** TCP ports something listens on. */
  listeningPorts: number[];
  /** The effective uid of privileged commands: 0 when root or sudo works. */
  privilegedUid: number;
  ipForward: boolean;
  /** /proc/sys/net/bridge/bridge-nf-call-iptables: undefined when br_netfilter is not loaded. */
  bridgeNfCallIptables: boolean | undefined;
  binaries: string[];
  /** The host's clock minus the workstation's, in ms, and how far off that estimate may be. */
  clockSkewMs: number;
  clockUncertaintyMs: number;
}

const PACKAGE_MANAGERS = ["apt-get", "dnf", "yum", "zypper", "apk"];
const BINARIES = [
  "ip",
  "iptables",
  "mount",
  "nsenter",
  "conntrack",
  "socat",
  "runc",
  "ethtool",
  "systemctl",
  "sha256sum",
  "setsid",
];

/** The probe: read-only, POSIX sh, tolerant of missing tools; one `key=value` per line. */
export function factsScript(dirs: readonly string[]): string {
  const q = (text: string) => `'${text.replace(/'/g, `'\\''`)}'`;
  return [
    'e() { printf \'%s=%s\\n\' "$1" "$2"; }',
    "[ -r /etc/os-release ] && . /etc/os-release",
    'e os.id "${ID:-}"; e os.version "${VERSION_ID:-}"; e os.like "${ID_LIKE:-}"; e os.name "${PRETTY_NAME:-}"',
    `for p in ${PACKAGE_MANAGERS.join(" ")}; do if command -v "$p" >/dev/null 2>&1; then e pm "$p"; break; fi; done`,
    'e arch "$(uname -m)"; e kernel "$(uname -r)"',
    'e hostname "$(cat /proc/sys/kernel/hostname)"',
    'e machine_id "$(cat /etc/machine-id 2>/dev/null)"',
    'e cpus "$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN)"',
    "e mem_kib \"$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)\"",
    'awk \'NR > 1 {print "swap=" $1 " " $3}\' /proc/swaps',
    'e cgroup_fs "$(stat -fc %T /sys/fs/cgroup 2>/dev/null)"',
    'e init "$(cat /proc/1/comm 2>/dev/null)"',
    'e container "$(systemd-detect-virt --container 2>/dev/null)"',
    "systemctl is-active --quiet systemd-resolved 2>/dev/null && e resolved 1",
    'command -v containerd >/dev/null 2>&1 && e containerd "$(containerd --version 2>/dev/null)"',
    'command -v kubelet >/dev/null 2>&1 && e kubelet "$(kubelet --version 2>/dev/null)"',
    'for f in /etc/kubernetes/manifests/*.yaml; do [ -e "$f" ] && e manifest "$f"; done',
    `for d in ${dirs.map(q).join(" ")}; do [ -d "$d" ] && [ -n "$(ls -A "$d" 2>/dev/null)" ] && e nonempty "$d"; done`,
    // /proc/net/tcp{,6} rather than ss or netstat, which minimal hosts lack; 0A is LISTEN.
    'cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | awk \'$4 == "0A" {print "listen=" $2}\'',
    'e uid "$(id -u)"',
    'e ip_forward "$(cat /proc/sys/net/ipv4/ip_forward 2>/dev/null)"',
    'e bridge_nf "$(cat /proc/sys/net/bridge/bridge-nf-call-iptables 2>/dev/null)"',
    `for b in ${BINARIES.join(" ")}; do command -v "$b" >/dev/null 2>&1 && e binary "$b"; done`,
    'e clock_ms "$(date +%s%3N)"',
    "true",
  ].join("\n");
}

/** Parses the probe's output; `sent`/`received` are the workstation's clock around the round trip. */
export function parseFacts(output: string, timing: { sent: number; received: number }): HostFacts {
  const probe = parseProbeOutput(output);
  const { one, all } = probe;
  const optional = (key: string) => one(key) || undefined;
  const hostClock = Number(one("clock_ms"));
  const middle = (timing.sent + timing.received) / 2;
  return {
    os: {
      id: one("os.id"),
      versionId: one("os.version"),
      like: one("os.like").split(/\s+/).filter(Boolean),
      prettyName: one("os.name"),
    },
    packageManager: optional("pm"),
    arch: one("arch"),
    kernel: one("kernel"),
    hostname: one("hostname"),
    machineId: one("machine_id"),
    cpus: Number(one("cpus")),
    memoryKiB: Number(one("mem_kib")),
    swap: all("swap").map((entry) => {
      const [device = "", size = "0"] = entry.split(" ");
      return { device, sizeKiB: Number(size) };
    }),
    cgroupVersion: one("cgroup_fs") === "cgroup2fs" ? 2 : 1,
    init: one("init"),
    container: one("container") === "none" ? undefined : optional("container"),
    systemdResolved: one("resolved") === "1",
    containerd: optional("containerd"),
    kubelet: optional("kubelet"),
    manifests: all("manifest"),
    nonEmptyDirs: all("nonempty"),
    listeningPorts: [
      ...new Set(all("listen").map((address) => Number.parseInt(address.split(":").at(-1) ?? "", 16))),
    ]
      .filter((port) => Number.isInteger(port))
      .sort((a, b) => a - b),
    privilegedUid: Number(one("uid")),
    ipForward: one("ip_forward") === "1",
    bridgeNfCallIptables: one("bridge_nf") === "" ? undefined : one("bridge_nf") === "1",
    binaries: all("binary"),
    clockSkewMs: Number.isFinite(hostClock) ? Math.round(hostClock - middle) : Number.NaN,
    clockUncertaintyMs: Math.round((timing.received - timing.sent) / 2),
  };
}

/** Gathers a host's facts as root when `sudo` (so privilege is proven too), in one command. */
export async function gatherFacts(
  host: Host,
  options: { dirs: readonly string[]; sudo: boolean; signal?: AbortSignal; now?: () => number },
): Promise<HostFacts> {
  const now = options.now ?? Date.now;
  const script = factsScript(options.dirs);
  const sent = now();
  const { stdout } = await host.exec(script, {
    sudo: options.sudo,
    timeoutMs: 30_000,
    ...(options.signal && { signal: options.signal }),
  });
  return parseFacts(stdout, { sent, received: now() });
}
