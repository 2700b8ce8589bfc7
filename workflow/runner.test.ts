import { describe, expect, it } from "vitest";
import { HostsError, InterruptedError, PhaseError } from "./errors.js";
import type { RunEvent } from "./events.js";
import type { HostPhase, Phase, Workflow } from "./phase.js";
import { runWorkflow } from "./runner.js";

interface Node {
  name: string;
  /** A fact: what a phase body would find on the host. */
  configured: boolean;
}

interface Data {
  nodes: Node[];
  applied: string[];
}

function setup(phases: Phase<Data, Node>[], names = ["cp1", "w1", "w2"]) {
  const data: Data = { nodes: names.map((name) => ({ name, configured: false })), applied: [] };
  const events: RunEvent[] = [];
  let clock = 0;
  const workflow: Workflow<Data, Node> = { command: "test", phases };
  const run = (
    options: {
      dryRun?: boolean;
      select?: string[];
      skip?: string[];
      concurrency?: number;
      signal?: AbortSignal;
    } = {},
  ) =>
    runWorkflow(workflow, {
      data,
      dryRun: options.dryRun ?? false,
      concurrency: options.concurrency ?? 30,
      select: options.select ?? [],
      skip: options.skip ?? [],
      emit: (event) => events.push(event),
      signal: options.signal ?? new AbortController().signal,
      now: () => (clock += 5),
    });
  return { data, events, run };
}

/** A per-host phase that converges: it changes only hosts whose fact says they need it. */
const configure: HostPhase<Data, Node> = {
  id: "configure",
  title: "Configure hosts",
  hosts: (data) => data.nodes.filter((node) => !node.configured),
  run: async (step) => {
    await step.change(`write config on ${step.host.name}`, async () => {
      step.host.configured = true;
      step.data.applied.push(step.host.name);
    });
  },
};

describe("runWorkflow", () => {
  it("fans out, records each change per host and ends with the list", async () => {
    const { data, events, run } = setup([configure]);
    const result = await run();
    expect(data.applied.sort()).toEqual(["cp1", "w1", "w2"]);
    expect(result.changes).toEqual({
      cp1: ["write config on cp1"],
      w1: ["write config on w1"],
      w2: ["write config on w2"],
    });
    expect(events.at(-1)).toMatchObject({ type: "run.end", status: "ok", changes: result.changes });
  });

  it("converges: a re-run decides from facts and changes nothing", async () => {
    const { events, run } = setup([configure]);
    await run();
    events.length = 0;
    const result = await run();
    expect(result.changes).toEqual({});
    expect(events.find((e) => e.type === "phase.start")).toMatchObject({ phase: "configure", hosts: [] });
  });

  it("under --dry-run describes every change, applies none, and still runs read-only work", async () => {
    let factsRead = 0;
    const facts: HostPhase<Data, Node> = {
      id: "facts",
      title: "Gather facts",
      hosts: (data) => data.nodes,
      run: async () => {
        factsRead++;
      },
    };
    const { data, events, run } = setup([facts, configure]);
    const result = await run({ dryRun: true });
    expect(factsRead).toBe(3);
    expect(data.applied).toEqual([]);
    expect(data.nodes.every((n) => !n.configured)).toBe(true);
    expect(result.changes.w1).toEqual(["write config on w1"]);
    const changes = events.filter((e) => e.type === "change");
    expect(changes).toHaveLength(3);
    expect(changes.every((e) => e.type === "change" && !e.applied)).toBe(true);
    expect(events.at(-1)).toMatchObject({ type: "run.end", dryRun: true, status: "ok" });
  });

  it("lets every host finish and reports all failures together", async () => {
    const finished: string[] = [];
    const flaky: HostPhase<Data, Node> = {
      id: "flaky",
      title: "Fail on workers",
      hosts: (data) => data.nodes,
      run: async ({ host }) => {
        await new Promise((resolve) => setTimeout(resolve, host.name === "cp1" ? 20 : 1));
        finished.push(host.name);
        if (host.name !== "cp1") throw new Error(`disk full on ${host.name}`);
      },
    };
    const after: Phase<Data, Node> = {
      id: "after",
      title: "Never reached",
      run: async () => expect.fail("ran"),
    };
    const { events, run } = setup([flaky, after]);
    const error = await run().catch((e: unknown) => e);
    expect(finished.sort()).toEqual(["cp1", "w1", "w2"]);
    expect(error).toBeInstanceOf(PhaseError);
    const cause = (error as PhaseError).cause;
    expect(cause).toBeInstanceOf(HostsError);
    expect((error as Error).message).toBe(
      "error execution phase flaky: failed on 2 of 3 hosts:\n- w1: disk full on w1\n- w2: disk full on w2",
    );
    const hostEnds = events.filter((e) => e.type === "host.end");
    expect(hostEnds.map((e) => e.type === "host.end" && [e.host, e.status]).sort()).toEqual([
      ["cp1", "ok"],
      ["w1", "failed"],
      ["w2", "failed"],
    ]);
    expect(events.some((e) => e.type === "phase.start" && e.phase === "after")).toBe(false);
    expect(events.at(-1)).toMatchObject({ type: "run.end", status: "failed", error: { kind: "PhaseError" } });
  });

  it("never runs more hosts at once than the concurrency limit", async () => {
    let running = 0;
    let peak = 0;
    const slow: HostPhase<Data, Node> = {
      id: "slow",
      title: "Slow",
      hosts: (data) => data.nodes,
      run: async () => {
        peak = Math.max(peak, ++running);
        await new Promise((resolve) => setTimeout(resolve, 5));
        running--;
      },
    };
    const { run } = setup([slow], ["a", "b", "c", "d", "e", "f", "g"]);
    await run({ concurrency: 2 });
    expect(peak).toBe(2);
  });

  it("runs a selected child alone, reports skipped phases, and skips by runIf", async () => {
    const ran: string[] = [];
    const body = (name: string) => async () => {
      ran.push(name);
    };
    const phases: Phase<Data, Node>[] = [
      { id: "preflight", title: "Preflight", run: body("preflight") },
      {
        id: "certs",
        title: "Certificates",
        run: body("certs"),
        phases: [
          { id: "ca", title: "CA", run: body("certs/ca") },
          { id: "apiserver", title: "API server", run: body("certs/apiserver") },
          { id: "etcd", title: "etcd", runIf: () => false, run: body("certs/etcd") },
        ],
      },
    ];
    const { events, run } = setup(phases);
    await run({ select: ["certs"], skip: ["certs/ca"] });
    expect(ran).toEqual(["certs", "certs/apiserver"]);
    const ends = events
      .filter((e) => e.type === "phase.end")
      .map((e) => e.type === "phase.end" && [e.phase, e.status, e.reason]);
    expect(ends).toEqual([
      ["certs/ca", "skipped", "--skip-phases"],
      ["certs/apiserver", "ok", undefined],
      ["certs/etcd", "skipped", "nothing to do"],
      ["certs", "ok", undefined],
    ]);
    ran.length = 0;
    await run({ select: ["certs/apiserver"] });
    expect(ran).toEqual(["certs/apiserver"]);
  });

  it("stops at an interrupt: hosts not started are cancelled, the run ends interrupted", async () => {
    const controller = new AbortController();
    const interrupting: HostPhase<Data, Node> = {
      id: "work",
      title: "Work",
      hosts: (data) => data.nodes,
      run: async ({ host }) => {
        if (host.name === "cp1") controller.abort();
      },
    };
    const { events, run } = setup([interrupting]);
    const error = await run({ signal: controller.signal, concurrency: 1 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InterruptedError);
    const statuses = events
      .filter((e) => e.type === "host.end")
      .map((e) => e.type === "host.end" && [e.host, e.status]);
    expect(statuses).toEqual([
      ["cp1", "ok"],
      ["w1", "cancelled"],
      ["w2", "cancelled"],
    ]);
    expect(events.at(-1)).toMatchObject({ type: "run.end", status: "interrupted" });
  });

  it("emits a well-formed event stream", async () => {
    const local: Phase<Data, Node> = {
      id: "local",
      title: "Local work",
      run: async (step) => {
        step.log("hello");
        await step.change("write ~/.kube/config", async () => {});
      },
    };
    const { events, run } = setup([local, configure], ["cp1"]);
    await run();
    expect(events).toEqual([
      {
        type: "run.start",
        command: "test",
        dryRun: false,
        phases: [
          { path: "local", title: "Local work", depth: 0 },
          { path: "configure", title: "Configure hosts", depth: 0 },
        ],
      },
      { type: "phase.start", phase: "local", title: "Local work" },
      { type: "log", phase: "local", level: "info", message: "hello" },
      {
        type: "change",
        phase: "local",
        host: "workstation",
        description: "write ~/.kube/config",
        applied: true,
      },
      { type: "phase.end", phase: "local", status: "ok", durationMs: 5 },
      { type: "phase.start", phase: "configure", title: "Configure hosts", hosts: ["cp1"] },
      { type: "host.start", phase: "configure", host: "cp1" },
      { type: "change", phase: "configure", host: "cp1", description: "write config on cp1", applied: true },
      { type: "host.end", phase: "configure", host: "cp1", status: "ok", durationMs: 5 },
      { type: "phase.end", phase: "configure", status: "ok", durationMs: 15 },
      {
        type: "run.end",
        command: "test",
        status: "ok",
        durationMs: 35,
        dryRun: false,
        changes: { workstation: ["write ~/.kube/config"], cp1: ["write config on cp1"] },
      },
    ]);
  });
});
