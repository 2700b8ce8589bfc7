// Compares a PKI store on disk with a hand-transcribed fixture of what kubeadm writes
// (certs/testdata/kubeadm-v<minor>.yaml), field by field. Every certificate and key is read with the
// real `openssl` CLI, never with kubeforge's own code, so the comparison does not share a parser (or a
// bug) with the generator it checks. The result is a list of precise differences; empty means a match.
//
// Store layout (the contract with the generator):
//   <clusterDir>/pki/{ca,front-proxy-ca,etcd/ca}.{crt,key}, pki/sa.{key,pub}
//   <clusterDir>/nodes/<node>/pki/{apiserver,apiserver-kubelet-client,front-proxy-client,apiserver-etcd-client,
//     etcd/server,etcd/peer,etcd/healthcheck-client}.{crt,key}
//   <clusterDir>/kubeconfigs/{admin.conf,super-admin.conf}, <clusterDir>/nodes/<node>/{controller-manager,
//     scheduler,kubelet}.conf
import { execFile } from "node:child_process";
import type { Dirent } from "node:fs";
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import yaml from "js-yaml";

export const KEY_TYPES = ["RSA-2048", "RSA-3072", "RSA-4096", "ECDSA-P256"] as const;
export type KeyType = (typeof KEY_TYPES)[number];

export interface Subject {
  CN: string;
  O: string[];
}

export interface CertificateSpec {
  name: string;
  /** Paths relative to the cluster directory. */
  cert: string;
  key: string;
  /** `self` for a CA, else the path of the signing CA's certificate. */
  signedBy: string;
  /** CA certificates this one must NOT verify against. */
  mustNotVerifyWith?: string[];
  subject: Subject;
  /** Patch-release changes within the minor: from `fromPatch` on, `subject` replaces the one above. */
  overrides?: { fromPatch: number; subject: Subject }[];
  /** Go names without the prefix: DigitalSignature, KeyEncipherment, CertSign. */
  keyUsage: string[];
  /** Go names without the prefix: ServerAuth, ClientAuth. Empty: no extension at all. */
  extKeyUsage: string[];
  ca: boolean;
  /** `DNS:name` / `IP:address`. */
  san: string[];
  validity: "ca" | "leaf";
}

export interface KeyTypeSpec {
  privateKeyPem: string;
  publicKey: string;
  bits?: number;
  curve?: string;
  signature: string;
}

export interface KubeconfigSpec {
  file: string;
  cluster: string;
  user: string;
  context: string;
  O: string[];
  server: string;
}

export interface Fixture {
  /** `v1.30` */
  kubeadm: string;
  exampleCluster: {
    name: string;
    clusterName: string;
    nodeName: string;
    nodeIP: string;
    bindPort: number;
    serviceSubnet: string;
    firstServiceIP: string;
    dnsDomain: string;
    controlPlaneEndpoint: string;
    certSANs: string[];
  };
  modes: { cert: string; key: string; publicKey: string; kubeconfig: string };
  keyTypes: Partial<Record<KeyType, KeyTypeSpec>>;
  validity: {
    caHours: number;
    leafHours: number;
    kubeadmBackdateMinutes: number;
    toleratedBackdateMinutes: [number, number];
    clockSlackSeconds: number;
    leafNotBeforeEqualsCANotBefore: boolean;
  };
  serial: "random-63-bit";
  extensions: { keyUsageCritical: boolean; basicConstraintsCritical: boolean };
  certificates: CertificateSpec[];
  serviceAccountKey: { key: string; pub: string; pubPem: string };
  kubeconfigs: KubeconfigSpec[];
  absent: string[];
}

export interface CompareOptions {
  keyType: KeyType;
  /** Patch release of the Kubernetes version (e.g. 7 for v1.34.7), for patch-dependent fields. */
  patch: number;
  /** When the store was generated: NotBefore must fall in it, less the back-dating. */
  generatedAt?: { from: Date; to: Date };
}

const TESTDATA = join(dirname(fileURLToPath(import.meta.url)), "testdata");

export function fixturePath(minor: string): string {
  return join(TESTDATA, `kubeadm-v${minor}.yaml`);
}

/** Loads `certs/testdata/kubeadm-v<minor>.yaml` (or any fixture file) and checks its shape. */
export async function loadFixture(minorOrFile: string): Promise<Fixture> {
  const file = minorOrFile.endsWith(".yaml") ? minorOrFile : fixturePath(minorOrFile);
  const data = yaml.load(await readFile(file, "utf8")) as Record<string, unknown> | null;
  const need = (value: unknown, what: string) => {
    if (value === undefined || value === null) throw new Error(`${file}: ${what} is missing`);
  };
  need(data, "the document");
  const fixture = data as unknown as Fixture;
  for (const field of [
    "kubeadm",
    "exampleCluster",
    "modes",
    "keyTypes",
    "validity",
    "serial",
    "extensions",
    "certificates",
    "serviceAccountKey",
    "kubeconfigs",
    "absent",
  ] as const) {
    need(fixture[field], field);
  }
  for (const [index, cert] of fixture.certificates.entries()) {
    for (const field of [
      "name",
      "cert",
      "key",
      "signedBy",
      "subject",
      "keyUsage",
      "extKeyUsage",
      "ca",
      "san",
    ]) {
      need((cert as unknown as Record<string, unknown>)[field], `certificates[${index}].${field}`);
    }
    if (cert.validity !== "ca" && cert.validity !== "leaf") {
      throw new Error(`${file}: certificates[${index}].validity must be ca or leaf`);
    }
  }
  for (const [index, kubeconfig] of fixture.kubeconfigs.entries()) {
    for (const field of ["file", "cluster", "user", "context", "O", "server"]) {
      need((kubeconfig as unknown as Record<string, unknown>)[field], `kubeconfigs[${index}].${field}`);
    }
  }
  return fixture;
}

// --- openssl ---------------------------------------------------------------------------------------------

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function openssl(args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile(
      "openssl",
      args,
      { encoding: "utf8", maxBuffer: 16 * 1024 * 1024, env: { ...process.env, LC_ALL: "C" } },
      (error, stdout, stderr) => {
        if (error && typeof error.code !== "number") {
          reject(new Error(`cannot run openssl (${error.message}); the comparator needs the openssl CLI`));
          return;
        }
        resolve({ code: error ? Number(error.code) : 0, stdout, stderr });
      },
    );
  });
}

/** The first line of openssl's complaint, for messages. */
function opensslReason(run: Run): string {
  const text = `${run.stderr}\n${run.stdout}`;
  const lookup = /error \d+ at \d+ depth lookup: ?(.*)/.exec(text);
  if (lookup?.[1]) return lookup[1].trim();
  const line = text
    .split("\n")
    .map((l) => l.trim())
    .find((l) => l.length > 0);
  return line ?? `exit ${run.code}`;
}

// --- parsing openssl's output -----------------------------------------------------------------------------

interface Extension {
  critical: boolean;
  values: string[];
}

interface PublicKeyInfo {
  algorithm: string;
  bits?: number;
  curve?: string;
}

interface ParsedCert {
  subject: { CN: string[]; O: string[]; other: string[] };
  san?: Extension;
  keyUsage?: Extension;
  extKeyUsage?: Extension;
  basicConstraints?: Extension;
  notBefore: Date;
  notAfter: Date;
  serial: bigint;
  version: number;
  signatureAlgorithm: string;
  publicKey: PublicKeyInfo;
  publicKeyPem: string;
  fingerprint: string;
}

const KEY_USAGE_NAMES: Record<string, string> = {
  "Digital Signature": "DigitalSignature",
  "Non Repudiation": "ContentCommitment",
  "Key Encipherment": "KeyEncipherment",
  "Data Encipherment": "DataEncipherment",
  "Key Agreement": "KeyAgreement",
  "Certificate Sign": "CertSign",
  "CRL Sign": "CRLSign",
  "Encipher Only": "EncipherOnly",
  "Decipher Only": "DecipherOnly",
};

const EXT_KEY_USAGE_NAMES: Record<string, string> = {
  "TLS Web Server Authentication": "ServerAuth",
  "TLS Web Client Authentication": "ClientAuth",
  "Code Signing": "CodeSigning",
  "E-mail Protection": "EmailProtection",
  "Time Stamping": "TimeStamping",
  "OCSP Signing": "OCSPSigning",
  "Any Extended Key Usage": "Any",
};

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** `Nov 27 06:58:33 2026 GMT`, as `openssl x509 -dates` prints it. */
function parseOpensslDate(text: string): Date {
  const match = /^(\w{3})\s+(\d{1,2}) (\d{2}):(\d{2}):(\d{2}) (\d{4}) GMT$/.exec(text.trim());
  const month = match ? MONTHS.indexOf(match[1] ?? "") : -1;
  if (!match || month < 0) throw new Error(`unexpected date from openssl: ${text}`);
  const [, , day, hours, minutes, seconds, year] = match.map(Number) as number[];
  return new Date(Date.UTC(year ?? 0, month, day, hours, minutes, seconds));
}

/** Splits on a separator that is not escaped with a backslash. */
function splitUnescaped(text: string, separator: string): string[] {
  const parts: string[] = [];
  let current = "";
  for (let i = 0; i < text.length; i++) {
    const char = text[i] as string;
    if (char === "\\" && i + 1 < text.length) {
      current += char + text[i + 1];
      i++;
    } else if (char === separator) {
      parts.push(current);
      current = "";
    } else {
      current += char;
    }
  }
  parts.push(current);
  return parts;
}

/** `subject=CN=a,O=b+O=c` from `-nameopt RFC2253`. */
function parseSubject(line: string): ParsedCert["subject"] {
  const text = line.replace(/^subject=/, "").trim();
  const subject: ParsedCert["subject"] = { CN: [], O: [], other: [] };
  if (text === "") return subject;
  for (const rdn of splitUnescaped(text, ",")) {
    for (const attribute of splitUnescaped(rdn, "+")) {
      const equals = attribute.indexOf("=");
      const type = attribute.slice(0, equals);
      const value = attribute.slice(equals + 1).replace(/\\(.)/g, "$1");
      if (type === "CN") subject.CN.push(value);
      else if (type === "O") subject.O.push(value);
      else subject.other.push(attribute);
    }
  }
  return subject;
}

/** `-ext …` output: a header line per extension (`X509v3 Key Usage: critical`), then indented values. */
function parseExtensions(text: string): Map<string, Extension> {
  const extensions = new Map<string, Extension>();
  let current: Extension | undefined;
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    const header = /^(X509v3 [^:]+):\s*(critical)?\s*$/.exec(line);
    if (header) {
      current = { critical: header[2] === "critical", values: [] };
      extensions.set(header[1] as string, current);
    } else if (current && /^\s/.test(line)) {
      current.values.push(
        ...line
          .trim()
          .split(/,\s*/)
          .filter((value) => value !== ""),
      );
    }
  }
  return extensions;
}

/** `DNS:x` / `IP:addr` with IPv6 in its canonical (compressed) form. */
export function normalizeSan(entry: string): string {
  const text = entry.replace(/^IP Address:/, "IP:");
  if (!text.startsWith("IP:")) return text;
  const address = text.slice(3);
  if (!address.includes(":")) return text;
  try {
    return `IP:${new URL(`http://[${address}]/`).hostname.slice(1, -1)}`;
  } catch {
    return text;
  }
}

function describePublicKey(text: string): PublicKeyInfo {
  const algorithm = /Public Key Algorithm: (\S+)/.exec(text)?.[1];
  const bits = /(?:Public|Private)-Key: \((\d+) bit/.exec(text)?.[1];
  const curve = /ASN1 OID: (\S+)/.exec(text)?.[1];
  const isEc = algorithm === "id-ecPublicKey" || (algorithm === undefined && curve !== undefined);
  return {
    algorithm: algorithm ?? (isEc ? "id-ecPublicKey" : /[Mm]odulus/.test(text) ? "rsaEncryption" : "unknown"),
    ...(bits !== undefined && { bits: Number(bits) }),
    ...(curve !== undefined && { curve }),
  };
}

class Unreadable extends Error {}

/**
 * One `openssl x509` run prints, in option order: subject (RFC 2253), serial, dates, SHA-256 fingerprint, the
 * public key PEM, the four extensions kubeadm sets, then the full `-text` dump.
 */
async function parseCert(file: string): Promise<ParsedCert> {
  const result = await openssl([
    "x509",
    "-in",
    file,
    "-noout",
    "-nameopt",
    "RFC2253",
    "-subject",
    "-serial",
    "-dates",
    "-fingerprint",
    "-sha256",
    "-pubkey",
    "-ext",
    "subjectAltName,keyUsage,extendedKeyUsage,basicConstraints",
    "-text",
  ]);
  if (result.code !== 0)
    throw new Unreadable(`not a readable X.509 certificate (openssl: ${opensslReason(result)})`);
  const split = result.stdout.indexOf("\nCertificate:\n");
  const head = split < 0 ? result.stdout : result.stdout.slice(0, split);
  const text = split < 0 ? "" : result.stdout.slice(split);
  const field = (name: string) => {
    const value = new RegExp(`^${name}=(.*)$`, "m").exec(head)?.[1];
    if (value === undefined) throw new Unreadable(`openssl printed no ${name}`);
    return value;
  };
  const publicKeyPem = /-----BEGIN PUBLIC KEY-----[\s\S]*?-----END PUBLIC KEY-----/.exec(head)?.[0];
  if (!publicKeyPem) throw new Unreadable("openssl printed no public key");
  const ext = parseExtensions(head.slice(head.indexOf("-----END PUBLIC KEY-----")));
  return {
    subject: parseSubject(/^subject=.*$/m.exec(head)?.[0] ?? ""),
    ...(ext.has("X509v3 Subject Alternative Name") && { san: ext.get("X509v3 Subject Alternative Name") }),
    ...(ext.has("X509v3 Key Usage") && { keyUsage: ext.get("X509v3 Key Usage") }),
    ...(ext.has("X509v3 Extended Key Usage") && { extKeyUsage: ext.get("X509v3 Extended Key Usage") }),
    ...(ext.has("X509v3 Basic Constraints") && { basicConstraints: ext.get("X509v3 Basic Constraints") }),
    notBefore: parseOpensslDate(field("notBefore")),
    notAfter: parseOpensslDate(field("notAfter")),
    serial: BigInt(`0x${field("serial")}`),
    version: Number(/Version: (\d+)/.exec(text)?.[1] ?? 0),
    signatureAlgorithm: /Signature Algorithm: (\S+)/.exec(text)?.[1] ?? "unknown",
    publicKey: describePublicKey(text),
    publicKeyPem,
    fingerprint: field("(?:sha256|SHA256) Fingerprint"),
  };
}

// --- comparison ------------------------------------------------------------------------------------------

const list = (values: readonly string[]) => `[${values.join(", ")}]`;
const sameSet = (a: readonly string[], b: readonly string[]) =>
  a.length === b.length && [...a].sort().join("\n") === [...b].sort().join("\n");
const iso = (date: Date) => date.toISOString().replace(".000Z", "Z");

function duration(seconds: number): string {
  const sign = seconds < 0 ? "-" : "";
  const abs = Math.abs(seconds);
  return `${sign}${Math.floor(abs / 3600)}h${Math.floor((abs % 3600) / 60)}m${abs % 60}s`;
}

async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch {
    return false;
  }
}

async function modeOf(file: string): Promise<string> {
  return ((await stat(file)).mode & 0o777).toString(8).padStart(4, "0");
}

function pemBlocks(text: string): string[] {
  return [...text.matchAll(/-----BEGIN ([A-Z0-9 ]+)-----/g)].map((match) => match[1] as string);
}

interface Context {
  storeDir: string;
  fixture: Fixture;
  options: CompareOptions;
  keyType: KeyTypeSpec;
  work: string;
  diffs: string[];
  certs: Map<string, ParsedCert>;
}

interface CertExpectation {
  subject: Subject;
  keyUsage: string[];
  extKeyUsage: string[];
  ca: boolean;
  san: string[];
  validity: "ca" | "leaf";
  signedBy: string;
  mustNotVerifyWith: string[];
}

/** Checks one certificate (already parsed) against its expectation; `label` prefixes every message. */
async function checkCert(
  ctx: Context,
  out: string[],
  label: string,
  file: string,
  cert: ParsedCert,
  expected: CertExpectation,
): Promise<void> {
  const { fixture, keyType } = ctx;
  const add = (message: string) => out.push(`${label}: ${message}`);

  if (cert.version !== 3) add(`X.509 version is ${cert.version}, expected 3`);

  // Subject.
  if (cert.subject.CN.length !== 1 || cert.subject.CN[0] !== expected.subject.CN) {
    add(`subject CN is ${cert.subject.CN.join("+") || "(none)"}, expected ${expected.subject.CN}`);
  }
  if (!sameSet(cert.subject.O, expected.subject.O)) {
    add(`subject O is ${list(cert.subject.O)}, expected ${list(expected.subject.O)}`);
  }
  for (const other of cert.subject.other) add(`subject has unexpected attribute ${other}`);

  // Subject alternative names.
  const actualSan = (cert.san?.values ?? []).map(normalizeSan);
  const expectedSan = expected.san.map(normalizeSan);
  for (const san of expectedSan) if (!actualSan.includes(san)) add(`SAN missing ${san}`);
  for (const san of actualSan) if (!expectedSan.includes(san)) add(`SAN unexpected ${san}`);

  // Key usage, extended key usage, basic constraints.
  if (!cert.keyUsage) {
    add("key usage extension missing");
  } else {
    const usages = cert.keyUsage.values.map((value) => KEY_USAGE_NAMES[value] ?? value);
    if (!sameSet(usages, expected.keyUsage))
      add(`key usage is ${list(usages)}, expected ${list(expected.keyUsage)}`);
    if (cert.keyUsage.critical !== fixture.extensions.keyUsageCritical) {
      add(`key usage is ${cert.keyUsage.critical ? "" : "not "}critical, expected the opposite`);
    }
  }
  const extUsages = (cert.extKeyUsage?.values ?? []).map((value) => EXT_KEY_USAGE_NAMES[value] ?? value);
  if (expected.extKeyUsage.length === 0 && cert.extKeyUsage) {
    add(`extended key usage is ${list(extUsages)}, expected none`);
  } else if (!sameSet(extUsages, expected.extKeyUsage)) {
    add(`extended key usage is ${list(extUsages)}, expected ${list(expected.extKeyUsage)}`);
  }
  if (!cert.basicConstraints) {
    add("basic constraints extension missing");
  } else {
    const isCa = cert.basicConstraints.values.some((value) => value === "CA:TRUE");
    if (isCa !== expected.ca) {
      add(
        `basic constraints ${isCa ? "CA:TRUE" : "CA:FALSE"}, expected ${expected.ca ? "CA:TRUE" : "CA:FALSE"}`,
      );
    }
    if (cert.basicConstraints.critical !== fixture.extensions.basicConstraintsCritical) {
      add(
        `basic constraints are ${cert.basicConstraints.critical ? "" : "not "}critical, expected the opposite`,
      );
    }
  }

  // Key type and signature.
  if (cert.publicKey.algorithm !== keyType.publicKey) {
    add(`public key is ${cert.publicKey.algorithm}, expected ${keyType.publicKey} (${ctx.options.keyType})`);
  } else {
    if (keyType.bits !== undefined && cert.publicKey.bits !== keyType.bits) {
      add(`public key is ${cert.publicKey.bits} bit, expected ${keyType.bits} (${ctx.options.keyType})`);
    }
    if (keyType.curve !== undefined && cert.publicKey.curve !== keyType.curve) {
      add(`public key curve is ${cert.publicKey.curve}, expected ${keyType.curve} (${ctx.options.keyType})`);
    }
  }
  if (cert.signatureAlgorithm !== keyType.signature) {
    add(`signature algorithm is ${cert.signatureAlgorithm}, expected ${keyType.signature}`);
  }

  // Serial: random, positive, below 2^63 (kubeadm's range; see the fixture about v1.21's CA serial 0).
  if (cert.serial < 1n || cert.serial >= 2n ** 63n) {
    add(`serial ${cert.serial} is not in [1, 2^63)`);
  }

  // Validity: span = validity + back-dating (kubeadm's own back-dating is in the fixture; the tolerated range
  // accepts kubeforge's "a few minutes").
  const v = fixture.validity;
  const hours = expected.validity === "ca" ? v.caHours : v.leafHours;
  const [minBackdate, maxBackdate] = v.toleratedBackdateMinutes;
  const span = (cert.notAfter.getTime() - cert.notBefore.getTime()) / 1000;
  const extra = span - hours * 3600;
  if (extra < minBackdate * 60 || extra > maxBackdate * 60 + v.clockSlackSeconds) {
    add(
      `validity is ${duration(span)} (NotBefore ${iso(cert.notBefore)}, NotAfter ${iso(cert.notAfter)}), ` +
        `expected ${hours}h plus ${minBackdate}m..${maxBackdate}m of back-dating ` +
        `(kubeadm ${fixture.kubeadm}: +${v.kubeadmBackdateMinutes}m)`,
    );
  }
  if (ctx.options.generatedAt) {
    const earliest = ctx.options.generatedAt.from.getTime() - (maxBackdate * 60 + v.clockSlackSeconds) * 1000;
    const latest = ctx.options.generatedAt.to.getTime() - (minBackdate * 60 - v.clockSlackSeconds) * 1000;
    const notBefore = cert.notBefore.getTime();
    if (notBefore < earliest || notBefore > latest) {
      add(
        `NotBefore ${iso(cert.notBefore)} is outside the generation window ` +
          `${iso(ctx.options.generatedAt.from)}..${iso(ctx.options.generatedAt.to)} less ${minBackdate}m..${maxBackdate}m`,
      );
    }
  }
  const issuer = expected.signedBy === "self" ? undefined : ctx.certs.get(expected.signedBy);
  if (issuer) {
    if (
      v.leafNotBeforeEqualsCANotBefore &&
      Math.abs(cert.notBefore.getTime() - issuer.notBefore.getTime()) > v.clockSlackSeconds * 1000
    ) {
      add(
        `NotBefore ${iso(cert.notBefore)} differs from ${expected.signedBy} NotBefore ${iso(issuer.notBefore)} ` +
          "(kubeadm gives a leaf its CA's NotBefore)",
      );
    }
    if (cert.notAfter.getTime() > issuer.notAfter.getTime()) {
      add(`NotAfter ${iso(cert.notAfter)} is after ${expected.signedBy} NotAfter ${iso(issuer.notAfter)}`);
    }
  }

  // Chain.
  const caFile = expected.signedBy === "self" ? file : join(ctx.storeDir, expected.signedBy);
  const caName = expected.signedBy === "self" ? "itself" : expected.signedBy;
  if (expected.signedBy !== "self" && !(await exists(caFile))) {
    add(`cannot verify: ${expected.signedBy} is missing`);
  } else {
    const verify = await openssl(["verify", "-CAfile", caFile, file]);
    if (verify.code !== 0)
      add(`does not verify against ${caName} (openssl verify: ${opensslReason(verify)})`);
  }
  for (const other of expected.mustNotVerifyWith) {
    const otherFile = join(ctx.storeDir, other);
    if (!(await exists(otherFile))) continue;
    const verify = await openssl(["verify", "-CAfile", otherFile, file]);
    if (verify.code === 0)
      add(`verifies against ${other}, but must not (kubeadm signs it with ${expected.signedBy})`);
  }
}

/** Checks a private key file: one PEM block of the expected type, readable, matching `publicKeyPem`. */
async function checkKey(
  ctx: Context,
  out: string[],
  label: string,
  file: string,
  publicKeyPem: string,
  certLabel: string,
): Promise<void> {
  const add = (message: string) => out.push(`${label}: ${message}`);
  const blocks = pemBlocks(await readFile(file, "utf8"));
  if (blocks.length !== 1) {
    add(`has ${blocks.length} PEM blocks, expected one ${ctx.keyType.privateKeyPem}`);
  } else if (blocks[0] !== ctx.keyType.privateKeyPem) {
    add(`PEM type is ${blocks[0]}, expected ${ctx.keyType.privateKeyPem} (${ctx.options.keyType})`);
  }
  const pub = await openssl(["pkey", "-in", file, "-pubout"]);
  if (pub.code !== 0) {
    add(`not a readable private key (openssl: ${opensslReason(pub)})`);
    return;
  }
  if (pub.stdout.trim() !== publicKeyPem) add(`does not match ${certLabel} (public keys differ)`);
}

async function checkMode(out: string[], label: string, file: string, expected: string): Promise<void> {
  const mode = await modeOf(file);
  if (mode !== expected) out.push(`${label}: mode is ${mode}, expected ${expected}`);
}

function expectedSubject(spec: CertificateSpec, patch: number): Subject {
  let subject = spec.subject;
  for (const override of spec.overrides ?? []) if (patch >= override.fromPatch) subject = override.subject;
  return subject;
}

async function checkCertificates(ctx: Context): Promise<void> {
  const { fixture, storeDir } = ctx;
  // Parse every certificate first: leaves are compared with their CA.
  const present = new Map<string, boolean>();
  const unreadable = new Map<string, string>();
  await Promise.all(
    fixture.certificates.map(async (spec) => {
      const file = join(storeDir, spec.cert);
      present.set(spec.cert, await exists(file));
      if (!present.get(spec.cert)) return;
      try {
        ctx.certs.set(spec.cert, await parseCert(file));
      } catch (error) {
        if (!(error instanceof Unreadable)) throw error;
        unreadable.set(spec.cert, error.message);
      }
    }),
  );
  const results = await Promise.all(
    fixture.certificates.map(async (spec) => {
      const out: string[] = [];
      const certFile = join(storeDir, spec.cert);
      const keyFile = join(storeDir, spec.key);
      const cert = ctx.certs.get(spec.cert);
      if (!present.get(spec.cert)) {
        out.push(`${spec.cert}: missing`);
      } else if (!cert) {
        out.push(`${spec.cert}: ${unreadable.get(spec.cert)}`);
      } else {
        const blocks = pemBlocks(await readFile(certFile, "utf8"));
        if (blocks.length !== 1 || blocks[0] !== "CERTIFICATE") {
          out.push(`${spec.cert}: has PEM blocks ${list(blocks)}, expected one CERTIFICATE`);
        }
        await checkMode(out, spec.cert, certFile, fixture.modes.cert);
        await checkCert(ctx, out, spec.cert, certFile, cert, {
          subject: expectedSubject(spec, ctx.options.patch),
          keyUsage: spec.keyUsage,
          extKeyUsage: spec.extKeyUsage,
          ca: spec.ca,
          san: spec.san,
          validity: spec.validity,
          signedBy: spec.signedBy,
          mustNotVerifyWith: spec.mustNotVerifyWith ?? [],
        });
      }
      if (!(await exists(keyFile))) {
        out.push(`${spec.key}: missing`);
        return out;
      }
      await checkMode(out, spec.key, keyFile, fixture.modes.key);
      if (cert) await checkKey(ctx, out, spec.key, keyFile, cert.publicKeyPem, spec.cert);
      return out;
    }),
  );
  ctx.diffs.push(...results.flat());
}

async function checkServiceAccountKey(ctx: Context): Promise<void> {
  const { key, pub, pubPem } = ctx.fixture.serviceAccountKey;
  const keyFile = join(ctx.storeDir, key);
  const pubFile = join(ctx.storeDir, pub);
  const keyExists = await exists(keyFile);
  const pubExists = await exists(pubFile);
  if (!keyExists) ctx.diffs.push(`${key}: missing`);
  if (!pubExists) ctx.diffs.push(`${pub}: missing`);
  if (keyExists) await checkMode(ctx.diffs, key, keyFile, ctx.fixture.modes.key);
  if (!pubExists) return;
  await checkMode(ctx.diffs, pub, pubFile, ctx.fixture.modes.publicKey);
  const blocks = pemBlocks(await readFile(pubFile, "utf8"));
  if (blocks.length !== 1 || blocks[0] !== pubPem) {
    ctx.diffs.push(`${pub}: has PEM blocks ${list(blocks)}, expected one ${pubPem}`);
  }
  const [normalized, text] = await Promise.all([
    openssl(["pkey", "-pubin", "-in", pubFile, "-pubout"]),
    openssl(["pkey", "-pubin", "-in", pubFile, "-noout", "-text"]),
  ]);
  if (normalized.code !== 0 || text.code !== 0) {
    ctx.diffs.push(`${pub}: not a readable public key (openssl: ${opensslReason(normalized)})`);
    return;
  }
  const info = describePublicKey(text.stdout);
  const { keyType } = ctx;
  const wrongType =
    (keyType.curve !== undefined && info.curve !== keyType.curve) ||
    (keyType.bits !== undefined && (info.curve !== undefined || info.bits !== keyType.bits));
  if (wrongType) {
    const actual = info.curve ?? `RSA ${info.bits} bit`;
    ctx.diffs.push(`${pub}: key is ${actual}, expected ${ctx.options.keyType}`);
  }
  if (keyExists) await checkKey(ctx, ctx.diffs, key, keyFile, normalized.stdout.trim(), pub);
}

interface KubeconfigDocument {
  apiVersion?: unknown;
  kind?: unknown;
  clusters?: { name?: unknown; cluster?: Record<string, unknown> }[];
  users?: { name?: unknown; user?: Record<string, unknown> }[];
  contexts?: { name?: unknown; context?: Record<string, unknown> }[];
  "current-context"?: unknown;
}

async function checkKubeconfig(
  ctx: Context,
  out: string[],
  spec: KubeconfigSpec,
  index: number,
): Promise<void> {
  const file = join(ctx.storeDir, spec.file);
  const add = (message: string) => out.push(`${spec.file}: ${message}`);
  if (!(await exists(file))) {
    add("missing");
    return;
  }
  await checkMode(out, spec.file, file, ctx.fixture.modes.kubeconfig);
  let doc: KubeconfigDocument;
  try {
    doc = (yaml.load(await readFile(file, "utf8")) ?? {}) as KubeconfigDocument;
  } catch (error) {
    add(`not valid YAML (${(error as Error).message.split("\n")[0]})`);
    return;
  }
  if (doc.apiVersion !== "v1") add(`apiVersion is ${String(doc.apiVersion)}, expected v1`);
  if (doc.kind !== "Config") add(`kind is ${String(doc.kind)}, expected Config`);

  const names = (entries: { name?: unknown }[] | undefined) =>
    (entries ?? []).map((entry) => String(entry.name));
  const clusterNames = names(doc.clusters);
  const userNames = names(doc.users);
  const contextNames = names(doc.contexts);
  if (!sameSet(clusterNames, [spec.cluster]))
    add(`clusters are ${list(clusterNames)}, expected [${spec.cluster}]`);
  if (!sameSet(userNames, [spec.user])) add(`users are ${list(userNames)}, expected [${spec.user}]`);
  if (!sameSet(contextNames, [spec.context]))
    add(`contexts are ${list(contextNames)}, expected [${spec.context}]`);
  if (doc["current-context"] !== spec.context) {
    add(`current-context is ${String(doc["current-context"])}, expected ${spec.context}`);
  }

  const context = doc.contexts?.find((entry) => entry.name === spec.context)?.context;
  if (context) {
    if (context.cluster !== spec.cluster) {
      add(`context ${spec.context} names cluster ${String(context.cluster)}, expected ${spec.cluster}`);
    }
    if (context.user !== spec.user)
      add(`context ${spec.context} names user ${String(context.user)}, expected ${spec.user}`);
  }

  const cluster = doc.clusters?.find((entry) => entry.name === spec.cluster)?.cluster;
  if (cluster) {
    if (cluster.server !== spec.server) add(`server is ${String(cluster.server)}, expected ${spec.server}`);
    const caData = cluster["certificate-authority-data"];
    if (typeof caData !== "string") {
      add(`cluster ${spec.cluster} has no certificate-authority-data (kubeadm embeds pki/ca.crt)`);
    } else {
      const caFile = join(ctx.work, `kubeconfig-${index}-ca.crt`);
      await writeFile(caFile, Buffer.from(caData, "base64"));
      const embedded = await parseCert(caFile).catch(() => undefined);
      const clusterCa = ctx.certs.get("pki/ca.crt");
      if (!embedded) add("certificate-authority-data is not a readable certificate");
      else if (clusterCa && embedded.fingerprint !== clusterCa.fingerprint) {
        add("certificate-authority-data is not pki/ca.crt");
      }
    }
  }

  const user = doc.users?.find((entry) => entry.name === spec.user)?.user;
  if (!user) return;
  const certData = user["client-certificate-data"];
  const keyData = user["client-key-data"];
  for (const other of ["token", "tokenFile", "client-certificate", "client-key", "exec", "auth-provider"]) {
    if (user[other] !== undefined)
      add(`user ${spec.user} has ${other}, kubeadm embeds only a client certificate`);
  }
  if (typeof certData !== "string") add(`user ${spec.user} has no client-certificate-data`);
  if (typeof keyData !== "string") add(`user ${spec.user} has no client-key-data`);
  if (typeof certData !== "string") return;

  const certFile = join(ctx.work, `kubeconfig-${index}-client.crt`);
  await writeFile(certFile, Buffer.from(certData, "base64"));
  let cert: ParsedCert;
  try {
    cert = await parseCert(certFile);
  } catch (error) {
    add(`client certificate: ${(error as Error).message}`);
    return;
  }
  await checkCert(ctx, out, `${spec.file}: client certificate`, certFile, cert, {
    subject: { CN: spec.user, O: spec.O },
    keyUsage: ["DigitalSignature", "KeyEncipherment"],
    extKeyUsage: ["ClientAuth"],
    ca: false,
    san: [],
    validity: "leaf",
    signedBy: "pki/ca.crt",
    mustNotVerifyWith: [],
  });
  if (typeof keyData !== "string") return;
  const keyFile = join(ctx.work, `kubeconfig-${index}-client.key`);
  await writeFile(keyFile, Buffer.from(keyData, "base64"), { mode: 0o600 });
  await checkKey(ctx, out, `${spec.file}: client key`, keyFile, cert.publicKeyPem, "the client certificate");
}

async function filesUnder(root: string, dir: string): Promise<string[]> {
  let entries: Dirent[];
  try {
    entries = await readdir(join(root, dir), { withFileTypes: true });
  } catch {
    return [];
  }
  const files: string[] = [];
  for (const entry of entries) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory()) files.push(...(await filesUnder(root, path)));
    else files.push(path);
  }
  return files;
}

async function checkUnexpectedFiles(ctx: Context): Promise<void> {
  const { fixture } = ctx;
  const expected = new Set([
    ...fixture.certificates.flatMap((spec) => [spec.cert, spec.key]),
    fixture.serviceAccountKey.key,
    fixture.serviceAccountKey.pub,
  ]);
  const dirs = ["pki", `nodes/${fixture.exampleCluster.nodeName}/pki`];
  for (const dir of dirs) {
    for (const file of (await filesUnder(ctx.storeDir, dir)).sort()) {
      if (!expected.has(file))
        ctx.diffs.push(`${file}: unexpected file (kubeadm ${fixture.kubeadm} writes none there)`);
    }
  }
}

/**
 * Compares the store in `storeDir` with `fixture`; returns every difference, in fixture order
 * (certificates, service-account key, kubeconfigs, files kubeadm does not write). Empty means a match.
 */
export async function compareStore(
  storeDir: string,
  fixture: Fixture,
  options: CompareOptions,
): Promise<string[]> {
  const keyType = fixture.keyTypes[options.keyType];
  if (!keyType) {
    return [`store: kubeadm ${fixture.kubeadm} cannot generate ${options.keyType} keys`];
  }
  const work = await mkdtemp(join(tmpdir(), "kubeforge-fixture-"));
  const ctx: Context = { storeDir, fixture, options, keyType, work, diffs: [], certs: new Map() };
  try {
    await checkCertificates(ctx);
    await checkServiceAccountKey(ctx);
    const kubeconfigs = await Promise.all(
      fixture.kubeconfigs.map(async (spec, index) => {
        const out: string[] = [];
        await checkKubeconfig(ctx, out, spec, index);
        return out;
      }),
    );
    ctx.diffs.push(...kubeconfigs.flat());
    for (const file of fixture.absent) {
      if (await exists(join(storeDir, file))) {
        ctx.diffs.push(`${file}: present, but kubeadm ${fixture.kubeadm} does not write it`);
      }
    }
    await checkUnexpectedFiles(ctx);
    return ctx.diffs;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
