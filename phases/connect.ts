// Dial every host once, verifying its key, so the phases after it fail on nothing but their work.
import type { ClusterHost } from "../hosts/open.js";
import type { HostPhase } from "../workflow/phase.js";
import type { ClusterRun } from "./cluster-run.js";

export const connectPhase: HostPhase<ClusterRun, ClusterHost> = {
  id: "connect",
  prerequisite: true,
  title: "Connect to the hosts over SSH",
  help: "Open one SSH connection per host, verifying each host key against known_hosts (transient errors are retried for up to 30 s).",
  hosts: (run) => run.hosts,
  run: async ({ host, signal }) => {
    await host.host.connect(signal);
  },
};
