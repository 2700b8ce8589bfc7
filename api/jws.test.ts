import { describe, expect, it } from "vitest";
import { detachedSignature, detachedSignatureIsValid } from "./jws.js";

// Vectors from kubernetes/kubernetes staging/src/k8s.io/cluster-bootstrap/token/jws/jws_test.go
// (the older copy with a 23-byte secret, and the current one with a longer secret).
const CONTENT = "Hello from the other side. I must have called a thousand times.";
const ID = "joshua";
const SHORT_SECRET = "my voice is my passcode";
const LONG_SECRET = "my voice is my passcode. my voice is my passcode";
const HEADER = "eyJhbGciOiJIUzI1NiIsImtpZCI6Impvc2h1YSJ9";

describe("detachedSignature", () => {
  it.each([
    [CONTENT, SHORT_SECRET, "VShe2taLd-YTrmWuRkcL_8QTNDHYxQIEBsAYYiIj1_8"],
    ["", SHORT_SECRET, "7Ui1ALizW4jXphVUB7xUqC9vLYLL9RZeOFfVLoB7Tgk"],
    [CONTENT, "", "UfkqvDGiIFxrMnFseDj9LYJOLNrvjW8aHhF71mvvAs8"],
    [CONTENT, LONG_SECRET, "SFoKn0-YxqnvpSExt4LuCZ_7pvIBdX3SoUO_NsTpkdg"],
    ["", LONG_SECRET, "kzZha466Sbz_vFhUBjjYp2rl3F7yHgdDdUIBGxQg4js"],
  ])("matches cluster-bootstrap for %j with secret %j", (content, secret, signature) => {
    expect(detachedSignature(content, ID, secret)).toBe(`${HEADER}..${signature}`);
  });

  it("the header is {alg, kid} and the payload part is empty", () => {
    const [header, payload] = detachedSignature(CONTENT, "abcdef", "0123456789abcdef").split(".");
    expect(JSON.parse(Buffer.from(header ?? "", "base64url").toString())).toEqual({
      alg: "HS256",
      kid: "abcdef",
    });
    expect(payload).toBe("");
  });
});

describe("detachedSignatureIsValid", () => {
  const valid = `${HEADER}..SFoKn0-YxqnvpSExt4LuCZ_7pvIBdX3SoUO_NsTpkdg`;

  it("accepts the token's signature and nothing else", () => {
    expect(detachedSignatureIsValid(valid, CONTENT, ID, LONG_SECRET)).toBe(true);
    expect(detachedSignatureIsValid(`${valid}foo`, CONTENT, ID, LONG_SECRET)).toBe(false);
    expect(detachedSignatureIsValid(valid, `${CONTENT}!`, ID, LONG_SECRET)).toBe(false);
    expect(detachedSignatureIsValid(valid, CONTENT, "other1", LONG_SECRET)).toBe(false);
    expect(detachedSignatureIsValid(valid, CONTENT, ID, SHORT_SECRET)).toBe(false);
  });
});
