// One lab host: its overlay root, its files, and the detached supervisor that runs systemd-nspawn.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chown, mkdir, open, readdir, readFile, rm, rmdir, stat, writeFile } from "node:fs/promises";
import { release } from "node:os";
import { join } from "node:path";
import { SUDO_USER } from "./base.js";
import { cgroupPids, childCgroupDirs, createCgroups, readCgroupList, recordCgroups } from "./cgroups.js";
import {
  type Ctx,
  childrenOf,
  ENV,
  hostAddress,
  isMountPoint,
  killPid,
  LabError,
  liveStampedPid,
  pidStamp,
  sh,
  sleep,
} from "./common.js";

export const hostDir = (ctx: Ctx, name: string) => join(ctx.run, name);
const cgroupName = (ctx: Ctx, name: string) => `kubeforge-lab-${ctx.bridge}-${name}`;
export const machineName = (ctx: Ctx, name: string) => `${ctx.bridge}-${name}`;

export async function hostNames(ctx: Ctx): Promise<string[]> {
  let entries: string[];
  try {
    entries = await readdir(ctx.run);
  } catch {
    return [];
  }
  return entries.filter((e) => /^h\d+$/.test(e)).sort((a, b) => Number(a.slice(1)) - Number(b.slice(1)));
}

export async function mountRoot(ctx: Ctx, name: string): Promise<void> {
  const d = hostDir(ctx, name);
  const root = join(d, "root");
  for (const sub of ["root", "upper", "work", "containerd"]) await mkdir(join(d, sub), { recursive: true });
  if (await isMountPoint(root)) return;
  const o = `lowerdir=${ctx.base},upperdir=${join(d, "upper")},workdir=${join(d, "work")}`;
  await sh(ctx)`mount -t overlay ${cgroupName(ctx, name)} -o ${o} ${root}`;
}

export interface PreparedHost {
  knownHosts: string;
  sshConfig: string;
}

export interface HostFiles {
  count: number;
  publicKey: string;
  keyPath: string;
  knownHostsPath: string;
  passwordHash: string;
}

/** Mounts the host's root and writes its identity: hostname, machine-id, host keys, network, users. */
export async function prepareHost(ctx: Ctx, index: number, f: HostFiles): Promise<PreparedHost> {
  const name = `h${index}`;
  const ip = hostAddress(ctx, index);
  await mountRoot(ctx, name);
  const r = join(hostDir(ctx, name), "root");

  await writeFile(join(r, "etc/hostname"), `${name}\n`);
  await writeFile(join(r, "etc/machine-id"), `${randomBytes(16).toString("hex")}\n`);
  const marker = join(r, "etc/kubeforge-lab/writable-proc-sys");
  if (ctx.writableSysctl) await writeFile(marker, "");
  else await rm(marker, { force: true });
  const hosts = ["127.0.0.1\tlocalhost", "::1\t\tlocalhost ip6-localhost ip6-loopback"];
  for (let j = 1; j <= f.count; j++) hosts.push(`${hostAddress(ctx, j)}\th${j}`);
  await writeFile(join(r, "etc/hosts"), `${hosts.join("\n")}\n`);
  // a default route: kubeadm needs one to pick the node IP
  await mkdir(join(r, "etc/systemd/network"), { recursive: true });
  await writeFile(
    join(r, "etc/systemd/network/10-host0.network"),
    `[Match]\nName=host0\n\n[Network]\nAddress=${ip}/24\nGateway=${ctx.subnet}.1\nLinkLocalAddressing=no\nIPv6AcceptRA=no\n`,
  );

  await installKey(join(r, "root/.ssh"), f.publicKey, 0, 0);
  const pw = (await readFile(join(r, "etc/passwd"), "utf8"))
    .split("\n")
    .find((l) => l.startsWith(`${SUDO_USER}:`));
  const [, , uid, gid, , home] = pw?.split(":") ?? [];
  if (!uid || !gid || !home) throw new LabError(`the base rootfs has no user ${SUDO_USER}`);
  await installKey(join(r, home, ".ssh"), f.publicKey, Number(uid), Number(gid));
  const shadowPath = join(r, "etc/shadow");
  const shadow = (await readFile(shadowPath, "utf8"))
    .split("\n")
    .map((l) => {
      const p = l.split(":");
      if (p[0] !== SUDO_USER) return l;
      p[1] = f.passwordHash;
      return p.join(":");
    })
    .join("\n");
  await writeFile(shadowPath, shadow);

  await sh(ctx)`ssh-keygen -q -A -f ${r}`;
  const sshDir = join(r, "etc/ssh");
  const knownHosts: string[] = [];
  for (const file of (await readdir(sshDir)).filter((e) => /^ssh_host_.*_key\.pub$/.test(e)).sort()) {
    const [type, key] = (await readFile(join(sshDir, file), "utf8")).trim().split(/\s+/);
    knownHosts.push(`${name},${ip} ${type} ${key}\n`);
  }
  const sshConfig = [
    `Host ${name} ${ip}`,
    `  HostName ${ip}`,
    "  User root",
    `  IdentityFile ${f.keyPath}`,
    "  IdentitiesOnly yes",
    `  UserKnownHostsFile ${f.knownHostsPath}`,
    "  GlobalKnownHostsFile /dev/null",
    "  StrictHostKeyChecking yes",
    "  UpdateHostKeys no",
    "  ConnectTimeout 5",
    "  LogLevel ERROR",
    "",
  ].join("\n");
  return { knownHosts: knownHosts.join(""), sshConfig };
}

async function installKey(dir: string, publicKey: string, uid: number, gid: number): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chown(dir, uid, gid);
  const file = join(dir, "authorized_keys");
  await writeFile(file, publicKey, { mode: 0o600 });
  await chown(file, uid, gid);
}

// Runs detached (own session) so hosts outlive the CLI. It joins the host's cgroups, runs nspawn,
// restarts it when the host reboots (exit 133) and turns SIGTERM into a clean poweroff.
const SUPERVISOR = `
printf '%s\\n' "$KF_LAB_CGROUPS" | while IFS= read -r d; do
  [ -z "$d" ] || echo $$ > "$d/cgroup.procs" || echo "[lab] cannot enter cgroup $d" >&2
done
stop=0; child=
trap 'stop=1; [ -n "$child" ] && kill -TERM "$child" 2>/dev/null' TERM INT
while [ "$stop" = 0 ]; do
  systemd-nspawn "$@" </dev/null & child=$!
  rc=0; wait "$child" || rc=$?
  while kill -0 "$child" 2>/dev/null; do rc=0; wait "$child" || rc=$?; done
  child=
  echo "[lab] nspawn exited rc=$rc"
  [ "$rc" = 133 ] || break
done
`;

async function nspawnArgs(ctx: Ctx, name: string): Promise<string[]> {
  const d = hostDir(ctx, name);
  const args = [
    "--boot",
    `--directory=${join(d, "root")}`,
    `--machine=${machineName(ctx, name)}`,
    `--hostname=${name}`,
    // no systemd/dbus on the machine: --register=no alone fails with "Failed to open system bus"
    "--register=no",
    "--keep-unit",
    "--link-journal=no",
    "--resolv-conf=off",
    "--console=read-only",
    `--network-bridge=${ctx.bridge}`,
    "--capability=all",
    "--drop-capability=CAP_SYS_TIME", // a host must not change the machine's clock
    "--system-call-filter=@keyring bpf", // runc joins a session keyring
    // overlayfs (containerd's snapshotter) cannot use an upperdir on the overlay root
    `--bind=${join(d, "containerd")}:/var/lib/containerd`,
  ];
  const kmsg = await stat("/dev/kmsg").catch(() => undefined);
  if (kmsg?.isCharacterDevice()) args.push("--bind=/dev/kmsg"); // kubelet reads it
  if (await stat(`/lib/modules/${release()}`).catch(() => undefined)) args.push("--bind-ro=/lib/modules");
  return args;
}

export async function startSupervisor(ctx: Ctx, name: string): Promise<void> {
  const d = hostDir(ctx, name);
  const cgDirs = await childCgroupDirs(cgroupName(ctx, name));
  // recorded before they exist, so `down` finds them even after a crash right here
  await recordCgroups(join(d, "cgroups"), cgDirs);
  await createCgroups(cgDirs, ctx.memoryLimit);
  const args = await nspawnArgs(ctx, name);
  const logFile = await open(join(d, "console.log"), "a");
  let pid: number | undefined;
  try {
    const child = spawn("/bin/sh", ["-c", SUPERVISOR, `kubeforge-lab:${machineName(ctx, name)}`, ...args], {
      detached: true,
      stdio: ["ignore", logFile.fd, logFile.fd],
      env: { ...ENV, KF_LAB_CGROUPS: cgDirs.join("\n") },
    });
    child.on("error", () => {});
    child.unref();
    pid = child.pid;
  } finally {
    await logFile.close();
  }
  if (!pid) throw new LabError(`${name}: could not start systemd-nspawn`);
  await writeFile(join(d, "pid"), await pidStamp(pid));
}

export async function supervisorPid(ctx: Ctx, name: string): Promise<number | undefined> {
  const stamp = await readFile(join(hostDir(ctx, name), "pid"), "utf8").catch(() => undefined);
  return liveStampedPid(stamp);
}

/**
 * Power cut: SIGKILL each host's PID 1, so the kernel kills its whole PID namespace (nested
 * containers included) and nspawn cleans up its veth and exits. Then anything left in the hosts'
 * own cgroups (only ever started by us) is killed by PID.
 */
export async function powerOff(ctx: Ctx, names: string[], timeoutMs = 15_000): Promise<void> {
  const nspawns = async (sup: number) => (await childrenOf(sup)).filter((c) => c.comm === "systemd-nspawn");
  for (const name of names) {
    const sup = await supervisorPid(ctx, name);
    if (!sup) continue;
    killPid(sup, "SIGTERM"); // no restart after this
    for (const n of await nspawns(sup)) for (const init of await childrenOf(n.pid)) killPid(init.pid);
  }
  const deadline = Date.now() + timeoutMs;
  for (const name of names) {
    while ((await supervisorPid(ctx, name)) && Date.now() < deadline) await sleep(100, ctx);
    const sup = await supervisorPid(ctx, name);
    if (sup) {
      ctx.log(`[lab] ${name}: still running after ${timeoutMs / 1000}s, killing it`);
      for (const n of await nspawns(sup)) killPid(n.pid);
      killPid(sup);
    }
  }
  for (const name of names) await killLeftovers(ctx, name);
  for (const name of names) await removeNspawnLeftovers(ctx, name);
}

async function killLeftovers(ctx: Ctx, name: string): Promise<void> {
  const dirs = await readCgroupList(join(hostDir(ctx, name), "cgroups"));
  for (let round = 0; round < 10; round++) {
    const pids = (await cgroupPids(dirs)).filter((p) => p !== process.pid);
    if (pids.length === 0) return;
    ctx.log(`[lab] ${name}: killing leftover pids ${pids.join(" ")}`);
    for (const p of pids) killPid(p);
    await sleep(300, ctx);
  }
}

// A killed nspawn leaves its lock behind (/run is on disk here, not tmpfs).
async function removeNspawnLeftovers(ctx: Ctx, name: string): Promise<void> {
  const root = join(hostDir(ctx, name), "root");
  const st = await stat(root).catch(() => undefined);
  if (st) await rm(`/run/systemd/nspawn/locks/inode-${st.dev}:${st.ino}`, { force: true });
  await rmdir(`/run/systemd/nspawn/propagate/${machineName(ctx, name)}`).catch(() => {});
}
