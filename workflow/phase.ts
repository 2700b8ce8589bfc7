// A command's workflow is one ordered tree of phases (kubeadm's `init.go`, k0sctl's `apply.go`).
// The same tree yields `kubeforge <cmd> phase <path>`, `--skip-phases` and the help text.
import { InternalError } from "./errors.js";

/** What a per-host phase fans out over; `name` labels progress lines and errors. */
export interface Target {
  readonly name: string;
}

/** What a phase body gets: the command's data, the dry-run gate and progress output. */
export interface Step<D> {
  readonly data: D;
  /** The phase path, e.g. `certs/apiserver`. */
  readonly phase: string;
  readonly dryRun: boolean;
  readonly signal: AbortSignal;
  /**
   * The one gate every mutation passes: described in words, recorded, and under --dry-run not
   * applied (the result is then undefined). Read-only work runs directly, also in a dry run.
   */
  change<T>(description: string, apply: () => Promise<T>): Promise<T | undefined>;
  /** A progress line under this phase (and host). */
  log(message: string): void;
  warn(message: string): void;
  /** Reports one preflight check's outcome, as an event of its own. */
  check(result: { host: string; check: string; status: string; message: string }): void;
}

export interface HostStep<D, H extends Target> extends Step<D> {
  readonly host: H;
}

interface PhaseCommon<D, H extends Target> {
  /** Stable kebab-case id; kubeadm's name where kubeadm has the phase. */
  id: string;
  /** Short imperative title in sentence case. */
  title: string;
  /** Longer text for `<cmd> phase <path> --help`. */
  help?: string;
  phases?: readonly Phase<D, H>[];
  /** Decided from facts right before the phase would run, so a re-run converges. */
  runIf?: (data: D) => boolean | Promise<boolean>;
  /**
   * Read-only groundwork the other phases stand on (connect, facts, input checks): it runs whenever
   * any phase runs, also under `phase <path>`, and cannot be skipped.
   */
  prerequisite?: true;
}

/** Runs once, on the workstation (or only groups its children when it has no `run`). */
export interface LocalPhase<D, H extends Target = Target> extends PhaseCommon<D, H> {
  hosts?: undefined;
  run?: (step: Step<D>) => Promise<void>;
}

/** Runs on every host `hosts` returns, at most `concurrency` at once; every host runs to the end. */
export interface HostPhase<D, H extends Target> extends PhaseCommon<D, H> {
  /** Evaluated right before the phase runs: filter on facts gathered by earlier phases. */
  hosts: (data: D) => readonly H[] | Promise<readonly H[]>;
  run: (step: HostStep<D, H>) => Promise<void>;
}

export type Phase<D, H extends Target = Target> = LocalPhase<D, H> | HostPhase<D, H>;

export interface Workflow<D, H extends Target = Target> {
  /** The command, e.g. `init`. */
  command: string;
  phases: readonly Phase<D, H>[];
}

export interface FlatPhase<D, H extends Target> {
  path: string;
  depth: number;
  phase: Phase<D, H>;
}

const ID = /^[a-z0-9]+(-[a-z0-9]+)*$/;

/** Depth-first list of every phase with its `/`-joined path; checks ids once. */
export function flattenPhases<D, H extends Target>(
  phases: readonly Phase<D, H>[],
  parent = "",
  depth = 0,
): FlatPhase<D, H>[] {
  const seen = new Set<string>();
  return phases.flatMap((phase) => {
    if (!ID.test(phase.id)) throw new InternalError(`phase id "${phase.id}" is not kebab-case`);
    if (seen.has(phase.id))
      throw new InternalError(`phase id "${phase.id}" appears twice under "${parent || "/"}"`);
    seen.add(phase.id);
    const path = parent ? `${parent}/${phase.id}` : phase.id;
    return [{ path, depth, phase }, ...flattenPhases(phase.phases ?? [], path, depth + 1)];
  });
}

/** The indented phase list shown in `<cmd> --help`, as kubeadm prints it. */
export function describePhases<D, H extends Target>(phases: readonly Phase<D, H>[]): string {
  const rows = flattenPhases(phases).map(({ depth, phase }) => ({
    name: `${"  ".repeat(depth)}${phase.id}`,
    title: phase.title,
  }));
  const width = Math.max(...rows.map(({ name }) => name.length));
  return rows.map(({ name, title }) => `  ${name.padEnd(width + 2)}${title}`).join("\n");
}
