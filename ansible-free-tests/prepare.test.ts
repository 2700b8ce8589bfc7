// `kubeforge prepare` end to end: the built CLI against three real lab hosts (h1 control plane, h2 and
// h3 workers), from a bundle packed with `kubeforge bundle create` out of real Debian 12 packages,
// Debian's kubectl and CNI plugins, and two stand-ins for what these machines cannot download: a
// kubelet that only answers --version and small OCI images named as the real ones
// (support/bundle-dir.ts). h3 starts without containerd and runc, so they come from the bundle.
// Every run reads the `--output json` events; host state is read back over plain ssh as root.

import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { $ } from "zx";
import { labClusterFile } from "../cli/lab-command.js";
import { type Lab, type LabOptions, labDown, labUp } from "../lab/testhosts.js";
import { buildTestBundleDir, STAND_IN_KUBELET_MARKER } from "./support/bundle-dir.js";
import { BIN, ensureBuilt, kubeforgeCli } from "./support/cli.js";
import { changesOf, cliIn, must as mustOn, onHost as onHostIn, show } from "./support/scenario.js";

const LAB: LabOptions = { bridge: "kfbrq0", subnet: "198.18.22", log: (line) => console.error(line) };
const HOSTS = ["h1", "h2", "h3"] as const;
type HostName = (typeof HOSTS)[number];
const VERSION = "v1.30.4";
const KERNEL_SETTINGS = { "vm.overcommit_memory": "1", "kernel.panic": "10", "kernel.panic_on_oops": "1" };
const sh = $({ quiet: true, nothrow: true });

let work: string;
let booted: Lab | undefined;
let setupError: unknown;
/** Every image ref of the version, by role, as `kubeforge images list` names them. */
const images: Record<"control-plane" | "worker", string[]> = { "control-plane": [], worker: [] };

// Every test fails (rather than being skipped, as after a failed hook) when the setup failed.
function theLab(): Lab {
  if (!booted || setupError) throw new Error(`setup failed: ${String(setupError)}`, { cause: setupError });
  return booted;
}

const cli = (args: string[]) => cliIn(work, args);
const onHost = async (host: HostName, command: string) => onHostIn(theLab(), host, command);
const must = async (host: HostName, command: string) => mustOn(theLab(), host, command);

/** The read-only kernel settings are the machine's; the kubelet check is looked at on its own. */
const PREPARE = ["prepare", "-f", "cluster.yaml", "--ignore-preflight-errors", "KubeletKernelSettings"];

/**
 * What prepare could touch on a host, as one text: files (path, size, mode, content hash for small
 * ones) under the directories it writes, unit states, loaded images, mounts and iptables rules.
 */
async function snapshot(host: HostName): Promise<string> {
  return must(
    host,
    [
      "find /etc /usr/bin /usr/sbin /usr/lib/systemd /usr/lib/cni /opt /var/lib/kubeforge /var/lib/dpkg/info -xdev \\( -type f -o -type l \\) -printf '%p %s %m %T@\\n' 2>/dev/null | sort",
      "sha256sum /etc/fstab /proc/sys/net/ipv4/ip_forward 2>/dev/null",
      "systemctl is-enabled containerd kubelet 2>&1; systemctl is-active containerd kubelet 2>&1",
      "iptables-save | grep -v '^#'",
      "cat /proc/mounts",
    ].join("; "),
  );
}

async function bundleCreate(fromDir: string, out: string): Promise<void> {
  const made = await cli(["bundle", "create", "--from-dir", fromDir, "-o", out]);
  if (made.code !== 0) throw new Error(`bundle create failed:\n${show(made)}`);
}

/** The lab's cluster file with the bundle named; `version` differs only for the bad-input case. */
function writeClusterFile(name: string, bundle: string, version = VERSION): void {
  const text = labClusterFile(theLab(), { name: "prep", version, user: "root" });
  writeFileSync(
    join(work, name),
    `${text.trimEnd()}\n  artifacts:\n    source: bundle\n    bundle: ${bundle}\n`,
    "utf8",
  );
}

function expectedImages(host: HostName): string[] {
  return host === "h1" ? images["control-plane"] : images.worker;
}

describe("kubeforge prepare from an offline bundle (stand-in kubelet and images; real Debian packages, containerd, systemd)", () => {
  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), "kf-prepare-"));
    try {
      await ensureBuilt();
      booted = await labUp(3, LAB);
      writeClusterFile("cluster.yaml", "bundle.tar");
      for (const role of ["control-plane", "worker"] as const) {
        const listed = await kubeforgeCli(["images", "list", "-f", "cluster.yaml", "--role", role], {
          cwd: work,
        });
        if (listed.code !== 0) throw new Error(`images list failed:\n${show(listed)}`);
        images[role] = listed.stdout.trim().split("\n").sort();
      }
      await buildTestBundleDir(join(work, "bundle-dir"), {
        kubernetesVersion: VERSION,
        images: images["control-plane"],
      });
      await bundleCreate(join(work, "bundle-dir"), join(work, "bundle.tar"));
      // h3 is a bare host as far as the runtime goes: containerd and runc come from the bundle.
      await must("h3", "DEBIAN_FRONTEND=noninteractive dpkg --purge containerd runc");
    } catch (error) {
      setupError = error;
    }
  });

  afterAll(async () => {
    try {
      await labDown(LAB);
    } finally {
      if (work) rmSync(work, { recursive: true, force: true });
    }
  });

  it("lists the role's images: all seven for a control plane, pause, kube-proxy and CoreDNS for a worker", () => {
    theLab();
    expect(images["control-plane"]).toHaveLength(7);
    expect(images.worker).toHaveLength(3);
    expect(images.worker.every((ref) => images["control-plane"].includes(ref))).toBe(true);
    expect(images.worker.some((ref) => ref.includes("/pause:"))).toBe(true);
  });

  it("refuses bad input with exit 2 and changes nothing on any host", async () => {
    theLab();
    const before = await Promise.all(HOSTS.map(snapshot));
    const bundle = readFileSync(join(work, "bundle.tar"));

    // A flipped byte inside a member: the checksum no longer matches.
    const flipped = Buffer.from(bundle);
    const at = bundle.length - 4096;
    flipped[at] = (flipped[at] ?? 0) ^ 0xff;
    writeFileSync(join(work, "flipped.tar"), flipped);
    writeClusterFile("flipped.yaml", "flipped.tar");
    const corrupt = await cli(["prepare", "-f", "flipped.yaml"]);
    expect(corrupt.code, show(corrupt)).toBe(2);
    expect(corrupt.stderr).toMatch(/flipped\.tar/);
    expect(corrupt.stderr).toMatch(/sha256|checksum/i);

    // Cut short, as by an interrupted copy.
    writeFileSync(join(work, "truncated.tar"), bundle.subarray(0, Math.floor(bundle.length / 2)));
    writeClusterFile("truncated.yaml", "truncated.tar");
    const truncated = await cli(["prepare", "-f", "truncated.yaml"]);
    expect(truncated.code, show(truncated)).toBe(2);
    expect(truncated.stderr).toMatch(/truncated\.tar/);

    // A bundle for another version than the file asks for.
    writeClusterFile("other-version.yaml", "bundle.tar", "v1.30.5");
    const otherVersion = await cli(["prepare", "-f", "other-version.yaml"]);
    expect(otherVersion.code, show(otherVersion)).toBe(2);
    expect(otherVersion.stderr).toContain("v1.30.4");
    expect(otherVersion.stderr).toContain("v1.30.5");

    // A bundle for another architecture: arm64 binaries only.
    const armDir = join(work, "arm-dir");
    await buildTestBundleDir(armDir, { kubernetesVersion: VERSION, images: images["control-plane"] });
    await sh`mv ${join(armDir, "bin/linux-amd64")} ${join(armDir, "bin/linux-arm64")}`;
    await sh`mv ${join(armDir, "cni/linux-amd64")} ${join(armDir, "cni/linux-arm64")}`;
    await bundleCreate(armDir, join(work, "arm.tar"));
    writeClusterFile("arm.yaml", "arm.tar");
    const otherArch = await cli(["prepare", "-f", "arm.yaml"]);
    expect(otherArch.code, show(otherArch)).toBe(2);
    expect(otherArch.stderr).toContain("bin/linux-amd64/kubelet");

    // An OS prepare does not support yet, on one host: the whole run stops before any change.
    await must(
      "h2",
      "cp /etc/os-release /root/os-release.orig && sed -i 's/^ID=.*/ID=fedora/; s/^ID_LIKE=.*//; s/^PRETTY_NAME=.*/PRETTY_NAME=\"Fedora Linux 40\"/' /usr/lib/os-release",
    );
    try {
      const distro = await cli(PREPARE);
      expect(distro.code, show(distro)).toBe(2);
      expect(distro.stderr).toContain("h2: Fedora Linux 40 is not supported by prepare yet");
    } finally {
      await must("h2", "cp /root/os-release.orig /usr/lib/os-release && rm /root/os-release.orig");
    }

    expect(await Promise.all(HOSTS.map(snapshot))).toEqual(before);
  });

  it("--dry-run on unprepared hosts names the changes for every host and changes nothing", async () => {
    theLab();
    const before = await Promise.all(HOSTS.map(snapshot));
    const dry = await cli([...PREPARE, "--dry-run"]);
    expect(dry.code, show(dry)).toBe(0);
    const changes = changesOf(dry);
    for (const host of HOSTS) {
      expect(changes[host], host).toEqual(
        expect.arrayContaining([
          "write /etc/sysctl.d/99-kubeforge.conf",
          expect.stringMatching(/^install \/usr\/bin\/kubelet /),
          "enable kubelet (init or join starts it)",
          expect.stringMatching(/^import /),
        ]),
      );
    }
    expect(changes.h3).toEqual(
      expect.arrayContaining([expect.stringMatching(/^install containerd .*runc .*from the bundle$/)]),
    );
    expect(changes.h1).not.toEqual(expect.arrayContaining([expect.stringMatching(/^install containerd/)]));
    expect(await Promise.all(HOSTS.map(snapshot))).toEqual(before);
  });

  it("prepares all three hosts: containerd running with its config, images in k8s.io, OS settings effective, kubelet enabled and not started", async () => {
    theLab();
    const run = await cli(PREPARE);
    expect(run.code, show(run)).toBe(0);
    for (const host of HOSTS) {
      expect(await must(host, "systemctl is-active containerd; systemctl is-enabled containerd")).toBe(
        "active\nenabled\n",
      );
      expect((await onHost(host, "systemctl is-active kubelet")).stdout).toBe("inactive\n");
      expect(await must(host, "systemctl is-enabled kubelet")).toBe("enabled\n");
      const config = await must(host, "cat /etc/containerd/config.toml");
      expect(config).toContain("version = 2");
      expect(config).toContain(`sandbox_image = "${images.worker.find((ref) => ref.includes("/pause:"))}"`);
      expect(config).toContain("SystemdCgroup = true");
      expect(config).toContain("restrict_oom_score_adj = true"); // the lab hosts are containers
      expect(config).toContain('bin_dir = "/opt/cni/bin"');
      const listed = (await must(host, "ctr -n k8s.io images ls -q"))
        .split("\n")
        .filter((ref) => ref && !ref.startsWith("sha256:"));
      expect(listed.sort()).toEqual(expectedImages(host));
      expect(
        await must(
          host,
          "cat /proc/sys/net/ipv4/ip_forward /proc/sys/net/bridge/bridge-nf-call-iptables /proc/sys/net/bridge/bridge-nf-call-ip6tables",
        ),
      ).toBe("1\n1\n1\n");
      expect(await must(host, "grep -v '^#' /etc/sysctl.d/99-kubeforge.conf")).toContain(
        "net.ipv4.ip_forward = 1",
      );
      expect(await must(host, "grep -v '^#' /etc/modules-load.d/kubeforge.conf")).toBe(
        "overlay\nbr_netfilter\n",
      );
      expect(await must(host, "kubelet --version")).toBe(`Kubernetes ${VERSION}\n`);
      expect(await must(host, "ls /opt/cni/bin")).toContain("bridge\n");
      expect(await must(host, "stat -c '%a %U' /var/lib/kubeforge/install.json")).toBe("600 root\n");
      // The unit is the packages' kubelet.service with kubeadm's drop-in: systemd sees both.
      expect(await must(host, "systemctl cat kubelet | grep -c '^ExecStart='")).toBe("3\n");
    }
    // h3 had no containerd or runc: the bundle's packages, recorded as installed by kubeforge.
    expect(await must("h3", "dpkg-query -W -f='${Status}' containerd runc")).toBe(
      "install ok installedinstall ok installed",
    );
    const record = JSON.parse(await must("h3", "cat /var/lib/kubeforge/install.json")) as {
      packages: Array<{ name: string }>;
    };
    expect(record.packages.map((entry) => entry.name).sort()).toEqual(["containerd", "runc"]);
    // The node checks ran: everything ok except what the machine underneath decides.
    const checks = run.events.filter((event) => event.type === "check" && event.phase === "node-checks");
    expect(checks.filter((event) => event.host === "h1").map((event) => event.check)).toEqual(
      expect.arrayContaining([
        "CRI",
        "KubeletVersion",
        "Swap",
        "FileContent--proc-sys-net-ipv4-ip_forward",
        "FileExisting-conntrack",
      ]),
    );
    expect(checks.filter((event) => event.status === "error")).toEqual([]);
  });

  it("reports the kernel settings the kubelet needs as they are on the machine underneath, with the fix", async () => {
    theLab();
    const machine = Object.fromEntries(
      Object.keys(KERNEL_SETTINGS).map((key) => [
        key,
        readFileSync(`/proc/sys/${key.replaceAll(".", "/")}`, "utf8").trim(),
      ]),
    );
    const wrong = Object.entries(KERNEL_SETTINGS).filter(([key, value]) => machine[key] !== value);
    const run = await cli(["prepare", "-f", "cluster.yaml"]);
    const checks = run.events.filter((event) => event.check === "KubeletKernelSettings");
    expect(checks.map((event) => event.host).sort()).toEqual([...HOSTS]);
    if (wrong.length === 0) {
      expect(run.code, show(run)).toBe(0);
      expect(checks.every((event) => event.status === "ok")).toBe(true);
    } else {
      expect(run.code, show(run)).toBe(1);
      for (const event of checks) {
        expect(event.status).toBe("error");
        expect(event.message).toContain("systemd-nspawn");
        expect(event.message).toContain(
          `sysctl -w ${wrong.map(([key, value]) => `${key}=${value}`).join(" ")}`,
        );
      }
    }
  });

  it("re-runs with no change, and repairs exactly the drift someone made: a deleted file, a stopped service, a removed image, an edited config", async () => {
    theLab();
    const again = await cli(PREPARE);
    expect(again.code, show(again)).toBe(0);
    expect(changesOf(again)).toEqual({});

    const kubeProxy = images.worker.find((ref) => ref.includes("/kube-proxy:")) ?? "";
    // One phase alone repairs its own drift (connect, facts and the bundle check run with it).
    await must("h3", `ctr -n k8s.io images rm ${kubeProxy}`);
    const imagesOnly = await cli([...PREPARE, "phase", "images"]);
    expect(imagesOnly.code, show(imagesOnly)).toBe(0);
    expect(changesOf(imagesOnly)).toEqual({
      h3: [expect.stringMatching(new RegExp(`^import ${escapeRegExp(kubeProxy)} `))],
    });

    await must("h2", "rm /etc/sysctl.d/99-kubeforge.conf");
    await must("h2", "systemctl stop containerd");
    await must("h3", `ctr -n k8s.io images rm ${kubeProxy}`);
    await must("h1", "echo '# edited by hand' >> /etc/containerd/config.toml");

    const repair = await cli(PREPARE);
    expect(repair.code, show(repair)).toBe(0);
    const changes = changesOf(repair);
    expect(changes.h2).toEqual(["write /etc/sysctl.d/99-kubeforge.conf", "start containerd"]);
    expect(changes.h3).toEqual([expect.stringMatching(new RegExp(`^import ${escapeRegExp(kubeProxy)} `))]);
    expect(changes.h1).toEqual([
      expect.stringMatching(/^write \/etc\/containerd\/config\.toml /),
      "restart containerd (its config changed)",
    ]);

    const after = await cli(PREPARE);
    expect(after.code, show(after)).toBe(0);
    expect(changesOf(after)).toEqual({});

    // As a run killed after writing a config and before applying it leaves the host: the content is
    // right, but containerd and systemd still run the old one.
    await must(
      "h2",
      "sleep 1; touch /etc/containerd/config.toml /usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf",
    );
    const applied = await cli(PREPARE);
    expect(applied.code, show(applied)).toBe(0);
    expect(changesOf(applied)).toEqual({
      h2: ["restart containerd (its config changed)", "reload systemd's units"],
    });
    expect(changesOf(await cli(PREPARE))).toEqual({});
  });

  it("trusts the install record for unchanged files, and --verify finds a binary altered behind its back", async () => {
    theLab();
    // Same size, same mtime, other content: only hashing can tell.
    await must(
      "h2",
      "m=$(stat -c %Y /usr/bin/kubectl); printf 'XXXX' | dd of=/usr/bin/kubectl bs=1 seek=100 conv=notrunc status=none; touch -d @$m /usr/bin/kubectl",
    );
    const trusted = await cli(PREPARE);
    expect(trusted.code, show(trusted)).toBe(0);
    expect(changesOf(trusted)).toEqual({});
    const verified = await cli([...PREPARE, "--verify"]);
    expect(verified.code, show(verified)).toBe(0);
    expect(changesOf(verified)).toEqual({
      h2: [expect.stringMatching(/^replace \/usr\/bin\/kubectl /), "write /var/lib/kubeforge/install.json"],
    });
    const bundled = createHash("sha256")
      .update(readFileSync(join(work, "bundle-dir/bin/linux-amd64/kubectl")))
      .digest("hex");
    expect((await must("h2", "sha256sum /usr/bin/kubectl")).split(" ")[0]).toBe(bundled);
  });

  it("converges after kill -9 mid-upload and between phases, leaving no partial file", async () => {
    theLab();
    await Promise.all(HOSTS.map((host) => must(host, "rm -f /usr/bin/kubectl")));
    // Kill the moment h1 holds the temp file of the kubectl upload.
    const watcher = onHost(
      "h1",
      "timeout 120 sh -c 'until ls /usr/bin/.kubectl.kubeforge-* >/dev/null 2>&1; do sleep 0.01; done'; echo seen",
    );
    const killed = await runAndKill(PREPARE, async () => {
      await watcher;
    });
    expect(killed.signal).toBe("SIGKILL");
    // The host notices the dropped connection and removes its temp file; nothing half-written stays.
    const leftovers = () =>
      onHost("h1", "find / -xdev -name '*.kubeforge-*' 2>/dev/null").then((r) => r.stdout);
    await expect.poll(leftovers, { timeout: 15_000, interval: 250 }).toBe("");
    const kubectl = await onHost("h1", "sha256sum /usr/bin/kubectl");
    const bundled = createHash("sha256")
      .update(readFileSync(join(work, "bundle-dir/bin/linux-amd64/kubectl")))
      .digest("hex");
    if (kubectl.exitCode === 0) expect(kubectl.stdout.split(" ")[0]).toBe(bundled);

    // Between phases: killed as soon as the containerd phase starts.
    await must("h2", "rm /etc/sysctl.d/99-kubeforge.conf");
    const between = await runAndKill(PREPARE, (stdout) => waitForLine(stdout, '"phase":"containerd"'));
    expect(between.signal).toBe("SIGKILL");

    const converged = await cli(PREPARE);
    expect(converged.code, show(converged)).toBe(0);
    expect(changesOf(converged).h1).toEqual(
      expect.arrayContaining([expect.stringMatching(/^install \/usr\/bin\/kubectl /)]),
    );
    const after = await cli(PREPARE);
    expect(changesOf(after)).toEqual({});
    for (const host of HOSTS) {
      expect((await must(host, "sha256sum /usr/bin/kubectl")).split(" ")[0]).toBe(bundled);
      expect((await onHost(host, "find / -xdev -name '*.kubeforge-*' 2>/dev/null")).stdout).toBe("");
    }
  });

  it("the stand-in kubelet is what it says: it answers --version and refuses to run", async () => {
    theLab();
    const started = await onHost("h2", "kubelet --config /var/lib/kubelet/config.yaml");
    expect(started.exitCode).toBe(1);
    expect(started.stderr).toContain(STAND_IN_KUBELET_MARKER);
  });
});

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** Starts the built CLI and SIGKILLs it once `until` resolves (given the JSON events as they come). */
function runAndKill(
  args: string[],
  until: (stdout: NodeJS.ReadableStream) => Promise<void>,
): Promise<{ signal: NodeJS.Signals | null }> {
  const child = spawn(process.execPath, [BIN, "-o", "json", "--state-dir", join(work, "state"), ...args], {
    cwd: work,
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: join(work, "home") },
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stderr.resume();
  child.stdout.on("data", () => {}); // keep it flowing whether or not `until` reads it
  const exited = new Promise<{ signal: NodeJS.Signals | null }>((resolve) =>
    child.once("close", (_code, signal) => resolve({ signal })),
  );
  void until(child.stdout).then(() => child.kill("SIGKILL"));
  return exited;
}

function waitForLine(stream: NodeJS.ReadableStream, fragment: string): Promise<void> {
  return new Promise((resolve) => {
    let text = "";
    stream.on("data", (chunk: Buffer) => {
      text += chunk.toString();
      if (text.includes(fragment)) resolve();
    });
  });
}
