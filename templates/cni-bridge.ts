// The bridge pod network (`addons.cni: bridge`) as pure values: the CNI conflist a node gets for its
// own pod CIDR(s), the routes that carry the other nodes' pod CIDRs host to host (no overlay, so the
// nodes must reach each other's InternalIPs directly, as flannel's host-gw), and the systemd unit
// that puts those routes back at boot. Node data comes from the API, so every address and CIDR is
// parsed before it reaches a file or a command line.
import { type Cidr, parseCidr, parseIp } from "../config/net.js";

/**
 * The conflist's spec version. Debian 12's containernetworking-plugins 1.1.1 (and upstream plugins
 * from 1.0) accept 0.1.0 to 1.0.0, as does containerd ≥1.6's libcni; plugins before 1.0 (e.g.
 * Ubuntu 22.04's 0.9.1) stop at 0.4.0.
 */
export const CNI_VERSION = "1.0.0";
export const CNI_NETWORK = "kubeforge";
/** The Linux bridge a node's pods attach to; its address is the pods' gateway. */
export const CNI_BRIDGE = "kubeforge0";
/** Where host-local keeps the addresses it leased on the node (its default dataDir, per network name). */
export const CNI_IPAM_DIR = `/var/lib/cni/networks/${CNI_NETWORK}`;
/** iproute2's path on Debian and Ubuntu, merged /usr or not. */
const IP = "/sbin/ip";

/** What the pod network needs to know of a Node. */
export interface NodeNetwork {
  name: string;
  /** spec.podCIDRs: one, or one per IP family (dual-stack). */
  podCIDRs: readonly string[];
  /** status.addresses of type InternalIP. */
  internalIPs: readonly string[];
}

/** The route to another node's pod CIDR, through that node's InternalIP of the same family. */
export interface PodRoute {
  cidr: string;
  via: string;
  /** The node the CIDR belongs to. */
  node: string;
}

function cidrOf(text: string, node: string): Cidr {
  const cidr = parseCidr(text);
  if (!cidr) throw new Error(`${node}: pod CIDR "${text}" is not a CIDR`);
  return cidr;
}

/** The conflist for a node's pod CIDRs (one host-local range per family), as written to disk. */
export function renderBridgeConflist(node: string, podCIDRs: readonly string[]): string {
  const cidrs = podCIDRs.map((text) => cidrOf(text, node));
  if (cidrs.length === 0 || new Set(cidrs.map((cidr) => cidr.family)).size !== cidrs.length)
    throw new Error(`${node}: pod CIDRs [${podCIDRs.join(", ")}] are not one CIDR per IP family`);
  const conflist = {
    cniVersion: CNI_VERSION,
    name: CNI_NETWORK,
    plugins: [
      {
        type: "bridge",
        bridge: CNI_BRIDGE,
        isGateway: true,
        // Pods reach beyond the pod CIDR (other nodes' pods too) masqueraded as the node.
        ipMasq: true,
        // A pod can reach itself through a Service (kube-proxy sends it back over the bridge).
        hairpinMode: true,
        ipam: {
          type: "host-local",
          ranges: cidrs.map((cidr) => [{ subnet: cidr.text }]),
          routes: cidrs.map((cidr) => ({ dst: cidr.family === 4 ? "0.0.0.0/0" : "::/0" })),
        },
      },
      // hostPort; the runtime sets up loopback itself.
      { type: "portmap", capabilities: { portMappings: true } },
    ],
  };
  return `${JSON.stringify(conflist, null, 2)}\n`;
}

/** For every node, the routes to every other node's pod CIDRs; nodes and routes in name order. */
export function podRoutes(nodes: readonly NodeNetwork[]): Map<string, PodRoute[]> {
  const sorted = [...nodes].sort((a, b) => a.name.localeCompare(b.name));
  const all = sorted.flatMap((node) =>
    node.podCIDRs.map((text): PodRoute => {
      const cidr = cidrOf(text, node.name);
      const via = node.internalIPs.find((ip) => parseIp(ip)?.family === cidr.family);
      if (!via)
        throw new Error(
          `${node.name}: no IPv${cidr.family} InternalIP to route its pod CIDR ${text} through (status.addresses: ${node.internalIPs.join(", ") || "none"})`,
        );
      return { cidr: cidr.text, via, node: node.name };
    }),
  );
  return new Map(sorted.map((node) => [node.name, all.filter((route) => route.node !== node.name)]));
}

const ROUTE_LINE = new RegExp(`^ExecStart=-${IP} route replace (\\S+) via (\\S+)$`);

/** The oneshot unit that adds `routes` at boot, once the network is online. */
export function renderPodRoutesUnit(routes: readonly PodRoute[]): string {
  return [
    "# Written by kubeforge (addons.cni: bridge); rewritten when nodes join or leave.",
    "[Unit]",
    "Description=kubeforge routes to the other nodes' pod CIDRs",
    "Wants=network-online.target",
    "After=network-online.target",
    "",
    "[Service]",
    "Type=oneshot",
    "RemainAfterExit=yes",
    // `-`: a node that is down must not keep the routes to the others from being added.
    ...routes.map((route) => `ExecStart=-${routeCommand("replace", route)}`),
    "",
    "[Install]",
    "WantedBy=multi-user.target",
    "",
  ].join("\n");
}

/**
 * The routes a unit written by renderPodRoutesUnit adds: what kubeforge routed on the last run.
 * Lines that are not such a route (an edited file) are left out, so they never reach a command.
 */
export function parsePodRoutesUnit(unit: string): Array<Pick<PodRoute, "cidr" | "via">> {
  return unit.split("\n").flatMap((line) => {
    const [, cidr = "", via = ""] = ROUTE_LINE.exec(line) ?? [];
    return parseCidr(cidr) && parseIp(via) ? [{ cidr, via }] : [];
  });
}

/** The `ip route` command line that adds (or moves) or removes the route. */
export function routeCommand(verb: "replace" | "del", route: Pick<PodRoute, "cidr" | "via">): string {
  return `${IP} route ${verb} ${route.cidr} via ${route.via}`;
}
