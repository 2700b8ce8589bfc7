import { generateKeyPairSync } from "node:crypto";
import { describe, expect, it } from "vitest";
import { currentCredentials, parseKubeconfig } from "../certs/kubeconfigs.js";
import { type CertificateProfile, signCertificate } from "../certs/x509.js";
import { bootstrapKubeconfig, validClientCertificate } from "./join-node.js";

const DAY = 86_400_000;
const now = new Date("2026-11-27T12:00:00Z");

function profile(commonName: string, isCA: boolean): CertificateProfile {
  return {
    commonName,
    organizations: isCA ? [] : ["system:nodes"],
    dnsNames: [],
    ipAddresses: [],
    isCA,
    keyUsages: isCA ? ["digitalSignature", "keyEncipherment", "keyCertSign"] : ["digitalSignature"],
    extKeyUsages: isCA ? [] : ["clientAuth"],
  };
}

async function authority(name: string) {
  const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const certificate = await signCertificate(
    profile(name, true),
    { notBefore: new Date(now.getTime() - DAY), notAfter: new Date(now.getTime() + 365 * DAY) },
    privateKey,
  );
  return { certificate, key: privateKey };
}

async function clientOf(
  issuer: Awaited<ReturnType<typeof authority>>,
  validity: { from: number; to: number },
) {
  const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const cert = await signCertificate(
    profile("system:node:w1", false),
    { notBefore: new Date(now.getTime() + validity.from), notAfter: new Date(now.getTime() + validity.to) },
    privateKey,
    issuer,
  );
  return cert.pem;
}

describe("bootstrapKubeconfig", () => {
  it("is kubeadm's CreateWithToken: cluster `kubernetes`, user tls-bootstrap-token-user with the token", () => {
    const text = bootstrapKubeconfig({
      server: "https://demo-api:6443",
      caPem: "-----BEGIN CERTIFICATE-----\nQ0E=\n-----END CERTIFICATE-----\n",
      token: { id: "abcdef", secret: "0123456789abcdef" },
    });
    const config = parseKubeconfig(text);
    expect(config["current-context"]).toBe("tls-bootstrap-token-user@kubernetes");
    expect(config.contexts).toEqual([
      {
        context: { cluster: "kubernetes", user: "tls-bootstrap-token-user" },
        name: "tls-bootstrap-token-user@kubernetes",
      },
    ]);
    expect(config.users).toEqual([
      { name: "tls-bootstrap-token-user", user: { token: "abcdef.0123456789abcdef" } },
    ]);
    expect(currentCredentials(config)).toMatchObject({
      server: "https://demo-api:6443",
      caPem: "-----BEGIN CERTIFICATE-----\nQ0E=\n-----END CERTIFICATE-----\n",
    });
  });
});

describe("validClientCertificate", () => {
  it("accepts a current certificate from the cluster CA only", async () => {
    const ca = await authority("kubernetes");
    const other = await authority("kubernetes");
    const current = await clientOf(ca, { from: -DAY, to: DAY });
    expect(validClientCertificate(current, ca.certificate.pem, now)).toBe(true);
    expect(
      validClientCertificate(await clientOf(other, { from: -DAY, to: DAY }), ca.certificate.pem, now),
    ).toBe(false);
    expect(
      validClientCertificate(await clientOf(ca, { from: -2 * DAY, to: -DAY }), ca.certificate.pem, now),
    ).toBe(false);
    expect(validClientCertificate("not a certificate", ca.certificate.pem, now)).toBe(false);
  });
});
