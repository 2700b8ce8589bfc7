// The bridge pod network (`addons.cni: bridge`). Once the nodes have registered and
// kube-controller-manager has given each a pod CIDR, every node gets the CNI conflist for its own
// CIDR and routes to every other node's, now and (through a oneshot unit) at every boot. Each host
// is probed first and only the difference is applied, so a re-run changes nothing, and the routes to
// a node that left (the unit lists what kubeforge routed last time) are removed.
import { posix } from "node:path";
import type { ClusterApi } from "../api/cluster-api.js";
import type { ApiObject } from "../api/objects.js";
import type { ClusterFile } from "../config/schema.js";
import { parseProbeOutput } from "../facts/probe-output.js";
import type { ClusterHost } from "../hosts/open.js";
import { CNI_CONFIG_DIR, KUBEFORGE_CNI_CONFIG, POD_ROUTES_UNIT } from "../node/paths.js";
import {
  type NodeNetwork,
  type PodRoute,
  parsePodRoutesUnit,
  podRoutes,
  renderBridgeConflist,
  renderPodRoutesUnit,
  routeCommand,
} from "../templates/cni-bridge.js";
import { InternalError } from "../workflow/errors.js";
import type { HostPhase, HostStep, LocalPhase, Step } from "../workflow/phase.js";
import { seconds, type WaitTiming, waitFor } from "../workflow/wait.js";

export interface PodNetworkRun {
  cluster: ClusterFile;
  hosts: readonly ClusterHost[];
  /** The cluster's API (empty in a dry run before the cluster exists); absent when nothing opened it. */
  api?: ClusterApi;
  /** How long and how often to poll the API; the defaults suit a real cluster, tests shorten them. */
  wait?: WaitTiming;
  /**
   * Every host of the cluster file, connected on demand: a node outside the run (a `join --hosts`
   * of other workers) that is registered still needs routes to the new nodes' pods.
   */
  clusterHosts?: readonly ClusterHost[];
  /** Every host's Node as the API has it; filled by the pod-network phase for its per-host phase. */
  podNetworkNodes?: readonly NodeNetwork[];
}

/** What the phase finds on a node before it changes anything. */
export interface PodNetworkState {
  conflist: string | undefined;
  unit: string | undefined;
  unitEnabled: boolean;
  /** The node's routes with a gateway, as `<cidr> via <address>`. */
  routes: ReadonlySet<string>;
  /** File names in the CNI config directory. */
  cniConfigs: readonly string[];
}

/** One change to a node: a file written, then a command run (either may be absent). */
export interface NodeChange {
  description: string;
  write?: { path: string; content: string };
  command?: string;
}

type PodNetworkStep = Step<PodNetworkRun>;

const DEFAULT_WAIT: WaitTiming = { timeoutMs: 180_000, intervalMs: 2_000 };
const UNIT_NAME = posix.basename(POD_ROUTES_UNIT);
const CONFLIST_NAME = posix.basename(KUBEFORGE_CNI_CONFIG);

function nodeNetwork(node: ApiObject): NodeNetwork {
  const spec = node.spec as { podCIDR?: string; podCIDRs?: string[] } | undefined;
  const status = node.status as { addresses?: Array<{ type: string; address: string }> } | undefined;
  return {
    name: node.metadata.name,
    podCIDRs: spec?.podCIDRs ?? (spec?.podCIDR ? [spec.podCIDR] : []),
    internalIPs: (status?.addresses ?? []).filter((a) => a.type === "InternalIP").map((a) => a.address),
  };
}

interface Missing {
  unregistered: string[];
  withoutCidr: string[];
}

function describeMissing({ unregistered, withoutCidr }: Missing): string {
  return [
    withoutCidr.length > 0 ? `no pod CIDR yet: ${withoutCidr.join(", ")}` : "",
    unregistered.length > 0 ? `no Node yet: ${unregistered.join(", ")}` : "",
  ]
    .filter(Boolean)
    .join("; ");
}

/**
 * Once every host of the run has a Node with a pod CIDR: the Nodes of all the cluster file's hosts
 * that have one (routes go to each); undefined in a dry run without a cluster. The CIDRs come from
 * kube-controller-manager (--allocate-node-cidrs), a moment after each node registers.
 */
async function readNodes(step: PodNetworkStep): Promise<NodeNetwork[] | undefined> {
  const { api, hosts, cluster } = step.data;
  if (!api) {
    if (step.dryRun) return undefined;
    throw new InternalError("pod-network has no API client: the control-plane phases must run before it");
  }
  // A dry run looks once: what it would wait for may only come from the changes it shows.
  const timing = step.dryRun ? { timeoutMs: 0, intervalMs: 0 } : (step.data.wait ?? DEFAULT_WAIT);
  const result = await waitFor(
    {
      what: "a pod CIDR on every node",
      timing,
      signal: step.signal,
      log: step.log,
      describe: describeMissing,
    },
    async () => {
      const nodes = new Map(
        (await api.list("v1", "Node")).map((node) => [node.metadata.name, nodeNetwork(node)]),
      );
      const found = hosts.map((host) => ({ host: host.name, node: nodes.get(host.name) }));
      const missing: Missing = {
        unregistered: found.filter(({ node }) => !node).map(({ host }) => host),
        withoutCidr: found.filter(({ node }) => node?.podCIDRs.length === 0).map(({ host }) => host),
      };
      // The run's hosts must be there; routes go to every node of the cluster file that is (a join
      // configures the new workers, but the control plane keeps its routes to the workers not joined now).
      const routed = cluster.spec.hosts.flatMap((host) => {
        const node = nodes.get(host.name);
        return node && node.podCIDRs.length > 0 ? [node] : [];
      });
      return missing.unregistered.length + missing.withoutCidr.length > 0
        ? { done: false as const, pending: missing }
        : { done: true as const, value: routed };
    },
  );
  if (result.done) return result.value;
  if (step.dryRun) return undefined;
  const { unregistered, withoutCidr } = result.pending;
  const { podSubnet } = cluster.spec.kubernetes.networking;
  throw new Error(
    [
      `after ${seconds(timing.timeoutMs)}:`,
      withoutCidr.length > 0
        ? `no pod CIDR on ${withoutCidr.join(", ")}: kube-controller-manager gives each Node one when it runs with --allocate-node-cidrs=true --cluster-cidr=${podSubnet}; check its log on a control plane (crictl logs), and that ${podSubnet} has a range left for every node`
        : "",
      unregistered.length > 0
        ? `no Node for ${unregistered.join(", ")}: its kubelet has not registered; check it there (journalctl -u kubelet)`
        : "",
    ]
      .filter(Boolean)
      .join("\n"),
  );
}

function listRoutes(routes: ReadonlyArray<Pick<PodRoute, "cidr" | "via"> & { node?: string }>): string {
  return routes
    .map((route) => `${route.cidr} via ${route.via}${route.node ? ` (${route.node})` : ""}`)
    .join(", ");
}

/** What to change on `node` so it has the conflist for its pod CIDRs and routes to every other node's. */
export function planPodNetwork(
  node: string,
  nodes: readonly NodeNetwork[],
  state: PodNetworkState,
): NodeChange[] {
  const own = nodes.find((candidate) => candidate.name === node);
  if (!own) throw new InternalError(`${node} is not among the nodes the pod network was planned for`);
  const conflist = renderBridgeConflist(node, own.podCIDRs);
  const routes = podRoutes(nodes).get(node) ?? [];
  const unit = routes.length > 0 ? renderPodRoutesUnit(routes) : undefined;
  const live = (route: Pick<PodRoute, "cidr" | "via">) => state.routes.has(`${route.cidr} via ${route.via}`);
  const routed = new Set(routes.map((route) => route.cidr));

  const changes: NodeChange[] = [];
  if (state.conflist !== conflist)
    changes.push({
      description: `write ${KUBEFORGE_CNI_CONFIG} (pod CIDR ${own.podCIDRs.join(", ")})`,
      write: { path: KUBEFORGE_CNI_CONFIG, content: conflist },
    });
  // Before the unit is rewritten: until then it still says what kubeforge routed.
  const stale = parsePodRoutesUnit(state.unit ?? "").filter(
    (route) => !routed.has(route.cidr) && live(route),
  );
  if (stale.length > 0)
    changes.push({
      description: `remove the routes to pod CIDRs whose nodes left: ${listRoutes(stale)}`,
      command: stale.map((route) => routeCommand("del", route)).join(" && "),
    });
  const missing = routes.filter((route) => !live(route));
  if (missing.length > 0)
    changes.push({
      description: `route the other nodes' pod CIDRs: ${listRoutes(missing)}`,
      command: missing.map((route) => routeCommand("replace", route)).join(" && "),
    });
  if (unit !== undefined && state.unit !== unit)
    changes.push({
      description: `write ${POD_ROUTES_UNIT} (the same ${routes.length} route${routes.length === 1 ? "" : "s"} at boot)`,
      write: { path: POD_ROUTES_UNIT, content: unit },
      command: "systemctl daemon-reload",
    });
  if (unit !== undefined && !state.unitEnabled)
    changes.push({
      description: `enable ${UNIT_NAME} (runs at boot)`,
      command: `systemctl enable ${UNIT_NAME}`,
    });
  if (unit === undefined && state.unit !== undefined)
    changes.push({
      description: `remove ${POD_ROUTES_UNIT} (no other node to route to)`,
      command: `systemctl disable ${UNIT_NAME} && rm -f ${POD_ROUTES_UNIT} && systemctl daemon-reload`,
    });
  return changes;
}

/** The read-only probe: kubeforge's two files, the unit's state, the CNI configs and the routes. */
export function podNetworkProbe(): string {
  return [
    'e() { printf \'%s=%s\\n\' "$1" "$2"; }',
    `[ -f ${KUBEFORGE_CNI_CONFIG} ] && e conflist "$(base64 -w0 < ${KUBEFORGE_CNI_CONFIG})"`,
    `[ -f ${POD_ROUTES_UNIT} ] && e unit "$(base64 -w0 < ${POD_ROUTES_UNIT})"`,
    `e enabled "$(systemctl is-enabled ${UNIT_NAME} 2>/dev/null)"`,
    `for f in ${CNI_CONFIG_DIR}/*; do [ -f "$f" ] && e cni_config "\${f##*/}"; done`,
    "ip -4 route show | sed 's/^/route=/'",
    "ip -6 route show 2>/dev/null | sed 's/^/route=/'",
    "true",
  ].join("\n");
}

export function parsePodNetworkState(output: string): PodNetworkState {
  const probe = parseProbeOutput(output);
  const decoded = (key: string) =>
    probe.has(key) ? Buffer.from(probe.one(key), "base64").toString("utf8") : undefined;
  return {
    conflist: decoded("conflist"),
    unit: decoded("unit"),
    unitEnabled: probe.one("enabled") === "enabled",
    routes: new Set(
      probe.all("route").flatMap((line) => {
        const [, cidr, via] = /^(\S+) via (\S+)/.exec(line) ?? [];
        return cidr && via ? [`${cidr} via ${via}`] : [];
      }),
    ),
    cniConfigs: probe.all("cni_config"),
  };
}

/** Configs the runtime would load instead of kubeforge's: it takes the first by name. */
function shadowingConfigs(state: PodNetworkState): string[] {
  return state.cniConfigs.filter((name) => /\.(conf|conflist|json)$/.test(name) && name < CONFLIST_NAME);
}

async function applyChange(step: HostStep<PodNetworkRun, ClusterHost>, change: NodeChange): Promise<void> {
  const { host, sudo } = step.host;
  if (change.write)
    await host.writeFile(change.write.path, change.write.content, { sudo, signal: step.signal, mode: 0o644 });
  if (change.command) await host.exec(change.command, { sudo, signal: step.signal, timeoutMs: 60_000 });
}

const nodeConfigPhase: HostPhase<PodNetworkRun, ClusterHost> = {
  id: "node-config",
  title: "Write each node's CNI config and its routes to the other nodes' pod CIDRs",
  // The run's hosts, and the cluster's other registered nodes: they need routes to the run's.
  hosts: (run) =>
    (run.clusterHosts ?? run.hosts).filter(
      (host) => run.hosts.includes(host) || run.podNetworkNodes?.some((node) => node.name === host.name),
    ),
  run: async (step) => {
    // Run alone (`phase pod-network/node-config`), each host reads the nodes itself.
    const nodes = step.data.podNetworkNodes ?? (await readNodes(step));
    if (!nodes) {
      // A dry run before the cluster exists: the CIDRs are not known yet, only what will be done.
      await step.change(
        `write ${KUBEFORGE_CNI_CONFIG} for this node's pod CIDR and route the other nodes' (once they have CIDRs)`,
        async () => undefined,
      );
      return;
    }
    const { stdout } = await step.host.host.exec(podNetworkProbe(), {
      sudo: step.host.sudo,
      signal: step.signal,
      timeoutMs: 30_000,
    });
    const state = parsePodNetworkState(stdout);
    for (const name of shadowingConfigs(state))
      step.warn(
        `${CNI_CONFIG_DIR}/${name} sorts before ${CONFLIST_NAME}: the container runtime uses the first config by name, so pods get that network; remove it, or set addons.cni: none`,
      );
    for (const change of planPodNetwork(step.host.name, nodes, state))
      await step.change(change.description, () => applyChange(step, change));
  },
};

export const podNetworkPhase: LocalPhase<PodNetworkRun, ClusterHost> = {
  id: "pod-network",
  title: "Set up the bridge pod network",
  help: `addons.cni: bridge. Waits until every node has a pod CIDR (kube-controller-manager assigns them), then writes each node's ${KUBEFORGE_CNI_CONFIG} and routes the other nodes' pod CIDRs through their InternalIPs, now and at boot (${UNIT_NAME}). The nodes must reach each other's InternalIPs directly (one network segment). Does nothing with addons.cni: none.`,
  runIf: (run) => run.cluster.spec.addons.cni === "bridge",
  run: async (step) => {
    const nodes = await readNodes(step);
    // Planned once here, so a Node without a usable InternalIP fails the phase once, not on every host.
    if (nodes) podRoutes(nodes);
    step.data.podNetworkNodes = nodes;
    step.log(
      nodes
        ? `pod CIDRs: ${nodes.map((node) => `${node.name} ${node.podCIDRs.join(",")}`).join("; ")}`
        : "dry run: the pod CIDRs are known once the nodes register",
    );
  },
  phases: [nodeConfigPhase],
};
