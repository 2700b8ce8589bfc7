import { execFileSync } from "node:child_process";
import {
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { text } from "node:stream/consumers";
import { describe, expect, it } from "vitest";
import { testDir } from "../cli/testing.js";
import { BundleError } from "../workflow/errors.js";
import { createBundle, openBundle } from "./bundle.js";
import { readTarIndex } from "./tar.js";
import { CLUSTER_IMAGES, VERSION, writeBundleDir } from "./testing.js";

async function made(options: { images?: string[] } = {}) {
  const dir = testDir();
  const from = join(dir, "from");
  writeBundleDir(from, options);
  const bundle = join(dir, "k8s.bundle");
  const created = await createBundle(from, bundle);
  return { dir, from, bundle, created, cacheDir: join(dir, "cache") };
}

async function problemsOf(promise: Promise<unknown>): Promise<BundleError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(BundleError);
  return error as BundleError;
}

/** Flips one byte of a member's data in place. */
function flipByte(bundle: string, offset: number): void {
  const bytes = readFileSync(bundle);
  bytes[offset] = (bytes[offset] ?? 0) ^ 0xff;
  writeFileSync(bundle, bytes);
}

describe("createBundle", () => {
  it("packs the directory into a tar GNU tar reads, manifest first, with names read from the archives", async () => {
    const { bundle, created } = await made();
    const listing = execFileSync("tar", ["-tvf", bundle], { encoding: "utf8" }).trim().split("\n");
    expect(listing[0]).toMatch(/ manifest\.json$/);
    expect(listing.find((line) => line.endsWith(" bin/linux-amd64/kubelet"))).toMatch(/^-rwxr-xr-x /);
    expect(listing.find((line) => line.endsWith(" images/rest.tar"))).toMatch(/^-rw-r--r-- /);

    const { manifest } = created;
    expect(manifest).toMatchObject({
      apiVersion: "kubeforge.dev/v1alpha1",
      kind: "Bundle",
      kubernetesVersion: VERSION,
    });
    expect(manifest.files.flatMap((f) => f.images ?? []).sort()).toEqual([...CLUSTER_IMAGES].sort());
    expect(
      manifest.files.find((f) => f.path === "packages/debian-12-amd64/conntrack_1%3a1.4.7-1+b2_amd64.deb"),
    ).toMatchObject({
      kind: "package",
      distro: "debian-12-amd64",
      package: { name: "conntrack", version: "1:1.4.7-1+b2", arch: "amd64" },
    });
    expect(manifest.files.find((f) => f.path === "cni/linux-amd64/portmap")).toMatchObject({
      kind: "cni",
      platform: "linux-amd64",
    });
    expect(manifest.files.find((f) => f.path === "manifests/addons/README")).toMatchObject({
      kind: "manifest",
    });

    const kubelet = manifest.files.find((f) => f.path === "bin/linux-amd64/kubelet");
    const extracted = execFileSync("tar", ["-xOf", bundle, "bin/linux-amd64/kubelet"]);
    expect(kubelet?.sha256).toBe(
      execFileSync("sha256sum", { input: extracted, encoding: "utf8" }).split(" ")[0],
    );
    expect(JSON.parse(execFileSync("tar", ["-xOf", bundle, "manifest.json"], { encoding: "utf8" }))).toEqual(
      manifest,
    );
  });

  it("lists every problem of the directory at once and writes nothing", async () => {
    const dir = testDir();
    const from = join(dir, "from");
    writeBundleDir(from);
    rmSync(join(from, "kubernetes-version"));
    writeFileSync(join(from, "notes.txt"), "");
    writeFileSync(join(from, "images/packed.tar.gz"), "");
    writeFileSync(join(from, "packages/debian-12-amd64/containerd.deb"), "");
    const error = await problemsOf(createBundle(from, join(dir, "out.bundle")));
    expect(error.message).toContain(`4 problems with ${from}`);
    expect(error.message).toContain("has unknown entries: notes.txt");
    expect(error.message).toContain("kubernetes-version: is missing, and no --kubernetes-version was given");
    expect(error.message).toContain("images/packed.tar.gz: is not an uncompressed .tar image archive");
    expect(error.message).toContain("containerd.deb: is not named <name>_<version>_<arch>.deb");
    expect(readdirSync(dir)).toEqual(["from"]);
  });

  it("refuses an image archive that names no image", async () => {
    const dir = testDir();
    const from = join(dir, "from");
    writeBundleDir(from);
    execFileSync("tar", ["-cf", join(from, "images/anonymous.tar"), "-C", from, "kubernetes-version"]);
    const error = await problemsOf(createBundle(from, join(dir, "out.bundle")));
    expect(error.problems).toEqual([
      expect.objectContaining({ member: "images/anonymous.tar", problem: "names no image" }),
    ]);
  });

  it("refuses binaries other than kubelet, kubectl, crictl and kubeadm, which would overwrite dpkg's files", async () => {
    const dir = testDir();
    const from = join(dir, "from");
    writeBundleDir(from);
    writeFileSync(join(from, "bin/linux-amd64/kubeadm"), "test stand-in kubeadm\n");
    writeFileSync(join(from, "bin/linux-amd64/crictl"), "test stand-in crictl\n");
    writeFileSync(join(from, "bin/linux-amd64/runc"), "test stand-in runc\n");
    const error = await problemsOf(createBundle(from, join(dir, "out.bundle")));
    expect(error.problems).toEqual([
      {
        member: "bin/linux-amd64/runc",
        problem:
          "is not kubelet, kubectl, crictl or kubeadm, the only binaries bin/ may hold: prepare installs them to /usr/bin, over any file dpkg owns there",
        fix: "remove it; OS tools such as runc or containerd go in packages/<distro>/ as .debs",
      },
    ]);
    expect(readdirSync(dir)).toEqual(["from"]);

    rmSync(join(from, "bin/linux-amd64/runc"));
    const { manifest } = await createBundle(from, join(dir, "out.bundle"));
    expect(manifest.files.filter((f) => f.kind === "binary").map((f) => f.path)).toEqual([
      "bin/linux-amd64/crictl",
      "bin/linux-amd64/kubeadm",
      "bin/linux-amd64/kubectl",
      "bin/linux-amd64/kubelet",
    ]);
  });

  it("reads names from a docker save archive whose layers are symlinks, and packs it whole", async () => {
    const dir = testDir();
    const from = join(dir, "from");
    writeBundleDir(from, { images: CLUSTER_IMAGES.slice(1) });
    // As docker save before v25 writes a layer two images share: once, then a symlink.
    const layout = join(dir, "docker");
    mkdirSync(join(layout, "aaa"), { recursive: true });
    mkdirSync(join(layout, "bbb"));
    writeFileSync(join(layout, "aaa/layer.tar"), "test stand-in layer\n");
    symlinkSync("../aaa/layer.tar", join(layout, "bbb/layer.tar"));
    const ref = CLUSTER_IMAGES[0] ?? "";
    writeFileSync(
      join(layout, "manifest.json"),
      JSON.stringify([{ Config: "c.json", RepoTags: [ref], Layers: ["aaa/layer.tar", "bbb/layer.tar"] }]),
    );
    const archive = join(from, "images/linked.tar");
    execFileSync("tar", ["-C", layout, "-cf", archive, "."]);
    expect(execFileSync("tar", ["-tvf", archive], { encoding: "utf8" })).toMatch(
      /^l.* \.\/bbb\/layer\.tar -> \.\.\/aaa\/layer\.tar$/m,
    );

    const bundle = join(dir, "k8s.bundle");
    const { manifest } = await createBundle(from, bundle);
    expect(manifest.files.find((f) => f.path === "images/linked.tar")).toMatchObject({ images: [ref] });
    const packed = execFileSync("tar", ["-xOf", bundle, "images/linked.tar"]);
    expect(packed.equals(readFileSync(archive))).toBe(true);
    await openBundle(bundle, { cacheDir: join(dir, "cache") });
  });

  it("leaves no partial file behind when interrupted", async () => {
    const dir = testDir();
    const from = join(dir, "from");
    writeBundleDir(from);
    const controller = new AbortController();
    controller.abort();
    await expect(createBundle(from, join(dir, "out.bundle"), { signal: controller.signal })).rejects.toThrow(
      "interrupted",
    );
    expect(readdirSync(dir)).toEqual(["from"]);
  });
});

describe("openBundle", () => {
  it("streams members by offset and hashes only once per unchanged file", async () => {
    const { bundle, cacheDir } = await made();
    const whole = new Date("2025-01-02T03:04:05Z"); // an mtime utimes can restore exactly
    utimesSync(bundle, whole, whole);
    const opened = await openBundle(bundle, { cacheDir });
    expect(await text(opened.open("bin/linux-amd64/kubectl"))).toBe(
      `#!/bin/sh\necho "test stand-in kubectl ${VERSION}"\n`,
    );
    expect(opened.file("images/first.tar").images).toEqual([CLUSTER_IMAGES[0]]);

    // A flipped byte inside a member, with the file's identity restored: the stamp is trusted...
    const kubectl = (await readTarIndex(bundle)).find((e) => e.name === "bin/linux-amd64/kubectl");
    flipByte(bundle, kubectl?.offset ?? 0);
    utimesSync(bundle, whole, whole);
    await expect(openBundle(bundle, { cacheDir })).resolves.toBeDefined();
    // ...until asked to verify, which always re-hashes.
    const error = await problemsOf(openBundle(bundle, { cacheDir, verify: true }));
    expect(error.problems).toEqual([
      expect.objectContaining({
        member: "bin/linux-amd64/kubectl",
        problem: expect.stringMatching(/^checksum mismatch/),
      }),
    ]);
  });

  it("finds a flipped byte in a bundle it has not seen, naming the member and the fix", async () => {
    const { bundle, cacheDir } = await made();
    const member = (await readTarIndex(bundle)).find((e) => e.name === "images/rest.tar");
    flipByte(bundle, (member?.offset ?? 0) + 700);
    const error = await problemsOf(openBundle(bundle, { cacheDir }));
    expect(error.message).toContain(`1 problem with ${bundle}`);
    expect(error.message).toMatch(
      /images\/rest\.tar: checksum mismatch: sha256 [0-9a-f]{64}, the manifest says/,
    );
    expect(error.message).toContain(
      "fix: the file was damaged or cut short after it was made: copy it again",
    );
  });

  it("refuses a truncated bundle", async () => {
    const { bundle, cacheDir } = await made();
    writeFileSync(bundle, readFileSync(bundle).subarray(0, statSync(bundle).size - 5000));
    const error = await problemsOf(openBundle(bundle, { cacheDir }));
    expect(error.message).toMatch(/truncated: /);
    expect(error.message).toContain("copy it again");
  });

  it("refuses a bundle that lacks a member its manifest lists", async () => {
    const { dir, bundle, cacheDir } = await made();
    const tree = join(dir, "tree");
    execFileSync("mkdir", [tree]);
    execFileSync("tar", ["-xf", bundle, "-C", tree]);
    const repacked = join(dir, "repacked.bundle");
    // GNU tar keeps manifest.json first when named first.
    execFileSync("tar", [
      "--format=ustar",
      "-cf",
      repacked,
      "-C",
      tree,
      "manifest.json",
      "bin/linux-amd64/kubectl",
    ]);
    const error = await problemsOf(openBundle(repacked, { cacheDir }));
    expect(error.problems.map((p) => p.member)).toContain("bin/linux-amd64/kubelet");
    expect(error.message).toContain("bin/linux-amd64/kubelet: is listed in the manifest but missing");
  });

  it("refuses what is not a bundle", async () => {
    const dir = testDir();
    const notTar = join(dir, "random.bin");
    writeFileSync(notTar, Buffer.alloc(4096, 1));
    expect((await problemsOf(openBundle(notTar, { cacheDir: dir }))).message).toContain("not a tar archive");

    const plainTar = join(dir, "plain.tar");
    execFileSync("tar", ["-cf", plainTar, "-C", dir, "random.bin"]);
    expect((await problemsOf(openBundle(plainTar, { cacheDir: dir }))).message).toContain(
      "manifest.json: is not the first member",
    );
    expect((await problemsOf(openBundle(join(dir, "absent"), { cacheDir: dir }))).message).toContain(
      "does not exist",
    );
  });

  it("refuses links among its own members, which cannot be read by offset", async () => {
    const { dir, bundle, cacheDir } = await made();
    const tree = join(dir, "tree");
    mkdirSync(tree);
    execFileSync("tar", ["-xf", bundle, "-C", tree]);
    rmSync(join(tree, "bin/linux-amd64/kubectl"));
    symlinkSync("kubelet", join(tree, "bin/linux-amd64/kubectl"));
    const repacked = join(dir, "linked.bundle");
    execFileSync("tar", ["-cf", repacked, "-C", tree, "manifest.json", "bin"]);
    const error = await problemsOf(openBundle(repacked, { cacheDir }));
    expect(error.message).toContain('member "bin/linux-amd64/kubectl" is of tar type "2", not a file');
  });

  it("refuses a manifest listing a binary that is not a Kubernetes one", async () => {
    const { dir, bundle, cacheDir } = await made();
    const tree = join(dir, "tree");
    mkdirSync(tree);
    execFileSync("tar", ["-xf", bundle, "-C", tree]);
    // A bundle made before bin/ was restricted: runc would replace dpkg's /usr/bin/runc.
    const manifestPath = join(tree, "manifest.json");
    const manifest = JSON.parse(readFileSync(manifestPath, "utf8"));
    const kubectl = manifest.files.find((f: { path: string }) => f.path === "bin/linux-amd64/kubectl");
    kubectl.path = "bin/linux-amd64/runc";
    writeFileSync(manifestPath, JSON.stringify(manifest));
    const repacked = join(dir, "old.bundle");
    execFileSync("tar", ["-cf", repacked, "-C", tree, "manifest.json", "bin"]);
    const error = await problemsOf(openBundle(repacked, { cacheDir }));
    expect(error.message).toMatch(
      /manifest\.json: files\[\d+\] is a binary other than kubelet, kubectl, crictl, kubeadm/,
    );
  });
});
