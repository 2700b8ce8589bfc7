// Identities that do not depend on the node are one key and certificate per cluster, copied into
// every control plane's files: generated once, copied to a node added later, renewed everywhere at
// once, and refused when the copies differ.
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { PkiError } from "../workflow/errors.js";
import { currentCredentials, parseKubeconfig } from "./kubeconfigs.js";
import { ensurePki, renew } from "./store.js";
import { clusterFile, keyMatchesCert, snapshot, tempClusterDir, verifies } from "./testing.js";

const SHARED_LEAVES = [
  "apiserver-kubelet-client",
  "front-proxy-client",
  "apiserver-etcd-client",
  "etcd/healthcheck-client",
] as const;
const NODE_LEAVES = ["apiserver", "etcd/server", "etcd/peer"] as const;
const SHARED_KUBECONFIGS = ["controller-manager.conf", "scheduler.conf"] as const;

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => {
  ({ dir, cleanup } = await tempClusterDir());
});
afterEach(() => cleanup());

const path = (file: string) => join(dir, file);
const text = (file: string) => readFile(path(file), "utf8");
const credentials = async (file: string) => currentCredentials(parseKubeconfig(await text(file)));

function changedFiles(
  before: Map<string, { sha256: string }>,
  after: Map<string, { sha256: string }>,
): string[] {
  const names = new Set([...before.keys(), ...after.keys()]);
  return [...names].filter((name) => before.get(name)?.sha256 !== after.get(name)?.sha256).sort();
}

/** Every private key in the store: key files and kubeconfigs' embedded client keys. */
async function privateKeys(): Promise<string[]> {
  const keys: string[] = [];
  for (const [file, state] of await snapshot(dir)) {
    if (state.sha256 === "dir") continue;
    if (file.endsWith(".key")) keys.push(await text(file));
    if (file.endsWith(".conf")) keys.push((await credentials(file)).keyPem ?? "");
  }
  return keys;
}

async function pkiErrorOf(promise: Promise<unknown>): Promise<PkiError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(PkiError);
  return error as PkiError;
}

describe("shared identities", () => {
  it("are one key and certificate written to every control plane; node identities stay distinct", async () => {
    const result = await ensurePki(clusterFile({ controlPlanes: 3, version: "v1.30.4" }), dir);
    // Ids and files stay per node, as kubeadm lays them out.
    expect(result.created).toContain("cp3/front-proxy-client");
    expect(result.created).toContain("cp2/scheduler.conf");
    for (const base of SHARED_LEAVES) {
      for (const ext of ["crt", "key"]) {
        const copies = await Promise.all(
          ["cp1", "cp2", "cp3"].map((n) => text(`nodes/${n}/pki/${base}.${ext}`)),
        );
        expect([base, ext, new Set(copies).size]).toEqual([base, ext, 1]);
      }
    }
    for (const base of NODE_LEAVES) {
      const keys = await Promise.all(["cp1", "cp2", "cp3"].map((n) => text(`nodes/${n}/pki/${base}.key`)));
      expect([base, new Set(keys).size]).toEqual([base, 3]);
    }
    for (const conf of SHARED_KUBECONFIGS) {
      const all = await Promise.all(["cp1", "cp2", "cp3"].map((n) => credentials(`nodes/${n}/${conf}`)));
      expect(new Set(all.map((c) => c.certPem)).size).toBe(1);
      expect(new Set(all.map((c) => c.keyPem)).size).toBe(1);
      // Each node's file still dials its own API server.
      expect(all.map((c) => c.server)).toEqual([
        "https://198.18.0.11:6443",
        "https://198.18.0.12:6443",
        "https://198.18.0.13:6443",
      ]);
    }
    const kubelets = await Promise.all(
      ["cp1", "cp2", "cp3"].map((n) => credentials(`nodes/${n}/kubelet.conf`)),
    );
    expect(new Set(kubelets.map((c) => c.keyPem)).size).toBe(3);
    // 3 CAs, sa, 3 node leaves × 3 nodes, 4 shared leaves, admin, super-admin, 2 shared clients, 3 kubelets.
    const keys = await privateKeys();
    expect(keys).toHaveLength(3 + 1 + 7 * 3 + 2 + 3 * 3);
    expect(new Set(keys).size).toBe(3 + 1 + 3 * 3 + 4 + 2 + 2 + 3);
    expect(await verifies(path("pki/front-proxy-ca.crt"), path("nodes/cp3/pki/front-proxy-client.crt"))).toBe(
      true,
    );
    expect((await ensurePki(clusterFile({ controlPlanes: 3, version: "v1.30.4" }), dir)).created).toEqual([]);
  });

  it("are copied, not generated again, to a control plane added later", async () => {
    await ensurePki(clusterFile({ controlPlanes: 2 }), dir);
    const before = await snapshot(dir);
    const result = await ensurePki(clusterFile({ controlPlanes: 3 }), dir);
    expect(result.created).toEqual([
      "cp3/apiserver",
      "cp3/apiserver-kubelet-client",
      "cp3/front-proxy-client",
      "cp3/etcd-server",
      "cp3/etcd-peer",
      "cp3/etcd-healthcheck-client",
      "cp3/apiserver-etcd-client",
      "cp3/controller-manager.conf",
      "cp3/scheduler.conf",
      "cp3/kubelet.conf",
    ]);
    expect(changedFiles(before, await snapshot(dir)).filter((f) => !f.startsWith("nodes/cp3"))).toEqual([]);
    for (const base of SHARED_LEAVES) {
      expect(await text(`nodes/cp3/pki/${base}.crt`)).toBe(await text(`nodes/cp1/pki/${base}.crt`));
      expect(await text(`nodes/cp3/pki/${base}.key`)).toBe(await text(`nodes/cp1/pki/${base}.key`));
    }
    for (const conf of SHARED_KUBECONFIGS) {
      const [cp1, cp3] = await Promise.all([
        credentials(`nodes/cp1/${conf}`),
        credentials(`nodes/cp3/${conf}`),
      ]);
      expect(cp3.certPem).toBe(cp1.certPem);
      expect(cp3.keyPem).toBe(cp1.keyPem);
      expect(cp3.server).toBe("https://198.18.0.13:6443");
    }
    expect(await text("nodes/cp3/pki/apiserver.key")).not.toBe(await text("nodes/cp1/pki/apiserver.key"));
  });

  it("are copied over a key left without its certificate (a crash between the two writes)", async () => {
    await ensurePki(clusterFile({ controlPlanes: 3 }), dir);
    await rm(path("nodes/cp2/pki/front-proxy-client.crt"));
    await writeFile(path("nodes/cp2/pki/front-proxy-client.key"), "half a key");
    const result = await ensurePki(clusterFile({ controlPlanes: 3 }), dir);
    expect(result.created).toEqual(["cp2/front-proxy-client"]);
    expect(await text("nodes/cp2/pki/front-proxy-client.key")).toBe(
      await text("nodes/cp1/pki/front-proxy-client.key"),
    );
  });

  it("are copied to a new node even when their CA's key is not in the store", async () => {
    await ensurePki(clusterFile({ controlPlanes: 2 }), dir);
    await rm(path("pki/front-proxy-ca.key"));
    const result = await ensurePki(clusterFile({ controlPlanes: 3 }), dir);
    expect(result.created).toContain("cp3/front-proxy-client");
    expect(await text("nodes/cp3/pki/front-proxy-client.crt")).toBe(
      await text("nodes/cp1/pki/front-proxy-client.crt"),
    );
  });

  it("are refused when one node's copy differs, naming it and the renew, with no file changed", async () => {
    const cluster = clusterFile({ controlPlanes: 3 });
    const { dir: other, cleanup: cleanupOther } = await tempClusterDir();
    try {
      await ensurePki(cluster, dir);
      // A valid front-proxy-client of the same CA, but another key: copy the store, renew there.
      const { cp } = await import("node:fs/promises");
      await cp(dir, other, { recursive: true });
      await renew(cluster, other, "front-proxy-client");
      for (const ext of ["crt", "key"]) {
        await writeFile(
          path(`nodes/cp2/pki/front-proxy-client.${ext}`),
          await readFile(join(other, `nodes/cp2/pki/front-proxy-client.${ext}`)),
        );
      }
      const before = await snapshot(dir);
      const error = await pkiErrorOf(ensurePki(cluster, dir, { clusterFile: "cluster.yaml" }));
      expect(error.problems).toEqual([
        {
          subject: "front-proxy-client (cp2)",
          file: "nodes/cp2/pki/front-proxy-client.crt",
          problem:
            "not the same certificate and key as nodes/cp1/pki/front-proxy-client.crt: every control plane shares one front-proxy-client",
          fix: "kubeforge certs renew front-proxy-client -f cluster.yaml",
        },
      ]);
      expect(await snapshot(dir)).toEqual(before);
      // The named fix makes them one again.
      await renew(cluster, dir, "front-proxy-client");
      expect((await ensurePki(cluster, dir)).created).toEqual([]);
    } finally {
      await cleanupOther();
    }
  });

  it("are renewed once and rewritten on every node, even when the renew names one node", async () => {
    const cluster = clusterFile({ controlPlanes: 3 });
    await ensurePki(cluster, dir);
    const before = await snapshot(dir);
    const oldKey = await text("nodes/cp1/pki/front-proxy-client.key");
    expect(await renew(cluster, dir, "front-proxy-client", { nodes: ["cp2"] })).toEqual({
      renewed: ["cp1/front-proxy-client", "cp2/front-proxy-client", "cp3/front-proxy-client"],
    });
    expect(await renew(cluster, dir, "scheduler.conf")).toEqual({
      renewed: ["cp1/scheduler.conf", "cp2/scheduler.conf", "cp3/scheduler.conf"],
    });
    expect(changedFiles(before, await snapshot(dir))).toEqual(
      [
        ...["cp1", "cp2", "cp3"].flatMap((n) => [
          `nodes/${n}/pki/front-proxy-client.crt`,
          `nodes/${n}/pki/front-proxy-client.key`,
          `nodes/${n}/scheduler.conf`,
        ]),
      ].sort(),
    );
    const key = await text("nodes/cp1/pki/front-proxy-client.key");
    expect(key).not.toBe(oldKey);
    for (const node of ["cp2", "cp3"]) {
      expect(await text(`nodes/${node}/pki/front-proxy-client.key`)).toBe(key);
      expect(await text(`nodes/${node}/pki/front-proxy-client.crt`)).toBe(
        await text("nodes/cp1/pki/front-proxy-client.crt"),
      );
    }
    expect(await keyMatchesCert(key, await text("nodes/cp3/pki/front-proxy-client.crt"))).toBe(true);
    const schedulers = await Promise.all(
      ["cp1", "cp2", "cp3"].map((n) => credentials(`nodes/${n}/scheduler.conf`)),
    );
    expect(new Set(schedulers.map((c) => c.certPem)).size).toBe(1);
    expect(schedulers.map((c) => c.server)).toEqual([
      "https://198.18.0.11:6443",
      "https://198.18.0.12:6443",
      "https://198.18.0.13:6443",
    ]);
    expect((await ensurePki(cluster, dir)).created).toEqual([]);
  });

  it("keep `renew all` one identity per shared name, and node identities per node", async () => {
    const cluster = clusterFile({ controlPlanes: 2 });
    await ensurePki(cluster, dir);
    const { renewed } = await renew(cluster, dir, "all", { nodes: ["cp1"] });
    // cp1's own leaves, every node's shared leaves and shared kubeconfigs, admin.conf and super-admin.conf.
    expect(renewed).toHaveLength(3 + 4 * 2 + 2 * 2 + 2);
    expect(renewed).not.toContain("cp2/apiserver");
    expect(renewed).toContain("cp2/apiserver-etcd-client");
    expect(await text("nodes/cp2/pki/apiserver-etcd-client.key")).toBe(
      await text("nodes/cp1/pki/apiserver-etcd-client.key"),
    );
    expect((await ensurePki(cluster, dir)).created).toEqual([]);
  });
});
