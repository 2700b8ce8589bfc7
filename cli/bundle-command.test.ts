import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { CLUSTER_IMAGES, VERSION, writeBundleDir } from "../artifacts/testing.js";
import { kubeforge, minimalClusterFile, testDir } from "./testing.js";

const CLUSTER = minimalClusterFile(VERSION);

async function created(images = CLUSTER_IMAGES) {
  const cwd = testDir({ "cluster.yaml": CLUSTER });
  writeBundleDir(join(cwd, "from"), { images });
  const run = await kubeforge(["bundle", "create", "--from-dir", "from", "-o", "k8s.bundle"], { cwd });
  return { cwd, run };
}

describe("kubeforge bundle create", () => {
  it("writes the bundle and sums it up", async () => {
    const { cwd, run } = await created();
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(
      new RegExp(
        `^wrote ${join(cwd, "k8s.bundle")}: Kubernetes ${VERSION}, 14 files, 7 images, [\\d.]+ KiB\\n$`,
      ),
    );
    expect(execFileSync("tar", ["-tf", join(cwd, "k8s.bundle")], { encoding: "utf8" }).split("\n")[0]).toBe(
      "manifest.json",
    );
  });

  it("exits 2 naming the problem and writes nothing for a bad directory", async () => {
    const cwd = testDir();
    writeBundleDir(join(cwd, "from"));
    const run = await kubeforge(
      ["bundle", "create", "--from-dir", "from", "--out", "k8s.bundle", "--kubernetes-version", "v1.29.3"],
      { cwd },
    );
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("kubernetes-version: says v1.30.4, but --kubernetes-version says v1.29.3");
    expect(run.stderr).toContain('"v1.29.3" is not a supported Kubernetes version');
    expect(readdirSync(cwd).sort()).toEqual(["from"]);
  });
});

describe("kubeforge bundle inspect", () => {
  it("shows version, platforms, distros, images and packages, as text and JSON", async () => {
    const { cwd } = await created();
    const text = await kubeforge(["bundle", "inspect", "k8s.bundle"], { cwd });
    expect(text.code).toBe(0);
    expect(text.stdout).toContain(`Kubernetes ${VERSION}, 14 files`);
    expect(text.stdout).toContain("platforms: linux-amd64\ndistros: debian-12-amd64\n");
    expect(text.stdout).toContain("  registry.k8s.io/pause:3.9\n");
    expect(text.stdout).toContain("  conntrack 1:1.4.7-1+b2 amd64 (debian-12-amd64)\n");

    const json = await kubeforge(["-o", "json", "bundle", "inspect", "k8s.bundle"], { cwd });
    const body = JSON.parse(json.stdout);
    expect(body).toMatchObject({
      type: "bundle.inspect",
      kubernetesVersion: VERSION,
      platforms: ["linux-amd64"],
    });
    expect(body.images).toEqual([...CLUSTER_IMAGES].sort());
  });
});

describe("kubeforge bundle verify", () => {
  it("passes a complete bundle for the cluster file", async () => {
    const { cwd } = await created();
    const run = await kubeforge(
      ["bundle", "verify", "k8s.bundle", "-f", "cluster.yaml", "--distro", "debian-12-amd64"],
      {
        cwd,
      },
    );
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/: 14 checksums OK; complete for cluster.yaml on debian-12-amd64\n$/);
  });

  it("exits 2 listing what an incomplete bundle lacks", async () => {
    const { cwd } = await created(CLUSTER_IMAGES.filter((ref) => !ref.includes("etcd")));
    const run = await kubeforge(
      ["bundle", "verify", "k8s.bundle", "-f", "cluster.yaml", "--platform", "linux-arm64"],
      { cwd },
    );
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("- lacks kubelet for linux-arm64 (bin/linux-arm64/kubelet)");
    expect(run.stderr).toContain("- lacks image registry.k8s.io/etcd:3.5.15-0");
  });

  it("refuses a bundle for another version", async () => {
    const { cwd } = await created();
    writeFileSync(join(cwd, "cluster.yaml"), CLUSTER.replace(VERSION, "v1.30.5"));
    const run = await kubeforge(["bundle", "verify", "k8s.bundle", "-f", "cluster.yaml"], { cwd });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("lacks Kubernetes v1.30.5: the bundle is for v1.30.4");
  });

  it("always re-hashes, so a corrupted bundle fails even after inspect stamped it", async () => {
    const { cwd } = await created();
    expect((await kubeforge(["bundle", "inspect", "k8s.bundle"], { cwd })).code).toBe(0);
    const path = join(cwd, "k8s.bundle");
    const bytes = readFileSync(path);
    bytes[bytes.length - 1536] = 0x58; // inside the last member's data
    writeFileSync(path, bytes);
    const run = await kubeforge(["bundle", "verify", "k8s.bundle"], { cwd });
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/checksum mismatch/);
  });

  it("exits 2 on --platform or --distro without -f, which would check nothing", async () => {
    const { cwd } = await created();
    for (const flag of ["--platform=linux-arm64", "--distro=debian-12-amd64"]) {
      const run = await kubeforge(["bundle", "verify", "k8s.bundle", flag], { cwd });
      expect(run.code).toBe(2);
      expect(run.stderr).toContain(
        "--platform/--distro check completeness for a cluster file: add -f cluster.yaml",
      );
      expect(run.stdout).toBe("");
    }
  });

  it("exits 2 on a malformed --distro", async () => {
    const { cwd } = await created();
    const run = await kubeforge(
      ["bundle", "verify", "k8s.bundle", "-f", "cluster.yaml", "--distro", "debian"],
      {
        cwd,
      },
    );
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("--distro debian: expected <id>-<version>-<arch>, e.g. debian-12-amd64");
  });
});
