// Derives a command from a workflow, as kubeadm's BindToCommand: `<cmd>` runs every phase,
// `<cmd> phase <path…>` runs one, `--skip-phases` skips, and `--help` lists the phase tree.
import { chmodSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { type Command, Option } from "commander";
import { formatChanges } from "../ui/lines.js";
import { jsonSink, logFileSink, plainSink, redactingSink } from "../ui/sinks.js";
import { UsageError } from "../workflow/errors.js";
import type { EventSink } from "../workflow/events.js";
import { describePhases, type Phase, type Target, type Workflow } from "../workflow/phase.js";
import { runWorkflow } from "../workflow/runner.js";
import { DEFAULT_FILE, FILE_FLAGS, FILE_HELP } from "./config-command.js";
import type { CliContext } from "./program.js";

export interface WorkflowFlags {
  file: string;
  dryRun?: boolean;
  concurrency?: number;
  skipPhases?: string[];
  /** The command's own options, by commander's camelCase name. */
  [name: string]: unknown;
}

export interface PreparedRun<D> {
  data: D;
  /** metadata.name: names the state directory that holds the run's log. */
  clusterName: string;
  /** The cluster file's options.concurrency, used unless --concurrency is given. */
  concurrency: number;
  /** Releases what `prepare` opened (SSH connections), also after a failure. */
  close?: () => Promise<void>;
}

export interface WorkflowCommand<D, H extends Target> {
  workflow: Workflow<D, H>;
  description: string;
  /** Options of this command beyond the common ones. */
  options?: () => Option[];
  /** What the run ends with on stdout in text mode (also after a failure); default: the per-host changes. */
  summary?: (data: D, changes: Record<string, string[]>, dryRun: boolean) => string;
  /** Loads and checks the input and builds the run's data. Bad input throws ConfigError before any host is touched. */
  prepare: (flags: WorkflowFlags, context: CliContext) => Promise<PreparedRun<D>>;
}

function parseConcurrency(text: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1)
    throw new UsageError(`--concurrency ${text}: must be a whole number ≥ 1`);
  return value;
}

/** `a, b,,c` → [a, b, c]: every comma-separated flag value. */
export function parseList(text: string): string[] {
  return text
    .split(",")
    .map((item) => item.trim())
    .filter(Boolean);
}

function commonOptions(extra: WorkflowCommand<never, Target>["options"]): Option[] {
  return [
    new Option(FILE_FLAGS, FILE_HELP).default(DEFAULT_FILE),
    new Option("--dry-run", "change nothing: print what would change on each host"),
    new Option(
      "--concurrency <n>",
      "hosts worked on at once (default: the file's options.concurrency, 30)",
    ).argParser(parseConcurrency),
    ...(extra?.() ?? []),
  ];
}

export function addWorkflowCommand<D, H extends Target>(
  program: Command,
  context: CliContext,
  spec: WorkflowCommand<D, H>,
): Command {
  const { workflow } = spec;
  const command = program.command(workflow.command).description(spec.description);
  for (const option of commonOptions(spec.options)) command.addOption(option);
  command.addOption(
    new Option("--skip-phases <phases>", "phases to skip, comma-separated (e.g. certs/ca,addon)").argParser(
      parseList,
    ),
  );
  command.addHelpText(
    "after",
    `\nPhases (run one with \`kubeforge ${workflow.command} phase <path>\`):\n${describePhases(workflow.phases)}\n`,
  );
  command.action((flags: WorkflowFlags) => execute(spec, context, flags, []));

  const phaseCommand = command
    .command("phase")
    .description(`Run one phase of ${workflow.command} (and the phases under it)`);
  const addPhases = (parent: Command, phases: readonly Phase<D, H>[], prefix: string) => {
    for (const phase of phases) {
      const path = prefix ? `${prefix}/${phase.id}` : phase.id;
      const sub = parent.command(phase.id).description(phase.help ?? phase.title);
      for (const option of commonOptions(spec.options)) sub.addOption(option);
      sub.action((flags: WorkflowFlags) => execute(spec, context, flags, [path]));
      if (phase.phases) addPhases(sub, phase.phases, path);
    }
  };
  addPhases(phaseCommand, workflow.phases, "");
  return command;
}

async function execute<D, H extends Target>(
  spec: WorkflowCommand<D, H>,
  context: CliContext,
  flags: WorkflowFlags,
  select: string[],
): Promise<void> {
  const { io, redactor } = context;
  const json = context.output === "json";
  const prepared = await spec.prepare(flags, context);
  try {
    const logs = logFileSink(stateDirectory(context, prepared.clusterName), spec.workflow.command);
    context.logFile = logs.path;
    const sinks: EventSink[] = [logs.sink];
    // listr2 is loaded only when there is a terminal to draw on.
    const tty =
      !json && io.stderr.isTTY
        ? (await import("../ui/tty.js")).ttyRenderer(io.stderr as NodeJS.WriteStream)
        : undefined;
    if (json) sinks.push(jsonSink(io.stdout), plainSink(io.stderr));
    else sinks.push(tty ? tty.sink : plainSink(io.stderr));
    const emitSafely = redactingSink(redactor, sinks);
    let currentPhase = "";
    // Collected from the events rather than the result, so a failed run still shows what it changed.
    const changes: Record<string, string[]> = {};
    const emit: EventSink = (event) => {
      if (event.type === "phase.start") currentPhase = event.phase;
      if (event.type === "change") changes[event.host] = [...(changes[event.host] ?? []), event.description];
      emitSafely(event);
    };
    context.notify = (message) => emit({ type: "log", phase: currentPhase, level: "warn", message });
    const dryRun = flags.dryRun === true;
    try {
      await runWorkflow(spec.workflow, {
        data: prepared.data,
        select,
        skip: flags.skipPhases ?? [],
        dryRun,
        concurrency: flags.concurrency ?? prepared.concurrency,
        emit,
        signal: io.signal,
      });
    } finally {
      await tty?.finished();
      const summary = spec.summary
        ? spec.summary(prepared.data, changes, dryRun)
        : formatChanges(changes, dryRun);
      if (!json && summary) io.stdout.write(`${redactor.redact(summary)}\n`);
    }
  } finally {
    await prepared.close?.();
  }
}

/** `<state dir>/<cluster>/logs`, every level 0700: logs name hosts and commands. */
function stateDirectory(context: CliContext, clusterName: string): string {
  const root = context.stateDir;
  const cluster = join(root, clusterName);
  const logs = join(cluster, "logs");
  mkdirSync(logs, { recursive: true, mode: 0o700 });
  for (const dir of [root, cluster, logs]) chmodSync(dir, 0o700);
  return logs;
}
