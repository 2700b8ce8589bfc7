// The data every command on a cluster's hosts shares: the validated file, one connection per host,
// and the facts gathered before anything changes. Phases read and fill it; nothing else does.
import type { ClusterFile } from "../config/schema.js";
import type { HostFacts } from "../facts/facts.js";
import type { ClusterHost } from "../hosts/open.js";
import type { CheckResult } from "../preflight/checks.js";

export interface ClusterRun {
  file: string;
  cluster: ClusterFile;
  hosts: readonly ClusterHost[];
  /** Filled by the facts phase, per host name. */
  facts: Map<string, HostFacts>;
  /** kubeadm's --ignore-preflight-errors: check names or `all`. */
  ignorePreflightErrors: readonly string[];
  /** Filled by the host-stage preflight checks. */
  checks: CheckResult[];
  /** Filled by the node-stage checks (after prepare). */
  nodeChecks: CheckResult[];
  /** Hosts already in this cluster (their CA is the store's): the host checks expect its ports in use. */
  members: Set<string>;
  /** The workstation's clock in ms; injectable for tests. */
  now: () => number;
}

/** A host's facts; the facts phase runs first, so a miss is a bug in the workflow's order. */
export function factsOf(run: ClusterRun, name: string): HostFacts {
  const facts = run.facts.get(name);
  if (!facts) throw new Error(`no facts for ${name}: the facts phase must run before this one`);
  return facts;
}
