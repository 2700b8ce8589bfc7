// The detached JWS the controller-manager's bootstrapsigner puts into kube-public/cluster-info as
// `jws-kubeconfig-<token-id>`, and that `kubeadm join` checks before it trusts the kubeconfig
// (k8s.io/cluster-bootstrap token/jws ComputeDetachedSignature, RFC 7515 Appendix F): a compact
// JWS over the `kubeconfig` value with the payload left out, HS256 keyed by the token secret, and
// the token id as `kid` in the protected header.
import { createHmac, timingSafeEqual } from "node:crypto";

const base64url = (data: string) => Buffer.from(data, "utf8").toString("base64url");

/**
 * `<header>..<signature>`. The header is `{"alg":"HS256","kid":"<id>"}` as go-jose marshals it (keys
 * sorted; token ids are `[a-z0-9]`, so Go's HTML escaping never differs from JSON.stringify).
 */
export function detachedSignature(content: string, tokenId: string, tokenSecret: string): string {
  const header = base64url(JSON.stringify({ alg: "HS256", kid: tokenId }));
  const signature = createHmac("sha256", tokenSecret)
    .update(`${header}.${base64url(content)}`)
    .digest("base64url");
  return `${header}..${signature}`;
}

/** cluster-bootstrap DetachedTokenIsValid: the signature is exactly the one the token makes. */
export function detachedSignatureIsValid(
  signature: string,
  content: string,
  tokenId: string,
  tokenSecret: string,
): boolean {
  const expected = Buffer.from(detachedSignature(content, tokenId, tokenSecret));
  const actual = Buffer.from(signature);
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}
