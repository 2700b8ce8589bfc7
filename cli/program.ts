// The command tree. Commands parse options and call into config/ and workflow/; errors come back
// here and only here become exit codes.
import { join, resolve } from "node:path";
import { Command, CommanderError, Option } from "commander";
import { Redactor } from "../workflow/redact.js";
import { describeError, EXIT_OK, exitCodeFor } from "./exit.js";
import type { CliIo } from "./io.js";

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

/** Where bundles verified once are remembered (by file identity), shared by every cluster. */
export function bundleCacheDir(context: CliContext): string {
  return join(context.stateDir, "cache");
}

/** Adds one command (or a group) to the program. */
export type CommandInstaller = (program: Command, context: CliContext) => void;

interface CommandEntry {
  name: string;
  summary: string;
  load: () => Promise<CommandInstaller>;
}

/**
 * Every command kubeforge has, in the order `--help` lists them. Only the command being run is
 * loaded (ssh2, TypeBox and zx cost hundreds of milliseconds at start-up); the others are listed.
 */
const COMMANDS: readonly CommandEntry[] = [
  {
    name: "config",
    summary: "Check and explain the cluster file",
    load: async () => (await import("./config-command.js")).addConfigCommands,
  },
  {
    name: "preflight",
    summary: "Check that the hosts can become Kubernetes nodes (changes nothing)",
    load: async () => (await import("./preflight-command.js")).addPreflightCommand,
  },
  {
    name: "prepare",
    summary:
      "Ready the hosts for the kubelet from an offline bundle: OS settings, containerd, binaries, images",
    load: async () => (await import("./prepare-command.js")).addPrepareCommand,
  },
  {
    name: "init",
    summary: "Set up the first control-plane node, as kubeadm init",
    load: async () => (await import("./init-command.js")).addInitCommand,
  },
  {
    name: "join",
    summary: "Join the workers to the cluster, as kubeadm join, all at once",
    load: async () => (await import("./join-command.js")).addJoinCommand,
  },
  {
    name: "apply",
    summary: "Converge the whole cluster file: init if needed, join what has not joined, validate",
    load: async () => (await import("./apply-command.js")).addApplyCommand,
  },
  {
    name: "token",
    summary: "Bootstrap tokens in the cluster, as kubeadm token manages them",
    load: async () => (await import("./token-command.js")).addTokenCommands,
  },
  {
    name: "reset",
    summary: "Undo what kubeforge and the kubelet did to the hosts, as kubeadm reset",
    load: async () => (await import("./reset-command.js")).addResetCommand,
  },
  {
    name: "certs",
    summary: "The cluster's PKI in the local store, as kubeadm lays it out",
    load: async () => (await import("./certs-command.js")).addCertsCommands,
  },
  {
    name: "kubeconfig",
    summary: "kubeconfig files for admins and users",
    load: async () => (await import("./certs-command.js")).addKubeconfigCommands,
  },
  {
    name: "bundle",
    summary: "Offline bundles: binaries, images and OS packages in one verified file",
    load: async () => (await import("./bundle-command.js")).addBundleCommands,
  },
  {
    name: "images",
    summary: "The container images a cluster runs, as kubeadm of its version names them",
    load: async () => (await import("./images-command.js")).addImagesCommands,
  },
  {
    name: "lab",
    summary: "Local test hosts (systemd-nspawn, real sshd and systemd) with a ready cluster file; needs root",
    load: async () => (await import("./lab-command.js")).addLabCommands,
  },
];

// Global options that take a value, so the command name can be found after them.
const GLOBAL_OPTIONS_WITH_VALUE = new Set(["-o", "--output", "--state-dir"]);

/** The command named on the line: the first word that is neither an option nor an option's value. */
function commandName(argv: readonly string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i] ?? "";
    if (GLOBAL_OPTIONS_WITH_VALUE.has(word)) i++;
    else if (!word.startsWith("-")) return word;
  }
  return undefined;
}

/** The installers for a command line: the named command's own, and one-line entries for the rest. */
async function installersFor(argv: readonly string[]): Promise<CommandInstaller[]> {
  const wanted = commandName(argv);
  return Promise.all(
    COMMANDS.map(async (entry) =>
      entry.name === wanted
        ? await entry.load()
        : (program: Command) => {
            program.command(entry.name).description(entry.summary);
          },
    ),
  );
}

export function buildProgram(context: CliContext, commands: readonly CommandInstaller[]): Command {
  const { io } = context;
  const program = new Command("kubeforge")
    .description(
      "Bootstrap and provision Kubernetes clusters from one workstation over SSH: kubeadm's layout, in parallel, resumable.",
    )
    .version(io.version, "-V, --version")
    .addOption(outputOption("-o, --output <format>").default("text"))
    .addOption(
      stateDirOption().default(
        io.env.KUBEFORGE_STATE_DIR ?? join(io.homeDir, ".kubeforge"),
        "$KUBEFORGE_STATE_DIR or ~/.kubeforge",
      ),
    )
    // Global options before the command name belong to the program, after it to the command: so a
    // command may give -o its own meaning (`bundle create -o FILE`), as kubectl's commands do.
    .enablePositionalOptions()
    .hook("preAction", (_program, command) => {
      const options = { ...program.opts<GlobalOptions>(), ...definedOptions(command) };
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
  for (const command of program.commands) {
    applyExitOverride(command);
    addGlobalOptions(command);
  }
  return program;
}

interface GlobalOptions {
  output: "text" | "json";
  stateDir: string;
}

function outputOption(flags: string): Option {
  return new Option(flags, "text, or json: versioned JSON events on stdout, human text on stderr").choices([
    "text",
    "json",
  ]);
}

function stateDirOption(): Option {
  return new Option("--state-dir <dir>", "where kubeforge keeps each cluster's PKI and logs, 0700");
}

/** The global options given after the command name (no defaults there: the program's apply). */
function definedOptions(command: Command): Partial<GlobalOptions> {
  const { output, stateDir } = command.opts<Partial<GlobalOptions>>();
  return { ...(output && { output }), ...(stateDir && { stateDir }) };
}

/** Every command also takes the global options after its name, unless it uses the flag itself. */
function addGlobalOptions(command: Command): void {
  const taken = (flag: string) =>
    command.options.some((option) => option.short === flag || option.long === flag);
  if (!taken("--output"))
    command.addOption(outputOption(taken("-o") ? "--output <format>" : "-o, --output <format>"));
  if (!taken("--state-dir")) command.addOption(stateDirOption());
  for (const child of command.commands) addGlobalOptions(child);
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
  commands?: readonly CommandInstaller[],
): Promise<number> {
  const redactor = new Redactor();
  const context: CliContext = {
    io,
    redactor,
    notify: (message) => io.stderr.write(`${redactor.redact(message)}\n`),
    output: "text",
    stateDir: join(io.homeDir, ".kubeforge"),
  };
  try {
    const program = buildProgram(context, commands ?? (await installersFor(argv)));
    await program.parseAsync([...argv], { from: "user" });
    return EXIT_OK;
  } catch (error) {
    const code = exitCodeFor(error);
    // Commander has already printed its own usage errors.
    if (!(error instanceof CommanderError)) {
      io.stderr.write(`${describeError(error, context.redactor, context.logFile)}\n`);
    }
    return code;
  }
}
