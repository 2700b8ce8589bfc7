import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { RemoteCommandError } from "../workflow/errors.js";
import { Redactor } from "../workflow/redact.js";
import { LocalHost } from "./local.js";
import { StderrParser, shellQuote, wrapCommand } from "./sudo.js";

describe("shellQuote", () => {
  it("leaves plain words alone and quotes everything else as one word", () => {
    expect(shellQuote("/etc/kubernetes/admin.conf")).toBe("/etc/kubernetes/admin.conf");
    expect(shellQuote("it's $HOME")).toBe(`'it'\\''s $HOME'`);
    expect(shellQuote("")).toBe("''");
  });
});

describe("StderrParser", () => {
  const { markers } = wrapCommand("true", { sudo: true, sudoPassword: true });
  const bytes = (text: string) => Buffer.from(text);

  it("finds prompts and the start marker even when split byte by byte, and strips them", () => {
    const parser = new StderrParser(markers);
    const stream = `lecture\n${markers.prompt}Sorry, try again.\n${markers.prompt}${markers.start}4242\nafter`;
    const events = [...stream].flatMap((char) => parser.push(bytes(char)));
    const data = events.flatMap((e) => (e.type === "data" ? [e.data.toString()] : [])).join("");
    expect(events.filter((e) => e.type === "prompt")).toHaveLength(2);
    expect(events.find((e) => e.type === "started")).toEqual({ type: "started", pgid: 4242 });
    expect(data).toBe("lecture\nSorry, try again.\nafter");
  });

  it("passes the command's own stderr through untouched, even text that looks like a marker", () => {
    const parser = new StderrParser(markers);
    parser.push(bytes(`${markers.start}7\n`));
    expect(parser.started).toBe(true);
    expect(parser.push(bytes(markers.prompt))).toEqual([{ type: "data", data: bytes(markers.prompt) }]);
  });

  it("hands back an unfinished marker when the stream ends", () => {
    const parser = new StderrParser(markers);
    const events = parser.push(bytes(`sudo: oops\n${markers.prompt.slice(0, 5)}`));
    expect(events).toEqual([{ type: "data", data: bytes("sudo: oops\n") }]);
    expect(parser.flush().toString()).toBe(markers.prompt.slice(0, 5));
  });

  it("uses a new marker for every command", () => {
    const a = wrapCommand("true", { sudo: false, sudoPassword: false }).markers;
    const b = wrapCommand("true", { sudo: false, sudoPassword: false }).markers;
    expect(a.start).not.toBe(b.start);
    expect(a.prompt).not.toMatch(/[%\n]/); // sudo expands % escapes in -p
  });
});

// The prompt handling, end to end through a local host whose PATH has a stand-in for sudo that
// behaves like `sudo -S -p PROMPT --` / `sudo -n --`, records its argv, and fails if anything
// arrives on its stdin before it has prompted.
const FAKE_SUDO = `#!/bin/bash
printf '%s\\n' "$*" >> "$FAKE_SUDO_DIR/argv"
if [ "$1" = -n ]; then echo "sudo: a password is required" >&2; exit 1; fi
[ "$1 $2 $4" = "-S -p --" ] || { echo "unexpected sudo arguments: $*" >&2; exit 98; }
prompt=$3; shift 4
if read -r -t 0.3 early; then echo "stdin before the prompt: $early" >&2; exit 99; fi
for attempt in 1 2 3; do
  # The prompt arrives in two pieces, as it may over a network.
  printf '%s' "\${prompt:0:7}" >&2; sleep 0.05; printf '%s' "\${prompt:7}" >&2
  IFS= read -r password || { echo "sudo: no password was provided" >&2; exit 1; }
  echo "$attempt" >> "$FAKE_SUDO_DIR/attempts"
  [ "$password" = "$FAKE_SUDO_PASSWORD" ] && exec "$@"
  echo "Sorry, try again." >&2
done
exit 1
`;

class NonRootLocalHost extends LocalHost {
  override readonly user = "deploy";
}

describe("sudo with a password", () => {
  const password = "pa55 w0rd'\"$x";
  let dir: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "kf-sudo-"));
    writeFileSync(join(dir, "sudo"), FAKE_SUDO);
    chmodSync(join(dir, "sudo"), 0o755);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  afterEach(() => {
    vi.unstubAllEnvs();
    rmSync(join(dir, "argv"), { force: true });
    rmSync(join(dir, "attempts"), { force: true });
  });

  function host(sudoPassword: string | undefined, redactor = new Redactor()) {
    vi.stubEnv("PATH", `${dir}:${process.env.PATH}`);
    vi.stubEnv("FAKE_SUDO_DIR", dir);
    vi.stubEnv("FAKE_SUDO_PASSWORD", password);
    return new NonRootLocalHost({ redactor, sudoPassword });
  }

  it("answers sudo's own prompt, then sends the command's stdin, and strips the prompt", async () => {
    const lines: string[] = [];
    const result = await host(password).exec("cat; echo done >&2", {
      sudo: true,
      stdin: "first\nsecond\n",
      onOutput: (line, stream) => lines.push(`${stream}: ${line}`),
    });
    expect(result).toEqual({ exitCode: 0, stdout: "first\nsecond\n", stderr: "done\n" });
    // Two pipes: their lines keep their own order, not one between the streams.
    expect(lines.filter((line) => line.startsWith("stdout"))).toEqual(["stdout: first", "stdout: second"]);
    expect(lines.filter((line) => line.startsWith("stderr"))).toEqual(["stderr: done"]);
    const argv = readFileSync(join(dir, "argv"), "utf8");
    expect(argv).toMatch(/^-S -p \[kubeforge-sudo-[0-9a-f]+\] -- setsid -w sh -c /);
    expect(argv).not.toContain(password);
  });

  it("sends a wrong password once and says sudo rejected it", async () => {
    const error = await host("wrong")
      .exec("true", { sudo: true })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RemoteCommandError);
    expect((error as Error).message).toBe(
      "localhost: `true` exited 1: sudo rejected the password for deploy",
    );
    expect(readFileSync(join(dir, "attempts"), "utf8")).toBe("1\n");
  });

  it("uses sudo -n without a password and explains the failure", async () => {
    const error = await host(undefined)
      .exec("true", { sudo: true })
      .catch((e: unknown) => e);
    expect((error as Error).message).toBe(
      "localhost: `true` exited 1: sudo needs a password for deploy and none was given: sudo: a password is required",
    );
    expect(readFileSync(join(dir, "argv"), "utf8")).toMatch(/^-n -- setsid /);
  });

  it("keeps the password out of errors and output", async () => {
    const redactor = new Redactor();
    const lines: string[] = [];
    const error = await host(password, redactor)
      .exec(`echo ${shellQuote(password)}; echo ${shellQuote(password)} >&2; exit 4`, {
        sudo: true,
        onOutput: (line) => lines.push(line),
      })
      .catch((e: unknown) => e);
    expect((error as RemoteCommandError).exitCode).toBe(4);
    expect((error as Error).message).not.toContain(password);
    expect((error as Error).message).toContain("[REDACTED]");
    expect(lines).toEqual(["[REDACTED]", "[REDACTED]"]);
  });

  it("does not use sudo for root", async () => {
    vi.stubEnv("PATH", `${dir}:${process.env.PATH}`);
    vi.stubEnv("FAKE_SUDO_DIR", dir);
    class RootHost extends LocalHost {
      override readonly user = "root";
    }
    const result = await new RootHost({ redactor: new Redactor() }).exec("echo hi", { sudo: true });
    expect(result.stdout).toBe("hi\n");
    expect(() => readFileSync(join(dir, "argv"))).toThrow(/ENOENT/);
  });
});
