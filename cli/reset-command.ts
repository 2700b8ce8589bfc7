// `kubeforge reset`: connect → facts → cleanup-node, kubeadm reset's node cleanup on every selected
// host in parallel. The phase list below is the whole workflow.
//
// The confirmation is asked before the run, not in a phase: a refusal then touches no host, and no
// phase (`reset phase cleanup-node`, --skip-phases) can get around it. It also could not be asked
// mid-run: the progress tree owns the terminal while phases run.
import { type Command, Option } from "commander";
import type { ClusterHost } from "../hosts/open.js";
import { connectPhase } from "../phases/connect.js";
import { cleanupNodePhase, type ResetRun, resetFactsPhase } from "../phases/reset.js";
import { UsageError } from "../workflow/errors.js";
import type { Workflow } from "../workflow/phase.js";
import { hostOptions, prepareClusterRun } from "./preflight-command.js";
import type { CliContext } from "./program.js";
import { addWorkflowCommand, type PreparedRun, parseList, type WorkflowFlags } from "./workflow-command.js";

export const resetWorkflow: Workflow<ResetRun, ClusterHost> = {
  command: "reset",
  phases: [connectPhase, resetFactsPhase, cleanupNodePhase],
};

/** The hosts `--hosts a,b` names (all without it); an unknown name is a usage error naming the valid ones. */
export function selectHosts(hosts: readonly ClusterHost[], names: string | undefined): ClusterHost[] {
  if (names === undefined) return [...hosts];
  const wanted = new Set(parseList(names));
  const known = hosts.map((host) => host.name);
  const unknown = [...wanted].filter((name) => !known.includes(name));
  if (unknown.length > 0 || wanted.size === 0) {
    const what = unknown.length > 0 ? `unknown host(s) ${unknown.join(", ")}` : "no host named";
    throw new UsageError(`--hosts ${names}: ${what}; the cluster file's hosts are ${known.join(", ")}`);
  }
  return hosts.filter((host) => wanted.has(host.name));
}

export function confirmationQuestion(hosts: readonly ClusterHost[], purge: boolean): string {
  const names = hosts.map((host) => `${host.name} (${host.spec.address})`).join(", ");
  return (
    `Reset ${hosts.length} host(s): ${names}? This stops the kubelet and every container in containerd's ` +
    "k8s.io namespace, and deletes /etc/kubernetes, /var/lib/kubelet, the etcd data, kubeforge's CNI config " +
    `and the KUBE-* iptables chains${purge ? ", and (--purge) the binaries and packages kubeforge installed" : ""}.`
  );
}

async function prepareReset(flags: WorkflowFlags, context: CliContext): Promise<PreparedRun<ResetRun>> {
  const ask = !flags.yes && !flags.dryRun;
  if (ask && !context.io.confirm) {
    throw new UsageError(
      "reset needs a confirmation and there is no terminal to ask on: run with --yes (or --dry-run to see what would change)",
    );
  }
  const prepared = await prepareClusterRun(flags, context);
  try {
    const hosts = selectHosts(prepared.data.hosts, flags.hosts as string | undefined);
    const purge = flags.purge === true;
    if (ask && !(await context.io.confirm?.(confirmationQuestion(hosts, purge)))) {
      throw new Error("reset aborted at the prompt: nothing was changed");
    }
    return { ...prepared, data: { ...prepared.data, hosts, purge, leftovers: new Map() } };
  } catch (error) {
    await prepared.close?.();
    throw error;
  }
}

export function addResetCommand(program: Command, context: CliContext): void {
  addWorkflowCommand(program, context, {
    workflow: resetWorkflow,
    description:
      "Undo what kubeforge and the kubelet did to the hosts, as kubeadm reset (asks first unless --yes)",
    options: () => [
      ...hostOptions(),
      new Option("--hosts <names>", "only these hosts of the cluster file, comma-separated (e.g. w1,w2)"),
      new Option(
        "--purge",
        "also remove what kubeforge installed: kubelet, kubectl, the kubelet unit, its packages",
      ),
      new Option("-y, --yes", "do not ask for confirmation"),
    ],
    prepare: prepareReset,
  });
}
