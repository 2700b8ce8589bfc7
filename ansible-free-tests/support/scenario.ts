// What every scenario on lab hosts does the same way: run the built CLI with `--output json` and read
// its events, and run commands on a host over plain ssh as root.
import { join } from "node:path";
import { $ } from "zx";
import type { Lab } from "../../lab/testhosts.js";
import { kubeforgeCli, type ProcessRun } from "./cli.js";

export interface RunEvent {
  type: string;
  phase?: string;
  host?: string;
  description?: string;
  check?: string;
  status?: string;
  message?: string;
  changes?: Record<string, string[]>;
  error?: { kind: string; message: string };
}

export interface CliRun extends ProcessRun {
  events: RunEvent[];
}

export const show = (r: ProcessRun) => `exit ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;

export function parseEvents(stdout: string): RunEvent[] {
  return stdout
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as RunEvent);
}

/** The CLI in `work` with JSON events on stdout and the store under `stateDir` (default work/state). */
export async function cliIn(work: string, args: string[], stateDir = join(work, "state")): Promise<CliRun> {
  const run = await kubeforgeCli(["-o", "json", "--state-dir", stateDir, ...args], { cwd: work });
  return { ...run, events: parseEvents(run.stdout) };
}

/** Per host, the changes a run made (or would make), from its run.end event. */
export function changesOf(run: CliRun): Record<string, string[]> {
  const end = run.events.find((event) => event.type === "run.end");
  if (!end) throw new Error(`no run.end event:\n${show(run)}`);
  return end.changes ?? {};
}

const sh = $({ quiet: true, nothrow: true });

export function onHost(lab: Lab, host: string, command: string) {
  return sh`ssh -F ${lab.sshConfigPath} -o BatchMode=yes -l root ${host} ${command}`;
}

/** A command's stdout on a host; throws with its stderr when it fails. */
export async function must(lab: Lab, host: string, command: string): Promise<string> {
  const r = await onHost(lab, host, command);
  if (r.exitCode !== 0) throw new Error(`${host}: \`${command}\` exited ${r.exitCode}: ${r.stderr}`);
  return r.stdout;
}
