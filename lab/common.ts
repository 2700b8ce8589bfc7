// Shared pieces of the lab: options, paths, errors, small process and shell helpers.
import { constants } from "node:fs";
import { access, readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { $, type ProcessOutput } from "zx";

export interface LabOptions {
  /** State directory: base rootfs, per-instance run dirs. Default /var/lib/kubeforge-lab. */
  root?: string;
  /** Bridge on this machine; also the instance name. Default kfbr0. */
  bridge?: string;
  /** /24 prefix inside 198.18.0.0/15: machine side .1, host hI is .(10+I). Default 198.18.0. */
  subnet?: string;
  log?: (line: string) => void;
  signal?: AbortSignal;
  /** Seconds to wait for hosts to accept ssh and finish booting. Default 120. */
  bootTimeout?: number;
  /** Optional memory cap per host, e.g. "2G" (cgroup v1 memory.limit_in_bytes / v2 memory.max). */
  memoryLimit?: string;
  /**
   * Make all of /proc/sys writable inside hosts (default: only /proc/sys/net).
   * DANGER: vm.*, kernel.*, fs.* are global: writes change this machine's kernel.
   */
  writableSysctl?: boolean;
  /** Debian mirror for the base. Default http://deb.debian.org/debian. */
  mirror?: string;
}

export class LabError extends Error {
  override name = "LabError";
}

/** A command on this machine failed. */
export class CommandError extends LabError {
  override name = "CommandError";
  constructor(
    readonly command: string,
    readonly exitCode: number | null,
    readonly stderr: string,
  ) {
    super(`\`${command}\` failed (exit ${exitCode})${stderr.trim() ? `: ${tail(stderr, 5)}` : ""}`);
  }
}

export interface Ctx {
  root: string;
  base: string;
  run: string;
  bridge: string;
  subnet: string;
  mirror: string;
  bootTimeoutMs: number;
  memoryLimit: string | undefined;
  writableSysctl: boolean;
  log: (line: string) => void;
  signal: AbortSignal | undefined;
}

const BRIDGE_RE = /^[A-Za-z0-9_-]{1,15}$/;
const SUBNET_RE = /^198\.(18|19)\.(\d{1,3})$/;

export function context(opts: LabOptions = {}): Ctx {
  const root = opts.root ?? "/var/lib/kubeforge-lab";
  const bridge = opts.bridge ?? "kfbr0";
  const subnet = opts.subnet ?? "198.18.0";
  if (!root.startsWith("/") || /[,:\s]/.test(root)) {
    // the path ends up in overlayfs mount options, where , and : are separators
    throw new LabError(`lab root must be an absolute path without commas, colons or spaces: ${root}`);
  }
  if (!BRIDGE_RE.test(bridge)) throw new LabError(`bad bridge name ${bridge}: use 1-15 of [A-Za-z0-9_-]`);
  const m = SUBNET_RE.exec(subnet);
  if (!m || Number(m[2]) > 255) {
    throw new LabError(`bad subnet ${subnet}: give a /24 prefix inside 198.18.0.0/15, e.g. 198.18.0`);
  }
  return {
    root,
    base: join(root, "base"),
    run: join(root, `run-${bridge}`),
    bridge,
    subnet,
    mirror: opts.mirror ?? "http://deb.debian.org/debian",
    bootTimeoutMs: (opts.bootTimeout ?? 120) * 1000,
    memoryLimit: opts.memoryLimit,
    writableSysctl: opts.writableSysctl ?? false,
    log: opts.log ?? (() => {}),
    signal: opts.signal,
  };
}

export function requireRoot(what: string): void {
  if (process.getuid?.() !== 0) throw new LabError(`${what} needs root`);
}

export function checkAborted(ctx: Ctx): void {
  if (ctx.signal?.aborted) throw new LabError("lab operation aborted", { cause: ctx.signal.reason });
}

export async function sleep(ms: number, ctx: Ctx): Promise<void> {
  try {
    await delay(ms, undefined, { signal: ctx.signal });
  } catch {
    checkAborted(ctx);
  }
}

// sbin dirs are not always on a non-login root PATH
const SYS_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
export const ENV = { PATH: SYS_PATH, LANG: "C.UTF-8", LC_ALL: "C.UTF-8", HOME: "/root" };

export type Shell = (pieces: TemplateStringsArray, ...args: unknown[]) => Promise<ProcessOutput>;

/**
 * zx shell bound to the context: quiet, minimal environment, abortable. A failed command throws
 * CommandError unless `nothrow`; an abort throws LabError.
 */
export function sh(ctx: Ctx, o: { nothrow?: boolean; input?: string } = {}): Shell {
  const z = $({
    quiet: true,
    verbose: false,
    nothrow: true,
    env: { ...ENV },
    ...(ctx.signal ? { signal: ctx.signal } : {}),
    ...(o.input !== undefined ? { input: o.input } : {}),
  });
  return async (pieces, ...args) => {
    const p = z(pieces, ...args);
    let out: ProcessOutput;
    try {
      out = await p;
    } catch (err) {
      checkAborted(ctx);
      throw err;
    }
    checkAborted(ctx);
    if (out.exitCode !== 0 && !o.nothrow) throw new CommandError(p.cmd, out.exitCode, out.stderr);
    return out;
  };
}

const TOOL_PACKAGES: Record<string, string> = {
  debootstrap: "debootstrap",
  "systemd-nspawn": "systemd-container",
  ssh: "openssh-client",
  "ssh-keygen": "openssh-client",
  ip: "iproute2",
  chroot: "coreutils",
  tar: "tar",
  mount: "mount",
  umount: "mount",
};

export async function which(cmd: string): Promise<string | undefined> {
  for (const dir of SYS_PATH.split(":")) {
    const p = join(dir, cmd);
    try {
      await access(p, constants.X_OK);
      return p;
    } catch {}
  }
  return undefined;
}

export async function requireTools(tools: string[]): Promise<void> {
  const missing: string[] = [];
  for (const t of tools) if (!(await which(t))) missing.push(t);
  if (missing.length === 0) return;
  const pkgs = [...new Set(missing.map((t) => TOOL_PACKAGES[t] ?? t))];
  throw new LabError(
    `missing ${missing.join(", ")}: install with: apt-get install -y --no-install-recommends ${pkgs.join(" ")}`,
  );
}

export function hostAddress(ctx: Ctx, index: number): string {
  return `${ctx.subnet}.${10 + index}`;
}

// ---------------------------------------------------------------- processes

export interface ProcStat {
  state: string;
  ppid: number;
  startTime: string;
}

export async function procStat(pid: number): Promise<ProcStat | undefined> {
  let raw: string;
  try {
    raw = await readFile(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  // comm may contain spaces and parentheses: the fields start after the last ')'
  const f = raw.slice(raw.lastIndexOf(")") + 2).split(" ");
  return { state: f[0] ?? "?", ppid: Number(f[1]), startTime: f[19] ?? "" };
}

/** "pid starttime", so a recycled PID is never mistaken for a process we started. */
export async function pidStamp(pid: number): Promise<string> {
  const st = await procStat(pid);
  return `${pid} ${st?.startTime ?? ""}`;
}

/** PID from a stamp written by pidStamp if that very process is still alive (zombies count as dead). */
export async function liveStampedPid(stamp: string | undefined): Promise<number | undefined> {
  const [pidText, start] = (stamp ?? "").trim().split(" ");
  const pid = Number(pidText);
  if (!Number.isInteger(pid) || pid <= 1) return undefined;
  const st = await procStat(pid);
  if (!st || st.state === "Z" || st.state === "X" || st.startTime !== start) return undefined;
  return pid;
}

export async function childrenOf(pid: number): Promise<{ pid: number; comm: string }[]> {
  const out: { pid: number; comm: string }[] = [];
  for (const e of await readdir("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const raw = await readFile(`/proc/${e}/stat`, "utf8");
      const ppid = Number(raw.slice(raw.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === pid)
        out.push({ pid: Number(e), comm: raw.slice(raw.indexOf("(") + 1, raw.lastIndexOf(")")) });
    } catch {}
  }
  return out;
}

export function killPid(pid: number, signal: NodeJS.Signals = "SIGKILL"): void {
  if (pid <= 1 || pid === process.pid) return;
  try {
    process.kill(pid, signal);
  } catch {}
}

// ---------------------------------------------------------------- mounts

function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));
}

export interface MountEntry {
  mountPoint: string;
  fsType: string;
  source: string;
  superOptions: string;
}

export async function mounts(): Promise<MountEntry[]> {
  const text = await readFile("/proc/self/mountinfo", "utf8");
  const out: MountEntry[] = [];
  for (const line of text.split("\n")) {
    const [pre, post] = line.split(" - ");
    if (!pre || !post) continue;
    const mp = pre.split(" ")[4];
    const [fsType, source, superOptions] = post.split(" ");
    if (mp && fsType) {
      out.push({
        mountPoint: unescapeMount(mp),
        fsType,
        source: source ?? "",
        superOptions: superOptions ?? "",
      });
    }
  }
  return out;
}

export async function isMountPoint(path: string): Promise<boolean> {
  return (await mounts()).some((m) => m.mountPoint === path);
}

export function tail(text: string, lines: number): string {
  return text.trimEnd().split("\n").slice(-lines).join("\n");
}
