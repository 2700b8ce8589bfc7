// The base rootfs every lab host boots from: debootstrap'd Debian plus a few fix-ups, cached.
import { randomBytes } from "node:crypto";
import {
  chmod,
  copyFile,
  mkdir,
  mkdtemp,
  open,
  readdir,
  readFile,
  rm,
  symlink,
  writeFile,
} from "node:fs/promises";
import { join } from "node:path";
import {
  BUILTIN_MODULES,
  BUILTIN_MODULES_SCRIPT,
  BUILTIN_MODULES_UNIT,
  JOURNALD_CONFIG,
  SETUP_UNIT,
  SSHD_CONFIG,
} from "./base-files.js";
import {
  type Ctx,
  checkAborted,
  context,
  LabError,
  type LabOptions,
  liveStampedPid,
  pidStamp,
  requireRoot,
  requireTools,
  sh,
  sleep,
  tail,
} from "./common.js";
import { writeOciLayout } from "./oci.js";

export const SUITE = "bookworm";
export const BASE_PACKAGES = [
  "systemd",
  "systemd-sysv",
  "dbus",
  "openssh-server",
  "iproute2",
  "iptables",
  "conntrack",
  "containerd",
  "runc",
  "ca-certificates",
  "kmod",
  "procps",
  "sudo",
  "busybox-static",
  "socat",
  "ethtool",
  "containernetworking-plugins",
];
/** Bump when customizeBase changes: forces a (cheap) re-customization of the cached debootstrap. */
const BASE_REVISION = 2;

export const SUDO_USER = "kubeforge";
/** Inside every host; a copy is also at <root>/busybox-oci.tar. */
export const BUSYBOX_IMAGE_PATH = "/opt/kubeforge-lab/busybox-oci.tar";
export const BUSYBOX_IMAGE_NAME = "docker.io/library/busybox:latest";

interface Stamp {
  suite: string;
  mirror: string;
  packages: string[];
  revision?: number;
}

async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, "utf8");
  } catch {
    return undefined;
  }
}

/** Builds the base rootfs unless the cached one matches the package list and revision. */
export async function buildBase(opts: LabOptions = {}): Promise<void> {
  const ctx = context(opts);
  requireRoot("lab base");
  await ensureBase(ctx);
}

/**
 * Builds the base if needed, then runs `claim` still holding the base lock: an instance created
 * there cannot see the base rebuilt under it by another process.
 */
export async function ensureBase(ctx: Ctx, claim?: () => Promise<void>): Promise<void> {
  await mkdir(ctx.root, { recursive: true, mode: 0o755 });
  await withBaseLock(ctx, async () => {
    await build(ctx);
    await claim?.();
  });
}

async function build(ctx: Ctx): Promise<void> {
  const raw: Stamp = { suite: SUITE, mirror: ctx.mirror, packages: BASE_PACKAGES };
  const want = JSON.stringify({ ...raw, revision: BASE_REVISION });
  const stampFile = join(ctx.root, "base.stamp");
  if ((await readText(stampFile)) === want && (await readText(join(ctx.base, "etc/os-release")))) {
    ctx.log(`[lab] base rootfs cached at ${ctx.base}`);
    return;
  }
  const up = (await readdir(ctx.root)).filter((e) => e.startsWith("run-"));
  if (up.length > 0) {
    throw new LabError(
      `the base rootfs needs a rebuild but lab instances use it (${up.join(", ")}): run lab down first`,
    );
  }
  await requireTools(["debootstrap", "chroot", "tar"]);
  const t0 = performance.now();
  const $ = sh(ctx);

  // 1. plain debootstrap output, cached separately so a customization change costs seconds
  const dbs = join(ctx.root, "debootstrap");
  const dbsStamp = join(ctx.root, "debootstrap.stamp");
  if ((await readText(dbsStamp)) !== JSON.stringify(raw)) {
    await rm(dbsStamp, { force: true });
    await rm(dbs, { recursive: true, force: true });
    await debootstrap(ctx, `${dbs}.tmp`);
    await $`mv ${`${dbs}.tmp`} ${dbs}`;
    await writeFile(dbsStamp, JSON.stringify(raw));
  }

  // 2. the base the hosts boot from: a customized copy
  const tmp = `${ctx.base}.tmp`;
  await rm(stampFile, { force: true });
  await rm(tmp, { recursive: true, force: true });
  await $`cp -a ${dbs} ${tmp}`;
  checkAborted(ctx);
  await customizeBase(ctx, tmp);
  await rm(ctx.base, { recursive: true, force: true });
  await $`mv ${tmp} ${ctx.base}`;
  await copyFile(join(ctx.base, BUSYBOX_IMAGE_PATH), join(ctx.root, "busybox-oci.tar"));
  await writeFile(stampFile, want);
  const size = (await sh(ctx, { nothrow: true })`du -sh ${ctx.base}`).stdout.split("\t")[0];
  ctx.log(`[lab] base ready in ${((performance.now() - t0) / 1000).toFixed(0)}s, ${size}`);
}

async function debootstrap(ctx: Ctx, target: string): Promise<void> {
  const logFile = join(ctx.root, "debootstrap.log");
  ctx.log(`[lab] debootstrap ${SUITE} with ${BASE_PACKAGES.length} packages (about 1.5 min)`);
  for (let attempt = 1; ; attempt++) {
    // a failed debootstrap leaves a half-built tree: start over
    await rm(target, { recursive: true, force: true });
    const r = await sh(ctx, {
      nothrow: true,
    })`debootstrap --variant=minbase --include=${BASE_PACKAGES.join(",")} ${SUITE} ${target} ${ctx.mirror}`;
    await writeFile(logFile, r.stdall);
    if (r.exitCode === 0) return;
    checkAborted(ctx);
    const log = tail((await readText(logFile)) ?? "", 5);
    if (attempt === 3) throw new LabError(`debootstrap failed 3 times (log: ${logFile}):\n${log}`);
    ctx.log(`[lab] debootstrap failed (try ${attempt}), retrying:\n${log}`);
    await sleep(5000, ctx);
  }
}

async function customizeBase(ctx: Ctx, r: string): Promise<void> {
  const $ = sh(ctx);
  const chroot = (...args: string[]) => $`chroot ${r} ${args}`;
  const chrootMaybe = (...args: string[]) => sh(ctx, { nothrow: true })`chroot ${r} ${args}`;
  await removeFiles(join(r, "var/cache/apt/archives"), (f) => f.endsWith(".deb"));
  await removeFiles(join(r, "var/cache/apt"), (f) => f.endsWith(".bin"));
  await removeFiles(join(r, "var/lib/apt/lists"), () => true);
  // host keys and machine-id are written per host at `up`
  await removeFiles(join(r, "etc/ssh"), (f) => f.startsWith("ssh_host_"));
  await writeFile(join(r, "etc/machine-id"), "");
  await writeFile(join(r, "etc/hostname"), "localhost\n");
  // no DNS: nothing outside is reachable anyway
  await rm(join(r, "etc/resolv.conf"), { force: true });
  await writeFile(join(r, "etc/resolv.conf"), "");

  await chroot("systemctl", "enable", "systemd-networkd.service");
  // containerd is installed but stopped, like a host the tool has not configured yet
  for (const unit of [
    "containerd.service",
    "e2scrub_reap.service",
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "dpkg-db-backup.timer",
    "e2scrub_all.timer",
    "fstrim.timer",
  ]) {
    await chrootMaybe("systemctl", "disable", unit);
  }
  await chrootMaybe("systemctl", "mask", "getty@tty1.service");

  await mkdir(join(r, "etc/systemd/journald.conf.d"), { recursive: true });
  await writeFile(join(r, "etc/systemd/journald.conf.d/kubeforge-lab.conf"), JOURNALD_CONFIG);
  await writeFile(join(r, "etc/ssh/sshd_config.d/kubeforge-lab.conf"), SSHD_CONFIG);

  // Sudo with a password (Debian's %sudo rule); the password itself is set per host at `up`.
  await chroot("useradd", "--create-home", "--shell", "/bin/bash", "--groups", "sudo", SUDO_USER);

  await mkdir(join(r, "etc/kubeforge-lab"), { recursive: true });
  await writeFile(join(r, "etc/systemd/system/kubeforge-lab-setup.service"), SETUP_UNIT);
  await writeFile(join(r, "etc/kubeforge-lab/builtin-modules"), BUILTIN_MODULES);
  await writeFile(join(r, "usr/local/sbin/kubeforge-lab-builtin-modules"), BUILTIN_MODULES_SCRIPT, {
    mode: 0o755,
  });
  await writeFile(join(r, "etc/systemd/system/kubeforge-lab-builtin-modules.service"), BUILTIN_MODULES_UNIT);
  await chroot("systemctl", "enable", "kubeforge-lab-setup.service", "kubeforge-lab-builtin-modules.service");

  // a tiny local image so tests can `ctr images import` + `ctr run` without a registry
  const imagePath = join(r, BUSYBOX_IMAGE_PATH);
  await mkdir(join(imagePath, ".."), { recursive: true });
  await makeBusyboxOci(ctx, join(r, "bin/busybox"), imagePath, BUSYBOX_IMAGE_NAME);
}

async function removeFiles(dir: string, match: (name: string) => boolean): Promise<void> {
  for (const e of await readdir(dir, { withFileTypes: true })) {
    if (e.isFile() && match(e.name)) await rm(join(dir, e.name));
  }
}

/** A hand-made OCI image layout tarball with a static busybox. */
async function makeBusyboxOci(ctx: Ctx, busybox: string, out: string, name: string): Promise<void> {
  const $ = sh(ctx);
  const t = await mkdtemp("/tmp/kubeforge-lab-oci-");
  try {
    const rootfs = join(t, "rootfs");
    for (const d of ["bin", "tmp", "etc"]) await mkdir(join(rootfs, d), { recursive: true });
    await copyFile(busybox, join(rootfs, "bin/busybox"));
    await chmod(join(rootfs, "bin/busybox"), 0o755);
    const applets = (await $`${busybox} --list`).stdout.split("\n").filter((a) => a && a !== "busybox");
    for (const a of applets) await symlink("busybox", join(rootfs, "bin", a));
    await writeFile(join(rootfs, "etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n");
    await writeFile(join(rootfs, "etc/group"), "root:x:0:\n");
    const tarFlags = ["--numeric-owner", "--owner=0", "--group=0", "--sort=name", "--mtime=@0"];
    await $`tar -C ${rootfs} ${tarFlags} -cf ${join(t, "layer.tar")} .`;

    const entries = await writeOciLayout(join(t, "oci"), {
      ref: name,
      layerTar: await readFile(join(t, "layer.tar")),
      runConfig: { Env: ["PATH=/bin"], Cmd: ["/bin/sh"] },
    });
    await $`tar -C ${join(t, "oci")} ${tarFlags} -cf ${out} ${entries}`;
  } finally {
    await rm(t, { recursive: true, force: true });
  }
}

/** sha512-crypt hash made with the base's own perl/libcrypt, so the machine needs neither. */
export async function hashPassword(ctx: Ctx, password: string): Promise<string> {
  const salt = randomSalt(16);
  const r = await sh(ctx, {
    input: `${password}\n`,
  })`chroot ${ctx.base} perl -e ${"my $p = <STDIN>; chomp $p; print crypt($p, $ARGV[0])"} ${`$6$${salt}$`}`;
  if (!r.stdout.startsWith("$6$")) throw new LabError("could not hash the sudo password in the base rootfs");
  return r.stdout.trim();
}

function randomSalt(n: number): string {
  const chars = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  const bytes = randomBytes(n);
  return Array.from(bytes, (b) => chars[b % 64]).join("");
}

/** Serializes base builds across processes (several instances may start at once). */
async function withBaseLock<T>(ctx: Ctx, fn: () => Promise<T>): Promise<T> {
  const lock = join(ctx.root, ".base.lock");
  let announced = false;
  for (;;) {
    checkAborted(ctx);
    try {
      const fh = await open(lock, "wx");
      await fh.writeFile(await pidStamp(process.pid));
      await fh.close();
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    }
    const owner = await liveStampedPid(await readText(lock));
    if (owner === undefined) {
      await rm(lock, { force: true }); // left by a crashed build
      continue;
    }
    if (!announced) ctx.log(`[lab] waiting for another base build (pid ${owner})`);
    announced = true;
    await sleep(1000, ctx);
  }
  try {
    return await fn();
  } finally {
    await rm(lock, { force: true });
  }
}
