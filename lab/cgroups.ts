// Per-host cgroups. With --keep-unit, nspawn puts the container into "<own cgroup>/payload"; hosts
// started from one cgroup would all share it (and each host's systemd would manage the others'
// services). So every host's supervisor moves into its own child cgroup, in every hierarchy,
// before it starts nspawn. The children sit under the caller's cgroup, so memory stays accounted
// to the caller.
import { appendFile, mkdir, readdir, readFile, rmdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { type MountEntry, mounts } from "./common.js";

/** The cgroup directories (one per hierarchy) a host named `cgName` gets under our current cgroup. */
export async function childCgroupDirs(cgName: string): Promise<string[]> {
  return cgroupDirsFor(await readFile("/proc/self/cgroup", "utf8"), await mounts(), cgName);
}

/** Pure part of childCgroupDirs: /proc/<pid>/cgroup text + the cgroup mounts -> child directories. */
export function cgroupDirsFor(procCgroup: string, allMounts: MountEntry[], cgName: string): string[] {
  const cgroupMounts = allMounts.filter((m) => m.fsType === "cgroup" || m.fsType === "cgroup2");
  const dirs: string[] = [];
  for (const line of procCgroup.split("\n").filter(Boolean)) {
    const [id, controllers = "", ...rest] = line.split(":");
    const path = rest.join(":");
    let mountPoint: string | undefined;
    if (id === "0") {
      mountPoint = cgroupMounts.find((m) => m.fsType === "cgroup2")?.mountPoint;
    } else {
      // a v1 hierarchy is the mount whose options name all of its controllers (or name=...)
      const wanted = controllers.split(",").filter(Boolean);
      mountPoint = cgroupMounts.find((m) => {
        if (m.fsType !== "cgroup") return false;
        const opts = m.superOptions.split(",");
        return wanted.every((c) => opts.includes(c));
      })?.mountPoint;
    }
    if (mountPoint) dirs.push(join(mountPoint, path, cgName));
  }
  return [...new Set(dirs)];
}

/** Creates the directories and makes them usable (cpuset needs cpus/mems before a task can join). */
export async function createCgroups(dirs: string[], memoryLimit?: string): Promise<void> {
  for (const d of dirs) {
    await mkdir(d, { recursive: true });
    await inheritCpuset(d);
    if (memoryLimit) {
      for (const f of ["memory.limit_in_bytes", "memory.max"]) {
        await writeFile(join(d, f), memoryLimit).catch(() => {});
      }
    }
  }
}

async function inheritCpuset(d: string): Promise<void> {
  for (const f of ["cpuset.cpus", "cpuset.mems"]) {
    try {
      if ((await readFile(join(d, f), "utf8")).trim() === "") {
        await writeFile(join(d, f), await readFile(join(d, "..", f), "utf8"));
      }
    } catch {
      // not a cpuset hierarchy
    }
  }
}

export async function recordCgroups(file: string, dirs: string[]): Promise<void> {
  const known = new Set(await readCgroupList(file));
  const fresh = dirs.filter((d) => !known.has(d));
  if (fresh.length > 0) await appendFile(file, fresh.map((d) => `${d}\n`).join(""));
}

export async function readCgroupList(file: string): Promise<string[]> {
  try {
    return [...new Set((await readFile(file, "utf8")).split("\n").filter(Boolean))];
  } catch {
    return [];
  }
}

async function subtree(dir: string): Promise<string[]> {
  let entries: import("node:fs").Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const e of entries) if (e.isDirectory()) out.push(...(await subtree(join(dir, e.name))));
  out.push(dir); // children first
  return out;
}

/** Every PID in these cgroup subtrees. */
export async function cgroupPids(dirs: string[]): Promise<number[]> {
  const pids = new Set<number>();
  for (const top of dirs) {
    for (const d of await subtree(top)) {
      try {
        for (const p of (await readFile(join(d, "cgroup.procs"), "utf8")).split("\n")) {
          if (p) pids.add(Number(p));
        }
      } catch {}
    }
  }
  return [...pids];
}

/** rmdir the subtrees, deepest first; returns the directories that could not be removed. */
export async function removeCgroups(dirs: string[]): Promise<string[]> {
  const left: string[] = [];
  for (const top of dirs) {
    for (const d of await subtree(top)) {
      try {
        await rmdir(d);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "ENOENT") left.push(d);
      }
    }
  }
  return left;
}
