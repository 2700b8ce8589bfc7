import { describe, expect, it } from "vitest";
import {
  type NodeNetwork,
  parsePodRoutesUnit,
  podRoutes,
  renderBridgeConflist,
  renderPodRoutesUnit,
} from "./cni-bridge.js";

describe("renderBridgeConflist", () => {
  it("writes a bridge with host-local IPAM over the node's IPv4 pod CIDR, and portmap", () => {
    const text = renderBridgeConflist("w1", ["198.19.1.0/24"]);
    expect(text.endsWith("}\n")).toBe(true);
    expect(JSON.parse(text)).toEqual({
      cniVersion: "1.0.0",
      name: "kubeforge",
      plugins: [
        {
          type: "bridge",
          bridge: "kubeforge0",
          isGateway: true,
          ipMasq: true,
          hairpinMode: true,
          ipam: {
            type: "host-local",
            ranges: [[{ subnet: "198.19.1.0/24" }]],
            routes: [{ dst: "0.0.0.0/0" }],
          },
        },
        { type: "portmap", capabilities: { portMappings: true } },
      ],
    });
  });

  it("gives a dual-stack node one range and one default route per family, in the API's order", () => {
    const conflist = JSON.parse(renderBridgeConflist("w1", ["198.19.1.0/24", "2001:2:0:1::/64"]));
    expect(conflist.plugins[0].ipam).toEqual({
      type: "host-local",
      ranges: [[{ subnet: "198.19.1.0/24" }], [{ subnet: "2001:2:0:1::/64" }]],
      routes: [{ dst: "0.0.0.0/0" }, { dst: "::/0" }],
    });
  });

  it("refuses what is not one CIDR per family, naming the node", () => {
    expect(() => renderBridgeConflist("w1", [])).toThrow("w1: pod CIDRs [] are not one CIDR per IP family");
    expect(() => renderBridgeConflist("w1", ["198.19.1.0/24", "198.19.2.0/24"])).toThrow(
      "not one CIDR per IP family",
    );
    expect(() => renderBridgeConflist("w1", ["198.19.1.0/24; reboot"])).toThrow(
      'w1: pod CIDR "198.19.1.0/24; reboot" is not a CIDR',
    );
  });
});

describe("podRoutes", () => {
  const nodes: NodeNetwork[] = [
    { name: "w2", podCIDRs: ["198.19.2.0/24"], internalIPs: ["198.18.0.13"] },
    { name: "cp1", podCIDRs: ["198.19.0.0/24"], internalIPs: ["198.18.0.11"] },
    { name: "w1", podCIDRs: ["198.19.1.0/24"], internalIPs: ["198.18.0.12"] },
  ];

  it("routes every other node's pod CIDR through that node's InternalIP, in name order", () => {
    expect(Object.fromEntries(podRoutes(nodes))).toEqual({
      cp1: [
        { cidr: "198.19.1.0/24", via: "198.18.0.12", node: "w1" },
        { cidr: "198.19.2.0/24", via: "198.18.0.13", node: "w2" },
      ],
      w1: [
        { cidr: "198.19.0.0/24", via: "198.18.0.11", node: "cp1" },
        { cidr: "198.19.2.0/24", via: "198.18.0.13", node: "w2" },
      ],
      w2: [
        { cidr: "198.19.0.0/24", via: "198.18.0.11", node: "cp1" },
        { cidr: "198.19.1.0/24", via: "198.18.0.12", node: "w1" },
      ],
    });
  });

  it("routes each family's CIDR through the InternalIP of that family", () => {
    const routes = podRoutes([
      {
        name: "a",
        podCIDRs: ["198.19.0.0/24", "2001:2::/64"],
        internalIPs: ["198.18.0.11", "2001:2:0:ff::11"],
      },
      {
        name: "b",
        podCIDRs: ["198.19.1.0/24", "2001:2:0:1::/64"],
        internalIPs: ["2001:2:0:ff::12", "198.18.0.12"],
      },
    ]);
    expect(routes.get("a")).toEqual([
      { cidr: "198.19.1.0/24", via: "198.18.0.12", node: "b" },
      { cidr: "2001:2:0:1::/64", via: "2001:2:0:ff::12", node: "b" },
    ]);
  });

  it("has no routes for a single node", () => {
    expect(podRoutes([nodes[1] as NodeNetwork]).get("cp1")).toEqual([]);
  });

  it("refuses a pod CIDR without an InternalIP of its family", () => {
    expect(() =>
      podRoutes([{ name: "w1", podCIDRs: ["2001:2::/64"], internalIPs: ["198.18.0.12"] }]),
    ).toThrow(
      "w1: no IPv6 InternalIP to route its pod CIDR 2001:2::/64 through (status.addresses: 198.18.0.12)",
    );
  });
});

describe("pod routes unit", () => {
  const routes =
    podRoutes([
      { name: "cp1", podCIDRs: ["198.19.0.0/24"], internalIPs: ["198.18.0.11"] },
      { name: "w1", podCIDRs: ["198.19.1.0/24"], internalIPs: ["198.18.0.12"] },
      { name: "w2", podCIDRs: ["198.19.2.0/24"], internalIPs: ["198.18.0.13"] },
    ]).get("cp1") ?? [];

  it("adds the routes at boot after the network is online", () => {
    expect(renderPodRoutesUnit(routes)).toBe(
      [
        "# Written by kubeforge (addons.cni: bridge); rewritten when nodes join or leave.",
        "[Unit]",
        "Description=kubeforge routes to the other nodes' pod CIDRs",
        "Wants=network-online.target",
        "After=network-online.target",
        "",
        "[Service]",
        "Type=oneshot",
        "RemainAfterExit=yes",
        "ExecStart=-/sbin/ip route replace 198.19.1.0/24 via 198.18.0.12",
        "ExecStart=-/sbin/ip route replace 198.19.2.0/24 via 198.18.0.13",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
      ].join("\n"),
    );
  });

  it("reads back the routes it lists, and nothing that is not a route", () => {
    const edited = `${renderPodRoutesUnit(routes)}ExecStart=-/sbin/ip route replace $(reboot) via 198.18.0.14\n`;
    expect(parsePodRoutesUnit(edited)).toEqual([
      { cidr: "198.19.1.0/24", via: "198.18.0.12" },
      { cidr: "198.19.2.0/24", via: "198.18.0.13" },
    ]);
  });
});
