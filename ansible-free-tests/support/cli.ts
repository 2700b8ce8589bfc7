// The built CLI as a separate process (`node bin/kubeforge.js …`), so ESM and packaging problems show,
// and a build step that runs only when a source file is newer than its output.
import { spawn } from "node:child_process";
import { type Dirent, readdirSync, statSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { $ } from "zx";

const twoUp = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
/** The repository: two levels above this file, or three when it runs built (a bench, from dist/). */
export const ROOT = basename(twoUp) === "dist" ? dirname(twoUp) : twoUp;
export const BIN = join(ROOT, "bin", "kubeforge.js");

export interface ProcessRun {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

const SOURCE_DIRS = [
  "cli",
  "config",
  "workflow",
  "ui",
  "hosts",
  "facts",
  "preflight",
  "lab",
  "phases",
  "certs",
  "node",
  "templates",
  "artifacts",
  "api",
];

/** Builds dist/ when a source file is newer than its output (`npm test` has built already). */
export async function ensureBuilt(): Promise<void> {
  const stale = (dir: string): boolean => {
    let entries: Dirent[];
    try {
      entries = readdirSync(join(ROOT, dir), { withFileTypes: true });
    } catch {
      return false; // a directory that does not exist yet (certs/ before the generator lands)
    }
    return entries.some((entry) => {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) return stale(path);
      if (!entry.name.endsWith(".ts") || entry.name.endsWith(".d.ts")) return false;
      const out = join(ROOT, "dist", path.replace(/\.ts$/, ".js"));
      try {
        return statSync(out).mtimeMs < statSync(join(ROOT, path)).mtimeMs;
      } catch {
        return true;
      }
    });
  };
  if (!SOURCE_DIRS.some((dir) => stale(dir))) return;
  const build = await $({ quiet: true, nothrow: true, cwd: ROOT })`npm run build`;
  if (build.exitCode !== 0) throw new Error(`npm run build failed:\n${build.stdout}${build.stderr}`);
}

/** Runs a program with a clean environment (PATH and HOME only, plus `env`) and no terminal. */
export function run(
  command: string,
  args: readonly string[],
  options: { cwd: string; env?: Record<string, string>; home?: string },
): Promise<ProcessRun> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: {
        PATH: process.env.PATH ?? "/usr/bin:/bin",
        HOME: options.home ?? join(options.cwd, "home"),
        ...options.env,
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.once("error", reject);
    child.once("close", (code) => resolve({ code, stdout, stderr, ms: performance.now() - started }));
  });
}

/** `node bin/kubeforge.js args…`. */
export function kubeforgeCli(
  args: readonly string[],
  options: { cwd: string; env?: Record<string, string> },
): Promise<ProcessRun> {
  return run(process.execPath, [BIN, ...args], options);
}
