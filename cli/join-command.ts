// `kubeforge join`: workers into the cluster, as `kubeadm join` does it, all at once from the
// workstation. The phase list below is the whole workflow. The control plane takes part too: it
// needs the routes to the new nodes' pods.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { type Command, Option } from "commander";
import { openClusterApi } from "../api/client.js";
import { ADMIN_KUBECONFIG } from "../certs/pki.js";
import { apiDialAddress } from "../certs/specs.js";
import type { ClusterHost } from "../hosts/open.js";
import { bootstrapTokenPhaseWith, markWorkersPhase } from "../phases/init-api.js";
import { etcHostsPhase } from "../phases/init-node.js";
import { joinedCheckPhase, joinKubeletStartPhase } from "../phases/join-node.js";
import { messageOf, UsageError } from "../workflow/errors.js";
import type { LocalPhase, Phase, Workflow } from "../workflow/phase.js";
import {
  type ClusterSetupRun,
  clusterOptions,
  finishPhases,
  groundworkPhases,
  hostSetupPhases,
  prepareSetupRun,
  setupSummary,
} from "./init-command.js";
import type { CliContext } from "./program.js";
import { addWorkflowCommand, parseList } from "./workflow-command.js";

/** Workers whose kubelet has no client certificate of this cluster yet. */
export const workersToBootstrap = (run: ClusterSetupRun) =>
  run.hosts.filter((host) => host.spec.role === "worker" && !run.bootstrapped.has(host.name));

/**
 * bootstrap-token when a worker needs a token: a converged cluster gets no new token (which would
 * be a change on every run once init's token expired).
 */
export const tokenForJoinPhase = bootstrapTokenPhaseWith<ClusterSetupRun>(
  (run) => workersToBootstrap(run).length > 0,
);

/**
 * join needs a cluster: the control plane's CA must be the store's (ca-check ran before), the store
 * must hold admin.conf, and the API server must answer with init's cluster-info. Otherwise (no init,
 * or one that stopped early) it stops before any change, naming the command to run first.
 */
const initialisedCheckPhase: LocalPhase<ClusterSetupRun, ClusterHost> = {
  id: "control-plane-check",
  prerequisite: true,
  title: "Check that the control plane is set up",
  run: async ({ data, signal }) => {
    const controlPlane = data.hosts.find((host) => host.spec.role === "control-plane");
    const admin = await readFile(join(data.clusterDir, ADMIN_KUBECONFIG), "utf8").catch(() => undefined);
    const why =
      !controlPlane || !data.members.has(controlPlane.name) || admin === undefined
        ? "is not set up by this workstation's store"
        : await clusterInfoMissing(data, controlPlane, admin, signal);
    if (why)
      throw new UsageError(
        `the control plane ${controlPlane?.name ?? ""} ${why} (${data.clusterDir}): run \`kubeforge init -f ${data.file}\` (or \`kubeforge apply -f ${data.file}\`, which does both) first`,
      );
  },
};

/** Why init is unfinished as the API tells it (asked once, no retries), or undefined when it is done. */
async function clusterInfoMissing(
  data: ClusterSetupRun,
  controlPlane: ClusterHost,
  admin: string,
  signal: AbortSignal,
): Promise<string | undefined> {
  const api = openClusterApi({
    kubeconfig: admin,
    dial: { host: apiDialAddress(controlPlane.spec), port: data.cluster.spec.kubernetes.apiServer.bindPort },
    retry: { timeoutMs: 0, intervalMs: 0 },
    requestTimeoutMs: 5_000,
    signal,
  });
  try {
    const info = await api.get({
      apiVersion: "v1",
      kind: "ConfigMap",
      namespace: "kube-public",
      name: "cluster-info",
    });
    return info ? undefined : "has no kube-public/cluster-info yet: init did not finish";
  } catch (error) {
    return `does not answer on its API server (${messageOf(error)})`;
  }
}

/** What joining workers takes after the hosts are prepared. */
export const joinPhases: readonly Phase<ClusterSetupRun, ClusterHost>[] = [
  etcHostsPhase,
  tokenForJoinPhase,
  joinKubeletStartPhase,
  markWorkersPhase,
];

export const joinWorkflow: Workflow<ClusterSetupRun, ClusterHost> = {
  command: "join",
  phases: [
    ...groundworkPhases,
    initialisedCheckPhase,
    joinedCheckPhase,
    ...hostSetupPhases,
    ...joinPhases,
    ...finishPhases,
  ],
};

/** The workers --hosts names (default: all), plus the control plane; unknown names are bad input. */
function joinHosts(hosts: readonly ClusterHost[], wanted: readonly string[] | undefined): ClusterHost[] {
  const workers = hosts.filter((host) => host.spec.role === "worker");
  const unknown = (wanted ?? []).filter((name) => !workers.some((host) => host.name === name));
  if (unknown.length > 0) {
    throw new UsageError(
      `--hosts ${unknown.join(",")}: not a worker of the cluster file; its workers are ${workers.map((host) => host.name).join(", ") || "none"}`,
    );
  }
  return hosts.filter(
    (host) => host.spec.role === "control-plane" || wanted === undefined || wanted.includes(host.name),
  );
}

export function addJoinCommand(program: Command, context: CliContext): void {
  addWorkflowCommand(program, context, {
    workflow: joinWorkflow,
    description: "Join the workers to the cluster, as kubeadm join, all at once",
    options: () => [
      ...clusterOptions(),
      new Option("--hosts <names>", "only these workers, comma-separated (default: every worker)").argParser(
        parseList,
      ),
    ],
    prepare: (flags, ctx) =>
      prepareSetupRun(flags, ctx, (hosts) => joinHosts(hosts, flags.hosts as string[] | undefined)),
    summary: setupSummary,
  });
}
