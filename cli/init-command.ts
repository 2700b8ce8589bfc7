// `kubeforge init`: the first control plane from a bare host to a running control plane, as
// `kubeadm init` does it, driven from the workstation. The phase list below is the whole workflow;
// join and apply (cli/join-command.ts, cli/apply-command.ts) reuse its parts.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { type Command, Option } from "commander";
import { serverVersion } from "../api/client.js";
import { workstationAdmin } from "../certs/admin-kubeconfig.js";
import { parseGoDuration } from "../certs/duration.js";
import { ADMIN_KUBECONFIG, parseKubeconfig, serializeKubeconfig } from "../certs/pki.js";
import { normalizeImageRef } from "../config/images.js";
import type { ClusterFile } from "../config/schema.js";
import type { ClusterHost } from "../hosts/open.js";
import { addonsPhase } from "../phases/addons.js";
import { type AdminKubeconfigRun, adminKubeconfigPhase } from "../phases/admin-kubeconfig.js";
import { connectPhase } from "../phases/connect.js";
import { factsPhase } from "../phases/facts.js";
import {
  type ApiRun,
  bootstrapTokenPhaseWith,
  markControlPlanePhase,
  untilInitFinished,
  uploadConfigPhase,
  withApi,
} from "../phases/init-api.js";
import { caCheckPhase, initNodePhases, kubeletFinalizePhase } from "../phases/init-node.js";
import type { JoinRun } from "../phases/join-node.js";
import { nodeChecksPhase } from "../phases/node-preflight.js";
import { type PodNetworkRun, podNetworkPhase } from "../phases/pod-network.js";
import { hostChecksPhase } from "../phases/preflight.js";
import { bundleCheckPhase, bundledImages, type PrepareRun, preparePhases } from "../phases/prepare.js";
import { type ValidateRun, validatePhase } from "../phases/validate.js";
import { formatChanges } from "../ui/lines.js";
import { UsageError } from "../workflow/errors.js";
import type { Phase, Workflow } from "../workflow/phase.js";
import { defaultKubeconfigPath } from "./certs-command.js";
import { hostOptions, ignorePreflightErrorsOption, prepareClusterRun } from "./preflight-command.js";
import { bundleOptions, withBundle } from "./prepare-command.js";
import type { CliContext } from "./program.js";
import { addWorkflowCommand, type PreparedRun, type WorkflowFlags } from "./workflow-command.js";

/** What init, join and apply share: the hosts prepared from the bundle, the nodes, the API. */
export type ClusterSetupRun = PrepareRun &
  JoinRun &
  ApiRun &
  PodNetworkRun &
  ValidateRun &
  AdminKubeconfigRun;

type SetupPhase = Phase<ClusterSetupRun, ClusterHost>;

/** Read-only groundwork and the host stage, before anything changes: bad input stops here (exit 2). */
export const groundworkPhases: readonly SetupPhase[] = [
  connectPhase,
  factsPhase,
  bundleCheckPhase,
  caCheckPhase,
  hostChecksPhase,
];

/** prepare's phases and the node-stage checks, on every host of the run. */
export const hostSetupPhases: readonly SetupPhase[] = [...preparePhases, nodeChecksPhase];

/** kubeadm init's token while init is unfinished (see untilInitFinished). */
export const initTokenPhase = bootstrapTokenPhaseWith<ClusterSetupRun>(untilInitFinished);

/** kubeadm init's phases after preflight, in its order, on the first control plane. */
export const controlPlanePhases: readonly SetupPhase[] = [
  ...initNodePhases,
  uploadConfigPhase,
  markControlPlanePhase,
  initTokenPhase,
  kubeletFinalizePhase,
  addonsPhase,
];

/** The end of init, join and apply: the pod network, the admin's kubeconfig, the validation. */
export const finishPhases: readonly SetupPhase[] = [
  // First: if what follows fails, kubectl already works for looking into it.
  adminKubeconfigPhase,
  withApi<ClusterSetupRun, ClusterHost>(podNetworkPhase),
  withApi<ClusterSetupRun, ClusterHost>(validatePhase),
];

export const initWorkflow: Workflow<ClusterSetupRun, ClusterHost> = {
  command: "init",
  phases: [...groundworkPhases, ...hostSetupPhases, ...controlPlanePhases, ...finishPhases],
};

/** kubeadm's kubeletHealthCheck and controlPlaneComponentHealthCheck. */
const DEFAULT_WAIT = "4m";

function parseTimeout(text: string): number {
  const ms = parseGoDuration(text);
  if (ms === undefined)
    throw new UsageError(`--timeout ${text}: not a duration; write it like 4m, 90s or 1m30s`);
  return ms;
}

function parseValidate(text: string): "basic" | "full" {
  if (text === "basic" || text === "full") return text;
  throw new UsageError(
    `--validate ${text}: must be basic (nodes Ready, kube-system pods running, the API endpoint) or full (also a pod on every node and a Service across nodes)`,
  );
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
      "how long each wait may take (the kubelet's health, the API server, a node's bootstrap and registration)",
    )
      .default(parseTimeout(DEFAULT_WAIT), DEFAULT_WAIT)
      .argParser(parseTimeout),
    new Option(
      "--validate <level>",
      "basic: nodes Ready, kube-system pods running, the API endpoint; full: also a pod on every node and a Service reached across nodes",
    )
      .default("basic")
      .argParser(parseValidate),
    new Option(
      "--test-image <ref>",
      "the busybox-class image (sh, wget, httpd) --validate full runs; default: a busybox image in the bundle",
    ),
  ];
}

/** A busybox image the bundle carries, for --validate full. */
function bundledTestImage(run: PrepareRun): string | undefined {
  return bundledImages(run.bundle).find((ref) => ref.includes("busybox"));
}

/**
 * --validate full runs its pods from an image every node has: the bundle's (imported by prepare,
 * and run with imagePullPolicy Never). Found missing only after the cluster is built would waste the
 * run: it is bad input, refused before any host is touched.
 */
function refuseMissingTestImage(run: PrepareRun, image: string | undefined, flags: WorkflowFlags): void {
  if (image === undefined)
    throw new UsageError(
      `--validate full runs a busybox-class image (sh, wget, httpd), and the bundle ${flags.bundle ?? run.cluster.spec.artifacts.bundle} has none: add one to its images/ (e.g. docker save busybox:1.36) or name one with --test-image`,
    );
  if (
    run.cluster.spec.artifacts.source === "bundle" &&
    !bundledImages(run.bundle).includes(normalizeImageRef(image))
  )
    throw new UsageError(
      `--test-image ${image}: not in the bundle, so no node has it (pods run it with imagePullPolicy Never): add it to the bundle's images/`,
    );
}

/** The API as a user's kubectl reaches it: the admin kubeconfig, through controlPlaneEndpoint. */
async function reachApi(cluster: ClusterFile, clusterDir: string): Promise<string> {
  const admin = workstationAdmin(
    cluster,
    parseKubeconfig(await readFile(join(clusterDir, ADMIN_KUBECONFIG), "utf8")),
  );
  const version = await serverVersion({ kubeconfig: serializeKubeconfig(admin) });
  const server = admin.clusters[0]?.cluster.server ?? "?";
  return `${server} answers with Kubernetes ${version}`;
}

/**
 * The run of init, join or apply: the cluster file, its hosts narrowed to `pick`, the bundle, and
 * where the local store keeps this cluster. Bad input throws before any host is touched.
 */
export async function prepareSetupRun(
  flags: WorkflowFlags,
  context: CliContext,
  pick: (hosts: readonly ClusterHost[]) => readonly ClusterHost[],
): Promise<PreparedRun<ClusterSetupRun>> {
  const prepared = await prepareClusterRun(flags, context);
  const { cluster, file } = prepared.data;
  try {
    refuseSeveralControlPlanes(cluster, file);
  } catch (error) {
    await prepared.close?.();
    throw error;
  }
  const timeoutMs = flags.timeout as number;
  const clusterDir = join(context.stateDir, cluster.metadata.name);
  // withBundle closes the connections itself when the bundle is refused.
  const bundled = await withBundle(
    {
      ...prepared,
      data: {
        ...prepared.data,
        hosts: pick(prepared.data.hosts),
        clusterHosts: prepared.data.hosts,
        clusterDir,
        timeouts: { kubeletHealthMs: timeoutMs, controlPlaneMs: timeoutMs },
        bootstrapped: new Set<string>(),
        wait: { timeoutMs, intervalMs: 1_000 },
        validate: flags.validate as "basic" | "full",
        reachApi: () => reachApi(cluster, clusterDir),
        userKubeconfig: defaultKubeconfigPath(context.io.env, context.io.homeDir),
      },
    },
    flags,
    context,
  );
  const testImage = (flags.testImage as string | undefined) ?? bundledTestImage(bundled.data);
  try {
    if (flags.validate === "full") refuseMissingTestImage(bundled.data, testImage, flags);
  } catch (error) {
    await bundled.close?.();
    throw error;
  }
  return { ...bundled, data: { ...bundled.data, ...(testImage && { testImage }) } };
}

/** The summary of init, join and apply: what changed, and what to run next. */
export function setupSummary(
  data: ClusterSetupRun,
  changes: Record<string, string[]>,
  dryRun: boolean,
): string {
  // Only once the admin kubeconfig is merged: before that the context does not exist.
  const next =
    dryRun || !data.adminContext
      ? ""
      : `\nNext: kubectl --context ${data.adminContext} get nodes\nA join command for kubeadm: kubeforge token create -f ${data.file} --print-join-command\n`;
  return `${formatChanges(changes, dryRun)}${next}`;
}

export function addInitCommand(program: Command, context: CliContext): void {
  addWorkflowCommand(program, context, {
    workflow: initWorkflow,
    description: "Set up the first control-plane node, as kubeadm init",
    options: clusterOptions,
    prepare: (flags, ctx) =>
      prepareSetupRun(flags, ctx, (hosts) => hosts.filter((host) => host.spec.role === "control-plane")),
    summary: setupSummary,
  });
}
