// Runs a workflow: walks the phase tree in order, decides each phase just before it runs, fans
// per-host phases out, gates every mutation through `change`, and reports everything as events.
// The first failed phase ends the run (as kubeadm), after all of its hosts have finished.
import { HostsError, InterruptedError, PhaseError } from "./errors.js";
import {
  type EventSink,
  errorInfo,
  type PlannedPhase,
  type RunEvent,
  type Status,
  WORKSTATION,
} from "./events.js";
import { fanOut } from "./fanout.js";
import { flattenPhases, type HostPhase, type Phase, type Step, type Target, type Workflow } from "./phase.js";
import { isVisited, type Selection, selectPhases } from "./select.js";

export interface RunOptions<D> {
  data: D;
  /** Phase paths given to `<cmd> phase <path>`; empty runs all. */
  select?: readonly string[];
  skip?: readonly string[];
  dryRun: boolean;
  concurrency: number;
  emit: EventSink;
  signal: AbortSignal;
  /** Milliseconds; injectable so tests see stable durations. */
  now?: () => number;
}

export interface RunResult {
  /** Per target, the changes made (or, in a dry run, that would be made). */
  changes: Record<string, string[]>;
}

/** Throws PhaseError (cause: the phase's error or a HostsError) or InterruptedError. */
export async function runWorkflow<D, H extends Target>(
  workflow: Workflow<D, H>,
  options: RunOptions<D>,
): Promise<RunResult> {
  const flat = flattenPhases(workflow.phases);
  const selection = selectPhases(flat, options.select ?? [], options.skip ?? []);
  const run = new Run<D, H>(options, selection);
  const planned: PlannedPhase[] = flat
    .filter(({ path }) => isVisited(selection, path))
    .map(({ path, phase, depth }) => ({ path, title: phase.title, depth }));
  options.emit({ type: "run.start", command: workflow.command, dryRun: options.dryRun, phases: planned });
  const started = run.now();
  try {
    await run.phases(workflow.phases, "");
    run.end(workflow.command, "ok", started);
    return { changes: run.changes };
  } catch (error) {
    run.end(workflow.command, error instanceof InterruptedError ? "interrupted" : "failed", started, error);
    throw error;
  }
}

class Run<D, H extends Target> {
  readonly changes: Record<string, string[]> = {};
  readonly now: () => number;

  constructor(
    private readonly options: RunOptions<D>,
    private readonly selection: Selection,
  ) {
    this.now = options.now ?? (() => performance.now());
  }

  end(command: string, status: "ok" | "failed" | "interrupted", started: number, error?: unknown): void {
    this.options.emit({
      type: "run.end",
      command,
      status,
      durationMs: Math.round(this.now() - started),
      dryRun: this.options.dryRun,
      changes: this.changes,
      ...(error !== undefined && { error: errorInfo(error) }),
    });
  }

  async phases(phases: readonly Phase<D, H>[], parent: string): Promise<void> {
    for (const phase of phases) {
      const path = parent ? `${parent}/${phase.id}` : phase.id;
      if (isVisited(this.selection, path)) await this.phase(phase, path);
    }
  }

  private async phase(phase: Phase<D, H>, path: string): Promise<void> {
    const { emit, signal } = this.options;
    if (signal.aborted) throw new InterruptedError({ cause: signal.reason });
    const started = this.now();
    const end = (status: Status, extra: Partial<Extract<RunEvent, { type: "phase.end" }>> = {}) =>
      emit({
        type: "phase.end",
        phase: path,
        status,
        durationMs: Math.round(this.now() - started),
        ...extra,
      });

    // A skipped phase reports only its end: it never started.
    if (this.selection.skipped.has(path)) {
      end("skipped", { reason: "--skip-phases" });
      return;
    }
    const runsItself = this.selection.runs.has(path);
    try {
      if (phase.runIf && !(await phase.runIf(this.options.data))) {
        end("skipped", { reason: "nothing to do" });
        return;
      }
      if (phase.hosts !== undefined && runsItself) {
        await this.hostPhase(phase, path);
      } else {
        emit({ type: "phase.start", phase: path, title: phase.title });
        if (phase.hosts === undefined && runsItself && phase.run)
          await phase.run(this.step(path, WORKSTATION));
      }
      await this.phases(phase.phases ?? [], path);
    } catch (error) {
      const interrupted = error instanceof InterruptedError;
      end(interrupted ? "cancelled" : "failed", { error: errorInfo(error) });
      if (interrupted || error instanceof PhaseError) throw error;
      throw new PhaseError(path, { cause: error });
    }
    end("ok");
  }

  private async hostPhase(phase: HostPhase<D, H>, path: string): Promise<void> {
    const { emit, signal, concurrency, data } = this.options;
    const hosts = await phase.hosts(data);
    emit({ type: "phase.start", phase: path, title: phase.title, hosts: hosts.map((host) => host.name) });
    const { failures, cancelled } = await fanOut(hosts, concurrency, signal, async (host) => {
      const hostStarted = this.now();
      const hostEnd = (status: Status, error?: unknown) =>
        emit({
          type: "host.end",
          phase: path,
          host: host.name,
          status,
          durationMs: Math.round(this.now() - hostStarted),
          ...(error !== undefined && { error: errorInfo(error) }),
        });
      emit({ type: "host.start", phase: path, host: host.name });
      try {
        await phase.run({ ...this.step(path, host.name), host });
      } catch (error) {
        hostEnd(signal.aborted ? "cancelled" : "failed", error);
        throw error;
      }
      hostEnd("ok");
    });
    for (const host of cancelled) {
      emit({ type: "host.end", phase: path, host: host.name, status: "cancelled", durationMs: 0 });
    }
    if (signal.aborted) throw new InterruptedError({ cause: signal.reason });
    if (failures.size > 0) throw new HostsError(failures, hosts.length);
  }

  private step(phase: string, target: string): Step<D> {
    const { data, dryRun, signal, emit } = this.options;
    const host = target === WORKSTATION ? undefined : target;
    return {
      data,
      phase,
      dryRun,
      signal,
      change: async (description, apply) => {
        if (signal.aborted) throw new InterruptedError({ cause: signal.reason });
        const result = dryRun ? undefined : await apply();
        this.changes[target] = [...(this.changes[target] ?? []), description];
        emit({ type: "change", phase, host: target, description, applied: !dryRun });
        return result;
      },
      log: (message) => emit({ type: "log", phase, level: "info", message, ...(host && { host }) }),
      warn: (message) => emit({ type: "log", phase, level: "warn", message, ...(host && { host }) }),
      check: (result) => emit({ type: "check", phase, ...result }),
    };
  }
}
