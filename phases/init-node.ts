// The node side of `kubeforge init` on the first control plane, in kubeadm's order: certificates and
// kubeconfigs from the local store, the control-plane endpoint name, the static pods, the kubelet
// started, and the wait until the kubelet and the API server answer. Every file goes through
// node/sync-files.ts, so a re-run writes nothing and a crashed run resumes where it stopped.
import { readdir, readFile } from "node:fs/promises";
import { join, posix, relative } from "node:path";
import { currentCredentials, serializeKubeconfig } from "../certs/kubeconfigs.js";
import { ensurePki, missingFiles, parseKubeconfig, pkiInputs } from "../certs/pki.js";
import { nodeIp } from "../certs/specs.js";
import { parseIp } from "../config/net.js";
import type { ClusterFile } from "../config/schema.js";
import type { ClusterHost } from "../hosts/open.js";
import { nodeFiles } from "../node/files.js";
import { KUBELET_DIR, KUBERNETES_DIR, MANIFESTS_DIR } from "../node/paths.js";
import { presentFiles, syncNodeFiles, type WantedNodeFile } from "../node/sync-files.js";
import { KUBEADM_FLAGS_FILE, KUBELET_CONFIG_FILE } from "../templates/kubelet-config.js";
import { STATIC_POD_COMPONENTS, type StaticPodComponent } from "../templates/static-pods.js";
import { PkiError, type PkiProblem } from "../workflow/errors.js";
import type { HostPhase, HostStep, LocalPhase, Phase } from "../workflow/phase.js";
import { seconds, waitFor } from "../workflow/wait.js";
import { type ClusterRun, factsOf } from "./cluster-run.js";

export interface NodeSetupRun extends ClusterRun {
  /** The cluster's directory in the local store (certs/store.ts layout). */
  clusterDir: string;
  /** How long the waits poll (kubeadm: kubeletHealthCheck and controlPlaneComponentHealthCheck, 4m each). */
  timeouts: { kubeletHealthMs: number; controlPlaneMs: number };
}

type Step = HostStep<NodeSetupRun, ClusterHost>;

export const PKI_DIR = `${KUBERNETES_DIR}/pki`;
export const KUBELET_CONF = `${KUBERNETES_DIR}/kubelet.conf`;
/** Where the kubelet keeps its rotated client certificate and key (kubelet-finalize points kubelet.conf here). */
export const KUBELET_CLIENT_CURRENT = `${KUBELET_DIR}/pki/kubelet-client-current.pem`;
const KUBELET_HEALTHZ_PORT = 10248;
const POLL_MS = 1_000;

/** The control plane init runs on; the commands refuse more than one before any phase runs. */
export function firstControlPlane(run: { hosts: readonly ClusterHost[] }): ClusterHost {
  const host = run.hosts.find((entry) => entry.spec.role === "control-plane");
  if (!host) throw new Error("the cluster file has no control-plane host");
  return host;
}

const onFirstControlPlane = (run: NodeSetupRun) => [firstControlPlane(run)];

// ---------------------------------------------------------------------------------------------
// ca-check: the hosts' CA is the store's, or the run stops before touching anything

/**
 * Refuses to go on when a host already holds a cluster CA other than the local store's (another
 * workstation's store, a lost store): init would otherwise hand the node certificates it rejects.
 * Every host is read; all mismatches are reported together, before any change (exit 2).
 */
export const caCheckPhase: LocalPhase<NodeSetupRun, ClusterHost> = {
  id: "ca-check",
  prerequisite: true,
  title: "Check that the hosts' cluster CA is the local store's",
  help: `Compares ${PKI_DIR}/ca.crt on every host that has one with the store's pki/ca.crt; a mismatch stops the run before any change.`,
  run: async ({ data, signal }) => {
    const local = (await readFile(join(data.clusterDir, "pki/ca.crt"), "utf8").catch(() => ""))?.trim();
    const remote = await Promise.all(
      data.hosts.map(async (host) => {
        const out = await host.host.exec(`cat ${PKI_DIR}/ca.crt 2>/dev/null || true`, {
          sudo: host.sudo,
          signal,
        });
        return { host, ca: out.stdout.trim() };
      }),
    );
    const problems: PkiProblem[] = [];
    for (const { host, ca } of remote) {
      if (!ca) continue;
      if (ca === local) {
        data.members.add(host.name);
        continue;
      }
      problems.push({
        subject: `${host.name}:${PKI_DIR}/ca.crt`,
        problem: local
          ? "the host trusts another cluster CA than the local store's pki/ca.crt"
          : "the host already has a cluster CA, and the local store has none",
        fix: `run kubeforge from the workstation (or --state-dir) that holds this cluster's store, or wipe the host with \`kubeforge reset -f ${data.file} --hosts ${host.name}\``,
      });
    }
    if (problems.length > 0) throw new PkiError(data.clusterDir, problems);
  },
};

// ---------------------------------------------------------------------------------------------
// certs and kubeconfig: from the local store to /etc/kubernetes

/** The store's files under `dir`; dotfiles are the store's own temp files (a killed write leaves one). */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries
    .filter((entry) => entry.isFile() && !entry.name.startsWith("."))
    .map((entry) => join(entry.parentPath, entry.name));
}

/** kubeadm's modes: certificates 0644; private keys, and sa.pub beside sa.key, 0600 (§1.7). */
function pkiMode(path: string): number {
  return path.endsWith(".crt") ? 0o644 : 0o600;
}

/** The cluster's CAs and service-account key pair, and this node's own leaves, as kubeadm lays them out. */
export async function controlPlanePki(clusterDir: string, node: string): Promise<WantedNodeFile[]> {
  const roots = [join(clusterDir, "pki"), join(clusterDir, "nodes", node, "pki")];
  const files = await Promise.all(
    roots.map(async (root) =>
      Promise.all(
        (await filesUnder(root)).map(async (file) => {
          const path = posix.join(PKI_DIR, relative(root, file).split("\\").join("/"));
          return { path, mode: pkiMode(path), content: await readFile(file) };
        }),
      ),
    ),
  );
  return files.flat();
}

export const storePhase: LocalPhase<NodeSetupRun, ClusterHost> = {
  id: "store",
  title: "Generate what the local store lacks",
  help: "CAs, the service-account key pair, every control plane's certificates and every kubeconfig, in the local store (kubeforge certs generate); valid material is kept.",
  run: async (step) => {
    const { cluster, clusterDir, file } = step.data;
    const missing = await missingFiles(cluster, clusterDir);
    if (missing.length === 0) {
      // Still checked against the file: a certificate that no longer matches stops the run.
      await ensurePki(cluster, clusterDir, { clusterFile: file });
      return;
    }
    await step.change(`generate ${missing.length} files in the local store ${clusterDir}`, async () => {
      const result = await ensurePki(cluster, clusterDir, { clusterFile: file });
      step.log(`generated ${result.created.join(", ")}`);
    });
  },
};

const certsUploadPhase: HostPhase<NodeSetupRun, ClusterHost> = {
  id: "upload",
  title: `Install the certificates and keys in ${PKI_DIR}`,
  hosts: onFirstControlPlane,
  run: async (step) => {
    await syncNodeFiles(step, await controlPlanePki(step.data.clusterDir, step.host.name));
  },
};

const certsPhase: LocalPhase<NodeSetupRun, ClusterHost> = {
  id: "certs",
  title: "Certificates: from the local store to the control plane",
  phases: [storePhase, certsUploadPhase],
};

/**
 * admin.conf (and super-admin.conf ≥1.29) plus this node's controller-manager, scheduler and kubelet
 * kubeconfigs, 0600. An existing kubelet.conf with the same CA and server is kept, as kubeadm does:
 * after kubelet-finalize it points at the kubelet's rotated certificate, which the store cannot know.
 */
async function controlPlaneKubeconfigs(clusterDir: string, node: string): Promise<WantedNodeFile[]> {
  const dirs = [join(clusterDir, "kubeconfigs"), join(clusterDir, "nodes", node)];
  const files = await Promise.all(
    dirs.map(async (dir) =>
      Promise.all(
        (await readdir(dir).catch(() => []))
          .filter((name) => name.endsWith(".conf") && !name.startsWith("."))
          .map(async (name) => ({
            path: `${KUBERNETES_DIR}/${name}`,
            mode: 0o600,
            content: await readFile(join(dir, name), "utf8"),
          })),
      ),
    ),
  );
  return files.flat();
}

function sameClusterAs(live: string, wanted: string): boolean {
  try {
    const [a, b] = [live, wanted].map((text) => currentCredentials(parseKubeconfig(text)));
    return a !== undefined && b !== undefined && a.caPem === b.caPem && a.server === b.server;
  } catch {
    return false;
  }
}

const kubeconfigPhase: HostPhase<NodeSetupRun, ClusterHost> = {
  id: "kubeconfig",
  title: `Install the kubeconfig files in ${KUBERNETES_DIR}`,
  help: "admin.conf, super-admin.conf (v1.29+), controller-manager.conf, scheduler.conf and kubelet.conf from the local store, 0600.",
  hosts: onFirstControlPlane,
  run: async (step) => {
    const wanted = await controlPlaneKubeconfigs(step.data.clusterDir, step.host.name);
    const live = (await presentFiles(step.host, [KUBELET_CONF], step.signal)).has(KUBELET_CONF)
      ? (
          await step.host.host.readFile(KUBELET_CONF, { sudo: step.host.sudo, signal: step.signal })
        ).toString()
      : undefined;
    const keep = (file: WantedNodeFile) =>
      file.path === KUBELET_CONF && live !== undefined && sameClusterAs(live, file.content.toString());
    await syncNodeFiles(
      step,
      wanted.map((file) => (keep(file) && live !== undefined ? { ...file, content: live } : file)),
    );
  },
};

// ---------------------------------------------------------------------------------------------
// etc-hosts: the default control-plane endpoint name resolves on every node

const HOSTS_FILE = "/etc/hosts";
const HOSTS_MARKER = "# kubeforge: control-plane endpoint";

/** The endpoint name kubeforge maps in /etc/hosts, when the cluster file leaves controlPlaneEndpoint unset. */
export function endpointHostsEntry(cluster: ClusterFile): { name: string; ip: string } | undefined {
  if (cluster.spec.kubernetes.controlPlaneEndpoint !== undefined) return undefined;
  const { host } = pkiInputs(cluster).endpoint;
  const controlPlane = cluster.spec.hosts.find((entry) => entry.role === "control-plane");
  const ip = controlPlane && nodeIp(controlPlane);
  return ip && !parseIp(host) ? { name: host, ip } : undefined;
}

/** /etc/hosts with exactly one kubeforge line for the endpoint, the rest untouched. */
export function withEndpointEntry(hosts: string, entry: { name: string; ip: string }): string {
  const kept = hosts.split("\n").filter((line) => !line.endsWith(HOSTS_MARKER));
  while (kept.length > 0 && kept.at(-1) === "") kept.pop();
  return `${[...kept, `${entry.ip} ${entry.name} ${HOSTS_MARKER}`].join("\n")}\n`;
}

export const etcHostsPhase: HostPhase<NodeSetupRun, ClusterHost> = {
  id: "etc-hosts",
  title: "Map the control-plane endpoint name in /etc/hosts",
  help: "Without controlPlaneEndpoint, every node resolves <cluster>-api to the control plane in /etc/hosts, so certificates and kubeconfigs name a stable endpoint and HA can be added later without re-signing.",
  runIf: (run) => endpointHostsEntry(run.cluster) !== undefined,
  hosts: (run) => run.hosts,
  run: async (step) => {
    const entry = endpointHostsEntry(step.data.cluster);
    if (!entry) return;
    const { host, signal } = step;
    const current = (await host.host.readFile(HOSTS_FILE, { sudo: host.sudo, signal })).toString();
    const wanted = withEndpointEntry(current, entry);
    if (wanted !== current) {
      await step.change(`map ${entry.name} to ${entry.ip} in ${HOSTS_FILE}`, () =>
        host.host.writeFile(HOSTS_FILE, wanted, { sudo: host.sudo, signal, mode: 0o644 }),
      );
    }
  },
};

// ---------------------------------------------------------------------------------------------
// etcd, control-plane, kubelet-start: the files of node/files.ts

/** The node's files as kubeadm writes them, from its facts and whether systemd-resolved runs there. */
export function nodeFilesOf<D extends NodeSetupRun>(step: HostStep<D, ClusterHost>): WantedNodeFile[] {
  const host = step.host.spec;
  const facts = factsOf(step.data, host.name);
  return nodeFiles(step.data.cluster, host, {
    hostname: facts.hostname,
    container: facts.container,
    cgroupVersion: facts.cgroupVersion,
    systemdResolvedActive: facts.systemdResolved,
  }).map((file) => ({
    ...file,
    ...(file.path.startsWith(`${MANIFESTS_DIR}/`) && { dirMode: 0o700 }),
  }));
}

function staticPodPhase(id: string, component: StaticPodComponent): HostPhase<NodeSetupRun, ClusterHost> {
  const path = `${MANIFESTS_DIR}/${component}.yaml`;
  return {
    id,
    title: `Write the ${component} static pod manifest`,
    help: `${path}, 0600, as kubeadm of the cluster's version writes it; the kubelet starts it.`,
    hosts: onFirstControlPlane,
    run: async (step) => {
      const files = nodeFilesOf(step);
      await syncNodeFiles(
        step,
        files.filter((file) => file.path === path),
      );
    },
  };
}

const [etcdComponent, ...controlPlaneComponents] = STATIC_POD_COMPONENTS;
const CONTROL_PLANE_IDS: Record<string, string> = {
  "kube-apiserver": "apiserver",
  "kube-controller-manager": "controller-manager",
  "kube-scheduler": "scheduler",
};

const etcdPhase: LocalPhase<NodeSetupRun, ClusterHost> = {
  id: "etcd",
  title: "Stacked etcd",
  phases: [staticPodPhase("local", etcdComponent)],
};

const controlPlanePhase: LocalPhase<NodeSetupRun, ClusterHost> = {
  id: "control-plane",
  title: "The control-plane static pods",
  phases: controlPlaneComponents.map((component) =>
    staticPodPhase(CONTROL_PLANE_IDS[component] ?? component, component),
  ),
};

/**
 * Starts the kubelet when systemd does not run it, restarts it when its files just changed. A kubelet
 * systemd is restarting after a crash (`activating`) is left to systemd: starting it is no fix.
 */
export async function startKubelet(step: Step, changed: readonly string[]): Promise<void> {
  const { host, signal } = step;
  const state = await host.host.exec("systemctl is-active kubelet", {
    sudo: host.sudo,
    signal,
    allowFailure: true,
  });
  const running = ["active", "activating"].includes(state.stdout.trim());
  if (!running) {
    await step.change("start the kubelet", () =>
      host.host.exec("systemctl enable kubelet && systemctl restart kubelet", { sudo: host.sudo, signal }),
    );
  } else if (changed.length > 0) {
    await step.change(`restart the kubelet (${changed.join(", ")} changed)`, () =>
      host.host.exec("systemctl restart kubelet", { sudo: host.sudo, signal }),
    );
  }
}

export const KUBELET_FILES = [KUBELET_CONFIG_FILE, KUBEADM_FLAGS_FILE];

const kubeletStartPhase: HostPhase<NodeSetupRun, ClusterHost> = {
  id: "kubelet-start",
  title: "Write the kubelet's settings and start it",
  help: `${KUBELET_CONFIG_FILE} and ${KUBEADM_FLAGS_FILE} as kubeadm writes them, then the kubelet (re)started through systemd.`,
  hosts: onFirstControlPlane,
  run: async (step) => {
    const files = nodeFilesOf(step);
    const changed = await syncNodeFiles(
      step,
      files.filter((file) => KUBELET_FILES.includes(file.path)),
    );
    await startKubelet(step, changed);
  },
};

// ---------------------------------------------------------------------------------------------
// wait-control-plane: poll, and on timeout say why

/** bash's /dev/tcp: the kubelet's healthz without curl, which minimal hosts lack. */
const KUBELET_HEALTHZ = `bash -c 'exec 3<>/dev/tcp/127.0.0.1/${KUBELET_HEALTHZ_PORT} && printf "GET /healthz HTTP/1.0\\r\\n\\r\\n" >&3 && cat <&3' 2>/dev/null | tail -n 1`;

/** Static pod container logs, newest last, as the kubelet keeps them (/var/log/pods/<ns>_<pod>_<uid>/<container>/N.log). */
function podLogTail(component: string): string {
  return `for f in $(ls -1tr /var/log/pods/kube-system_${component}-*/${component}/*.log 2>/dev/null | tail -n 1); do echo "--- $f"; tail -n 15 "$f"; done`;
}

async function diagnose(step: Step, components: readonly string[]): Promise<string> {
  const script = [
    "echo '--- journalctl -u kubelet (last 25 lines)'",
    "journalctl -u kubelet -n 25 --no-pager 2>&1",
    ...components.map(podLogTail),
  ].join("; ");
  const out = await step.host.host.exec(script, {
    sudo: step.host.sudo,
    signal: step.signal,
    allowFailure: true,
    timeoutMs: 20_000,
  });
  return out.stdout.trimEnd();
}

/** Polls `probe` every second until it holds; on timeout throws with what was polled and the node's logs. */
export async function waitOnNode(
  step: Step,
  what: string,
  timeoutMs: number,
  probe: () => Promise<boolean>,
  logsOf: readonly string[],
): Promise<void> {
  const started = performance.now();
  const result = await waitFor(
    {
      what,
      timing: { timeoutMs, intervalMs: POLL_MS },
      signal: step.signal,
      log: step.log,
      describe: () => "not yet",
    },
    async () =>
      (await probe()) ? { done: true as const, value: true } : { done: false as const, pending: "not yet" },
  );
  const elapsed = seconds(performance.now() - started);
  if (result.done) {
    step.log(`${what}: ready after ${elapsed}`);
    return;
  }
  throw new Error(
    `${what}: not ready after ${elapsed} (timeout ${seconds(timeoutMs)})\n${await diagnose(step, logsOf)}`,
  );
}

export function kubeletHealthy(step: Step): Promise<boolean> {
  return step.host.host
    .exec(KUBELET_HEALTHZ, {
      sudo: step.host.sudo,
      signal: step.signal,
      allowFailure: true,
      timeoutMs: 10_000,
    })
    .then((out) => out.stdout.trim() === "ok");
}

/** The API server's /livez through the node's own kubectl and admin.conf: the endpoint name, TLS and the CA in one. */
function apiServerLive(step: Step): Promise<boolean> {
  return step.host.host
    .exec(`kubectl --kubeconfig ${KUBERNETES_DIR}/admin.conf --request-timeout=5s get --raw=/livez`, {
      sudo: step.host.sudo,
      signal: step.signal,
      allowFailure: true,
      timeoutMs: 15_000,
    })
    .then((out) => out.exitCode === 0 && out.stdout.trim() === "ok");
}

const waitControlPlanePhase: HostPhase<NodeSetupRun, ClusterHost> = {
  id: "wait-control-plane",
  title: "Wait for the kubelet and the API server",
  help: `Polls the kubelet's http://127.0.0.1:${KUBELET_HEALTHZ_PORT}/healthz, then the API server's /livez through the control-plane endpoint; on timeout the error holds the kubelet's journal and the static pods' logs.`,
  hosts: onFirstControlPlane,
  run: async (step) => {
    if (step.dryRun) return;
    const { kubeletHealthMs, controlPlaneMs } = step.data.timeouts;
    await waitOnNode(step, "the kubelet's healthz", kubeletHealthMs, () => kubeletHealthy(step), []);
    await waitOnNode(step, "the API server's /livez", controlPlaneMs, () => apiServerLive(step), [
      "kube-apiserver",
      "etcd",
    ]);
  },
};

// ---------------------------------------------------------------------------------------------
// kubelet-finalize: kubelet.conf follows the kubelet's rotated client certificate

/** kubelet.conf with its embedded client credentials replaced by the kubelet's rotating file (kubeadm EnableClientCertRotation). */
export function rotatingKubeletConf(text: string): string {
  const config = parseKubeconfig(text);
  const context = config.contexts.find((entry) => entry.name === config["current-context"])?.context;
  return serializeKubeconfig({
    ...config,
    users: config.users.map((entry) =>
      entry.name === context?.user
        ? {
            name: entry.name,
            user: { "client-certificate": KUBELET_CLIENT_CURRENT, "client-key": KUBELET_CLIENT_CURRENT },
          }
        : entry,
    ),
  });
}

export const kubeletFinalizePhase: HostPhase<NodeSetupRun, ClusterHost> = {
  id: "kubelet-finalize",
  title: "Point kubelet.conf at the kubelet's rotating client certificate",
  help: `Once the kubelet has written ${KUBELET_CLIENT_CURRENT}, kubelet.conf references it instead of the embedded certificate, so certificate rotation keeps the node's identity fresh.`,
  hosts: onFirstControlPlane,
  run: async (step) => {
    const { host, signal } = step;
    const present = await presentFiles(host, [KUBELET_CLIENT_CURRENT, KUBELET_CONF], signal);
    if (!present.has(KUBELET_CLIENT_CURRENT) || !present.has(KUBELET_CONF)) {
      step.warn(`${KUBELET_CLIENT_CURRENT} does not exist yet: kubelet.conf keeps its embedded certificate`);
      return;
    }
    const live = (await host.host.readFile(KUBELET_CONF, { sudo: host.sudo, signal })).toString();
    const wanted = rotatingKubeletConf(live);
    if (wanted === live) return;
    await step.change(`point ${KUBELET_CONF} at ${KUBELET_CLIENT_CURRENT}`, () =>
      host.host.writeFile(KUBELET_CONF, wanted, { sudo: host.sudo, signal, mode: 0o600 }),
    );
    await step.change("restart the kubelet (kubelet.conf changed)", () =>
      host.host.exec(`systemctl restart kubelet`, { sudo: host.sudo, signal }),
    );
  },
};

/** init's node phases before the API is up, in kubeadm's order (etc-hosts is kubeforge's). */
export const initNodePhases: readonly Phase<NodeSetupRun, ClusterHost>[] = [
  certsPhase,
  kubeconfigPhase,
  etcHostsPhase,
  etcdPhase,
  controlPlanePhase,
  kubeletStartPhase,
  waitControlPlanePhase,
];
