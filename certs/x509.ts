// The one certificate builder, for every algorithm kubeadm offers (RSA-2048/3072/4096, ECDSA-P256):
// certificates are written directly as DER (der.ts) and signed with Node's native crypto, the keys
// come from Node's native crypto too (keys.ts). Certificates come out as Go's crypto/x509 makes them
// for kubeadm: the same extensions in the same order, SKI on CAs only (SHA-1 of the public key,
// RFC 5280 method 1), AKI = the issuer's SKI on leaves, SHA-256 signatures, random serials.
// Reading a certificate: Node's X509Certificate accepts it (and gives its public key), then the
// fields a spec fixes are read from the DER. (The first builder used @peculiar/x509; its schema
// machinery cost more start-up and CPU than the whole ECDSA PKI's keys and signatures. The bytes
// written are the same: x509.test.ts checks them against @peculiar/x509's.)
import {
  createHash,
  createPublicKey,
  type KeyObject,
  X509Certificate as NodeX509Certificate,
  randomBytes,
  sign,
} from "node:crypto";
import { parseIp } from "../config/net.js";
import {
  bitString,
  boolean,
  childrenOf,
  directoryString,
  type Element,
  explicit,
  ia5String,
  NULL,
  objectIdentifier,
  octetString,
  readElement,
  readObjectIdentifier,
  readString,
  readTime,
  sequence,
  setOf,
  smallInteger,
  time,
  tlv,
  unsignedInteger,
} from "./der.js";
import { keyAlgorithm, samePublicKey } from "./keys.js";

export type KeyUsage = "digitalSignature" | "keyEncipherment" | "keyCertSign";
export type ExtKeyUsage = "serverAuth" | "clientAuth";

/** KeyUsage bits as flags: bit n of the BIT STRING (RFC 5280 4.2.1.3) is 1 << n. */
const KEY_USAGE_FLAGS: Record<KeyUsage, number> = {
  digitalSignature: 1 << 0,
  keyEncipherment: 1 << 2,
  keyCertSign: 1 << 5,
};

const EXT_KEY_USAGE_OIDS: Record<ExtKeyUsage, string> = {
  serverAuth: "1.3.6.1.5.5.7.3.1",
  clientAuth: "1.3.6.1.5.5.7.3.2",
};

const OID = {
  commonName: "2.5.4.3",
  organization: "2.5.4.10",
  subjectKeyIdentifier: "2.5.29.14",
  keyUsage: "2.5.29.15",
  subjectAltName: "2.5.29.17",
  basicConstraints: "2.5.29.19",
  authorityKeyIdentifier: "2.5.29.35",
  extKeyUsage: "2.5.29.37",
  ecdsaWithSha256: "1.2.840.10045.4.3.2",
  sha256WithRsa: "1.2.840.113549.1.1.11",
} as const;

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
  /** The subject Name's DER, as the issuer field of what this certificate signs. */
  subjectDer: Buffer;
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
  const node = new NodeX509Certificate(block);
  return describe(node.raw, `${block}\n`, node.publicKey);
}

/** The attribute values of a Name, by OID, in order. */
function nameValues(name: Element): Map<string, string[]> {
  const values = new Map<string, string[]>();
  for (const rdn of childrenOf(name)) {
    for (const attribute of childrenOf(rdn)) {
      const [type, value] = childrenOf(attribute);
      if (!type || !value) throw new Error("malformed Name");
      const oid = readObjectIdentifier(type);
      values.set(oid, [...(values.get(oid) ?? []), readString(value)]);
    }
  }
  return values;
}

function ipText(bytes: Buffer): string {
  if (bytes.length === 4) return [...bytes].join(".");
  if (bytes.length === 16) {
    const groups = Array.from({ length: 8 }, (_, i) => bytes.readUInt16BE(2 * i).toString(16));
    return canonicalIp(groups.join(":"));
  }
  return bytes.toString("hex");
}

/** The fields kubeforge checks, read from a certificate's DER. */
function describe(der: Buffer, pem: string, publicKey: KeyObject): Certificate {
  const [tbs] = childrenOf(readElement(der));
  if (!tbs) throw new Error("malformed certificate");
  const fields = childrenOf(tbs);
  const at = fields[0]?.tag === 0xa0 ? 1 : 0; // [0] version
  const [serial, , issuer, validity, subject, spki] = fields.slice(at);
  if (!serial || !issuer || !validity || !subject || !spki) throw new Error("malformed certificate");
  const [notBefore, notAfter] = childrenOf(validity);
  if (!notBefore || !notAfter) throw new Error("malformed validity");
  const subjectValues = nameValues(subject);

  let keyUsageFlags = 0;
  let isCA = false;
  const extKeyUsages: ExtKeyUsage[] = [];
  const otherUsages: string[] = [];
  const dnsNames: string[] = [];
  const ipAddresses: string[] = [];
  let subjectKeyId: string | undefined;
  let authorityKeyId: string | undefined;
  const extensions = fields.slice(at + 6).find((f) => f.tag === 0xa3);
  const list = extensions ? childrenOf(extensions)[0] : undefined;
  for (const extension of list ? childrenOf(list) : []) {
    const parts = childrenOf(extension);
    const id = parts[0] ? readObjectIdentifier(parts[0]) : "";
    const wrapped = parts.at(-1);
    if (wrapped?.tag !== 0x04) throw new Error("malformed extension");
    const value = readElement(wrapped.content);
    switch (id) {
      case OID.keyUsage: {
        const bits = value.content.subarray(1);
        for (let bit = 0; bit < bits.length * 8; bit++) {
          if ((bits[bit >> 3] ?? 0) & (0x80 >> (bit & 7))) keyUsageFlags |= 1 << bit;
        }
        break;
      }
      case OID.extKeyUsage:
        for (const usage of childrenOf(value)) {
          const oid = readObjectIdentifier(usage);
          const name = (Object.keys(EXT_KEY_USAGE_OIDS) as ExtKeyUsage[]).find(
            (u) => EXT_KEY_USAGE_OIDS[u] === oid,
          );
          if (name) extKeyUsages.push(name);
          else otherUsages.push(oid);
        }
        break;
      case OID.basicConstraints: {
        const first = childrenOf(value)[0];
        isCA = first?.tag === 0x01 && first.content[0] !== 0;
        break;
      }
      case OID.subjectKeyIdentifier:
        subjectKeyId = value.content.toString("hex");
        break;
      case OID.authorityKeyIdentifier: {
        const keyId = childrenOf(value).find((part) => part.tag === 0x80);
        authorityKeyId = keyId?.content.toString("hex");
        break;
      }
      case OID.subjectAltName:
        for (const name of childrenOf(value)) {
          if (name.tag === 0x82) dnsNames.push(name.content.toString("ascii"));
          else if (name.tag === 0x87) ipAddresses.push(ipText(name.content));
        }
        break;
    }
  }
  const keyUsages = (Object.keys(KEY_USAGE_FLAGS) as KeyUsage[]).filter(
    (usage) => keyUsageFlags & KEY_USAGE_FLAGS[usage],
  );
  const knownFlags = Object.values(KEY_USAGE_FLAGS).reduce((all, flag) => all | flag, 0);
  if (keyUsageFlags & ~knownFlags)
    otherUsages.unshift(`keyUsage:0x${(keyUsageFlags & ~knownFlags).toString(16)}`);
  return {
    pem,
    serial: serial.content.toString("hex"),
    commonName: subjectValues.get(OID.commonName)?.[0] ?? "",
    organizations: subjectValues.get(OID.organization) ?? [],
    issuerCommonName: nameValues(issuer).get(OID.commonName)?.[0] ?? "",
    dnsNames,
    ipAddresses,
    isCA,
    keyUsages,
    extKeyUsages,
    otherUsages,
    notBefore: readTime(notBefore),
    notAfter: readTime(notAfter),
    publicKey,
    algorithm: keyAlgorithm(publicKey),
    subjectKeyId,
    authorityKeyId,
    spkiDer: Buffer.from(spki.raw),
    subjectDer: Buffer.from(subject.raw),
  };
}

/** IPs as `::1` and `198.18.0.1`, so texts compare equal when the addresses do. */
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

/** The subject as Go's pkix.Name writes it: O before CN, all O values in one RDN (a DER-sorted SET). */
function subjectName(profile: CertificateProfile): Buffer {
  const attribute = (oid: string, value: string) => sequence(objectIdentifier(oid), directoryString(value));
  const rdns: Buffer[] = [];
  if (profile.organizations.length > 0) {
    rdns.push(setOf(...profile.organizations.map((o) => attribute(OID.organization, o))));
  }
  rdns.push(setOf(attribute(OID.commonName, profile.commonName)));
  return sequence(...rdns);
}

function extension(oid: string, critical: boolean, value: Buffer): Buffer {
  return sequence(objectIdentifier(oid), ...(critical ? [boolean(true)] : []), octetString(value));
}

/** KeyUsage as a DER BIT STRING: trailing zero bits dropped, as Go's asn1 writes it. */
function keyUsageBits(usages: readonly KeyUsage[]): Buffer {
  const flags = usages.reduce((all, usage) => all | KEY_USAGE_FLAGS[usage], 0);
  const length = flags === 0 ? 0 : 32 - Math.clz32(flags); // bits up to the last set one
  const bytes = Buffer.alloc(Math.ceil(length / 8));
  for (let bit = 0; bit < length; bit++) {
    if (flags & (1 << bit)) bytes[bit >> 3] = (bytes[bit >> 3] ?? 0) | (0x80 >> (bit & 7));
  }
  return bitString(bytes, bytes.length * 8 - length);
}

function ipBytes(text: string): Buffer {
  const ip = parseIp(text);
  if (!ip) throw new Error(`not an IP address: ${text}`);
  const size = ip.family === 4 ? 4 : 16;
  const bytes = Buffer.alloc(size);
  for (let i = 0; i < size; i++) bytes[size - 1 - i] = Number((ip.value >> BigInt(8 * i)) & 0xffn);
  return bytes;
}

/** The signature AlgorithmIdentifier for a signing key: SHA-256 with ECDSA or RSA PKCS#1 v1.5. */
function signatureAlgorithm(key: KeyObject): Buffer {
  if (key.asymmetricKeyType === "ec") return sequence(objectIdentifier(OID.ecdsaWithSha256));
  if (key.asymmetricKeyType === "rsa") return sequence(objectIdentifier(OID.sha256WithRsa), NULL);
  throw new Error(`cannot sign with a ${key.asymmetricKeyType} key`);
}

/** A random serial in [1, 2^63-1), as kubeadm's NewSignedCert draws it. */
function randomSerial(): Buffer {
  const max = (1n << 63n) - 2n;
  let value: bigint;
  do value = BigInt(`0x${randomBytes(8).toString("hex")}`) & ((1n << 63n) - 1n);
  while (value >= max);
  return Buffer.from((value + 1n).toString(16).padStart(16, "0"), "hex");
}

/** PEM as Go's pem.Encode writes it: 64 base64 characters a line. */
function toPem(der: Buffer): string {
  const lines = der.toString("base64").match(/.{1,64}/g) ?? [];
  return `-----BEGIN CERTIFICATE-----\n${lines.join("\n")}\n-----END CERTIFICATE-----\n`;
}

export interface TbsOptions {
  serial: Buffer;
  validity: { notBefore: Date; notAfter: Date };
  subjectKey: KeyObject;
  /** Self-signed (a CA) without it. */
  issuer?: Issuer;
}

/** The DER TBSCertificate for `profile`, and the signature algorithm it names. */
export function tbsCertificate(
  profile: CertificateProfile,
  options: TbsOptions,
): { tbs: Buffer; algorithm: Buffer; publicKey: KeyObject } {
  const { issuer } = options;
  const signer = issuer?.key ?? options.subjectKey;
  const algorithm = signatureAlgorithm(signer);
  const publicKey = createPublicKey(options.subjectKey);
  const spki = publicKey.export({ type: "spki", format: "der" });
  // Go's crypto/x509 order: KeyUsage, ExtKeyUsage, BasicConstraints, SKI, AKI, SAN.
  const extensions: Buffer[] = [extension(OID.keyUsage, true, keyUsageBits(profile.keyUsages))];
  if (profile.extKeyUsages.length > 0) {
    const oids = profile.extKeyUsages.map((u) => objectIdentifier(EXT_KEY_USAGE_OIDS[u]));
    extensions.push(extension(OID.extKeyUsage, false, sequence(...oids)));
  }
  // cA DEFAULT FALSE is left out when false, and no path length: Go's encoding.
  extensions.push(extension(OID.basicConstraints, true, sequence(...(profile.isCA ? [boolean(true)] : []))));
  if (profile.isCA) {
    const bits = readElement(spki, 0);
    const subjectPublicKey = childrenOf(bits)[1]?.content.subarray(1) ?? Buffer.alloc(0);
    const keyId = createHash("sha1").update(subjectPublicKey).digest();
    extensions.push(extension(OID.subjectKeyIdentifier, false, octetString(keyId)));
  }
  if (issuer?.certificate.subjectKeyId) {
    const keyId = Buffer.from(issuer.certificate.subjectKeyId, "hex");
    extensions.push(extension(OID.authorityKeyIdentifier, false, sequence(tlv(0x80, keyId))));
  }
  const altNames = [
    ...profile.dnsNames.map((name) => tlv(0x82, ia5String(name).subarray(2))),
    ...profile.ipAddresses.map((ip) => tlv(0x87, ipBytes(ip))),
  ];
  if (altNames.length > 0) extensions.push(extension(OID.subjectAltName, false, sequence(...altNames)));

  const subject = subjectName(profile);
  const wholeSeconds = (date: Date) => new Date(Math.floor(date.getTime() / 1000) * 1000);
  const tbs = sequence(
    explicit(0, smallInteger(2)),
    unsignedInteger(options.serial),
    algorithm,
    issuer ? issuer.certificate.subjectDer : subject,
    sequence(time(wholeSeconds(options.validity.notBefore)), time(wholeSeconds(options.validity.notAfter))),
    subject,
    spki,
    explicit(3, sequence(...extensions)),
  );
  return { tbs, algorithm, publicKey };
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
  const { tbs, algorithm, publicKey } = tbsCertificate(profile, {
    serial: randomSerial(),
    validity,
    subjectKey,
    ...(issuer && { issuer }),
  });
  const signature = sign("sha256", tbs, issuer?.key ?? subjectKey);
  const der = sequence(tbs, algorithm, bitString(signature));
  return describe(der, toPem(der), publicKey);
}
