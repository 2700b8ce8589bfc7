// The directory the provisioning scenarios pack with `kubeforge bundle create --from-dir`: real Debian 12
// packages, Debian's kubectl and CNI plugins, plus stand-ins for what these machines cannot download
// (the kubelet and the Kubernetes images). The stand-ins say what they are, in their names and output;
// the real binaries and images are checked elsewhere.
import { createHash } from "node:crypto";
import {
  chmod,
  copyFile,
  cp,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rename,
  rm,
  writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { $ } from "zx";
import { writeOciLayout } from "../../lab/oci.js";
import { type CliRun, show } from "./scenario.js";

export interface TestBundleOptions {
  kubernetesVersion: string;
  /** Full refs, e.g. registry.k8s.io/kube-apiserver:v1.30.4; each becomes one stand-in image archive. */
  images: string[];
  /** packages/debian-12-amd64/ (default true). */
  withPackages?: boolean;
  /** cni/linux-amd64/ (default true). */
  withCni?: boolean;
  /**
   * The stand-in kubelet: `failing` (default) exits when started; `serving` answers its healthz and,
   * on a control plane, forwards :6443 to the recording fake API server (support/stand-in-cluster.ts).
   */
  kubelet?: "failing" | "serving";
}

/** What the stand-in kubelet prints to stderr when started as a kubelet rather than asked its version. */
export const STAND_IN_KUBELET_MARKER =
  "kubeforge test stand-in kubelet: not the real kubelet, it cannot run a node";

/**
 * The OS packages `prepare` installs on a Debian 12 host: what issue 5 names, nothing else. Their own
 * dependencies (libc6, libseccomp2, iptables, libmnl0, libnetfilter-conntrack3, libssl3, libwrap0) are
 * already on every lab host, even with containerd and runc purged, so `dpkg -i` needs no more.
 */
const OS_PACKAGES = [
  "containerd", // the container runtime kubelet talks to
  "runc", // containerd's OCI runtime (a Depends of containerd)
  "conntrack", // kubeadm preflight's required binary; kube-proxy flushes conntrack entries with it
  "socat", // kubeadm preflight's required binary; `kubectl port-forward` needs it
  "ethtool", // kubeadm preflight's required binary
  "containernetworking-plugins", // the CNI plugins, installed the Debian way (/usr/lib/cni)
];
/** Debian's kubectl (v1.20): only unpacked for bin/, not shipped as a package. */
const KUBECTL_PACKAGE = "kubernetes-client";
const PACKAGES_DIR = "packages/debian-12-amd64";
const BIN_DIR = "bin/linux-amd64";
const CNI_DIR = "cni/linux-amd64";
const DEB_CACHE = "/var/cache/kubeforge-test/debs";
/** The file inside each stand-in image, naming the image it stands in for. */
const STAND_IN_IMAGE_FILE = "kubeforge-stand-in-image";
/** Reproducible tars (same input, same digest); `-b1` leaves out tar's 10 KiB end padding. */
const TAR_FLAGS = ["--numeric-owner", "--owner=0", "--group=0", "--mtime=@0", "--format=ustar", "-b1"];

const run = $({ quiet: true });

export async function buildTestBundleDir(dir: string, options: TestBundleOptions): Promise<void> {
  const { kubernetesVersion, images } = options;
  if (!/^v\d+\.\d+\.\d+$/.test(kubernetesVersion)) {
    throw new Error(`kubernetesVersion must look like v1.30.4, got ${JSON.stringify(kubernetesVersion)}`);
  }
  const duplicate = images.find((ref, i) => images.indexOf(ref) !== i);
  if (duplicate) throw new Error(`image ${duplicate} is listed twice`);

  const deb = await cachedDebs();
  await mkdir(join(dir, BIN_DIR), { recursive: true });
  await mkdir(join(dir, "images"), { recursive: true });
  await mkdir(join(dir, "manifests"), { recursive: true });
  await writeFile(join(dir, "kubernetes-version"), `${kubernetesVersion}\n`);

  const scratch = await mkdtemp(join(tmpdir(), "kf-test-bundle-"));
  try {
    await unpackDeb(deb(KUBECTL_PACKAGE), join(scratch, "kubectl"));
    await copyFile(join(scratch, "kubectl/usr/bin/kubectl"), join(dir, BIN_DIR, "kubectl"));
    const kubelet = options.kubelet === "serving" ? servingStandInKubelet : standInKubelet;
    await writeFile(join(dir, BIN_DIR, "kubelet"), kubelet(kubernetesVersion), { mode: 0o755 });
    if (options.withCni ?? true) {
      await unpackDeb(deb("containernetworking-plugins"), join(scratch, "cni"));
      await cp(join(scratch, "cni/usr/lib/cni"), join(dir, CNI_DIR), { recursive: true });
    }
    if (options.withPackages ?? true) {
      await mkdir(join(dir, PACKAGES_DIR), { recursive: true });
      for (const name of OS_PACKAGES) {
        await copyFile(deb(name), join(dir, PACKAGES_DIR, basename(deb(name))));
      }
    }
    for (const ref of images) {
      await writeStandInImage(ref, join(dir, "images", `${ref.replace(/[/:@]/g, "_")}.tar`), scratch);
    }
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/**
 * The .debs of OS_PACKAGES and KUBECTL_PACKAGE, downloaded once into DEB_CACHE/<hash of the list>/ and
 * named by Debian's pool convention (`<name>_<version without epoch>_<arch>.deb`). A download goes to a
 * temporary directory renamed into place when complete, so a crash or a concurrent run never leaves a
 * half-filled cache.
 */
async function cachedDebs(): Promise<(name: string) => string> {
  const wanted = [...OS_PACKAGES, KUBECTL_PACKAGE];
  const key = createHash("sha256").update(JSON.stringify(wanted)).digest("hex").slice(0, 16);
  const cacheDir = join(DEB_CACHE, key);
  let files = await readdir(cacheDir).catch(() => undefined);
  if (!files) {
    await mkdir(DEB_CACHE, { recursive: true });
    const partial = await mkdtemp(join(DEB_CACHE, ".partial-"));
    try {
      // root's apt would otherwise drop to _apt, which cannot write into this 0700 directory
      await run({ cwd: partial })`apt-get download -qq -o APT::Sandbox::User=root ${wanted}`;
      for (const downloaded of await readdir(partial)) {
        const fields = await run`dpkg-deb --field ${join(partial, downloaded)} Package Version Architecture`;
        const field = (name: string) => new RegExp(`^${name}: (.+)$`, "m").exec(fields.stdout)?.[1];
        const poolName = `${field("Package")}_${field("Version")?.replace(/^\d+:/, "")}_${field("Architecture")}.deb`;
        await rename(join(partial, downloaded), join(partial, poolName));
      }
      await chmod(partial, 0o755);
      await rename(partial, cacheDir).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== "ENOTEMPTY" && error.code !== "EEXIST") throw error; // another run finished first
      });
    } finally {
      await rm(partial, { recursive: true, force: true });
    }
    files = await readdir(cacheDir);
  }
  const byName = new Map(files.map((file) => [file.slice(0, file.indexOf("_")), join(cacheDir, file)]));
  const missing = wanted.filter((name) => !byName.has(name));
  if (missing.length > 0) throw new Error(`${cacheDir} lacks ${missing.join(", ")}: delete it`);
  return (name) => {
    const path = byName.get(name);
    if (!path) throw new Error(`no cached .deb for ${name}`);
    return path;
  };
}

async function unpackDeb(deb: string, into: string): Promise<void> {
  await run`dpkg-deb -x ${deb} ${into}`;
}

/**
 * `bundle` in `work`, packed with `kubeforge bundle create` from `dir`: a test bundle directory with
 * the images `kubeforge images list` names for the cluster file. `cli` runs the CLI in `work`.
 */
export async function packTestBundle(
  cli: (args: string[]) => Promise<CliRun>,
  options: { work: string; clusterFile: string; dir: string; bundle: string } & Omit<
    TestBundleOptions,
    "images"
  >,
): Promise<void> {
  const { work, clusterFile, dir, bundle, ...bundleOptions } = options;
  const listed = await cli(["images", "list", "-f", clusterFile]);
  if (listed.code !== 0) throw new Error(`images list failed:\n${show(listed)}`);
  const { images } = JSON.parse(listed.stdout) as { images: Array<{ ref: string }> };
  await buildTestBundleDir(join(work, dir), { ...bundleOptions, images: images.map((image) => image.ref) });
  const made = await cli(["bundle", "create", "--from-dir", dir, "-o", bundle]);
  if (made.code !== 0) throw new Error(`bundle create failed:\n${show(made)}`);
}

/** Where a control-plane host finds the recording fake API server's address (`host:port`). */
export const STAND_IN_API_FORWARD_FILE = "/etc/kubeforge-test/apiserver-forward";

/** The real kubelet's answer to --version. */
function versionAnswer(version: string): string {
  return `for arg in "$@"; do
  case "$arg" in
    --version | --version=true) echo "Kubernetes ${version}"; exit 0 ;;
  esac
done`;
}

/** Answers `--version` like the real kubelet; anything else is an attempt to run it, which it refuses. */
function standInKubelet(version: string): string {
  return `#!/bin/sh
# kubeforge TEST STAND-IN for kubelet, not the real kubelet: the real one cannot be downloaded on the
# test machines. It only answers --version, for the version checks; started as a kubelet it fails.
${versionAnswer(version)}
echo "${STAND_IN_KUBELET_MARKER}" >&2
exit 1
`;
}

/**
 * Answers --version, and started as a kubelet does the two things of the real one that the
 * workstation can see without a cluster: healthz on 127.0.0.1:10248, and on a control plane (its
 * kube-apiserver manifest written) an API server on :6443: a forward to the recording fake.
 */
function servingStandInKubelet(version: string): string {
  return `#!/bin/sh
# kubeforge TEST STAND-IN for kubelet, not the real kubelet: the real one cannot be downloaded on the
# test machines. It serves healthz, and forwards :6443 to the recording fake API server on control planes.
${versionAnswer(version)}
echo "${STAND_IN_KUBELET_MARKER} (serving healthz)" >&2
if [ -f /etc/kubernetes/manifests/kube-apiserver.yaml ] && [ -f ${STAND_IN_API_FORWARD_FILE} ]; then
  socat TCP-LISTEN:6443,fork,reuseaddr "TCP:$(cat ${STAND_IN_API_FORWARD_FILE})" &
fi
# socat unescapes \\r and \\n in an address itself: plain echo lines are enough for the healthz probe.
exec socat TCP-LISTEN:10248,bind=127.0.0.1,fork,reuseaddr SYSTEM:'echo HTTP/1.0 200 OK; echo; printf ok'
`;
}

/**
 * One OCI image layout archive (uncompressed tar) for linux/amd64 whose only layer holds a file naming
 * `ref`: as small as `ctr images import` accepts, and a distinct digest per ref.
 */
async function writeStandInImage(ref: string, archive: string, scratch: string): Promise<void> {
  const tag = /^[^@]+\/[^/:@]+:([\w][\w.-]{0,127})$/.exec(ref)?.[1];
  if (!tag) throw new Error(`image ${JSON.stringify(ref)} is not a full ref with a tag (registry/name:tag)`);
  const layout = await mkdtemp(join(scratch, "image-"));
  const rootfs = join(layout, "rootfs");
  await mkdir(rootfs);
  await writeFile(join(rootfs, STAND_IN_IMAGE_FILE), `kubeforge test stand-in for ${ref}\n`);
  await run`tar -C ${rootfs} ${TAR_FLAGS} -cf ${join(layout, "layer.tar")} ${STAND_IN_IMAGE_FILE}`;
  const image = join(layout, "image");
  const entries = await writeOciLayout(image, { ref, layerTar: await readFile(join(layout, "layer.tar")) });
  await run`tar -C ${image} ${TAR_FLAGS} -cf ${archive} ${entries}`;
}
