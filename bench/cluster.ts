// Cluster: `kubeforge apply` on 3 lab hosts (1 control plane, 2 workers), wall time per phase from the
// JSON events (phase.end's durationMs) of the first apply, and the no-op re-run on the same hosts
// (goal ≤ 5 s), with the API writes each run made (a no-op re-run must make none). Needs root (it
// boots its own lab instance, bridge kfbrk0 on 198.18.28.0/24, and removes it at the end, also on
// failure or Ctrl-C), `apt-get install -y time`. Run: npm run build && node dist/bench/cluster.js [no-op runs]
//
// STAND-INS: the Kubernetes server binaries cannot be downloaded here, so the API server, the kubelets
// and the controllers are those of ansible-free-tests/support/ (stand-in-cluster.ts, bundle-dir.ts):
// the recording fake API server on this machine behind the control plane's :6443, a serving stand-in
// kubelet from the bundle, and a registrar for registration, TLS bootstrap and the add-on controllers.
// Everything kubeforge does to the hosts and through the API is real; the first apply's wall time
// excludes real image pulls, container starts and a real API server's start-up, so the no-op figure is
// the meaningful one. There is no peer: kubeadm cannot run here.
import { mkdtemp, rm } from "node:fs/promises";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { $ } from "zx";
import { cliIn } from "../ansible-free-tests/support/scenario.js";
import { type StandIns, standInCluster } from "../ansible-free-tests/support/stand-in-cluster.js";
import type { RecordedWrite } from "../api/fake-apiserver.js";
import { labDown, labUp } from "../lab/testhosts.js";
import { median, requireGnuTime, type Sample, Stopwatch } from "./measure.js";

const noopRuns = Number(process.argv[2] ?? 3);
const HOSTS = 3;
const INSTANCE = { bridge: "kfbrk0", subnet: "198.18.28" };
const VERSION = "v1.30.14";
const CLUSTER = "bench";
const STAND_IN_PORT = 16444;
const NOOP_GOAL_MS = 5000;
/** The lab hosts are containers: the kubelet's vm and kernel sysctls belong to this machine, which the bench does not change. */
const IGNORED_CHECKS = "KubeletKernelSettings";
const bin = fileURLToPath(new URL("../../bin/kubeforge.js", import.meta.url));

const stopwatch = new Stopwatch(`tearing down ${INSTANCE.bridge}`);
const log = (line: string) => process.stderr.write(`${line}\n`);
const _run = $({ quiet: true });

interface PhaseTime {
  path: string;
  durationMs: number;
  status: string;
}

interface ApplyRun {
  sample: Sample;
  /** Top-level phases and init/*, join/* children, in the order run.start planned them. */
  phases: PhaseTime[];
  /** run.end's durationMs: the workflow, without the process start-up and config loading before it. */
  runMs: number;
  /** Changes reported in run.end, over all targets. */
  changes: number;
  writes: RecordedWrite[];
}

/** Shown in the table: top-level phases and the children of init and join. */
const shown = (path: string) => !path.includes("/") || /^(init|join)\/[^/]+$/.test(path);

/** One `kubeforge -o json apply`, timed; the fake API server's records are cleared first, so `writes` are this run's. */
async function apply(
  clusterFile: string,
  env: NodeJS.ProcessEnv,
  timeFile: string,
  standIns: StandIns,
): Promise<ApplyRun> {
  standIns.fake.clearRecords();
  const sample = await stopwatch.time(
    [
      process.execPath,
      bin,
      "-o",
      "json",
      "apply",
      "-f",
      clusterFile,
      "--ignore-preflight-errors",
      IGNORED_CHECKS,
    ],
    env,
    timeFile,
  );
  const writes = standIns.fake.writes();
  let planned: string[] = [];
  const ends = new Map<string, PhaseTime>();
  let runMs = Number.NaN;
  let changes = 0;
  for (const line of sample.stdout.split("\n")) {
    if (!line.trim()) continue;
    const event = JSON.parse(line) as {
      type: string;
      phase?: string;
      phases?: Array<{ path: string }>;
      status?: string;
      durationMs?: number;
      changes?: Record<string, string[]>;
    };
    if (event.type === "run.start") planned = (event.phases ?? []).map((p) => p.path);
    if (event.type === "phase.end" && event.phase)
      ends.set(event.phase, {
        path: event.phase,
        durationMs: event.durationMs ?? Number.NaN,
        status: event.status ?? "?",
      });
    if (event.type === "run.end") {
      runMs = event.durationMs ?? Number.NaN;
      changes = Object.values(event.changes ?? {}).reduce((sum, list) => sum + list.length, 0);
    }
  }
  const phases = planned
    .filter(shown)
    .map((path) => ends.get(path) ?? { path, durationMs: Number.NaN, status: "not run" });
  return { sample, phases, runMs, changes, writes };
}

function writesSummary(writes: readonly RecordedWrite[]): string {
  const counts = new Map<string, number>();
  for (const write of writes) {
    const key = `${write.verb} ${write.kind}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts.entries()].map(([key, n]) => `${n} ${key}`).join(", ") || "none";
}

function report(first: ApplyRun, noops: ApplyRun[], startLoad: number, elapsedMs: number): string {
  const pad = (text: string | number, width: number) => String(text).padStart(width);
  const ms = (value: number) => (Number.isNaN(value) ? "—" : value.toFixed(0));
  const sec = (value: number) => (Number.isNaN(value) ? "—" : `${(value / 1000).toFixed(2)} s`);
  const noopWall = median(noops.map((r) => r.sample.wallMs));
  const noopRunMs = median(noops.map((r) => r.runMs));
  const noopWrites = noops.map((r) => r.writes.length);
  const noopPhase = (path: string) =>
    median(noops.map((r) => r.phases.find((p) => p.path === path)?.durationMs ?? Number.NaN));
  const lines = [
    `cluster: kubeforge apply on ${HOSTS} lab hosts (1 control plane, ${HOSTS - 1} workers), Kubernetes ${VERSION}, then ${noopRuns} no-op re-run(s), medians (${process.version}; ${availableParallelism()} CPUs shared by the tool, the hosts and everything else on this machine)`,
    "  STAND-INS: the API server (the recording fake, on this machine behind the control plane's :6443), the",
    "  kubelets (a serving stand-in from the bundle) and the controllers (a registrar: registration, TLS bootstrap,",
    "  CSR signing, node IPAM, kube-proxy/CoreDNS pods) are not the real ones. Everything kubeforge does to the",
    "  hosts and through the API is real, but the first apply's wall time excludes real image pulls, container",
    "  starts and a real API server's start-up: the no-op re-run is the meaningful figure.",
    "  peer: none. kubeadm cannot run here (no Kubernetes server binaries), so no peer is measured.",
    "",
    `  ${"phase (from the JSON events' phase.end durationMs)".padEnd(52)}${pad("first, ms", 11)}${pad("status", 9)}${pad("no-op, ms", 11)}`,
  ];
  for (const phase of first.phases) {
    const name = phase.path.includes("/") ? `  ${phase.path}` : phase.path;
    lines.push(
      `    ${name.padEnd(50)}${pad(ms(phase.durationMs), 11)}${pad(phase.status, 9)}${pad(ms(noopPhase(phase.path)), 11)}`,
    );
  }
  const verdict = noopWall <= NOOP_GOAL_MS ? "goal met" : "MISSED";
  lines.push(
    "",
    `  ${"measurement".padEnd(40)}${pad("runs", 5)}${pad("wall", 10)}${pad("workflow", 10)}${pad("tool CPU", 10)}${pad("machine CPU", 12)}${pad("load", 7)}${pad("API writes", 12)}${pad("changes", 9)}`,
    `  ${"first apply".padEnd(40)}${pad(1, 5)}${pad(sec(first.sample.wallMs), 10)}${pad(sec(first.runMs), 10)}${pad(sec(first.sample.cpuMs), 10)}${pad(sec(first.sample.machineCpuMs), 12)}${pad(first.sample.load.toFixed(2), 7)}${pad(first.writes.length, 12)}${pad(first.changes, 9)}`,
    `  ${"no-op re-run".padEnd(40)}${pad(noops.length, 5)}${pad(sec(noopWall), 10)}${pad(sec(noopRunMs), 10)}${pad(sec(median(noops.map((r) => r.sample.cpuMs))), 10)}${pad(sec(median(noops.map((r) => r.sample.machineCpuMs))), 12)}${pad(median(noops.map((r) => r.sample.load)).toFixed(2), 7)}${pad(noopWrites.join("/"), 12)}${pad(noops.map((r) => r.changes).join("/"), 9)}`,
    "",
    `  every no-op re-run's wall time, s: ${noops.map((r) => (r.sample.wallMs / 1000).toFixed(2)).join("  ")}`,
    `  no-op re-run, ${HOSTS} hosts: ${sec(noopWall)} (goal <= ${NOOP_GOAL_MS / 1000} s: ${verdict}); API writes per re-run: ${noopWrites.join(", ")} (must be 0: ${noopWrites.every((n) => n === 0) ? "ok" : "FAILED"})`,
    `  first apply's API writes: ${writesSummary(first.writes)}`,
  );
  for (const [i, again] of noops.entries())
    if (again.writes.length > 0)
      lines.push(
        `  no-op re-run ${i + 1} WROTE: ${again.writes.map((w) => `${w.verb} ${w.kind} ${w.namespace ? `${w.namespace}/` : ""}${w.name}`).join(", ")}`,
      );
  lines.push(
    "",
    `  machine: 1-minute load ${startLoad.toFixed(2)} at the start; the whole bench took ${(elapsedMs / 60000).toFixed(1)} min.`,
    '  wall = spawn to exit of the CLI; workflow = run.end durationMs; "load" = 1-minute load average before each',
    "  run; tool CPU = user+sys of the process tree; machine CPU = busy time of all CPUs during the run (/proc/stat:",
    "  the tool, the hosts' sshd and commands, the stand-ins in this process, everything else).",
    `  hosts: lab instance ${INSTANCE.bridge} (${INSTANCE.subnet}.0/24), fresh; stand-in bundle (support/bundle-dir.ts, serving kubelet),`,
    `  \`kubeforge certs generate\`, stand-ins on ${INSTANCE.subnet}.1:${STAND_IN_PORT}, all untimed. Each run: kubeforge -o json apply`,
    `  -f cluster.yaml --ignore-preflight-errors ${IGNORED_CHECKS} (the hosts are containers; vm.*/kernel.* are this machine's),`,
    "  KUBECONFIG and the state directory in the bench's temp dir.",
  );
  return `${lines.join("\n")}\n`;
}

async function main(): Promise<void> {
  if (!Number.isInteger(noopRuns) || noopRuns < 1)
    throw new Error(`no-op runs must be a positive integer, got ${process.argv[2]}`);
  requireGnuTime();
  const started = performance.now();
  const startLoad = loadavg()[0] ?? 0;
  const work = await mkdtemp(join(tmpdir(), "kubeforge-cluster-"));
  const state = join(work, "state");
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    KUBEFORGE_STATE_DIR: state,
    KUBECONFIG: join(work, "kubeconfig"), // never the user's ~/.kube/config
  };
  delete env.SSH_AUTH_SOCK; // the lab's key file only
  const timeFile = join(work, "time.out");
  let labStarted = false;
  let standIns: StandIns | undefined;
  try {
    const t0 = performance.now();
    const lab = await labUp(HOSTS, { ...INSTANCE, log: () => {}, signal: stopwatch.signal });
    labStarted = true;
    log(`[cluster] ${HOSTS} fresh host(s) ready in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

    log("[cluster] building the stand-in bundle, generating the PKI, starting the stand-ins");
    const cli = (args: string[]) =>
      cliIn(work, args, undefined, { env: { KUBECONFIG: env.KUBECONFIG ?? "" } });
    ({ standIns } = await standInCluster({
      work,
      lab,
      name: CLUSTER,
      version: VERSION,
      port: STAND_IN_PORT,
      cli,
    }));
    const clusterFile = join(work, "cluster.yaml");

    log("[cluster] first apply");
    const first = await apply(clusterFile, env, timeFile, standIns);
    log(
      `[cluster] first apply: ${(first.sample.wallMs / 1000).toFixed(1)} s, ${first.writes.length} API writes, ${first.changes} changes`,
    );
    const noops: ApplyRun[] = [];
    for (let i = 0; i < noopRuns; i++) {
      const again = await apply(clusterFile, env, timeFile, standIns);
      noops.push(again);
      log(
        `[cluster] no-op re-run ${i + 1}/${noopRuns}: ${(again.sample.wallMs / 1000).toFixed(2)} s, ${again.writes.length} API writes, ${again.changes} changes`,
      );
    }
    process.stdout.write(report(first, noops, startLoad, performance.now() - started));
    if (noops.some((again) => again.writes.length > 0)) {
      log("cluster: a no-op re-run wrote to the API server (see above)");
      process.exitCode = 1;
    }
  } catch (error) {
    if (standIns && standIns.log.length > 0)
      log(`[cluster] the registrar's log:\n${standIns.log.map((line) => `  ${line}`).join("\n")}`);
    throw error;
  } finally {
    // also after a failure or Ctrl-C; only what this bench started
    await standIns?.stop().catch((error: unknown) => log(`[cluster] stopping the stand-ins: ${error}`));
    if (labStarted)
      await labDown({ ...INSTANCE, log }).catch((error: unknown) => log(`[cluster] lab down: ${error}`));
    await rm(work, { recursive: true, force: true });
  }
}

try {
  await main();
} catch (error) {
  log(`cluster: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = stopwatch.signal.aborted ? 130 : 1;
}
