// The one certificate builder, for every algorithm kubeadm offers (RSA-2048/3072/4096, ECDSA-P256).
// node-forge signs only RSA, so certificates are built with @peculiar/x509 on Node's WebCrypto;
// keys come from Node's native crypto (keys.ts). Certificates come out as Go's crypto/x509 makes
// them for kubeadm: the same extensions in the same order, SKI on CAs only (SHA-1 of the public
// key, RFC 5280 method 1), AKI = the issuer's SKI on leaves, SHA-256 signatures, random serials.
// tsyringe, which @peculiar/x509 resolves its algorithms with, needs a Reflect metadata polyfill
// loaded before it.
import "reflect-metadata";
import {
  createPublicKey,
  type KeyObject,
  X509Certificate as NodeX509Certificate,
  randomBytes,
  webcrypto,
} from "node:crypto";
import * as x509 from "@peculiar/x509";
import { parseIp } from "../config/net.js";
import { keyAlgorithm, samePublicKey } from "./keys.js";

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export type KeyUsage = "digitalSignature" | "keyEncipherment" | "keyCertSign";
export type ExtKeyUsage = "serverAuth" | "clientAuth";

const KEY_USAGE_FLAGS: Record<KeyUsage, number> = {
  digitalSignature: x509.KeyUsageFlags.digitalSignature,
  keyEncipherment: x509.KeyUsageFlags.keyEncipherment,
  keyCertSign: x509.KeyUsageFlags.keyCertSign,
};

const EXT_KEY_USAGE_OIDS: Record<ExtKeyUsage, string> = {
  serverAuth: "1.3.6.1.5.5.7.3.1",
  clientAuth: "1.3.6.1.5.5.7.3.2",
};

/** What a certificate says about its subject: the part a spec fixes. */
export interface CertificateProfile {
  commonName: string;
  organizations: readonly string[];
  dnsNames: readonly string[];
  ipAddresses: readonly string[];
  isCA: boolean;
  keyUsages: readonly KeyUsage[];
  extKeyUsages: readonly ExtKeyUsage[];
}

/** A parsed certificate. Usages kubeforge does not issue appear by name or OID. */
export interface Certificate extends CertificateProfile {
  pem: string;
  /** Hex, as openssl prints it without colons. */
  serial: string;
  issuerCommonName: string;
  notBefore: Date;
  notAfter: Date;
  publicKey: KeyObject;
  /** `RSA-2048`, `ECDSA-P256`, … */
  algorithm: string;
  subjectKeyId: string | undefined;
  authorityKeyId: string | undefined;
  /** DER SubjectPublicKeyInfo, exactly as in the certificate (the discovery hash covers it). */
  spkiDer: Buffer;
  keyUsages: KeyUsage[];
  extKeyUsages: ExtKeyUsage[];
  otherUsages: string[];
}

export interface Issuer {
  certificate: Certificate;
  key: KeyObject;
}

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/;

/** The first certificate of a PEM file, as kubeadm reads one (the rest would be a chain). */
export function parseCertificate(pem: string): Certificate {
  const block = PEM_BLOCK.exec(pem)?.[0];
  if (!block) throw new Error("no PEM CERTIFICATE block");
  const cert = new x509.X509Certificate(block);
  const node = new NodeX509Certificate(block);
  const keyUsageFlags = cert.getExtension(x509.KeyUsagesExtension)?.usages ?? 0;
  const keyUsages = (Object.keys(KEY_USAGE_FLAGS) as KeyUsage[]).filter(
    (usage) => keyUsageFlags & KEY_USAGE_FLAGS[usage],
  );
  const knownFlags = Object.values(KEY_USAGE_FLAGS).reduce((all, flag) => all | flag, 0);
  const otherUsages =
    keyUsageFlags & ~knownFlags ? [`keyUsage:0x${(keyUsageFlags & ~knownFlags).toString(16)}`] : [];
  const extKeyUsages: ExtKeyUsage[] = [];
  for (const oid of cert.getExtension(x509.ExtendedKeyUsageExtension)?.usages ?? []) {
    const name = (Object.keys(EXT_KEY_USAGE_OIDS) as ExtKeyUsage[]).find(
      (u) => EXT_KEY_USAGE_OIDS[u] === oid,
    );
    if (name) extKeyUsages.push(name);
    else otherUsages.push(String(oid));
  }
  const names = cert.getExtension(x509.SubjectAlternativeNameExtension)?.names.items ?? [];
  return {
    pem: `${block}\n`,
    serial: cert.serialNumber,
    commonName: cert.subjectName.getField("CN")[0] ?? "",
    organizations: cert.subjectName.getField("O"),
    issuerCommonName: cert.issuerName.getField("CN")[0] ?? "",
    dnsNames: names.filter((n) => n.type === "dns").map((n) => n.value),
    ipAddresses: names.filter((n) => n.type === "ip").map((n) => canonicalIp(n.value)),
    isCA: cert.getExtension(x509.BasicConstraintsExtension)?.ca ?? false,
    keyUsages,
    extKeyUsages,
    otherUsages,
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
    publicKey: node.publicKey,
    algorithm: keyAlgorithm(node.publicKey),
    subjectKeyId: cert.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId,
    authorityKeyId: cert.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId,
    spkiDer: Buffer.from(cert.publicKey.rawData),
  };
}

/** IPs as `::1` and `10.0.0.1`, so texts compare equal when the addresses do. */
export function canonicalIp(text: string): string {
  const ip = parseIp(text);
  if (!ip) return text;
  return ip.family === 4
    ? text.split(".").map(Number).join(".")
    : new URL(`http://[${text}]`).hostname.slice(1, -1);
}

/** Whether `cert` was issued by `issuer`: names chain and the signature verifies. */
export function isIssuedBy(cert: Certificate, issuer: Certificate): boolean {
  const child = new NodeX509Certificate(cert.pem);
  const parent = new NodeX509Certificate(issuer.pem);
  return child.checkIssued(parent) && child.verify(parent.publicKey);
}

export function certificateMatchesKey(cert: Certificate, key: KeyObject): boolean {
  return samePublicKey(cert.publicKey, key);
}

/** A random serial in [1, 2^63-1), as kubeadm's NewSignedCert draws it. */
function randomSerial(): string {
  const max = (1n << 63n) - 2n;
  let value: bigint;
  do value = BigInt(`0x${randomBytes(8).toString("hex")}`) & ((1n << 63n) - 1n);
  while (value >= max);
  return (value + 1n).toString(16).padStart(16, "0");
}

/** The subject as Go's pkix.Name writes it: O before CN, all O values in one RDN. */
function subjectName(profile: CertificateProfile): x509.JsonName {
  const name: x509.JsonName = [];
  if (profile.organizations.length > 0) name.push({ O: derSetOrder(profile.organizations) });
  name.push({ CN: [profile.commonName] });
  return name;
}

/** DER sorts a SET OF by encoding: shorter values first, then UTF8String before PrintableString. */
function derSetOrder(values: readonly string[]): string[] {
  const key = (value: string) => {
    const bytes = Buffer.from(value, "utf8");
    const printable = x509.Name.isPrintableString(value);
    return Buffer.concat([Buffer.from([Math.min(bytes.length, 255), printable ? 0x13 : 0x0c]), bytes]);
  };
  return [...values].sort((a, b) => Buffer.compare(key(a), key(b)));
}

function signingAlgorithm(key: KeyObject): webcrypto.RsaHashedImportParams | webcrypto.EcKeyImportParams {
  return key.asymmetricKeyType === "ec"
    ? { name: "ECDSA", namedCurve: "P-256" }
    : { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" };
}

/**
 * Signs a certificate for `subjectKey`'s public key. Without `issuer` it is self-signed (a CA).
 * Validity is taken as given, in whole seconds (X.509 times have no fractions).
 */
export async function signCertificate(
  profile: CertificateProfile,
  validity: { notBefore: Date; notAfter: Date },
  subjectKey: KeyObject,
  issuer?: Issuer,
): Promise<Certificate> {
  const signer = issuer?.key ?? subjectKey;
  const algorithm = signingAlgorithm(signer);
  const signingKey = await webcrypto.subtle.importKey(
    "pkcs8",
    signer.export({ type: "pkcs8", format: "der" }),
    algorithm,
    false,
    ["sign"],
  );
  const spki = createPublicKey(subjectKey).export({ type: "spki", format: "der" });
  const keyUsage = profile.keyUsages.reduce((flags, usage) => flags | KEY_USAGE_FLAGS[usage], 0);
  // Go's crypto/x509 order: KeyUsage, ExtKeyUsage, BasicConstraints, SKI, AKI, SAN.
  const extensions: x509.Extension[] = [new x509.KeyUsagesExtension(keyUsage, true)];
  if (profile.extKeyUsages.length > 0) {
    extensions.push(
      new x509.ExtendedKeyUsageExtension(profile.extKeyUsages.map((u) => EXT_KEY_USAGE_OIDS[u])),
    );
  }
  extensions.push(new x509.BasicConstraintsExtension(profile.isCA, undefined, true));
  if (profile.isCA) extensions.push(await x509.SubjectKeyIdentifierExtension.create(spki));
  if (issuer?.certificate.subjectKeyId) {
    extensions.push(new x509.AuthorityKeyIdentifierExtension(issuer.certificate.subjectKeyId));
  }
  const altNames = [
    ...profile.dnsNames.map((value) => ({ type: "dns" as const, value })),
    ...profile.ipAddresses.map((value) => ({ type: "ip" as const, value })),
  ];
  if (altNames.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(altNames));

  const subject = subjectName(profile);
  const issuerName = issuer ? new x509.X509Certificate(issuer.certificate.pem).subjectName : subject;
  const wholeSeconds = (date: Date) => new Date(Math.floor(date.getTime() / 1000) * 1000);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject,
    issuer: issuerName,
    notBefore: wholeSeconds(validity.notBefore),
    notAfter: wholeSeconds(validity.notAfter),
    publicKey: spki,
    signingKey,
    signingAlgorithm: algorithm,
    extensions,
  });
  return parseCertificate(cert.toString("pem"));
}
