// Node-stage preflight, after prepare: the container runtime answers, the kubelet's version fits,
// and the kernel is as the kubelet needs it. Every host is checked; failures are reported together.
import { parseSupportedVersion } from "../config/versions.js";
import type { ClusterHost } from "../hosts/open.js";
import { probeNode } from "../node/state.js";
import { nodeChecks } from "../preflight/node-checks.js";
import { InternalError, PreflightError } from "../workflow/errors.js";
import type { HostPhase } from "../workflow/phase.js";
import { type ClusterRun, factsOf } from "./cluster-run.js";

export const nodeChecksPhase: HostPhase<ClusterRun, ClusterHost> = {
  id: "node-checks",
  title: "Check the hosts are ready for the kubelet",
  help: "kubeadm's node checks after prepare: CRI, KubeletVersion, Swap, FileContent--proc-sys-net-…, FileExisting-<tool>, and KubeletKernelSettings (vm.overcommit_memory, kernel.panic, kernel.panic_on_oops). Skipped in a dry run, which has changed nothing to check.",
  hosts: (run) => run.hosts,
  run: async ({ host, data, signal, dryRun, log, check }) => {
    if (dryRun) {
      log("skipped in a dry run: these checks look at what prepare changes");
      return;
    }
    const target = parseSupportedVersion(data.cluster.spec.kubernetes.version);
    if (!target)
      throw new InternalError(
        `unsupported version ${data.cluster.spec.kubernetes.version} passed validation`,
      );
    const state = await probeNode(host.host, { hashFiles: [], packages: [] }, { sudo: host.sudo, signal });
    const results = nodeChecks(host.name, state, factsOf(data, host.name), target, {
      ignore: data.ignorePreflightErrors,
    });
    data.nodeChecks.push(...results);
    for (const result of results) check(result);
    const failures = results.filter((result) => result.status === "error");
    if (failures.length > 0) throw new PreflightError(failures);
  },
};
