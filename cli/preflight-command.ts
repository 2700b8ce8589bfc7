// `kubeforge preflight`: connect → facts → checks, the host stage of kubeadm's preflight, on every
// host in parallel. The phase list below is the whole workflow.
import { type Command, Option } from "commander";
import { loadClusterFile } from "../config/load.js";
import { Secrets } from "../config/secrets.js";
import type { ClusterHost } from "../hosts/open.js";
import { openClusterHosts } from "../hosts/open.js";
import type { ClusterRun } from "../phases/cluster-run.js";
import { connectPhase } from "../phases/connect.js";
import { factsPhase } from "../phases/facts.js";
import { hostChecksPhase } from "../phases/preflight.js";
import { formatChecks } from "../ui/checks-table.js";
import type { Workflow } from "../workflow/phase.js";
import type { CliContext } from "./program.js";
import { addWorkflowCommand, type PreparedRun, parseList, type WorkflowFlags } from "./workflow-command.js";

export const preflightWorkflow: Workflow<ClusterRun, ClusterHost> = {
  command: "preflight",
  phases: [connectPhase, factsPhase, hostChecksPhase],
};

/** Connection flags every command on hosts has. */
export function hostOptions(): Option[] {
  return [
    new Option(
      "--accept-new-host-keys",
      "record the keys of hosts not yet in known_hosts (changed keys are still refused)",
    ),
  ];
}

/** kubeadm's --ignore-preflight-errors, for every command that runs preflight checks. */
export function ignorePreflightErrorsOption(): Option {
  return new Option(
    "--ignore-preflight-errors <checks>",
    "checks whose errors become warnings, comma-separated (e.g. NumCPU,Port-6443), or all",
  ).argParser(parseList);
}

/** Loads the file, resolves its secrets and prepares one connection per host. Touches no host. */
export async function prepareClusterRun(
  flags: WorkflowFlags,
  context: CliContext,
): Promise<PreparedRun<ClusterRun>> {
  const { io, redactor } = context;
  const { file, cluster } = await loadClusterFile(flags.file, {
    env: io.env,
    homeDir: io.homeDir,
    cwd: io.cwd,
  });
  const secrets = new Secrets({
    env: io.env,
    redactor,
    file,
    ...(io.promptSecret && { prompt: io.promptSecret }),
  });
  const hosts = await openClusterHosts(cluster, {
    secrets,
    redactor,
    homeDir: io.homeDir,
    agentSocket: io.env.SSH_AUTH_SOCK,
    acceptNewHostKeys: flags.acceptNewHostKeys === true,
    log: (message) => context.notify(message),
  });
  const data: ClusterRun = {
    file,
    cluster,
    hosts,
    facts: new Map(),
    ignorePreflightErrors: (flags.ignorePreflightErrors as string[] | undefined) ?? [],
    checks: [],
    nodeChecks: [],
    members: new Set(),
    now: Date.now,
  };
  return {
    data,
    clusterName: cluster.metadata.name,
    concurrency: cluster.spec.options.concurrency,
    close: async () => {
      await Promise.allSettled(hosts.map((host) => host.host.close()));
    },
  };
}

export function addPreflightCommand(program: Command, context: CliContext): void {
  addWorkflowCommand(program, context, {
    workflow: preflightWorkflow,
    description: "Check that the hosts can become Kubernetes nodes (changes nothing)",
    options: () => [...hostOptions(), ignorePreflightErrorsOption()],
    prepare: prepareClusterRun,
    summary: (data) => formatChecks(data.checks),
  });
}
