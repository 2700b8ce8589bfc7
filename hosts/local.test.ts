import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough, Readable } from "node:stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { RemoteCommandError } from "../workflow/errors.js";
import { Redactor } from "../workflow/redact.js";
import { LocalHost } from "./local.js";
import { atomicWriteScript, CHECKSUM_MISMATCH_EXIT, sha256 } from "./upload.js";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "kf-local-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const host = (redactor = new Redactor()) => new LocalHost({ redactor });

/** PIDs of live processes whose command line contains `marker`. */
function processesMatching(marker: string): string[] {
  try {
    return execFileSync("pgrep", ["-f", marker], { encoding: "utf8" }).trim().split("\n");
  } catch {
    return []; // pgrep exits 1 when nothing matches
  }
}

/** A `sleep` whose command line is unique to this test, so pgrep finds only ours. */
const uniqueSleep = () => `${900 + Math.floor(Math.random() * 99)}.${Date.now() % 1_000_000}`;

describe("exec", () => {
  it("returns stdout, stderr and the exit code, and streams redacted lines", async () => {
    const redactor = new Redactor();
    redactor.addSecret("hunter2");
    const lines: string[] = [];
    const result = await host(redactor).exec("printf 'a\\nsecret hunter2\\nno newline'; echo oops >&2", {
      onOutput: (line, stream) => lines.push(`${stream}: ${line}`),
    });
    expect(result).toEqual({ exitCode: 0, stdout: "a\nsecret hunter2\nno newline", stderr: "oops\n" });
    // The two streams interleave in no fixed order; each one's lines come in order.
    expect(lines.filter((l) => l.startsWith("stdout"))).toEqual([
      "stdout: a",
      "stdout: secret [REDACTED]",
      "stdout: no newline",
    ]);
    expect(lines.filter((l) => l.startsWith("stderr"))).toEqual(["stderr: oops"]);
  });

  it("runs the command exactly as given, whatever its quotes", async () => {
    const command = `printf '%s|' "a'b" 'c"d' '$HOME' "\\\\" && printf '\\n%s' x`;
    const result = await host().exec(command);
    expect(result.stdout).toBe(`a'b|c"d|$HOME|\\|\nx`);
  });

  it("throws RemoteCommandError with the redacted command and the stderr tail", async () => {
    const redactor = new Redactor();
    redactor.addSecret("s3cret");
    const error = await host(redactor)
      .exec("echo s3cret; echo 'it broke' >&2; exit 7")
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RemoteCommandError);
    expect(error).toMatchObject({ host: "localhost", exitCode: 7, stderrTail: "it broke" });
    expect((error as Error).message).toBe(
      "localhost: `echo [REDACTED]; echo 'it broke' >&2; exit 7` exited 7: it broke",
    );
  });

  it("returns a failing exit code with allowFailure", async () => {
    expect(await host().exec("echo x; exit 3", { allowFailure: true })).toEqual({
      exitCode: 3,
      stdout: "x\n",
      stderr: "",
    });
  });

  it("hides a sensitive command and its output", async () => {
    const lines: string[] = [];
    const error = await host()
      .exec("echo token-abc; exit 1", { sensitive: true, onOutput: (line) => lines.push(line) })
      .catch((e: unknown) => e);
    expect((error as Error).message).toBe("localhost: `[sensitive command]` exited 1");
    expect(lines).toEqual([]);
  });

  it("streams stdin from a Readable", async () => {
    const stdin = Readable.from([Buffer.from("one\n"), Buffer.from("two\n")]);
    expect((await host().exec("cat; cat", { stdin })).stdout).toBe("one\ntwo\n");
  });
});

describe("timeouts and aborts", () => {
  it("kills the whole process group on timeout, background children included", async () => {
    const seconds = uniqueSleep();
    const started = Date.now();
    const error = await host()
      .exec(`sleep ${seconds} & sleep ${seconds}; echo never`, { timeoutMs: 300 })
      .catch((e: unknown) => e);
    expect(Date.now() - started).toBeLessThan(3000);
    expect(error).toBeInstanceOf(RemoteCommandError);
    expect((error as Error).message).toMatch(
      /^localhost: `sleep .*` was killed: timed out after 300ms \(its process group was killed on the host\)$/,
    );
    expect(processesMatching(`sleep ${seconds}`)).toEqual([]);
  });

  it("escalates to SIGKILL when the command ignores SIGTERM", async () => {
    const seconds = uniqueSleep();
    const started = Date.now();
    const error = await host()
      .exec(`trap '' TERM; sleep ${seconds}`, { timeoutMs: 200 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RemoteCommandError);
    expect(Date.now() - started).toBeGreaterThan(4000); // the 5 s grace period
    expect(processesMatching(`sleep ${seconds}`)).toEqual([]);
  }, 15_000);

  it("kills the command when the signal aborts, with the reason as cause", async () => {
    const seconds = uniqueSleep();
    const controller = new AbortController();
    const running = host().exec(`sleep ${seconds}`, { signal: controller.signal });
    setTimeout(() => controller.abort(new Error("user pressed Ctrl-C")), 300);
    const error = await running.catch((e: unknown) => e);
    expect((error as Error).message).toContain("was killed: aborted");
    expect((error as Error).cause).toEqual(new Error("user pressed Ctrl-C"));
    expect(processesMatching(`sleep ${seconds}`)).toEqual([]);
  });

  it("does not start anything when already aborted", async () => {
    const marker = join(dir, "ran");
    const controller = new AbortController();
    controller.abort(new Error("stop"));
    await expect(host().exec(`touch ${marker}`, { signal: controller.signal })).rejects.toThrow("stop");
    expect(() => statSync(marker)).toThrow(/ENOENT/);
  });
});

describe("files", () => {
  it("writes with the given mode and owner, creating parents with dirMode", async () => {
    const target = join(dir, "a", "b", "file.key");
    await host().writeFile(target, "secret\n", {
      mode: 0o600,
      dirMode: 0o750,
      owner: "65534",
      group: "65534",
    });
    expect(readFileSync(target, "utf8")).toBe("secret\n");
    const stat = statSync(target);
    expect(stat.mode & 0o7777).toBe(0o600);
    expect([stat.uid, stat.gid]).toEqual([65534, 65534]);
    expect(statSync(join(dir, "a")).mode & 0o7777).toBe(0o750);
    expect(statSync(join(dir, "a", "b")).mode & 0o7777).toBe(0o750);
  });

  it("replaces a file so that a concurrent reader sees the old or the new content, never a part", async () => {
    const target = join(dir, "big");
    const versions = [randomBytes(2 << 20), randomBytes(2 << 20)] as const;
    const local = host();
    await local.writeFile(target, versions[0]);
    let writing = true;
    const reads: Buffer[] = [];
    const reader = (async () => {
      while (writing) reads.push(await readFile(target));
    })();
    for (let i = 1; i <= 10; i++) await local.writeFile(target, versions[i % 2] as Buffer);
    writing = false;
    await reader;
    expect(reads.length).toBeGreaterThan(5);
    for (const read of reads) expect(read.equals(versions[0]) || read.equals(versions[1])).toBe(true);
  });

  it("leaves the target and no temp file behind when the checksum does not match", async () => {
    const target = join(dir, "conf");
    writeFileSync(target, "old");
    const script = atomicWriteScript(target, sha256(Buffer.from("expected")), {});
    const error = await host()
      .exec(script, { stdin: "something else" })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ exitCode: CHECKSUM_MISMATCH_EXIT });
    expect((error as RemoteCommandError).stderrTail).toMatch(/^checksum mismatch: expected [0-9a-f]{64}/);
    expect(readFileSync(target, "utf8")).toBe("old");
    expect(readdirSync(dir)).toEqual(["conf"]);
  });

  it("removes the temp file when a write is killed halfway", async () => {
    const target = join(dir, "conf");
    writeFileSync(target, "old");
    const stdin = new PassThrough();
    stdin.write("partial content that never ends");
    const script = atomicWriteScript(target, sha256(Buffer.from("x")), {});
    await expect(host().exec(script, { stdin, timeoutMs: 300 })).rejects.toThrow(/timed out/);
    expect(readFileSync(target, "utf8")).toBe("old");
    expect(readdirSync(dir)).toEqual(["conf"]);
  });

  it("removes the temp file when the workstation vanishes mid-write: stdin ends and every output is a broken pipe", async () => {
    const target = join(dir, "conf");
    writeFileSync(target, "old");
    // As sshd leaves a command after kill -9 of kubeforge: input cut short, nobody reading its output.
    const child = spawn("sh", ["-c", atomicWriteScript(target, sha256(Buffer.from("the whole file")), {})], {
      stdio: ["pipe", "pipe", "pipe"],
    });
    child.stdout.destroy();
    child.stderr.destroy();
    child.stdin.end("the whole");
    const [code, signal] = await once(child, "exit");
    expect({ code, signal }).toEqual({ code: CHECKSUM_MISMATCH_EXIT, signal: null });
    expect(readFileSync(target, "utf8")).toBe("old");
    expect(readdirSync(dir)).toEqual(["conf"]);
  });

  it("uploads a local file and reads it back byte for byte", async () => {
    const source = join(dir, "source.bin");
    const content = randomBytes(300_000);
    writeFileSync(source, content);
    const local = host();
    await local.upload(source, join(dir, "copy", "target.bin"), { mode: 0o640 });
    expect((await local.readFile(join(dir, "copy", "target.bin"))).equals(content)).toBe(true);
    expect(statSync(join(dir, "copy", "target.bin")).mode & 0o7777).toBe(0o640);
  });

  it("names the host and the path when a file cannot be read", async () => {
    await expect(host().readFile(join(dir, "missing"))).rejects.toThrow(
      `localhost: \`cat -- ${join(dir, "missing")}\` exited 1: cat: ${join(dir, "missing")}: No such file or directory`,
    );
  });

  it("refuses a relative path", async () => {
    await expect(host().writeFile("relative/path", "x")).rejects.toThrow(
      "not an absolute path: relative/path",
    );
  });
});
