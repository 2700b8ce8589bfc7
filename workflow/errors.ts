// The few error classes kubeforge raises. Each layer wraps once with `cause`; only cli/ maps a
// class to an exit code (see cli/exit.ts).

/** One problem in a cluster file, located by file:line and YAML path. */
export interface ConfigIssue {
  file: string;
  line: number | undefined;
  /** Dotted YAML path such as `spec.hosts[1].address`; empty for the document itself. */
  path: string;
  message: string;
}

export function formatIssue(issue: ConfigIssue): string {
  const where = issue.line === undefined ? issue.file : `${issue.file}:${issue.line}`;
  return issue.path ? `${where} ${issue.path}: ${issue.message}` : `${where}: ${issue.message}`;
}

/** Bad input: the cluster file (or a file it names) is invalid. Every issue is reported at once. */
export class ConfigError extends Error {
  override name = "ConfigError";
  constructor(
    readonly issues: readonly ConfigIssue[],
    options?: ErrorOptions,
  ) {
    const noun = issues.length === 1 ? "problem" : "problems";
    super(`${issues.length} ${noun} in the cluster file:\n${issues.map(formatIssue).join("\n")}`, options);
  }
}

/** One reason the local PKI store cannot be used as the cluster file says. */
export interface PkiProblem {
  /** What it is about: `apiserver (cp1)`, `ca`, `admin.conf`. */
  subject: string;
  /** The file, relative to the cluster's state directory. */
  file?: string;
  problem: string;
  /** The command or step that resolves it. */
  fix?: string;
}

/**
 * Bad input: the PKI store disagrees with the cluster file (a SAN changed, a CA key is missing, a
 * key does not match its certificate). Every problem is reported at once; no file was changed.
 */
export class PkiError extends Error {
  override name = "PkiError";
  constructor(
    readonly storeDir: string,
    readonly problems: readonly PkiProblem[],
    options?: ErrorOptions,
  ) {
    const lines = problems.map((p) => {
      const where = p.file ? ` (${p.file})` : "";
      return `- ${p.subject}${where}: ${p.problem}${p.fix ? `\n  fix: ${p.fix}` : ""}`;
    });
    super(
      `${problems.length} ${problems.length === 1 ? "problem" : "problems"} with the PKI in ${storeDir}; nothing was changed:\n${lines.join("\n")}`,
      options,
    );
  }
}

/** One reason a bundle cannot be used. */
export interface BundleProblem {
  /** What it is about: a member or source path (`bin/linux-amd64/kubelet`), a host (`h2`); empty for the whole bundle. */
  member: string;
  problem: string;
  fix?: string;
}

/**
 * Bad input: an offline bundle (or the directory it is made from) that is corrupt, or lacks what the
 * cluster file and its hosts need. Raised before any host is changed; exit 2.
 */
export class BundleError extends Error {
  override name = "BundleError";
  constructor(
    readonly bundle: string,
    readonly problems: readonly BundleProblem[],
    options?: ErrorOptions,
  ) {
    const lines = problems.map(
      (p) => `- ${p.member ? `${p.member}: ` : ""}${p.problem}${p.fix ? `\n  fix: ${p.fix}` : ""}`,
    );
    const noun = problems.length === 1 ? "problem" : "problems";
    super(`${problems.length} ${noun} with ${bundle}:\n${lines.join("\n")}`, options);
  }
}

/** Bad command-line usage: an unknown phase, a flag value out of range. */
export class UsageError extends Error {
  override name = "UsageError";
}

export interface PreflightFailure {
  host: string;
  check: string;
  message: string;
}

/** Preflight checks that failed and were not ignored with --ignore-preflight-errors. */
export class PreflightError extends Error {
  override name = "PreflightError";
  constructor(
    readonly failures: readonly PreflightFailure[],
    options?: ErrorOptions,
  ) {
    super(
      `preflight failed:\n${failures.map((f) => `- ${f.host}: [${f.check}] ${f.message}`).join("\n")}\n` +
        "Fix the hosts, or skip a check with --ignore-preflight-errors=<name>,… if you know it is safe.",
      options,
    );
  }
}

/** A command on a host exited non-zero. `command` must already be redacted. */
export class RemoteCommandError extends Error {
  override name = "RemoteCommandError";
  constructor(
    readonly host: string,
    readonly command: string,
    readonly exitCode: number | null,
    readonly stderrTail: string,
    options?: ErrorOptions,
  ) {
    const code = exitCode === null ? "was killed" : `exited ${exitCode}`;
    super(`${host}: \`${command}\` ${code}${stderrTail ? `: ${stderrTail}` : ""}`, options);
  }
}

/** Every host of a per-host phase ran to the end; some of them failed. */
export class HostsError extends Error {
  override name = "HostsError";
  constructor(
    readonly failures: ReadonlyMap<string, unknown>,
    readonly total: number,
  ) {
    const lines = [...failures].map(([host, error]) => `- ${host}: ${messageOf(error)}`);
    super(`failed on ${failures.size} of ${total} hosts:\n${lines.join("\n")}`);
  }
}

/** A phase failed; `cause` holds why. The message names the phase path, as kubeadm does. */
export class PhaseError extends Error {
  override name = "PhaseError";
  constructor(
    readonly phase: string,
    options: ErrorOptions & { cause: unknown },
  ) {
    super(`error execution phase ${phase}: ${messageOf(options.cause)}`, options);
  }
}

/** The run was interrupted (Ctrl-C / SIGTERM). */
export class InterruptedError extends Error {
  override name = "InterruptedError";
  constructor(options?: ErrorOptions) {
    super("interrupted", options);
  }
}

/** A bug in kubeforge, not in the user's input or hosts. */
export class InternalError extends Error {
  override name = "InternalError";
}

export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The error and its `cause` chain, outermost first. */
export function causeChain(error: unknown): unknown[] {
  const chain: unknown[] = [];
  for (let current = error; current !== undefined && chain.length < 16; ) {
    chain.push(current);
    current = current instanceof Error ? current.cause : undefined;
  }
  return chain;
}
