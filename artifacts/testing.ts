// Test fixtures for bundles: a source directory with stand-in binaries, CNI plugins, image archives
// (OCI layout and docker-save styles, tarred by GNU tar) and .deb names. The files are small stand-ins
// that only need to be distinct bytes; what they are is said in their content.
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

export const VERSION = "v1.30.4";

/** The refs a v1.30.4 cluster with default addons needs (config/images.ts). */
export const CLUSTER_IMAGES = [
  "registry.k8s.io/kube-apiserver:v1.30.4",
  "registry.k8s.io/kube-controller-manager:v1.30.4",
  "registry.k8s.io/kube-scheduler:v1.30.4",
  "registry.k8s.io/kube-proxy:v1.30.4",
  "registry.k8s.io/coredns/coredns:v1.11.3",
  "registry.k8s.io/pause:3.9",
  "registry.k8s.io/etcd:3.5.15-0",
];

function write(path: string, content: string, mode = 0o644): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, content, { mode });
}

/** An image archive holding only its index: enough for the name, which is all a bundle reads. */
export function writeImageArchive(archive: string, refs: string[], style: "oci" | "docker"): void {
  const layout = mkdtempSync(join(tmpdir(), "kubeforge-image-"));
  if (style === "oci") {
    write(join(layout, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
    const manifests = refs.map((ref) => ({
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      annotations: {
        "io.containerd.image.name": ref,
        "org.opencontainers.image.ref.name": ref.split(":").at(-1),
      },
    }));
    write(join(layout, "index.json"), JSON.stringify({ schemaVersion: 2, manifests }));
  } else {
    write(
      join(layout, "manifest.json"),
      JSON.stringify([{ Config: "config.json", RepoTags: refs, Layers: [] }]),
    );
  }
  write(join(layout, "stand-in"), `test stand-in image for ${refs.join(", ")}\n`);
  // GNU tar, as users make them: `./`-prefixed names and a directory entry.
  execFileSync("tar", ["-C", layout, "-cf", archive, "."]);
}

/** A complete source directory for `VERSION` on linux-amd64 / debian-12-amd64. */
export function writeBundleDir(dir: string, options: { images?: string[] } = {}): void {
  write(join(dir, "kubernetes-version"), `${VERSION}\n`);
  for (const binary of ["kubelet", "kubectl"]) {
    write(
      join(dir, "bin/linux-amd64", binary),
      `#!/bin/sh\necho "test stand-in ${binary} ${VERSION}"\n`,
      0o755,
    );
  }
  for (const plugin of ["bridge", "host-local", "loopback", "portmap"]) {
    write(join(dir, "cni/linux-amd64", plugin), `test stand-in CNI plugin ${plugin}\n`, 0o755);
  }
  mkdirSync(join(dir, "images"), { recursive: true });
  const [first, ...rest] = options.images ?? CLUSTER_IMAGES;
  if (first) writeImageArchive(join(dir, "images/first.tar"), [first], "docker");
  if (rest.length > 0) writeImageArchive(join(dir, "images/rest.tar"), rest, "oci");
  for (const deb of [
    "containerd_1.6.20~ds1-1+b1_amd64.deb",
    "runc_1.1.5+ds1-1+deb12u1_amd64.deb",
    "conntrack_1%3a1.4.7-1+b2_amd64.deb",
    "socat_1.7.4.4-2_amd64.deb",
    "ethtool_1%3a6.1-1_amd64.deb",
  ]) {
    write(join(dir, "packages/debian-12-amd64", deb), `test stand-in package ${deb}\n`);
  }
  write(join(dir, "manifests/addons/README"), "test manifests\n");
}
