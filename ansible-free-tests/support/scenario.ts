// What every scenario on lab hosts does the same way: run the built CLI with `--output json` and read
// its events, and run commands on a host over plain ssh as root.
import { join } from "node:path";
import { $ } from "zx";
import type { Lab } from "../../lab/testhosts.js";
import { kubeforgeCli, type ProcessRun } from "./cli.js";

export interface RunEvent {
  /** The event format's version: 1. */
  v?: number;
  type: string;
  phase?: string;
  host?: string;
  description?: string;
  check?: string;
  status?: string;
  message?: string;
  /** On a change event: made, not only planned. */
  applied?: boolean;
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

/**
 * Every line of a `--output json` run's stdout as an event: stdout holds nothing else, so a line that
 * is not JSON, or an event of another version than 1, throws with the output.
 */
export function strictEvents(run: ProcessRun): RunEvent[] {
  try {
    const events = run.stdout
      .split("\n")
      .filter(Boolean)
      .map((line) => JSON.parse(line) as RunEvent);
    for (const event of events) if (event.v !== 1) throw new Error(`event version ${event.v}`);
    return events;
  } catch (error) {
    throw new Error(`stdout is not JSON lines (${String(error)}):\n${run.stdout}\nstderr:\n${run.stderr}`);
  }
}

export interface CliOptions {
  /** Added to the CLI's environment (PATH and HOME only otherwise). */
  env?: Record<string, string>;
  /** `text`: the output for people, and no events. Default `json`. */
  output?: "json" | "text";
  /** Hold stdout to nothing but events (`strictEvents`) instead of picking out the lines that are. */
  strict?: boolean;
}

/** The CLI in `work` with JSON events on stdout and the store under `stateDir` (default work/state). */
export async function cliIn(
  work: string,
  args: string[],
  stateDir = join(work, "state"),
  options: CliOptions = {},
): Promise<CliRun> {
  const output = options.output ?? "json";
  const run = await kubeforgeCli(["-o", output, "--state-dir", stateDir, ...args], {
    cwd: work,
    env: options.env,
  });
  if (output === "text") return { ...run, events: [] };
  return { ...run, events: options.strict ? strictEvents(run) : parseEvents(run.stdout) };
}

/** Per host, the changes a run made (or would make), from its run.end event. */
export function changesOf(run: CliRun): Record<string, string[]> {
  const end = run.events.find((event) => event.type === "run.end");
  if (!end) throw new Error(`no run.end event:\n${show(run)}`);
  return end.changes ?? {};
}

const sh = $({ quiet: true, nothrow: true });

/** `command` on `host` as root over the lab's ssh_config; `input` on its stdin. */
export function onHost(lab: Lab, host: string, command: string, input?: string) {
  const ssh = input === undefined ? sh : $({ quiet: true, nothrow: true, input });
  return ssh`ssh -F ${lab.sshConfigPath} -o BatchMode=yes -l root ${host} ${command}`;
}

/** A command's stdout on a host; throws with its stderr when it fails. */
export async function must(lab: Lab, host: string, command: string, input?: string): Promise<string> {
  const r = await onHost(lab, host, command, input);
  if (r.exitCode !== 0) throw new Error(`${host}: \`${command}\` exited ${r.exitCode}: ${r.stderr}`);
  return r.stdout;
}
