// The prepare phases: bare hosts → hosts ready for the kubelet, from an offline bundle. Each phase
// probes the node again (node/state.ts), plans the difference from what it wants, and applies it
// through the one dry-run gate, so a re-run repairs exactly the drift and otherwise changes nothing.
import { posix } from "node:path";
import type { Bundle } from "../artifacts/bundle.js";
import { distroOf, platformOf, REQUIRED_CNI_PLUGINS } from "../artifacts/completeness.js";
import type { BundleFile } from "../artifacts/manifest.js";
import { imagesForRole, normalizeImageRef, pauseImage } from "../config/images.js";
import { Limiter } from "../hosts/limiter.js";
import type { ClusterHost } from "../hosts/open.js";
import { shellQuote } from "../hosts/sudo.js";
import { sha256, writeStreamAtomic } from "../hosts/upload.js";
import {
  checkFiles,
  type InstallRecord,
  parseInstallRecord,
  serializeInstallRecord,
  statForRecord,
  type WantedFile,
} from "../node/install-record.js";
import {
  BIN_DIR,
  CNI_BIN_DIR,
  CNI_CONFIG_DIR,
  CONTAINERD_CONFIG,
  CONTAINERD_SOCKET,
  INSTALL_RECORD,
  K8S_NAMESPACE,
  KUBELET_DROP_IN,
  KUBELET_UNIT,
  MODULES_FILE,
  NODE_SCRATCH_DIR,
  SYSCTL_FILE,
} from "../node/paths.js";
import { type NodeState, type ProbeRequest, probeNode } from "../node/state.js";
import { containerdConfigVersion, renderContainerdConfig } from "../templates/containerd.js";
import { KUBEADM_DROP_IN, KUBELET_SERVICE } from "../templates/kubelet-unit.js";
import { KERNEL_MODULES, modulesFile, NETWORK_SYSCTLS, sysctlFile } from "../templates/os.js";
import { BundleError, type BundleProblem } from "../workflow/errors.js";
import type { HostPhase, HostStep, LocalPhase, Phase } from "../workflow/phase.js";
import { type ClusterRun, factsOf } from "./cluster-run.js";

export interface PrepareRun extends ClusterRun {
  /** Opened and checksum-verified before any host is touched. */
  bundle: Bundle;
  /** `--verify`: hash every installed file instead of trusting the install record's sizes and mtimes. */
  verify: boolean;
  /** The install record each host will get, started from the host's own and updated by the phases. */
  records: Map<string, InstallRecord>;
  /** Each host's state as last probed; dropped when a change is applied there, so it is never stale. */
  states: Map<string, NodeState>;
}

type Step = HostStep<PrepareRun, ClusterHost>;

/** The tools prepare installs from the bundle's OS packages when a host lacks them, by package name. */
const PACKAGE_FOR_TOOL: Record<string, string> = {
  containerd: "containerd",
  runc: "runc",
  conntrack: "conntrack",
  socat: "socat",
  ethtool: "ethtool",
};
const CNI_PACKAGE = "containernetworking-plugins";
/** Where Debian's containernetworking-plugins puts the plugins. */
const DEBIAN_CNI_DIR = "/usr/lib/cni";
const CONTAINERD_ANSWER_TIMEOUT_MS = 30_000;
/** Uploads in flight per host, within the SSH connection's channel limit. */
const UPLOADS_PER_HOST = 4;

/** Runs `work` on every item, at most `limit` at once; every item runs, then the first failure is thrown. */
async function eachAtMost<T>(
  limit: number,
  items: readonly T[],
  work: (item: T) => Promise<unknown>,
): Promise<void> {
  const slots = new Limiter(limit);
  const results = await Promise.allSettled(
    items.map(async (item) => {
      const release = await slots.acquire();
      try {
        await work(item);
      } finally {
        release();
      }
    }),
  );
  const failed = results.find((result) => result.status === "rejected");
  if (failed) throw failed.reason;
}

/** Everything any prepare phase asks the node about, in one probe. */
const PROBE: ProbeRequest = {
  hashFiles: [MODULES_FILE, SYSCTL_FILE, CONTAINERD_CONFIG, KUBELET_UNIT, KUBELET_DROP_IN],
  packages: [...Object.values(PACKAGE_FOR_TOOL), CNI_PACKAGE],
};

function probe(step: Step): Promise<NodeState> {
  return probeNode(step.host.host, PROBE, { sudo: step.host.sudo, signal: step.signal });
}

/**
 * The node as it is: probed once, then reused by the phases after until one of them changes the
 * host (see `change`). A no-op re-run so costs one probe per host, not one per phase.
 */
async function stateOf(step: Step): Promise<NodeState> {
  const known = step.data.states.get(step.host.name);
  if (known) return known;
  const state = await probe(step);
  step.data.states.set(step.host.name, state);
  return state;
}

/** The dry-run gate, forgetting the host's probed state once something was applied there. */
function change<T>(step: Step, description: string, apply: () => Promise<T>): Promise<T | undefined> {
  return step.change(description, async () => {
    step.data.states.delete(step.host.name);
    return apply();
  });
}

function run(step: Step, command: string, timeoutMs = 120_000): Promise<unknown> {
  return step.host.host.exec(command, { sudo: step.host.sudo, signal: step.signal, timeoutMs });
}

function writeText(step: Step, path: string, content: string, mode = 0o644): Promise<void> {
  return step.host.host.writeFile(path, content, { sudo: step.host.sudo, signal: step.signal, mode });
}

function platform(run: PrepareRun, host: ClusterHost): string {
  const { arch } = factsOf(run, host.name);
  // Host preflight has refused architectures kubeforge has no name for.
  return platformOf(arch) ?? `linux-${arch}`;
}

function distro(run: PrepareRun, host: ClusterHost): string {
  const facts = factsOf(run, host.name);
  return distroOf(facts.os.id, facts.os.versionId, facts.arch);
}

/** The bundle's CNI plugins for a platform (`cni/<platform>/…`), if it ships them as files. */
function cniFiles(bundle: Bundle, platformName: string): BundleFile[] {
  return bundle.manifest.files.filter((file) => file.kind === "cni" && file.platform === platformName);
}

/** Where the CNI plugins will be: the bundle's files go to /opt/cni/bin, Debian's package uses /usr/lib/cni. */
function cniBinDirs(run: PrepareRun, host: ClusterHost): string[] {
  return cniFiles(run.bundle, platform(run, host)).length > 0 ? [CNI_BIN_DIR] : [DEBIAN_CNI_DIR];
}

/** The host's record, read once from the node, then kept up to date by the phases of this run. */
function recordOf(run: PrepareRun, host: ClusterHost, state: NodeState): InstallRecord {
  let record = run.records.get(host.name);
  if (!record) {
    const existing = parseInstallRecord(state.installRecord);
    record = { ...existing, files: [...existing.files], packages: [...existing.packages] };
    run.records.set(host.name, record);
  }
  return record;
}

function remember(record: InstallRecord, file: InstallRecord["files"][number]): void {
  record.files = [...record.files.filter((entry) => entry.path !== file.path), file];
}

function sha256Text(text: string): string {
  return sha256(Buffer.from(text));
}

function size(bytes: number): string {
  if (bytes >= 1e6) return `${(bytes / 1e6).toFixed(1)} MB`;
  return bytes >= 1e3 ? `${Math.round(bytes / 1e3)} kB` : `${bytes} B`;
}

// ---------------------------------------------------------------------------------------------
// bundle: what each host needs is in the bundle (checked from facts, before anything changes)

/** The packages a host needs from the bundle: those for tools it lacks (and CNI plugins, if the bundle has no files for them). */
export function packagesNeeded(run: PrepareRun, host: ClusterHost): string[] {
  const facts = factsOf(run, host.name);
  const present = new Set([...facts.binaries, ...(facts.containerd ? ["containerd"] : [])]);
  const needed = Object.entries(PACKAGE_FOR_TOOL)
    .filter(([tool]) => !present.has(tool))
    .map(([, name]) => name);
  if (cniFiles(run.bundle, platform(run, host)).length === 0) needed.push(CNI_PACKAGE);
  return needed;
}

function debianFamily(run: PrepareRun, host: ClusterHost): boolean {
  const { os, packageManager } = factsOf(run, host.name);
  return packageManager === "apt-get" && [os.id, ...os.like].includes("debian");
}

export const bundleCheckPhase: LocalPhase<PrepareRun, ClusterHost> = {
  id: "bundle",
  prerequisite: true,
  title: "Check the bundle against the hosts",
  help: "Checks, from the facts and before anything changes, that the bundle holds everything each host needs: binaries for its platform, the images of its role, and OS packages for what it lacks.",
  run: async ({ data, log }) => {
    const problems: BundleProblem[] = [];
    const lacks = (host: ClusterHost, problem: string) => problems.push({ member: host.name, problem });
    for (const host of data.hosts) {
      const facts = factsOf(data, host.name);
      if (!debianFamily(data, host)) {
        lacks(
          host,
          `${facts.os.prettyName || facts.os.id || "this OS"} is not supported by prepare yet (the Debian family is: Debian, Ubuntu)`,
        );
        continue;
      }
      const platformName = platformOf(facts.arch);
      if (!platformName) {
        lacks(host, `the ${facts.arch} architecture is not supported`);
        continue;
      }
      const files = data.bundle.manifest.files;
      for (const binary of ["kubelet", "kubectl"]) {
        if (
          !files.some(
            (file) =>
              file.kind === "binary" &&
              file.platform === platformName &&
              posix.basename(file.path) === binary,
          )
        )
          lacks(host, `no bin/${platformName}/${binary}`);
      }
      const cni = new Set(cniFiles(data.bundle, platformName).map((file) => posix.basename(file.path)));
      const absent = REQUIRED_CNI_PLUGINS.filter((plugin) => !cni.has(plugin));
      if (cni.size > 0 && absent.length > 0)
        lacks(host, `no CNI plugin ${absent.join(", ")} in cni/${platformName}/`);
      const distroName = distro(data, host);
      for (const name of packagesNeeded(data, host)) {
        if (!debFor(data.bundle, distroName, name))
          lacks(host, `no package ${name} for ${distroName} (the host lacks it)`);
      }
      const images = new Set(bundledImages(data.bundle));
      for (const ref of imagesForRole(data.cluster, host.spec.role)) {
        if (!images.has(normalizeImageRef(ref))) lacks(host, `no image ${ref}`);
      }
    }
    if (problems.length > 0) {
      const fix =
        "add what is missing to the bundle directory and run kubeforge bundle create again (kubeforge bundle verify -f lists it too); nothing was changed on any host";
      throw new BundleError(data.bundle.path, [
        ...problems,
        { member: "", problem: "incomplete for these hosts", fix },
      ]);
    }
    log(`${data.bundle.path}: everything ${data.hosts.length} host(s) need`);
  },
};

/** Every image the bundle's archives hold, named as containerd stores them. */
export function bundledImages(bundle: Bundle): string[] {
  return bundle.manifest.files.flatMap((file) => file.images ?? []).map(normalizeImageRef);
}

function debFor(bundle: Bundle, distroName: string, name: string): BundleFile | undefined {
  return bundle.manifest.files.find(
    (file) => file.kind === "package" && file.distro === distroName && file.package?.name === name,
  );
}

// ---------------------------------------------------------------------------------------------
// os: swap, kernel modules, sysctls

const swapPhase: HostPhase<PrepareRun, ClusterHost> = {
  id: "swap",
  title: "Turn swap off, now and across reboots",
  hosts: (run) => run.hosts,
  run: async (step) => {
    const state = await stateOf(step);
    if (state.swapDevices.length > 0)
      await change(step, `turn swap off (${state.swapDevices.join(", ")})`, () => run(step, "swapoff -a"));
    if (state.fstabSwapEntries > 0) {
      await change(
        step,
        `comment out ${state.fstabSwapEntries} swap entr${state.fstabSwapEntries === 1 ? "y" : "ies"} in /etc/fstab`,
        async () => {
          const fstab = (
            await step.host.host.readFile("/etc/fstab", { sudo: step.host.sudo, signal: step.signal })
          ).toString();
          await writeText(step, "/etc/fstab", commentOutSwap(fstab));
        },
      );
    }
  },
};

/** fstab with every active swap line commented out, marked so a person sees who did it. */
export function commentOutSwap(fstab: string): string {
  return fstab
    .split("\n")
    .map((line) => {
      const fields = line.trim().split(/\s+/);
      return !line.trimStart().startsWith("#") && fields[2] === "swap"
        ? `# swap off for the kubelet (kubeforge): ${line}`
        : line;
    })
    .join("\n");
}

const modulesPhase: HostPhase<PrepareRun, ClusterHost> = {
  id: "modules",
  title: "Load overlay and br_netfilter, now and at boot",
  hosts: (run) => run.hosts,
  run: async (step) => {
    const state = await stateOf(step);
    const content = modulesFile();
    if (state.fileHashes.get(MODULES_FILE) !== sha256Text(content))
      await change(step, `write ${MODULES_FILE} (${KERNEL_MODULES.join(", ")})`, () =>
        writeText(step, MODULES_FILE, content),
      );
    if (!state.overlayFs || !state.bridgeNetfilter)
      await change(step, `load kernel modules ${KERNEL_MODULES.join(", ")}`, () =>
        run(step, `modprobe -a ${KERNEL_MODULES.join(" ")}`),
      );
  },
};

const sysctlPhase: HostPhase<PrepareRun, ClusterHost> = {
  id: "sysctl",
  title: "Set the network sysctls from kubeforge's own file",
  help: `Writes ${SYSCTL_FILE} and applies that file alone (sysctl -p), never sysctl --system.`,
  hosts: (run) => run.hosts,
  run: async (step) => {
    const state = await stateOf(step);
    const content = sysctlFile();
    if (state.fileHashes.get(SYSCTL_FILE) !== sha256Text(content))
      await change(step, `write ${SYSCTL_FILE}`, () => writeText(step, SYSCTL_FILE, content));
    const off = Object.entries(NETWORK_SYSCTLS).filter(([key, value]) => state.sysctls.get(key) !== value);
    if (off.length > 0)
      await change(
        step,
        `apply ${SYSCTL_FILE} (${off.map(([key, value]) => `${key}=${value}`).join(", ")})`,
        () => run(step, `sysctl -q -p ${SYSCTL_FILE}`),
      );
  },
};

const osPhase: LocalPhase<PrepareRun, ClusterHost> = {
  id: "os",
  title: "Prepare the OS",
  phases: [swapPhase, modulesPhase, sysctlPhase],
};

// ---------------------------------------------------------------------------------------------
// packages: OS packages from the bundle for what a host lacks

const packagesPhase: HostPhase<PrepareRun, ClusterHost> = {
  id: "packages",
  title: "Install missing OS packages from the bundle",
  help: "containerd, runc, conntrack, socat, ethtool (and the CNI plugins when the bundle has no files for them), only those a host lacks, with dpkg from the bundle's .debs.",
  hosts: (run) => run.hosts,
  run: async (step) => {
    const { data, host } = step;
    const state = await stateOf(step);
    const distroName = distro(data, host);
    // A package an interrupted dpkg left half-done is installed again from the bundle when it is
    // there, else finished with dpkg --configure.
    const unfinished = state.unfinishedPackages;
    const wanted = [
      ...new Set([
        ...packagesNeeded(data, host).filter((name) => !state.packages.has(name)),
        ...unfinished.filter((name) => debFor(data.bundle, distroName, name)),
      ]),
    ];
    const toConfigure = unfinished.filter((name) => !wanted.includes(name));
    if (toConfigure.length > 0) {
      await change(step, `finish installing ${toConfigure.join(", ")} (dpkg --configure -a)`, () =>
        run(step, "DEBIAN_FRONTEND=noninteractive dpkg --configure -a", 600_000),
      );
    }
    const debs = wanted
      .map((name) => debFor(data.bundle, distroName, name))
      .filter((file) => file !== undefined);
    if (debs.length === 0) return;
    const shown = debs.map((file) => `${file.package?.name} ${file.package?.version}`).join(", ");
    await change(step, `install ${shown} from the bundle`, async () => {
      const paths = debs.map((file) => `${NODE_SCRATCH_DIR}/${posix.basename(file.path)}`);
      const quoted = paths.map(shellQuote).join(" ");
      try {
        await eachAtMost(UPLOADS_PER_HOST, debs, (file) =>
          writeStreamAtomic(
            host.host,
            `${NODE_SCRATCH_DIR}/${posix.basename(file.path)}`,
            data.bundle.open(file.path),
            file.sha256,
            { sudo: host.sudo, signal: step.signal, mode: 0o600, dirMode: 0o700 },
          ),
        );
        await run(step, `DEBIAN_FRONTEND=noninteractive dpkg -i ${quoted}`, 600_000);
      } finally {
        await run(step, `rm -f -- ${quoted}`);
      }
      const record = recordOf(data, host, state);
      const installed = new Map(record.packages.map((entry) => [entry.name, entry]));
      for (const file of debs) {
        if (file.package)
          installed.set(file.package.name, { name: file.package.name, version: file.package.version });
      }
      record.packages = [...installed.values()];
    });
  },
};

// ---------------------------------------------------------------------------------------------
// containerd: config for the installed version, enabled, running, answering

/** `1.6.20~ds1-1+b1` (a Debian package version) → `1.6.20`. */
function upstreamVersion(packageVersion: string): string {
  return /^(?:\d+:)?(\d+\.\d+\.\d+)/.exec(packageVersion)?.[1] ?? packageVersion;
}

const containerdPhase: HostPhase<PrepareRun, ClusterHost> = {
  id: "containerd",
  title: "Configure and start containerd",
  help: "Writes config.toml for the installed containerd (version 2 for 1.6/1.7, 3 for 2.x) with the CRI plugin, systemd cgroups, the pause image and the real CNI plugin directory; enables and starts it and waits until it answers on its socket.",
  hosts: (run) => run.hosts,
  run: async (step) => {
    const { data, host } = step;
    const facts = factsOf(data, host.name);
    const state = await stateOf(step);
    // In a dry run on a bare host containerd is not installed yet: plan for the bundle's version.
    const bundled = debFor(data.bundle, distro(data, host), "containerd")?.package?.version;
    const version = state.containerdVersion ?? (bundled ? upstreamVersion(bundled) : undefined);
    if (!version || containerdConfigVersion(version) === undefined) {
      throw new Error(
        version
          ? `containerd ${version} is not supported: upgrade it to 1.6 or later, or remove it (prepare then installs the bundle's)`
          : "containerd is not installed and the bundle has no containerd package for this host",
      );
    }
    const config = renderContainerdConfig({
      version,
      sandboxImage: pauseImage(data.cluster),
      systemdCgroup: facts.init === "systemd",
      cniBinDirs: cniBinDirs(data, host),
      cniConfDir: CNI_CONFIG_DIR,
      restrictOomScoreAdj: facts.container !== undefined,
    });
    const configChanged = state.fileHashes.get(CONTAINERD_CONFIG) !== sha256Text(config);
    if (configChanged)
      await change(
        step,
        `write ${CONTAINERD_CONFIG} (config version ${containerdConfigVersion(version)} for containerd ${version})`,
        () => writeText(step, CONTAINERD_CONFIG, config),
      );
    if (state.units.containerd.enabled !== "enabled")
      await change(step, "enable containerd", () => run(step, "systemctl enable containerd"));
    if (state.units.containerd.active !== "active")
      await change(step, "start containerd", () => run(step, "systemctl start containerd"));
    else if (configChanged || runsOlderConfig(state))
      await change(step, "restart containerd (its config changed)", () =>
        run(step, "systemctl restart containerd"),
      );
    if (!step.dryRun) await waitForContainerd(step);
  },
};

/**
 * containerd started before its config was last written: a run that wrote the config and was
 * killed before the restart. Whole seconds, so a write and restart in the same second count as applied.
 */
function runsOlderConfig(state: NodeState): boolean {
  const { containerdSince, containerdConfigMtime } = state;
  return (
    containerdSince !== undefined &&
    containerdConfigMtime !== undefined &&
    containerdConfigMtime > containerdSince
  );
}

async function waitForContainerd(step: Step): Promise<void> {
  const started = Date.now();
  while (Date.now() - started < CONTAINERD_ANSWER_TIMEOUT_MS) {
    if ((await probe(step)).criAnswers) return;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  const journal = await step.host.host.exec("journalctl -u containerd -n 20 --no-pager", {
    sudo: step.host.sudo,
    signal: step.signal,
    allowFailure: true,
    timeoutMs: 10_000,
  });
  throw new Error(
    `containerd does not answer on ${CONTAINERD_SOCKET} after ${CONTAINERD_ANSWER_TIMEOUT_MS / 1000} s; its journal ends:\n${journal.stdout.trimEnd()}`,
  );
}

// ---------------------------------------------------------------------------------------------
// binaries: kubelet, kubectl (crictl) and CNI plugins from the bundle; the kubelet's unit

/** Bundle files that go to the node as they are, and where. */
function binaryPlacements(run: PrepareRun, host: ClusterHost): Array<{ file: BundleFile; target: string }> {
  const platformName = platform(run, host);
  return run.bundle.manifest.files.flatMap((file) => {
    if (file.platform !== platformName) return [];
    if (file.kind === "binary") return [{ file, target: `${BIN_DIR}/${posix.basename(file.path)}` }];
    if (file.kind === "cni") return [{ file, target: `${CNI_BIN_DIR}/${posix.basename(file.path)}` }];
    return [];
  });
}

const binariesPhase: HostPhase<PrepareRun, ClusterHost> = {
  id: "binaries",
  title: "Install the Kubernetes binaries and CNI plugins",
  help: `kubelet, kubectl (and crictl when the bundle has it) to ${BIN_DIR}; the bundle's CNI plugins to ${CNI_BIN_DIR}. Files whose size and mtime match the install record are not hashed again unless --verify.`,
  hosts: (run) => run.hosts,
  run: async (step) => {
    const { data, host } = step;
    const placements = binaryPlacements(data, host);
    const state = await stateOf(step);
    const record = recordOf(data, host, state);
    const wanted: WantedFile[] = placements.map(({ file, target }) => ({
      path: target,
      sha256: file.sha256,
      mode: 0o755,
    }));
    const statuses = await checkFiles(host.host, wanted, record, {
      verify: data.verify,
      sudo: host.sudo,
      signal: step.signal,
    });
    const todo = placements.flatMap(({ file, target }) => {
      const status = statuses.get(target);
      if (status?.status !== "same")
        return [{ file, target, why: status?.status === "differs" ? "replace" : "install" }];
      remember(record, { path: target, sha256: file.sha256, size: status.size, mtime: status.mtime });
      return [];
    });
    // Several files at once: small CNI plugins are bound by round trips, not by bandwidth.
    await eachAtMost(UPLOADS_PER_HOST, todo, ({ file, target, why }) =>
      change(step, `${why} ${target} (${size(file.size)}, sha256 ${file.sha256.slice(0, 12)}…)`, async () => {
        await writeStreamAtomic(host.host, target, data.bundle.open(file.path), file.sha256, {
          sudo: host.sudo,
          signal: step.signal,
          mode: 0o755,
          timeoutMs: 600_000,
        });
        const stat = await statForRecord(host.host, target, { sudo: host.sudo, signal: step.signal });
        remember(record, { path: target, sha256: file.sha256, ...stat });
      }),
    );
  },
};

const kubeletUnitPhase: HostPhase<PrepareRun, ClusterHost> = {
  id: "kubelet-unit",
  title: "Install the kubelet's systemd unit, enabled and not started",
  help: `${KUBELET_UNIT} and kubeadm's drop-in ${KUBELET_DROP_IN}, as the Kubernetes packages ship them; init and join start the kubelet.`,
  hosts: (run) => run.hosts,
  run: async (step) => {
    const units = [
      { path: KUBELET_UNIT, content: KUBELET_SERVICE },
      { path: KUBELET_DROP_IN, content: KUBEADM_DROP_IN },
    ];
    const state = await stateOf(step);
    const stale = units.filter((unit) => state.fileHashes.get(unit.path) !== sha256Text(unit.content));
    for (const unit of stale)
      await change(step, `write ${unit.path}`, () => writeText(step, unit.path, unit.content));
    // Also when an earlier run wrote the files and was killed before the reload.
    if (stale.length > 0 || state.kubeletNeedsReload)
      await change(step, "reload systemd's units", () => run(step, "systemctl daemon-reload"));
    if (state.units.kubelet.enabled !== "enabled")
      await change(step, "enable kubelet (init or join starts it)", () =>
        run(step, "systemctl enable kubelet"),
      );
  },
};

// ---------------------------------------------------------------------------------------------
// images: those a host's role needs, imported into containerd's k8s.io namespace

const imagesPhase: HostPhase<PrepareRun, ClusterHost> = {
  id: "images",
  title: "Import the images this host's role needs",
  help: `Imports, with ctr -n ${K8S_NAMESPACE} images import, the bundle's archives holding images the host does not have; control planes get the control-plane images, workers only kube-proxy, pause and CoreDNS.`,
  hosts: (run) => run.hosts,
  run: async (step) => {
    const { data, host } = step;
    const wanted = imagesForRole(data.cluster, host.spec.role).map(normalizeImageRef);
    const state = await stateOf(step);
    if (!state.criAnswers && !step.dryRun) {
      throw new Error(
        `containerd does not answer on ${CONTAINERD_SOCKET}: run the containerd phase first (kubeforge prepare phase containerd), or prepare as a whole`,
      );
    }
    const missing = new Set(wanted.filter((ref) => !state.images.has(ref)));
    if (missing.size === 0) return;
    const archives = data.bundle.manifest.files.filter(
      (file) =>
        file.kind === "image" && (file.images ?? []).some((ref) => missing.has(normalizeImageRef(ref))),
    );
    for (const archive of archives) {
      const refs = (archive.images ?? []).filter((ref) => missing.has(normalizeImageRef(ref)));
      // Streamed from the bundle into ctr: containerd checks every blob against its digest, and an
      // import cut short leaves no image behind, so no temp copy is needed.
      await change(step, `import ${refs.join(", ")} (${size(archive.size)})`, async () => {
        const stdin = data.bundle.open(archive.path);
        try {
          await host.host.exec(`ctr --address ${CONTAINERD_SOCKET} -n ${K8S_NAMESPACE} images import -`, {
            sudo: host.sudo,
            signal: step.signal,
            timeoutMs: 600_000,
            stdin,
          });
        } finally {
          stdin.destroy(); // the import may have failed before reading it all
        }
      });
    }
    if (step.dryRun) return;
    const after = await probe(step);
    const still = wanted.filter((ref) => !after.images.has(ref));
    if (still.length > 0)
      throw new Error(
        `after the import, containerd still lacks ${still.join(", ")}: the bundle's archives name these images differently; check them with kubeforge bundle inspect`,
      );
  },
};

// ---------------------------------------------------------------------------------------------
// record: what this run installed, for the next run

const recordPhase: HostPhase<PrepareRun, ClusterHost> = {
  id: "record",
  title: "Write the install record",
  help: `${INSTALL_RECORD}: each installed file's checksum, size and mtime, and the packages kubeforge installed; the next run stats instead of hashing, and reset --purge knows what to remove.`,
  hosts: (run) => run.hosts,
  run: async (step) => {
    const { data, host } = step;
    const state = await stateOf(step);
    const record = {
      ...recordOf(data, host, state),
      kubernetesVersion: data.cluster.spec.kubernetes.version,
    };
    const text = serializeInstallRecord(record);
    if (text !== state.installRecord)
      await change(step, `write ${INSTALL_RECORD}`, () => writeText(step, INSTALL_RECORD, text, 0o600));
  },
};

/** What prepare changes, after connect, facts, the bundle check and the host checks. */
export const preparePhases: readonly Phase<PrepareRun, ClusterHost>[] = [
  osPhase,
  packagesPhase,
  containerdPhase,
  binariesPhase,
  kubeletUnitPhase,
  imagesPhase,
  recordPhase,
];
