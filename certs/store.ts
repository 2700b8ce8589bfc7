// The local PKI store of one cluster, laid out as kubeadm lays out /etc/kubernetes (the layout is
// a contract other modules rely on):
//   <clusterDir>/pki/                 ca.{crt,key} front-proxy-ca.* etcd/ca.* sa.key sa.pub
//   <clusterDir>/nodes/<host>/pki/    apiserver.* apiserver-kubelet-client.* front-proxy-client.*
//                                     apiserver-etcd-client.* etcd/{server,peer,healthcheck-client}.*
//   <clusterDir>/kubeconfigs/         admin.conf, super-admin.conf (v1.29+)
//   <clusterDir>/nodes/<host>/        controller-manager.conf scheduler.conf kubelet.conf
// Directories 0700, keys 0600, certificates 0644, kubeconfigs 0600, every file written atomically.
// Identities that do not depend on the node (apiserver-kubelet-client, front-proxy-client,
// apiserver-etcd-client, etcd/healthcheck-client, the clients of controller-manager.conf and
// scheduler.conf) are one key and certificate per cluster, copied into every node's files: a node
// added later gets a copy, a renew rewrites every copy, and copies that differ are a problem.
// Existing material is reused when it still matches the cluster file and never silently replaced:
// a difference is a PkiError naming it and its fix, with no file changed.
import type { KeyObject } from "node:crypto";
import { stat } from "node:fs/promises";
import { join } from "node:path";
import type { ClusterFile } from "../config/schema.js";
import { PkiError, type PkiProblem, UsageError } from "../workflow/errors.js";
import { parseGoDuration, shortHumanDuration } from "./duration.js";
import { AtomicWriter, CERT_MODE, KEY_MODE, KUBECONFIG_MODE, readIfExists } from "./files.js";
import {
  generatePrivateKey,
  keyAlgorithm,
  parsePrivateKey,
  parsePublicKey,
  privateKeyToPem,
  publicKeyToPem,
  samePublicKey,
} from "./keys.js";
import {
  buildKubeconfig,
  clientProfile,
  currentCredentials,
  KUBECONFIG_SPECS,
  parseKubeconfig,
  type ResolvedKubeconfig,
  resolveKubeconfigs,
  serializeKubeconfig,
} from "./kubeconfigs.js";
import {
  CA_NAMES,
  type CaName,
  CERT_SPECS,
  certFiles,
  type PkiInputs,
  pkiInputs,
  type ResolvedCert,
  resolveCerts,
  SERVICE_ACCOUNT_KEY,
} from "./specs.js";
import {
  type Certificate,
  type CertificateProfile,
  certificateMatchesKey,
  type Issuer,
  isIssuedBy,
  parseCertificate,
  signCertificate,
} from "./x509.js";

/** How far NotBefore is back-dated: the workstation's clock signs, and nodes' clocks may lag it. */
export const CERTIFICATE_BACKDATE_MS = 5 * 60_000;

export const ADMIN_KUBECONFIG = "kubeconfigs/admin.conf";
const SA_KEY = `pki/${SERVICE_ACCOUNT_KEY.baseName}.key`;
const SA_PUB = `pki/${SERVICE_ACCOUNT_KEY.baseName}.pub`;

export interface StoreOptions {
  /** The signing time; tests pass a fixed one. */
  now?: Date;
  /** The cluster file as the user named it, for the fixes in error messages. */
  clusterFile?: string;
}

export interface EnsureResult {
  /** Ids of what was generated: `ca`, `sa`, `cp1/apiserver`, `admin.conf`, `cp1/kubelet.conf`. */
  created: string[];
  /** Ids of what was found valid and kept. */
  reused: string[];
}

type CaState =
  | { kind: "create"; cert: ResolvedCert }
  | { kind: "present"; cert: ResolvedCert; issuer: Issuer }
  /** Certificate without key: nothing it signs can be made here. */
  | { kind: "external"; cert: ResolvedCert; certificate: Certificate };

/** A signed identity as found in the store: parsed, and the exact texts a copy is made of. */
interface Material {
  certificate: Certificate;
  key: KeyObject;
  certPem: string;
  keyPem: string;
  /** Where it was read, relative to the cluster directory. */
  file: string;
}

/**
 * Files to write with one identity: one node's own, or every node's copy of a shared one. Without
 * `copyOf` one key is generated and one certificate signed for all of `items`.
 */
interface Job<T> {
  items: T[];
  copyOf?: Material;
}

interface Plan {
  cas: Map<CaName, CaState>;
  sa: "create" | "derive-pub" | "present";
  leaves: Job<ResolvedCert>[];
  kubeconfigs: Job<ResolvedKubeconfig>[];
  /** The store's ca.crt as kubeconfigs embed it, when there is one. */
  caPem: string | undefined;
  reused: string[];
  problems: PkiProblem[];
}

/** What inspecting one signed file found, besides its problems. */
type Outcome =
  | { kind: "reused"; material: Material }
  /** Not there; `unsignable` when its CA cannot sign it here. */
  | { kind: "missing"; unsignable?: PkiProblem }
  | { kind: "none" };

interface Inspected {
  problems: PkiProblem[];
  outcome: Outcome;
}

interface Context {
  clusterDir: string;
  inputs: PkiInputs;
  now: Date;
  fixFile: string;
  /** This run's writes: directories made and synced once each. */
  writer: AtomicWriter;
  /** The cluster directory did not exist when the run looked: nothing to read. */
  empty: boolean;
}

function context(cluster: ClusterFile, clusterDir: string, options: StoreOptions): Context {
  return {
    clusterDir,
    inputs: pkiInputs(cluster),
    now: options.now ?? new Date(),
    fixFile: options.clusterFile ?? "FILE",
    writer: new AtomicWriter(),
    empty: false,
  };
}

const renewFix = (ctx: Context, name: string) => `kubeforge certs renew ${name} -f ${ctx.fixFile}`;

function subjectOf(item: { spec: { name: string }; node: string | undefined }): string {
  return item.node ? `${item.spec.name} (${item.node})` : item.spec.name;
}

/** The differences between what a certificate is and what its spec asks for, as `what: detail`. */
export function profileDifferences(expected: CertificateProfile, actual: CertificateProfile): string[] {
  const differences: string[] = [];
  const list = (values: readonly string[]) => (values.length ? values.join(", ") : "none");
  const sameSet = (a: readonly string[], b: readonly string[]) =>
    a.length === b.length && [...a].sort().join("\n") === [...b].sort().join("\n");
  if (actual.commonName !== expected.commonName) {
    differences.push(`CN: "${actual.commonName}", expected "${expected.commonName}"`);
  }
  if (!sameSet(actual.organizations, expected.organizations)) {
    differences.push(`O: ${list(actual.organizations)}, expected ${list(expected.organizations)}`);
  }
  const sans = (p: CertificateProfile) => [
    ...p.dnsNames.map((n) => `DNS:${n}`),
    ...p.ipAddresses.map((ip) => `IP:${ip}`),
  ];
  const missing = sans(expected).filter((san) => !sans(actual).includes(san));
  const unexpected = sans(actual).filter((san) => !sans(expected).includes(san));
  if (missing.length > 0 || unexpected.length > 0) {
    const parts = [
      ...(missing.length ? [`missing ${missing.join(", ")}`] : []),
      ...(unexpected.length ? [`unexpected ${unexpected.join(", ")}`] : []),
    ];
    differences.push(`SANs: ${parts.join("; ")}`);
  }
  if (actual.isCA !== expected.isCA) differences.push(`CA: ${actual.isCA}, expected ${expected.isCA}`);
  if (!sameSet(actual.keyUsages, expected.keyUsages)) {
    differences.push(`key usages: ${list(actual.keyUsages)}, expected ${list(expected.keyUsages)}`);
  }
  if (!sameSet(actual.extKeyUsages, expected.extKeyUsages)) {
    differences.push(
      `extended key usages: ${list(actual.extKeyUsages)}, expected ${list(expected.extKeyUsages)}`,
    );
  }
  return differences;
}

function validityProblem(certificate: Certificate, now: Date): string | undefined {
  if (now > certificate.notAfter) return `expired on ${certificate.notAfter.toISOString()}`;
  if (now < certificate.notBefore) return `not valid before ${certificate.notBefore.toISOString()}`;
  return undefined;
}

/** Reads and checks one signed certificate (leaf or kubeconfig client) against its spec. */
function leafProblems(
  ctx: Context,
  expected: CertificateProfile,
  certificate: Certificate,
  key: KeyObject,
  issuer: { name: CaName; certificate: Certificate },
): string[] {
  const problems = profileDifferences(expected, certificate);
  if (certificate.otherUsages.length > 0)
    problems.push(`unexpected usages: ${certificate.otherUsages.join(", ")}`);
  if (certificate.algorithm !== ctx.inputs.algorithm) {
    problems.push(`key algorithm: ${certificate.algorithm}, expected ${ctx.inputs.algorithm}`);
  }
  if (!isIssuedBy(certificate, issuer.certificate)) problems.push(`not signed by the store's ${issuer.name}`);
  if (!certificateMatchesKey(certificate, key)) problems.push("the key does not match the certificate");
  const validity = validityProblem(certificate, ctx.now);
  if (validity) problems.push(validity);
  return problems;
}

async function read(ctx: Context, file: string): Promise<string | undefined> {
  return ctx.empty ? undefined : readIfExists(join(ctx.clusterDir, file));
}

/** Parses PEM text, recording a problem instead of throwing. */
function parsed<T>(
  parse: (text: string) => T,
  text: string,
  problem: Omit<PkiProblem, "problem">,
  problems: PkiProblem[],
): T | undefined {
  try {
    return parse(text);
  } catch (error) {
    problems.push({ ...problem, problem: `unreadable: ${(error as Error).message}` });
    return undefined;
  }
}

async function inspectCa(ctx: Context, cert: ResolvedCert, plan: Plan): Promise<void> {
  const files = certFiles(cert);
  const [crt, key] = await Promise.all([read(ctx, files.crt), read(ctx, files.key)]);
  const name = cert.spec.name as CaName;
  if (crt === undefined && key === undefined) {
    plan.cas.set(name, { kind: "create", cert });
    return;
  }
  if (crt === undefined) {
    plan.problems.push({
      subject: name,
      file: files.key,
      problem: `${files.key} exists without ${files.crt}`,
      fix: `restore ${files.crt}, or remove ${files.key} to generate a new CA`,
    });
    return;
  }
  const certificate = parsed(parseCertificate, crt, { subject: name, file: files.crt }, plan.problems);
  if (!certificate) return;
  const problems: string[] = [];
  if (!certificate.isCA) problems.push("not a CA certificate (BasicConstraints CA:FALSE)");
  const validity = validityProblem(certificate, ctx.now);
  if (validity) problems.push(`${validity} (CAs are never renewed: replace it and re-issue what it signed)`);
  let privateKey: KeyObject | undefined;
  if (key !== undefined) {
    privateKey = parsed(parsePrivateKey, key, { subject: name, file: files.key }, plan.problems);
    if (privateKey && !certificateMatchesKey(certificate, privateKey)) {
      problems.push(`${files.key} does not match ${files.crt}`);
    }
  }
  for (const problem of problems) plan.problems.push({ subject: name, file: files.crt, problem });
  if (problems.length > 0 || (key !== undefined && !privateKey)) return;
  plan.cas.set(
    name,
    privateKey
      ? { kind: "present", cert, issuer: { certificate, key: privateKey } }
      : { kind: "external", cert, certificate },
  );
  plan.reused.push(cert.id);
}

async function inspectServiceAccount(ctx: Context, plan: Plan): Promise<void> {
  const [key, pub] = await Promise.all([read(ctx, SA_KEY), read(ctx, SA_PUB)]);
  if (key === undefined) {
    if (pub === undefined) plan.sa = "create";
    else {
      plan.problems.push({
        subject: "sa",
        file: SA_PUB,
        problem: `${SA_PUB} exists without ${SA_KEY}`,
        fix: `restore ${SA_KEY}, or remove ${SA_PUB} to generate a new key pair`,
      });
    }
    return;
  }
  const privateKey = parsed(parsePrivateKey, key, { subject: "sa", file: SA_KEY }, plan.problems);
  if (!privateKey) return;
  if (pub === undefined) {
    plan.sa = "derive-pub";
    return;
  }
  const publicKey = parsed(parsePublicKey, pub, { subject: "sa", file: SA_PUB }, plan.problems);
  if (!publicKey) return;
  if (!samePublicKey(privateKey, publicKey)) {
    plan.problems.push({
      subject: "sa",
      file: SA_PUB,
      problem: `${SA_PUB} is not the public key of ${SA_KEY}`,
    });
    return;
  }
  plan.sa = "present";
  plan.reused.push(SERVICE_ACCOUNT_KEY.name);
}

async function inspectSigned(
  ctx: Context,
  plan: Plan,
  item: { subject: string; ca: CaName; renewName: string; files: string[] },
  load: (problems: PkiProblem[]) => Promise<Material | "missing" | "incomplete" | undefined>,
  expected: CertificateProfile,
): Promise<Inspected> {
  // Each item collects its own problems, so the report comes out in table order.
  const problems: PkiProblem[] = [];
  const none = (): Inspected => ({ problems, outcome: { kind: "none" } });
  const ca = plan.cas.get(item.ca);
  const loaded = await load(problems);
  if (loaded === undefined) return none();
  if (loaded === "missing") {
    if (ca?.kind === "external") {
      const unsignable: PkiProblem = {
        subject: item.subject,
        file: item.files[0],
        problem: `missing, and ${item.ca}'s key is not in the store (an external CA is not supported yet)`,
        fix: `put ${certFiles(ca.cert).key} in the store, or provide ${item.files.join(" and ")}`,
      };
      return { problems, outcome: { kind: "missing", unsignable } };
    }
    return ca ? { problems, outcome: { kind: "missing" } } : none();
  }
  if (loaded === "incomplete") {
    problems.push({
      subject: item.subject,
      file: item.files[0],
      problem: `${item.files[0]} exists without its key ${item.files[1] ?? ""}`.trim(),
      fix: renewFix(ctx, item.renewName),
    });
    return none();
  }
  if (!ca) return none();
  if (ca.kind === "create") {
    problems.push({
      subject: item.subject,
      file: item.files[0],
      problem: `signed by a ${item.ca} that is no longer in the store`,
      fix: `restore the ${item.ca} certificate and key, or remove ${item.files.join(" and ")}`,
    });
    return none();
  }
  const issuer = ca.kind === "present" ? ca.issuer.certificate : ca.certificate;
  const differences = leafProblems(ctx, expected, loaded.certificate, loaded.key, {
    name: item.ca,
    certificate: issuer,
  });
  for (const problem of differences) {
    problems.push({
      subject: item.subject,
      file: item.files[0],
      problem,
      fix: renewFix(ctx, item.renewName),
    });
  }
  return problems.length === 0 ? { problems, outcome: { kind: "reused", material: loaded } } : none();
}

/**
 * Turns what inspection found into the plan's work, in table order: problems, reused ids, and jobs
 * for what is missing. A shared identity is one job for every node that lacks it: a copy of the
 * existing one when a node has a valid copy (a node added later), else one new key and certificate
 * for all. Copies that are valid but not identical are a problem: the renew makes them one again.
 */
function planJobs<
  T extends { id: string; node: string | undefined; spec: { name: string; shared: boolean } },
>(
  ctx: Context,
  plan: Plan,
  items: readonly T[],
  inspected: readonly Inspected[],
  problems: PkiProblem[],
): Job<T>[] {
  const reference = new Map<string, Material>();
  items.forEach((item, index) => {
    const outcome = inspected[index]?.outcome;
    if (item.spec.shared && outcome?.kind === "reused" && !reference.has(item.spec.name)) {
      reference.set(item.spec.name, outcome.material);
    }
  });
  const jobs: Job<T>[] = [];
  const sharedJobs = new Map<string, Job<T>>();
  items.forEach((item, index) => {
    const result = inspected[index];
    if (!result) return;
    problems.push(...result.problems);
    const { outcome } = result;
    const copyOf = item.spec.shared ? reference.get(item.spec.name) : undefined;
    if (outcome.kind === "reused") {
      if (copyOf && copyOf.certificate.pem !== outcome.material.certificate.pem) {
        problems.push({
          subject: subjectOf(item),
          file: outcome.material.file,
          problem: `not the same certificate and key as ${copyOf.file}: every control plane shares one ${item.spec.name}`,
          fix: renewFix(ctx, item.spec.name),
        });
      } else plan.reused.push(item.id);
      return;
    }
    if (outcome.kind !== "missing") return;
    if (outcome.unsignable && !copyOf) {
      problems.push(outcome.unsignable);
      return;
    }
    if (!item.spec.shared) {
      jobs.push({ items: [item] });
      return;
    }
    let job = sharedJobs.get(item.spec.name);
    if (!job) {
      job = copyOf ? { items: [], copyOf } : { items: [] };
      sharedJobs.set(item.spec.name, job);
      jobs.push(job);
    }
    job.items.push(item);
  });
  return jobs;
}

async function loadCertAndKey(
  ctx: Context,
  cert: ResolvedCert,
  problems: PkiProblem[],
): Promise<Material | "missing" | "incomplete" | undefined> {
  const files = certFiles(cert);
  const [crt, key] = await Promise.all([read(ctx, files.crt), read(ctx, files.key)]);
  // A key without its certificate is what a crash between the two writes leaves: nothing trusts
  // that key yet, so it is generated again.
  if (crt === undefined) return "missing";
  if (key === undefined) return "incomplete";
  const subject = subjectOf(cert);
  const certificate = parsed(parseCertificate, crt, { subject, file: files.crt }, problems);
  const privateKey = parsed(parsePrivateKey, key, { subject, file: files.key }, problems);
  return certificate && privateKey
    ? { certificate, key: privateKey, certPem: crt, keyPem: key, file: files.crt }
    : undefined;
}

async function loadKubeconfig(
  ctx: Context,
  kubeconfig: ResolvedKubeconfig,
  caPem: string | undefined,
  problems: PkiProblem[],
): Promise<Material | "missing" | undefined> {
  const text = await read(ctx, kubeconfig.file);
  if (text === undefined) return "missing";
  const subject = subjectOf(kubeconfig);
  const problem = (message: string) =>
    problems.push({
      subject,
      file: kubeconfig.file,
      problem: message,
      fix: renewFix(ctx, kubeconfig.spec.name),
    });
  let credentials: ReturnType<typeof currentCredentials>;
  try {
    credentials = currentCredentials(parseKubeconfig(text));
  } catch (error) {
    problem(`unreadable: ${(error as Error).message}`);
    return undefined;
  }
  if (!credentials.certPem || !credentials.keyPem) {
    problem("its current context has no embedded client certificate and key");
    return undefined;
  }
  if (credentials.server !== kubeconfig.server) {
    problem(`server: ${credentials.server ?? "none"}, expected ${kubeconfig.server}`);
  }
  if (caPem !== undefined && normalizedPem(credentials.caPem) !== normalizedPem(caPem)) {
    problem("its certificate-authority-data is not the store's ca.crt");
  }
  const certificate = parsed(
    parseCertificate,
    credentials.certPem,
    { subject, file: kubeconfig.file },
    problems,
  );
  const key = parsed(parsePrivateKey, credentials.keyPem, { subject, file: kubeconfig.file }, problems);
  return certificate && key
    ? { certificate, key, certPem: credentials.certPem, keyPem: credentials.keyPem, file: kubeconfig.file }
    : undefined;
}

function normalizedPem(pem: string | undefined): string | undefined {
  if (pem === undefined) return undefined;
  try {
    return parseCertificate(pem).pem;
  } catch {
    return pem;
  }
}

async function inspect(ctx: Context): Promise<Plan> {
  // A first run finds no directory: skip the reads of files that cannot be there.
  ctx.empty = await stat(ctx.clusterDir).then(
    () => false,
    (error: NodeJS.ErrnoException) => {
      if (error.code === "ENOENT") return true;
      throw error;
    },
  );
  const plan: Plan = {
    cas: new Map(),
    sa: "present",
    leaves: [],
    kubeconfigs: [],
    caPem: undefined,
    reused: [],
    problems: [],
  };
  const certs = resolveCerts(ctx.inputs);
  for (const cert of certs.filter((c) => c.spec.ca === undefined)) await inspectCa(ctx, cert, plan);
  await inspectServiceAccount(ctx, plan);
  const ca = plan.cas.get("ca");
  plan.caPem =
    ca?.kind === "present"
      ? ca.issuer.certificate.pem
      : ca?.kind === "external"
        ? ca.certificate.pem
        : undefined;
  const caPem = plan.caPem;
  const leaves = certs.filter((c) => c.spec.ca !== undefined);
  const kubeconfigs = resolveKubeconfigs(ctx.inputs);
  const [leafResults, kubeconfigResults] = await Promise.all([
    Promise.all(
      leaves.map((cert) => {
        const files = certFiles(cert);
        return inspectSigned(
          ctx,
          plan,
          {
            subject: subjectOf(cert),
            ca: cert.spec.ca as CaName,
            renewName: cert.spec.name,
            files: [files.crt, files.key],
          },
          (problems) => loadCertAndKey(ctx, cert, problems),
          cert.profile,
        );
      }),
    ),
    Promise.all(
      kubeconfigs.map((kubeconfig) =>
        inspectSigned(
          ctx,
          plan,
          {
            subject: subjectOf(kubeconfig),
            ca: "ca",
            renewName: kubeconfig.spec.name,
            files: [kubeconfig.file],
          },
          (problems) => loadKubeconfig(ctx, kubeconfig, caPem, problems),
          kubeconfig.profile,
        ),
      ),
    ),
  ]);
  const leafProblemList: PkiProblem[] = [];
  const kubeconfigProblemList: PkiProblem[] = [];
  plan.leaves = planJobs(ctx, plan, leaves, leafResults, leafProblemList);
  plan.kubeconfigs = planJobs(ctx, plan, kubeconfigs, kubeconfigResults, kubeconfigProblemList);
  plan.problems.push(...leafProblemList, ...kubeconfigProblemList);
  return plan;
}

function validity(
  ctx: Context,
  validityMs: number,
  issuer?: Certificate,
): { notBefore: Date; notAfter: Date } {
  const notAfter = new Date(ctx.now.getTime() + validityMs);
  return {
    notBefore: new Date(ctx.now.getTime() - CERTIFICATE_BACKDATE_MS),
    // A leaf never outlives its CA.
    notAfter: issuer && issuer.notAfter < notAfter ? issuer.notAfter : notAfter,
  };
}

async function writeCertAndKey(ctx: Context, cert: ResolvedCert, certPem: string, keyPem: string) {
  const files = certFiles(cert);
  // The key first: a crash in between leaves a key without certificate, which is generated again.
  await ctx.writer.write(join(ctx.clusterDir, files.key), keyPem, KEY_MODE);
  await ctx.writer.write(join(ctx.clusterDir, files.crt), certPem, CERT_MODE);
}

/** Signs one certificate for `certs` (one node's, or every node's copy of a shared one) and writes it to each. */
async function issueLeaves(
  ctx: Context,
  certs: readonly ResolvedCert[],
  issuer: Issuer,
  key: Promise<KeyObject>,
): Promise<void> {
  const first = certs[0];
  if (!first) return;
  const signed = await signOnce(ctx, first, issuer, key);
  await settleAll(certs.map((cert) => writeCertAndKey(ctx, cert, signed.certPem, signed.keyPem)));
}

/** One certificate for a profile, whatever number of files it is then written to. */
async function signOnce(
  ctx: Context,
  spec: { profile: ResolvedCert["profile"]; validityMs: number },
  issuer: Issuer,
  key: Promise<KeyObject>,
): Promise<{ certPem: string; keyPem: string }> {
  const privateKey = await key;
  const certificate = await signCertificate(
    spec.profile,
    validity(ctx, spec.validityMs, issuer.certificate),
    privateKey,
    issuer,
  );
  return { certPem: certificate.pem, keyPem: privateKeyToPem(privateKey) };
}

async function writeKubeconfig(
  ctx: Context,
  kubeconfig: ResolvedKubeconfig,
  caPem: string,
  certPem: string,
  keyPem: string,
): Promise<void> {
  const config = buildKubeconfig({
    clusterName: kubeconfig.clusterName,
    server: kubeconfig.server,
    caPem,
    userName: kubeconfig.profile.commonName,
    certPem,
    keyPem,
  });
  await ctx.writer.write(join(ctx.clusterDir, kubeconfig.file), serializeKubeconfig(config), KUBECONFIG_MODE);
}

/** Signs one client certificate for `kubeconfigs` and writes each file with its own server. */
async function issueKubeconfigs(
  ctx: Context,
  kubeconfigs: readonly ResolvedKubeconfig[],
  issuer: Issuer,
  key: Promise<KeyObject>,
): Promise<void> {
  const first = kubeconfigs[0];
  if (!first) return;
  const signed = await signOnce(ctx, first, issuer, key);
  await settleAll(
    kubeconfigs.map((k) => writeKubeconfig(ctx, k, issuer.certificate.pem, signed.certPem, signed.keyPem)),
  );
}

async function writeServiceAccount(ctx: Context, key: KeyObject, withPrivate: boolean): Promise<void> {
  if (withPrivate) await ctx.writer.write(join(ctx.clusterDir, SA_KEY), privateKeyToPem(key), KEY_MODE);
  await ctx.writer.write(join(ctx.clusterDir, SA_PUB), publicKeyToPem(key), KEY_MODE);
}

/**
 * Makes the store hold the cluster's whole PKI: the CAs, sa.key/sa.pub, every control plane's
 * leaves and every kubeconfig. What exists is checked and kept; what is missing is generated (all
 * keys at once, so both cores work). Throws a PkiError, before writing anything, when existing
 * material does not match the cluster file.
 */
export async function ensurePki(
  cluster: ClusterFile,
  clusterDir: string,
  options: StoreOptions = {},
): Promise<EnsureResult> {
  const ctx = context(cluster, clusterDir, options);
  const plan = await inspect(ctx);
  if (plan.problems.length > 0) throw new PkiError(clusterDir, plan.problems);

  const created: string[] = [];
  const algorithm = ctx.inputs.algorithm;
  // Every key is asked for up front: the thread pool works through them while CAs get signed.
  const caKeys = new Map(
    [...plan.cas]
      .filter(([, s]) => s.kind === "create")
      .map(([name]) => [name, generatePrivateKey(algorithm)]),
  );
  const saKey = plan.sa === "create" ? generatePrivateKey(algorithm) : undefined;
  const leafKeys = plan.leaves.map((job) => (job.copyOf ? undefined : generatePrivateKey(algorithm)));
  const kubeconfigKeys = plan.kubeconfigs.map((job) =>
    job.copyOf ? undefined : generatePrivateKey(algorithm),
  );

  const issuers = new Map<CaName, Promise<Issuer>>();
  for (const [name, state] of plan.cas) {
    if (state.kind === "present") issuers.set(name, Promise.resolve(state.issuer));
    const key = caKeys.get(name);
    if (state.kind !== "create" || !key) continue;
    issuers.set(
      name,
      key.then(async (privateKey) => {
        const certificate = await signCertificate(
          state.cert.profile,
          validity(ctx, state.cert.validityMs),
          privateKey,
        );
        await writeCertAndKey(ctx, state.cert, certificate.pem, privateKeyToPem(privateKey));
        created.push(state.cert.id);
        return { certificate, key: privateKey };
      }),
    );
  }
  const work: Promise<void>[] = [...issuers.values()].map((issuer) => issuer.then(() => undefined));
  const done = (ids: string[]) => () => void created.push(...ids);
  plan.leaves.forEach((job, index) => {
    const ids = job.items.map((cert) => cert.id);
    const copy = job.copyOf;
    if (copy) {
      work.push(
        settleAll(job.items.map((cert) => writeCertAndKey(ctx, cert, copy.certPem, copy.keyPem))).then(
          done(ids),
        ),
      );
      return;
    }
    const issuer = issuers.get(job.items[0]?.spec.ca as CaName);
    const key = leafKeys[index];
    if (!issuer || !key) return;
    work.push(issuer.then((ca) => issueLeaves(ctx, job.items, ca, key)).then(done(ids)));
  });
  plan.kubeconfigs.forEach((job, index) => {
    const ids = job.items.map((k) => k.id);
    const copy = job.copyOf;
    const caPem = plan.caPem;
    if (copy && caPem !== undefined) {
      work.push(
        settleAll(job.items.map((k) => writeKubeconfig(ctx, k, caPem, copy.certPem, copy.keyPem))).then(
          done(ids),
        ),
      );
      return;
    }
    const issuer = issuers.get("ca");
    const key = kubeconfigKeys[index];
    if (!issuer || !key) return;
    work.push(issuer.then((ca) => issueKubeconfigs(ctx, job.items, ca, key)).then(done(ids)));
  });
  if (plan.sa !== "present") {
    const key = saKey ?? readServiceAccountKey(ctx);
    work.push(
      key.then((k) => writeServiceAccount(ctx, k, plan.sa === "create")).then(() => void created.push("sa")),
    );
  }
  try {
    await settleAll(work);
  } finally {
    await ctx.writer.flush();
  }
  return { created: order(created, ctx), reused: order(plan.reused, ctx) };
}

async function readServiceAccountKey(ctx: Context): Promise<KeyObject> {
  const text = await read(ctx, SA_KEY);
  if (text === undefined)
    throw new PkiError(ctx.clusterDir, [
      { subject: "sa", file: SA_KEY, problem: "disappeared during the run" },
    ]);
  return parsePrivateKey(text);
}

/** Waits for every task, then throws the first failure: no write is left running behind an error. */
async function settleAll(work: Promise<unknown>[]): Promise<void> {
  const results = await Promise.allSettled(work);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed) throw failed.reason;
}

/** Ids in table order (CAs, sa, leaves by node, kubeconfigs), whatever order the work finished in. */
function order(ids: string[], ctx: Context): string[] {
  const all = allIds(ctx.inputs);
  return [...ids].sort((a, b) => all.indexOf(a) - all.indexOf(b));
}

function allIds(inputs: PkiInputs): string[] {
  const certs = resolveCerts(inputs);
  return [
    ...certs.filter((c) => c.spec.ca === undefined).map((c) => c.id),
    SERVICE_ACCOUNT_KEY.name,
    ...certs.filter((c) => c.spec.ca !== undefined).map((c) => c.id),
    ...resolveKubeconfigs(inputs).map((k) => k.id),
  ];
}

/** What `renew` accepts: kubeadm's leaf names and kubeconfig names, plus `all`. */
export function renewableNames(cluster: ClusterFile): string[] {
  const inputs = pkiInputs(cluster);
  return [
    ...CERT_SPECS.filter((s) => s.ca !== undefined).map((s) => s.name),
    ...KUBECONFIG_SPECS.filter((s) => s.applies(inputs.gates)).map((s) => s.name),
  ];
}

export interface RenewOptions extends StoreOptions {
  /** Only these control-plane nodes' per-node files (default: all). */
  nodes?: string[];
}

/**
 * Re-signs leaves or kubeconfigs with the current spec and a new key, keeping the CAs (which are
 * never renewed). `all` is every leaf and every kubeconfig but kubelet.conf, as kubeadm's
 * `certs renew all`. Returns the ids renewed.
 */
export async function renew(
  cluster: ClusterFile,
  clusterDir: string,
  name: string,
  options: RenewOptions = {},
): Promise<{ renewed: string[] }> {
  const ctx = context(cluster, clusterDir, options);
  if ((CA_NAMES as readonly string[]).includes(name)) {
    throw new UsageError(`${name} is a CA: CAs are never renewed (kubeadm does not renew them either)`);
  }
  const names = renewableNames(cluster);
  if (name !== "all" && !names.includes(name)) {
    throw new UsageError(`unknown certificate "${name}"; renewable: ${names.join(", ")}, all`);
  }
  const nodes = options.nodes;
  if (nodes) {
    const known = ctx.inputs.controlPlanes.map((n) => n.name);
    const unknown = nodes.filter((n) => !known.includes(n));
    if (unknown.length > 0) throw new UsageError(`not a control-plane host: ${unknown.join(", ")}`);
  }
  // A shared identity is renewed on every node whatever `nodes` says: its copies must stay one.
  const wanted = (
    item: { spec: { name: string; shared: boolean }; node: string | undefined },
    inRenewAll: boolean,
  ) =>
    (name === "all" ? inRenewAll : item.spec.name === name) &&
    (!item.node || item.spec.shared || !nodes || nodes.includes(item.node));
  const leaves = resolveCerts(ctx.inputs).filter((c) => c.spec.ca !== undefined && wanted(c, true));
  const kubeconfigs = resolveKubeconfigs(ctx.inputs).filter((k) => wanted(k, k.spec.inRenewAll));

  const needed = new Set<CaName>([
    ...leaves.map((c) => c.spec.ca as CaName),
    ...(kubeconfigs.length ? ["ca" as const] : []),
  ]);
  const problems: PkiProblem[] = [];
  const issuers = new Map<CaName, Issuer>();
  for (const ca of needed) {
    const issuer = await loadIssuer(ctx, ca, problems);
    if (issuer) issuers.set(ca, issuer);
  }
  if (problems.length > 0) throw new PkiError(clusterDir, problems);

  // One key and one certificate per identity: a shared one is written to every node at once.
  const work: Promise<string[]>[] = [
    ...identities(leaves).map((certs) =>
      issueLeaves(
        ctx,
        certs,
        issuers.get(certs[0]?.spec.ca as CaName) as Issuer,
        generatePrivateKey(ctx.inputs.algorithm),
      ).then(() => certs.map((c) => c.id)),
    ),
    ...identities(kubeconfigs).map((group) =>
      issueKubeconfigs(
        ctx,
        group,
        issuers.get("ca") as Issuer,
        generatePrivateKey(ctx.inputs.algorithm),
      ).then(() => group.map((k) => k.id)),
    ),
  ];
  try {
    await settleAll(work);
  } finally {
    await ctx.writer.flush();
  }
  return { renewed: order((await Promise.all(work)).flat(), ctx) };
}

/** Items grouped by identity: every node's copy of a shared one together, the others alone. */
function identities<T extends { id: string; spec: { name: string; shared: boolean } }>(
  items: readonly T[],
): T[][] {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const key = item.spec.shared ? `shared:${item.spec.name}` : item.id;
    groups.set(key, [...(groups.get(key) ?? []), item]);
  }
  return [...groups.values()];
}

/** A CA's certificate and key from the store, for signing; problems when it cannot sign. */
async function loadIssuer(ctx: Context, ca: CaName, problems: PkiProblem[]): Promise<Issuer | undefined> {
  const cert = resolveCerts(ctx.inputs).find((c) => c.spec.name === ca);
  if (!cert) return undefined;
  const files = certFiles(cert);
  const [crt, key] = await Promise.all([read(ctx, files.crt), read(ctx, files.key)]);
  if (crt === undefined || key === undefined) {
    problems.push({
      subject: ca,
      file: crt === undefined ? files.crt : files.key,
      problem:
        crt === undefined
          ? "the CA is not in the store"
          : `${files.key} is missing (an external CA is not supported yet)`,
      fix:
        crt === undefined ? `kubeforge certs generate -f ${ctx.fixFile}` : `put the CA's key at ${files.key}`,
    });
    return undefined;
  }
  const certificate = parsed(parseCertificate, crt, { subject: ca, file: files.crt }, problems);
  const privateKey = parsed(parsePrivateKey, key, { subject: ca, file: files.key }, problems);
  if (!certificate || !privateKey) return undefined;
  const invalid = validityProblem(certificate, ctx.now);
  if (invalid) problems.push({ subject: ca, file: files.crt, problem: invalid });
  if (!certificateMatchesKey(certificate, privateKey)) {
    problems.push({ subject: ca, file: files.key, problem: `${files.key} does not match ${files.crt}` });
  }
  return invalid ? undefined : { certificate, key: privateKey };
}

/**
 * A kubeconfig for a user: client certificate CN=`name`, O=`groups`, signed by the cluster CA, the
 * controlPlaneEndpoint as server (kubeadm `kubeconfig user`). Validity is a Go duration (default
 * certificateValidityPeriod), capped at the CA's. Returns the YAML.
 */
export async function userKubeconfig(
  cluster: ClusterFile,
  clusterDir: string,
  options: StoreOptions & { name: string; groups?: string[]; validity?: string },
): Promise<string> {
  const ctx = context(cluster, clusterDir, options);
  if (!options.name) throw new UsageError("a user name (the certificate's CN) is required");
  const validityMs =
    options.validity === undefined ? ctx.inputs.leafValidityMs : parseGoDuration(options.validity);
  if (!validityMs) throw new UsageError(`validity "${options.validity}" is not a duration such as 720h`);
  const problems: PkiProblem[] = [];
  const issuer = await loadIssuer(ctx, "ca", problems);
  if (!issuer) throw new PkiError(clusterDir, problems);
  const key = await generatePrivateKey(ctx.inputs.algorithm);
  const profile = clientProfile(options.name, options.groups ?? []);
  const certificate = await signCertificate(
    profile,
    validity(ctx, validityMs, issuer.certificate),
    key,
    issuer,
  );
  return serializeKubeconfig(
    buildKubeconfig({
      clusterName: ctx.inputs.clusterName,
      server: ctx.inputs.endpoint.url,
      caPem: issuer.certificate.pem,
      userName: options.name,
      certPem: certificate.pem,
      keyPem: privateKeyToPem(key),
    }),
  );
}

export interface StoreEntry {
  /** `ca`, `sa`, `cp1/apiserver`, `admin.conf`, `cp1/kubelet.conf`. */
  id: string;
  /** kubeadm's name: `apiserver`, `etcd-server`, `admin.conf`, `sa`. */
  name: string;
  kind: "ca" | "certificate" | "kubeconfig" | "key";
  node: string | undefined;
  /** Relative to the cluster directory. */
  file: string;
  present: boolean;
  /** The CA that signs it (none for CAs and sa). */
  signedBy: CaName | undefined;
  /** A CA whose key is not in the store: kubeforge cannot sign with it. */
  externallyManaged: boolean;
  commonName?: string;
  organizations?: string[];
  /** `DNS:…` and `IP:…`. */
  sans?: string[];
  notBefore?: Date;
  notAfter?: Date;
  /** NotAfter − now; negative once expired. */
  residualMs?: number;
  /** As kubeadm prints it: `364d`, `9y`, `<invalid>`. */
  residual?: string;
  algorithm?: string;
  /** Why it could not be read. */
  error?: string;
}

/** Every certificate, key and kubeconfig the cluster's store should hold, with what is there (for `certs list` and `check-expiration`). */
export async function listStore(
  cluster: ClusterFile,
  clusterDir: string,
  options: StoreOptions = {},
): Promise<StoreEntry[]> {
  const ctx = context(cluster, clusterDir, options);
  const describe = (entry: StoreEntry, certificate: Certificate): StoreEntry => {
    const residualMs = certificate.notAfter.getTime() - ctx.now.getTime();
    return {
      ...entry,
      commonName: certificate.commonName,
      organizations: [...certificate.organizations],
      sans: [
        ...certificate.dnsNames.map((n) => `DNS:${n}`),
        ...certificate.ipAddresses.map((ip) => `IP:${ip}`),
      ],
      notBefore: certificate.notBefore,
      notAfter: certificate.notAfter,
      residualMs,
      residual: shortHumanDuration(residualMs),
      algorithm: certificate.algorithm,
    };
  };
  const certEntries = resolveCerts(ctx.inputs).map(async (cert): Promise<StoreEntry> => {
    const files = certFiles(cert);
    const [crt, key] = await Promise.all([read(ctx, files.crt), read(ctx, files.key)]);
    const entry: StoreEntry = {
      id: cert.id,
      name: cert.spec.name,
      kind: cert.spec.ca === undefined ? "ca" : "certificate",
      node: cert.node,
      file: files.crt,
      present: crt !== undefined,
      signedBy: cert.spec.ca,
      externallyManaged: cert.spec.ca === undefined && crt !== undefined && key === undefined,
    };
    if (crt === undefined) return entry;
    try {
      return describe(entry, parseCertificate(crt));
    } catch (error) {
      return { ...entry, error: (error as Error).message };
    }
  });
  const kubeconfigEntries = resolveKubeconfigs(ctx.inputs).map(async (kubeconfig): Promise<StoreEntry> => {
    const text = await read(ctx, kubeconfig.file);
    const entry: StoreEntry = {
      id: kubeconfig.id,
      name: kubeconfig.spec.name,
      kind: "kubeconfig",
      node: kubeconfig.node,
      file: kubeconfig.file,
      present: text !== undefined,
      signedBy: "ca",
      externallyManaged: false,
    };
    if (text === undefined) return entry;
    try {
      const pem = currentCredentials(parseKubeconfig(text)).certPem;
      if (!pem) return { ...entry, error: "no embedded client certificate" };
      return describe(entry, parseCertificate(pem));
    } catch (error) {
      return { ...entry, error: (error as Error).message };
    }
  });
  const saEntry = (async (): Promise<StoreEntry> => {
    const text = await read(ctx, SA_KEY);
    const entry: StoreEntry = {
      id: SERVICE_ACCOUNT_KEY.name,
      name: SERVICE_ACCOUNT_KEY.name,
      kind: "key",
      node: undefined,
      file: SA_KEY,
      present: text !== undefined,
      signedBy: undefined,
      externallyManaged: false,
    };
    if (text === undefined) return entry;
    try {
      return { ...entry, algorithm: keyAlgorithm(parsePrivateKey(text)) };
    } catch (error) {
      return { ...entry, error: (error as Error).message };
    }
  })();
  const [certs, sa, kubeconfigs] = await Promise.all([
    Promise.all(certEntries),
    saEntry,
    Promise.all(kubeconfigEntries),
  ]);
  return [
    ...certs.filter((e) => e.kind === "ca"),
    sa,
    ...certs.filter((e) => e.kind !== "ca"),
    ...kubeconfigs,
  ];
}

/**
 * The store files that should exist and do not, relative to the cluster directory. A CA certificate
 * without its key is an external CA: its key is meant to be absent.
 */
export async function missingFiles(cluster: ClusterFile, clusterDir: string): Promise<string[]> {
  const ctx = context(cluster, clusterDir, {});
  const externalCa = async (cert: ResolvedCert) =>
    cert.spec.ca === undefined && (await read(ctx, certFiles(cert).crt)) !== undefined;
  const certs = resolveCerts(ctx.inputs);
  const external = await Promise.all(certs.map(externalCa));
  const expected = [
    ...certs.flatMap((cert, index) => {
      const files = certFiles(cert);
      return external[index] ? [files.crt] : [files.crt, files.key];
    }),
    SA_KEY,
    SA_PUB,
    ...resolveKubeconfigs(ctx.inputs).map((k) => k.file),
  ];
  const present = await Promise.all(expected.map(async (file) => (await read(ctx, file)) !== undefined));
  return expected.filter((_, index) => !present[index]);
}
