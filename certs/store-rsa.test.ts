// RSA end to end: one RSA-2048 store (generated once for the file: RSA keys take ~0.25 s each),
// and RSA-3072/RSA-4096 through the same builder with a CA and one leaf each. ECDSA-P256 and every
// supported version are covered by store.test.ts.
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generatePrivateKey, privateKeyToPem } from "./keys.js";
import { pkiInputs, resolveCerts } from "./specs.js";
import { ensurePki } from "./store.js";
import {
  clusterFile,
  extensionOf,
  keyMatchesCert,
  openssl,
  subjectOf,
  tempClusterDir,
  verifies,
} from "./testing.js";
import { signCertificate } from "./x509.js";

// All three sets are started at once, so both cores share the work.
const store = (async () => {
  const { dir, cleanup } = await tempClusterDir();
  await ensurePki(clusterFile({ version: "v1.21.14", algorithm: "RSA-2048", controlPlanes: 1 }), dir);
  return { dir, cleanup };
})();

async function buildChain(algorithm: "RSA-3072" | "RSA-4096") {
  const { dir, cleanup } = await tempClusterDir();
  await mkdir(dir, { recursive: true });
  const certs = resolveCerts(pkiInputs(clusterFile({ algorithm, controlPlanes: 1 })));
  const caSpec = certs.find((c) => c.id === "etcd-ca");
  const leafSpec = certs.find((c) => c.id === "cp1/etcd-server");
  if (!caSpec || !leafSpec) throw new Error("table rows missing");
  const [caKey, leafKey] = await Promise.all([generatePrivateKey(algorithm), generatePrivateKey(algorithm)]);
  const validity = { notBefore: new Date(), notAfter: new Date(Date.now() + 3_600_000) };
  const ca = await signCertificate(caSpec.profile, validity, caKey);
  const leaf = await signCertificate(leafSpec.profile, validity, leafKey, { certificate: ca, key: caKey });
  await writeFile(join(dir, "ca.crt"), ca.pem);
  await writeFile(join(dir, "leaf.crt"), leaf.pem);
  await writeFile(join(dir, "leaf.key"), privateKeyToPem(leafKey));
  return { dir, cleanup };
}
const chains = { "RSA-3072": buildChain("RSA-3072"), "RSA-4096": buildChain("RSA-4096") };

describe("an RSA-2048 store (v1.21, one control plane)", () => {
  let dir: string;
  const path = (file: string) => join(dir, file);
  beforeAll(async () => {
    ({ dir } = await store);
  }, 120_000);
  afterAll(async () => (await store).cleanup());
  it("writes PKCS#1 RSA keys of 2048 bits that match their certificates", async () => {
    const bases = [
      "pki/ca",
      "pki/front-proxy-ca",
      "pki/etcd/ca",
      ...["apiserver", "apiserver-kubelet-client", "front-proxy-client", "apiserver-etcd-client"].map(
        (b) => `nodes/cp1/pki/${b}`,
      ),
      ...["server", "peer", "healthcheck-client"].map((b) => `nodes/cp1/pki/etcd/${b}`),
    ];
    for (const base of bases) {
      const key = await readFile(path(`${base}.key`), "utf8");
      expect(key.startsWith("-----BEGIN RSA PRIVATE KEY-----\n")).toBe(true);
      expect((await openssl(["rsa", "-check", "-noout"], key)).stdout.trim()).toBe("RSA key ok");
      const cert = await readFile(path(`${base}.crt`), "utf8");
      expect([base, await keyMatchesCert(key, cert)]).toEqual([base, true]);
      const text = (await openssl(["x509", "-noout", "-text"], cert)).stdout;
      expect(text).toContain("Public-Key: (2048 bit)");
      expect(text).toContain("Signature Algorithm: sha256WithRSAEncryption");
    }
    expect((await readFile(path("pki/sa.key"), "utf8")).startsWith("-----BEGIN RSA PRIVATE KEY-----\n")).toBe(
      true,
    );
  });

  it("chains every leaf and kubeconfig to its CA with openssl", async () => {
    for (const [leaf, ca] of [
      ["apiserver", "ca"],
      ["apiserver-kubelet-client", "ca"],
      ["front-proxy-client", "front-proxy-ca"],
      ["etcd/server", "etcd/ca"],
      ["etcd/peer", "etcd/ca"],
      ["etcd/healthcheck-client", "etcd/ca"],
      ["apiserver-etcd-client", "etcd/ca"],
    ]) {
      expect([leaf, await verifies(path(`pki/${ca}.crt`), path(`nodes/cp1/pki/${leaf}.crt`))]).toEqual([
        leaf,
        true,
      ]);
    }
    expect(await verifies(path("pki/ca.crt"), path("nodes/cp1/pki/front-proxy-client.crt"))).toBe(false);
    expect(await subjectOf(path("nodes/cp1/pki/apiserver-etcd-client.crt"))).toBe(
      "O = system:masters, CN = kube-apiserver-etcd-client",
    );
  });
});

describe.each([
  ["RSA-3072", 3072],
  ["RSA-4096", 4096],
] as const)("the builder with %s keys", (algorithm, bits) => {
  let dir: string;
  beforeAll(async () => {
    ({ dir } = await chains[algorithm]);
  }, 120_000);
  afterAll(async () => (await chains[algorithm]).cleanup());

  it("signs a chain openssl verifies, with PKCS#1 keys of the right size", async () => {
    expect(await verifies(join(dir, "ca.crt"), join(dir, "leaf.crt"))).toBe(true);
    const key = await readFile(join(dir, "leaf.key"), "utf8");
    expect(key.startsWith("-----BEGIN RSA PRIVATE KEY-----\n")).toBe(true);
    expect(await keyMatchesCert(key, await readFile(join(dir, "leaf.crt"), "utf8"))).toBe(true);
    const text = (await openssl(["x509", "-in", join(dir, "leaf.crt"), "-noout", "-text"])).stdout;
    expect(text).toContain(`Public-Key: (${bits} bit)`);
    expect(text).toContain("Signature Algorithm: sha256WithRSAEncryption");
    expect(await extensionOf(join(dir, "leaf.crt"), "extendedKeyUsage")).toBe(
      "X509v3 Extended Key Usage:\nTLS Web Server Authentication, TLS Web Client Authentication",
    );
  });
});
