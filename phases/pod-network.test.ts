import { describe, expect, it } from "vitest";
import { MemoryClusterApi } from "../api/memory-api.js";
import type { ApiObject } from "../api/objects.js";
import { clusterFile } from "../certs/testing.js";
import type { ClusterFile } from "../config/schema.js";
import type { ExecResult, Host, WriteFileOptions } from "../hosts/host.js";
import type { ClusterHost } from "../hosts/open.js";
import { KUBEFORGE_CNI_CONFIG, POD_ROUTES_UNIT } from "../node/paths.js";
import type { NodeNetwork } from "../templates/cni-bridge.js";
import type { RunEvent } from "../workflow/events.js";
import { runWorkflow } from "../workflow/runner.js";
import {
  type PodNetworkRun,
  type PodNetworkState,
  parsePodNetworkState,
  planPodNetwork,
  podNetworkPhase,
  podNetworkProbe,
} from "./pod-network.js";

const UNIT = "kubeforge-pod-routes.service";

const NODES: NodeNetwork[] = [
  { name: "cp1", podCIDRs: ["198.19.0.0/24"], internalIPs: ["198.18.0.11"] },
  { name: "cp2", podCIDRs: ["198.19.1.0/24"], internalIPs: ["198.18.0.12"] },
  { name: "w1", podCIDRs: ["198.19.2.0/24"], internalIPs: ["198.18.0.30"] },
];

/**
 * A node as the phase sees it over its Host: kubeforge's files, the routes and the unit's state,
 * answered through the probe; the commands the phase sends change them.
 */
class FakeNode implements Host {
  readonly user = "root";
  readonly files = new Map<string, { content: string; mode: number | undefined }>();
  /** Destination → gateway. */
  readonly routes = new Map<string, string>();
  readonly commands: string[] = [];
  enabled = false;
  otherCniConfigs: string[] = [];

  constructor(readonly label: string) {}

  text(path: string): string | undefined {
    return this.files.get(path)?.content;
  }

  async exec(command: string): Promise<ExecResult> {
    if (command === podNetworkProbe()) return { exitCode: 0, stdout: this.probeOutput(), stderr: "" };
    this.commands.push(command);
    for (const part of command.split(" && ")) this.#run(part);
    return { exitCode: 0, stdout: "", stderr: "" };
  }

  #run(part: string): void {
    const route = /^\/sbin\/ip route (replace|del) (\S+) via (\S+)$/.exec(part);
    if (route?.[1] === "replace") this.routes.set(route[2] ?? "", route[3] ?? "");
    else if (route?.[1] === "del") this.routes.delete(route[2] ?? "");
    else if (part === `systemctl enable ${UNIT}`) this.enabled = true;
    else if (part === `systemctl disable ${UNIT}`) this.enabled = false;
    else if (part === `rm -f ${POD_ROUTES_UNIT}`) this.files.delete(POD_ROUTES_UNIT);
    else if (part !== "systemctl daemon-reload") throw new Error(`unexpected command: ${part}`);
  }

  probeOutput(): string {
    const base64 = (path: string) => Buffer.from(this.text(path) ?? "").toString("base64");
    return [
      ...(this.files.has(KUBEFORGE_CNI_CONFIG) ? [`conflist=${base64(KUBEFORGE_CNI_CONFIG)}`] : []),
      ...(this.files.has(POD_ROUTES_UNIT) ? [`unit=${base64(POD_ROUTES_UNIT)}`] : []),
      `enabled=${this.enabled ? "enabled" : this.files.has(POD_ROUTES_UNIT) ? "disabled" : ""}`,
      ...[
        ...this.otherCniConfigs,
        ...(this.files.has(KUBEFORGE_CNI_CONFIG) ? ["10-kubeforge-bridge.conflist"] : []),
      ]
        .sort()
        .map((name) => `cni_config=${name}`),
      "route=default via 198.18.0.1 dev eth0 proto static",
      "route=198.18.0.0/24 dev eth0 proto kernel scope link src 198.18.0.11",
      ...[...this.routes].map(([cidr, via]) => `route=${cidr} via ${via} dev eth0`),
      "",
    ].join("\n");
  }

  async readFile(): Promise<Buffer> {
    throw new Error("the phase reads files through its probe");
  }

  async writeFile(path: string, data: string | Buffer, options?: WriteFileOptions): Promise<void> {
    this.files.set(path, { content: data.toString(), mode: options?.mode });
  }

  async upload(): Promise<void> {
    throw new Error("not used");
  }

  async connect(): Promise<void> {}
  async close(): Promise<void> {}
  toString(): string {
    return this.label;
  }
}

function nodeObject(name: string, address: string, podCIDR?: string): ApiObject {
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: { name },
    spec: podCIDR ? { podCIDR, podCIDRs: [podCIDR] } : {},
    status: {
      addresses: [
        { type: "InternalIP", address },
        { type: "Hostname", address: name },
      ],
    },
  };
}

/** cp1, cp2, w1 registered without pod CIDRs; kube-controller-manager assigns them from the `after`-th read on. */
function cluster(after = 3, cni: "bridge" | "none" = "bridge") {
  const file: ClusterFile = structuredClone(clusterFile());
  file.spec.addons.cni = cni;
  const api = new MemoryClusterApi(
    NODES.map((node) => nodeObject(node.name, node.internalIPs[0] ?? "")),
    (self) => {
      if (self.reads < after) return;
      for (const node of NODES) {
        const object = self.object({ apiVersion: "v1", kind: "Node", name: node.name });
        if (object) object.spec = { podCIDR: node.podCIDRs[0], podCIDRs: node.podCIDRs };
      }
    },
  );
  const nodes = new Map(file.spec.hosts.map((spec) => [spec.name, new FakeNode(spec.name)]));
  const hosts: ClusterHost[] = file.spec.hosts.map((spec) => ({
    name: spec.name,
    spec,
    host: nodes.get(spec.name) as FakeNode,
    sudo: false,
  }));
  const data = (): PodNetworkRun => ({
    cluster: file,
    hosts,
    api,
    wait: { timeoutMs: 2_000, intervalMs: 1 },
  });
  return { file, api, nodes, hosts, data };
}

async function run(data: PodNetworkRun, dryRun = false) {
  const events: RunEvent[] = [];
  const result = runWorkflow(
    { command: "test", phases: [podNetworkPhase] },
    {
      data,
      dryRun,
      concurrency: 10,
      emit: (event) => events.push(event),
      signal: new AbortController().signal,
    },
  );
  return { result, events };
}

const empty: PodNetworkState = {
  conflist: undefined,
  unit: undefined,
  unitEnabled: false,
  routes: new Set(),
  cniConfigs: [],
};

describe("planPodNetwork", () => {
  it("gives a bare node its conflist, routes to the others, and the boot unit, enabled", () => {
    const changes = planPodNetwork("cp1", NODES, empty);
    expect(changes.map((change) => change.description)).toEqual([
      `write ${KUBEFORGE_CNI_CONFIG} (pod CIDR 198.19.0.0/24)`,
      "route the other nodes' pod CIDRs: 198.19.1.0/24 via 198.18.0.12 (cp2), 198.19.2.0/24 via 198.18.0.30 (w1)",
      `write ${POD_ROUTES_UNIT} (the same 2 routes at boot)`,
      `enable ${UNIT} (runs at boot)`,
    ]);
    expect(changes.map((change) => change.command)).toEqual([
      undefined,
      "/sbin/ip route replace 198.19.1.0/24 via 198.18.0.12 && /sbin/ip route replace 198.19.2.0/24 via 198.18.0.30",
      "systemctl daemon-reload",
      `systemctl enable ${UNIT}`,
    ]);
  });

  const converged = (node: string, nodes = NODES): PodNetworkState => {
    const changes = planPodNetwork(node, nodes, empty);
    const routes = nodes
      .filter((other) => other.name !== node)
      .map((other) => `${other.podCIDRs[0]} via ${other.internalIPs[0]}`);
    return {
      conflist: changes.find((change) => change.write?.path === KUBEFORGE_CNI_CONFIG)?.write?.content,
      unit: changes.find((change) => change.write?.path === POD_ROUTES_UNIT)?.write?.content,
      unitEnabled: true,
      routes: new Set(routes),
      cniConfigs: ["10-kubeforge-bridge.conflist"],
    };
  };

  it("changes nothing on a node that has it all", () => {
    expect(planPodNetwork("w1", NODES, converged("w1"))).toEqual([]);
  });

  it("removes the route to a node that left, then rewrites the unit without it", () => {
    const changes = planPodNetwork("cp1", NODES.slice(0, 2), converged("cp1"));
    expect(changes.map(({ description, command }) => ({ description, command }))).toEqual([
      {
        description: "remove the routes to pod CIDRs whose nodes left: 198.19.2.0/24 via 198.18.0.30",
        command: "/sbin/ip route del 198.19.2.0/24 via 198.18.0.30",
      },
      {
        description: `write ${POD_ROUTES_UNIT} (the same 1 route at boot)`,
        command: "systemctl daemon-reload",
      },
    ]);
  });

  it("removes the unit when no other node is left", () => {
    const changes = planPodNetwork("cp1", NODES.slice(0, 1), converged("cp1", NODES.slice(0, 2)));
    expect(changes.map((change) => change.command)).toEqual([
      "/sbin/ip route del 198.19.1.0/24 via 198.18.0.12",
      `systemctl disable ${UNIT} && rm -f ${POD_ROUTES_UNIT} && systemctl daemon-reload`,
    ]);
  });

  it("moves a route whose node has a new address, and removes nothing", () => {
    const moved = NODES.map((node) =>
      node.name === "w1" ? { ...node, internalIPs: ["198.18.0.31"] } : node,
    );
    const changes = planPodNetwork("cp1", moved, converged("cp1"));
    expect(changes.map((change) => change.command)).toEqual([
      "/sbin/ip route replace 198.19.2.0/24 via 198.18.0.31",
      "systemctl daemon-reload",
    ]);
  });

  it("leaves a stale route alone when it is already gone", () => {
    const state = { ...converged("cp1"), routes: new Set(["198.19.1.0/24 via 198.18.0.12"]) };
    expect(planPodNetwork("cp1", NODES.slice(0, 2), state).map((change) => change.command)).toEqual([
      "systemctl daemon-reload",
    ]);
  });
});

describe("parsePodNetworkState", () => {
  it("reads the files, the unit's state, the CNI configs and the gateway routes", () => {
    const output = [
      `conflist=${Buffer.from("{}\n").toString("base64")}`,
      "enabled=disabled",
      "cni_config=05-other.conf",
      "cni_config=10-kubeforge-bridge.conflist",
      "route=default via 198.18.0.1 dev eth0 proto dhcp",
      "route=198.18.0.0/24 dev eth0 proto kernel scope link src 198.18.0.11",
      "route=198.19.1.0/24 via 198.18.0.12 dev eth0",
      "route=2001:2:0:1::/64 via 2001:2:0:ff::12 dev eth0 metric 1024 pref medium",
      "",
    ].join("\n");
    expect(parsePodNetworkState(output)).toEqual({
      conflist: "{}\n",
      unit: undefined,
      unitEnabled: false,
      routes: new Set([
        "default via 198.18.0.1",
        "198.19.1.0/24 via 198.18.0.12",
        "2001:2:0:1::/64 via 2001:2:0:ff::12",
      ]),
      cniConfigs: ["05-other.conf", "10-kubeforge-bridge.conflist"],
    });
  });
});

describe("pod-network phase", () => {
  it("waits for every pod CIDR, then configures every node; a re-run changes nothing", async () => {
    const { nodes, data } = cluster(3);
    const { result, events } = await run(data());
    const { changes } = await result;
    expect(Object.keys(changes).sort()).toEqual(["cp1", "cp2", "w1"]);
    expect(changes.w1).toEqual([
      `write ${KUBEFORGE_CNI_CONFIG} (pod CIDR 198.19.2.0/24)`,
      "route the other nodes' pod CIDRs: 198.19.0.0/24 via 198.18.0.11 (cp1), 198.19.1.0/24 via 198.18.0.12 (cp2)",
      `write ${POD_ROUTES_UNIT} (the same 2 routes at boot)`,
      `enable ${UNIT} (runs at boot)`,
    ]);
    const logs = events.flatMap((event) => (event.type === "log" ? [event.message] : []));
    expect(logs[0]).toBe("waiting for a pod CIDR on every node (0 s of 2 s): no pod CIDR yet: cp1, cp2, w1");
    expect(logs).toContain("pod CIDRs: cp1 198.19.0.0/24; cp2 198.19.1.0/24; w1 198.19.2.0/24");

    const w1 = nodes.get("w1") as FakeNode;
    expect(JSON.parse(w1.text(KUBEFORGE_CNI_CONFIG) ?? "").plugins[0].ipam.ranges).toEqual([
      [{ subnet: "198.19.2.0/24" }],
    ]);
    expect(w1.files.get(KUBEFORGE_CNI_CONFIG)?.mode).toBe(0o644);
    expect(Object.fromEntries(w1.routes)).toEqual({
      "198.19.0.0/24": "198.18.0.11",
      "198.19.1.0/24": "198.18.0.12",
    });
    expect(w1.enabled).toBe(true);

    expect((await (await run(data())).result).changes).toEqual({});
  });

  it("removes the routes to a node that left the cluster", async () => {
    const { api, hosts, data } = cluster(0);
    await (await run(data())).result;
    await api.delete({ apiVersion: "v1", kind: "Node", name: "w1" });
    const { changes } = await (await run({ ...data(), hosts: hosts.filter((host) => host.name !== "w1") }))
      .result;
    expect(changes).toEqual({
      cp1: [
        "remove the routes to pod CIDRs whose nodes left: 198.19.2.0/24 via 198.18.0.30",
        `write ${POD_ROUTES_UNIT} (the same 1 route at boot)`,
      ],
      cp2: [
        "remove the routes to pod CIDRs whose nodes left: 198.19.2.0/24 via 198.18.0.30",
        `write ${POD_ROUTES_UNIT} (the same 1 route at boot)`,
      ],
    });
  });

  it("keeps the routes to nodes outside the run (a join of some workers) that are still in the cluster", async () => {
    const { hosts, data } = cluster(0);
    await (await run(data())).result;
    const { changes } = await (await run({ ...data(), hosts: hosts.filter((host) => host.name === "cp1") }))
      .result;
    expect(changes).toEqual({});
  });

  it("configures the cluster's other registered nodes too: a join of some workers reaches the rest", async () => {
    const { hosts, data } = cluster(0);
    const joined = hosts.filter((host) => host.name !== "w1");
    const { changes } = await (await run({ ...data(), hosts: joined, clusterHosts: hosts })).result;
    // w1 is outside the run, registered, and gets its routes to cp1's and cp2's pods.
    expect(Object.keys(changes).sort()).toEqual(["cp1", "cp2", "w1"]);
    expect(changes.w1).toContain(
      "route the other nodes' pod CIDRs: 198.19.0.0/24 via 198.18.0.11 (cp1), 198.19.1.0/24 via 198.18.0.12 (cp2)",
    );
  });

  it("fails once, naming the nodes without a pod CIDR and where they come from", async () => {
    const { hosts, data } = cluster(Number.POSITIVE_INFINITY);
    const { result, events } = await run({ ...data(), wait: { timeoutMs: 30, intervalMs: 1 } });
    await expect(result).rejects.toThrow(
      "error execution phase pod-network: after 0 s:\nno pod CIDR on cp1, cp2, w1: kube-controller-manager gives each Node one when it runs with --allocate-node-cidrs=true --cluster-cidr=198.19.0.0/17",
    );
    expect(events.some((event) => event.type === "host.start")).toBe(false);
    expect(hosts.every((host) => (host.host as FakeNode).commands.length === 0)).toBe(true);
  });

  it("warns when another CNI config sorts before kubeforge's", async () => {
    const { nodes, data } = cluster(0);
    (nodes.get("cp1") as FakeNode).otherCniConfigs = ["05-other.conflist", "99-late.conf"];
    const { result, events } = await run(data());
    await result;
    const warnings = events.flatMap((event) =>
      event.type === "log" && event.level === "warn" ? [`${event.host}: ${event.message}`] : [],
    );
    expect(warnings).toEqual([
      "cp1: /etc/cni/net.d/05-other.conflist sorts before 10-kubeforge-bridge.conflist: the container runtime uses the first config by name, so pods get that network; remove it, or set addons.cni: none",
    ]);
  });

  it("does nothing with addons.cni: none", async () => {
    const { api, data } = cluster(0, "none");
    const { result, events } = await run(data());
    expect((await result).changes).toEqual({});
    expect(api.reads).toBe(0);
    expect(events).toContainEqual(expect.objectContaining({ type: "phase.end", status: "skipped" }));
  });

  it("in a dry run before the cluster exists, says what each node will get and touches nothing", async () => {
    const { hosts, data } = cluster(0);
    const { result } = await run({ ...data(), api: undefined }, true);
    const { changes } = await result;
    expect(changes.w1).toEqual([
      `write ${KUBEFORGE_CNI_CONFIG} for this node's pod CIDR and route the other nodes' (once they have CIDRs)`,
    ]);
    expect(hosts.every((host) => (host.host as FakeNode).commands.length === 0)).toBe(true);
  });

  it("in a dry run against an API whose nodes have no pod CIDR yet, looks once instead of waiting", async () => {
    const { data } = cluster(1_000);
    const started = performance.now();
    const { result } = await run({ ...data(), wait: { timeoutMs: 60_000, intervalMs: 1_000 } }, true);
    const { changes } = await result;
    expect(performance.now() - started).toBeLessThan(5_000);
    expect(changes.w1).toEqual([
      `write ${KUBEFORGE_CNI_CONFIG} for this node's pod CIDR and route the other nodes' (once they have CIDRs)`,
    ]);
  });
});
