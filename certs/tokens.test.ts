import { describe, expect, it } from "vitest";
import {
  discoveryHash,
  formatBootstrapToken,
  generateBootstrapToken,
  isValidBootstrapToken,
  parseBootstrapToken,
} from "./tokens.js";

// Upstream vector: kubernetes/kubernetes cmd/kubeadm/app/util/pubkeypin/pubkeypin_test.go, testCertPEM
// ("issued with the openssl CLI") and its expectedHash.
const KUBEADM_TEST_CERT = `-----BEGIN CERTIFICATE-----
MIIDRDCCAiygAwIBAgIJAJgVaCXvC6HkMA0GCSqGSIb3DQEBBQUAMB8xHTAbBgNV
BAMTFGt1YmVhZG0ta2V5cGlucy10ZXN0MCAXDTE3MDcwNTE3NDMxMFoYDzIxMTcw
NjExMTc0MzEwWjAfMR0wGwYDVQQDExRrdWJlYWRtLWtleXBpbnMtdGVzdDCCASIw
DQYJKoZIhvcNAQEBBQADggEPADCCAQoCggEBAK0ba8mHU9UtYlzM1Own2Fk/XGjR
J4uJQvSeGLtz1hID1IA0dLwruvgLCPadXEOw/f/IWIWcmT+ZmvIHZKa/woq2iHi5
+HLhXs7aG4tjKGLYhag1hLjBI7icqV7ovkjdGAt9pWkxEzhIYClFMXDjKpMSynu+
YX6nZ9tic1cOkHmx2yiZdMkuriRQnpTOa7bb03OC1VfGl7gHlOAIYaj4539WCOr8
+ACTUMJUFEHcRZ2o8a/v6F9GMK+7SC8SJUI+GuroXqlMAdhEv4lX5Co52enYaClN
+D9FJLRpBv2YfiCQdJRaiTvCBSxEFz6BN+PtP5l2Hs703ZWEkOqCByM6HV8CAwEA
AaOBgDB+MB0GA1UdDgQWBBRQgUX8MhK2rWBWQiPHWcKzoWDH5DBPBgNVHSMESDBG
gBRQgUX8MhK2rWBWQiPHWcKzoWDH5KEjpCEwHzEdMBsGA1UEAxMUa3ViZWFkbS1r
ZXlwaW5zLXRlc3SCCQCYFWgl7wuh5DAMBgNVHRMEBTADAQH/MA0GCSqGSIb3DQEB
BQUAA4IBAQCaAUif7Pfx3X0F08cxhx8/Hdx4jcJw6MCq6iq6rsXM32ge43t8OHKC
pJW08dk58a3O1YQSMMvD6GJDAiAfXzfwcwY6j258b1ZlI9Ag0VokvhMl/XfdCsdh
AWImnL1t4hvU5jLaImUUMlYxMcSfHBGAm7WJIZ2LdEfg6YWfZh+WGbg1W7uxLxk6
y4h5rWdNnzBHWAGf7zJ0oEDV6W6RSwNXtC0JNnLaeIUm/6xdSddJlQPwUv8YH4jX
c1vuFqTnJBPcb7W//R/GI2Paicm1cmns9NLnPR35exHxFTy+D1yxmGokpoPMdife
aH+sfuxT8xeTPb3kjzF9eJTlnEquUDLM
-----END CERTIFICATE-----
`;
const KUBEADM_EXPECTED_HASH = "sha256:345959acb2c3b2feb87d281961c893f62a314207ef02599f1cc4a5fb255480b3";

describe("discoveryHash", () => {
  it("matches kubeadm's pubkeypin test vector", () => {
    expect(discoveryHash(KUBEADM_TEST_CERT)).toBe(KUBEADM_EXPECTED_HASH);
  });
});

describe("bootstrap tokens", () => {
  // Examples from the Kubernetes docs, reference/access-authn-authz/bootstrap-tokens ("Token Format":
  // `abcdef.0123456789abcdef`; "Authorization: Bearer 07401b.f395accd246ae52d").
  it("parses the documented examples", () => {
    expect(parseBootstrapToken("abcdef.0123456789abcdef")).toEqual({
      id: "abcdef",
      secret: "0123456789abcdef",
    });
    expect(parseBootstrapToken("07401b.f395accd246ae52d")).toEqual({
      id: "07401b",
      secret: "f395accd246ae52d",
    });
  });

  it("rejects what the pattern [a-z0-9]{6}.[a-z0-9]{16} does not match", () => {
    for (const text of [
      "ABCDEF.0123456789abcdef",
      "abcde.0123456789abcdef",
      "abcdef.0123456789abcde",
      "abcdef0123456789abcdef",
      "abcdef:0123456789abcdef",
      " abcdef.0123456789abcdef",
      "abcdef.0123456789abcdef\n",
    ]) {
      expect([text, isValidBootstrapToken(text)]).toEqual([text, false]);
    }
  });

  it("generates valid, distinct tokens", () => {
    const tokens = Array.from({ length: 50 }, () => formatBootstrapToken(generateBootstrapToken()));
    for (const token of tokens) expect(token).toMatch(/^[a-z0-9]{6}\.[a-z0-9]{16}$/);
    expect(new Set(tokens).size).toBe(50);
  });
});
