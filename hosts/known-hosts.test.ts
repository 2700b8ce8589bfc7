// known_hosts handling, checked against OpenSSH itself: `ssh-keygen -H` writes the hashed entries,
// `ssh-keygen -F` says which lines name a host, `ssh-keygen -l` prints fingerprints.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  checkHostKey,
  entryMatches,
  fingerprint,
  hostKeyAlgorithms,
  KnownHosts,
  keyTypeOf,
  knownHostsName,
  parseKnownHosts,
} from "./known-hosts.js";

let dir: string;
const keys: Record<"ed25519" | "rsa" | "ecdsa" | "other", { line: string; blob: Buffer; pub: string }> =
  {} as never;

function keygen(...args: string[]): string {
  return execFileSync("ssh-keygen", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

/** The line numbers `ssh-keygen -F name` reports for `file`. */
function oracleLines(file: string, name: string): number[] {
  let out = "";
  try {
    out = keygen("-F", name, "-f", file);
  } catch {
    return []; // exit 1: not found
  }
  return [...out.matchAll(/^# Host .* found: line (\d+)/gm)].map((m) => Number(m[1]));
}

function ourLines(file: string, name: string): number[] {
  return parseKnownHosts(readFileSync(file, "utf8"), file)
    .filter((entry) => entryMatches(entry, name))
    .map((entry) => entry.line);
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "kf-known-hosts-"));
  for (const [name, args] of [
    ["ed25519", ["-t", "ed25519"]],
    ["rsa", ["-t", "rsa", "-b", "2048"]],
    ["ecdsa", ["-t", "ecdsa", "-b", "256"]],
    ["other", ["-t", "ed25519"]],
  ] as const) {
    const path = join(dir, name);
    keygen("-q", ...args, "-N", "", "-C", name, "-f", path);
    const pub = `${path}.pub`;
    const [type, base64] = readFileSync(pub, "utf8").split(" ");
    keys[name] = { line: `${type} ${base64}`, blob: Buffer.from(base64 as string, "base64"), pub };
  }
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

const NAMES = [
  "cp1.example",
  "198.18.200.1",
  "[198.18.200.2]:2222",
  "198.18.200.2",
  "revoked.example",
  "node7.wild",
  "bad.wild",
  "CP1.EXAMPLE",
  "unknown.example",
];

/** `garbage`: add a malformed line, which we skip like ssh does but `ssh-keygen -H` refuses. */
function sampleFile(garbage = true): string {
  const file = join(dir, `known_hosts-${Math.random().toString(36).slice(2)}`);
  writeFileSync(
    file,
    [
      "# comment line",
      `cp1.example,198.18.200.1 ${keys.ed25519.line}`,
      "",
      `[198.18.200.2]:2222 ${keys.rsa.line} a comment`,
      `@revoked revoked.example ${keys.rsa.line}`,
      `@cert-authority *.example ${keys.other.line}`,
      `*.wild,!bad.wild ${keys.ecdsa.line}`,
      garbage ? "garbage-without-key" : "",
    ].join("\n"),
  );
  return file;
}

describe("matching hosts", () => {
  it("finds the same lines as ssh-keygen -F for plain, [host]:port, wildcard and negated entries", () => {
    const file = sampleFile();
    for (const name of NAMES) {
      const lookup = knownHostsName(name, 22); // ssh lowercases the name before looking it up
      expect(ourLines(file, lookup), name).toEqual(oracleLines(file, lookup));
    }
  });

  it("finds the same lines as ssh-keygen -F after ssh-keygen -H hashed the file", () => {
    const file = sampleFile(false);
    keygen("-H", "-f", file);
    expect(readFileSync(file, "utf8")).toMatch(/^\|1\|/m);
    for (const name of NAMES) {
      const lookup = knownHostsName(name, 22); // ssh lowercases the name before looking it up
      expect(ourLines(file, lookup), name).toEqual(oracleLines(file, lookup));
    }
  });

  it("uses [host]:port for a port other than 22 and lowercases the name", () => {
    expect(knownHostsName("Cp1.Example", 22)).toBe("cp1.example");
    expect(knownHostsName("198.18.200.2", 2222)).toBe("[198.18.200.2]:2222");
  });
});

describe("fingerprints", () => {
  it("match ssh-keygen -l for every key type", () => {
    for (const key of Object.values(keys)) {
      const printed = keygen("-l", "-E", "sha256", "-f", key.pub).split(" ")[1];
      expect(fingerprint(key.blob)).toBe(printed);
    }
  });

  it("read the key type from the blob", () => {
    expect(keyTypeOf(keys.ed25519.blob)).toBe("ssh-ed25519");
    expect(keyTypeOf(keys.rsa.blob)).toBe("ssh-rsa");
    expect(keyTypeOf(keys.ecdsa.blob)).toBe("ecdsa-sha2-nistp256");
  });
});

describe("checking a host key", () => {
  const entries = () => {
    const file = sampleFile();
    return parseKnownHosts(readFileSync(file, "utf8"), file);
  };

  it("knows a recorded key", () => {
    const check = checkHostKey(entries(), "198.18.200.1", keys.ed25519.blob);
    expect(check).toMatchObject({ status: "known", entry: { line: 2 } });
  });

  it("reports a different key of a known type as changed, with the file and line", () => {
    const check = checkHostKey(entries(), "cp1.example", keys.other.blob);
    expect(check.status).toBe("changed");
    if (check.status !== "changed") return;
    expect(check.entries.map((e) => `${e.file}:${e.line}`)).toEqual([`${check.entries[0]?.file}:2`]);
  });

  it("treats a key of a type not recorded for the host as unknown, not changed", () => {
    expect(checkHostKey(entries(), "cp1.example", keys.rsa.blob).status).toBe("unknown");
  });

  it("refuses a revoked key", () => {
    expect(checkHostKey(entries(), "revoked.example", keys.rsa.blob).status).toBe("revoked");
  });

  it("ignores @cert-authority lines", () => {
    expect(checkHostKey(entries(), "any.example", keys.other.blob).status).toBe("unknown");
  });

  it("does not apply a [host]:port entry to port 22", () => {
    expect(checkHostKey(entries(), "198.18.200.2", keys.rsa.blob).status).toBe("unknown");
    expect(checkHostKey(entries(), "[198.18.200.2]:2222", keys.rsa.blob).status).toBe("known");
  });

  it("offers only the host key algorithms of the key types known for the host", () => {
    expect(hostKeyAlgorithms(entries(), "[198.18.200.2]:2222")).toEqual([
      "rsa-sha2-512",
      "rsa-sha2-256",
      "ssh-rsa",
    ]);
    expect(hostKeyAlgorithms(entries(), "cp1.example")).toEqual(["ssh-ed25519"]);
    expect(hostKeyAlgorithms(entries(), "unknown.example")).toBeUndefined();
  });
});

describe("recording a new key (TOFU)", () => {
  it("appends a line that ssh-keygen -F finds, in [host]:port form for another port", async () => {
    const file = join(dir, "tofu-plain");
    writeFileSync(file, `cp1.example ${keys.ed25519.line}`); // no trailing newline
    const knownHosts = await KnownHosts.load([file]);
    const entry = await knownHosts.add(knownHostsName("198.18.209.9", 2200), keys.rsa.blob);
    expect(entry.line).toBe(2);
    expect(oracleLines(file, "[198.18.209.9]:2200")).toEqual([2]);
    expect(oracleLines(file, "cp1.example")).toEqual([1]);
    expect(readFileSync(file, "utf8")).toBe(
      `cp1.example ${keys.ed25519.line}\n[198.18.209.9]:2200 ${keys.rsa.line}\n`,
    );
    expect(knownHosts.check("[198.18.209.9]:2200", keys.rsa.blob).status).toBe("known");
  });

  it("hashes the name when the file already uses hashed names", async () => {
    const file = join(dir, "tofu-hashed");
    writeFileSync(file, `cp1.example ${keys.ed25519.line}\n`);
    keygen("-H", "-f", file);
    const knownHosts = await KnownHosts.load([file]);
    await knownHosts.add(knownHostsName("198.18.209.8", 22), keys.ecdsa.blob);
    const last = readFileSync(file, "utf8").trimEnd().split("\n").at(-1);
    expect(last).toMatch(/^\|1\|[^|]+\|[^ ]+ ecdsa-sha2-nistp256 /);
    expect(oracleLines(file, "198.18.209.8")).toEqual([2]);
  });

  it("creates a missing file", async () => {
    const file = join(dir, "new-dir", "known_hosts");
    const knownHosts = await KnownHosts.load([file]);
    expect(knownHosts.check("h1", keys.ed25519.blob).status).toBe("unknown");
    await knownHosts.add("h1", keys.ed25519.blob);
    expect(oracleLines(file, "h1")).toEqual([1]);
  });
});
