// What every benchmark measures a run with: wall time from spawn to exit, the process tree's CPU and
// peak RSS from GNU time, the whole machine's busy CPU from /proc/stat, and the load before it; and
// an interrupt that ends only the process group this bench started.
import { type ChildProcess, spawn } from "node:child_process";
import { setMaxListeners } from "node:events";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { loadavg } from "node:os";

const TIME = "/usr/bin/time";

/** GNU time measures the process tree; the benches need it. */
export function requireGnuTime(): void {
  if (!existsSync(TIME)) throw new Error(`${TIME} is missing: apt-get install -y time`);
}
/** USER_HZ: /proc/stat counts in these. */
const HZ = 100;

export interface Sample {
  wallMs: number;
  /** user + sys of the process and all its children. */
  cpuMs: number;
  /** Peak RSS of the largest process of the tree. */
  rssKiB: number;
  /** Busy CPU time of the whole machine during the run: the tool, the hosts' sshd and commands, everything else. */
  machineCpuMs: number;
  /** 1-minute load average just before the run. */
  load: number;
  stdout: string;
  /** Date.now() just before the spawn, to place the child's event timestamps. */
  spawnedAt: number;
}

/** Busy jiffies of all CPUs (guest time is already in user). */
async function busyJiffies(): Promise<number> {
  const line = (await readFile("/proc/stat", "utf8")).split("\n")[0] ?? "";
  const fields = line.trim().split(/\s+/).slice(1).map(Number);
  const total = fields.slice(0, 8).reduce((a, b) => a + b, 0);
  return total - (fields[3] ?? 0) - (fields[4] ?? 0);
}

export class Stopwatch {
  readonly #interrupt = new AbortController();
  #current: ChildProcess | undefined;

  /** Ctrl-C or SIGTERM ends the running child's process group and aborts `signal`; `onStop` says what is torn down. */
  constructor(onStop: string) {
    setMaxListeners(0, this.#interrupt.signal); // every lab command and host check listens to it
    for (const name of ["SIGINT", "SIGTERM"] as const) {
      process.on(name, () => {
        if (this.#interrupt.signal.aborted) return;
        process.stderr.write(`\n${name}: stopping, ${onStop}\n`);
        const child = this.#current;
        if (child?.pid !== undefined && child.exitCode === null) {
          try {
            process.kill(-child.pid, "SIGTERM");
          } catch {}
        }
        this.#interrupt.abort(new Error(`received ${name}`));
      });
    }
  }

  get signal(): AbortSignal {
    return this.#interrupt.signal;
  }

  /** Runs argv under GNU time in its own process group; a non-zero exit throws with the output's tail. */
  async time(argv: string[], env: NodeJS.ProcessEnv, timeFile: string): Promise<Sample> {
    this.signal.throwIfAborted();
    const load = loadavg()[0] ?? 0;
    const before = await busyJiffies();
    const spawnedAt = Date.now();
    const started = process.hrtime.bigint();
    const child = spawn(TIME, ["-f", "%M %U %S", "-o", timeFile, ...argv], {
      env,
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    this.#current = child;
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on("data", (chunk: Buffer) => out.push(chunk));
    child.stderr?.on("data", (chunk: Buffer) => err.push(chunk));
    const code = await new Promise<number | null>((resolve, reject) => {
      child.once("error", reject);
      child.once("close", (exitCode) => resolve(exitCode));
    });
    const wallMs = Number(process.hrtime.bigint() - started) / 1e6;
    const after = await busyJiffies();
    this.#current = undefined;
    this.signal.throwIfAborted();
    const stdout = Buffer.concat(out).toString();
    if (code !== 0) {
      const tail = `${stdout}\n${Buffer.concat(err).toString()}`.trim().split("\n").slice(-25).join("\n");
      throw new Error(`\`${argv.slice(0, 4).join(" ")} …\` exited ${code}:\n${tail}`);
    }
    const [rss = "0", user = "0", sys = "0"] = (await readFile(timeFile, "utf8")).trim().split(/\s+/);
    return {
      wallMs,
      cpuMs: (Number(user) + Number(sys)) * 1000,
      rssKiB: Number(rss),
      machineCpuMs: ((after - before) * 1000) / HZ,
      load,
      stdout,
      spawnedAt,
    };
  }
}

/** The median; for an even count the mean of the middle two. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length / 2;
  if (sorted.length % 2 === 1) return sorted[Math.floor(middle)] ?? Number.NaN;
  return ((sorted[middle - 1] ?? Number.NaN) + (sorted[middle] ?? Number.NaN)) / 2;
}
