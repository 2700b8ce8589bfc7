// What the store does with existing material: reuse, refuse a mismatch without touching a file,
// renew, take a user's CA, and list. ECDSA keys keep each fresh store under a second.
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { PkiError, UsageError } from "../workflow/errors.js";
import { pkiInputs } from "./specs.js";
import { ensurePki, listStore, missingFiles, renew, userKubeconfig } from "./store.js";
import {
  clusterFile,
  extensionOf,
  keyMatchesCert,
  openssl,
  snapshot,
  subjectOf,
  tempClusterDir,
  validityOf,
  verifies,
} from "./testing.js";

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => {
  ({ dir, cleanup } = await tempClusterDir());
});
afterEach(() => cleanup());

const path = (file: string) => join(dir, file);
const cluster = clusterFile();

/** The PkiError a call throws (fails the test when it throws nothing or something else). */
async function pkiErrorOf(promise: Promise<unknown>): Promise<PkiError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(PkiError);
  return error as PkiError;
}

function changedFiles(
  before: Map<string, { sha256: string }>,
  after: Map<string, { sha256: string }>,
): string[] {
  const names = new Set([...before.keys(), ...after.keys()]);
  return [...names].filter((name) => before.get(name)?.sha256 !== after.get(name)?.sha256).sort();
}

describe("a store that no longer matches the cluster file", () => {
  it("names the SAN difference and the fix, and changes no file", async () => {
    await ensurePki(cluster, dir);
    const before = await snapshot(dir);
    const changed = clusterFile({ certSANs: ["api.example.com", "198.18.0.100", "new.example.com"] });
    const error = await pkiErrorOf(ensurePki(changed, dir, { clusterFile: "cluster.yaml" }));
    expect(error.problems).toEqual(
      ["cp1", "cp2"].map((node) => ({
        subject: `apiserver (${node})`,
        file: `nodes/${node}/pki/apiserver.crt`,
        problem: "SANs: missing DNS:new.example.com",
        fix: "kubeforge certs renew apiserver -f cluster.yaml",
      })),
    );
    expect(error.message).toContain("SANs: missing DNS:new.example.com");
    expect(await snapshot(dir)).toEqual(before);
  });

  it("names a changed algorithm for every leaf and kubeconfig, before generating anything", async () => {
    await ensurePki(cluster, dir);
    const before = await snapshot(dir);
    const error = await pkiErrorOf(ensurePki(clusterFile({ algorithm: "RSA-2048" }), dir));
    const algorithmProblems = error.problems.filter(
      (p) => p.problem === "key algorithm: ECDSA-P256, expected RSA-2048",
    );
    // 7 leaves and 3 kubeconfigs per node, admin.conf and super-admin.conf; CAs and sa are kept as they are.
    expect(algorithmProblems).toHaveLength(7 * 2 + 3 * 2 + 2);
    expect(error.problems.some((p) => p.subject === "ca")).toBe(false);
    expect(await snapshot(dir)).toEqual(before);
  });

  it("names a changed identity (an upgrade that changes O) with its renew fix", async () => {
    await ensurePki(clusterFile({ version: "v1.34.7" }), dir);
    const error = await pkiErrorOf(ensurePki(clusterFile({ version: "v1.34.8" }), dir));
    expect(error.problems).toContainEqual({
      subject: "apiserver-kubelet-client (cp1)",
      file: "nodes/cp1/pki/apiserver-kubelet-client.crt",
      problem: "O: kubeadm:cluster-admins, expected none",
      fix: "kubeforge certs renew apiserver-kubelet-client -f FILE",
    });
  });

  it("refuses a leaf signed by another CA, and a key that does not match", async () => {
    const { dir: other, cleanup: cleanupOther } = await tempClusterDir();
    try {
      await Promise.all([ensurePki(cluster, dir), ensurePki(cluster, other)]);
      await writeFile(
        path("nodes/cp1/pki/apiserver.crt"),
        await readFile(join(other, "nodes/cp1/pki/apiserver.crt")),
      );
      await writeFile(
        path("nodes/cp2/pki/etcd/peer.key"),
        await readFile(join(other, "nodes/cp2/pki/etcd/peer.key")),
      );
      const error = await pkiErrorOf(ensurePki(cluster, dir));
      expect(error.problems.map((p) => [p.subject, p.problem])).toEqual([
        ["apiserver (cp1)", "not signed by the store's ca"],
        ["apiserver (cp1)", "the key does not match the certificate"],
        ["etcd-peer (cp2)", "the key does not match the certificate"],
      ]);
    } finally {
      await cleanupOther();
    }
  });

  it("refuses a kubeconfig whose server changed, naming the kubeconfig's renew", async () => {
    await ensurePki(cluster, dir);
    const moved = clusterFile({ kubernetes: ["controlPlaneEndpoint: lb.example.com:8443"] });
    const error = await pkiErrorOf(ensurePki(moved, dir));
    expect(error.problems).toContainEqual({
      subject: "admin.conf",
      file: "kubeconfigs/admin.conf",
      problem: "server: https://demo-api:6443, expected https://lb.example.com:8443",
      fix: "kubeforge certs renew admin.conf -f FILE",
    });
    expect(error.problems).toContainEqual(
      expect.objectContaining({
        subject: "apiserver (cp1)",
        problem: "SANs: missing DNS:lb.example.com; unexpected DNS:demo-api",
      }),
    );
  });
});

describe("renew", () => {
  it("re-signs the named leaf on every node with the current spec and keeps everything else", async () => {
    await ensurePki(cluster, dir);
    const before = await snapshot(dir);
    const changed = clusterFile({ certSANs: ["api.example.com", "198.18.0.100", "new.example.com"] });
    expect(await renew(changed, dir, "apiserver")).toEqual({ renewed: ["cp1/apiserver", "cp2/apiserver"] });
    expect(changedFiles(before, await snapshot(dir))).toEqual([
      "nodes/cp1/pki/apiserver.crt",
      "nodes/cp1/pki/apiserver.key",
      "nodes/cp2/pki/apiserver.crt",
      "nodes/cp2/pki/apiserver.key",
    ]);
    expect(await extensionOf(path("nodes/cp2/pki/apiserver.crt"), "subjectAltName")).toContain(
      "DNS:new.example.com",
    );
    expect(await verifies(path("pki/ca.crt"), path("nodes/cp2/pki/apiserver.crt"))).toBe(true);
    const key = await readFile(path("nodes/cp2/pki/apiserver.key"), "utf8");
    expect(await keyMatchesCert(key, await readFile(path("nodes/cp2/pki/apiserver.crt"), "utf8"))).toBe(true);
    const after = await ensurePki(changed, dir);
    expect(after.created).toEqual([]);
  });

  it("renews one node only when asked, and kubeconfigs by name", async () => {
    await ensurePki(cluster, dir);
    const before = await snapshot(dir);
    expect(await renew(cluster, dir, "etcd-server", { nodes: ["cp2"] })).toEqual({
      renewed: ["cp2/etcd-server"],
    });
    expect(await renew(cluster, dir, "admin.conf")).toEqual({ renewed: ["admin.conf"] });
    expect(changedFiles(before, await snapshot(dir))).toEqual([
      "kubeconfigs/admin.conf",
      "nodes/cp2/pki/etcd/server.crt",
      "nodes/cp2/pki/etcd/server.key",
    ]);
    expect((await ensurePki(cluster, dir)).created).toEqual([]);
  });

  it("renews every leaf and kubeconfig but kubelet.conf with `all`, never a CA or sa", async () => {
    await ensurePki(cluster, dir);
    const before = await snapshot(dir);
    const { renewed } = await renew(cluster, dir, "all");
    expect(renewed).toHaveLength(7 * 2 + 2 + 2 * 2);
    const changed = changedFiles(before, await snapshot(dir));
    expect(changed.filter((f) => f.startsWith("pki/"))).toEqual([]);
    expect(changed.filter((f) => f.endsWith("kubelet.conf"))).toEqual([]);
    expect(changed).toHaveLength(7 * 2 * 2 + 2 + 2 * 2);
  });

  it("refuses CAs and unknown names as usage errors", async () => {
    await ensurePki(cluster, dir);
    await expect(renew(cluster, dir, "ca")).rejects.toThrow(UsageError);
    await expect(renew(cluster, dir, "etcd-ca")).rejects.toThrow("CAs are never renewed");
    await expect(renew(cluster, dir, "apiserver-typo")).rejects.toThrow(
      /unknown certificate "apiserver-typo"; renewable: apiserver, /,
    );
    await expect(renew(cluster, dir, "apiserver", { nodes: ["w1"] })).rejects.toThrow(
      "not a control-plane host: w1",
    );
  });

  it("needs the CA's key", async () => {
    await ensurePki(cluster, dir);
    await rm(path("pki/ca.key"));
    const error = await pkiErrorOf(renew(cluster, dir, "apiserver"));
    expect(error.problems[0]?.problem).toBe("pki/ca.key is missing (an external CA is not supported yet)");
  });
});

describe("existing material", () => {
  it("uses a user-provided CA as it is and signs the leaves with it", async () => {
    const { mkdir } = await import("node:fs/promises");
    await mkdir(path("pki"), { recursive: true });
    const made = await openssl([
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-keyout",
      path("pki/ca.key"),
      "-out",
      path("pki/ca.crt"),
      "-days",
      "30",
      "-subj",
      "/O=Example Corp/CN=Example Kubernetes CA",
    ]);
    expect(made.code).toBe(0);
    const userCa = await readFile(path("pki/ca.crt"), "utf8");
    const result = await ensurePki(cluster, dir);
    expect(result.reused).toEqual(["ca"]);
    expect(result.created).not.toContain("ca");
    expect(await readFile(path("pki/ca.crt"), "utf8")).toBe(userCa);
    for (const leaf of ["apiserver", "apiserver-kubelet-client"]) {
      expect(await verifies(path("pki/ca.crt"), path(`nodes/cp1/pki/${leaf}.crt`))).toBe(true);
    }
    // A leaf never outlives its CA: the user's CA ends in 30 days.
    const ca = await validityOf(path("pki/ca.crt"));
    expect((await validityOf(path("nodes/cp1/pki/apiserver.crt"))).notAfter).toEqual(ca.notAfter);
    expect(await readFile(path("kubeconfigs/admin.conf"), "utf8")).toContain(
      Buffer.from(userCa).toString("base64"),
    );
    expect((await ensurePki(cluster, dir)).created).toEqual([]);
  });

  it("refuses a CA certificate without its key while something it signs is missing", async () => {
    await ensurePki(cluster, dir);
    await rm(path("pki/ca.key"));
    await rm(path("nodes/cp2/pki/apiserver.crt"));
    await rm(path("nodes/cp2/pki/apiserver.key"));
    const before = await snapshot(dir);
    const error = await pkiErrorOf(ensurePki(cluster, dir));
    expect(error.problems).toEqual([
      {
        subject: "apiserver (cp2)",
        file: "nodes/cp2/pki/apiserver.crt",
        problem: "missing, and ca's key is not in the store (an external CA is not supported yet)",
        fix: "put pki/ca.key in the store, or provide nodes/cp2/pki/apiserver.crt and nodes/cp2/pki/apiserver.key",
      },
    ]);
    expect(await snapshot(dir)).toEqual(before);
  });

  it("accepts a CA certificate without its key when everything it signs exists", async () => {
    await ensurePki(cluster, dir);
    await rm(path("pki/ca.key"));
    const result = await ensurePki(cluster, dir);
    expect(result.created).toEqual([]);
    const ca = (await listStore(cluster, dir)).find((e) => e.id === "ca");
    expect(ca?.externallyManaged).toBe(true);
  });

  it("generates again only what is missing, including a key left without its certificate", async () => {
    await ensurePki(cluster, dir);
    await rm(path("nodes/cp1/pki/etcd/peer.crt"));
    await rm(path("kubeconfigs/super-admin.conf"));
    const before = await snapshot(dir);
    const result = await ensurePki(cluster, dir);
    expect(result.created).toEqual(["cp1/etcd-peer", "super-admin.conf"]);
    expect(changedFiles(before, await snapshot(dir))).toEqual([
      "kubeconfigs/super-admin.conf",
      "nodes/cp1/pki/etcd/peer.crt",
      "nodes/cp1/pki/etcd/peer.key",
    ]);
    expect(await verifies(path("pki/etcd/ca.crt"), path("nodes/cp1/pki/etcd/peer.crt"))).toBe(true);
  });

  it("refuses leaves whose CA is gone instead of re-signing around them", async () => {
    await ensurePki(cluster, dir);
    await rm(path("pki/front-proxy-ca.crt"));
    await rm(path("pki/front-proxy-ca.key"));
    const error = await pkiErrorOf(ensurePki(cluster, dir));
    expect(error.problems.map((p) => p.subject)).toEqual([
      "front-proxy-client (cp1)",
      "front-proxy-client (cp2)",
    ]);
    expect(error.problems[0]?.problem).toBe("signed by a front-proxy-ca that is no longer in the store");
  });

  it("needs a node IP for every control plane", () => {
    const text = clusterFile();
    const hostnameOnly = {
      ...text,
      spec: {
        ...text.spec,
        hosts: [
          { ...text.spec.hosts[0], name: "cp1", address: "cp1.example.com", role: "control-plane" as const },
        ],
      },
    } as typeof text;
    expect(() => pkiInputs(hostnameOnly)).toThrow(PkiError);
    expect(() => pkiInputs(hostnameOnly)).toThrow("set spec.hosts[0].privateAddress to the node's IP");
  });
});

describe("listing", () => {
  it("lists every certificate, key and kubeconfig with its identity and expiry, and what is missing", async () => {
    expect(await missingFiles(cluster, dir)).toHaveLength(3 * 2 + 2 + 7 * 2 * 2 + 2 + 3 * 2);
    await ensurePki(cluster, dir);
    expect(await missingFiles(cluster, dir)).toEqual([]);
    await rm(path("nodes/cp2/pki/apiserver.key"));
    expect(await missingFiles(cluster, dir)).toEqual(["nodes/cp2/pki/apiserver.key"]);
    // A CA certificate without its key is an external CA: the key is not missing, it is elsewhere.
    const caKey = await readFile(path("pki/ca.key"));
    await rm(path("pki/ca.key"));
    expect(await missingFiles(cluster, dir)).toEqual(["nodes/cp2/pki/apiserver.key"]);
    await writeFile(path("pki/ca.key"), caKey, { mode: 0o600 });

    const entries = await listStore(cluster, dir);
    expect(entries.map((e) => e.id).slice(0, 6)).toEqual([
      "ca",
      "front-proxy-ca",
      "etcd-ca",
      "sa",
      "cp1/apiserver",
      "cp2/apiserver",
    ]);
    expect(entries).toHaveLength(3 + 1 + 14 + 2 + 6);
    const byId = new Map(entries.map((e) => [e.id, e]));
    expect(byId.get("etcd-ca")).toMatchObject({
      kind: "ca",
      file: "pki/etcd/ca.crt",
      commonName: "etcd-ca",
      residual: "9y",
      signedBy: undefined,
      algorithm: "ECDSA-P256",
      externallyManaged: false,
    });
    expect(byId.get("cp2/etcd-server")).toMatchObject({
      name: "etcd-server",
      kind: "certificate",
      node: "cp2",
      file: "nodes/cp2/pki/etcd/server.crt",
      commonName: "cp2",
      organizations: [],
      sans: ["DNS:cp2", "DNS:localhost", "IP:198.18.0.12", "IP:127.0.0.1", "IP:::1"],
      signedBy: "etcd-ca",
      residual: "364d",
    });
    expect(byId.get("admin.conf")).toMatchObject({
      kind: "kubeconfig",
      file: "kubeconfigs/admin.conf",
      commonName: "kubernetes-admin",
      organizations: ["kubeadm:cluster-admins"],
      signedBy: "ca",
    });
    expect(byId.get("sa")).toMatchObject({
      kind: "key",
      file: "pki/sa.key",
      present: true,
      algorithm: "ECDSA-P256",
    });
    const later = await listStore(cluster, dir, { now: new Date(Date.now() + 400 * 24 * 3_600_000) });
    expect(later.find((e) => e.id === "cp1/apiserver")?.residual).toBe("<invalid>");
    expect(later.find((e) => e.id === "cp1/apiserver")?.residualMs).toBeLessThan(0);
  });
});

describe("userKubeconfig", () => {
  it("signs a client certificate CN=name, O=groups with the cluster CA, for the given validity", async () => {
    await ensurePki(cluster, dir);
    const text = await userKubeconfig(cluster, dir, {
      name: "alice",
      groups: ["dev", "ops"],
      validity: "720h",
    });
    const { parseKubeconfig, currentCredentials } = await import("./kubeconfigs.js");
    const config = parseKubeconfig(text);
    expect(config["current-context"]).toBe("alice@kubernetes");
    const credentials = currentCredentials(config);
    expect(credentials.server).toBe("https://demo-api:6443");
    expect(credentials.caPem).toBe(await readFile(path("pki/ca.crt"), "utf8"));
    const certFile = join(dir, "..", "alice.crt");
    await writeFile(certFile, credentials.certPem ?? "");
    expect(await verifies(path("pki/ca.crt"), certFile)).toBe(true);
    expect(await subjectOf(certFile)).toBe("O = dev + O = ops, CN = alice");
    const { notBefore, notAfter } = await validityOf(certFile);
    expect(notAfter.getTime() - notBefore.getTime()).toBe(720 * 3_600_000 + 5 * 60_000);
    expect(await keyMatchesCert(credentials.keyPem ?? "", credentials.certPem ?? "")).toBe(true);
    await expect(userKubeconfig(cluster, dir, { name: "bob", validity: "a week" })).rejects.toThrow(
      UsageError,
    );
  });

  it("needs the CA in the store", async () => {
    const error = await pkiErrorOf(userKubeconfig(cluster, dir, { name: "alice" }));
    expect(error.problems[0]).toMatchObject({ subject: "ca", problem: "the CA is not in the store" });
  });
});
