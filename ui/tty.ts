// The listr2 tree on a terminal: phase → hosts, live. listr2 only displays; the runner decides and
// aggregates. Each listr task waits for the runner's events about its phase or host.
import {
  DefaultRenderer,
  Listr,
  ListrLogger,
  type ListrTask,
  type ListrTaskWrapper,
  ProcessOutput,
} from "listr2";
import type { EventSink, PlannedPhase, RunEvent } from "../workflow/events.js";

type PhaseStart = Extract<RunEvent, { type: "phase.start" }>;
type PhaseEnd = Extract<RunEvent, { type: "phase.end" }>;
type HostEnd = Extract<RunEvent, { type: "host.end" }>;
// biome-ignore lint/suspicious/noExplicitAny: listr2's wrapper type is generic over renderers we do not name.
type TaskHandle = ListrTaskWrapper<unknown, any, any>;

/** Resolves once; later settles are ignored (the run's end settles whatever is still open). */
class Latch<T> {
  readonly promise: Promise<T | undefined>;
  #resolve!: (value: T | undefined) => void;
  constructor() {
    this.promise = new Promise((resolve) => {
      this.#resolve = resolve;
    });
  }
  settle(value: T | undefined): void {
    this.#resolve(value);
  }
}

class Latches<T> {
  #map = new Map<string, Latch<T>>();
  get(key: string): Latch<T> {
    let latch = this.#map.get(key);
    if (!latch) {
      latch = new Latch<T>();
      this.#map.set(key, latch);
    }
    return latch;
  }
  settleAll(): void {
    for (const latch of this.#map.values()) latch.settle(undefined);
  }
}

/**
 * listr2 picks its tree renderer only when *stdout* is a terminal; ours draws on stderr (stdout
 * stays for results), so the caller's own check on stderr decides instead.
 */
class StderrTreeRenderer extends DefaultRenderer {
  static override nonTTY = true;
}

export interface TtyRenderer {
  sink: EventSink;
  /** Resolves when the tree has drawn its last frame. */
  finished(): Promise<void>;
}

export function ttyRenderer(stream: NodeJS.WriteStream): TtyRenderer {
  const starts = new Latches<PhaseStart>();
  const ends = new Latches<PhaseEnd>();
  const hostEnds = new Latches<HostEnd>();
  const handles = new Map<string, TaskHandle>();
  let drawing: Promise<unknown> = Promise.resolve();

  const hostTask = (phase: string, host: string): ListrTask => ({
    title: host,
    task: async (_context, task) => {
      handles.set(`${phase}\0${host}`, task);
      const end = await hostEnds.get(`${phase}\0${host}`).promise;
      if (!end || end.status === "cancelled") task.skip(`${host}: cancelled`);
      else if (end.status === "failed") throw new Error(`${host}: ${end.error?.message ?? "failed"}`);
    },
  });

  const phaseTask = (phase: PlannedPhase, children: PlannedPhase[]): ListrTask => ({
    title: phase.title,
    task: async (_context, task) => {
      handles.set(phase.path, task);
      const start = await starts.get(phase.path).promise;
      if (!start) {
        const end = await ends.get(phase.path).promise;
        return task.skip(`${phase.title}: ${end?.reason ?? "not run"}`);
      }
      const direct = children.filter((child) => child.depth === phase.depth + 1);
      if (start.hosts && start.hosts.length > 0) {
        return task.newListr(
          start.hosts.map((host) => hostTask(phase.path, host)),
          { concurrent: true, exitOnError: false },
        );
      }
      if (direct.length > 0) {
        return task.newListr(treeTasks(children), { concurrent: false, exitOnError: true });
      }
      const end = await ends.get(phase.path).promise;
      if (!end || end.status === "cancelled") {
        task.skip(`${phase.title}: not run`);
      } else if (end.status === "failed") {
        throw new Error(end.error?.message ?? "failed");
      }
      return undefined;
    },
  });

  /** Tasks for the phases at the top of `planned`, each with its descendants. */
  const treeTasks = (planned: PlannedPhase[]): ListrTask[] => {
    const depth = Math.min(...planned.map((p) => p.depth));
    return planned.flatMap((phase, index) => {
      if (phase.depth !== depth) return [];
      const rest = planned.slice(index + 1);
      const stop = rest.findIndex((p) => p.depth <= depth);
      return [phaseTask(phase, stop === -1 ? rest : rest.slice(0, stop))];
    });
  };

  const sink: EventSink = (event) => {
    switch (event.type) {
      case "run.start": {
        if (event.phases.length === 0) return;
        const listr = new Listr(treeTasks(event.phases), {
          concurrent: false,
          exitOnError: true,
          registerSignalListeners: false,
          renderer: StderrTreeRenderer,
          rendererOptions: {
            collapseSubtasks: false,
            collapseErrors: false,
            logger: new ListrLogger({
              useIcons: true,
              processOutput: new ProcessOutput(stream, stream, { dump: [] }),
            }),
          },
        });
        drawing = listr.run().catch(() => {});
        return;
      }
      case "phase.start":
        starts.get(event.phase).settle(event);
        return;
      case "phase.end":
        ends.get(event.phase).settle(event);
        // A phase that ends without having started was skipped.
        starts.get(event.phase).settle(undefined);
        return;
      case "host.end":
        hostEnds.get(`${event.phase}\0${event.host}`).settle(event);
        return;
      case "change":
      case "log": {
        const handle =
          handles.get(event.host ? `${event.phase}\0${event.host}` : event.phase) ?? handles.get(event.phase);
        if (!handle) return;
        handle.output =
          event.type === "change" ? `${event.applied ? "" : "would "}${event.description}` : event.message;
        return;
      }
      case "run.end":
        starts.settleAll();
        ends.settleAll();
        hostEnds.settleAll();
        return;
      case "host.start":
      case "check":
        return;
    }
  };
  return { sink, finished: () => drawing.then(() => undefined) };
}
