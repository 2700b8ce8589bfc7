// The DER certificate builder and reader against @peculiar/x509, the library they replace: for the
// same inputs the TBSCertificate bytes must be identical, and reading any certificate (ours, or one
// openssl made) must give the same fields. The kubeadm fixtures check the result against kubeadm.
import "reflect-metadata";
import { execFileSync } from "node:child_process";
import { createPublicKey, type KeyObject, verify, webcrypto } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as x509 from "@peculiar/x509";
import { describe, expect, it } from "vitest";
import { childrenOf, readElement, time } from "./der.js";
import { type EncryptionAlgorithm, generatePrivateKey } from "./keys.js";
import {
  type CertificateProfile,
  type Issuer,
  parseCertificate,
  signCertificate,
  tbsCertificate,
} from "./x509.js";

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const CA: CertificateProfile = {
  commonName: "kubernetes",
  organizations: [],
  dnsNames: ["kubernetes"],
  ipAddresses: [],
  isCA: true,
  keyUsages: ["digitalSignature", "keyEncipherment", "keyCertSign"],
  extKeyUsages: [],
};
const SERVER: CertificateProfile = {
  commonName: "kube-apiserver",
  organizations: [],
  dnsNames: ["cp1", "kubernetes", "kubernetes.default"],
  ipAddresses: ["198.19.128.1", "198.18.0.11", "fd00::1", "::1"],
  isCA: false,
  keyUsages: ["digitalSignature", "keyEncipherment"],
  extKeyUsages: ["serverAuth", "clientAuth"],
};
const CLIENT: CertificateProfile = {
  commonName: "system:node:cp1",
  // PrintableString and UTF8String values, of different lengths: the SET's DER order.
  organizations: ["system:nodes", "dev_team", "ops", "kubeadm:cluster-admins"],
  dnsNames: [],
  ipAddresses: [],
  isCA: false,
  keyUsages: ["digitalSignature", "keyEncipherment"],
  extKeyUsages: ["clientAuth"],
};
const VALIDITY = { notBefore: new Date("2026-01-02T03:04:05Z"), notAfter: new Date("2051-06-07T08:09:10Z") };
const SERIAL = "5a3c0e1f2b4d6789";

/** What the first builder did with @peculiar/x509, with a fixed serial. */
async function peculiarTbs(
  profile: CertificateProfile,
  subjectKey: KeyObject,
  issuer?: Issuer,
): Promise<Buffer> {
  const signer = issuer?.key ?? subjectKey;
  const algorithm =
    signer.asymmetricKeyType === "ec"
      ? { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" }
      : { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" };
  const signingKey = await webcrypto.subtle.importKey(
    "pkcs8",
    signer.export({ type: "pkcs8", format: "der" }),
    algorithm,
    false,
    ["sign"],
  );
  const spki = createPublicKey(subjectKey).export({ type: "spki", format: "der" });
  const flags = { digitalSignature: 1, keyEncipherment: 4, keyCertSign: 32 };
  const extensions: x509.Extension[] = [
    new x509.KeyUsagesExtension(
      profile.keyUsages.reduce((all, u) => all | flags[u], 0),
      true,
    ),
  ];
  const eku = { serverAuth: "1.3.6.1.5.5.7.3.1", clientAuth: "1.3.6.1.5.5.7.3.2" };
  if (profile.extKeyUsages.length) {
    extensions.push(new x509.ExtendedKeyUsageExtension(profile.extKeyUsages.map((u) => eku[u])));
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
  if (altNames.length) extensions.push(new x509.SubjectAlternativeNameExtension(altNames));
  const key = (value: string) => {
    const bytes = Buffer.from(value, "utf8");
    const tag = x509.Name.isPrintableString(value) ? 0x13 : 0x0c;
    return Buffer.concat([Buffer.from([Math.min(bytes.length, 255), tag]), bytes]);
  };
  const subject: x509.JsonName = [];
  if (profile.organizations.length) {
    subject.push({ O: [...profile.organizations].sort((a, b) => Buffer.compare(key(a), key(b))) });
  }
  subject.push({ CN: [profile.commonName] });
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: SERIAL,
    subject,
    issuer: issuer ? new x509.X509Certificate(issuer.certificate.pem).subjectName : subject,
    notBefore: VALIDITY.notBefore,
    notAfter: VALIDITY.notAfter,
    publicKey: spki,
    signingKey,
    signingAlgorithm: algorithm,
    extensions,
  });
  return childrenOf(readElement(Buffer.from(cert.rawData)))[0]?.raw ?? Buffer.alloc(0);
}

const ours = (profile: CertificateProfile, subjectKey: KeyObject, issuer?: Issuer) =>
  tbsCertificate(profile, {
    serial: Buffer.from(SERIAL, "hex"),
    validity: VALIDITY,
    subjectKey,
    ...(issuer && { issuer }),
  }).tbs;

describe.each<EncryptionAlgorithm>(["ECDSA-P256", "RSA-2048"])("the DER builder with %s", (algorithm) => {
  it("writes the TBSCertificate @peculiar/x509 wrote, for a CA, a server and a client", async () => {
    const [caKey, serverKey, clientKey] = await Promise.all([
      generatePrivateKey(algorithm),
      generatePrivateKey(algorithm),
      generatePrivateKey(algorithm),
    ]);
    expect(ours(CA, caKey).toString("hex")).toBe((await peculiarTbs(CA, caKey)).toString("hex"));
    const ca = await signCertificate(CA, VALIDITY, caKey);
    const issuer = { certificate: ca, key: caKey };
    for (const [profile, key] of [
      [SERVER, serverKey],
      [CLIENT, clientKey],
    ] as const) {
      expect(ours(profile, key, issuer).toString("hex")).toBe(
        (await peculiarTbs(profile, key, issuer)).toString("hex"),
      );
    }
  });

  it("signs what it wrote: the signature verifies and reading it back gives the profile", async () => {
    const [caKey, key] = await Promise.all([generatePrivateKey(algorithm), generatePrivateKey(algorithm)]);
    const ca = await signCertificate(CA, VALIDITY, caKey);
    const leaf = await signCertificate(SERVER, VALIDITY, key, { certificate: ca, key: caKey });
    const [tbs, , signature] = childrenOf(
      readElement(Buffer.from(new x509.X509Certificate(leaf.pem).rawData)),
    );
    expect(tbs && signature && verify("sha256", tbs.raw, ca.publicKey, signature.content.subarray(1))).toBe(
      true,
    );
    expect(
      await new x509.X509Certificate(leaf.pem).verify({
        publicKey: new x509.X509Certificate(ca.pem).publicKey,
      }),
    ).toBe(true);
    const read = parseCertificate(leaf.pem);
    expect({ ...read, publicKey: undefined }).toEqual({ ...leaf, publicKey: undefined });
    expect(read.ipAddresses).toEqual(["198.19.128.1", "198.18.0.11", "fd00::1", "::1"]);
    expect(read.notAfter).toEqual(VALIDITY.notAfter);
    expect(read.authorityKeyId).toBe(ca.subjectKeyId);
  });
});

describe("reading certificates", () => {
  /** The first reader, with @peculiar/x509. */
  function peculiarFields(pem: string) {
    const cert = new x509.X509Certificate(pem);
    const names = cert.getExtension(x509.SubjectAlternativeNameExtension)?.names.items ?? [];
    return {
      serial: cert.serialNumber,
      commonName: cert.subjectName.getField("CN")[0] ?? "",
      organizations: cert.subjectName.getField("O"),
      issuerCommonName: cert.issuerName.getField("CN")[0] ?? "",
      dnsNames: names.filter((n) => n.type === "dns").map((n) => n.value),
      isCA: cert.getExtension(x509.BasicConstraintsExtension)?.ca ?? false,
      notBefore: cert.notBefore,
      notAfter: cert.notAfter,
      subjectKeyId: cert.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId,
      authorityKeyId: cert.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId,
      spkiDer: Buffer.from(cert.publicKey.rawData),
    };
  }

  it("reads what openssl makes as @peculiar/x509 did: names, usages, key ids, UTF-8, extra usages", () => {
    const dir = mkdtempSync(join(tmpdir(), "kubeforge-x509-"));
    try {
      const openssl = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
      openssl(
        ...["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"],
        ...["-keyout", "ca.key", "-out", "ca.crt", "-days", "30", "-utf8"],
        ...["-subj", "/O=Example Corp/O=Équipe/CN=Example Kubernetes CA"],
        ...["-addext", "keyUsage=critical,digitalSignature,keyCertSign,cRLSign"],
        ...["-addext", "extendedKeyUsage=serverAuth,codeSigning"],
        ...[
          "-addext",
          "subjectAltName=DNS:ca.example.com,IP:198.18.250.1,IP:2001:db8::7,email:a@example.com",
        ],
      );
      const pem = readFileSync(join(dir, "ca.crt"), "utf8");
      const read = parseCertificate(pem);
      expect({
        serial: read.serial,
        commonName: read.commonName,
        organizations: read.organizations,
        issuerCommonName: read.issuerCommonName,
        dnsNames: read.dnsNames,
        isCA: read.isCA,
        notBefore: read.notBefore,
        notAfter: read.notAfter,
        subjectKeyId: read.subjectKeyId,
        authorityKeyId: read.authorityKeyId,
        spkiDer: read.spkiDer,
      }).toEqual(peculiarFields(pem));
      expect(read.organizations).toEqual(["Example Corp", "Équipe"]);
      expect(read.ipAddresses).toEqual(["198.18.250.1", "2001:db8::7"]);
      expect(read.keyUsages).toEqual(["digitalSignature", "keyCertSign"]);
      expect(read.extKeyUsages).toEqual(["serverAuth"]);
      expect(read.otherUsages).toEqual(["keyUsage:0x40", "1.3.6.1.5.5.7.3.3"]);
      expect(read.algorithm).toBe("ECDSA-P256");
      expect(read.subjectKeyId).toMatch(/^[0-9a-f]{40}$/);
      expect(read.pem).toBe(pem);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("refuses what is not a certificate", () => {
    expect(() => parseCertificate("nothing here")).toThrow("no PEM CERTIFICATE block");
    expect(() =>
      parseCertificate("-----BEGIN CERTIFICATE-----\nMIIBAAAA\n-----END CERTIFICATE-----\n"),
    ).toThrow();
  });

  it("writes times as RFC 5280 wants: UTCTime through 2049, GeneralizedTime from 2050", () => {
    expect(time(new Date("2049-12-31T23:59:59Z")).toString("latin1")).toBe("\x17\x0d491231235959Z");
    expect(time(new Date("2050-01-01T00:00:00Z")).toString("latin1")).toBe("\x18\x0f20500101000000Z");
  });
});
