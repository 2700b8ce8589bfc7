import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError } from "../workflow/errors.js";
import { Redactor } from "../workflow/redact.js";
import { Secrets } from "./secrets.js";

function secrets(env: Record<string, string> = {}, prompt?: (question: string) => Promise<string>) {
  const redactor = new Redactor();
  return {
    redactor,
    secrets: new Secrets({ env, redactor, file: "cluster.yaml", ...(prompt && { prompt }) }),
  };
}

describe("Secrets", () => {
  it("reads an environment variable and hides its value from then on", async () => {
    const { redactor, secrets: s } = secrets({ SUDO_PW: "pw-1" });
    expect(await s.resolve({ env: "SUDO_PW" }, "sudo password of admin", "spec.ssh.sudo.password")).toBe(
      "pw-1",
    );
    expect(redactor.redact("typed pw-1")).toBe("typed [REDACTED]");
  });

  it("reads a file without its trailing newline", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kubeforge-secret-"));
    writeFileSync(join(dir, "pw"), "pw-2\n");
    const { secrets: s } = secrets();
    expect(await s.resolve({ file: join(dir, "pw") }, "sudo password", "spec.ssh.sudo.password")).toBe(
      "pw-2",
    );
  });

  it("asks once per reference, however many hosts share it", async () => {
    const questions: string[] = [];
    const { secrets: s } = secrets({}, async (question) => {
      questions.push(question);
      return "pw-3";
    });
    const ref = { prompt: true };
    const answers = await Promise.all(
      [1, 2, 3].map(() => s.resolve(ref, "sudo password of admin", "spec.ssh.sudo.password")),
    );
    expect(answers).toEqual(["pw-3", "pw-3", "pw-3"]);
    expect(questions).toEqual(["sudo password of admin:"]);
  });

  it.each([
    [
      { env: "MISSING" },
      undefined,
      "environment variable MISSING is not set (it should hold the sudo password)",
    ],
    [
      { file: "/nonexistent/pw" },
      undefined,
      "cannot read /nonexistent/pw (it should hold the sudo password)",
    ],
    [
      { prompt: true },
      undefined,
      "asks for the sudo password on a terminal, but there is none; use {env: VAR} or {file: PATH}",
    ],
  ])("fails as bad input naming the path and the fix: %j", async (ref, prompt, message) => {
    const { secrets: s } = secrets({}, prompt);
    const error = await s
      .resolve(ref, "sudo password", "spec.hosts[1].ssh.sudo.password")
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).issues[0]).toMatchObject({
      file: "cluster.yaml",
      path: "spec.hosts[1].ssh.sudo.password",
    });
    expect((error as ConfigError).issues[0]?.message).toContain(message);
  });
});
