// A stand-in for kubeforge's PKI generator, made with the openssl CLI (one `openssl req` per
// certificate), writing the store layout kubeforge's generator must write:
//
//   <stateDir>/<metadata.name>/pki/{ca,front-proxy-ca,etcd/ca}.{crt,key}, sa.key, sa.pub
//   <stateDir>/<metadata.name>/nodes/<host>/pki/{apiserver,apiserver-kubelet-client,front-proxy-client,
//       apiserver-etcd-client,etcd/server,etcd/peer,etcd/healthcheck-client}.{crt,key}
//   <stateDir>/<metadata.name>/kubeconfigs/{admin,super-admin}.conf
//   <stateDir>/<metadata.name>/nodes/<host>/{controller-manager,scheduler,kubelet}.conf
//
// It exists so the proofs in pki.test.ts could be written and run before `kubeforge certs generate`
// existed; it is not a reference for kubeforge's output (the field-by-field fixtures are). It follows
// kubeadm-spec.md §1.3/§1.4 for identities and SANs, reuses an existing store, and refuses (exit 2)
// when the API server certificates' SANs differ from the cluster file, as kubeforge must.
import { X509Certificate } from "node:crypto";
import { existsSync } from "node:fs";
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { availableParallelism, homedir, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import yaml from "js-yaml";
import { $ } from "zx";
import { parseClusterFile } from "../../config/load.js";
import type { ClusterFile } from "../../config/schema.js";
import { ConfigError } from "../../workflow/errors.js";
import type { ProcessRun } from "./cli.js";

type Algorithm = ClusterFile["spec"]["kubernetes"]["encryptionAlgorithm"];

interface CertSpec {
  /** Path under the cluster directory, without .crt/.key. */
  base: string;
  /** Path of the signing CA under the cluster directory, without extension; none for a self-signed CA. */
  ca?: string;
  cn: string;
  o?: string[];
  isCa?: boolean;
  usages?: Array<"serverAuth" | "clientAuth">;
  dns?: string[];
  ips?: string[];
}

interface KubeconfigSpec {
  /** Path under the cluster directory. */
  path: string;
  cn: string;
  o?: string[];
  server: string;
}

const run = $({ quiet: true });

function algorithmArgs(algorithm: Algorithm): string[] {
  if (algorithm === "ECDSA-P256") return ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
  return ["-newkey", `rsa:${algorithm.slice("RSA-".length)}`];
}

function hours(duration: string): number {
  const match = /^(\d+)h$/.exec(duration);
  if (!match) throw new Error(`the openssl stand-in only understands whole hours, got ${duration}`);
  return Number(match[1]);
}

/** The first address of an IPv4 CIDR (the `kubernetes` Service's ClusterIP). */
function firstServiceIp(subnets: string): string {
  const cidr = subnets.split(",")[0]?.trim() ?? "";
  const [network, bits] = cidr.split("/");
  const octets = (network ?? "").split(".").map(Number);
  if (octets.length !== 4 || bits === undefined)
    throw new Error(`the openssl stand-in handles IPv4 only: ${cidr}`);
  const value =
    (((octets[0] ?? 0) << 24) | ((octets[1] ?? 0) << 16) | ((octets[2] ?? 0) << 8) | (octets[3] ?? 0)) >>> 0;
  const first = (value + 1) >>> 0;
  return [first >>> 24, (first >>> 16) & 255, (first >>> 8) & 255, first & 255].join(".");
}

const isIp = (text: string) => /^\d+\.\d+\.\d+\.\d+$/.test(text) || text.includes(":");

function splitEndpoint(endpoint: string, defaultPort: number): { host: string; port: number } {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(endpoint);
  if (bracketed) return { host: bracketed[1] ?? "", port: Number(bracketed[2] ?? defaultPort) };
  const [host, port] = endpoint.split(":");
  return { host: host ?? endpoint, port: Number(port ?? defaultPort) };
}

const minor = (version: string) => Number(/^v1\.(\d+)\./.exec(version)?.[1] ?? 0);

interface Plan {
  clusterDir: string;
  algorithm: Algorithm;
  leafDays: number;
  caDays: number;
  certs: CertSpec[];
  kubeconfigs: KubeconfigSpec[];
  clusterName: string;
  endpointUrl: string;
  /** Per control-plane node: the SANs its apiserver certificate must carry. */
  apiserverSans: Map<string, { dns: string[]; ips: string[] }>;
}

function plan(cluster: ClusterFile, stateDir: string): Plan {
  const k8s = cluster.spec.kubernetes;
  const clusterDir = join(stateDir, cluster.metadata.name);
  const endpoint = splitEndpoint(
    k8s.controlPlaneEndpoint ?? `${cluster.metadata.name}-api`,
    k8s.apiServer.bindPort,
  );
  const endpointUrl = `https://${endpoint.host.includes(":") ? `[${endpoint.host}]` : endpoint.host}:${endpoint.port}`;
  const serviceIp = firstServiceIp(k8s.networking.serviceSubnet);
  const certs: CertSpec[] = [
    { base: "pki/ca", cn: "kubernetes", isCa: true, dns: ["kubernetes"] },
    { base: "pki/front-proxy-ca", cn: "front-proxy-ca", isCa: true, dns: ["front-proxy-ca"] },
    { base: "pki/etcd/ca", cn: "etcd-ca", isCa: true, dns: ["etcd-ca"] },
  ];
  const kubeconfigs: KubeconfigSpec[] = [];
  const modern = minor(k8s.version) >= 29;
  kubeconfigs.push({
    path: "kubeconfigs/admin.conf",
    cn: "kubernetes-admin",
    o: [modern ? "kubeadm:cluster-admins" : "system:masters"],
    server: endpointUrl,
  });
  if (modern) {
    kubeconfigs.push({
      path: "kubeconfigs/super-admin.conf",
      cn: "kubernetes-super-admin",
      o: ["system:masters"],
      server: endpointUrl,
    });
  }
  const apiserverSans = new Map<string, { dns: string[]; ips: string[] }>();
  for (const host of cluster.spec.hosts.filter((h) => h.role === "control-plane")) {
    const ip = host.privateAddress ?? host.address;
    const node = `nodes/${host.name}`;
    const extra = k8s.apiServer.certSANs;
    const dns = [
      host.name,
      "kubernetes",
      "kubernetes.default",
      "kubernetes.default.svc",
      `kubernetes.default.svc.${k8s.networking.dnsDomain}`,
      ...(isIp(endpoint.host) ? [] : [endpoint.host]),
      ...extra.filter((san) => !isIp(san)),
    ];
    const ips = [serviceIp, ip, ...(isIp(endpoint.host) ? [endpoint.host] : []), ...extra.filter(isIp)];
    apiserverSans.set(host.name, { dns, ips });
    const etcdDns = (extraSans: string[]) => [
      host.name,
      "localhost",
      ...extraSans.filter((san) => !isIp(san)),
    ];
    const etcdIps = (extraSans: string[]) => [ip, "127.0.0.1", "::1", ...extraSans.filter(isIp)];
    const local = k8s.etcd.local;
    certs.push(
      { base: `${node}/pki/apiserver`, ca: "pki/ca", cn: "kube-apiserver", usages: ["serverAuth"], dns, ips },
      {
        base: `${node}/pki/apiserver-kubelet-client`,
        ca: "pki/ca",
        cn: "kube-apiserver-kubelet-client",
        o: ["system:masters"],
        usages: ["clientAuth"],
      },
      {
        base: `${node}/pki/front-proxy-client`,
        ca: "pki/front-proxy-ca",
        cn: "front-proxy-client",
        usages: ["clientAuth"],
      },
      {
        base: `${node}/pki/apiserver-etcd-client`,
        ca: "pki/etcd/ca",
        cn: "kube-apiserver-etcd-client",
        usages: ["clientAuth"],
      },
      {
        base: `${node}/pki/etcd/server`,
        ca: "pki/etcd/ca",
        cn: host.name,
        usages: ["serverAuth", "clientAuth"],
        dns: etcdDns(local.serverCertSANs),
        ips: etcdIps(local.serverCertSANs),
      },
      {
        base: `${node}/pki/etcd/peer`,
        ca: "pki/etcd/ca",
        cn: host.name,
        usages: ["serverAuth", "clientAuth"],
        dns: etcdDns(local.peerCertSANs),
        ips: etcdIps(local.peerCertSANs),
      },
      {
        base: `${node}/pki/etcd/healthcheck-client`,
        ca: "pki/etcd/ca",
        cn: "kube-etcd-healthcheck-client",
        usages: ["clientAuth"],
      },
    );
    const localUrl = `https://${ip.includes(":") ? `[${ip}]` : ip}:${k8s.apiServer.bindPort}`;
    kubeconfigs.push(
      { path: `${node}/controller-manager.conf`, cn: "system:kube-controller-manager", server: localUrl },
      { path: `${node}/scheduler.conf`, cn: "system:kube-scheduler", server: localUrl },
      {
        path: `${node}/kubelet.conf`,
        cn: `system:node:${host.name}`,
        o: ["system:nodes"],
        server: endpointUrl,
      },
    );
  }
  return {
    clusterDir,
    algorithm: k8s.encryptionAlgorithm,
    leafDays: Math.max(1, Math.floor(hours(k8s.certificateValidityPeriod) / 24)),
    caDays: Math.max(1, Math.floor(hours(k8s.caCertificateValidityPeriod) / 24)),
    certs,
    kubeconfigs,
    clusterName: k8s.clusterName,
    endpointUrl,
    apiserverSans,
  };
}

/** `/O=a/O=b/CN=c`, escaping what openssl's -subj treats specially. */
function subject(cn: string, o: string[] = []): string {
  const escaped = (value: string) => value.replace(/[\\/,+=]/g, (c) => `\\${c}`);
  return [...o.map((org) => `/O=${escaped(org)}`), `/CN=${escaped(cn)}`].join("");
}

function extensionsConfig(spec: {
  isCa?: boolean;
  usages?: string[];
  dns?: string[];
  ips?: string[];
}): string {
  const sans = [...(spec.dns ?? []).map((d) => `DNS:${d}`), ...(spec.ips ?? []).map((ip) => `IP:${ip}`)];
  return [
    "[req]",
    "distinguished_name = dn",
    "[dn]",
    "[ext]",
    spec.isCa ? "basicConstraints = critical,CA:TRUE" : "basicConstraints = critical,CA:FALSE",
    spec.isCa
      ? "keyUsage = critical,digitalSignature,keyEncipherment,keyCertSign"
      : "keyUsage = critical,digitalSignature,keyEncipherment",
    ...(spec.usages?.length ? [`extendedKeyUsage = ${spec.usages.join(",")}`] : []),
    ...(sans.length ? [`subjectAltName = ${sans.join(",")}`] : []),
    "",
  ].join("\n");
}

/**
 * One certificate and its new key with one `openssl req`: self-signed for a CA, else signed by
 * `ca` (`<ca>.crt`/`<ca>.key`). Keys 0600, certificates 0644.
 */
export async function opensslCert(options: {
  cert: string;
  key: string;
  ca?: { cert: string; key: string };
  cn: string;
  o?: string[];
  isCa?: boolean;
  usages?: Array<"serverAuth" | "clientAuth">;
  dns?: string[];
  ips?: string[];
  days: number;
  algorithm?: Algorithm;
  scratch: string;
}): Promise<void> {
  await mkdir(dirname(options.cert), { recursive: true, mode: 0o700 });
  await mkdir(dirname(options.key), { recursive: true, mode: 0o700 });
  const config = join(options.scratch, `${Math.random().toString(36).slice(2)}.cnf`);
  await writeFile(config, extensionsConfig(options));
  const signer = options.ca ? ["-CA", options.ca.cert, "-CAkey", options.ca.key] : [];
  await run`openssl req -x509 -new ${algorithmArgs(options.algorithm ?? "RSA-2048")} -noenc -keyout ${options.key} -out ${options.cert} -subj ${subject(options.cn, options.o)} ${signer} -days ${options.days} -config ${config} -extensions ext`;
  await chmod(options.key, 0o600);
  await chmod(options.cert, 0o644);
}

/** Runs `tasks` with at most `limit` at once; the first failure is thrown after all settle. */
async function pool(tasks: Array<() => Promise<void>>, limit: number): Promise<void> {
  let next = 0;
  const failures: unknown[] = [];
  const worker = async () => {
    while (next < tasks.length) {
      const task = tasks[next++];
      await task?.().catch((error: unknown) => failures.push(error));
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
  if (failures.length > 0) throw failures[0];
}

function kubeconfig(options: {
  clusterName: string;
  server: string;
  caPem: string;
  user: string;
  certPem: string;
  keyPem: string;
}): string {
  const b64 = (text: string) => Buffer.from(text).toString("base64");
  const context = `${options.user}@${options.clusterName}`;
  return yaml.dump({
    apiVersion: "v1",
    kind: "Config",
    clusters: [
      {
        name: options.clusterName,
        cluster: { server: options.server, "certificate-authority-data": b64(options.caPem) },
      },
    ],
    contexts: [{ name: context, context: { cluster: options.clusterName, user: options.user } }],
    "current-context": context,
    preferences: {},
    users: [
      {
        name: options.user,
        user: { "client-certificate-data": b64(options.certPem), "client-key-data": b64(options.keyPem) },
      },
    ],
  });
}

async function loadCluster(file: string, cwd: string): Promise<ClusterFile> {
  const path = resolve(cwd, file);
  const text = await readFile(path, "utf8");
  return parseClusterFile(text, file, { env: process.env, homeDir: homedir(), cwd }).cluster;
}

async function withScratch<T>(work: (scratch: string) => Promise<T>): Promise<T> {
  const scratch = await mkdtemp(join(tmpdir(), "kf-openssl-pki-"));
  try {
    return await work(scratch);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

function sansOf(certPem: string): { dns: string[]; ips: string[] } {
  const alt = new X509Certificate(certPem).subjectAltName ?? "";
  const entries = alt.split(", ").filter(Boolean);
  return {
    dns: entries.filter((e) => e.startsWith("DNS:")).map((e) => e.slice(4)),
    ips: entries
      .filter((e) => e.startsWith("IP Address:"))
      .map((e) => e.slice("IP Address:".length).toLowerCase())
      .map((ip) => (ip === "0:0:0:0:0:0:0:1" ? "::1" : ip)),
  };
}

const fail = (code: number, message: string): ProcessRun => ({
  code,
  stdout: "",
  stderr: `${message}\n`,
  ms: 0,
});

/** The stand-in for `kubeforge certs generate -f FILE --state-dir DIR`. */
export async function opensslGenerate(file: string, stateDir: string, cwd: string): Promise<ProcessRun> {
  const started = performance.now();
  let cluster: ClusterFile;
  try {
    cluster = await loadCluster(file, cwd);
  } catch (error) {
    if (error instanceof ConfigError) return fail(2, `error: ${error.message}`);
    throw error;
  }
  const p = plan(cluster, resolve(cwd, stateDir));
  const at = (base: string) => join(p.clusterDir, base);

  if (existsSync(at("pki/ca.crt"))) {
    // Reuse: never regenerate; a SAN difference is bad input naming the fix.
    const problems: string[] = [];
    for (const [host, wanted] of p.apiserverSans) {
      const have = sansOf(await readFile(at(`nodes/${host}/pki/apiserver.crt`), "utf8"));
      const want = [...wanted.dns.map((d) => `DNS:${d}`), ...wanted.ips.map((ip) => `IP:${ip}`)];
      const got = [...have.dns.map((d) => `DNS:${d}`), ...have.ips.map((ip) => `IP:${ip}`)];
      const added = want.filter((san) => !got.includes(san));
      const removed = got.filter((san) => !want.includes(san));
      if (added.length + removed.length > 0) {
        problems.push(
          `nodes/${host}/pki/apiserver.crt: SANs differ from the cluster file: ${[
            ...added.map((s) => `+${s}`),
            ...removed.map((s) => `-${s}`),
          ].join(" ")}`,
        );
      }
    }
    if (problems.length > 0) {
      return fail(2, `error: ${problems.join("\n")}\nrun \`kubeforge certs renew apiserver\` to re-sign it`);
    }
    return {
      code: 0,
      stdout: `reused the PKI in ${p.clusterDir}\n`,
      stderr: "",
      ms: performance.now() - started,
    };
  }

  await mkdir(p.clusterDir, { recursive: true, mode: 0o700 });
  await withScratch(async (scratch) => {
    const cert = (spec: CertSpec) => () =>
      opensslCert({
        cert: at(`${spec.base}.crt`),
        key: at(`${spec.base}.key`),
        ...(spec.ca ? { ca: { cert: at(`${spec.ca}.crt`), key: at(`${spec.ca}.key`) } } : {}),
        cn: spec.cn,
        o: spec.o,
        isCa: spec.isCa,
        usages: spec.usages,
        dns: spec.dns,
        ips: spec.ips,
        days: spec.isCa ? p.caDays : p.leafDays,
        algorithm: p.algorithm,
        scratch,
      });
    const limit = availableParallelism();
    const cas = p.certs.filter((c) => c.isCa);
    const leaves = p.certs.filter((c) => !c.isCa);
    const sa = async () => {
      const key = at("pki/sa.key");
      await mkdir(dirname(key), { recursive: true, mode: 0o700 });
      if (p.algorithm === "ECDSA-P256")
        await run`openssl ecparam -name prime256v1 -genkey -noout -out ${key}`;
      else await run`openssl genrsa -traditional -out ${key} ${p.algorithm.slice(4)}`;
      await run`openssl pkey -in ${key} -pubout -out ${at("pki/sa.pub")}`;
      await chmod(key, 0o600);
      await chmod(at("pki/sa.pub"), 0o644);
    };
    await pool([...cas.map(cert), sa], limit);
    const kubeconfigTasks = p.kubeconfigs.map((spec) => async () => {
      const base = join(scratch, spec.path.replaceAll("/", "_"));
      await opensslCert({
        cert: `${base}.crt`,
        key: `${base}.key`,
        ca: { cert: at("pki/ca.crt"), key: at("pki/ca.key") },
        cn: spec.cn,
        o: spec.o,
        usages: ["clientAuth"],
        days: p.leafDays,
        algorithm: p.algorithm,
        scratch,
      });
      const path = at(spec.path);
      await mkdir(dirname(path), { recursive: true, mode: 0o700 });
      const text = kubeconfig({
        clusterName: p.clusterName,
        server: spec.server,
        caPem: await readFile(at("pki/ca.crt"), "utf8"),
        user: spec.cn,
        certPem: await readFile(`${base}.crt`, "utf8"),
        keyPem: await readFile(`${base}.key`, "utf8"),
      });
      await writeFile(path, text, { mode: 0o600 });
    });
    await pool([...leaves.map(cert), ...kubeconfigTasks], limit);
  });
  return {
    code: 0,
    stdout: `wrote the PKI to ${p.clusterDir}\n`,
    stderr: "",
    ms: performance.now() - started,
  };
}

/** The stand-in for `kubeforge kubeconfig user -f FILE --name NAME --group G…`: prints the kubeconfig. */
export async function opensslUserKubeconfig(
  file: string,
  stateDir: string,
  cwd: string,
  user: { name: string; groups: string[] },
): Promise<ProcessRun> {
  const cluster = await loadCluster(file, cwd);
  const p = plan(cluster, resolve(cwd, stateDir));
  const ca = { cert: join(p.clusterDir, "pki/ca.crt"), key: join(p.clusterDir, "pki/ca.key") };
  if (!existsSync(ca.key)) return fail(1, `error: no CA in ${p.clusterDir}: run certs generate first`);
  return withScratch(async (scratch) => {
    const base = join(scratch, "user");
    await opensslCert({
      cert: `${base}.crt`,
      key: `${base}.key`,
      ca,
      cn: user.name,
      o: user.groups,
      usages: ["clientAuth"],
      days: p.leafDays,
      algorithm: p.algorithm,
      scratch,
    });
    const stdout = kubeconfig({
      clusterName: p.clusterName,
      server: p.endpointUrl,
      caPem: await readFile(ca.cert, "utf8"),
      user: user.name,
      certPem: await readFile(`${base}.crt`, "utf8"),
      keyPem: await readFile(`${base}.key`, "utf8"),
    });
    return { code: 0, stdout, stderr: "", ms: 0 };
  });
}
