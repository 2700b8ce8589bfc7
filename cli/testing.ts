// Runs the CLI in-process for tests: its own temp directory as cwd and home, captured streams.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { onTestFinished } from "vitest";
import type { CliIo, Output } from "./io.js";
import { type CommandInstaller, runCli } from "./program.js";

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

class Capture implements Output {
  text = "";
  constructor(readonly isTTY = false) {}
  write(chunk: string): boolean {
    this.text += chunk;
    return true;
  }
}

/** The minimal cluster file (one control plane, one worker), at `version`. */
export function minimalClusterFile(version = "v1.30.4"): string {
  return `apiVersion: kubeforge.dev/v1alpha1
kind: Cluster
metadata: {name: demo}
spec:
  ssh: {user: root, keyPath: ./id_ed25519, knownHostsPath: ./known_hosts}
  kubernetes: {version: ${version}}
  hosts:
    - {name: cp1, address: 198.18.0.11, role: control-plane}
    - {name: w1, address: 198.18.0.12, role: worker}
`;
}

/** A temp directory holding `files`, removed when the test ends. */
export function testDir(files: Record<string, string> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), "kubeforge-test-"));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
  return dir;
}

export async function kubeforge(
  argv: string[],
  options: {
    cwd: string;
    env?: Record<string, string>;
    signal?: AbortSignal;
    stderrIsTTY?: boolean;
    commands?: readonly CommandInstaller[];
  },
): Promise<CliRun> {
  const stdout = new Capture();
  const stderr = new Capture(options.stderrIsTTY);
  const io: CliIo = {
    env: options.env ?? {},
    cwd: options.cwd,
    homeDir: join(options.cwd, "home"),
    stdout,
    stderr,
    signal: options.signal ?? new AbortController().signal,
    version: "0.0.0-test",
  };
  const code = await runCli(argv, io, options.commands);
  return { code, stdout: stdout.text, stderr: stderr.text };
}
