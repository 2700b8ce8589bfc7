// `kubeforge prepare`: bare hosts → hosts ready for the kubelet, from an offline bundle. The phase
// list below is the whole workflow; init and join will start with the same phases.
import { type Command, Option } from "commander";
import { openBundle } from "../artifacts/bundle.js";
import type { ClusterHost } from "../hosts/open.js";
import type { ClusterRun } from "../phases/cluster-run.js";
import { connectPhase } from "../phases/connect.js";
import { factsPhase } from "../phases/facts.js";
import { nodeChecksPhase } from "../phases/node-preflight.js";
import { hostChecksPhase } from "../phases/preflight.js";
import { bundleCheckPhase, type PrepareRun, preparePhases } from "../phases/prepare.js";
import { formatChecks } from "../ui/checks-table.js";
import { formatChanges } from "../ui/lines.js";
import { BundleError, ConfigError } from "../workflow/errors.js";
import type { Workflow } from "../workflow/phase.js";
import { hostOptions, ignorePreflightErrorsOption, prepareClusterRun } from "./preflight-command.js";
import { bundleCacheDir, type CliContext } from "./program.js";
import { addWorkflowCommand, type PreparedRun, type WorkflowFlags } from "./workflow-command.js";

export const prepareWorkflow: Workflow<PrepareRun, ClusterHost> = {
  command: "prepare",
  // The bundle is checked against the facts before the host checks: bad input (exit 2) comes first.
  phases: [connectPhase, factsPhase, bundleCheckPhase, hostChecksPhase, ...preparePhases, nodeChecksPhase],
};

/** The bundle named by --bundle or the cluster file, opened and checked before any host is touched. */
export async function prepareRun(
  flags: WorkflowFlags,
  context: CliContext,
): Promise<PreparedRun<PrepareRun>> {
  return withBundle(await prepareClusterRun(flags, context), flags, context);
}

/**
 * Adds the offline bundle (opened, checked against the file's version) and prepare's caches to a
 * cluster run; closes the run's connections when that fails.
 */
export async function withBundle<D extends ClusterRun>(
  prepared: PreparedRun<D>,
  flags: WorkflowFlags,
  context: CliContext,
): Promise<PreparedRun<D & PrepareRun>> {
  try {
    const { cluster, file } = prepared.data;
    const path = (flags.bundle as string | undefined) ?? cluster.spec.artifacts.bundle;
    if (!path || (cluster.spec.artifacts.source !== "bundle" && !flags.bundle)) {
      throw new ConfigError([
        {
          file,
          line: undefined,
          path: "spec.artifacts.source",
          message: `is ${cluster.spec.artifacts.source}, but kubeforge installs from an offline bundle only (downloading comes in a later release): set source: bundle and bundle: <file from kubeforge bundle create>, or pass --bundle FILE`,
        },
      ]);
    }
    const bundle = await openBundle(path, {
      cacheDir: bundleCacheDir(context),
      verify: flags.verify === true,
    });
    if (bundle.manifest.kubernetesVersion !== cluster.spec.kubernetes.version) {
      throw new BundleError(path, [
        {
          member: "manifest.json",
          problem: `it holds Kubernetes ${bundle.manifest.kubernetesVersion}, the cluster file ${file} asks for ${cluster.spec.kubernetes.version}`,
          fix: "create a bundle for the file's version, or change spec.kubernetes.version",
        },
      ]);
    }
    return {
      ...prepared,
      data: {
        ...prepared.data,
        bundle,
        verify: flags.verify === true,
        records: new Map(),
        states: new Map(),
      },
    };
  } catch (error) {
    await prepared.close?.();
    throw error;
  }
}

/** The options of every command that installs from a bundle. */
export function bundleOptions(): Option[] {
  return [
    new Option(
      "--bundle <file>",
      "offline bundle to install from (default: the file's spec.artifacts.bundle)",
    ),
    new Option("--verify", "hash every installed file again instead of trusting the install record"),
  ];
}

export function addPrepareCommand(program: Command, context: CliContext): void {
  addWorkflowCommand(program, context, {
    workflow: prepareWorkflow,
    description:
      "Ready the hosts for the kubelet from an offline bundle: OS settings, containerd, binaries, images",
    options: () => [...hostOptions(), ignorePreflightErrorsOption(), ...bundleOptions()],
    prepare: prepareRun,
    summary: (data, changes, dryRun) => {
      // The node checks tell the state prepare left; the host checks only matter when they stopped it.
      const table =
        data.nodeChecks.length > 0
          ? formatChecks(data.nodeChecks, "Node checks passed: the hosts are ready for the kubelet.")
          : formatChecks(data.checks);
      const checks = table ? `${table}\n\n` : "";
      return `${checks}${formatChanges(changes, dryRun)}`;
    },
  });
}
