import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { ApiObject } from "./objects.js";
import {
  formatTokenTable,
  joinCommand,
  parseTokenTtl,
  type TokenRow,
  tokenFromSecret,
  tokenIdOf,
  tokenSecretName,
  tokenToSecret,
  tokenUsageProblems,
} from "./tokens.js";

const TOKEN = { id: "abcdef", secret: "abcdef0123456789" };

const secretOf = (name: string, data: Record<string, string>): ApiObject => ({
  apiVersion: "v1",
  kind: "Secret",
  metadata: { name, namespace: "kube-system" },
  type: "bootstrap.kubernetes.io/token",
  data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString("base64")])),
});
const decoded = (secret: ApiObject) =>
  Object.fromEntries(
    Object.entries(secret.data as Record<string, string>).map(([k, v]) => [
      k,
      Buffer.from(v, "base64").toString(),
    ]),
  );
const row = (fields: Partial<TokenRow>): TokenRow => ({
  token: TOKEN,
  description: "",
  usages: [],
  groups: [],
  ...fields,
});

// Upstream vectors: kubernetes/kubernetes cmd/kubeadm/app/apis/bootstraptoken/v1/utils_test.go
// (@0275375f): refTime, TestBootstrapTokenToSecret, TestEncodeTokenSecretData,
// TestBootstrapTokenFromSecret, TestBootstrapTokenToSecretRoundtrip.
const REF_TIME = new Date("1970-01-01T01:01:01Z");
const ALL_DATA = {
  "token-id": "abcdef",
  "token-secret": "abcdef0123456789",
  description: "foo",
  expiration: "1970-01-01T01:01:01Z",
  "usage-bootstrap-signing": "true",
  "usage-bootstrap-authentication": "true",
  "auth-extra-groups": "system:bootstrappers,system:bootstrappers:foo",
};
const ALL_ROW = row({
  description: "foo",
  expires: REF_TIME,
  usages: ["authentication", "signing"],
  groups: ["system:bootstrappers", "system:bootstrappers:foo"],
});

describe("tokenToSecret (kubeadm BootstrapTokenToSecret)", () => {
  it("all together", () => {
    const secret = tokenToSecret({ ...ALL_ROW, usages: ["signing", "authentication"] });
    expect(secret).toMatchObject({
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "bootstrap-token-abcdef", namespace: "kube-system" },
      type: "bootstrap.kubernetes.io/token",
    });
    expect(decoded(secret)).toEqual(ALL_DATA);
  });

  it.each([
    ["the minimum amount of information needed to be specified", {}, {}],
    ["adds description", { description: "foo" }, { description: "foo" }],
    ["adds expiration", { expires: REF_TIME }, { expiration: "1970-01-01T01:01:01Z" }],
    // "adds ttl": a 2h TTL counted from refTime.
    [
      "adds ttl",
      { expires: new Date(REF_TIME.getTime() + (parseTokenTtl("2h") ?? 0)) },
      { expiration: "1970-01-01T03:01:01Z" },
    ],
    [
      "adds usages",
      { usages: ["authentication", "signing"] },
      { "usage-bootstrap-signing": "true", "usage-bootstrap-authentication": "true" },
    ],
    [
      "adds groups",
      { groups: ["system:bootstrappers", "system:bootstrappers:foo"] },
      { "auth-extra-groups": "system:bootstrappers,system:bootstrappers:foo" },
    ],
  ])("encodes: %s", (_, fields, extra) => {
    expect(decoded(tokenToSecret(row(fields)))).toEqual({
      "token-id": "abcdef",
      "token-secret": "abcdef0123456789",
      ...extra,
    });
  });
});

describe("tokenFromSecret (kubeadm BootstrapTokenFromSecret)", () => {
  const name = "bootstrap-token-abcdef";
  const minimum = { "token-id": "abcdef", "token-secret": "abcdef0123456789" };

  it.each([
    ["minimum information", minimum, row({})],
    ["adds description", { ...minimum, description: "foo" }, row({ description: "foo" })],
    ["adds expiration", { ...minimum, expiration: "1970-01-01T01:01:01Z" }, row({ expires: REF_TIME })],
    [
      "adds usages",
      { ...minimum, "usage-bootstrap-signing": "true", "usage-bootstrap-authentication": "true" },
      row({ usages: ["authentication", "signing"] }),
    ],
    [
      "should ignore usages that aren't set to true",
      {
        ...minimum,
        "usage-bootstrap-signing": "true",
        "usage-bootstrap-authentication": "true",
        "usage-bootstrap-foo": "false",
        "usage-bootstrap-bar": "",
      },
      row({ usages: ["authentication", "signing"] }),
    ],
    [
      "adds groups",
      { ...minimum, "auth-extra-groups": "system:bootstrappers,system:bootstrappers:foo" },
      row({ groups: ["system:bootstrappers", "system:bootstrappers:foo"] }),
    ],
    ["all fields set", ALL_DATA, ALL_ROW],
  ])("%s", (_, data, expected) => {
    expect(tokenFromSecret(secretOf(name, data))).toEqual(expected);
  });

  it.each([
    ["invalid token id", name, { "token-id": "abcdeF", "token-secret": "abcdef0123456789" }],
    ["invalid secret naming", "foo", minimum],
    ["invalid token secret", name, { "token-id": "abcdef", "token-secret": "ABCDEF0123456789" }],
    ["invalid expiration", name, { ...minimum, expiration: "invalid date" }],
  ])("refuses: %s, never naming the secret", (_, secretName, data) => {
    let message = "";
    try {
      tokenFromSecret(secretOf(secretName, data));
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).not.toBe("");
    expect(message).not.toMatch(/0123456789/);
  });

  it("round-trips (TestBootstrapTokenToSecretRoundtrip)", () => {
    expect(tokenFromSecret(tokenToSecret(ALL_ROW))).toEqual(ALL_ROW);
  });
});

// Upstream vectors: kubernetes/kubernetes staging/src/k8s.io/cluster-bootstrap/token/util/helpers_test.go
// (@d7ce957d): TestIsValidBootstrapToken, TestIsValidBootstrapTokenID, TestBootstrapTokenSecretName,
// TestValidateBootstrapGroupName, TestValidateUsages.
describe("cluster-bootstrap vectors", () => {
  it("token delete takes a token id or a whole token (IsValidBootstrapTokenID, IsValidBootstrapToken)", () => {
    const tokens: [string, string | undefined][] = [
      ["", undefined],
      [".", undefined],
      ["1234567890123456789012", undefined],
      ["12345.1234567890123456", undefined],
      [".1234567890123456", undefined],
      ["123456.", undefined],
      ["123456:1234567890.123456", undefined],
      ["abcdef:1234567890123456", undefined],
      ["Abcdef.1234567890123456", undefined],
      ["123456.AABBCCDDEEFFGGHH", undefined],
      ["123456.AABBCCD-EEFFGGHH", undefined],
      ["abc*ef.1234567890123456", undefined],
      ["abcdef.1234567890123456", "abcdef"],
      ["123456.aabbccddeeffgghh", "123456"],
      ["ABCDEF.abcdef0123456789", undefined],
      ["abcdef.abcdef0123456789", "abcdef"],
      ["123456.1234560123456789", "123456"],
    ];
    const ids: [string, string | undefined][] = [
      ["", undefined],
      ["1234567890123456789012", undefined],
      ["12345", undefined],
      ["Abcdef", undefined],
      ["ABCDEF", undefined],
      ["abcdef.", undefined],
      ["abcdef", "abcdef"],
      ["123456", "123456"],
    ];
    for (const [text, id] of [...tokens, ...ids]) expect([text, tokenIdOf(text)]).toEqual([text, id]);
  });

  it("names the Secret bootstrap-token-<id>", () => {
    expect(["foo", "bar", "", "abcdef"].map(tokenSecretName)).toEqual([
      "bootstrap-token-foo",
      "bootstrap-token-bar",
      "bootstrap-token-",
      "bootstrap-token-abcdef",
    ]);
  });

  it.each([
    ["valid", "system:bootstrappers:foo", true],
    ["valid nested", "system:bootstrappers:foo:bar:baz", true],
    ["valid with dashes and number", "system:bootstrappers:foo-bar-42", true],
    ["invalid uppercase", "system:bootstrappers:Foo", false],
    ["missing prefix", "foo", false],
    ["prefix with no body", "system:bootstrappers:", false],
    ["invalid spaces", "system:bootstrappers: ", false],
    ["invalid asterisk", "system:bootstrappers:*", false],
    ["trailing colon", "system:bootstrappers:foo:", false],
    ["trailing dash", "system:bootstrappers:foo-", false],
    ["script tags", 'system:bootstrappers:<script> alert("scary?!") </script>', false],
    ["too long", `system:bootstrappers:${"x".repeat(300)}`, false],
  ])("group %s", (_, group, valid) => {
    expect(tokenUsageProblems(["authentication"], [group]).length === 0).toBe(valid);
  });

  it.each([
    ["valid of signing", ["signing"], true],
    ["valid of authentication", ["authentication"], true],
    ["all valid", ["authentication", "signing"], true],
    ["single invalid", ["authentication", "foo"], false],
    ["all invalid", ["foo", "bar"], false],
  ])("usages %s", (_, usages, valid) => {
    expect(tokenUsageProblems(usages, []).length === 0).toBe(valid);
  });
});

describe("tokenUsageProblems", () => {
  it("words the problems as kubeadm does, naming the flag", () => {
    expect(tokenUsageProblems(["signing", "foo", "bar"], ["system:bootstrappers:x", "Bad"])).toEqual([
      {
        flag: "--usages",
        message: "invalid bootstrap token usage string: bar,foo, valid usage options: signing,authentication",
      },
      {
        flag: "--groups",
        message: 'token groups cannot be specified unless --usages includes "authentication"',
      },
      {
        flag: "--groups",
        message:
          'bootstrap group "Bad" is invalid (must match \\Asystem:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]\\z)',
      },
    ]);
  });
});

describe("parseTokenTtl", () => {
  it("reads Go durations; 0 means never; negative or malformed is refused", () => {
    expect(parseTokenTtl("24h")).toBe(24 * 3_600_000);
    expect(parseTokenTtl("1h30m")).toBe(90 * 60_000);
    expect(parseTokenTtl("100ns")).toBe(1);
    for (const zero of ["0", "0s", "0h0m", "0.0s"]) expect([zero, parseTokenTtl(zero)]).toEqual([zero, 0]);
    for (const bad of ["", "24", "1d", "-1h", "24 h", "00"]) {
      expect([bad, parseTokenTtl(bad)]).toEqual([bad, undefined]);
    }
  });
});

describe("formatTokenTable", () => {
  const now = new Date("2026-01-01T00:00:00Z");
  const init = row({
    description: "The default bootstrap token generated by 'kubeadm init'.",
    expires: new Date("2026-01-01T23:30:00Z"),
    usages: ["authentication", "signing"],
    groups: ["system:bootstrappers:kubeadm:default-node-token"],
  });
  const sp = (n: number) => " ".repeat(n);

  it("prints kubeadm's columns, the header aligned with the first row, later rows on their own", () => {
    const forever = row({ token: { id: "ghijkl", secret: "0123456789abcdef" }, usages: ["signing"] });
    const expired = row({
      token: { id: "mnopqr", secret: "0123456789abcdef" },
      expires: new Date("2025-12-31T23:00:00Z"),
    });
    expect(formatTokenTable([init, forever, expired], now)).toBe(
      `TOKEN${sp(21)}TTL${sp(9)}EXPIRES${sp(16)}USAGES${sp(19)}DESCRIPTION${sp(48)}EXTRA GROUPS\n` +
        `abcdef.abcdef0123456789${sp(3)}23h${sp(9)}2026-01-01T23:30:00Z${sp(3)}authentication,signing${sp(3)}` +
        `The default bootstrap token generated by 'kubeadm init'.${sp(3)}system:bootstrappers:kubeadm:default-node-token\n` +
        `ghijkl.0123456789abcdef${sp(3)}<forever>${sp(3)}<never>${sp(3)}signing${sp(18)}<none>${sp(53)}<none>\n` +
        `mnopqr.0123456789abcdef${sp(3)}<invalid>${sp(3)}2025-12-31T23:00:00Z${sp(3)}<none>${sp(19)}<none>${sp(53)}<none>\n`,
    );
  });

  it("prints nothing without tokens, as kubeadm", () => {
    expect(formatTokenTable([], now)).toBe("");
  });
});

describe("joinCommand", () => {
  // api/testdata/test-ca.crt is kubeadm's pubkeypin test certificate (cmd/kubeadm/app/util/pubkeypin/
  // pubkeypin_test.go testCertPEM); expectedHash there is its discovery hash.
  const ca = readFileSync(join(import.meta.dirname, "testdata", "test-ca.crt"), "utf8");

  it("prints the worker join command kubeadm prints, from a host:port or a server URL", () => {
    const expected =
      "kubeadm join demo-api:6443 --token abcdef.abcdef0123456789 --discovery-token-ca-cert-hash " +
      "sha256:345959acb2c3b2feb87d281961c893f62a314207ef02599f1cc4a5fb255480b3";
    expect(joinCommand({ endpoint: "demo-api:6443", token: TOKEN, caCertPem: ca })).toBe(expected);
    expect(joinCommand({ endpoint: "https://demo-api:6443", token: TOKEN, caCertPem: ca })).toBe(expected);
  });
});
