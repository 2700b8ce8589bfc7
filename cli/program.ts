// The command tree. Commands parse options and call into config/ and workflow/; errors come back
// here and only here become exit codes.
import { join, resolve } from "node:path";
import { Command, Option } from "commander";
import { Redactor } from "../workflow/redact.js";
import { addConfigCommands } from "./config-command.js";
import { describeError, EXIT_OK, exitCodeFor } from "./exit.js";
import type { CliIo } from "./io.js";
import { addLabCommands } from "./lab-command.js";
import { addPreflightCommand } from "./preflight-command.js";

/** Per invocation: where output goes, and the redactor that learns this run's secrets. */
export interface CliContext {
  io: CliIo;
  redactor: Redactor;
  /** Set once a run has opened its log file, so a failure can point at it. */
  logFile?: string;
  /**
   * Messages that arise outside a phase body (SSH retries, recorded host keys): stderr until a run
   * starts, then `log` events of the phase running at that moment.
   */
  notify: (message: string) => void;
  /** From the global options, set before any command runs. */
  output: "text" | "json";
  stateDir: string;
}

/** Adds one command (or a group) to the program. */
export type CommandInstaller = (program: Command, context: CliContext) => void;

/** Every command kubeforge has, in the order `--help` lists them. */
export const COMMANDS: readonly CommandInstaller[] = [addConfigCommands, addPreflightCommand, addLabCommands];

export function buildProgram(context: CliContext, commands: readonly CommandInstaller[] = COMMANDS): Command {
  const { io } = context;
  const program = new Command("kubeforge")
    .description(
      "Bootstrap and provision Kubernetes clusters from one workstation over SSH: kubeadm's layout, in parallel, resumable.",
    )
    .version(io.version, "-V, --version")
    .addOption(
      new Option(
        "-o, --output <format>",
        "text, or json: versioned JSON events on stdout, human text on stderr",
      )
        .choices(["text", "json"])
        .default("text"),
    )
    .addOption(
      new Option("--state-dir <dir>", "where kubeforge keeps each cluster's PKI and logs, 0700").default(
        io.env.KUBEFORGE_STATE_DIR ?? join(io.homeDir, ".kubeforge"),
        "$KUBEFORGE_STATE_DIR or ~/.kubeforge",
      ),
    )
    .hook("preAction", () => {
      const options = program.opts<{ output: "text" | "json"; stateDir: string }>();
      context.output = options.output;
      context.stateDir = resolve(io.cwd, options.stateDir);
    })
    .showHelpAfterError("(run with --help for usage)")
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
      outputError: (text, write) => write(text),
    })
    .exitOverride();
  for (const install of commands) install(program, context);
  for (const command of program.commands) applyExitOverride(command);
  return program;
}

/** Commander exits by itself unless told otherwise, on every subcommand. */
function applyExitOverride(command: Command): void {
  command.exitOverride();
  for (const child of command.commands) applyExitOverride(child);
}

/** Runs one command line and returns the exit code. */
export async function runCli(
  argv: readonly string[],
  io: CliIo,
  commands: readonly CommandInstaller[] = COMMANDS,
): Promise<number> {
  const redactor = new Redactor();
  const context: CliContext = {
    io,
    redactor,
    notify: (message) => io.stderr.write(`${redactor.redact(message)}\n`),
    output: "text",
    stateDir: join(io.homeDir, ".kubeforge"),
  };
  const program = buildProgram(context, commands);
  try {
    await program.parseAsync([...argv], { from: "user" });
    return EXIT_OK;
  } catch (error) {
    const code = exitCodeFor(error);
    // Commander has already printed its own usage errors.
    if (!(error instanceof Error && error.name === "CommanderError")) {
      io.stderr.write(`${describeError(error, context.redactor, context.logFile)}\n`);
    }
    return code;
  }
}
