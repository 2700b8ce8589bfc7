// Node-stage preflight: after prepare, is this host ready for the kubelet? Decided purely from a
// node probe (node/state.ts); check names are kubeadm's where kubeadm has the check.

import type { KubernetesVersion } from "../config/versions.js";
import type { HostFacts } from "../facts/facts.js";
import { CONTAINERD_SOCKET } from "../node/paths.js";
import type { NodeState } from "../node/state.js";
import { KUBELET_KERNEL_SETTINGS, NETWORK_SYSCTLS, sysctlPath } from "../templates/os.js";
import { applyIgnored, type CheckResult, type CheckStatus, type PreflightOptions } from "./checks.js";

/** kubeadm's InPathCheck list for a node (FileExisting-<name>), with the Debian package holding each. */
const REQUIRED_NODE_BINARIES: Record<string, string> = {
  ip: "iproute2",
  iptables: "iptables",
  mount: "mount",
  nsenter: "util-linux",
  conntrack: "conntrack",
  socat: "socat",
  ethtool: "ethtool",
};

/**
 * How many minors a kubelet may lag behind the control plane, per kubeadm's MinimumKubeletVersion:
 * one before v1.28, three since (the skew policy widened in v1.28).
 */
function kubeletLag(target: KubernetesVersion): number {
  return target.minor >= 28 ? 3 : 1;
}

/** `Kubernetes v1.30.4` → [1, 30, 4]. */
export function parseKubeletVersion(output: string): [number, number, number] | undefined {
  const match = /v(\d+)\.(\d+)\.(\d+)/.exec(output);
  return match ? [Number(match[1]), Number(match[2]), Number(match[3])] : undefined;
}

/** `net.ipv4.ip_forward` → kubeadm's `FileContent--proc-sys-net-ipv4-ip_forward`. */
function fileContentCheck(key: string): string {
  return `FileContent-${sysctlPath(key).replace(/\//g, "-")}`;
}

export function nodeChecks(
  host: string,
  state: NodeState,
  facts: Pick<HostFacts, "container">,
  target: KubernetesVersion,
  options: PreflightOptions,
): CheckResult[] {
  const results: CheckResult[] = [];
  const add = (check: string, status: CheckStatus, message: string) =>
    results.push({ host, check, status, message });

  add(
    "CRI",
    state.criAnswers ? "ok" : "error",
    state.criAnswers
      ? `containerd ${state.containerdVersion ?? ""} answers on ${CONTAINERD_SOCKET}`.replace("  ", " ")
      : `containerd does not answer on ${CONTAINERD_SOCKET}: see systemctl status containerd and journalctl -u containerd`,
  );

  const kubelet = state.kubeletVersion ? parseKubeletVersion(state.kubeletVersion) : undefined;
  if (!kubelet) {
    add("KubeletVersion", "error", "no kubelet found (prepare installs it from the bundle)");
  } else {
    const [major, minor] = kubelet;
    const shown = `v${kubelet.join(".")}`;
    const oldest = target.minor - kubeletLag(target);
    if (major !== target.major || minor > target.minor)
      add(
        "KubeletVersion",
        "error",
        `kubelet ${shown} is newer than the control plane's v${target.major}.${target.minor}`,
      );
    else if (minor < oldest)
      add(
        "KubeletVersion",
        "error",
        `kubelet ${shown} is older than v${target.major}.${oldest}, the oldest this control plane supports`,
      );
    else add("KubeletVersion", "ok", `kubelet ${shown}`);
  }

  add(
    "Swap",
    state.swapDevices.length === 0 ? "ok" : "error",
    state.swapDevices.length === 0 ? "swap is off" : `swap is on (${state.swapDevices.join(", ")})`,
  );

  for (const [key, wanted] of Object.entries(NETWORK_SYSCTLS)) {
    if (key.endsWith("ip6tables")) continue; // kubeadm checks only the IPv4 pair
    const value = state.sysctls.get(key);
    add(
      fileContentCheck(key),
      value === wanted ? "ok" : "error",
      value === wanted
        ? `${sysctlPath(key)} is ${wanted}`
        : `${sysctlPath(key)} is ${value === undefined ? "missing" : value}, not ${wanted}`,
    );
  }

  for (const [binary, debianPackage] of Object.entries(REQUIRED_NODE_BINARIES)) {
    const present = state.tools.has(binary);
    add(
      `FileExisting-${binary}`,
      present ? "ok" : "error",
      present
        ? `${binary} found`
        : `${binary} not found in PATH: install the ${debianPackage} package (or add its .deb to the bundle for prepare)`,
    );
  }

  results.push(kernelSettingsCheck(host, state, facts));
  return applyIgnored(results, options);
}

/**
 * The kubelet sets these itself when it can; where they are wrong and read-only (a host that is a
 * container shares the machine's kernel) it fails at start, so say where to fix them.
 */
function kernelSettingsCheck(
  host: string,
  state: NodeState,
  facts: Pick<HostFacts, "container">,
): CheckResult {
  const wrong = Object.entries(KUBELET_KERNEL_SETTINGS).filter(
    ([key, wanted]) => state.sysctls.get(key) !== wanted,
  );
  const check = "KubeletKernelSettings";
  if (wrong.length === 0) return { host, check, status: "ok", message: "as the kubelet needs them" };
  const shown = wrong.map(([key, wanted]) => `${key}=${state.sysctls.get(key) ?? "?"} (needs ${wanted})`);
  const readOnly = wrong.filter(([key]) => !state.writableSysctls.has(key));
  if (readOnly.length === 0) {
    return { host, check, status: "warning", message: `${shown.join(", ")}: the kubelet will set them` };
  }
  const fix = wrong.map(([key, wanted]) => `${key}=${wanted}`).join(" ");
  const where = facts.container
    ? `this host is a container (${facts.container}) and shares the kernel of the machine underneath; on that machine run`
    : "they are read-only here; run as root";
  return {
    host,
    check,
    status: "error",
    message: `${shown.join(", ")}, read-only: ${where} \`sysctl -w ${fix}\` (and persist it in /etc/sysctl.d/)`,
  };
}
