// The directory the provisioning scenarios build their offline bundle from (support/bundle-dir.ts), proven
// on one real lab host with no network: its stand-in images import into containerd's k8s.io namespace
// under exactly their names, its containerd and runc .debs install with `dpkg -i` after the host's own
// were purged, and the stand-in kubelet answers `--version`.
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { $ } from "zx";
import { type Lab, type LabOptions, labDown, labUp } from "../lab/testhosts.js";
import { buildTestBundleDir, STAND_IN_KUBELET_MARKER } from "./support/bundle-dir.js";
import { must as mustOn, onHost as onHostIn } from "./support/scenario.js";

const LAB: LabOptions = { bridge: "kfbrv0", subnet: "198.18.23", log: (line) => console.error(line) };
const HOST = "h1";
const VERSION = "v1.30.4";
/** Named like v1.30's control-plane images; the exact list is `kubeforge images list`'s job, not this test's. */
const IMAGES = [
  "registry.k8s.io/kube-apiserver:v1.30.4",
  "registry.k8s.io/kube-controller-manager:v1.30.4",
  "registry.k8s.io/kube-scheduler:v1.30.4",
  "registry.k8s.io/kube-proxy:v1.30.4",
  "registry.k8s.io/etcd:3.5.15-0",
  "registry.k8s.io/pause:3.9",
  "registry.k8s.io/coredns/coredns:v1.11.1",
];
const REMOTE = "/root/bundle";
const sh = $({ quiet: true, nothrow: true });

let work: string;
let booted: Lab | undefined;
let bootError: unknown;
let bundleError: unknown;
let built = false;

// Every test fails (rather than being skipped, as after a failed hook) when its setup failed.
function theLab(): Lab {
  if (!booted) throw new Error(`lab setup failed: ${String(bootError)}`, { cause: bootError });
  return booted;
}
function theBundle(): string {
  if (!built) throw new Error(`bundle dir not built: ${String(bundleError)}`, { cause: bundleError });
  return join(work, "bundle");
}

const filesIn = (dir: string) => readdirSync(dir).sort();

const onHost = async (command: string) => onHostIn(theLab(), HOST, command);
const must = async (command: string) => mustOn(theLab(), HOST, command);

/** The bundle's `subdir` files into the same subdir under REMOTE on the host. */
async function copyToHost(subdir: string): Promise<string> {
  const local = join(theBundle(), subdir);
  const remote = `${REMOTE}/${subdir}`;
  await must(`mkdir -p ${remote}`);
  const sources = filesIn(local).map((file) => join(local, file));
  const r =
    await sh`scp -F ${theLab().sshConfigPath} -o BatchMode=yes -q ${sources} ${`root@${HOST}:${remote}/`}`;
  if (r.exitCode !== 0) throw new Error(`scp ${local} to ${HOST}:${remote} failed: ${r.stderr}`);
  return remote;
}

describe("the test bundle dir (Debian packages, kubectl, CNI plugins, stand-in kubelet and images)", () => {
  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), "kf-bundle-dir-"));
    try {
      await buildTestBundleDir(join(work, "bundle"), { kubernetesVersion: VERSION, images: IMAGES });
      built = true;
    } catch (error) {
      bundleError = error;
    }
    try {
      booted = await labUp(1, LAB);
    } catch (error) {
      bootError = error;
    }
  });

  afterAll(async () => {
    try {
      await labDown(LAB);
    } finally {
      if (work) rmSync(work, { recursive: true, force: true });
    }
  });

  it("has the layout bundle create reads: version, bin, cni, images, packages, manifests", async () => {
    const dir = theBundle();
    expect(readFileSync(join(dir, "kubernetes-version"), "utf8")).toBe(`${VERSION}\n`);
    expect(filesIn(join(dir, "bin/linux-amd64"))).toEqual(["kubectl", "kubelet"]);
    expect(filesIn(join(dir, "cni/linux-amd64"))).toEqual(
      expect.arrayContaining(["bridge", "host-local", "loopback", "portmap"]),
    );
    expect(filesIn(join(dir, "manifests"))).toEqual([]);
    const packageNames = filesIn(join(dir, "packages/debian-12-amd64")).map((file) => {
      expect(file).toMatch(/^[a-z0-9.+-]+_[^_:]+_amd64\.deb$/); // Debian's pool names: no epoch
      return file.slice(0, file.indexOf("_"));
    });
    expect(packageNames).toEqual(
      ["conntrack", "containerd", "containernetworking-plugins", "ethtool", "runc", "socat"].sort(),
    );

    const kubectl = await sh`${join(dir, "bin/linux-amd64/kubectl")} version --client`;
    expect(kubectl.stdout, kubectl.stderr).toContain('GitVersion:"v1.20');
  });

  it("has one stand-in image archive per ref, a few KiB each, named by its index.json annotations", async () => {
    const images = join(theBundle(), "images");
    const archives = filesIn(images);
    expect(archives).toHaveLength(IMAGES.length);
    const names: string[] = [];
    for (const archive of archives) {
      expect(statSync(join(images, archive)).size, archive).toBeLessThanOrEqual(8 * 1024);
      const index = await sh`tar -xOf ${join(images, archive)} index.json`;
      const [manifest] = JSON.parse(index.stdout).manifests;
      const name: string = manifest.annotations["io.containerd.image.name"];
      expect(manifest.annotations["org.opencontainers.image.ref.name"]).toBe(
        name.slice(name.lastIndexOf(":") + 1),
      );
      names.push(name);
    }
    expect(names.sort()).toEqual([...IMAGES].sort());
  });

  it("imports every stand-in image into containerd's k8s.io namespace under exactly its ref", async () => {
    const remote = await copyToHost("images");
    await must("systemctl start containerd");
    await must(`for f in ${remote}/*.tar; do ctr -n k8s.io images import "$f" >/dev/null || exit 1; done`);
    const listed = (await must("ctr -n k8s.io images ls -q")).split("\n").filter(Boolean);
    // containerd's CRI plugin also records every image under its ID (sha256 of its config): one each,
    // so seven distinct IDs also prove the stand-ins are seven distinct images
    const isImageId = (name: string) => /^sha256:[0-9a-f]{64}$/.test(name);
    expect(listed.filter((name) => !isImageId(name)).sort()).toEqual([...IMAGES].sort());
    expect(listed.filter(isImageId)).toHaveLength(IMAGES.length);
  });

  it("installs containerd and runc from the bundle's .debs with dpkg -i after the host's own were purged", async () => {
    const remote = await copyToHost("packages/debian-12-amd64");
    await must("systemctl stop containerd; dpkg --purge containerd runc");
    expect((await onHost("command -v containerd runc")).stdout).toBe("");

    await must(`dpkg -i ${remote}/containerd_*.deb ${remote}/runc_*.deb`);
    expect(await must("containerd --version")).toMatch(/^containerd .*1\.6\.20/);
    expect(await must("runc --version")).toMatch(/^runc version 1\.1\./);
    // the rest of the package set installs offline as well (over the host's own copies)
    await must(`dpkg -i ${remote}/*.deb`);
    expect(await must("dpkg --audit")).toBe("");
  });

  it("ships a stand-in kubelet that answers --version and refuses to run, saying it is a stand-in", async () => {
    const remote = await copyToHost("bin/linux-amd64");
    expect(await must(`${remote}/kubelet --version`)).toBe(`Kubernetes ${VERSION}\n`);
    const started = await onHost(`${remote}/kubelet --config=/var/lib/kubelet/config.yaml`);
    expect(started.exitCode).toBe(1);
    expect(started.stderr).toBe(`${STAND_IN_KUBELET_MARKER}\n`);
  });
});
