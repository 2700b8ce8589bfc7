// kubeforge lab: throwaway Debian hosts on this machine for trying kubeforge and for its end-to-end
// tests. Each host is a systemd-nspawn container booting a real systemd from a shared, cached base
// (read-only overlay lower layer), with its own IP on a private bridge, sshd, and containerd + runc
// installed but disabled. Several instances can run at once (distinct bridge + subnet).

import { randomBytes } from "node:crypto";
import { setMaxListeners } from "node:events";
import { mkdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ensureBase, hashPassword, SUDO_USER } from "./base.js";
import { readCgroupList, removeCgroups } from "./cgroups.js";
import {
  type Ctx,
  checkAborted,
  context,
  hostAddress,
  isMountPoint,
  LabError,
  type LabOptions,
  mounts,
  requireRoot,
  requireTools,
  sh,
  sleep,
  tail,
  which,
} from "./common.js";
import {
  hostDir,
  hostNames,
  mountRoot,
  powerOff,
  prepareHost,
  startSupervisor,
  supervisorPid,
} from "./host.js";

export { BUSYBOX_IMAGE_NAME, BUSYBOX_IMAGE_PATH, buildBase } from "./base.js";
export { CommandError, LabError, type LabOptions } from "./common.js";

export interface LabHost {
  name: string;
  address: string;
}

export interface Lab {
  bridge: string;
  subnet: string;
  /** Instance state directory (<root>/run-<bridge>). */
  runDir: string;
  keyPath: string;
  knownHostsPath: string;
  sshConfigPath: string;
  users: { root: "root"; sudoUser: string; sudoPassword: string };
  hosts: LabHost[];
}

export interface LabHostStatus extends LabHost {
  running: boolean;
}

const MAX_HOSTS = 200;
const SSH_OPTS = ["-o", "BatchMode=yes", "-o", "ConnectTimeout=3", "-o", "LogLevel=ERROR"];

const seconds = (t0: number) => `${((performance.now() - t0) / 1000).toFixed(1)}s`;
const files = (ctx: Ctx) => ({
  key: join(ctx.run, "id_ed25519"),
  knownHosts: join(ctx.run, "known_hosts"),
  sshConfig: join(ctx.run, "ssh_config"),
  json: join(ctx.run, "lab.json"),
});

async function exists(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined)) !== undefined;
}

/** Boots hosts h1..hN and waits until each accepts ssh and has finished booting. */
export async function labUp(count: number, opts: LabOptions = {}): Promise<Lab> {
  const ctx = context(opts);
  requireRoot("lab up");
  if (!Number.isInteger(count) || count < 1 || count > MAX_HOSTS) {
    throw new LabError(`lab up needs a host count from 1 to ${MAX_HOSTS}, got ${count}`);
  }
  await requireTools(["systemd-nspawn", "ssh", "ssh-keygen", "ip", "mount", "umount", "chroot"]);
  if (await exists(ctx.run)) {
    for (const n of await hostNames(ctx)) {
      if (await supervisorPid(ctx, n)) {
        throw new LabError(`instance ${ctx.bridge} is already up: run lab down first`);
      }
    }
    ctx.log(`[lab] cleaning up what a crashed earlier run of ${ctx.bridge} left behind`);
    await teardown(ctx);
  }
  await checkNetworkFree(ctx);
  await ensureBase(ctx, async () => {
    await mkdir(ctx.run, { mode: 0o700 }).catch((e: NodeJS.ErrnoException) => {
      if (e.code === "EEXIST") throw new LabError(`instance ${ctx.bridge} is already being started`);
      throw e;
    });
  });

  const t0 = performance.now();
  try {
    return await bringUp(ctx, count, t0);
  } catch (err) {
    ctx.log(`[lab] up failed, tearing down ${ctx.bridge}`);
    await teardown(ctx).catch((e: unknown) => ctx.log(`[lab] teardown after failed up: ${String(e)}`));
    if (err instanceof LabError) throw err;
    throw new LabError(`lab up failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}

async function bringUp(ctx: Ctx, count: number, t0: number): Promise<Lab> {
  const $ = sh(ctx);
  const f = files(ctx);
  await $`ssh-keygen -q -t ed25519 -N ${""} -C kubeforge-lab -f ${f.key}`;
  const publicKey = await readFile(`${f.key}.pub`, "utf8");
  const sudoPassword = randomBytes(18).toString("base64url");
  const passwordHash = await hashPassword(ctx, sudoPassword);
  await setUpNetwork(ctx);

  const indexes = Array.from({ length: count }, (_, i) => i + 1);
  const hostFiles = { count, publicKey, keyPath: f.key, knownHostsPath: f.knownHosts, passwordHash };
  // allSettled: teardown after a failure must not race a mount still in progress
  const settled = await Promise.allSettled(indexes.map((i) => prepareHost(ctx, i, hostFiles)));
  const prepared = settled.map((r) => {
    if (r.status === "rejected") throw r.reason;
    return r.value;
  });
  await writeFile(f.knownHosts, prepared.map((p) => p.knownHosts).join(""));
  await writeFile(f.sshConfig, prepared.map((p) => p.sshConfig).join("\n"));
  checkAborted(ctx);

  const names = indexes.map((i) => `h${i}`);
  for (const name of names) await startSupervisor(ctx, name);
  ctx.log(`[lab] started ${count} host(s) in ${seconds(t0)}, waiting for ssh`);
  await waitReady(ctx, names);

  const lab: Lab = {
    bridge: ctx.bridge,
    subnet: ctx.subnet,
    runDir: ctx.run,
    keyPath: f.key,
    knownHostsPath: f.knownHosts,
    sshConfigPath: f.sshConfig,
    users: { root: "root", sudoUser: SUDO_USER, sudoPassword },
    hosts: indexes.map((i) => ({ name: `h${i}`, address: hostAddress(ctx, i) })),
  };
  // holds the sudo password
  await writeFile(f.json, `${JSON.stringify(lab, null, 2)}\n`, { mode: 0o600 });
  ctx.log(`[lab] ${count} host(s) up in ${seconds(t0)}`);
  return lab;
}

async function checkNetworkFree(ctx: Ctx): Promise<void> {
  const out = (await sh(ctx)`ip -4 -o addr show`).stdout;
  for (const line of out.split("\n")) {
    const [, iface, , addr] = line.trim().split(/\s+/);
    if (iface && iface !== ctx.bridge && addr?.startsWith(`${ctx.subnet}.`)) {
      throw new LabError(`${ctx.subnet}.0/24 is already used by ${iface} (${addr}): pick another subnet`);
    }
  }
  if (await exists(`/sys/class/net/${ctx.bridge}`)) {
    throw new LabError(
      `interface ${ctx.bridge} exists but no lab instance owns it: remove it (ip link del ${ctx.bridge}) or pick another bridge`,
    );
  }
}

async function setUpNetwork(ctx: Ctx): Promise<void> {
  const $ = sh(ctx);
  const br = ctx.bridge;
  // markers are written first, so a crash half-way still lets `down` undo the step
  await writeFile(join(ctx.run, "bridge.created"), "");
  await $`ip link add ${br} type bridge`;
  await writeFile(`/proc/sys/net/ipv6/conf/${br}/disable_ipv6`, "1").catch(() => {});
  await $`ip addr add ${`${ctx.subnet}.1/24`} dev ${br}`;
  await $`ip link set ${br} up`;
  // With br_netfilter on, bridged traffic goes through FORWARD; if something set its policy to
  // DROP (docker, a firewall), let our own bridge through.
  if (await which("iptables")) {
    const rules = await sh(ctx, { nothrow: true })`iptables -S FORWARD`;
    if (rules.exitCode === 0 && !rules.stdout.split("\n")[0]?.includes("ACCEPT")) {
      await writeFile(join(ctx.run, "iptables.added"), "");
      await $`iptables -I FORWARD ${forwardRule(ctx)}`;
    }
  }
}

const forwardRule = (ctx: Ctx) => [
  "-i",
  ctx.bridge,
  "-o",
  ctx.bridge,
  "-m",
  "comment",
  "--comment",
  "kubeforge-lab",
  "-j",
  "ACCEPT",
];

function ssh(ctx: Ctx, name: string, command: string) {
  return sh(ctx, { nothrow: true })`ssh -F ${files(ctx).sshConfig} ${SSH_OPTS} ${name} ${command}`;
}

/** Waits until every host accepts ssh and its boot has finished; fails fast if one dies. */
async function waitReady(ctx: Ctx, names: string[]): Promise<void> {
  const local = new AbortController();
  const signals = [local.signal, ...(ctx.signal ? [ctx.signal] : [])];
  const signal = AbortSignal.any(signals);
  // One waiter per host listens on it at once: many hosts are many listeners, by design.
  setMaxListeners(0, signal);
  const sub: Ctx = { ...ctx, signal };
  const t0 = Date.now();
  const one = async (name: string) => {
    for (;;) {
      checkAborted(sub);
      const r = await ssh(sub, name, "timeout 60 systemctl is-system-running --wait >/dev/null 2>&1; true");
      if (r.exitCode === 0) break;
      checkAborted(sub);
      if (Date.now() - t0 > 5000 && !(await supervisorPid(ctx, name))) {
        const logFile = join(hostDir(ctx, name), "console.log");
        const log = tail(await readFile(logFile, "utf8").catch(() => ""), 20);
        throw new LabError(`${name} died during boot:\n${log}`);
      }
      if (Date.now() - t0 > ctx.bootTimeoutMs) {
        throw new LabError(`${name} did not boot within ${ctx.bootTimeoutMs / 1000}s`);
      }
      await sleep(300, sub);
    }
    const state = (await ssh(sub, name, "systemctl is-system-running")).stdout.trim();
    if (state !== "running") {
      const failed = (await ssh(sub, name, "systemctl --failed --no-legend --plain")).stdout;
      const units = failed
        .split("\n")
        .map((l) => l.split(" ")[0])
        .filter(Boolean);
      ctx.log(
        `[lab] warning: ${name} is ${state || "unreachable"}; failed units: ${units.join(" ") || "none"}`,
      );
    }
  };
  // the first real failure wins; the others are aborted
  await Promise.all(
    names.map((n) =>
      one(n).catch((e: unknown) => {
        local.abort();
        throw e;
      }),
    ),
  );
}

/** Power cut for the whole instance: ends only processes it started, removes all its state. Idempotent. */
export async function labDown(opts: LabOptions = {}): Promise<void> {
  const ctx = context(opts);
  requireRoot("lab down");
  if (!(await exists(ctx.run))) {
    ctx.log(`[lab] ${ctx.bridge} is not up`);
    return;
  }
  const t0 = performance.now();
  await teardown(ctx);
  ctx.log(`[lab] ${ctx.bridge} down in ${seconds(t0)}`);
}

async function teardown(parent: Ctx): Promise<void> {
  const ctx: Ctx = { ...parent, signal: undefined }; // cleanup must finish even after an abort
  const $ = sh(ctx);
  const names = await hostNames(ctx);
  await powerOff(ctx, names);
  for (const name of names) {
    const left = await removeCgroups(await readCgroupList(join(hostDir(ctx, name), "cgroups")));
    for (const d of left) ctx.log(`[lab] warning: could not remove cgroup ${d}`);
    const root = join(hostDir(ctx, name), "root");
    if (await isMountPoint(root)) {
      const r = await sh(ctx, { nothrow: true })`umount ${root}`;
      if (r.exitCode !== 0) await $`umount -l ${root}`;
    }
  }
  const stillMounted = (await mounts()).filter((m) => m.mountPoint.startsWith(`${ctx.run}/`));
  if (stillMounted.length > 0) {
    const list = stillMounted.map((m) => m.mountPoint).join(", ");
    throw new LabError(`not deleting ${ctx.run}: still mounted: ${list}`);
  }
  if (await exists(join(ctx.run, "iptables.added"))) {
    await sh(ctx, { nothrow: true })`iptables -D FORWARD ${forwardRule(ctx)}`;
  }
  if ((await exists(join(ctx.run, "bridge.created"))) && (await exists(`/sys/class/net/${ctx.bridge}`))) {
    await $`ip link del ${ctx.bridge}`;
  }
  await rm(ctx.run, { recursive: true, force: true });
}

export async function labStatus(opts: LabOptions = {}): Promise<LabHostStatus[]> {
  const ctx = context(opts);
  requireRoot("lab status");
  const out: LabHostStatus[] = [];
  for (const name of await hostNames(ctx)) {
    const address = hostAddress(ctx, Number(name.slice(1)));
    out.push({ name, address, running: (await supervisorPid(ctx, name)) !== undefined });
  }
  return out;
}

async function requireHost(ctx: Ctx, name: string): Promise<void> {
  if (!/^h\d+$/.test(name) || !(await exists(hostDir(ctx, name)))) {
    throw new LabError(`instance ${ctx.bridge} has no host ${name}`);
  }
}

/** Power cut one host; its disk is kept, so startHost boots it again with the same state. */
export async function stopHost(name: string, opts: LabOptions = {}): Promise<void> {
  const ctx = context(opts);
  requireRoot("lab stop");
  await requireHost(ctx, name);
  await powerOff(ctx, [name]);
  ctx.log(`[lab] ${name} stopped`);
}

export async function startHost(name: string, opts: LabOptions = {}): Promise<void> {
  const ctx = context(opts);
  requireRoot("lab start");
  await requireHost(ctx, name);
  if (await supervisorPid(ctx, name)) throw new LabError(`${name} is already running`);
  const t0 = performance.now();
  await mountRoot(ctx, name); // unmounted if the machine rebooted since
  await startSupervisor(ctx, name);
  await waitReady(ctx, [name]);
  ctx.log(`[lab] ${name} started in ${seconds(t0)}`);
}
