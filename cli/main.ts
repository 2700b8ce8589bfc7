// The process entry point: the only module that reads process.* and sets the exit code.
import { setMaxListeners } from "node:events";
import { readFileSync } from "node:fs";
import { homedir } from "node:os";

function ownVersion(): string {
  // Bundled into dist/bundle/, compiled to dist/cli/, run from cli/ under test: two or one levels up.
  for (const relative of ["../../package.json", "../package.json"]) {
    try {
      return JSON.parse(readFileSync(new URL(relative, import.meta.url), "utf8")).version;
    } catch {}
  }
  return "unknown";
}

const argv = process.argv.slice(2);
// `--version` is what scripts call most; answer it before loading the command tree.
if (argv.length === 1 && (argv[0] === "--version" || argv[0] === "-V")) {
  process.stdout.write(`${ownVersion()}\n`);
} else {
  const controller = new AbortController();
  // Every command in flight on every host listens for the abort: hundreds with many hosts, by design.
  setMaxListeners(0, controller.signal);
  let interrupts = 0;
  const interrupt = (signal: NodeJS.Signals) => {
    // The first Ctrl-C lets running hosts stop cleanly; a second one ends the process now.
    if (++interrupts > 1) process.exit(130);
    controller.abort(new Error(`received ${signal}`));
  };
  process.on("SIGINT", interrupt);
  process.on("SIGTERM", interrupt);
  const { runCli } = await import("./program.js");
  const promptSecret = async (question: string): Promise<string> => {
    const { default: enquirer } = await import("enquirer");
    const answer = await enquirer.prompt<{ secret: string }>({
      type: "password",
      name: "secret",
      message: question,
    });
    return answer.secret;
  };
  const confirm = async (question: string): Promise<boolean> => {
    const { default: enquirer } = await import("enquirer");
    // On stderr: with `-o json`, stdout holds nothing but events.
    const answer = await enquirer.prompt<{ yes: boolean }>({
      type: "confirm",
      name: "yes",
      message: question,
      initial: false,
      stdout: process.stderr,
    });
    return answer.yes;
  };
  process.exitCode = await runCli(argv, {
    env: process.env,
    cwd: process.cwd(),
    homeDir: homedir(),
    stdout: process.stdout,
    stderr: process.stderr,
    signal: controller.signal,
    version: ownVersion(),
    ...(process.stdin.isTTY && { promptSecret, confirm }),
  });
}
