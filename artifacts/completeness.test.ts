import { describe, expect, it } from "vitest";
import type { ClusterFile } from "../config/schema.js";
import { applyDefaults } from "../config/validate.js";
import { distroOf, missingFromBundle, platformOf } from "./completeness.js";
import type { BundleFile, BundleManifest } from "./manifest.js";
import { CLUSTER_IMAGES, VERSION } from "./testing.js";

const cluster = applyDefaults({
  apiVersion: "kubeforge.dev/v1alpha1",
  kind: "Cluster",
  metadata: { name: "demo" },
  spec: {
    kubernetes: { version: VERSION },
    hosts: [
      { name: "cp1", address: "198.18.0.11", role: "control-plane" },
      { name: "w1", address: "198.18.0.12", role: "worker" },
    ],
  },
}) as ClusterFile;

const file = (path: string, extra: Partial<BundleFile>): BundleFile =>
  ({ path, size: 1, sha256: "0".repeat(64), kind: "manifest", ...extra }) as BundleFile;
const deb = (name: string, distro = "debian-12-amd64") =>
  file(`packages/${distro}/${name}_1_amd64.deb`, {
    kind: "package",
    distro,
    package: { name, version: "1", arch: "amd64" },
  });

function manifest(files: BundleFile[], kubernetesVersion = VERSION): BundleManifest {
  return { apiVersion: "kubeforge.dev/v1alpha1", kind: "Bundle", kubernetesVersion, created: "", files };
}

const complete = [
  file("bin/linux-amd64/kubelet", { kind: "binary", platform: "linux-amd64" }),
  file("bin/linux-amd64/kubectl", { kind: "binary", platform: "linux-amd64" }),
  ...["bridge", "host-local", "loopback", "portmap"].map((p) =>
    file(`cni/linux-amd64/${p}`, { kind: "cni", platform: "linux-amd64" }),
  ),
  file("images/all.tar", { kind: "image", images: CLUSTER_IMAGES }),
  ...["containerd", "runc", "conntrack", "socat", "ethtool"].map((name) => deb(name)),
];
const target = {
  platform: "linux-amd64",
  distro: "debian-12-amd64",
  roles: ["control-plane", "worker"] as const,
};

describe("missingFromBundle", () => {
  it("finds nothing missing in a complete bundle", () => {
    expect(missingFromBundle(manifest(complete), cluster, [{ ...target, roles: [...target.roles] }])).toEqual(
      [],
    );
  });

  it("lists the version, and per platform, role and distro what a bare host would lack", () => {
    const partial = complete.filter(
      (f) =>
        !["bin/linux-amd64/kubectl", "cni/linux-amd64/portmap", "images/all.tar"].includes(f.path) &&
        f.package?.name !== "socat",
    );
    const missing = missingFromBundle(manifest(partial, "v1.30.3"), cluster, [
      { platform: "linux-amd64", distro: "debian-12-amd64", roles: ["worker"] },
      { platform: "linux-arm64", roles: ["worker"] },
    ]);
    expect(missing).toEqual([
      "Kubernetes v1.30.4: the bundle is for v1.30.3 (make one for v1.30.4 with `kubeforge bundle create --kubernetes-version v1.30.4`)",
      "kubectl for linux-amd64 (bin/linux-amd64/kubectl)",
      "CNI plugins for linux-amd64: portmap (cni/linux-amd64/, or the containernetworking-plugins package)",
      "kubelet for linux-arm64 (bin/linux-arm64/kubelet)",
      "kubectl for linux-arm64 (bin/linux-arm64/kubectl)",
      "CNI plugins for linux-arm64: bridge, host-local, loopback, portmap (cni/linux-arm64/, or the containernetworking-plugins package)",
      "image registry.k8s.io/kube-proxy:v1.30.4",
      "image registry.k8s.io/coredns/coredns:v1.11.3",
      "image registry.k8s.io/pause:3.9",
      "packages for debian-12-amd64: socat (packages/debian-12-amd64/)",
    ]);
  });

  it("accepts Debian's CNI package instead of cni/<platform>/", () => {
    const withPackage = [...complete.filter((f) => f.kind !== "cni"), deb("containernetworking-plugins")];
    expect(missingFromBundle(manifest(withPackage), cluster, [{ ...target, roles: ["worker"] }])).toEqual([]);
  });
});

describe("platform and distro names", () => {
  it("maps uname -m to Kubernetes' arch names", () => {
    expect(platformOf("x86_64")).toBe("linux-amd64");
    expect(platformOf("aarch64")).toBe("linux-arm64");
    expect(platformOf("mips")).toBeUndefined();
    expect(distroOf("debian", "12", "x86_64")).toBe("debian-12-amd64");
    expect(distroOf("ubuntu", "24.04", "arm64")).toBe("ubuntu-24.04-arm64");
  });
});
