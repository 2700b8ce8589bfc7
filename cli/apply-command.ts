// `kubeforge apply`: the whole cluster file, converged. Init where the control plane is not set up,
// join for workers that have not joined, then the pod network, the admin kubeconfig and the
// validation. On a converged cluster every phase finds nothing to do, so it changes nothing.
import type { Command } from "commander";
import type { ClusterHost } from "../hosts/open.js";
import { bootstrapTokenPhaseWith, markWorkersPhase, untilInitFinished } from "../phases/init-api.js";
import { joinedCheckPhase, joinKubeletStartPhase } from "../phases/join-node.js";
import type { Workflow } from "../workflow/phase.js";
import {
  type ClusterSetupRun,
  clusterOptions,
  controlPlanePhases,
  finishPhases,
  groundworkPhases,
  hostSetupPhases,
  initTokenPhase,
  prepareSetupRun,
  setupSummary,
} from "./init-command.js";
import { workersToBootstrap } from "./join-command.js";
import type { CliContext } from "./program.js";
import { addWorkflowCommand } from "./workflow-command.js";

/** init's token while init is unfinished, and one whenever a worker still needs to bootstrap. */
const applyTokenPhase = bootstrapTokenPhaseWith<ClusterSetupRun>(
  async (run, api) => workersToBootstrap(run).length > 0 || (await untilInitFinished(run, api)),
);

export const applyWorkflow: Workflow<ClusterSetupRun, ClusterHost> = {
  command: "apply",
  phases: [
    ...groundworkPhases,
    joinedCheckPhase,
    ...hostSetupPhases,
    {
      id: "init",
      title: "Set up the control plane (kubeadm init's phases)",
      // A token while init is unfinished or a worker still needs one (see applyTokenPhase).
      phases: controlPlanePhases.map((phase) => (phase === initTokenPhase ? applyTokenPhase : phase)),
    },
    {
      id: "join",
      title: "Join the workers (kubeadm join's phases)",
      // etc-hosts ran on every host in init, the token was made there.
      phases: [joinKubeletStartPhase, markWorkersPhase],
    },
    ...finishPhases,
  ],
};

export function addApplyCommand(program: Command, context: CliContext): void {
  addWorkflowCommand(program, context, {
    workflow: applyWorkflow,
    description: "Converge the whole cluster file: init if needed, join what has not joined, validate",
    options: clusterOptions,
    prepare: (flags, ctx) => prepareSetupRun(flags, ctx, (hosts) => hosts),
    summary: setupSummary,
  });
}
