import { describe, expect, it } from "vitest";
import { clusterImages, imagesForRole, normalizeImageRef, pauseImage } from "./images.js";
import type { ClusterFile } from "./schema.js";
import { applyDefaults } from "./validate.js";

function cluster(kubernetes: Record<string, unknown>, addons: Record<string, unknown> = {}): ClusterFile {
  return applyDefaults({
    apiVersion: "kubeforge.dev/v1alpha1",
    kind: "Cluster",
    metadata: { name: "demo" },
    spec: {
      kubernetes,
      addons,
      hosts: [
        { name: "cp1", address: "198.18.0.11", role: "control-plane" },
        { name: "w1", address: "198.18.0.12", role: "worker" },
      ],
    },
  }) as ClusterFile;
}

describe("clusterImages", () => {
  // What `kubeadm config images list` prints for the latest patch release of each minor.
  it.each([
    [
      "v1.21.14",
      [
        "k8s.gcr.io/kube-apiserver:v1.21.14",
        "k8s.gcr.io/kube-controller-manager:v1.21.14",
        "k8s.gcr.io/kube-scheduler:v1.21.14",
        "k8s.gcr.io/kube-proxy:v1.21.14",
        "k8s.gcr.io/coredns/coredns:v1.8.0",
        "k8s.gcr.io/pause:3.4.1",
        "k8s.gcr.io/etcd:3.4.13-0",
      ],
    ],
    [
      "v1.30.14",
      [
        "registry.k8s.io/kube-apiserver:v1.30.14",
        "registry.k8s.io/kube-controller-manager:v1.30.14",
        "registry.k8s.io/kube-scheduler:v1.30.14",
        "registry.k8s.io/kube-proxy:v1.30.14",
        "registry.k8s.io/coredns/coredns:v1.11.3",
        "registry.k8s.io/pause:3.9",
        "registry.k8s.io/etcd:3.5.15-0",
      ],
    ],
    [
      "v1.34.2",
      [
        "registry.k8s.io/kube-apiserver:v1.34.2",
        "registry.k8s.io/kube-controller-manager:v1.34.2",
        "registry.k8s.io/kube-scheduler:v1.34.2",
        "registry.k8s.io/kube-proxy:v1.34.2",
        "registry.k8s.io/coredns/coredns:v1.12.1",
        "registry.k8s.io/pause:3.10.1",
        "registry.k8s.io/etcd:3.6.5-0",
      ],
    ],
  ])("lists kubeadm's images for %s", (version, refs) => {
    expect(clusterImages(cluster({ version })).map((image) => image.ref)).toEqual(refs);
  });

  it("uses a mirror for every image, with CoreDNS as kubeadm names it there (no coredns/ path)", () => {
    const mirrored = cluster({ version: "v1.30.4", imageRepository: "mirror.example/k8s" });
    expect(clusterImages(mirrored).map((image) => image.ref)).toEqual([
      "mirror.example/k8s/kube-apiserver:v1.30.4",
      "mirror.example/k8s/kube-controller-manager:v1.30.4",
      "mirror.example/k8s/kube-scheduler:v1.30.4",
      "mirror.example/k8s/kube-proxy:v1.30.4",
      "mirror.example/k8s/coredns:v1.11.3",
      "mirror.example/k8s/pause:3.9",
      "mirror.example/k8s/etcd:3.5.15-0",
    ]);
    expect(pauseImage(mirrored)).toBe("mirror.example/k8s/pause:3.9");
  });

  it("keeps the registry.k8s.io layout when v1.21 is pointed at it explicitly", () => {
    const images = clusterImages(cluster({ version: "v1.21.14", imageRepository: "k8s.gcr.io" }));
    expect(images.find((image) => image.component === "coredns")?.ref).toBe(
      "k8s.gcr.io/coredns/coredns:v1.8.0",
    );
  });

  it("takes kubeadm's ImageMeta overrides for etcd and CoreDNS", () => {
    const overridden = cluster(
      { version: "v1.30.4", etcd: { local: { imageRepository: "quay.example/etcd", imageTag: "3.5.21-0" } } },
      { coreDNS: { imageRepository: "dns.example", imageTag: "v1.12.0" } },
    );
    const refs = Object.fromEntries(clusterImages(overridden).map((image) => [image.component, image.ref]));
    expect(refs.etcd).toBe("quay.example/etcd/etcd:3.5.21-0");
    expect(refs.coredns).toBe("dns.example/coredns:v1.12.0");
  });

  it("leaves out disabled add-ons and gives workers only what runs on them", () => {
    const lean = cluster(
      { version: "v1.30.4" },
      { kubeProxy: { enabled: false }, coreDNS: { enabled: false } },
    );
    expect(clusterImages(lean).map((image) => image.component)).toEqual([
      "kube-apiserver",
      "kube-controller-manager",
      "kube-scheduler",
      "pause",
      "etcd",
    ]);
    expect(imagesForRole(lean, "worker")).toEqual(["registry.k8s.io/pause:3.9"]);
    expect(imagesForRole(cluster({ version: "v1.30.4" }), "worker")).toEqual([
      "registry.k8s.io/kube-proxy:v1.30.4",
      "registry.k8s.io/coredns/coredns:v1.11.3",
      "registry.k8s.io/pause:3.9",
    ]);
  });
});

describe("image refs as containerd stores them", () => {
  it("writes out Docker Hub's registry, library/ and :latest; leaves full refs alone", () => {
    expect(normalizeImageRef("busybox")).toBe("docker.io/library/busybox:latest");
    expect(normalizeImageRef("coredns/coredns:v1.11.3")).toBe("docker.io/coredns/coredns:v1.11.3");
    expect(normalizeImageRef("registry.k8s.io/pause:3.9")).toBe("registry.k8s.io/pause:3.9");
    expect(normalizeImageRef("localhost/pause")).toBe("localhost/pause:latest");
    expect(normalizeImageRef("198.18.0.1:5000/etcd:3.5.15-0")).toBe("198.18.0.1:5000/etcd:3.5.15-0");
    expect(normalizeImageRef("registry.k8s.io/pause@sha256:abc")).toBe("registry.k8s.io/pause@sha256:abc");
  });
});
