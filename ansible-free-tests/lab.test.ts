// Boots 3 lab hosts and checks, with the system OpenSSH client, what the other scenarios rely on.
// Uses its own bridge and subnet so a developer's default lab (kfbr0, 198.18.0) can stay up.
import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { $ } from "zx";
import {
  type Lab,
  type LabOptions,
  labDown,
  labStatus,
  labUp,
  startHost,
  stopHost,
} from "../lab/testhosts.js";

const opts: LabOptions = {
  bridge: "kfbrt0",
  subnet: "198.18.7",
  log: (line) => console.error(line),
};
const INSTANCE = "kubeforge-lab-kfbrt0-";
const sh = $({ quiet: true, nothrow: true });

let booted: Lab | undefined;
let bootError: unknown;

// Every test fails (rather than being skipped, as after a failed hook) when the hosts did not boot.
function theLab(): Lab {
  if (!booted) throw new Error(`lab up failed: ${String(bootError)}`, { cause: bootError });
  return booted;
}

function sshArgs(user = "root"): string[] {
  return ["-F", theLab().sshConfigPath, "-o", "BatchMode=yes", "-l", user];
}

async function onHost(host: string, command: string, user = "root", input?: string) {
  const s = input === undefined ? sh : $({ quiet: true, nothrow: true, input });
  return s`ssh ${sshArgs(user)} ${host} ${command}`;
}

async function out(host: string, command: string): Promise<string> {
  const r = await onHost(host, command);
  expect(r.exitCode, `${host}: ${command}: ${r.stderr}`).toBe(0);
  return r.stdout.trim();
}

async function findCgroups(dir: string, depth: number, found: string[] = []): Promise<string[]> {
  if (depth < 0) return found;
  let entries: import("node:fs").Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return found;
  }
  for (const e of entries) {
    if (!e.isDirectory()) continue;
    if (e.name.startsWith(INSTANCE)) found.push(join(dir, e.name));
    else await findCgroups(join(dir, e.name), depth - 1, found);
  }
  return found;
}

describe("kubeforge lab (systemd-nspawn test hosts)", () => {
  beforeAll(async () => {
    try {
      booted = await labUp(3, opts);
    } catch (err) {
      bootError = err;
    }
  });

  afterAll(async () => {
    await labDown(opts);
  });

  it("returns three hosts on the instance's subnet and keeps the sudo password in a 0600 lab.json", async () => {
    const lab = theLab();
    expect(lab.hosts).toEqual([
      { name: "h1", address: "198.18.7.11" },
      { name: "h2", address: "198.18.7.12" },
      { name: "h3", address: "198.18.7.13" },
    ]);
    expect(lab.users.root).toBe("root");
    expect(lab.users.sudoUser).not.toBe("root");
    expect(lab.users.sudoPassword.length).toBeGreaterThanOrEqual(16);
    const json = join(lab.runDir, "lab.json");
    expect((await stat(json)).mode & 0o777).toBe(0o600);
    expect(JSON.parse(await readFile(json, "utf8"))).toEqual(lab);
    expect(await labStatus(opts)).toEqual(lab.hosts.map((h) => ({ ...h, running: true })));
  });

  it("lets root in with the generated key under strict host key checking", async () => {
    const lab = theLab();
    for (const h of lab.hosts) {
      const r =
        await sh`ssh -i ${lab.keyPath} -o IdentitiesOnly=yes -o UserKnownHostsFile=${lab.knownHostsPath} -o StrictHostKeyChecking=yes -o BatchMode=yes ${`root@${h.address}`} id -u`;
      expect(r.exitCode, r.stderr).toBe(0);
      expect(r.stdout.trim()).toBe("0");
    }
    // the check is real: an empty known_hosts is refused
    const r =
      await sh`ssh -i ${lab.keyPath} -o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -o BatchMode=yes ${`root@${lab.hosts[0]?.address}`} true`;
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/host key verification failed/i);
  });

  it("runs systemd as PID 1 and every host reaches the running state", async () => {
    const lab = theLab();
    for (const h of lab.hosts) {
      expect(await out(h.name, "cat /proc/1/comm")).toBe("systemd");
      expect(await out(h.name, "systemctl is-system-running")).toBe("running");
    }
  });

  it("gives every host its own hostname and machine-id", async () => {
    const lab = theLab();
    const names: string[] = [];
    const ids: string[] = [];
    for (const h of lab.hosts) {
      names.push(await out(h.name, "hostname"));
      ids.push(await out(h.name, "cat /etc/machine-id"));
    }
    expect(names).toEqual(["h1", "h2", "h3"]);
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{32}$/);
    expect(new Set(ids).size).toBe(3);
  });

  it("connects hosts to each other over TCP 22, by address and by /etc/hosts name, with a default route", async () => {
    const lab = theLab();
    for (const from of lab.hosts) {
      expect(await out(from.name, "ip route show default")).toContain(`via ${lab.subnet}.1`);
      for (const to of lab.hosts) {
        if (to === from) continue;
        expect(await out(from.name, `getent hosts ${to.name}`)).toContain(to.address);
        const r = await onHost(
          from.name,
          `timeout 3 bash -c '</dev/tcp/${to.address}/22 && </dev/tcp/${to.name}/22'`,
        );
        expect(r.exitCode, `${from.name} -> ${to.name}: ${r.stderr}`).toBe(0);
      }
    }
  });

  it("requires the sudo user's password for sudo", async () => {
    const lab = theLab();
    const user = lab.users.sudoUser;
    for (const h of lab.hosts) {
      expect(await onHost(h.name, "id -un", user).then((r) => r.stdout.trim())).toBe(user);
      const noPassword = await onHost(h.name, "sudo -n true", user);
      expect(noPassword.exitCode).not.toBe(0);
      expect(noPassword.stderr).toMatch(/password is required/);
      const withPassword = await onHost(h.name, "sudo -S -p '' id -u", user, `${lab.users.sudoPassword}\n`);
      expect(withPassword.exitCode, withPassword.stderr).toBe(0);
      expect(withPassword.stdout.trim()).toBe("0");
    }
    const wrong = await onHost("h1", "sudo -S -p '' true", user, "not-the-password\n");
    expect(wrong.exitCode).not.toBe(0);
  });

  it("installs containerd, runc and the provisioning packages, with containerd stopped and disabled", async () => {
    const lab = theLab();
    for (const h of lab.hosts) {
      const pkgs = ["containerd", "runc", "socat", "ethtool", "containernetworking-plugins"];
      const status = await out(h.name, `dpkg-query -W -f '\${Status}\\n' ${pkgs.join(" ")}`);
      expect(status.split("\n")).toEqual(pkgs.map(() => "install ok installed"));
      const active = await onHost(h.name, "systemctl is-active containerd");
      expect(active.stdout.trim()).toBe("inactive");
      const enabled = await onHost(h.name, "systemctl is-enabled containerd");
      expect(enabled.stdout.trim()).toBe("disabled");
      expect(await out(h.name, "test -s /opt/kubeforge-lab/busybox-oci.tar && echo ok")).toBe("ok");
    }
  });

  it("power-cuts one host and boots it again with its disk kept", async () => {
    const lab = theLab();
    await out("h3", "echo kept > /root/marker");
    const bootBefore = await out("h3", "cat /proc/sys/kernel/random/boot_id");
    await stopHost("h3", opts);
    expect((await labStatus(opts)).find((h) => h.name === "h3")?.running).toBe(false);
    const unreachable = await onHost("h1", `timeout 2 bash -c '</dev/tcp/${lab.hosts[2]?.address}/22'`);
    expect(unreachable.exitCode).not.toBe(0);
    await startHost("h3", opts);
    expect(await out("h3", "cat /root/marker")).toBe("kept");
    expect(await out("h3", "cat /proc/sys/kernel/random/boot_id")).not.toBe(bootBefore);
    expect((await labStatus(opts)).every((h) => h.running)).toBe(true);
  });

  it("lab down leaves no processes, cgroups, mounts, bridge or state behind", async () => {
    const lab = theLab();
    const runDir = lab.runDir;
    const supervisors = await Promise.all(
      lab.hosts.map(async (h) => Number((await readFile(join(runDir, h.name, "pid"), "utf8")).split(" ")[0])),
    );
    await labDown(opts);

    await expect(stat(runDir)).rejects.toThrow(/ENOENT/);
    await expect(stat("/sys/class/net/kfbrt0")).rejects.toThrow(/ENOENT/);
    const mountinfo = await readFile("/proc/self/mountinfo", "utf8");
    expect(mountinfo).not.toContain(runDir);
    expect(mountinfo).not.toContain(INSTANCE);
    expect(await findCgroups("/sys/fs/cgroup", 8)).toEqual([]);
    for (const pid of supervisors) {
      const st = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => "");
      // gone, or a zombie waiting to be reaped by its parent
      expect(st === "" || st.slice(st.lastIndexOf(")") + 2).startsWith("Z")).toBe(true);
    }
    const leftovers: string[] = [];
    for (const p of await readdir("/proc")) {
      if (!/^\d+$/.test(p)) continue;
      const cmd = await readFile(`/proc/${p}/cmdline`, "utf8").catch(() => "");
      if (cmd.includes("--machine=kfbrt0-")) leftovers.push(`${p}: ${cmd.replaceAll("\0", " ")}`);
    }
    expect(leftovers).toEqual([]);
    expect(await labStatus(opts)).toEqual([]);
    // idempotent
    await labDown(opts);
  });
});
