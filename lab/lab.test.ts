import { describe, expect, it } from "vitest";
import { cgroupDirsFor } from "./cgroups.js";
import { CommandError, context, LabError, liveStampedPid, type MountEntry, pidStamp, sh } from "./common.js";

const cg = (mountPoint: string, fsType: string, superOptions: string): MountEntry => ({
  mountPoint,
  fsType,
  source: fsType,
  superOptions,
});

describe("lab options", () => {
  it("defaults to the kfbr0 instance on 198.18.0 under /var/lib/kubeforge-lab", () => {
    const ctx = context();
    expect(ctx).toMatchObject({
      bridge: "kfbr0",
      subnet: "198.18.0",
      run: "/var/lib/kubeforge-lab/run-kfbr0",
    });
    expect(ctx.base).toBe("/var/lib/kubeforge-lab/base");
  });

  it("keeps every address inside 198.18.0.0/15", () => {
    expect(context({ subnet: "198.19.255" }).subnet).toBe("198.19.255");
    for (const subnet of ["10.0.0", "198.20.0", "198.18.256", "198.18", "198.18.0.0"]) {
      expect(() => context({ subnet })).toThrow(LabError);
    }
  });

  it("rejects bridge names the kernel would refuse and roots that break overlay options", () => {
    expect(() => context({ bridge: "a-very-long-bridge" })).toThrow(/bad bridge name/);
    expect(() => context({ bridge: "br 0" })).toThrow(/bad bridge name/);
    expect(() => context({ root: "relative" })).toThrow(/absolute path/);
    expect(() => context({ root: "/var/lib/a,b" })).toThrow(/commas/);
  });
});

describe("cgroupDirsFor", () => {
  const mountList = [
    cg("/sys/fs/cgroup/cpu", "cgroup", "rw,cpu"),
    cg("/sys/fs/cgroup/cpuacct", "cgroup", "rw,cpuacct"),
    cg("/sys/fs/cgroup/memory", "cgroup", "rw,memory"),
    cg("/sys/fs/cgroup/systemd", "cgroup", "rw,name=systemd"),
    cg("/sys/fs/cgroup/unified", "cgroup2", "rw"),
    cg("/", "ext4", "rw"),
  ];

  it("puts the host under the caller's cgroup in every hierarchy, v1 and v2", () => {
    const proc = "4:memory:/process_api/abc\n9:name=systemd:/\n1:cpu:/\n2:cpuacct:/\n0::/\n";
    expect(cgroupDirsFor(proc, mountList, "kubeforge-lab-kfbr0-h1")).toEqual([
      "/sys/fs/cgroup/memory/process_api/abc/kubeforge-lab-kfbr0-h1",
      "/sys/fs/cgroup/systemd/kubeforge-lab-kfbr0-h1",
      "/sys/fs/cgroup/cpu/kubeforge-lab-kfbr0-h1",
      "/sys/fs/cgroup/cpuacct/kubeforge-lab-kfbr0-h1",
      "/sys/fs/cgroup/unified/kubeforge-lab-kfbr0-h1",
    ]);
  });

  it("matches a co-mounted v1 hierarchy by all of its controllers and skips unmounted ones", () => {
    const joint = [cg("/sys/fs/cgroup/cpu,cpuacct", "cgroup", "rw,cpu,cpuacct")];
    expect(cgroupDirsFor("3:cpu,cpuacct:/x\n5:pids:/\n", joint, "h")).toEqual([
      "/sys/fs/cgroup/cpu,cpuacct/x/h",
    ]);
  });
});

describe("lab helpers", () => {
  it("recognises a stamped live process and not a recycled or dead PID", async () => {
    const stamp = await pidStamp(process.pid);
    expect(await liveStampedPid(stamp)).toBe(process.pid);
    expect(await liveStampedPid(`${process.pid} 1`)).toBeUndefined();
    expect(await liveStampedPid("1 0")).toBeUndefined();
    expect(await liveStampedPid(undefined)).toBeUndefined();
  });

  it("turns a failed command into a CommandError naming the command and its stderr", async () => {
    const ctx = context();
    const err = await sh(ctx)`sh -c ${"echo boom >&2; exit 3"}`.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CommandError);
    expect(err).toBeInstanceOf(LabError);
    expect((err as CommandError).exitCode).toBe(3);
    expect((err as CommandError).message).toMatch(/exit 3.*boom/s);
    expect((await sh(ctx, { nothrow: true })`false`).exitCode).toBe(1);
    expect((await sh(ctx, { input: "hi" })`cat`).stdout).toBe("hi");
  });

  it("stops a command when the signal aborts", async () => {
    const ac = new AbortController();
    const ctx = context({ signal: ac.signal });
    setTimeout(() => ac.abort(), 50);
    await expect(sh(ctx)`sleep 5`).rejects.toThrow(/aborted/);
  });
});
