// Host-stage preflight: every check on every host, reported together; errors stop the run unless
// ignored by name with --ignore-preflight-errors (kubeadm's habit).
import type { ClusterHost } from "../hosts/open.js";
import { runChecks } from "../preflight/checks.js";
import { PreflightError } from "../workflow/errors.js";
import type { LocalPhase } from "../workflow/phase.js";
import { type ClusterRun, factsOf } from "./cluster-run.js";

export const hostChecksPhase: LocalPhase<ClusterRun, ClusterHost> = {
  id: "checks",
  title: "Check the hosts",
  help: "Checks what kubeforge cannot fix itself (privileges, CPU and memory, OS, free ports, leftovers, unique hostnames and machine-ids, clock skew); reports what prepare will fix.",
  run: async ({ data, check }) => {
    const hosts = data.hosts.map((host) => ({
      spec: host.spec,
      facts: factsOf(data, host.name),
      member: data.members.has(host.name),
    }));
    data.checks = runChecks(data.cluster, hosts, { ignore: data.ignorePreflightErrors });
    for (const result of data.checks) check(result);
    const failures = data.checks.filter((result) => result.status === "error");
    if (failures.length > 0) throw new PreflightError(failures);
  },
};
