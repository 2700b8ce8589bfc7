// kubeadm reset's cleanup-node, on every selected host in parallel: find what is left (one read-only
// probe), then undo it step by step. Each step is best effort: a failed step does not stop the
// ones after it, and the host fails at the end with every failed step listed.
import type { ClusterHost } from "../hosts/open.js";
import { InterruptedError, messageOf } from "../workflow/errors.js";
import type { HostPhase } from "../workflow/phase.js";
import type { ClusterRun } from "./cluster-run.js";
import {
  leftoversScript,
  type NodeLeftovers,
  packagedFilesKept,
  packagedScript,
  parseLeftovers,
  planReset,
  type ResetOptions,
  unprobedRecordedFiles,
  withPackaged,
} from "./reset-plan.js";

export interface ResetRun extends ClusterRun {
  /** --purge: also what kubeforge installed (binaries, unit, its packages). */
  purge: boolean;
  /** Per host name, the probe's answer: read once, by the facts phase or the first phase needing it. */
  leftovers: Map<string, Promise<NodeLeftovers>>;
}

const PROBE_TIMEOUT_MS = 60_000;
const STEP_TIMEOUT_MS = 180_000;

function resetOptions(run: ResetRun): ResetOptions {
  return { purge: run.purge, etcdDataDir: run.cluster.spec.kubernetes.etcd.local.dataDir };
}

/** The probe's answer for `host`, read at most once per run, so `phase cleanup-node` works on its own. */
function leftoversOf(run: ResetRun, host: ClusterHost, signal: AbortSignal): Promise<NodeLeftovers> {
  let found = run.leftovers.get(host.name);
  if (!found) {
    found = probeLeftovers(run, host, signal);
    run.leftovers.set(host.name, found);
  }
  return found;
}

async function probeLeftovers(run: ResetRun, host: ClusterHost, signal: AbortSignal): Promise<NodeLeftovers> {
  const options = { sudo: host.sudo, timeoutMs: PROBE_TIMEOUT_MS, signal };
  const found = parseLeftovers((await host.host.exec(leftoversScript(resetOptions(run)), options)).stdout);
  // --purge must not remove a recorded file a package owns; the probe only learnt the list.
  const unprobed = run.purge ? unprobedRecordedFiles(found) : [];
  if (unprobed.length === 0) return found;
  return withPackaged(found, (await host.host.exec(packagedScript(unprobed), options)).stdout);
}

export const resetFactsPhase: HostPhase<ResetRun, ClusterHost> = {
  id: "facts",
  prerequisite: true,
  title: "Find what Kubernetes left on the hosts",
  help: "Read, in one command per host, the kubelet's state, static pod manifests, containers in containerd's k8s.io namespace, mounts under /var/lib/kubelet, the paths reset removes, KUBE-* iptables chains and kubeforge's install record; changes nothing.",
  hosts: (run) => run.hosts,
  run: async ({ host, data, signal, log }) => {
    const found = await leftoversOf(data, host, signal);
    const changes = planReset(found, resetOptions(data)).length;
    log(changes === 0 ? "clean: nothing to reset" : `${changes} step(s) to reset`);
  },
};

export const cleanupNodePhase: HostPhase<ResetRun, ClusterHost> = {
  id: "cleanup-node",
  title: "Clean up the nodes",
  help:
    "In order, each only when the probe found something to do: stop the kubelet; remove the static pod manifests; " +
    "remove CRI pod sandboxes (when crictl exists) and stop and remove every container in containerd's k8s.io namespace; " +
    "unmount everything under /var/lib/kubelet, deepest first; remove /etc/kubernetes, /var/lib/kubelet, the etcd data " +
    "directory and kubeforge's CNI config (never crossing into another filesystem, and refusing while anything is still mounted below); remove the KUBE-* iptables and " +
    "ip6tables chains and the rules jumping to them. With --purge, also the kubelet unit, kubelet, kubectl, the files " +
    "and packages kubeforge's install record lists (except files an installed package owns), and the record. Other CNI configs, chains, namespaces and packages stay.",
  hosts: (run) => run.hosts,
  run: async ({ host, data, signal, change, log }) => {
    const found = await leftoversOf(data, host, signal);
    const kept = data.purge ? packagedFilesKept(found) : [];
    if (kept.length > 0) log(`--purge keeps what an installed package owns: ${kept.join(", ")}`);
    const planned = planReset(found, resetOptions(data));
    const failures: string[] = [];
    for (const step of planned) {
      try {
        await change(step.description, () =>
          host.host.exec(step.command, {
            sudo: host.sudo,
            timeoutMs: STEP_TIMEOUT_MS,
            signal,
            ...(step.stdin !== undefined && { stdin: step.stdin }),
          }),
        );
      } catch (error) {
        if (signal.aborted || error instanceof InterruptedError) throw error;
        failures.push(`${step.description}: ${messageOf(error)}`);
      }
    }
    if (failures.length > 0) {
      throw new Error(
        `${failures.length} of ${planned.length} reset steps failed:\n${failures.map((f) => `  - ${f}`).join("\n")}`,
      );
    }
  },
};
