import { createHash } from "node:crypto";
import yaml from "js-yaml";
import { describe, expect, it } from "vitest";
import { addonObjects } from "./addons.js";
import type { ApiObject } from "./objects.js";
import { exampleCluster, objectId, readFixture } from "./testing.js";

const HASH = "kubeadm.kubernetes.io/component-config.hash";

const dataOf = (object: ApiObject) => object.data as Record<string, string>;
const find = (objects: ApiObject[], kind: string, name: string) =>
  objects.find((object) => object.kind === kind && object.metadata.name === name) as ApiObject;

function proxyConfig(objects: ApiObject[]): Record<string, unknown> {
  return yaml.load(dataOf(find(objects, "ConfigMap", "kube-proxy"))["config.conf"] as string) as Record<
    string,
    unknown
  >;
}

function compare(actual: ApiObject[], expected: ApiObject[]): void {
  // The exact set, in kubeadm's order.
  expect(actual.map(objectId)).toEqual(expected.map(objectId));
  actual.forEach((object, index) => {
    const want = expected[index] as ApiObject;
    const label = objectId(object);
    if (object.kind !== "ConfigMap") {
      expect(object, label).toEqual(want);
      return;
    }
    const data = dataOf(object);
    // config.conf as data; the Corefile and kubeconfig.conf are templates: byte for byte.
    const parsed = (values: Record<string, string>) =>
      Object.fromEntries(
        Object.entries(values).map(([key, text]) => [key, key === "config.conf" ? yaml.load(text) : text]),
      );
    expect(parsed(data), label).toEqual(parsed(dataOf(want)));
    if (want.metadata.annotations) {
      const hash = createHash("sha256");
      for (const key of Object.keys(data).sort()) hash.update(data[key] as string);
      expect(object.metadata.annotations, label).toEqual({ [HASH]: `sha256:${hash.digest("hex")}` });
    } else expect(object.metadata.annotations, label).toBeUndefined();
    expect(object.metadata.labels, label).toEqual(want.metadata.labels);
  });
}

describe("addonObjects", () => {
  it.each([
    ["1.21", "v1.21.14"],
    ["1.30", "v1.30.4"],
    ["1.34", "v1.34.8"],
  ])("v%s: CoreDNS, then kube-proxy, as in the hand-written fixture", (minor, version) => {
    const { coreDns, kubeProxy } = addonObjects(exampleCluster(version), { containerHosts: false });
    compare([...coreDns, ...kubeProxy], readFixture(`addons-v${minor}.yaml`));
  });

  it("container hosts: kube-proxy leaves conntrack alone, a user-supplied (unsigned) config", () => {
    const { kubeProxy } = addonObjects(exampleCluster("v1.34.8"), { containerHosts: true });
    expect(proxyConfig(kubeProxy)).toMatchObject({ conntrack: { maxPerCore: 0, min: null }, mode: "" });
    expect(find(kubeProxy, "ConfigMap", "kube-proxy").metadata.annotations).toBeUndefined();
  });

  it("writes a mode other than iptables, unsigned as kubeadm leaves a user's KubeProxyConfiguration", () => {
    const cluster = exampleCluster("v1.30.4");
    cluster.spec.addons.kubeProxy.mode = "ipvs";
    const { kubeProxy } = addonObjects(cluster, { containerHosts: false });
    expect(proxyConfig(kubeProxy)).toMatchObject({ mode: "ipvs", conntrack: { maxPerCore: null } });
    expect(find(kubeProxy, "ConfigMap", "kube-proxy").metadata.annotations).toBeUndefined();
  });

  it("disabled add-ons create nothing", () => {
    const cluster = exampleCluster("v1.30.4");
    cluster.spec.addons.kubeProxy.enabled = false;
    cluster.spec.addons.coreDNS.enabled = false;
    expect(addonObjects(cluster, { containerHosts: false })).toEqual({ kubeProxy: [], coreDns: [] });
  });

  it("follows the cluster's endpoint, networks, domain, images and feature gates", () => {
    const cluster = exampleCluster(
      "v1.21.14",
      "    controlPlaneEndpoint: api.example.com:8443\n    featureGates: {IPv6DualStack: true, PublicKeysECDSA: true}",
    );
    cluster.spec.kubernetes.networking = {
      podSubnet: "198.18.128.0/18",
      serviceSubnet: "198.19.240.0/24",
      dnsDomain: "corp.example",
    };
    cluster.spec.kubernetes.imageRepository = "mirror.example/k8s";
    const { coreDns, kubeProxy } = addonObjects(cluster, { containerHosts: false });
    expect(proxyConfig(kubeProxy)).toMatchObject({
      clusterCIDR: "198.18.128.0/18",
      featureGates: { IPv6DualStack: true },
    });
    expect(proxyConfig(kubeProxy).featureGates).not.toHaveProperty("PublicKeysECDSA");
    expect(dataOf(find(kubeProxy, "ConfigMap", "kube-proxy"))["kubeconfig.conf"]).toContain(
      "    server: https://api.example.com:8443\n",
    );
    expect(dataOf(find(coreDns, "ConfigMap", "coredns")).Corefile).toContain(
      "    kubernetes corp.example in-addr.arpa ip6.arpa {\n",
    );
    expect(find(coreDns, "Service", "kube-dns")).toMatchObject({ spec: { clusterIP: "198.19.240.10" } });
    type PodOwner = { spec: { template: { spec: { containers: { image: string }[] } } } };
    const image = (object: ApiObject) =>
      (object as unknown as PodOwner).spec.template.spec.containers[0]?.image;
    expect(image(find(kubeProxy, "DaemonSet", "kube-proxy"))).toBe("mirror.example/k8s/kube-proxy:v1.21.14");
    expect(image(find(coreDns, "Deployment", "coredns"))).toBe("mirror.example/k8s/coredns:v1.8.0");
  });
});
