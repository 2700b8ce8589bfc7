// Provisioning: `kubeforge prepare` from an offline bundle of at least 200 MB on 1, 3 and 6 fresh lab
// hosts, against a plain parallel `scp` of the same bundle file to the same hosts (the floor: ssh
// encrypts on the same 2 CPUs the hosts and the tool share); the no-op re-run on 6 hosts (goal
// ≤ 3 s); and the same prepare steps as an Ansible playbook (bench/provision/playbook.yml) on 6
// fresh hosts (goal: kubeforge ≤ 0.3× Ansible). Needs root (it boots its own lab instance, bridge
// kfbrw0 on 198.18.24.0/24, fresh for every first run, and removes it at the end, also on failure or
// Ctrl-C), `apt-get install -y ansible-core time` and apt's package lists (`apt-get update`: the
// hosts' python3 is fetched with `apt-get download`). Run: npm run build && node dist/bench/provision.js [rounds]
//
// The bundle: support/bundle-dir.ts's directory (Debian 12's containerd, runc, conntrack, socat,
// ethtool and CNI .debs, Debian's kubectl and CNI plugins, a stand-in kubelet and stand-in images named
// as `kubeforge images list` names them), where the kube-proxy stand-in carries one extra layer of
// PADDING_MIB random bytes, as a real image's compressed layers are: every host of every role imports
// kube-proxy, so every host receives the padding, and the bundle passes 200 MB.
//
// Fairness: both tools start from the same bare hosts (the lab's containerd and runc purged, so both
// install them from the bundle's .debs; python3 installed on every 6-host lab, whichever tool runs
// there), read the same files (the bundle directory for Ansible, the bundle packed from it for
// kubeforge), leave the same bytes on the hosts (checked file by file after each first run), run every
// host at once (kubeforge's default concurrency is 30; Ansible's forks = hosts) and are each a fresh
// process per run, with no ssh connection kept from an earlier run. Ansible runs tuned: pipelining,
// no fact gathering, the interpreter path given, ControlPersist (its default) within a run.
import { randomBytes } from "node:crypto";
import { createWriteStream, existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import yaml from "js-yaml";
import { $ } from "zx";
import { buildTestBundleDir } from "../ansible-free-tests/support/bundle-dir.js";
import { labClusterFile } from "../cli/lab-command.js";
import { writeOciLayout } from "../lab/oci.js";
import { type Lab, labDown, labUp } from "../lab/testhosts.js";
import { median, requireGnuTime, type Sample, Stopwatch } from "./measure.js";

const rounds = Number(process.argv[2] ?? 1);
const SIZES = [1, 3, 6] as const;
const PEER_HOSTS = 6;
const NOOP_RUNS = 3;
const INSTANCE = { bridge: "kfbrw0", subnet: "198.18.24" };
const VERSION = "v1.30.4";
const PADDING_MIB = 128;
const MIN_BUNDLE_BYTES = 200e6;
const NOOP_GOAL_MS = 3000;
const RATIO_GOAL = 0.3;
/** What every lab host has that a bare host would not: prepare and the playbook install them from the bundle. */
const PURGED_PACKAGES = ["containerd", "runc"];
/**
 * python3 for Ansible's modules, fetched here with `apt-get download` (lab/base.ts stays as it is).
 * Found by trying on a lab host: python3-minimal lacks json and shutil, which every module imports, so
 * libpython3.11-stdlib too; the rest are the dependencies the lab's base lacks. python3-minimal
 * pre-depends on python3.11-minimal, so it goes in a second dpkg call.
 */
const PYTHON_DEBS = [
  "libpython3.11-minimal",
  "python3.11-minimal",
  "libpython3.11-stdlib",
  "media-types",
  "libreadline8",
  "readline-common",
  "libsqlite3-0",
];
const PYTHON_LAST = "python3-minimal";
/** The lab hosts are containers: the kubelet's vm and kernel sysctls belong to this machine, which the bench does not change. */
const IGNORED_CHECKS = "KubeletKernelSettings";
/** Files both tools write, compared between a kubeforge-prepared and an Ansible-prepared host. */
const COMPARED_FILES = [
  "/etc/containerd/config.toml",
  "/etc/sysctl.d/99-kubeforge.conf",
  "/etc/modules-load.d/kubeforge.conf",
  "/usr/lib/systemd/system/kubelet.service",
  "/usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf",
  "/usr/bin/kubelet",
  "/usr/bin/kubectl",
  "/opt/cni/bin/bridge",
];
const SCP_TARGET = "/var/tmp/kubeforge-bench-scp.bundle";
const bin = fileURLToPath(new URL("../../bin/kubeforge.js", import.meta.url));
const playbookDir = fileURLToPath(new URL("../../bench/provision/", import.meta.url));

const stopwatch = new Stopwatch(`tearing down ${INSTANCE.bridge}`);
const log = (line: string) => process.stderr.write(`${line}\n`);
const run = $({ quiet: true });

// ---------------------------------------------------------------------------------------------
// the bundle

/** support/bundle-dir.ts's archive name for an image ref. */
const archiveName = (ref: string) => `${ref.replace(/[/:@]/g, "_")}.tar`;
const TAR_FLAGS = ["--numeric-owner", "--owner=0", "--group=0", "--mtime=@0", "--format=ustar", "-b1"];

/**
 * Replaces the stand-in archive of `ref` with one whose image has a second, uncompressed layer
 * holding `mib` MiB of random bytes (lab/oci.ts, as support/bundle-dir.ts writes them, one layer more).
 */
async function writePaddedImage(ref: string, archive: string, mib: number, scratch: string): Promise<void> {
  if (!existsSync(archive))
    throw new Error(`${archive} is missing: support/bundle-dir.ts names archives differently now`);
  const work = await mkdtemp(join(scratch, "padded-"));
  const layer = async (index: number, name: string, write: (path: string) => Promise<void>) => {
    const rootfs = join(work, `rootfs-${index}`);
    await mkdir(rootfs);
    await write(join(rootfs, name));
    const tarFile = join(work, `layer-${index}.tar`);
    await run`tar -C ${rootfs} ${TAR_FLAGS} -cf ${tarFile} ${name}`;
    await rm(rootfs, { recursive: true });
    return tarFile;
  };
  const standIn = await layer(0, "kubeforge-stand-in-image", (path) =>
    writeFile(path, `kubeforge test stand-in for ${ref}\n`),
  );
  const padding = await layer(1, "kubeforge-bench-padding.bin", async (path) => {
    const stream = createWriteStream(path);
    for (let i = 0; i < mib; i++) {
      if (!stream.write(randomBytes(1 << 20)))
        await new Promise<void>((resolve) => stream.once("drain", () => resolve()));
    }
    await new Promise<void>((resolve, reject) => {
      stream.once("error", reject);
      stream.end(() => resolve());
    });
  });
  const layout = join(work, "image");
  const entries = await writeOciLayout(layout, {
    ref,
    layerTar: await readFile(standIn),
    extraLayerFiles: [padding],
  });
  await run`tar -C ${layout} ${TAR_FLAGS} -cf ${archive} ${entries}`;
  await rm(work, { recursive: true });
}

interface ClusterImage {
  component: string;
  ref: string;
  roles: string[];
}

interface BundleInfo {
  dir: string;
  file: string;
  bytes: number;
  images: ClusterImage[];
  /** Bytes prepare (and the playbook) send to a host of each role: binaries, CNI plugins, the purged packages' .debs, the role's image archives. */
  bytesFor: Record<"control-plane" | "worker", number>;
  paddedRef: string;
}

const sizeOf = async (path: string) => (await stat(path)).size;
async function sizeOfDir(dir: string): Promise<number> {
  let total = 0;
  for (const name of await readdir(dir)) total += await sizeOf(join(dir, name));
  return total;
}

/** A cluster file for `lab`, installing from `bundle`. */
function clusterFileFor(lab: Lab, bundle: string): string {
  const document = yaml.load(labClusterFile(lab, { name: "provision", version: VERSION, user: "root" })) as {
    spec: Record<string, unknown>;
  };
  document.spec.artifacts = { source: "bundle", bundle };
  return yaml.dump(document, { noRefs: true, lineWidth: 120 });
}

async function buildBundle(work: string, env: NodeJS.ProcessEnv): Promise<BundleInfo> {
  // the image list needs only the version: a cluster file for a lab that does not exist yet
  const stub: Lab = {
    bridge: INSTANCE.bridge,
    subnet: INSTANCE.subnet,
    runDir: work,
    keyPath: join(work, "none"),
    knownHostsPath: join(work, "none"),
    sshConfigPath: join(work, "none"),
    users: { root: "root", sudoUser: "none", sudoPassword: "none" },
    hosts: [{ name: "h1", address: `${INSTANCE.subnet}.11` }],
  };
  const stubFile = join(work, "images-cluster.yaml");
  await writeFile(stubFile, clusterFileFor(stub, join(work, "none.bundle")));
  const listed = await run({ env })`${process.execPath} ${bin} -o json images list -f ${stubFile}`;
  const event = listed.stdout
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line) as { type: string; images?: ClusterImage[] })
    .find((e) => e.type === "images.list");
  const images = event?.images ?? [];
  const padded = images.find((image) => image.component === "kube-proxy");
  if (!padded?.roles.includes("worker")) throw new Error("kube-proxy is not among every role's images");

  const dir = join(work, "bundle-dir");
  await buildTestBundleDir(dir, { kubernetesVersion: VERSION, images: images.map((image) => image.ref) });
  await writePaddedImage(padded.ref, join(dir, "images", archiveName(padded.ref)), PADDING_MIB, work);
  const file = join(work, "provision.bundle");
  await run({ env })`${process.execPath} ${bin} bundle create --from-dir ${dir} --out ${file}`;
  const bytes = await sizeOf(file);
  if (bytes < MIN_BUNDLE_BYTES)
    throw new Error(`the bundle is ${bytes} bytes, less than ${MIN_BUNDLE_BYTES}`);

  const common =
    (await sizeOfDir(join(dir, "bin/linux-amd64"))) +
    (await sizeOfDir(join(dir, "cni/linux-amd64"))) +
    (await debsOf(dir, PURGED_PACKAGES)).reduce((sum, deb) => sum + deb.size, 0);
  const imageBytes = async (role: string) => {
    let total = 0;
    for (const image of images.filter((i) => i.roles.includes(role)))
      total += await sizeOf(join(dir, "images", archiveName(image.ref)));
    return total;
  };
  return {
    dir,
    file,
    bytes,
    images,
    bytesFor: {
      "control-plane": common + (await imageBytes("control-plane")),
      worker: common + (await imageBytes("worker")),
    },
    paddedRef: padded.ref,
  };
}

async function debsOf(dir: string, names: string[]): Promise<Array<{ path: string; size: number }>> {
  const packagesDir = join(dir, "packages/debian-12-amd64");
  const files = await readdir(packagesDir);
  return Promise.all(
    names.map(async (name) => {
      const file = files.find((f) => f.startsWith(`${name}_`));
      if (!file) throw new Error(`no .deb for ${name} in ${packagesDir}`);
      return { path: join(packagesDir, file), size: await sizeOf(join(packagesDir, file)) };
    }),
  );
}

// ---------------------------------------------------------------------------------------------
// the lab

const roleOf = (index: number) => (index === 0 ? "control-plane" : "worker");

function onHost(lab: Lab, name: string, command: string) {
  return run`ssh -F ${lab.sshConfigPath} -o BatchMode=yes ${name} ${command}`;
}

async function onAll(lab: Lab, command: string): Promise<void> {
  await Promise.all(lab.hosts.map((host) => onHost(lab, host.name, command)));
}

/** Fresh hosts: booted now, containerd and runc purged, python3 for Ansible on the 6-host labs. */
async function freshLab(hosts: number, pythonDebs: string[] | undefined): Promise<Lab> {
  const lab = await labUp(hosts, { ...INSTANCE, log: () => {}, signal: stopwatch.signal });
  await onAll(
    lab,
    `systemctl stop containerd; DEBIAN_FRONTEND=noninteractive dpkg --purge ${PURGED_PACKAGES.join(" ")} >/dev/null`,
  );
  if (pythonDebs) {
    const last = pythonDebs.filter((deb) => basename(deb).startsWith(`${PYTHON_LAST}_`));
    const first = pythonDebs.filter((deb) => !last.includes(deb));
    await Promise.all(
      lab.hosts.map(async (host) => {
        await onHost(lab, host.name, "mkdir -p /tmp/kf-python");
        await run`scp -F ${lab.sshConfigPath} -o BatchMode=yes -q ${pythonDebs} ${`${host.name}:/tmp/kf-python/`}`;
        const names = (debs: string[]) => debs.map((deb) => `/tmp/kf-python/${basename(deb)}`).join(" ");
        await onHost(
          lab,
          host.name,
          `dpkg -i ${names(first)} >/dev/null && dpkg -i ${names(last)} >/dev/null && rm -r /tmp/kf-python && python3 -c 'import json, shutil'`,
        );
      }),
    );
  }
  return lab;
}

/** python3 and the libraries Ansible's modules need, as .debs from this machine's apt. */
async function downloadPythonDebs(work: string): Promise<string[]> {
  const dir = join(work, "python-debs");
  await mkdir(dir);
  // root's apt would otherwise drop to _apt, which cannot write into a 0700 temporary directory
  await run({ cwd: dir })`apt-get download -qq -o APT::Sandbox::User=root ${[...PYTHON_DEBS, PYTHON_LAST]}`;
  return (await readdir(dir)).map((name) => join(dir, name));
}

// ---------------------------------------------------------------------------------------------
// checks after a first run: the hosts are prepared, and both tools leave the same bytes

const CHECK_SCRIPT = `
echo "containerd=$(systemctl is-active containerd)/$(systemctl is-enabled containerd)"
echo "kubelet=$(systemctl is-active kubelet)/$(systemctl is-enabled kubelet)"
echo "ip_forward=$(cat /proc/sys/net/ipv4/ip_forward)"
echo "packages=$(dpkg-query -W -f='\${db:Status-Status} ' ${PURGED_PACKAGES.join(" ")})"
echo "kubelet_version=$(/usr/bin/kubelet --version)"
echo "images=$(ctr -n k8s.io images ls -q | grep -v '^sha256:' | sort | tr '\\n' ' ')"
echo "scratch=$(ls -A /var/lib/kubeforge/tmp 2>/dev/null | tr '\\n' ' ')"
sha256sum ${COMPARED_FILES.join(" ")}
`;

/** Checks every host; returns each compared file's sha256 per role. */
async function checkHosts(lab: Lab, bundle: BundleInfo): Promise<Map<string, string>> {
  const hashes = new Map<string, string>();
  const problems: string[] = [];
  await Promise.all(
    lab.hosts.map(async (host, index) => {
      const role = roleOf(index);
      const out = (await onHost(lab, host.name, CHECK_SCRIPT)).stdout;
      const value = (key: string) => new RegExp(`^${key}=(.*)$`, "m").exec(out)?.[1]?.trim();
      const want: Record<string, string> = {
        containerd: "active/enabled",
        kubelet: "inactive/enabled",
        ip_forward: "1",
        packages: PURGED_PACKAGES.map(() => "installed").join(" "),
        kubelet_version: `Kubernetes ${VERSION}`,
        images: bundle.images
          .filter((image) => image.roles.includes(role))
          .map((image) => image.ref)
          .sort()
          .join(" "),
        scratch: "",
      };
      for (const [key, expected] of Object.entries(want)) {
        if (value(key) !== expected)
          problems.push(
            `${host.name}: ${key} is ${JSON.stringify(value(key))}, expected ${JSON.stringify(expected)}`,
          );
      }
      for (const line of out.split("\n")) {
        const [hash, path] = line.split(/\s+/);
        if (hash && path && COMPARED_FILES.includes(path)) hashes.set(`${role} ${path}`, hash);
      }
    }),
  );
  if (problems.length > 0) throw new Error(`hosts not prepared as expected:\n${problems.join("\n")}`);
  return hashes;
}

// ---------------------------------------------------------------------------------------------
// the measurements

interface KubeforgeRun {
  sample: Sample;
  /** Top-level phases, ms. */
  phases: Record<string, number>;
  changes: number;
}

async function kubeforgePrepare(
  clusterFile: string,
  env: NodeJS.ProcessEnv,
  timeFile: string,
): Promise<KubeforgeRun> {
  const sample = await stopwatch.time(
    [
      process.execPath,
      bin,
      "-o",
      "json",
      "prepare",
      "-f",
      clusterFile,
      `--ignore-preflight-errors=${IGNORED_CHECKS}`,
    ],
    env,
    timeFile,
  );
  const phases: Record<string, number> = {};
  let changes = 0;
  for (const line of sample.stdout.split("\n")) {
    if (!line.trim()) continue;
    const event = JSON.parse(line) as {
      type: string;
      phase?: string;
      durationMs?: number;
      applied?: boolean;
    };
    if (event.type === "phase.end" && event.phase && !event.phase.includes("/"))
      phases[event.phase] = event.durationMs ?? Number.NaN;
    if (event.type === "change" && event.applied) changes++;
  }
  return { sample, phases, changes };
}

/** scp of the bundle file to every host at once: one scp process per host, OpenSSH's defaults. */
function scpCommand(lab: Lab, file: string): string[] {
  const options = [
    "-F /dev/null",
    `-i ${lab.keyPath}`,
    "-o IdentitiesOnly=yes",
    "-o BatchMode=yes",
    "-o StrictHostKeyChecking=yes",
    `-o UserKnownHostsFile=${lab.knownHostsPath}`,
    "-o GlobalKnownHostsFile=/dev/null",
  ].join(" ");
  const each = lab.hosts.map(
    (host) => `scp -q ${options} ${file} root@${host.address}:${SCP_TARGET} & pids="$pids $!"`,
  );
  return [
    "sh",
    "-c",
    `pids=; ${each.join("; ")}; fail=0; for p in $pids; do wait $p || fail=1; done; exit $fail`,
  ];
}

async function scpFloor(
  lab: Lab,
  bundle: BundleInfo,
  env: NodeJS.ProcessEnv,
  timeFile: string,
): Promise<Sample> {
  const sample = await stopwatch.time(scpCommand(lab, bundle.file), env, timeFile);
  const sizes = await Promise.all(
    lab.hosts.map(async (host) =>
      (await onHost(lab, host.name, `stat -c %s ${SCP_TARGET} && rm ${SCP_TARGET}`)).stdout.trim(),
    ),
  );
  if (sizes.some((size) => Number(size) !== bundle.bytes))
    throw new Error(`scp left ${sizes.join(", ")} bytes, not ${bundle.bytes}`);
  return sample;
}

interface AnsibleSetup {
  argv: string[];
  env: NodeJS.ProcessEnv;
  controlDir: string;
  shown: string;
}

async function ansibleSetup(
  lab: Lab,
  bundle: BundleInfo,
  dir: string,
  baseEnv: NodeJS.ProcessEnv,
): Promise<AnsibleSetup> {
  await mkdir(dir, { recursive: true });
  const controlDir = join(dir, "cp");
  await mkdir(controlDir, { recursive: true });
  const hosts: Record<string, unknown> = {};
  lab.hosts.forEach((host, index) => {
    hosts[host.name] = {
      ansible_host: host.address,
      node_images: bundle.images
        .filter((image) => image.roles.includes(roleOf(index)))
        .map((image) => ({ ref: image.ref, archive: archiveName(image.ref) })),
    };
  });
  const inventory = join(dir, "inventory.yml");
  await writeFile(inventory, JSON.stringify({ nodes: { hosts } }, null, 2));
  const pause = bundle.images.find((image) => image.component === "pause")?.ref;
  const vars = join(dir, "vars.json");
  await writeFile(
    vars,
    JSON.stringify({
      bundle_dir: bundle.dir,
      sandbox_image: pause,
      restrict_oom_score_adj: true, // the lab hosts are containers
      cni_bin_dir: "/opt/cni/bin",
      cni_conf_dir: "/etc/cni/net.d",
      network_sysctls: {
        "net.ipv4.ip_forward": "1",
        "net.bridge.bridge-nf-call-iptables": "1",
        "net.bridge.bridge-nf-call-ip6tables": "1",
      },
      kernel_modules: ["overlay", "br_netfilter"],
    }),
  );
  const config = join(dir, "ansible.cfg");
  await writeFile(
    config,
    [
      "[defaults]",
      `forks = ${lab.hosts.length}`,
      "host_key_checking = True",
      "gathering = explicit",
      "interpreter_python = /usr/bin/python3",
      "remote_user = root",
      `private_key_file = ${lab.keyPath}`,
      "retry_files_enabled = False",
      `local_tmp = ${join(dir, "tmp")}`,
      "[ssh_connection]",
      "pipelining = True",
      `ssh_args = -F /dev/null -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=${lab.knownHostsPath} -o GlobalKnownHostsFile=/dev/null -o ControlMaster=auto -o ControlPersist=60s`,
      `control_path_dir = ${controlDir}`,
      "",
    ].join("\n"),
  );
  const argv = ["ansible-playbook", "-i", inventory, "-e", `@${vars}`, join(playbookDir, "playbook.yml")];
  return {
    argv,
    env: { ...baseEnv, ANSIBLE_CONFIG: config, ANSIBLE_NOCOLOR: "1", ANSIBLE_HOME: join(dir, "home") },
    controlDir,
    shown: `ANSIBLE_CONFIG=ansible.cfg ${argv.map((arg) => arg.replace(`${dir}/`, "")).join(" ")}`,
  };
}

/** Ends the ControlPersist masters a playbook run left, so no run reuses another's connections. */
async function closeMasters(controlDir: string): Promise<void> {
  for (const socket of await readdir(controlDir)) {
    await run({ nothrow: true })`ssh -o ${`ControlPath=${join(controlDir, socket)}`} -O exit placeholder`;
  }
}

interface AnsibleRun {
  sample: Sample;
  changed: number;
}

async function ansiblePlaybook(setup: AnsibleSetup, timeFile: string): Promise<AnsibleRun> {
  try {
    const sample = await stopwatch.time(setup.argv, setup.env, timeFile);
    let changed = 0;
    for (const match of sample.stdout.matchAll(
      /^\S+\s+:\s+ok=\d+\s+changed=(\d+)\s+unreachable=0\s+failed=0/gm,
    ))
      changed += Number(match[1]);
    return { sample, changed };
  } finally {
    await closeMasters(setup.controlDir);
  }
}

// ---------------------------------------------------------------------------------------------

interface Results {
  samples: Map<string, Sample[]>;
  phases: Map<string, Array<Record<string, number>>>;
  failures: string[];
  changes: Map<string, number[]>;
  checks: string[];
  hashes: { kubeforge?: Map<string, string>; ansible?: Map<string, string> };
  ansibleShown: string;
}

async function withLab<T>(
  hosts: number,
  python: string[] | undefined,
  body: (lab: Lab) => Promise<T>,
): Promise<T> {
  const t0 = performance.now();
  const lab = await freshLab(hosts, python);
  log(`[provision] ${hosts} fresh host(s) ready in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  try {
    return await body(lab);
  } finally {
    await labDown({ ...INSTANCE, log: () => {} });
  }
}

/** Files a sample under its key (`prepare/6`, `scp/3`, …). */
function sampleAdder(results: Results): (key: string, sample: Sample) => void {
  return (key, sample) => results.samples.set(key, [...(results.samples.get(key) ?? []), sample]);
}

async function kubeforgeLab(
  hosts: number,
  bundle: BundleInfo,
  python: string[] | undefined,
  work: string,
  env: NodeJS.ProcessEnv,
  results: Results,
): Promise<void> {
  const timeFile = join(work, "time.out");
  const add = sampleAdder(results);
  await withLab(hosts, python, async (lab) => {
    const clusterFile = join(work, `cluster-${hosts}.yaml`);
    await writeFile(clusterFile, clusterFileFor(lab, bundle.file));
    // a fresh state directory: the first run verifies the bundle's checksums, as after `bundle create`
    const state = await mkdtemp(join(work, "state-"));
    const kfEnv = { ...env, KUBEFORGE_STATE_DIR: state };
    add(`scp/${hosts}`, await scpFloor(lab, bundle, env, timeFile));
    try {
      const first = await kubeforgePrepare(clusterFile, kfEnv, timeFile);
      add(`prepare/${hosts}`, first.sample);
      const label = `${hosts} host${hosts > 1 ? "s" : ""}`;
      results.phases.set(label, [...(results.phases.get(label) ?? []), first.phases]);
      log(
        `[provision] kubeforge prepare, ${hosts} host(s): ${(first.sample.wallMs / 1000).toFixed(1)} s, ${first.changes} changes`,
      );
      const hashes = await checkHosts(lab, bundle);
      if (hosts === PEER_HOSTS) results.hashes.kubeforge = hashes;
      results.checks.push(`kubeforge ${hosts} host(s): prepared as expected`);
      if (hosts === PEER_HOSTS) {
        for (let i = 0; i < NOOP_RUNS; i++) {
          const again = await kubeforgePrepare(clusterFile, kfEnv, timeFile);
          add(`noop/${hosts}`, again.sample);
          results.phases.set("no-op", [...(results.phases.get("no-op") ?? []), again.phases]);
          results.changes.set("noop", [...(results.changes.get("noop") ?? []), again.changes]);
        }
      }
    } catch (error) {
      results.failures.push(
        `kubeforge prepare on ${hosts} host(s): ${error instanceof Error ? error.message : String(error)}`,
      );
      log(`[provision] kubeforge prepare on ${hosts} host(s) FAILED (noted, going on)`);
    }
    add(`scp/${hosts}`, await scpFloor(lab, bundle, env, timeFile));
  });
}

async function ansibleLab(
  bundle: BundleInfo,
  python: string[],
  work: string,
  env: NodeJS.ProcessEnv,
  results: Results,
): Promise<void> {
  const timeFile = join(work, "time.out");
  const add = sampleAdder(results);
  await withLab(PEER_HOSTS, python, async (lab) => {
    const setup = await ansibleSetup(lab, bundle, await mkdtemp(join(work, "ansible-")), env);
    results.ansibleShown = setup.shown;
    try {
      const first = await ansiblePlaybook(setup, timeFile);
      add(`ansible/${PEER_HOSTS}`, first.sample);
      log(
        `[provision] ansible-playbook, ${PEER_HOSTS} hosts: ${(first.sample.wallMs / 1000).toFixed(1)} s, changed=${first.changed}`,
      );
      results.hashes.ansible = await checkHosts(lab, bundle);
      results.checks.push(`Ansible ${PEER_HOSTS} hosts: prepared as expected`);
      const again = await ansiblePlaybook(setup, timeFile);
      add(`ansible-noop/${PEER_HOSTS}`, again.sample);
      results.changes.set("ansible-noop", [...(results.changes.get("ansible-noop") ?? []), again.changed]);
    } catch (error) {
      results.failures.push(
        `ansible-playbook on ${PEER_HOSTS} hosts: ${error instanceof Error ? error.message : String(error)}`,
      );
      log(`[provision] ansible-playbook FAILED (noted, going on)`);
    }
  });
}

function report(
  bundle: BundleInfo,
  results: Results,
  startLoad: number,
  otherLabs: string[],
  elapsedMs: number,
): string {
  const { samples } = results;
  const all = (key: string) => samples.get(key) ?? [];
  const wall = (key: string) => median(all(key).map((s) => s.wallMs));
  const field = (key: string, f: "cpuMs" | "machineCpuMs" | "load") => median(all(key).map((s) => s[f]));
  const mb = (bytes: number) => bytes / 1e6;
  const perHost = (hosts: number) =>
    (bundle.bytesFor["control-plane"] + (hosts - 1) * bundle.bytesFor.worker) / hosts;
  const pad = (text: string | number, width: number) => String(text).padStart(width);
  const sec = (ms: number) => (Number.isNaN(ms) ? "—" : `${(ms / 1000).toFixed(1)} s`);
  const row = (name: string, key: string, bytesPerHost: number | undefined, hosts: number) => {
    const w = wall(key);
    const rate =
      bytesPerHost === undefined || Number.isNaN(w) ? "—" : (mb(bytesPerHost) / (w / 1000)).toFixed(1);
    const total =
      bytesPerHost === undefined || Number.isNaN(w)
        ? "—"
        : ((mb(bytesPerHost) * hosts) / (w / 1000)).toFixed(1);
    return `  ${name.padEnd(40)}${pad(all(key).length, 5)}${pad(sec(w), 10)}${pad(rate, 10)}${pad(total, 10)}${pad(sec(field(key, "cpuMs")), 10)}${pad(sec(field(key, "machineCpuMs")), 12)}${pad(field(key, "load").toFixed(2), 7)}`;
  };
  const lines = [
    `provision: kubeforge prepare from an offline bundle on fresh lab hosts, ${rounds} round(s), medians (${process.version}; ${availableParallelism()} CPUs shared by the tool, the hosts and everything else on this machine)`,
    `  bundle: ${mb(bundle.bytes).toFixed(1)} MB (kubeforge bundle create of support/bundle-dir.ts's directory); what makes it >= 200 MB: the`,
    `  ${bundle.paddedRef} stand-in image carries a ${PADDING_MIB} MiB random (incompressible) layer, imported by every role`,
    `  per host prepare sends ${mb(bundle.bytesFor["control-plane"]).toFixed(1)} MB to the control plane, ${mb(bundle.bytesFor.worker).toFixed(1)} MB to a worker (binaries, CNI plugins, containerd + runc .debs, the role's images); scp sends the whole file`,
    "",
    `  ${"measurement".padEnd(40)}${pad("runs", 5)}${pad("wall", 10)}${pad("MB/s/host", 10)}${pad("MB/s all", 10)}${pad("tool CPU", 10)}${pad("machine CPU", 12)}${pad("load", 7)}`,
  ];
  for (const hosts of SIZES) {
    lines.push(
      row(
        `kubeforge prepare, ${hosts} host${hosts > 1 ? "s" : ""}`,
        `prepare/${hosts}`,
        perHost(hosts),
        hosts,
      ),
    );
    lines.push(row(`  floor: parallel scp of the bundle`, `scp/${hosts}`, bundle.bytes, hosts));
  }
  lines.push(
    row(`kubeforge prepare no-op re-run, ${PEER_HOSTS} hosts`, `noop/${PEER_HOSTS}`, undefined, PEER_HOSTS),
  );
  lines.push(
    row(`ansible-playbook, ${PEER_HOSTS} hosts`, `ansible/${PEER_HOSTS}`, perHost(PEER_HOSTS), PEER_HOSTS),
  );
  lines.push(
    row(
      `ansible-playbook no-op re-run, ${PEER_HOSTS} hosts`,
      `ansible-noop/${PEER_HOSTS}`,
      undefined,
      PEER_HOSTS,
    ),
  );
  lines.push(
    "",
    "  every run's wall time, s, in the order run:",
    ...[...samples.entries()].map(
      ([key, list]) =>
        `    ${key.padEnd(18)}${list.map((sample) => (sample.wallMs / 1000).toFixed(1)).join("  ")}`,
    ),
    "",
  );
  const verdict = (ok: boolean) => (ok ? "goal met" : "MISSED");
  for (const hosts of SIZES) {
    const r = wall(`prepare/${hosts}`) / wall(`scp/${hosts}`);
    lines.push(
      `  prepare / scp floor, ${hosts} host${hosts > 1 ? "s" : ""}: ${Number.isNaN(r) ? "—" : `${r.toFixed(2)}x`}`,
    );
  }
  const noop = wall(`noop/${PEER_HOSTS}`);
  lines.push(
    `  no-op re-run, ${PEER_HOSTS} hosts: ${sec(noop)} (goal <= ${NOOP_GOAL_MS / 1000} s: ${Number.isNaN(noop) ? "not measured" : verdict(noop <= NOOP_GOAL_MS)}; changes reported: ${(results.changes.get("noop") ?? []).join(", ") || "—"})`,
  );
  const ratio = wall(`prepare/${PEER_HOSTS}`) / wall(`ansible/${PEER_HOSTS}`);
  lines.push(
    `  ratio kubeforge/Ansible, ${PEER_HOSTS} hosts: ${Number.isNaN(ratio) ? "—" : `${ratio.toFixed(2)}x`} (goal <= ${RATIO_GOAL}x: ${Number.isNaN(ratio) ? "not measured" : verdict(ratio <= RATIO_GOAL)})`,
  );
  lines.push(
    `  Ansible no-op re-run changed=${(results.changes.get("ansible-noop") ?? []).join(", ") || "—"} (reference, no goal)`,
  );

  const phaseNames = [...new Set([...results.phases.values()].flat().flatMap((p) => Object.keys(p)))];
  const columns = [...results.phases.keys()];
  lines.push(
    "",
    `  kubeforge prepare's phases, median ms (first runs; no-op = the ${PEER_HOSTS}-host re-runs):`,
  );
  lines.push(`    ${"".padEnd(14)}${columns.map((column) => pad(column, 10)).join("")}`);
  for (const name of phaseNames)
    lines.push(
      `    ${name.padEnd(14)}${columns.map((column) => pad(median((results.phases.get(column) ?? []).map((p) => p[name] ?? Number.NaN)).toFixed(0), 10)).join("")}`,
    );

  lines.push(
    "",
    "  checked after every first run (each host): containerd active and enabled, kubelet enabled and not",
  );
  lines.push(
    "  started, ip_forward=1, containerd and runc installed from the bundle, the stand-in kubelet answers",
  );
  lines.push("  --version, exactly the role's images in k8s.io, no scratch file left:");
  for (const check of results.checks) lines.push(`    ${check}`);
  const { kubeforge, ansible } = results.hashes;
  if (kubeforge && ansible) {
    const differ = [...kubeforge.keys()].filter((key) => kubeforge.get(key) !== ansible.get(key));
    lines.push(
      differ.length === 0
        ? `  the two tools' hosts have byte-identical ${COMPARED_FILES.map((f) => basename(f)).join(", ")} (both roles)`
        : `  the two tools' hosts DIFFER in: ${differ.join(", ")}`,
    );
  }
  lines.push(
    "",
    `  machine: 1-minute load ${startLoad.toFixed(2)} at the start; other lab instances up during the bench: ${otherLabs.join(", ") || "none"};`,
    `  the whole bench took ${(elapsedMs / 60000).toFixed(1)} min. "load" = 1-minute load average before each run; tool CPU = user+sys`,
    "  of the process tree; machine CPU = busy time of all CPUs during the run (/proc/stat: the tool, the",
    "  hosts' sshd, dpkg, containerd, and whatever else runs here).",
    `  hosts: lab instance ${INSTANCE.bridge} (${INSTANCE.subnet}.0/24), fresh for every first run; containerd and runc purged first;`,
    `  on the 6-host labs (both tools) python3 from .debs fetched here (${[...PYTHON_DEBS, PYTHON_LAST].join(", ")}), dpkg -i over ssh, untimed.`,
    `  kubeforge: kubeforge -o json prepare -f cluster.yaml --ignore-preflight-errors=${IGNORED_CHECKS} (the hosts are containers;`,
    "  vm.*/kernel.* are this machine's), a fresh state directory per lab (the first run verifies the bundle's checksums).",
    `  scp: one 'scp -q -F /dev/null -i KEY -o StrictHostKeyChecking=yes -o UserKnownHostsFile=… BUNDLE root@HOST:${SCP_TARGET}' per host, at once.`,
    `  Ansible (${results.ansibleShown ? "ansible-core, Debian's" : "not run"}): ${results.ansibleShown}`,
    "  with pipelining, forks = hosts, gathering = explicit, interpreter_python = /usr/bin/python3, host keys checked",
    "  against the lab's known_hosts, ControlPersist=60s within a run (masters closed after each run).",
  );
  if (results.failures.length > 0) {
    lines.push("", "  FAILURES (measurements missing above):");
    for (const failure of results.failures) lines.push(...failure.split("\n").map((line) => `    ${line}`));
  }
  return `${lines.join("\n")}\n`;
}

async function otherLabBridges(): Promise<string[]> {
  const out = await run({ nothrow: true })`ip -br link show type bridge`;
  return out.stdout
    .split("\n")
    .map((line) => line.split(/\s+/)[0] ?? "")
    .filter((name) => name.startsWith("kfbr") && name !== INSTANCE.bridge);
}

async function main(): Promise<void> {
  if (!Number.isInteger(rounds) || rounds < 1)
    throw new Error(`rounds must be a positive integer, got ${process.argv[2]}`);
  requireGnuTime();
  if ((await run({ nothrow: true })`sh -c ${"command -v ansible-playbook"}`).exitCode !== 0)
    throw new Error("ansible-playbook is missing: apt-get install -y ansible-core");
  const started = performance.now();
  const startLoad = loadavg()[0] ?? 0;
  const otherLabs = new Set(await otherLabBridges());
  const work = await mkdtemp(join(tmpdir(), "kubeforge-provision-"));
  const env: NodeJS.ProcessEnv = { ...process.env, KUBEFORGE_STATE_DIR: join(work, "state") };
  delete env.SSH_AUTH_SOCK; // every tool authenticates with the lab's key file only
  const results: Results = {
    samples: new Map(),
    phases: new Map(),
    failures: [],
    changes: new Map(),
    checks: [],
    hashes: {},
    ansibleShown: "",
  };
  try {
    log("[provision] building the bundle directory and the bundle");
    const bundle = await buildBundle(work, env);
    const python = await downloadPythonDebs(work);
    log(
      `[provision] bundle ${(bundle.bytes / 1e6).toFixed(1)} MB; python3 .debs: ${python.map((p) => basename(p)).join(" ")}`,
    );
    for (let round = 0; round < rounds; round++) {
      for (const hosts of SIZES.filter((h) => h !== PEER_HOSTS)) {
        await kubeforgeLab(hosts, bundle, undefined, work, env, results);
        for (const name of await otherLabBridges()) otherLabs.add(name);
      }
      // kubeforge and Ansible on 6 hosts: which goes first alternates by round
      const pair = [
        () => kubeforgeLab(PEER_HOSTS, bundle, python, work, env, results),
        () => ansibleLab(bundle, python, work, env, results),
      ];
      for (const step of round % 2 === 0 ? pair : pair.reverse()) {
        await step();
        for (const name of await otherLabBridges()) otherLabs.add(name);
      }
      log(`[provision] round ${round + 1}/${rounds} done`);
    }
    process.stdout.write(report(bundle, results, startLoad, [...otherLabs], performance.now() - started));
    if (results.failures.length > 0) process.exitCode = 1;
  } finally {
    // also after a failure or Ctrl-C
    await labDown({ ...INSTANCE, log }).catch((error: unknown) => log(`[provision] lab down: ${error}`));
    await rm(work, { recursive: true, force: true });
  }
}

try {
  await main();
} catch (error) {
  log(`provision: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = stopwatch.signal.aborted ? 130 : 1;
}
