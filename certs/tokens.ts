// Bootstrap tokens and the discovery hash that `kubeadm join` pins the CA with.
import { createHash, randomInt } from "node:crypto";
import { parseCertificate } from "./x509.js";

/** `[a-z0-9]{6}.[a-z0-9]{16}` (cluster-bootstrap token/api BootstrapTokenPattern). */
const TOKEN = /^([a-z0-9]{6})\.([a-z0-9]{16})$/;
const ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789";

export interface BootstrapToken {
  /** Public: names the Secret `bootstrap-token-<id>`. */
  id: string;
  secret: string;
}

export function generateBootstrapToken(): BootstrapToken {
  // randomInt draws without modulo bias.
  const draw = (length: number) =>
    Array.from({ length }, () => ALPHABET[randomInt(ALPHABET.length)]).join("");
  return { id: draw(6), secret: draw(16) };
}

/** The token's parts, or undefined when the text is not a bootstrap token. */
export function parseBootstrapToken(text: string): BootstrapToken | undefined {
  const match = TOKEN.exec(text);
  return match?.[1] && match[2] ? { id: match[1], secret: match[2] } : undefined;
}

export function isValidBootstrapToken(text: string): boolean {
  return parseBootstrapToken(text) !== undefined;
}

export function formatBootstrapToken(token: BootstrapToken): string {
  return `${token.id}.${token.secret}`;
}

/**
 * `sha256:<hex>` over the DER SubjectPublicKeyInfo of a CA certificate (PEM): the value of
 * `kubeadm join --discovery-token-ca-cert-hash` (kubeadm util/pubkeypin Hash).
 */
export function discoveryHash(caCertPem: string): string {
  return `sha256:${createHash("sha256").update(parseCertificate(caCertPem).spkiDer).digest("hex")}`;
}
