// The one place errors become exit codes and final messages: 0 ok, 1 failed, 2 bad input or
// usage, 130 interrupted.
import { CommanderError } from "commander";
import {
  BundleError,
  ConfigError,
  causeChain,
  InternalError,
  InterruptedError,
  PkiError,
  UsageError,
} from "../workflow/errors.js";
import type { Redactor } from "../workflow/redact.js";

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;
export const EXIT_INTERRUPTED = 130;

export function exitCodeFor(error: unknown): number {
  if (error instanceof CommanderError) {
    const done = error.code === "commander.helpDisplayed" || error.code === "commander.version";
    return done || error.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
  }
  const chain = causeChain(error);
  if (chain.some((e) => e instanceof InterruptedError)) return EXIT_INTERRUPTED;
  if (
    chain.some(
      (e) =>
        e instanceof ConfigError ||
        e instanceof BundleError ||
        e instanceof PkiError ||
        e instanceof UsageError,
    )
  )
    return EXIT_USAGE;
  return EXIT_FAILED;
}

/** The final message for an error, redacted; a bug says so and asks for a report. */
export function describeError(error: unknown, redactor: Redactor, logFile?: string): string {
  const chain = causeChain(error);
  const innermost = chain.at(-1);
  const bug =
    chain.some((e) => e instanceof InternalError) ||
    [TypeError, ReferenceError, RangeError, SyntaxError].some((kind) => innermost instanceof kind);
  const message = error instanceof Error ? error.message : String(error);
  const lines = [`error: ${message}`];
  if (bug) {
    const stack = innermost instanceof Error && innermost.stack ? `\n${innermost.stack}` : "";
    lines.push(`This is a bug in kubeforge; please report it with this output.${stack}`);
  }
  if (logFile) lines.push(`The run's log: ${logFile}`);
  return redactor.redact(lines.join("\n"));
}
