// The OS settings every node needs before containerd and the kubelet: kernel modules loaded at boot
// and the network sysctls, each in a file of kubeforge's own so nothing else is edited.

/** overlay for containerd's snapshotter; br_netfilter so bridged pod traffic passes iptables. */
export const KERNEL_MODULES = ["overlay", "br_netfilter"] as const;

/**
 * Only net.* keys: they are per network namespace, so they can be set even on hosts that are
 * containers (where vm.* and kernel.* are read-only and belong to the machine underneath).
 */
export const NETWORK_SYSCTLS = {
  "net.ipv4.ip_forward": "1",
  "net.bridge.bridge-nf-call-iptables": "1",
  "net.bridge.bridge-nf-call-ip6tables": "1",
} as const;

/**
 * What the kubelet insists on (its container manager's kernel tunables): it sets them itself when
 * it can, and fails to start when they are wrong and read-only.
 */
export const KUBELET_KERNEL_SETTINGS = {
  "vm.overcommit_memory": "1",
  "kernel.panic": "10",
  "kernel.panic_on_oops": "1",
} as const;

const HEADER = "# Written by kubeforge prepare; re-running prepare restores it.\n";

export function modulesFile(): string {
  return `${HEADER}${KERNEL_MODULES.join("\n")}\n`;
}

export function sysctlFile(): string {
  return `${HEADER}${Object.entries(NETWORK_SYSCTLS)
    .map(([key, value]) => `${key} = ${value}`)
    .join("\n")}\n`;
}

/** `net.ipv4.ip_forward` → `/proc/sys/net/ipv4/ip_forward`. */
export function sysctlPath(key: string): string {
  return `/proc/sys/${key.replaceAll(".", "/")}`;
}
