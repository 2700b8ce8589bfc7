// `kubeforge preflight` end to end: the built CLI (`node bin/kubeforge.js`, so ESM and packaging
// problems show) against three real lab hosts (h1 control plane, h2 and h3 workers). Every case
// reads the `--output json` events and checks exit codes and the named checks' status per host.
// Faults are injected over plain ssh as root and restored after each test.
import { createHash, randomBytes } from "node:crypto";
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import yaml from "js-yaml";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { $ } from "zx";
import { labClusterFile } from "../cli/lab-command.js";
import { dumpYaml } from "../config/export.js";
import { type Lab, type LabOptions, labDown, labUp } from "../lab/testhosts.js";
import { ensureBuilt } from "./support/cli.js";
import { type CliRun, cliIn, must as mustOn, type RunEvent, show } from "./support/scenario.js";

const LAB: LabOptions = { bridge: "kfbrp0", subnet: "198.18.10", log: (line) => console.error(line) };
const UNREACHABLE = "198.18.10.99";
const sh = $({ quiet: true, nothrow: true });

let booted: Lab | undefined;
let bootError: unknown;
let work: string;
/** ed25519 key with a passphrase, accepted for root and the sudo user. */
let passKey: string;
let passphrase: string;
/** ed25519 key without a passphrase, accepted for root; used only by the bad-input case. */
let probeKey: string;

// Every test fails (rather than being skipped, as after a failed hook) when the setup failed.
function theLab(): Lab {
  if (!booted) throw new Error(`lab setup failed: ${String(bootError)}`, { cause: bootError });
  return booted;
}

// ---------------------------------------------------------------------------------------------
// The built CLI as a separate process

/** `kubeforge -o json --state-dir … preflight -f FILE flags…`; in JSON, stdout holds nothing but events. */
function preflight(
  file: string,
  flags: string[] = [],
  options: { env?: Record<string, string>; stateDir?: string; output?: "json" | "text" } = {},
): Promise<CliRun> {
  return cliIn(work, ["preflight", "-f", file, ...flags], options.stateDir, {
    env: options.env,
    output: options.output,
    strict: true,
  });
}

function checkEvents(run: CliRun): RunEvent[] {
  return run.events.filter((event) => event.type === "check");
}

/** The status of `check` per host, e.g. {h1: "error", h2: "ok"}; hosts without the check are absent. */
function statusByHost(run: CliRun, check: string): Record<string, string> {
  return Object.fromEntries(
    checkEvents(run)
      .filter((event) => event.check === check)
      .map((event) => [event.host, event.status]),
  );
}

function checkOf(run: CliRun, host: string, check: string): RunEvent {
  const found = checkEvents(run).filter((event) => event.host === host && event.check === check);
  expect(found, `${host} ${check} check events`).toHaveLength(1);
  return found[0] as RunEvent;
}

/** Checks that are not ok or fixable, as `host/check:status`. */
function problems(run: CliRun): string[] {
  return checkEvents(run)
    .filter((event) => event.status !== "ok" && event.status !== "fixable")
    .map((event) => `${event.host}/${event.check}:${event.status}`);
}

function hostEnds(run: CliRun, phase: string): Record<string, RunEvent> {
  return Object.fromEntries(
    run.events
      .filter((event) => event.type === "host.end" && event.phase === phase)
      .map((event) => [event.host, event]),
  );
}

function runEnd(run: CliRun): RunEvent | undefined {
  return run.events.find((event) => event.type === "run.end");
}

// ---------------------------------------------------------------------------------------------
// The hosts, over plain OpenSSH as root (the lab's own key, ssh_config and known_hosts)

const must = async (host: string, command: string, input?: string) => mustOn(theLab(), host, command, input);

const HOSTS = ["h1", "h2", "h3"] as const;

// Faults and changed settings are undone after each test, last first; a failed restore fails the test.
const restores: Array<{ what: string; run: () => Promise<unknown> }> = [];
function restoreAfter(what: string, run: () => Promise<unknown>): void {
  restores.push({ what, run });
}

// ---------------------------------------------------------------------------------------------
// Cluster files

interface ClusterDocument {
  metadata: { name: string };
  spec: {
    ssh: Record<string, unknown>;
    kubernetes: Record<string, unknown>;
    hosts: Array<Record<string, unknown>>;
    [field: string]: unknown;
  };
}

/** The lab's own cluster file (`labClusterFile`, as `lab up` writes it), edited, under `work`. */
function clusterFile(
  name: string,
  edit: (document: ClusterDocument) => void = () => {},
  user: "root" | "sudo" = "root",
): string {
  const document = yaml.load(
    labClusterFile(theLab(), { name: "pf", version: "v1.30.4", user }),
  ) as ClusterDocument;
  edit(document);
  const path = join(work, `${name}.yaml`);
  writeFileSync(path, dumpYaml(document));
  return path;
}

const sha256 = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex");

/** Address → SHA256 fingerprint of each key in a known_hosts file, as OpenSSH computes it. */
async function fingerprints(knownHosts: string): Promise<Map<string, string>> {
  const out = await $({ quiet: true })`ssh-keygen -l -f ${knownHosts}`;
  const map = new Map<string, string>();
  for (const line of out.stdout.trim().split("\n")) {
    const [, fp, hosts] = line.split(" ");
    for (const host of hosts?.split(",") ?? []) if (fp) map.set(host, fp);
  }
  return map;
}

async function newKey(name: string, keyPassphrase: string): Promise<string> {
  const path = join(work, name);
  await $({ quiet: true })`ssh-keygen -q -t ed25519 -N ${keyPassphrase} -C ${`kubeforge-${name}`} -f ${path}`;
  return path;
}

async function keyFingerprint(path: string): Promise<string> {
  const out = await $({ quiet: true })`ssh-keygen -l -f ${`${path}.pub`}`;
  return out.stdout.split(" ")[1] as string;
}

// ---------------------------------------------------------------------------------------------

describe("kubeforge preflight on lab hosts (the built CLI)", () => {
  beforeAll(async () => {
    try {
      work = mkdtempSync(join(tmpdir(), "kf-preflight-"));
      chmodSync(work, 0o700);
      await ensureBuilt();
      const lab = await labUp(3, LAB);
      booted = lab;
      // Where the lab cluster file (user sudo) reads the password from, as `lab up` writes it.
      writeFileSync(join(lab.runDir, "sudo-password"), `${lab.users.sudoPassword}\n`, { mode: 0o600 });
      passphrase = `kfpass-${randomBytes(12).toString("hex")}`;
      passKey = await newKey("pass_ed25519", passphrase);
      probeKey = await newKey("probe_ed25519", "");
      const passPub = readFileSync(`${passKey}.pub`, "utf8");
      const probePub = readFileSync(`${probeKey}.pub`, "utf8");
      const sudoHome = `/home/${lab.users.sudoUser}/.ssh/authorized_keys`;
      for (const host of HOSTS) {
        await must(host, "cat >> /root/.ssh/authorized_keys", passPub + probePub);
        await must(host, `cat >> ${sudoHome}`, passPub);
      }
    } catch (error) {
      bootError = error;
    }
  });

  afterEach(async () => {
    const failed: string[] = [];
    for (const restore of restores.splice(0).reverse()) {
      await restore.run().catch((error: unknown) => failed.push(`${restore.what}: ${String(error)}`));
    }
    if (failed.length > 0) throw new Error(`restoring the hosts failed:\n${failed.join("\n")}`);
  });

  afterAll(async () => {
    await labDown(LAB);
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it("passes on three healthy hosts and reports the facts the hosts report over ssh", async () => {
    const lab = theLab();
    const file = clusterFile("healthy");
    const run = await preflight(file);
    expect(run.code, show(run)).toBe(0);
    expect(runEnd(run)?.status).toBe("ok");
    expect(problems(run)).toEqual([]);
    expect(Object.keys(hostEnds(run, "connect")).sort()).toEqual([...HOSTS]);

    const controlPlaneOnly = [
      "NumCPU",
      "Mem",
      "Port-6443",
      "Port-10257",
      "Port-10259",
      "Port-2379",
      "Port-2380",
      "DirAvailable--var-lib-etcd",
    ];
    const everyHost = [
      "IsPrivilegedUser",
      "SystemVerification",
      "Hostname",
      "Port-10250",
      "DirAvailable--etc-kubernetes-manifests",
      "ClockSkew",
      "Swap",
      "CRI",
      "HostnameUnique",
      "MachineIDUnique",
    ];
    for (const [index, host] of HOSTS.entries()) {
      const names = checkEvents(run)
        .filter((event) => event.host === host)
        .map((event) => event.check);
      expect(names).toEqual(expect.arrayContaining(everyHost));
      if (index === 0) expect(names).toEqual(expect.arrayContaining(controlPlaneOnly));
      else for (const name of controlPlaneOnly) expect(names).not.toContain(name);

      // What the host says about itself, read without kubeforge.
      const [hostname, machineId, nproc, memKiB, kernel, arch, osId, prettyName, cgroupFs] = (
        await must(
          host,
          "cat /proc/sys/kernel/hostname; cat /etc/machine-id; nproc; awk '/^MemTotal:/ {print $2}' /proc/meminfo; " +
            'uname -r; uname -m; . /etc/os-release; echo "$ID"; echo "$PRETTY_NAME"; stat -fc %T /sys/fs/cgroup',
        )
      )
        .trim()
        .split("\n");
      expect(hostname).toBe(host);
      expect(osId).toBe("debian");
      const cpus = Number(nproc);
      const kib = Number(memKiB);
      const cgroup = cgroupFs === "cgroup2fs" ? 2 : 1;

      const factsLog = run.events.filter(
        (event) => event.type === "log" && event.phase === "facts" && event.host === host,
      );
      expect(factsLog.map((event) => event.message)).toEqual([
        `${prettyName}, ${arch}, ${cpus} CPU, ${Math.round(kib / 1024)} MiB`,
      ]);
      expect(checkOf(run, host, "SystemVerification").message).toBe(
        `${prettyName}, ${arch}, kernel ${kernel}, cgroup v${cgroup}`,
      );
      expect(checkOf(run, host, "Hostname").message).toBe(hostname);
      expect(checkOf(run, host, "HostnameUnique").message).toBe(`hostname ${hostname} is unique`);
      expect(checkOf(run, host, "MachineIDUnique").message).toBe(`machine-id ${machineId} is unique`);
      expect(checkOf(run, host, "IsPrivilegedUser").message).toBe("commands run as root");
      expect(checkOf(run, host, "Swap").message).toBe("swap is off");
      if (index === 0) {
        expect(checkOf(run, host, "NumCPU").message).toBe(`${cpus} CPU(s)`);
        expect(checkOf(run, host, "Mem").message).toBe(`${Math.floor(kib / 1024)} MB`);
      }
    }
    expect(lab.hosts.map((h) => h.name)).toEqual([...HOSTS]);

    // Text mode: the table on stdout, progress on stderr.
    const text = await preflight(file, [], { output: "text" });
    expect(text.code, show(text)).toBe(0);
    expect(text.stdout).toMatch(/^CHECK +h1 +h2 +h3\n/);
    expect(text.stdout).toContain("Preflight passed: the hosts are ready for prepare.");
    expect(text.stderr).toContain("preflight ok in");
  });

  interface Fault {
    name: string;
    host: (typeof HOSTS)[number];
    check: string;
    status: "error" | "fixable";
    code: number;
    message: string;
    inject: string;
    restore: string;
    /** Then with --ignore-preflight-errors=<check>: `ignored` and exit 0. */
    ignorable?: boolean;
  }

  const swaps =
    "Filename\\t\\t\\t\\tType\\t\\tSize\\t\\tUsed\\t\\tPriority\\n" +
    "/swapfile                               file\\t\\t1048572\\t\\t0\\t\\t-2\\n";
  const FAULTS: Fault[] = [
    {
      name: "port 6443 taken on the control plane",
      host: "h1",
      check: "Port-6443",
      status: "error",
      code: 1,
      message: "port 6443 is in use",
      // 0x192B = 6443, 0A = LISTEN; wait until the listener is up.
      inject:
        "systemd-run --quiet --collect --unit=kf-pf-port-6443 socat TCP-LISTEN:6443,fork,reuseaddr /dev/null && " +
        "for i in $(seq 50); do grep -q ':192B 00000000:0000 0A' /proc/net/tcp && exit 0; sleep 0.1; done; exit 1",
      restore:
        "systemctl stop kf-pf-port-6443 2>/dev/null; ! grep -q ':192B 00000000:0000 0A' /proc/net/tcp /proc/net/tcp6",
      ignorable: true,
    },
    {
      name: "leftover etcd data on the control plane",
      host: "h1",
      check: "DirAvailable--var-lib-etcd",
      status: "error",
      code: 1,
      message: "/var/lib/etcd is not empty: etcd data of an earlier cluster; run kubeforge reset first",
      inject: "mkdir -p /var/lib/etcd/member && echo leftover > /var/lib/etcd/member/wal",
      restore: "rm -rf /var/lib/etcd && ! test -e /var/lib/etcd",
    },
    {
      name: "h3 named like h2",
      host: "h3",
      check: "HostnameUnique",
      status: "error",
      code: 1,
      message: "hostname h2 is also h2's",
      inject: "hostname h2",
      restore: 'hostname h3 && test "$(hostname)" = h3',
    },
    {
      name: "swap on (faked /proc/swaps) on h2",
      host: "h2",
      check: "Swap",
      status: "fixable",
      code: 0,
      message: "swap is on (/swapfile, 1024 MiB): will be fixed by prepare",
      inject: `printf '${swaps}' > /run/kf-pf-swaps && mount --bind /run/kf-pf-swaps /proc/swaps`,
      restore: 'umount /proc/swaps 2>/dev/null; rm -f /run/kf-pf-swaps; test "$(wc -l < /proc/swaps)" = 1',
    },
  ];

  it.each(FAULTS)("fails $check on $host only: $name", async (fault) => {
    const file = clusterFile("faults");
    restoreAfter(`${fault.host}: ${fault.restore}`, () => must(fault.host, fault.restore));
    await must(fault.host, fault.inject);

    const run = await preflight(file);
    expect(run.code, show(run)).toBe(fault.code);
    const expected = Object.fromEntries(
      Object.keys(statusByHost(run, fault.check)).map((host) => [
        host,
        host === fault.host ? fault.status : "ok",
      ]),
    );
    expect(statusByHost(run, fault.check)).toEqual(expected);
    expect(expected[fault.host]).toBe(fault.status);
    expect(checkOf(run, fault.host, fault.check).message).toBe(fault.message);
    if (fault.status === "fixable") expect(fault.message).toContain("will be fixed by prepare");
    // The fault is the only problem anywhere.
    expect(problems(run)).toEqual(fault.status === "error" ? [`${fault.host}/${fault.check}:error`] : []);
    if (fault.code === 0) {
      expect(runEnd(run)?.status).toBe("ok");
    } else {
      expect(runEnd(run)?.status).toBe("failed");
      expect(run.stderr).toContain(`- ${fault.host}: [${fault.check}] ${fault.message}`);
    }

    if (fault.ignorable) {
      const ignored = await preflight(file, [`--ignore-preflight-errors=${fault.check}`]);
      expect(ignored.code, show(ignored)).toBe(0);
      expect(statusByHost(ignored, fault.check)).toEqual({ ...expected, [fault.host]: "ignored" });
      expect(problems(ignored)).toEqual([`${fault.host}/${fault.check}:ignored`]);
    }
  });

  it("passes as a non-root user whose sudo needs a password, read from a file", async () => {
    const lab = theLab();
    // The cluster file exactly as `kubeforge lab up --user sudo` writes it.
    const file = clusterFile("sudo-user", () => {}, "sudo");
    const written = yaml.load(readFileSync(file, "utf8")) as ClusterDocument;
    expect(written.spec.ssh).toMatchObject({
      user: lab.users.sudoUser,
      sudo: { password: { file: join(lab.runDir, "sudo-password") } },
    });
    // The password is needed: sudo without one is refused.
    const user = lab.users.sudoUser;
    const r = await sh`ssh -F ${lab.sshConfigPath} -o BatchMode=yes -l ${user} h1 sudo -n true`;
    expect(r.stderr).toContain("a password is required");

    const run = await preflight(file);
    expect(run.code, show(run)).toBe(0);
    expect(problems(run)).toEqual([]);
    expect(statusByHost(run, "IsPrivilegedUser")).toEqual({ h1: "ok", h2: "ok", h3: "ok" });
    for (const host of HOSTS) {
      expect(checkOf(run, host, "IsPrivilegedUser").message).toBe("commands run as root");
    }
  });

  it("passes with a key protected by a passphrase, read from the environment", async () => {
    const file = clusterFile("passphrase", (document) => {
      document.spec.ssh.keyPath = passKey;
      document.spec.ssh.passphrase = { env: "KEY_PASSPHRASE" };
    });
    const fp = await keyFingerprint(passKey);
    const before = await Promise.all(HOSTS.map((host) => acceptedWith(host, fp, "root")));
    const run = await preflight(file, [], { env: { KEY_PASSPHRASE: passphrase } });
    expect(run.code, show(run)).toBe(0);
    expect(problems(run)).toEqual([]);
    // It was this key that logged in, on every host.
    await expectEventually(async () => {
      const after = await Promise.all(HOSTS.map((host) => acceptedWith(host, fp, "root")));
      expect(after).toEqual(before.map((n) => n + 1));
    });
  });

  it("verifies host keys: refuses unknown ones, records them only when asked, refuses changed ones", async () => {
    const lab = theLab();
    const knownHosts = join(work, "known_hosts-tofu");
    writeFileSync(knownHosts, "");
    const file = clusterFile("tofu", (document) => {
      document.spec.ssh.knownHostsPath = knownHosts;
    });

    const unknown = await preflight(file);
    expect(unknown.code, show(unknown)).toBe(1);
    expect(unknown.stderr).toContain("--accept-new-host-keys");
    for (const host of HOSTS) {
      const end = hostEnds(unknown, "connect")[host];
      expect(end?.status).toBe("failed");
      expect(end?.error?.kind).toBe("HostKeyError");
      expect(end?.error?.message).toContain("--accept-new-host-keys");
    }
    expect(checkEvents(unknown)).toEqual([]);
    expect(sha256(knownHosts)).toBe(createHash("sha256").update("").digest("hex"));

    const accepted = await preflight(file, ["--accept-new-host-keys"]);
    expect(accepted.code, show(accepted)).toBe(0);
    const lines = readFileSync(knownHosts, "utf8").trim().split("\n");
    expect(lines.map((line) => line.split(" ")[0]).sort()).toEqual(lab.hosts.map((h) => h.address));
    // Each recorded line on its own satisfies OpenSSH under strict checking, and is the lab's key.
    const labKeys = readFileSync(lab.knownHostsPath, "utf8");
    for (const line of lines) {
      const [address, type, key] = line.split(" ");
      expect(labKeys).toContain(`,${address} ${type} ${key}\n`);
      const single = join(work, `known_hosts-${address}`);
      writeFileSync(single, `${line}\n`);
      const ssh =
        await sh`ssh -o StrictHostKeyChecking=yes -o UserKnownHostsFile=${single} -o GlobalKnownHostsFile=/dev/null -o BatchMode=yes -o IdentitiesOnly=yes -i ${lab.keyPath} ${`root@${address}`} true`;
      expect(ssh.exitCode, `${address}: ${ssh.stderr}`).toBe(0);
    }

    // Known now: passes without the flag, and nothing is recorded twice.
    const recorded = sha256(knownHosts);
    const again = await preflight(file);
    expect(again.code, show(again)).toBe(0);
    expect(sha256(knownHosts)).toBe(recorded);

    // h2's entry now holds h3's key: a changed key, refused even with the flag.
    const [, h2, h3] = lab.hosts.map((h) => h.address);
    const real = await fingerprints(knownHosts);
    const h3Key = lines.find((line) => line.startsWith(`${h3} `))?.split(" ")[2] as string;
    writeFileSync(
      knownHosts,
      lines
        .map((line) => (line.startsWith(`${h2} `) ? line.replace(/ \S+$/, ` ${h3Key}`) : line))
        .join("\n")
        .concat("\n"),
    );
    const tampered = sha256(knownHosts);
    const changed = await preflight(file, ["--accept-new-host-keys"]);
    expect(changed.code, show(changed)).toBe(1);
    const ends = hostEnds(changed, "connect");
    expect(ends.h1?.status).toBe("ok");
    expect(ends.h3?.status).toBe("ok");
    expect(ends.h2?.status).toBe("failed");
    expect(ends.h2?.error?.kind).toBe("HostKeyError");
    const message = ends.h2?.error?.message ?? "";
    expect(message).toContain("HOST KEY CHANGED");
    expect(message).toContain(real.get(h2 as string)); // what h2 offered
    expect(message).toContain(real.get(h3 as string)); // what known_hosts has for it
    expect(real.get(h2 as string)).not.toBe(real.get(h3 as string));
    expect(changed.stderr).toContain(real.get(h2 as string));
    expect(sha256(knownHosts)).toBe(tampered);
  });

  it("names an unreachable host within the retry budget, after the others connected", async () => {
    const file = clusterFile("unreachable", (document) => {
      document.spec.hosts.push({ name: "h9", address: UNREACHABLE, role: "worker" });
    });
    const run = await preflight(file);
    expect(run.code, show(run)).toBe(1);
    // Transient errors are retried for up to 30 s, then the run ends.
    expect(run.ms).toBeGreaterThan(20_000);
    expect(run.ms).toBeLessThan(60_000);
    const ends = hostEnds(run, "connect");
    expect(Object.fromEntries(Object.entries(ends).map(([host, end]) => [host, end.status]))).toEqual({
      h1: "ok",
      h2: "ok",
      h3: "ok",
      h9: "failed",
    });
    expect(ends.h9?.error?.message).toContain(UNREACHABLE);
    expect(runEnd(run)?.error?.message).toContain(`- h9: h9 (${UNREACHABLE}:22)`);
    expect(run.stderr).toContain(`- h9: h9 (${UNREACHABLE}:22)`);
    expect(checkEvents(run)).toEqual([]);
  });

  it("keeps the sudo password and the key passphrase out of every output, log and journal", async () => {
    const lab = theLab();
    const user = lab.users.sudoUser;
    const sudoMarker = `kfsudo-${randomBytes(12).toString("hex")}`;
    // The sudo user's password becomes a marker (over stdin: never on a command line).
    for (const host of HOSTS) {
      restoreAfter(`${host}: sudo password`, () =>
        must(host, "chpasswd", `${user}:${lab.users.sudoPassword}\n`),
      );
      await must(host, "chpasswd", `${user}:${sudoMarker}\n`);
    }
    const secretFile = join(work, "sudo-marker");
    writeFileSync(secretFile, `${sudoMarker}\n`, { mode: 0o600 });
    const file = clusterFile(
      "secrets",
      (document) => {
        document.spec.ssh.keyPath = passKey;
        document.spec.ssh.passphrase = { env: "KEY_PASSPHRASE" };
        document.spec.ssh.sudo = { password: { file: secretFile } };
      },
      "sudo",
    );
    const stateDir = join(work, "state-secrets");
    const env = { KEY_PASSPHRASE: passphrase };

    const json = await preflight(file, [], { env, stateDir });
    expect(json.code, show(json)).toBe(0);
    expect(statusByHost(json, "IsPrivilegedUser")).toEqual({ h1: "ok", h2: "ok", h3: "ok" });
    const text = await preflight(file, [], { env, stateDir, output: "text" });
    expect(text.code, show(text)).toBe(0);
    // A failing run too: error paths print more.
    restoreAfter("h1: /var/lib/etcd", () => must("h1", "rm -rf /var/lib/etcd"));
    await must("h1", "mkdir -p /var/lib/etcd && touch /var/lib/etcd/x");
    const failing = await preflight(file, [], { env, stateDir });
    expect(failing.code, show(failing)).toBe(1);

    const logDir = join(stateDir, "pf", "logs");
    const logs = readdirSync(logDir).map((name) => join(logDir, name));
    expect(logs).toHaveLength(3);
    const places: Array<[string, string]> = [
      ...[json, text, failing].flatMap(
        (run, i): Array<[string, string]> => [
          [`run ${i} stdout`, run.stdout],
          [`run ${i} stderr`, run.stderr],
          [`run ${i} events`, JSON.stringify(run.events)],
        ],
      ),
      ...logs.map((path): [string, string] => [relative(work, path), readFileSync(path, "utf8")]),
    ];
    const fp = await keyFingerprint(passKey);
    for (const host of HOSTS) {
      const journal = await must(host, "journalctl --no-pager -o verbose");
      // The journal does hold this run: the sudo user logged in with the passphrase key.
      expect(journal).toContain(`Accepted publickey for ${user} from`);
      expect(journal).toContain(fp);
      places.push([`${host} journal`, journal]);
    }
    for (const log of logs) expect(readFileSync(log, "utf8")).toContain("preflight");
    const leaks = places.flatMap(([where, content]) =>
      [sudoMarker, passphrase].filter((secret) => content.includes(secret)).map((s) => `${where}: ${s}`),
    );
    expect(leaks).toEqual([]);
  });

  it("rejects bad input with exit 2 before opening any ssh session", async () => {
    const probe = (document: ClusterDocument) => {
      document.spec.ssh.keyPath = probeKey;
    };
    const cases: Array<{
      name: string;
      args: (file: string) => string[];
      edit: (d: ClusterDocument) => void;
      error: string;
    }> = [
      {
        name: "unknown field",
        edit: (d) => {
          d.spec.bogus = 1;
        },
        args: (file) => ["-f", file],
        error: "spec.bogus: unknown field",
      },
      {
        name: "bad address",
        edit: (d) => {
          (d.spec.hosts[1] as Record<string, unknown>).address = "198.18.10.300";
        },
        args: (file) => ["-f", file],
        error: 'spec.hosts[1].address: "198.18.10.300" is not an IP address or hostname',
      },
      {
        name: "unsupported version",
        edit: (d) => {
          d.spec.kubernetes.version = "v1.29.3";
        },
        args: (file) => ["-f", file],
        error: "spec.kubernetes.version: v1.29.3 is not a supported version",
      },
      {
        name: "inline secret",
        edit: (d) => {
          d.spec.ssh.password = "hunter2-inline";
        },
        args: (file) => ["-f", file],
        error: "spec.ssh.password: a secret must be a reference, not written inline",
      },
      {
        name: "unset passphrase variable",
        edit: (d) => {
          d.spec.ssh.passphrase = { env: "KF_PF_NOT_SET" };
        },
        args: (file) => ["-f", file],
        error: "spec.ssh.passphrase: environment variable KF_PF_NOT_SET is not set",
      },
      {
        name: "unknown phase",
        edit: () => {},
        args: (file) => ["-f", file, "--skip-phases", "nope"],
        error: 'unknown phase "nope"',
      },
    ];
    const fp = await keyFingerprint(probeKey);
    const before = await Promise.all(HOSTS.map((host) => sshdCounts(host, fp)));

    for (const c of cases) {
      const file = clusterFile(`bad-${c.name.replace(/ /g, "-")}`, (d) => {
        probe(d);
        c.edit(d);
      });
      const run = await cliIn(work, ["preflight", ...c.args(file)], undefined, { strict: true });
      expect(run.code, `${c.name}: ${show(run)}`).toBe(2);
      expect(run.stderr, c.name).toContain(c.error);
      expect(run.stderr, c.name).not.toContain("hunter2-inline");
      expect(
        run.events.filter((e) => e.type === "host.start"),
        c.name,
      ).toEqual([]);
    }

    // Control: a good file with the same key does log in, once per host, and shows in the journal.
    const good = await preflight(clusterFile("probe-good", probe));
    expect(good.code, show(good)).toBe(0);
    await expectEventually(async () => {
      const after = await Promise.all(HOSTS.map((host) => sshdCounts(host, fp)));
      expect(after).toEqual(before.map((count) => ({ ...count, accepted: count.accepted + 1 })));
    });
  });
});

/** `Accepted publickey` lines of sshd for `user` with the key `fp`. */
async function acceptedWith(host: string, fp: string, user: string): Promise<number> {
  const journal = await must(host, "journalctl -u ssh --no-pager");
  return journal
    .split("\n")
    .filter((line) => line.includes(`Accepted publickey for ${user} from`) && line.includes(fp)).length;
}

/** sshd's logins with the key `fp`, and its pre-authentication lines (connections that got nowhere). */
async function sshdCounts(host: string, fp: string): Promise<{ accepted: number; preauth: number }> {
  const journal = (await must(host, "journalctl -u ssh --no-pager")).split("\n");
  return {
    accepted: journal.filter((line) => line.includes("Accepted publickey") && line.includes(fp)).length,
    preauth: journal.filter((line) => line.includes("[preauth]")).length,
  };
}

/** Retries `assertion` for up to 5 s: journald may write sshd's lines a moment later. */
async function expectEventually(assertion: () => Promise<void>): Promise<void> {
  const deadline = Date.now() + 5000;
  for (;;) {
    try {
      await assertion();
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
}
