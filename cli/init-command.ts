// `kubeforge init`: the first control plane from a bare host to a running control plane, as
// `kubeadm init` does it, driven from the workstation. The phase list below is the whole workflow.
import { join } from "node:path";
import { type Command, Option } from "commander";
import { parseGoDuration } from "../certs/duration.js";
import type { ClusterFile } from "../config/schema.js";
import type { ClusterHost } from "../hosts/open.js";
import { connectPhase } from "../phases/connect.js";
import { factsPhase } from "../phases/facts.js";
import { caCheckPhase, initNodePhases, type NodeSetupRun } from "../phases/init-node.js";
import { nodeChecksPhase } from "../phases/node-preflight.js";
import { hostChecksPhase } from "../phases/preflight.js";
import { bundleCheckPhase, type PrepareRun, preparePhases } from "../phases/prepare.js";
import { formatChanges } from "../ui/lines.js";
import { UsageError } from "../workflow/errors.js";
import type { Workflow } from "../workflow/phase.js";
import { hostOptions, ignorePreflightErrorsOption, prepareClusterRun } from "./preflight-command.js";
import { bundleOptions, withBundle } from "./prepare-command.js";
import type { CliContext } from "./program.js";
import { addWorkflowCommand, type PreparedRun, type WorkflowFlags } from "./workflow-command.js";

export type InitRun = PrepareRun & NodeSetupRun;

export const initWorkflow: Workflow<InitRun, ClusterHost> = {
  command: "init",
  phases: [
    connectPhase,
    factsPhase,
    bundleCheckPhase,
    caCheckPhase,
    hostChecksPhase,
    ...preparePhases,
    nodeChecksPhase,
    ...initNodePhases,
  ],
};

/** kubeadm's kubeletHealthCheck and controlPlaneComponentHealthCheck. */
const DEFAULT_WAIT = "4m";

function parseTimeout(text: string): number {
  const ms = parseGoDuration(text);
  if (ms === undefined)
    throw new UsageError(`--timeout ${text}: not a duration; write it like 4m, 90s or 1m30s`);
  return ms;
}

/** One control plane until HA lands: more is valid in the file, but init, join and apply refuse it. */
export function refuseSeveralControlPlanes(cluster: ClusterFile, file: string): void {
  const controlPlanes = cluster.spec.hosts.filter((host) => host.role === "control-plane");
  if (controlPlanes.length > 1) {
    throw new UsageError(
      `${file}: spec.hosts has ${controlPlanes.length} control-plane hosts (${controlPlanes.map((host) => host.name).join(", ")}); kubeforge sets up one control plane for now (HA comes next): make the others workers or leave them out of this file`,
    );
  }
}

/** The options init, join and apply share. */
export function clusterOptions(): Option[] {
  return [
    ...hostOptions(),
    ignorePreflightErrorsOption(),
    ...bundleOptions(),
    new Option(
      "--timeout <duration>",
      "how long each wait may take (the kubelet's health, the API server, a node's registration)",
    )
      .default(parseTimeout(DEFAULT_WAIT), DEFAULT_WAIT)
      .argParser(parseTimeout),
  ];
}

/**
 * The run of init, join or apply: the cluster file, its hosts narrowed to `pick`, the bundle, and
 * where the local store keeps this cluster. Bad input throws before any host is touched.
 */
export async function prepareNodeRun(
  flags: WorkflowFlags,
  context: CliContext,
  pick: (cluster: ClusterFile, hosts: readonly ClusterHost[]) => readonly ClusterHost[],
): Promise<PreparedRun<InitRun>> {
  const prepared = await prepareClusterRun(flags, context);
  try {
    const { cluster, file } = prepared.data;
    refuseSeveralControlPlanes(cluster, file);
    const timeoutMs = flags.timeout as number;
    const narrowed = {
      ...prepared,
      data: {
        ...prepared.data,
        hosts: pick(cluster, prepared.data.hosts),
        clusterDir: join(context.stateDir, cluster.metadata.name),
        timeouts: { kubeletHealthMs: timeoutMs, controlPlaneMs: timeoutMs },
      },
    };
    return await withBundle(narrowed, flags, context);
  } catch (error) {
    await prepared.close?.();
    throw error;
  }
}

export function addInitCommand(program: Command, context: CliContext): void {
  addWorkflowCommand(program, context, {
    workflow: initWorkflow,
    description: "Set up the first control-plane node, as kubeadm init",
    options: clusterOptions,
    prepare: (flags, ctx) =>
      prepareNodeRun(flags, ctx, (_cluster, hosts) =>
        hosts.filter((host) => host.spec.role === "control-plane"),
      ),
    summary: (_data, changes, dryRun) => formatChanges(changes, dryRun),
  });
}
