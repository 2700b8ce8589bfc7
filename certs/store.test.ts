// The store end to end with ECDSA-P256 keys (fast), one full PKI per supported version, everything
// checked with the real openssl CLI. RSA is covered by store-rsa.test.ts.
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import yaml from "js-yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type EnsureResult, ensurePki } from "./store.js";
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

const LEAVES = [
  ["apiserver", "ca"],
  ["apiserver-kubelet-client", "ca"],
  ["front-proxy-client", "front-proxy-ca"],
  ["etcd/server", "etcd/ca"],
  ["etcd/peer", "etcd/ca"],
  ["etcd/healthcheck-client", "etcd/ca"],
  ["apiserver-etcd-client", "etcd/ca"],
] as const;
const CAS = ["ca", "front-proxy-ca", "etcd/ca"] as const;
const NODES = ["cp1", "cp2"] as const;
const HOUR = 3_600_000;
const BACKDATE = 5 * 60_000;

interface VersionCase {
  version: string;
  kubeletClientSubject: string;
  etcdClientO: string;
  adminO: string;
  superAdmin: boolean;
  kubeletConfLocal: boolean;
}

const VERSIONS: VersionCase[] = [
  {
    version: "v1.21.14",
    kubeletClientSubject: "O = system:masters, CN = kube-apiserver-kubelet-client",
    etcdClientO: "O = system:masters, ",
    adminO: "system:masters",
    superAdmin: false,
    kubeletConfLocal: false,
  },
  {
    version: "v1.30.4",
    kubeletClientSubject: "O = kubeadm:cluster-admins, CN = kube-apiserver-kubelet-client",
    etcdClientO: "",
    adminO: "kubeadm:cluster-admins",
    superAdmin: true,
    kubeletConfLocal: false,
  },
  {
    version: "v1.34.2",
    kubeletClientSubject: "O = kubeadm:cluster-admins, CN = kube-apiserver-kubelet-client",
    etcdClientO: "",
    adminO: "kubeadm:cluster-admins",
    superAdmin: true,
    kubeletConfLocal: true,
  },
  {
    version: "v1.34.9",
    kubeletClientSubject: "CN = kube-apiserver-kubelet-client",
    etcdClientO: "",
    adminO: "kubeadm:cluster-admins",
    superAdmin: true,
    kubeletConfLocal: true,
  },
];

describe.each(VERSIONS)("a fresh ECDSA store for $version", (expected) => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let result: EnsureResult;
  let from: Date;
  let to: Date;
  const cluster = clusterFile({ version: expected.version });
  const path = (file: string) => join(dir, file);
  const leafFile = (node: string, base: string) => path(`nodes/${node}/pki/${base}.crt`);

  beforeAll(async () => {
    ({ dir, cleanup } = await tempClusterDir());
    from = new Date();
    result = await ensurePki(cluster, dir);
    to = new Date();
  });
  afterAll(() => cleanup());

  it("writes kubeadm's files with kubeadm's modes, and reports each as created", async () => {
    const files = await snapshot(dir);
    const expectedFiles: [string, number][] = [
      ...CAS.flatMap((ca): [string, number][] => [
        [`pki/${ca}.crt`, 0o644],
        [`pki/${ca}.key`, 0o600],
      ]),
      ["pki/sa.key", 0o600],
      ["pki/sa.pub", 0o600],
      ...NODES.flatMap((node) =>
        LEAVES.flatMap(([base]): [string, number][] => [
          [`nodes/${node}/pki/${base}.crt`, 0o644],
          [`nodes/${node}/pki/${base}.key`, 0o600],
        ]),
      ),
      ["kubeconfigs/admin.conf", 0o600],
      ...(expected.superAdmin ? [["kubeconfigs/super-admin.conf", 0o600] as [string, number]] : []),
      ...NODES.flatMap((node): [string, number][] =>
        ["controller-manager.conf", "scheduler.conf", "kubelet.conf"].map((f) => [
          `nodes/${node}/${f}`,
          0o600,
        ]),
      ),
    ];
    const actualFiles = [...files].filter(([, s]) => s.sha256 !== "dir");
    expect(Object.fromEntries(actualFiles.map(([f, s]) => [f, s.mode.toString(8)]))).toEqual(
      Object.fromEntries(expectedFiles.map(([f, mode]) => [f, mode.toString(8)])),
    );
    for (const [file, state] of files)
      if (state.sha256 === "dir") expect([file, state.mode]).toEqual([file, 0o700]);
    expect(result.reused).toEqual([]);
    const kubeconfigs = (expected.superAdmin ? 2 : 1) + 3 * NODES.length;
    expect(result.created).toHaveLength(CAS.length + 1 + LEAVES.length * NODES.length + kubeconfigs);
    expect(result.created.slice(0, 4)).toEqual(["ca", "front-proxy-ca", "etcd-ca", "sa"]);
  });

  it("chains every leaf to its CA (openssl verify), and front-proxy-client not to ca", async () => {
    for (const node of NODES) {
      for (const [base, ca] of LEAVES) {
        expect([node, base, await verifies(path(`pki/${ca}.crt`), leafFile(node, base))]).toEqual([
          node,
          base,
          true,
        ]);
      }
      expect(await verifies(path("pki/ca.crt"), leafFile(node, "front-proxy-client"))).toBe(false);
      expect(await verifies(path("pki/ca.crt"), leafFile(node, "etcd/server"))).toBe(false);
    }
  });

  it("gives each certificate kubeadm's subject for this version", async () => {
    expect(await subjectOf(path("pki/ca.crt"))).toBe("CN = kubernetes");
    expect(await subjectOf(path("pki/front-proxy-ca.crt"))).toBe("CN = front-proxy-ca");
    expect(await subjectOf(path("pki/etcd/ca.crt"))).toBe("CN = etcd-ca");
    expect(await subjectOf(leafFile("cp1", "apiserver"))).toBe("CN = kube-apiserver");
    expect(await subjectOf(leafFile("cp1", "apiserver-kubelet-client"))).toBe(expected.kubeletClientSubject);
    expect(await subjectOf(leafFile("cp1", "front-proxy-client"))).toBe("CN = front-proxy-client");
    expect(await subjectOf(leafFile("cp2", "etcd/server"))).toBe("CN = cp2");
    expect(await subjectOf(leafFile("cp2", "etcd/peer"))).toBe("CN = cp2");
    expect(await subjectOf(leafFile("cp1", "etcd/healthcheck-client"))).toBe(
      `${expected.etcdClientO}CN = kube-etcd-healthcheck-client`,
    );
    expect(await subjectOf(leafFile("cp1", "apiserver-etcd-client"))).toBe(
      `${expected.etcdClientO}CN = kube-apiserver-etcd-client`,
    );
  });

  it("gives CAs and leaves Go's extensions: usages, basic constraints, key identifiers", async () => {
    for (const ca of CAS) {
      const file = path(`pki/${ca}.crt`);
      expect(await extensionOf(file, "keyUsage")).toBe(
        "X509v3 Key Usage: critical\nDigital Signature, Key Encipherment, Certificate Sign",
      );
      expect(await extensionOf(file, "basicConstraints")).toBe("X509v3 Basic Constraints: critical\nCA:TRUE");
      expect(await extensionOf(file, "subjectKeyIdentifier")).toMatch(
        /^X509v3 Subject Key Identifier:\n[0-9A-F:]{59}$/,
      );
      expect(await extensionOf(file, "authorityKeyIdentifier")).toBe("");
    }
    expect(await extensionOf(path("pki/etcd/ca.crt"), "subjectAltName")).toBe(
      "X509v3 Subject Alternative Name:\nDNS:etcd-ca",
    );
    const caKeyId = (await extensionOf(path("pki/ca.crt"), "subjectKeyIdentifier")).split("\n")[1];
    const apiserver = leafFile("cp1", "apiserver");
    expect(await extensionOf(apiserver, "keyUsage")).toBe(
      "X509v3 Key Usage: critical\nDigital Signature, Key Encipherment",
    );
    expect(await extensionOf(apiserver, "basicConstraints")).toBe(
      "X509v3 Basic Constraints: critical\nCA:FALSE",
    );
    expect(await extensionOf(apiserver, "extendedKeyUsage")).toBe(
      "X509v3 Extended Key Usage:\nTLS Web Server Authentication",
    );
    expect(await extensionOf(apiserver, "subjectKeyIdentifier")).toBe("");
    expect(await extensionOf(apiserver, "authorityKeyIdentifier")).toBe(
      `X509v3 Authority Key Identifier:\n${caKeyId}`,
    );
    expect(await extensionOf(leafFile("cp1", "etcd/peer"), "extendedKeyUsage")).toBe(
      "X509v3 Extended Key Usage:\nTLS Web Server Authentication, TLS Web Client Authentication",
    );
    expect(await extensionOf(leafFile("cp1", "front-proxy-client"), "extendedKeyUsage")).toBe(
      "X509v3 Extended Key Usage:\nTLS Web Client Authentication",
    );
    expect(await extensionOf(leafFile("cp1", "front-proxy-client"), "subjectAltName")).toBe("");
  });

  it("puts each node's own name and IP in its apiserver and etcd SANs", async () => {
    expect(await extensionOf(leafFile("cp1", "apiserver"), "subjectAltName")).toBe(
      "X509v3 Subject Alternative Name:\n" +
        "DNS:api.example.com, DNS:cp1, DNS:demo-api, DNS:kubernetes, DNS:kubernetes.default, " +
        "DNS:kubernetes.default.svc, DNS:kubernetes.default.svc.cluster.local, " +
        "IP Address:198.19.128.1, IP Address:198.18.0.11, IP Address:198.18.0.100",
    );
    expect(await extensionOf(leafFile("cp2", "apiserver"), "subjectAltName")).toContain(
      "DNS:cp2, DNS:demo-api, DNS:kubernetes,",
    );
    expect(await extensionOf(leafFile("cp2", "apiserver"), "subjectAltName")).toContain(
      "IP Address:198.19.128.1, IP Address:198.18.0.12, IP Address:198.18.0.100",
    );
    for (const base of ["etcd/server", "etcd/peer"]) {
      expect(await extensionOf(leafFile("cp2", base), "subjectAltName")).toBe(
        "X509v3 Subject Alternative Name:\n" +
          "DNS:cp2, DNS:localhost, IP Address:198.18.0.12, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1",
      );
    }
  });

  it("writes SEC1 EC keys that match their certificates, and a PKIX sa.pub matching sa.key", async () => {
    const pairs = [
      ...CAS.map((ca) => `pki/${ca}`),
      ...NODES.flatMap((node) => LEAVES.map(([base]) => `nodes/${node}/pki/${base}`)),
    ];
    for (const base of pairs) {
      const key = await readFile(path(`${base}.key`), "utf8");
      expect(key.startsWith("-----BEGIN EC PRIVATE KEY-----\n")).toBe(true);
      expect([base, await keyMatchesCert(key, await readFile(path(`${base}.crt`), "utf8"))]).toEqual([
        base,
        true,
      ]);
    }
    const saPub = await readFile(path("pki/sa.pub"), "utf8");
    expect(saPub.startsWith("-----BEGIN PUBLIC KEY-----\n")).toBe(true);
    const derived = await openssl(["pkey", "-pubout"], await readFile(path("pki/sa.key"), "utf8"));
    expect(derived.stdout).toBe(saPub);
  });

  it("back-dates NotBefore 5 minutes; leaves last 8760h and CAs 87600h", async () => {
    for (const [file, hours] of [
      ["pki/ca.crt", 87600],
      ["pki/etcd/ca.crt", 87600],
      ["nodes/cp1/pki/apiserver.crt", 8760],
      ["nodes/cp2/pki/etcd/peer.crt", 8760],
    ] as const) {
      const { notBefore, notAfter } = await validityOf(path(file));
      expect(notBefore.getTime()).toBeGreaterThanOrEqual(Math.floor(from.getTime() / 1000) * 1000 - BACKDATE);
      expect(notBefore.getTime()).toBeLessThanOrEqual(to.getTime() - BACKDATE);
      expect(notAfter.getTime() - notBefore.getTime()).toBe(hours * HOUR + BACKDATE);
    }
  });

  it("writes kubeconfigs as kubeadm: names, servers, identities, certificates chained to ca", async () => {
    const caPem = await readFile(path("pki/ca.crt"), "utf8");
    const files = [
      [
        "kubeconfigs/admin.conf",
        "kubernetes-admin",
        `O = ${expected.adminO}, CN = kubernetes-admin`,
        "https://demo-api:6443",
      ],
      ...(expected.superAdmin
        ? [
            [
              "kubeconfigs/super-admin.conf",
              "kubernetes-super-admin",
              "O = system:masters, CN = kubernetes-super-admin",
              "https://demo-api:6443",
            ],
          ]
        : []),
      [
        "nodes/cp2/controller-manager.conf",
        "system:kube-controller-manager",
        "CN = system:kube-controller-manager",
        "https://198.18.0.12:6443",
      ],
      [
        "nodes/cp2/scheduler.conf",
        "system:kube-scheduler",
        "CN = system:kube-scheduler",
        "https://198.18.0.12:6443",
      ],
      [
        "nodes/cp2/kubelet.conf",
        "system:node:cp2",
        "O = system:nodes, CN = system:node:cp2",
        expected.kubeletConfLocal ? "https://198.18.0.12:6443" : "https://demo-api:6443",
      ],
    ];
    for (const [file, user, subject, server] of files as [string, string, string, string][]) {
      // biome-ignore lint/suspicious/noExplicitAny: the parsed YAML is checked field by field below.
      const config = yaml.load(await readFile(path(file), "utf8")) as any;
      expect(config.apiVersion).toBe("v1");
      expect(config.kind).toBe("Config");
      expect(config.clusters).toHaveLength(1);
      expect(config.clusters[0].name).toBe("kubernetes");
      expect(config.clusters[0].cluster.server).toBe(server);
      expect(Buffer.from(config.clusters[0].cluster["certificate-authority-data"], "base64").toString()).toBe(
        caPem,
      );
      expect(config.users.map((u: { name: string }) => u.name)).toEqual([user]);
      expect(config.contexts).toEqual([
        { context: { cluster: "kubernetes", user }, name: `${user}@kubernetes` },
      ]);
      expect(config["current-context"]).toBe(`${user}@kubernetes`);
      const certPem = Buffer.from(config.users[0].user["client-certificate-data"], "base64").toString();
      const keyPem = Buffer.from(config.users[0].user["client-key-data"], "base64").toString();
      const certFile = join(dir, "..", `${user.replaceAll(":", "_")}.crt`);
      await writeFile(certFile, certPem);
      expect(await verifies(path("pki/ca.crt"), certFile)).toBe(true);
      expect(await subjectOf(certFile)).toBe(subject);
      expect(await extensionOf(certFile, "extendedKeyUsage")).toBe(
        "X509v3 Extended Key Usage:\nTLS Web Client Authentication",
      );
      expect(await keyMatchesCert(keyPem, certPem)).toBe(true);
      expect((await openssl(["x509", "-noout", "-checkend", String(8759 * 3600)], certPem)).code).toBe(0);
    }
  });

  it("changes no file on a second run and reports everything as reused", async () => {
    const before = await snapshot(dir);
    const again = await ensurePki(cluster, dir);
    expect(again.created).toEqual([]);
    expect(again.reused).toEqual(result.created);
    expect(await snapshot(dir)).toEqual(before);
  });
});
