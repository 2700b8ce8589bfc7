// Read-only facts from every host, in parallel, before anything is changed.
import { gatherFacts } from "../facts/facts.js";
import type { ClusterHost } from "../hosts/open.js";
import { inspectedDirs } from "../preflight/checks.js";
import type { HostPhase } from "../workflow/phase.js";
import type { ClusterRun } from "./cluster-run.js";

export const factsPhase: HostPhase<ClusterRun, ClusterHost> = {
  id: "facts",
  prerequisite: true,
  title: "Gather facts",
  help: "Read OS, hardware, swap, cgroups, ports, runtime and leftover Kubernetes state from every host; changes nothing.",
  hosts: (run) => run.hosts,
  run: async ({ host, data, signal, log }) => {
    const facts = await gatherFacts(host.host, {
      dirs: inspectedDirs(data.cluster),
      sudo: host.sudo,
      signal,
      now: data.now,
    });
    data.facts.set(host.name, facts);
    log(
      `${facts.os.prettyName || facts.os.id}, ${facts.arch}, ${facts.cpus} CPU, ${Math.round(facts.memoryKiB / 1024)} MiB`,
    );
  },
};
