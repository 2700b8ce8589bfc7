// Proves the fixture comparator (certs/fixtures.ts) itself, without kubeforge's generator: a PKI for the
// fixtures' example cluster is built here with plain openssl commands, written out by hand to follow what
// kubeadm v1.30 writes, and compared; then single things are broken and each difference must be reported,
// exactly. (The fixtures are hand-transcribed from kubeadm; nothing here writes or regenerates them.)
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmod, cp, mkdir, mkdtemp, readFile, rm, unlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compareStore, type Fixture, type KeyType, loadFixture } from "./fixtures.js";

function run(command: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { encoding: "utf8" }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${command} ${args.join(" ")}: ${stderr || error.message}`));
      else resolve(stdout);
    });
  });
}

const openssl = (...args: string[]) => run("openssl", args);

// --- an openssl-made PKI for the example cluster, as kubeadm v1.30 lays it out ---------------------------

/** Whole seconds: certificates carry no more. */
const T = new Date(Math.floor(Date.now() / 1000) * 1000);
const HOUR = 3_600_000;
const NOT_BEFORE = new Date(T.getTime() - 5 * 60_000); // kubeadm v1.30: CertificateBackdate on the CA, copied to leaves
const CA_NOT_AFTER = new Date(T.getTime() + 87_600 * HOUR);
const LEAF_NOT_AFTER = new Date(T.getTime() + 8_760 * HOUR);

/** `YYYYMMDDHHMMSSZ` for `openssl ca -startdate/-enddate`. */
const asn1Time = (date: Date) =>
  date
    .toISOString()
    .replace(/[-:T]/g, "")
    .replace(/\.\d{3}Z$/, "Z");
const iso = (date: Date) => date.toISOString().replace(".000Z", "Z");

async function generateKey(file: string, keyType: KeyType): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  if (keyType === "ECDSA-P256")
    await openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", file);
  else await openssl("genrsa", "-traditional", "-out", file, keyType.slice(4));
  await chmod(file, 0o600);
}

interface Issue {
  out: string;
  key: string;
  CN: string;
  O?: string[];
  /** Absent: self-signed. */
  issuer?: { cert: string; key: string };
  ca?: boolean;
  eku?: string[];
  san?: string[];
  notBefore?: Date;
  notAfter?: Date;
}

/** Signs with `openssl ca` (the only openssl command that takes explicit start and end dates). */
async function issue(spec: Issue): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), "kubeforge-openssl-ca-"));
  try {
    const serial = randomBytes(8);
    serial[0] = ((serial[0] ?? 0) & 0x7f) | 0x01; // positive, below 2^63, never 0
    await writeFile(join(work, "serial"), `${serial.toString("hex")}\n`);
    await writeFile(join(work, "index.txt"), "");
    await mkdir(join(work, "new"));
    await writeFile(
      join(work, "ca.cnf"),
      [
        "[ca]",
        "default_ca = default",
        "[default]",
        `database = ${join(work, "index.txt")}`,
        `new_certs_dir = ${join(work, "new")}`,
        `serial = ${join(work, "serial")}`,
        "default_md = sha256",
        "policy = any",
        "unique_subject = no",
        "email_in_dn = no",
        "[any]",
        "organizationName = optional",
        "commonName = supplied",
        "",
      ].join("\n"),
    );
    const ext = [
      "[ext]",
      `basicConstraints = critical,CA:${spec.ca ? "TRUE" : "FALSE"}`,
      `keyUsage = critical,digitalSignature,keyEncipherment${spec.ca ? ",keyCertSign" : ""}`,
      ...(spec.eku?.length ? [`extendedKeyUsage = ${spec.eku.join(",")}`] : []),
      ...(spec.san?.length ? [`subjectAltName = ${spec.san.join(",")}`] : []),
      "",
    ];
    await writeFile(join(work, "ext.cnf"), ext.join("\n"));
    // Go writes O before CN (pkix.Name.ToRDNSequence); so does this subject.
    const subject = `${(spec.O ?? []).map((o) => `/O=${o}`).join("")}/CN=${spec.CN}`;
    await openssl("req", "-new", "-key", spec.key, "-subj", subject, "-out", join(work, "req.csr"));
    const signer = spec.issuer
      ? ["-cert", spec.issuer.cert, "-keyfile", spec.issuer.key]
      : ["-selfsign", "-keyfile", spec.key];
    await mkdir(dirname(spec.out), { recursive: true });
    await openssl(
      "ca",
      "-batch",
      "-config",
      join(work, "ca.cnf"),
      "-notext",
      "-preserveDN",
      "-md",
      "sha256",
      "-startdate",
      asn1Time(spec.notBefore ?? NOT_BEFORE),
      "-enddate",
      asn1Time(spec.notAfter ?? (spec.ca ? CA_NOT_AFTER : LEAF_NOT_AFTER)),
      "-extfile",
      join(work, "ext.cnf"),
      "-extensions",
      "ext",
      ...signer,
      "-in",
      join(work, "req.csr"),
      "-out",
      spec.out,
    );
    await chmod(spec.out, 0o644);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

const b64 = async (file: string) => (await readFile(file)).toString("base64");

async function writeKubeconfig(
  store: string,
  file: string,
  entry: { cluster: string; user: string; server: string; ca: string; cert: string; key: string },
): Promise<void> {
  const context = `${entry.user}@${entry.cluster}`;
  const text = [
    "apiVersion: v1",
    "clusters:",
    "- cluster:",
    `    certificate-authority-data: ${await b64(entry.ca)}`,
    `    server: ${entry.server}`,
    `  name: ${entry.cluster}`,
    "contexts:",
    "- context:",
    `    cluster: ${entry.cluster}`,
    `    user: ${entry.user}`,
    `  name: ${context}`,
    `current-context: ${context}`,
    "kind: Config",
    "preferences: {}",
    "users:",
    `- name: ${entry.user}`,
    "  user:",
    `    client-certificate-data: ${await b64(entry.cert)}`,
    `    client-key-data: ${await b64(entry.key)}`,
    "",
  ].join("\n");
  await mkdir(dirname(join(store, file)), { recursive: true });
  await writeFile(join(store, file), text, { mode: 0o600 });
  await chmod(join(store, file), 0o600);
}

const API_SERVER_SANS = [
  "DNS:cp1",
  "DNS:kubernetes",
  "DNS:kubernetes.default",
  "DNS:kubernetes.default.svc",
  "DNS:kubernetes.default.svc.cluster.local",
  "DNS:demo-api",
  "DNS:api.example.com",
  "IP:198.19.128.1",
  "IP:198.18.0.11",
  "IP:198.18.0.100",
];
const ETCD_SANS = ["DNS:cp1", "DNS:localhost", "IP:198.18.0.11", "IP:127.0.0.1", "IP:::1"];

/** The leaves of the example node, by hand from kubeadm v1.30's certlist.go (not from the fixture). */
function leaves(store: string) {
  const p = (name: string) => join(store, name);
  const ca = { cert: p("pki/ca.crt"), key: p("pki/ca.key") };
  const frontProxyCa = { cert: p("pki/front-proxy-ca.crt"), key: p("pki/front-proxy-ca.key") };
  const etcdCa = { cert: p("pki/etcd/ca.crt"), key: p("pki/etcd/ca.key") };
  const node = (name: string) => p(`nodes/cp1/pki/${name}`);
  return {
    apiserver: {
      base: node("apiserver"),
      issuer: ca,
      CN: "kube-apiserver",
      eku: ["serverAuth"],
      san: API_SERVER_SANS,
    },
    kubeletClient: {
      base: node("apiserver-kubelet-client"),
      issuer: ca,
      CN: "kube-apiserver-kubelet-client",
      O: ["kubeadm:cluster-admins"],
      eku: ["clientAuth"],
    },
    frontProxyClient: {
      base: node("front-proxy-client"),
      issuer: frontProxyCa,
      CN: "front-proxy-client",
      eku: ["clientAuth"],
    },
    etcdServer: {
      base: node("etcd/server"),
      issuer: etcdCa,
      CN: "cp1",
      eku: ["serverAuth", "clientAuth"],
      san: ETCD_SANS,
    },
    etcdPeer: {
      base: node("etcd/peer"),
      issuer: etcdCa,
      CN: "cp1",
      eku: ["serverAuth", "clientAuth"],
      san: ETCD_SANS,
    },
    etcdHealthcheck: {
      base: node("etcd/healthcheck-client"),
      issuer: etcdCa,
      CN: "kube-etcd-healthcheck-client",
      eku: ["clientAuth"],
    },
    etcdClient: {
      base: node("apiserver-etcd-client"),
      issuer: etcdCa,
      CN: "kube-apiserver-etcd-client",
      eku: ["clientAuth"],
    },
  };
}

type Leaf = ReturnType<typeof leaves>[keyof ReturnType<typeof leaves>];

async function issueLeaf(leaf: Leaf, changes: Partial<Issue> = {}): Promise<void> {
  await issue({
    out: `${leaf.base}.crt`,
    key: `${leaf.base}.key`,
    CN: leaf.CN,
    ...("O" in leaf && { O: leaf.O }),
    issuer: leaf.issuer,
    eku: leaf.eku,
    ...("san" in leaf && { san: leaf.san }),
    ...changes,
  });
}

const KUBECONFIGS = [
  {
    file: "kubeconfigs/admin.conf",
    user: "kubernetes-admin",
    O: ["kubeadm:cluster-admins"],
    server: "https://demo-api:6443",
  },
  {
    file: "kubeconfigs/super-admin.conf",
    user: "kubernetes-super-admin",
    O: ["system:masters"],
    server: "https://demo-api:6443",
  },
  {
    file: "nodes/cp1/controller-manager.conf",
    user: "system:kube-controller-manager",
    server: "https://198.18.0.11:6443",
  },
  { file: "nodes/cp1/scheduler.conf", user: "system:kube-scheduler", server: "https://198.18.0.11:6443" },
  {
    file: "nodes/cp1/kubelet.conf",
    user: "system:node:cp1",
    O: ["system:nodes"],
    server: "https://demo-api:6443",
  },
];

async function buildStore(store: string, keyType: KeyType): Promise<void> {
  const p = (name: string) => join(store, name);
  const all = leaves(store);
  await Promise.all([
    ...["pki/ca", "pki/front-proxy-ca", "pki/etcd/ca", "pki/sa"].map((base) =>
      generateKey(p(`${base}.key`), keyType),
    ),
    ...Object.values(all).map((leaf) => generateKey(`${leaf.base}.key`, keyType)),
    ...KUBECONFIGS.map((_, index) => generateKey(p(`client-${index}.key`), keyType)),
  ]);
  await Promise.all([
    issue({
      out: p("pki/ca.crt"),
      key: p("pki/ca.key"),
      CN: "kubernetes",
      ca: true,
      san: ["DNS:kubernetes"],
    }),
    issue({
      out: p("pki/front-proxy-ca.crt"),
      key: p("pki/front-proxy-ca.key"),
      CN: "front-proxy-ca",
      ca: true,
      san: ["DNS:front-proxy-ca"],
    }),
    issue({
      out: p("pki/etcd/ca.crt"),
      key: p("pki/etcd/ca.key"),
      CN: "etcd-ca",
      ca: true,
      san: ["DNS:etcd-ca"],
    }),
  ]);
  await openssl("pkey", "-in", p("pki/sa.key"), "-pubout", "-out", p("pki/sa.pub"));
  await chmod(p("pki/sa.pub"), 0o600);
  await Promise.all(Object.values(all).map((leaf) => issueLeaf(leaf)));
  await Promise.all(
    KUBECONFIGS.map(async (entry, index) => {
      const key = p(`client-${index}.key`);
      const cert = p(`client-${index}.crt`);
      await issue({
        out: cert,
        key,
        CN: entry.user,
        ...(entry.O && { O: entry.O }),
        issuer: { cert: p("pki/ca.crt"), key: p("pki/ca.key") },
        eku: ["clientAuth"],
      });
      await writeKubeconfig(store, entry.file, {
        cluster: "kubernetes",
        user: entry.user,
        server: entry.server,
        ca: p("pki/ca.crt"),
        cert,
        key,
      });
      await unlink(key);
      await unlink(cert);
    }),
  );
}

// --- the tests -------------------------------------------------------------------------------------------

let root: string;
let baseStore: string;
let v130: Fixture;
let copies = 0;

/** A fresh copy of the pristine RSA-2048 store, to break one thing in. */
async function copyStore(): Promise<string> {
  const copy = join(root, `copy-${++copies}`);
  await cp(baseStore, copy, { recursive: true });
  return copy;
}

const compare130 = (store: string) => compareStore(store, v130, { keyType: "RSA-2048", patch: 14 });

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "kubeforge-fixtures-"));
  baseStore = join(root, "base");
  v130 = await loadFixture("1.30");
  await buildStore(baseStore, "RSA-2048");
}, 120_000);

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("the kubeadm fixtures", () => {
  it("load for every supported minor with the ten certificates and kubeadm's kubeconfigs", async () => {
    const names = [
      "ca",
      "apiserver",
      "apiserver-kubelet-client",
      "front-proxy-ca",
      "front-proxy-client",
      "etcd-ca",
    ];
    names.push("etcd-server", "etcd-peer", "etcd-healthcheck-client", "apiserver-etcd-client");
    for (const minor of ["1.21", "1.30", "1.34"]) {
      const fixture = await loadFixture(minor);
      expect(fixture.kubeadm).toBe(`v${minor}`);
      expect(fixture.certificates.map((cert) => cert.name)).toEqual(names);
      const files = fixture.kubeconfigs.map((kubeconfig) => kubeconfig.file);
      const expected = [
        "kubeconfigs/admin.conf",
        "nodes/cp1/controller-manager.conf",
        "nodes/cp1/scheduler.conf",
        "nodes/cp1/kubelet.conf",
      ];
      if (minor !== "1.21") expected.splice(1, 0, "kubeconfigs/super-admin.conf");
      expect(files).toEqual(expected);
    }
  });
});

describe("compareStore on an openssl-made v1.30 PKI", { timeout: 60_000 }, () => {
  it("finds no difference in a store laid out as kubeadm v1.30 lays it out (RSA-2048)", async () => {
    const from = new Date(T.getTime() - 1000);
    expect(
      await compareStore(baseStore, v130, {
        keyType: "RSA-2048",
        patch: 14,
        generatedAt: { from, to: new Date() },
      }),
    ).toEqual([]);
  });

  it("finds no difference in the same layout with ECDSA-P256 keys", async () => {
    const store = join(root, "ecdsa");
    await buildStore(store, "ECDSA-P256");
    expect(await compareStore(store, v130, { keyType: "ECDSA-P256", patch: 0 })).toEqual([]);
  });

  it("reports every key of the wrong type when the store is compared as another key type", async () => {
    const diffs = await compareStore(baseStore, v130, { keyType: "ECDSA-P256", patch: 14 });
    expect(diffs).toContain("pki/ca.crt: public key is rsaEncryption, expected id-ecPublicKey (ECDSA-P256)");
    expect(diffs).toContain("pki/ca.key: PEM type is RSA PRIVATE KEY, expected EC PRIVATE KEY (ECDSA-P256)");
    expect(diffs).toContain("pki/sa.pub: key is RSA 2048 bit, expected ECDSA-P256");
    expect(diffs).toContain(
      "kubeconfigs/admin.conf: client key: PEM type is RSA PRIVATE KEY, expected EC PRIVATE KEY (ECDSA-P256)",
    );
  });

  it("reports a NotBefore outside the generation window", async () => {
    const tomorrow = new Date(T.getTime() + 24 * HOUR);
    const diffs = await compareStore(baseStore, v130, {
      keyType: "RSA-2048",
      patch: 14,
      generatedAt: { from: tomorrow, to: tomorrow },
    });
    expect(diffs).toHaveLength(15); // ten certificates + five kubeconfig client certificates
    expect(diffs[0]).toBe(
      `pki/ca.crt: NotBefore ${iso(NOT_BEFORE)} is outside the generation window ${iso(tomorrow)}..${iso(tomorrow)} less 0m..10m`,
    );
  });

  it("reports a dropped SAN", async () => {
    const store = await copyStore();
    const { apiserver } = leaves(store);
    await issueLeaf(apiserver, {
      san: API_SERVER_SANS.filter((san) => san !== "DNS:kubernetes.default.svc.cluster.local"),
    });
    expect(await compare130(store)).toEqual([
      "nodes/cp1/pki/apiserver.crt: SAN missing DNS:kubernetes.default.svc.cluster.local",
    ]);
  });

  it("reports an extra SAN and an extra extended key usage", async () => {
    const store = await copyStore();
    const { etcdServer } = leaves(store);
    await issueLeaf(etcdServer, {
      san: [...ETCD_SANS, "DNS:etcd.example.com"],
      eku: ["serverAuth", "clientAuth", "codeSigning"],
    });
    expect(await compare130(store)).toEqual([
      "nodes/cp1/pki/etcd/server.crt: SAN unexpected DNS:etcd.example.com",
      "nodes/cp1/pki/etcd/server.crt: extended key usage is [ServerAuth, ClientAuth, CodeSigning], expected [ServerAuth, ClientAuth]",
    ]);
  });

  it("reports a wrong O", async () => {
    const store = await copyStore();
    const { kubeletClient } = leaves(store);
    await issueLeaf(kubeletClient, { O: ["system:masters"] });
    expect(await compare130(store)).toEqual([
      "nodes/cp1/pki/apiserver-kubelet-client.crt: subject O is [system:masters], expected [kubeadm:cluster-admins]",
    ]);
  });

  it("reports a wrong CN and a CA flag on a leaf", async () => {
    const store = await copyStore();
    const { etcdHealthcheck } = leaves(store);
    await issueLeaf(etcdHealthcheck, { CN: "etcd-healthcheck", ca: true, notAfter: LEAF_NOT_AFTER });
    expect(await compare130(store)).toEqual([
      "nodes/cp1/pki/etcd/healthcheck-client.crt: subject CN is etcd-healthcheck, expected kube-etcd-healthcheck-client",
      "nodes/cp1/pki/etcd/healthcheck-client.crt: key usage is [DigitalSignature, KeyEncipherment, CertSign], expected [DigitalSignature, KeyEncipherment]",
      "nodes/cp1/pki/etcd/healthcheck-client.crt: basic constraints CA:TRUE, expected CA:FALSE",
    ]);
  });

  it("reports wrong file modes", async () => {
    const store = await copyStore();
    await chmod(join(store, "nodes/cp1/pki/apiserver.key"), 0o644);
    await chmod(join(store, "pki/etcd/ca.crt"), 0o600);
    await chmod(join(store, "kubeconfigs/admin.conf"), 0o644);
    expect(await compare130(store)).toEqual([
      "nodes/cp1/pki/apiserver.key: mode is 0644, expected 0600",
      "pki/etcd/ca.crt: mode is 0600, expected 0644",
      "kubeconfigs/admin.conf: mode is 0644, expected 0600",
    ]);
  });

  it("reports a leaf signed by the wrong CA, and that front-proxy-client verifies against the cluster CA", async () => {
    const store = await copyStore();
    const { frontProxyClient } = leaves(store);
    await issueLeaf(frontProxyClient, {
      issuer: { cert: join(store, "pki/ca.crt"), key: join(store, "pki/ca.key") },
    });
    expect(await compare130(store)).toEqual([
      "nodes/cp1/pki/front-proxy-client.crt: does not verify against pki/front-proxy-ca.crt (openssl verify: unable to get local issuer certificate)",
      "nodes/cp1/pki/front-proxy-client.crt: verifies against pki/ca.crt, but must not (kubeadm signs it with pki/front-proxy-ca.crt)",
    ]);
  });

  it("reports a key that does not match its certificate", async () => {
    const store = await copyStore();
    await generateKey(join(store, "nodes/cp1/pki/apiserver.key"), "RSA-2048");
    expect(await compare130(store)).toEqual([
      "nodes/cp1/pki/apiserver.key: does not match nodes/cp1/pki/apiserver.crt (public keys differ)",
    ]);
  });

  it("reports a PKCS#8 key where kubeadm writes PKCS#1, and an sa.pub of another key", async () => {
    const store = await copyStore();
    const key = join(store, "nodes/cp1/pki/apiserver-etcd-client.key");
    await openssl("pkey", "-in", key, "-out", join(root, "pkcs8.key")); // openssl 3 writes PKCS#8 ("PRIVATE KEY")
    await writeFile(key, await readFile(join(root, "pkcs8.key")), { mode: 0o600 });
    await generateKey(join(root, "other-sa.key"), "RSA-2048");
    await openssl("pkey", "-in", join(root, "other-sa.key"), "-pubout", "-out", join(store, "pki/sa.pub"));
    expect(await compare130(store)).toEqual([
      "nodes/cp1/pki/apiserver-etcd-client.key: PEM type is PRIVATE KEY, expected RSA PRIVATE KEY (RSA-2048)",
      "pki/sa.key: does not match pki/sa.pub (public keys differ)",
    ]);
  });

  it("reports a leaf valid for two years", async () => {
    const store = await copyStore();
    const { etcdPeer } = leaves(store);
    const notAfter = new Date(T.getTime() + 2 * 8_760 * HOUR);
    await issueLeaf(etcdPeer, { notAfter });
    expect(await compare130(store)).toEqual([
      `nodes/cp1/pki/etcd/peer.crt: validity is 17520h5m0s (NotBefore ${iso(NOT_BEFORE)}, NotAfter ${iso(notAfter)}), ` +
        "expected 8760h plus 0m..10m of back-dating (kubeadm v1.30: +5m)",
    ]);
  });

  it("reports a leaf whose NotBefore is not its CA's", async () => {
    const store = await copyStore();
    const { apiserver } = leaves(store);
    const notBefore = new Date(T.getTime() + 3_600_000);
    await issueLeaf(apiserver, { notBefore, notAfter: new Date(notBefore.getTime() + 8_760 * HOUR) });
    const diffs = await compare130(store);
    expect(diffs).toEqual([
      `nodes/cp1/pki/apiserver.crt: NotBefore ${iso(notBefore)} differs from pki/ca.crt NotBefore ${iso(NOT_BEFORE)} (kubeadm gives a leaf its CA's NotBefore)`,
      "nodes/cp1/pki/apiserver.crt: does not verify against pki/ca.crt (openssl verify: certificate is not yet valid)",
    ]);
  });

  it("reports kubeconfig differences: server, names, embedded CA, client identity", async () => {
    const store = await copyStore();
    const p = (name: string) => join(store, name);
    const clientKey = p("client.key");
    await generateKey(clientKey, "RSA-2048");
    await issue({
      out: p("client.crt"),
      key: clientKey,
      CN: "kubernetes-admin",
      O: ["system:masters"],
      issuer: { cert: p("pki/ca.crt"), key: p("pki/ca.key") },
      eku: ["clientAuth"],
    });
    await writeKubeconfig(store, "kubeconfigs/admin.conf", {
      cluster: "demo",
      user: "kubernetes-admin",
      server: "https://198.18.0.11:6443",
      ca: p("pki/front-proxy-ca.crt"),
      cert: p("client.crt"),
      key: clientKey,
    });
    await unlink(clientKey);
    await unlink(p("client.crt"));
    expect(await compare130(store)).toEqual([
      "kubeconfigs/admin.conf: clusters are [demo], expected [kubernetes]",
      "kubeconfigs/admin.conf: contexts are [kubernetes-admin@demo], expected [kubernetes-admin@kubernetes]",
      "kubeconfigs/admin.conf: current-context is kubernetes-admin@demo, expected kubernetes-admin@kubernetes",
      "kubeconfigs/admin.conf: client certificate: subject O is [system:masters], expected [kubeadm:cluster-admins]",
    ]);
    // Same names as kubeadm, but the front-proxy CA embedded and the node IP as server.
    const store2 = await copyStore();
    const text = await readFile(join(store2, "kubeconfigs/admin.conf"), "utf8");
    const frontProxyCa = await b64(join(store2, "pki/front-proxy-ca.crt"));
    await writeFile(
      join(store2, "kubeconfigs/admin.conf"),
      text
        .replace(/certificate-authority-data: \S+/, `certificate-authority-data: ${frontProxyCa}`)
        .replace("https://demo-api:6443", "https://198.18.0.11:6443"),
    );
    expect(await compare130(store2)).toEqual([
      "kubeconfigs/admin.conf: server is https://198.18.0.11:6443, expected https://demo-api:6443",
      "kubeconfigs/admin.conf: certificate-authority-data is not pki/ca.crt",
    ]);
  });

  it("reports a missing file, an unreadable certificate and a file kubeadm does not write", async () => {
    const store = await copyStore();
    await unlink(join(store, "nodes/cp1/scheduler.conf"));
    await writeFile(join(store, "nodes/cp1/pki/front-proxy-client.crt"), "not a certificate\n", {
      mode: 0o644,
    });
    await writeFile(join(store, "pki/ca.srl"), "01\n");
    const diffs = await compare130(store);
    expect(diffs).toHaveLength(3);
    expect(diffs[0]).toMatch(
      /^nodes\/cp1\/pki\/front-proxy-client\.crt: not a readable X\.509 certificate \(openssl: .+\)$/,
    );
    expect(diffs.slice(1)).toEqual([
      "nodes/cp1/scheduler.conf: missing",
      "pki/ca.srl: unexpected file (kubeadm v1.30 writes none there)",
    ]);
  });
});

describe("the fixtures differ exactly where kubeadm changed between minors", { timeout: 60_000 }, () => {
  it("v1.21: system:masters on three certificates and admin.conf, no super-admin.conf", async () => {
    const v121 = await loadFixture("1.21");
    expect(await compareStore(baseStore, v121, { keyType: "RSA-2048", patch: 14 })).toEqual([
      "nodes/cp1/pki/apiserver-kubelet-client.crt: subject O is [kubeadm:cluster-admins], expected [system:masters]",
      "nodes/cp1/pki/etcd/healthcheck-client.crt: subject O is [], expected [system:masters]",
      "nodes/cp1/pki/apiserver-etcd-client.crt: subject O is [], expected [system:masters]",
      "kubeconfigs/admin.conf: client certificate: subject O is [kubeadm:cluster-admins], expected [system:masters]",
      "kubeconfigs/super-admin.conf: present, but kubeadm v1.21 does not write it",
    ]);
  });

  it("v1.34: kubelet.conf on the local endpoint; apiserver-kubelet-client without O after v1.34.7", async () => {
    const v134 = await loadFixture("1.34");
    const kubelet =
      "nodes/cp1/kubelet.conf: server is https://demo-api:6443, expected https://198.18.0.11:6443";
    expect(await compareStore(baseStore, v134, { keyType: "RSA-2048", patch: 7 })).toEqual([kubelet]);
    expect(await compareStore(baseStore, v134, { keyType: "RSA-2048", patch: 8 })).toEqual([
      "nodes/cp1/pki/apiserver-kubelet-client.crt: subject O is [kubeadm:cluster-admins], expected []",
      kubelet,
    ]);
  });

  it("v1.30 knows no RSA-3072 (it arrived with v1beta4 in v1.31)", async () => {
    expect(await compareStore(baseStore, v130, { keyType: "RSA-3072", patch: 14 })).toEqual([
      "store: kubeadm v1.30 cannot generate RSA-3072 keys",
    ]);
  });
});
