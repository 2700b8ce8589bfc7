import { describe, expect, it } from "vitest";
import { apiDialAddress, CERT_SPECS, pkiInputs, resolveCerts } from "./specs.js";
import { clusterFile } from "./testing.js";

const byId = (cluster: ReturnType<typeof clusterFile>) =>
  new Map(resolveCerts(pkiInputs(cluster)).map((c) => [c.id, c]));

describe("the certificate table", () => {
  it("has kubeadm's rows, each CA before its leaves, with kubeadm's files", () => {
    expect(CERT_SPECS.map((s) => [s.name, s.baseName, s.ca ?? "-"])).toEqual([
      ["ca", "ca", "-"],
      ["apiserver", "apiserver", "ca"],
      ["apiserver-kubelet-client", "apiserver-kubelet-client", "ca"],
      ["front-proxy-ca", "front-proxy-ca", "-"],
      ["front-proxy-client", "front-proxy-client", "front-proxy-ca"],
      ["etcd-ca", "etcd/ca", "-"],
      ["etcd-server", "etcd/server", "etcd-ca"],
      ["etcd-peer", "etcd/peer", "etcd-ca"],
      ["etcd-healthcheck-client", "etcd/healthcheck-client", "etcd-ca"],
      ["apiserver-etcd-client", "apiserver-etcd-client", "etcd-ca"],
    ]);
  });

  it("resolves CAs once and leaves once per control plane, into kubeadm's directories", () => {
    const certs = resolveCerts(pkiInputs(clusterFile({ controlPlanes: 3 })));
    expect(certs.filter((c) => c.node === undefined).map((c) => `${c.dir}/${c.spec.baseName}`)).toEqual([
      "pki/ca",
      "pki/front-proxy-ca",
      "pki/etcd/ca",
    ]);
    expect(certs.filter((c) => c.node === "cp3").map((c) => `${c.dir}/${c.spec.baseName}`)).toEqual([
      "nodes/cp3/pki/apiserver",
      "nodes/cp3/pki/apiserver-kubelet-client",
      "nodes/cp3/pki/front-proxy-client",
      "nodes/cp3/pki/etcd/server",
      "nodes/cp3/pki/etcd/peer",
      "nodes/cp3/pki/etcd/healthcheck-client",
      "nodes/cp3/pki/apiserver-etcd-client",
    ]);
    expect(certs.some((c) => c.node === "w1")).toBe(false);
  });
});

describe("SAN rules", () => {
  it("uses privateAddress as the node IP, sorts and de-duplicates like kubeadm", () => {
    const base = clusterFile({ certSANs: ["cp1", "198.18.0.11", "z.example.com", "'*.apps.example.com'"] });
    const first = base.spec.hosts[0];
    if (!first) throw new Error("no host");
    const cluster = { ...base, spec: { ...base.spec, hosts: [{ ...first, privateAddress: "198.18.20.5" }] } };
    const apiserver = byId(cluster).get("cp1/apiserver")?.profile;
    expect(apiserver?.dnsNames).toEqual([
      "*.apps.example.com",
      "cp1",
      "demo-api",
      "kubernetes",
      "kubernetes.default",
      "kubernetes.default.svc",
      "kubernetes.default.svc.cluster.local",
      "z.example.com",
    ]);
    expect(apiserver?.ipAddresses).toEqual(["198.19.128.1", "198.18.20.5", "198.18.0.11"]);
    expect(byId(cluster).get("cp1/etcd-peer")?.profile.ipAddresses).toEqual([
      "198.18.20.5",
      "127.0.0.1",
      "::1",
    ]);
  });

  it("puts an IP controlPlaneEndpoint in the IP SANs and keeps its port in the URL", () => {
    const cluster = clusterFile({ kubernetes: ["controlPlaneEndpoint: 198.18.0.200:8443"] });
    const inputs = pkiInputs(cluster);
    expect(inputs.endpoint).toEqual({ host: "198.18.0.200", port: 8443, url: "https://198.18.0.200:8443" });
    expect(byId(cluster).get("cp1/apiserver")?.profile.ipAddresses).toContain("198.18.0.200");
    expect(byId(cluster).get("cp1/apiserver")?.profile.dnsNames).not.toContain("demo-api");
  });

  it("handles IPv6 endpoints and dual-stack service subnets (first IP of each family)", () => {
    const cluster = clusterFile({
      kubernetes: [
        "controlPlaneEndpoint: '[fd00:0::10]:6443'",
        "networking: {serviceSubnet: '198.19.128.0/20,fd00:10::/108', podSubnet: '198.19.0.0/17,fd00:20::/56'}",
      ],
    });
    const inputs = pkiInputs(cluster);
    expect(inputs.endpoint.url).toBe("https://[fd00::10]:6443");
    expect(inputs.serviceIps).toEqual(["198.19.128.1", "fd00:10::1"]);
    expect(byId(cluster).get("cp2/apiserver")?.profile.ipAddresses).toEqual([
      "198.19.128.1",
      "fd00:10::1",
      "198.18.0.12",
      "fd00::10",
      "198.18.0.100",
    ]);
  });

  it("adds etcd's own SAN lists to the server and peer certificates only", () => {
    const cluster = clusterFile({
      kubernetes: ["etcd: {local: {serverCertSANs: [etcd.example.com], peerCertSANs: [198.18.1.1]}}"],
    });
    const certs = byId(cluster);
    expect(certs.get("cp1/etcd-server")?.profile.dnsNames).toEqual(["cp1", "etcd.example.com", "localhost"]);
    expect(certs.get("cp1/etcd-server")?.profile.ipAddresses).toEqual(["198.18.0.11", "127.0.0.1", "::1"]);
    expect(certs.get("cp1/etcd-peer")?.profile.ipAddresses).toEqual([
      "198.18.0.11",
      "127.0.0.1",
      "::1",
      "198.18.1.1",
    ]);
  });

  it("lets featureGates turn kubeadm's ControlPlaneKubeletLocalMode off", () => {
    expect(pkiInputs(clusterFile({ version: "v1.34.0" })).kubeletLocalMode).toBe(true);
    expect(
      pkiInputs(
        clusterFile({
          version: "v1.34.0",
          kubernetes: ["featureGates: {ControlPlaneKubeletLocalMode: false}"],
        }),
      ).kubeletLocalMode,
    ).toBe(false);
    expect(
      pkiInputs(
        clusterFile({
          version: "v1.30.0",
          kubernetes: ["featureGates: {ControlPlaneKubeletLocalMode: true}"],
        }),
      ).kubeletLocalMode,
    ).toBe(false);
  });
});

describe("apiDialAddress", () => {
  const host = (address: string, privateAddress?: string) =>
    ({
      name: "cp1",
      address,
      role: "control-plane",
      ...(privateAddress && { privateAddress }),
    }) as Parameters<typeof apiDialAddress>[0];

  it("dials the address the workstation uses for SSH", () => {
    expect(apiDialAddress(host("198.18.0.11", "198.18.1.11"))).toBe("198.18.0.11");
  });

  it("dials the node IP when SSH goes through a forwarded loopback port (Vagrant's VirtualBox)", () => {
    expect(apiDialAddress(host("127.0.0.1", "198.18.1.11"))).toBe("198.18.1.11");
    expect(apiDialAddress(host("127.0.0.1"))).toBe("127.0.0.1");
  });
});
