// Fan-out: `kubeforge preflight` (connect → facts → checks) against parallel-ssh (Debian's `pssh`)
// sending the same facts probe to the same lab hosts, on 1 and on 10 hosts, median of N interleaved
// runs each. Goal: kubeforge ≤ 0.5× pssh's time on 10 hosts. Needs root (it boots its own lab
// instance, bridge kfbrb0 on 198.18.11.0/24, and removes it at the end, also on failure or Ctrl-C),
// `apt-get install -y pssh time`. Run: npm run build && node dist/bench/fanout.js [runs]
//
// Fairness: both sides are a fresh process per run (no ControlMaster, no connection reuse), use the
// lab's key and known_hosts with strict host-key checking, run at most 30 hosts at once (kubeforge's
// default concurrency), and get the same probe text: factsScript(inspectedDirs(cluster)) from dist/.
// pssh's ssh runs with OpenSSH's own defaults (`-F /dev/null`: Debian's /etc/ssh/ssh_config would
// add GSSAPIAuthentication=yes) and its default key exchange (sntrup761x25519 in OpenSSH 9.2; a
// reference row, not the goal, forces curve25519 as kubeforge uses). kubeforge sends the probe inside
// its usual start wrapper (`exec setsid -w sh -c … kubeforge '<probe>'`); pssh sends it bare.
import { spawn } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { labClusterFile } from "../cli/lab-command.js";
import { loadClusterFile } from "../config/load.js";
import { factsScript } from "../facts/facts.js";
import { type Lab, labDown, labUp } from "../lab/testhosts.js";
import { inspectedDirs } from "../preflight/checks.js";
import { median, requireGnuTime, type Sample, Stopwatch } from "./measure.js";

const runs = Number(process.argv[2] ?? 5);
const SIZES = [1, 10] as const;
const INSTANCE = { bridge: "kfbrb0", subnet: "198.18.11" };
const GOAL = 0.5;
const bin = fileURLToPath(new URL("../../bin/kubeforge.js", import.meta.url));

const stopwatch = new Stopwatch(`tearing down ${INSTANCE.bridge}`);
const log = (line: string) => process.stderr.write(`${line}\n`);

const TOOLS = ["kubeforge", "pssh", "pssh-c25519"] as const;
type Tool = (typeof TOOLS)[number];

interface Case {
  hosts: number;
  kubeforge: string[];
  pssh: string[];
  /** Reference only: pssh with kubeforge's key exchange (curve25519) instead of OpenSSH's default. */
  "pssh-c25519": string[];
  psshOut: string;
  addresses: string[];
}

async function prepareCases(lab: Lab, dir: string): Promise<{ cases: Case[]; psshShown: string }> {
  const cases: Case[] = [];
  let psshShown = "";
  for (const hosts of SIZES) {
    const subset = { ...lab, hosts: lab.hosts.slice(0, hosts) };
    const clusterFile = join(dir, `cluster-${hosts}.yaml`);
    await writeFile(
      clusterFile,
      labClusterFile(subset, { name: "fanout", version: "v1.30.4", user: "root" }),
    );
    const { cluster } = await loadClusterFile(clusterFile, { env: {}, homeDir: tmpdir(), cwd: dir });
    const probe = factsScript(inspectedDirs(cluster));
    await writeFile(join(dir, "probe.sh"), probe);
    const hostsFile = join(dir, `hosts-${hosts}`);
    await writeFile(hostsFile, subset.hosts.map((host) => `${host.address}\n`).join(""));
    const psshOut = join(dir, `pssh-out-${hosts}`);
    const options = [
      "IdentitiesOnly=yes",
      "BatchMode=yes",
      "StrictHostKeyChecking=yes",
      `UserKnownHostsFile=${lab.knownHostsPath}`,
      "GlobalKnownHostsFile=/dev/null",
      "ControlMaster=no",
      "ControlPath=none",
    ];
    const pssh = [
      "parallel-ssh",
      ["-h", hostsFile],
      ["-l", "root"],
      ["-p", "30"],
      ["-t", "30"],
      ["-o", psshOut],
      ["-x", `-F /dev/null -i ${lab.keyPath}`],
      options.flatMap((option) => ["-O", option]),
    ].flat();
    psshShown = `${pssh.map((arg) => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg}'`)).join(" ")} "$(cat probe.sh)"`;
    cases.push({
      hosts,
      kubeforge: [process.execPath, bin, "preflight", "-f", clusterFile],
      pssh: [...pssh, probe],
      "pssh-c25519": [...pssh, "-O", "KexAlgorithms=curve25519-sha256", probe],
      psshOut,
      addresses: subset.hosts.map((host) => host.address),
    });
  }
  return { cases, psshShown };
}

/** pssh exits 0 only when every host did; also check each host's output is the whole probe's. */
async function checkPsshOutput(c: Case): Promise<void> {
  const files = await readdir(c.psshOut);
  for (const address of c.addresses) {
    if (!files.includes(address)) throw new Error(`pssh wrote no output for ${address}`);
    const text = await readFile(join(c.psshOut, address), "utf8");
    if (!/^clock_ms=\d+$/m.test(text)) throw new Error(`pssh output for ${address} is incomplete`);
  }
  await rm(c.psshOut, { recursive: true, force: true });
}

/** Per-phase timings of one `-o json` run: spawn → run.start, each phase, run.end → exit. */
async function phaseRun(c: Case, env: NodeJS.ProcessEnv, timeFile: string): Promise<Record<string, number>> {
  const [node, script, ...rest] = c.kubeforge;
  const sample = await stopwatch.time([node ?? "", script ?? "", "-o", "json", ...rest], env, timeFile);
  const { spawnedAt } = sample;
  const exitedAt = spawnedAt + sample.wallMs;
  const phases: Record<string, number> = {};
  for (const line of sample.stdout.split("\n")) {
    if (!line.trim()) continue;
    const event = JSON.parse(line) as { type: string; ts: string; phase?: string; durationMs?: number };
    const at = Date.parse(event.ts);
    if (event.type === "run.start") phases["start-up (spawn → run.start)"] = at - spawnedAt;
    if (event.type === "phase.end" && event.phase) phases[event.phase] = event.durationMs ?? Number.NaN;
    if (event.type === "run.end") phases["exit (run.end → exit)"] = exitedAt - at;
  }
  phases.total = sample.wallMs;
  return phases;
}

async function main(): Promise<void> {
  requireGnuTime();
  const which = spawn("sh", ["-c", "command -v parallel-ssh"], { stdio: "ignore" });
  const found = await new Promise<number | null>((resolve) => which.once("close", resolve));
  if (found !== 0) throw new Error("parallel-ssh is missing: apt-get install -y pssh");

  const dir = await mkdtemp(join(tmpdir(), "kubeforge-fanout-"));
  const env: NodeJS.ProcessEnv = { ...process.env, KUBEFORGE_STATE_DIR: join(dir, "state") };
  delete env.SSH_AUTH_SOCK; // both sides authenticate with the key file only
  const timeFile = join(dir, "time.out");
  let lab: Lab | undefined;
  try {
    lab = await labUp(Math.max(...SIZES), { ...INSTANCE, log, signal: stopwatch.signal });
    const { cases, psshShown } = await prepareCases(lab, dir);
    const samples = new Map<string, Sample[]>();
    const add = (key: string, sample: Sample) => samples.set(key, [...(samples.get(key) ?? []), sample]);
    const runCase = async (c: Case, tool: Tool) => {
      const sample = await stopwatch.time(c[tool], env, timeFile);
      if (tool !== "kubeforge") await checkPsshOutput(c);
      return sample;
    };

    log(`[fanout] warm-up: one run of each tool on 1 and ${Math.max(...SIZES)} hosts`);
    for (const c of cases) for (const tool of TOOLS) await runCase(c, tool);
    for (let round = 0; round < runs; round++) {
      // interleaved, and which tool goes first alternates, so machine noise and order hit both alike
      const order = [...TOOLS.slice(round % TOOLS.length), ...TOOLS.slice(0, round % TOOLS.length)];
      for (const c of cases) {
        for (const tool of order) add(`${tool}/${c.hosts}`, await runCase(c, tool));
      }
      log(`[fanout] round ${round + 1}/${runs} done`);
    }
    const phaseSamples = new Map<number, Record<string, number>[]>();
    for (let round = 0; round < runs; round++) {
      for (const c of cases) {
        phaseSamples.set(c.hosts, [...(phaseSamples.get(c.hosts) ?? []), await phaseRun(c, env, timeFile)]);
      }
    }

    const m = (key: string, field: "wallMs" | "rssKiB" | "cpuMs" | "machineCpuMs") =>
      median((samples.get(key) ?? []).map((sample) => sample[field]));
    const max = (key: string, field: "rssKiB") =>
      Math.max(...(samples.get(key) ?? []).map((sample) => sample[field]));
    const pad = (text: string | number, width: number) => String(text).padStart(width);
    const rows = [
      `${"hosts".padEnd(6)}${"tool".padEnd(13)}${pad("wall ms", 9)}${pad("tool CPU ms", 13)}${pad("machine CPU ms", 16)}${pad("peak RSS MiB (max)", 20)}`,
    ];
    for (const c of cases) {
      for (const tool of TOOLS) {
        const key = `${tool}/${c.hosts}`;
        const rss = `${(m(key, "rssKiB") / 1024).toFixed(1)} (${(max(key, "rssKiB") / 1024).toFixed(1)})`;
        rows.push(
          `${String(c.hosts).padEnd(6)}${tool.padEnd(13)}${pad(m(key, "wallMs").toFixed(0), 9)}${pad(m(key, "cpuMs").toFixed(0), 13)}${pad(m(key, "machineCpuMs").toFixed(0), 16)}${pad(rss, 20)}`,
        );
      }
    }
    const ratio = (hosts: number, tool: Tool = "pssh") =>
      m(`kubeforge/${hosts}`, "wallMs") / m(`${tool}/${hosts}`, "wallMs");
    const big = Math.max(...SIZES);
    const cpus = availableParallelism();
    const otherCpu = median(
      (samples.get(`kubeforge/${big}`) ?? []).map((sample) => sample.machineCpuMs - sample.cpuMs),
    );
    const phaseNames = [...new Set([...phaseSamples.values()].flat().flatMap((p) => Object.keys(p)))];

    const out = [
      `fanout: kubeforge preflight vs parallel-ssh with the same facts probe, median of ${runs} interleaved runs`,
      `  (${process.version}; ${cpus} CPUs shared by the tool, the ${big} lab hosts' sshd and the probe)`,
      "",
      ...rows.map((row) => `  ${row}`),
      "",
      `  ratio kubeforge/pssh, 1 host:   ${ratio(1).toFixed(2)}x`,
      `  ratio kubeforge/pssh, ${big} hosts: ${ratio(big).toFixed(2)}x (goal <= ${GOAL}x: ${ratio(big) <= GOAL ? "goal met" : "MISSED"})`,
      `  reference, against pssh-c25519 (curve25519 like kubeforge; not the goal): 1 host ${ratio(1, "pssh-c25519").toFixed(2)}x, ${big} hosts ${ratio(big, "pssh-c25519").toFixed(2)}x`,
      `  floor on this machine: during kubeforge's ${big}-host runs the rest of the machine (hosts' sshd + probe,`,
      `  background) used ${otherCpu.toFixed(0)} ms CPU: >= ${(otherCpu / cpus).toFixed(0)} ms wall on ${cpus} CPUs even for a tool costing nothing;`,
      `  the goal needs <= ${(GOAL * m(`pssh/${big}`, "wallMs")).toFixed(0)} ms.`,
      "",
      `  kubeforge phases, median ms of ${runs} more runs with -o json:`,
      `    ${"".padEnd(30)}${SIZES.map((hosts) => pad(`${hosts} host${hosts > 1 ? "s" : ""}`, 10)).join("")}`,
      ...phaseNames.map(
        (name) =>
          `    ${name.padEnd(30)}${SIZES.map((hosts) => pad(median((phaseSamples.get(hosts) ?? []).map((p) => p[name] ?? Number.NaN)).toFixed(0), 10)).join("")}`,
      ),
      "",
      "  commands (each run a fresh process under /usr/bin/time -f '%M %U %S'):",
      `    kubeforge: ${cases.map((c) => c.kubeforge.join(" ")).join("  |  ")}`,
      `    pssh:      ${psshShown}`,
      "    pssh-c25519: the same with -O KexAlgorithms=curve25519-sha256 before the probe",
      `               (probe.sh = factsScript(inspectedDirs(cluster)); hosts-1 / hosts-${big} list the lab's addresses)`,
      "  tool CPU = user+sys of the process tree; machine CPU = busy time of all CPUs during the run",
      "  (/proc/stat, includes the hosts' sshd and probe); pssh's peak RSS is its largest single process.",
    ];
    process.stdout.write(`${out.join("\n")}\n`);
  } finally {
    // also after a failure or Ctrl-C; labUp tears down by itself when it fails half-way
    if (lab)
      await labDown({ ...INSTANCE, log }).catch((error: unknown) => log(`[fanout] lab down: ${error}`));
    await rm(dir, { recursive: true, force: true });
  }
}

try {
  await main();
} catch (error) {
  log(`fanout: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = stopwatch.signal.aborted ? 130 : 1;
}
