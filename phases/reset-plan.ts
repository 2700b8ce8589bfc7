// What `kubeforge reset` finds on a node and what it does about it: one read-only probe (POSIX sh,
// `key=value` lines, as facts/facts.ts), a pure parser, and a pure plan of named changes. The dry
// run, the real run and a clean host's "nothing to do" all come from the same plan.

import { dirname } from "node:path";
import { parseProbeOutput } from "../facts/probe-output.js";
import { shellQuote } from "../hosts/sudo.js";
import { parseInstallRecord } from "../node/install-record.js";
import {
  BIN_DIR,
  CONTAINERD_SOCKET,
  INSTALL_RECORD,
  K8S_NAMESPACE,
  KUBEFORGE_CNI_CONFIG,
  KUBELET_DIR,
  KUBELET_DROP_IN,
  KUBELET_UNIT,
  KUBERNETES_DIR,
  MANIFESTS_DIR,
  POD_ROUTES_UNIT,
} from "../node/paths.js";
import { CNI_BRIDGE, CNI_IPAM_DIR, parsePodRoutesUnit, routeCommand } from "../templates/cni-bridge.js";

/** A containerd task (a container's running or stopped process) in the k8s.io namespace. */
export interface ContainerTask {
  id: string;
  status: string;
}

export interface NodeLeftovers {
  /** `systemctl is-active kubelet`: `inactive` also when the unit does not exist. */
  kubelet: string;
  /** `systemctl is-enabled kubelet`: empty when the unit does not exist. */
  kubeletEnabled: string;
  /** Entries of /etc/kubernetes/manifests. */
  manifests: string[];
  /** Undefined when containerd does not answer on its socket: then there is nothing to stop. */
  containerd: { tasks: ContainerTask[]; containers: string[]; pods: string[] | undefined } | undefined;
  /** Every mount point of the host, in /proc/self/mountinfo order (later ones on top). */
  mounts: string[];
  /** The probed paths that exist. */
  existing: string[];
  /** `iptables-save` / `ip6tables-save` output; empty when the tool is missing. */
  iptablesSave: { iptables: string; ip6tables: string };
  /** The install record's text, when there is one. */
  installRecord: string | undefined;
  /** Probed paths that belong to an OS package: --purge leaves them to the package manager. */
  packaged: string[];
  /** The boot unit of the bridge pod network's routes, when there is one (addons.cni: bridge). */
  podRoutesUnit: string | undefined;
  /** The bridge pod network's Linux bridge exists. */
  podBridge: boolean;
}

export interface ResetOptions {
  purge: boolean;
  /** spec.kubernetes.etcd.local.dataDir. */
  etcdDataDir: string;
}

export interface PlannedChange {
  description: string;
  /** Runs as root under `sh`. */
  command: string;
  stdin?: string;
}

/** Fixed paths --purge removes unless a package owns them (then the package manager does). */
export const PURGED_PATHS = [KUBELET_UNIT, KUBELET_DROP_IN, `${BIN_DIR}/kubelet`, `${BIN_DIR}/kubectl`];
/** kubeforge's own state on a node: the install record and its scratch directory. */
const NODE_STATE_DIR = dirname(INSTALL_RECORD);
const CTR = `timeout 60 ctr --address ${CONTAINERD_SOCKET} -n ${K8S_NAMESPACE}`;
const CRICTL = `timeout 120 crictl --runtime-endpoint unix://${CONTAINERD_SOCKET}`;
const KUBELET_RUNNING = new Set(["active", "activating", "deactivating", "reloading", "refreshing"]);
const IPTABLES_TABLES = new Set(["filter", "nat", "mangle"]);

/** The directories and files reset removes, in order. */
function removedPaths(options: ResetOptions): string[] {
  return [KUBERNETES_DIR, KUBELET_DIR, options.etcdDataDir, KUBEFORGE_CNI_CONFIG];
}

const quoteAll = (paths: readonly string[]) => paths.map(shellQuote).join(" ");

/** `packaged=<path>` for each of `paths` an installed package owns (nothing without dpkg). */
function packagedCheck(paths: readonly string[]): string {
  return `if command -v dpkg-query >/dev/null 2>&1; then for p in ${quoteAll(paths)}; do dpkg-query -S "$p" >/dev/null 2>&1 && printf 'packaged=%s\\n' "$p"; done; fi`;
}

/**
 * The install record's files --purge would remove that the probe could not ask dpkg about: the
 * probe reads the record, so their ownership takes a second read-only command after it.
 */
export function unprobedRecordedFiles(found: NodeLeftovers): string[] {
  return recordedFiles(found).filter((path) => !PURGED_PATHS.includes(path));
}

/** Read-only, like the probe; its output adds to `packaged` (see withPackaged). */
export function packagedScript(paths: readonly string[]): string {
  return `${packagedCheck(paths)}\ntrue`;
}

export function withPackaged(found: NodeLeftovers, output: string): NodeLeftovers {
  const packaged = parseProbeOutput(output).all("packaged");
  return { ...found, packaged: [...new Set([...found.packaged, ...packaged])] };
}

function recordedFiles(found: NodeLeftovers): string[] {
  const record = parseInstallRecord(found.installRecord);
  return record.files.map((file) => file.path).filter((path) => path.startsWith("/"));
}

/** The probe: read-only, POSIX sh, run as root; every tool it uses is optional. */
export function leftoversScript(options: ResetOptions): string {
  const paths = [...removedPaths(options), ...PURGED_PATHS, NODE_STATE_DIR];
  return [
    'e() { printf \'%s=%s\\n\' "$1" "$2"; }',
    'e kubelet "$(systemctl is-active kubelet 2>/dev/null)"',
    'e kubelet_enabled "$(systemctl is-enabled kubelet 2>/dev/null)"',
    `for f in ${MANIFESTS_DIR}/*; do { [ -e "$f" ] || [ -L "$f" ]; } && e manifest "$f"; done`,
    // "Running" means answering on the socket, whatever started it.
    `if command -v ctr >/dev/null 2>&1 && [ -S ${CONTAINERD_SOCKET} ] && ${CTR} version >/dev/null 2>&1; then`,
    "  e containerd running",
    `  ${CTR} tasks ls | awk 'NR > 1 {print "task=" $1 " " $3}'`,
    `  ${CTR} containers ls -q | sed 's/^/container=/'`,
    `  if command -v crictl >/dev/null 2>&1; then e crictl found; ${CRICTL} pods -q | sed 's/^/pod=/'; fi`,
    "fi",
    "awk '{print \"mount=\" $5}' /proc/self/mountinfo",
    `for p in ${quoteAll(paths)}; do { [ -e "$p" ] || [ -L "$p" ]; } && e exists "$p"; done`,
    packagedCheck(PURGED_PATHS),
    "command -v iptables-save >/dev/null 2>&1 && iptables-save 2>/dev/null | sed 's/^/ipt4=/'",
    "command -v ip6tables-save >/dev/null 2>&1 && ip6tables-save 2>/dev/null | sed 's/^/ipt6=/'",
    `[ -f ${INSTALL_RECORD} ] && sed 's/^/record=/' ${INSTALL_RECORD}`,
    `[ -f ${POD_ROUTES_UNIT} ] && sed 's/^/podroutes=/' ${POD_ROUTES_UNIT}`,
    `[ -e /sys/class/net/${CNI_BRIDGE} ] && e pod_bridge 1`,
    "true",
  ].join("\n");
}

/** mountinfo escapes space, tab, newline and backslash as `\ooo`. */
function unescapeMountPath(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)));
}

export function parseLeftovers(output: string): NodeLeftovers {
  const probe = parseProbeOutput(output);
  const { one, all } = probe;
  return {
    kubelet: one("kubelet"),
    kubeletEnabled: one("kubelet_enabled"),
    manifests: all("manifest"),
    containerd: probe.has("containerd")
      ? {
          tasks: all("task").map((entry) => {
            const [id = "", status = ""] = entry.split(" ");
            return { id, status };
          }),
          containers: all("container").filter(Boolean),
          pods: probe.has("crictl") ? all("pod").filter(Boolean) : undefined,
        }
      : undefined,
    mounts: all("mount").map(unescapeMountPath),
    existing: all("exists"),
    iptablesSave: { iptables: all("ipt4").join("\n"), ip6tables: all("ipt6").join("\n") },
    installRecord: probe.has("record") ? all("record").join("\n") : undefined,
    packaged: all("packaged"),
    podRoutesUnit: probe.has("podroutes") ? all("podroutes").join("\n") : undefined,
    podBridge: probe.has("pod_bridge"),
  };
}

/** The bridge pod network's leftovers: its boot unit and the routes it adds, the bridge, the IPAM state. */
function podNetworkChanges(found: NodeLeftovers): PlannedChange[] {
  const changes: PlannedChange[] = [];
  if (found.podRoutesUnit !== undefined) {
    const routes = parsePodRoutesUnit(found.podRoutesUnit);
    const unit = POD_ROUTES_UNIT.split("/").at(-1) ?? POD_ROUTES_UNIT;
    changes.push({
      description: `remove ${unit} and the ${plural(routes.length, "route")} to other nodes' pod CIDRs it adds`,
      command: [
        `systemctl disable ${unit} 2>/dev/null || true`,
        ...routes.map((route) => `${routeCommand("del", route)} 2>/dev/null || true`),
        `rm -f -- ${shellQuote(POD_ROUTES_UNIT)}`,
        "systemctl daemon-reload",
      ].join("\n"),
    });
  }
  if (found.podBridge)
    changes.push({
      description: `delete the pod network's bridge ${CNI_BRIDGE} and its address leases`,
      command: `ip link delete ${CNI_BRIDGE}\nrm -rf --one-file-system -- ${shellQuote(CNI_IPAM_DIR)}`,
    });
  return changes;
}

const depth = (path: string) => path.split("/").filter(Boolean).length;
const isUnder = (path: string, dir: string) => path.startsWith(`${dir.replace(/\/+$/, "")}/`);

/**
 * The mount points strictly under `dir`, in the order to unmount them: deepest first, and of mounts
 * stacked on one path the top one (the later in mountinfo) first.
 */
export function unmountOrder(mounts: readonly string[], dir: string): string[] {
  return mounts
    .filter((mount) => isUnder(mount, dir))
    .reverse()
    .sort((a, b) => depth(b) - depth(a));
}

/** The KUBE-* chains of one table and the rules elsewhere that jump to them, as saved. */
export interface TableCleanup {
  table: string;
  chains: string[];
  /** `-A CHAIN …` lines of non-KUBE chains whose target is a KUBE-* chain. */
  jumpRules: string[];
}

const isKubeChain = (name: string) => name.startsWith("KUBE-");

/** Splits a saved rule as iptables-restore does: double quotes group, backslash escapes. */
function ruleWords(line: string): string[] {
  return [...line.matchAll(/"((?:[^"\\]|\\.)*)"|(\S+)/g)].map(([, quoted, plain]) =>
    quoted === undefined ? (plain ?? "") : quoted.replace(/\\(.)/g, "$1"),
  );
}

function ruleTarget(words: readonly string[]): string | undefined {
  const at = words.findIndex((word) => ["-j", "--jump", "-g", "--goto"].includes(word));
  return at < 0 ? undefined : words[at + 1];
}

/** From `iptables-save` output: what to remove in filter, nat and mangle; other tables stay. */
export function kubeChainCleanup(save: string): TableCleanup[] {
  const tables: TableCleanup[] = [];
  let current: TableCleanup | undefined;
  for (const line of save.split("\n")) {
    if (line.startsWith("*")) {
      const table = line.slice(1).trim();
      current = IPTABLES_TABLES.has(table) ? { table, chains: [], jumpRules: [] } : undefined;
      if (current) tables.push(current);
      continue;
    }
    if (!current) continue;
    if (line.startsWith(":")) {
      const chain = line.slice(1).split(" ")[0] ?? "";
      if (isKubeChain(chain)) current.chains.push(chain);
    } else if (line.startsWith("-A ")) {
      const words = ruleWords(line);
      const target = ruleTarget(words);
      if (!isKubeChain(words[1] ?? "") && target && isKubeChain(target)) current.jumpRules.push(line);
    }
  }
  return tables.filter((table) => table.chains.length > 0);
}

/**
 * `iptables-restore --noflush` input: per table, delete the jump rules, flush every KUBE-* chain
 * (they jump to each other), then delete them; each table is one transaction.
 */
export function restoreInput(cleanups: readonly TableCleanup[]): string {
  return cleanups
    .map(({ table, chains, jumpRules }) =>
      [
        `*${table}`,
        ...jumpRules.map((rule) => `-D${rule.slice(2)}`),
        ...chains.map((chain) => `-F ${chain}`),
        ...chains.map((chain) => `-X ${chain}`),
        "COMMIT",
      ].join("\n"),
    )
    .join("\n")
    .concat("\n");
}

/**
 * Unmounts `mounts` in the order given. A mount hidden under one mounted later over its parent only
 * comes free once that one is gone, so passes repeat while they make progress; what stays mounted
 * fails the step, and the removal after it then refuses to run (removeDirCommand).
 */
function unmountCommand(mounts: readonly string[]): string {
  return [
    `set -- ${quoteAll(mounts)}`,
    'while [ $# -gt 0 ]; do before=$#; for m in "$@"; do shift; umount -- "$m" 2>/dev/null || set -- "$@" "$m"; done; [ $# -lt "$before" ] || break; done',
    'rc=0; for m in "$@"; do umount -- "$m" || rc=1; done; exit $rc',
  ].join("\n");
}

/** `a, b, c and 4 more`: names in a description without letting it grow without bound. */
function listed(items: readonly string[], max = 5): string {
  const shown = items.slice(0, max).join(", ");
  return items.length > max ? `${shown} and ${items.length - max} more` : shown;
}

const plural = (count: number, noun: string, nouns = `${noun}s`) => `${count} ${count === 1 ? noun : nouns}`;

function containerChanges(containerd: NonNullable<NodeLeftovers["containerd"]>): PlannedChange[] {
  const changes: PlannedChange[] = [];
  if (containerd.pods && containerd.pods.length > 0) {
    changes.push({
      description: `remove ${plural(containerd.pods.length, "pod sandbox", "pod sandboxes")} through the CRI (crictl)`,
      command: `${CRICTL} rmp --force ${quoteAll(containerd.pods)}`,
    });
  }
  if (containerd.containers.length === 0) return changes;
  const running = containerd.tasks.filter((task) => task.status !== "STOPPED").map((task) => task.id);
  const ids = (list: readonly string[]) => quoteAll(list.filter((id) => containerd.containers.includes(id)));
  // Tasks first, as containerd refuses to delete a container with a task; what crictl already
  // removed with its pod is skipped.
  const loop = (list: readonly string[], body: string) =>
    list.length > 0 ? [`for id in ${ids(list)}; do exists "$id" || continue; ${body} || rc=1; done`] : [];
  changes.push({
    description: `stop and remove ${plural(containerd.containers.length, "container")} in containerd's ${K8S_NAMESPACE} namespace: ${listed(containerd.containers)}`,
    command: [
      `exists() { ${CTR} containers info "$1" >/dev/null 2>&1; }`,
      "rc=0",
      ...loop(running, `${CTR} tasks kill -s SIGKILL "$id"`),
      // --force waits for a task that is still dying from the SIGKILL.
      ...loop(
        containerd.tasks.map((task) => task.id),
        `${CTR} tasks delete --force "$id" >/dev/null`,
      ),
      ...loop(containerd.containers, `${CTR} containers delete "$id"`),
      "exit $rc",
    ].join("\n"),
  });
  return changes;
}

export const MOUNTINFO = "/proc/self/mountinfo";

/**
 * Prints, comma-separated, the mount points (unescaped) at or strictly below $real, or only strictly
 * below with BELOW_ONLY=1. A left-to-right scan, as a `\134` (backslash) may precede digits.
 */
const MOUNTS_UNDER_AWK = String.raw`function unescape(s,  out, o) {
  out = ""
  while (match(s, /\\[0-7][0-7][0-7]/)) {
    o = substr(s, RSTART + 1, 3)
    out = out substr(s, 1, RSTART - 1) sprintf("%c", substr(o, 1, 1) * 64 + substr(o, 2, 1) * 8 + substr(o, 3, 1))
    s = substr(s, RSTART + 4)
  }
  return out s
}
BEGIN { d = ENVIRON["real"]; sub(/\/+$/, "", d); below = ENVIRON["BELOW_ONLY"] == 1 }
{ m = unescape($5) }
(m == d && !below) || substr(m, 1, length(d) + 1) == d "/" { list = list (list == "" ? "" : ", ") m }
END { if (list != "") print list }`;

/**
 * Removes `dir` (or, for a mount point, empties it), re-reading `mountinfo` right before: --one-file-system
 * and -xdev only compare device numbers, so a bind mount from the same filesystem left by a failed
 * unmount would be entered and its data deleted. Then the command refuses instead.
 */
export function removeDirCommand(
  dir: string,
  options: { mountPoint?: boolean; mountinfo?: string } = {},
): string {
  const { mountPoint = false, mountinfo = MOUNTINFO } = options;
  // mountinfo has canonical paths; a symlink on the way to `dir` must not hide a mount.
  return [
    `dir=${shellQuote(dir)}`,
    'real=$(cd -P -- "$dir" 2>/dev/null && pwd -P) || real=$dir',
    `mounted=$(real=$real BELOW_ONLY=${mountPoint ? 1 : 0} awk ${shellQuote(MOUNTS_UNDER_AWK)} ${shellQuote(mountinfo)}) || exit 1`,
    `if [ -n "$mounted" ]; then printf 'refusing to remove %s: still mounted ${mountPoint ? "below" : "at or below"} it: %s; unmount them, then run reset again\\n' "$dir" "$mounted" >&2; exit 1; fi`,
    mountPoint ? 'find "$dir" -xdev -mindepth 1 -delete' : 'rm -rf --one-file-system -- "$dir"',
  ].join("\n");
}

function removeChange(path: string, mounts: readonly string[]): PlannedChange {
  if (path === KUBEFORGE_CNI_CONFIG)
    return { description: `remove kubeforge's CNI config ${path}`, command: `rm -f -- ${shellQuote(path)}` };
  // A mount point (a disk of its own) stays; only its own filesystem is emptied.
  if (mounts.includes(path))
    return {
      description: `remove everything in ${path} (a mount point: the directory stays)`,
      command: removeDirCommand(path, { mountPoint: true }),
    };
  return { description: `remove ${path}`, command: removeDirCommand(path) };
}

function iptablesChanges(found: NodeLeftovers): PlannedChange[] {
  return (["iptables", "ip6tables"] as const).flatMap((tool) => {
    const cleanups = kubeChainCleanup(found.iptablesSave[tool]);
    if (cleanups.length === 0) return [];
    const chains = cleanups.reduce((sum, table) => sum + table.chains.length, 0);
    const rules = cleanups.reduce((sum, table) => sum + table.jumpRules.length, 0);
    const tables = cleanups.map((table) => table.table).join(", ");
    return [
      {
        description: `remove ${plural(chains, "KUBE-* chain")} and the ${plural(rules, "rule")} jumping to them (${tool}: ${tables})`,
        command: `${tool}-restore --noflush`,
        stdin: restoreInput(cleanups),
      },
    ];
  });
}

function purgeChanges(found: NodeLeftovers): PlannedChange[] {
  const changes: PlannedChange[] = [];
  const exists = (path: string) => found.existing.includes(path);
  const record = parseInstallRecord(found.installRecord);
  // Debian package names only: anything else (an option, say) is nothing to hand to dpkg.
  const packages = record.packages
    .map((entry) => entry.name)
    .filter((name) => /^[a-z0-9][a-z0-9+.-]+$/.test(name));
  if (exists(KUBELET_UNIT) && found.kubeletEnabled === "enabled" && !found.packaged.includes(KUBELET_UNIT)) {
    changes.push({ description: "disable the kubelet unit", command: "systemctl disable kubelet" });
  }
  const fixed = PURGED_PATHS.filter((path) => exists(path) && !found.packaged.includes(path));
  const recorded = recordedFiles(found).filter((path) => !found.packaged.includes(path));
  const files = [...new Set([...fixed, ...recorded])];
  if (files.length > 0) {
    const unitChanged = files.some((path) => path === KUBELET_UNIT || path === KUBELET_DROP_IN);
    changes.push({
      description: `remove the files kubeforge installed: ${listed(files)}`,
      command: [
        `rm -f -- ${quoteAll(files)}`,
        `if [ -d ${dirname(KUBELET_DROP_IN)} ]; then rmdir --ignore-fail-on-non-empty ${dirname(KUBELET_DROP_IN)}; fi`,
        ...(unitChanged ? ["systemctl daemon-reload"] : []),
      ].join(" && "),
    });
  }
  if (packages.length > 0) {
    changes.push({
      description: `purge the packages kubeforge installed: ${listed(packages)}`,
      command: `DEBIAN_FRONTEND=noninteractive dpkg --purge ${quoteAll(packages)}`,
    });
  }
  // Last, so a purge that failed above can be retried from the same record.
  if (exists(NODE_STATE_DIR)) {
    changes.push({
      description: `remove kubeforge's install record and state (${NODE_STATE_DIR})`,
      command: removeDirCommand(NODE_STATE_DIR),
    });
  }
  return changes;
}

/** What --purge leaves to the package manager: the files it would remove that a package owns. */
export function packagedFilesKept(found: NodeLeftovers): string[] {
  const candidates = [
    ...PURGED_PATHS.filter((path) => found.existing.includes(path)),
    ...recordedFiles(found),
  ];
  return [...new Set(candidates.filter((path) => found.packaged.includes(path)))];
}

/** The changes that reset this node, in order; empty for a clean node. */
export function planReset(found: NodeLeftovers, options: ResetOptions): PlannedChange[] {
  const changes: PlannedChange[] = [];
  if (KUBELET_RUNNING.has(found.kubelet)) {
    changes.push({ description: "stop the kubelet", command: "systemctl stop kubelet" });
  }
  if (found.manifests.length > 0) {
    const names = found.manifests.map((path) => path.slice(MANIFESTS_DIR.length + 1));
    changes.push({
      description: `remove the static pod manifests: ${listed(names)}`,
      command: `rm -rf --one-file-system -- ${quoteAll(found.manifests)}`,
    });
  }
  if (found.containerd) changes.push(...containerChanges(found.containerd));
  const unmounts = unmountOrder(found.mounts, KUBELET_DIR);
  if (unmounts.length > 0) {
    changes.push({
      description: `unmount ${plural(unmounts.length, "filesystem")} under ${KUBELET_DIR}, deepest first: ${listed(unmounts, 3)}`,
      command: unmountCommand(unmounts),
    });
  }
  for (const path of removedPaths(options)) {
    if (found.existing.includes(path)) changes.push(removeChange(path, found.mounts));
  }
  changes.push(...podNetworkChanges(found));
  changes.push(...iptablesChanges(found));
  if (options.purge) changes.push(...purgeChanges(found));
  return changes;
}
