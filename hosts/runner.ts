// CommandHost: everything a Host does, built on one primitive that a transport supplies: start a
// shell command line and get its stdin, stdout, stderr and exit. Wrapping, sudo prompts, output
// streaming, timeouts and killing on the host, errors and redaction live here, once, for SSH and
// for localhost alike.

import type { Readable, Writable } from "node:stream";
import { StringDecoder } from "node:string_decoder";
import { RemoteCommandError } from "../workflow/errors.js";
import type { Redactor } from "../workflow/redact.js";
import type { ExecOptions, ExecResult, FileOptions, Host, WriteFileOptions } from "./host.js";
import { GO_LINE, StderrParser, shellQuote, wrapCommand } from "./sudo.js";
import { uploadFile, writeFileAtomic } from "./upload.js";

export interface RawProcess {
  stdin: Writable;
  stdout: Readable;
  stderr: Readable;
  /** Settles once the process has exited and its output has been read to the end. */
  exit: Promise<RawExit>;
  /** Stops talking to the process (closes the channel / our pipes); does not kill anything. */
  close(): void;
}

/** `code` and `signal` are both null when the transport went away before the process exited. */
export interface RawExit {
  code: number | null;
  signal: string | null;
}

/** `control` is for the kill commands, which must not wait behind the commands they kill. */
export type Lane = "command" | "control";

export interface CommandHostOptions {
  /** The run's redactor; the sudo password is added to it. */
  redactor: Redactor;
  /** For sudo as a non-root user when sudo asks for one. */
  sudoPassword?: string;
}

interface RunOptions extends ExecOptions {
  lane?: Lane;
}

interface RawResult {
  exitCode: number;
  stdout: Buffer;
  stderr: Buffer;
}

const STDERR_TAIL = 2000;
const KILL_TIMEOUT_MS = 15_000;
// Seconds between SIGTERM and SIGKILL for the process group of a timed-out command.
const KILL_GRACE_S = 5;

/** A long script is named in errors by its first line, so the reason stays readable. */
export function abbreviate(command: string, max = 120): string {
  const lines = command.trim().split("\n");
  const first = lines[0] ?? "";
  const cut = first.length > max ? `${first.slice(0, max)}…` : first;
  return lines.length > 1 || first.length > max ? `${cut} … (${lines.length} lines)` : first;
}

export abstract class CommandHost implements Host {
  abstract readonly label: string;
  abstract readonly user: string;
  protected readonly redactor: Redactor;
  readonly #sudoPassword: string | undefined;

  constructor(options: CommandHostOptions) {
    this.redactor = options.redactor;
    this.#sudoPassword = options.sudoPassword;
    if (options.sudoPassword) options.redactor.addSecret(options.sudoPassword);
  }

  /** Starts `command` (a complete shell command line) on the host. */
  protected abstract start(command: string, lane: Lane, signal?: AbortSignal): Promise<RawProcess>;
  abstract connect(signal?: AbortSignal): Promise<void>;
  abstract close(): Promise<void>;

  toString(): string {
    return this.label;
  }

  async exec(command: string, options: ExecOptions = {}): Promise<ExecResult> {
    const result = await this.#run(command, options);
    return { exitCode: result.exitCode, stdout: result.stdout.toString(), stderr: result.stderr.toString() };
  }

  async readFile(path: string, options: FileOptions = {}): Promise<Buffer> {
    return (await this.#run(`cat -- ${shellQuote(path)}`, options)).stdout;
  }

  writeFile(path: string, data: string | Buffer, options: WriteFileOptions = {}): Promise<void> {
    return writeFileAtomic(this, path, typeof data === "string" ? Buffer.from(data) : data, options);
  }

  upload(localPath: string, remotePath: string, options: WriteFileOptions = {}): Promise<void> {
    return uploadFile(this, localPath, remotePath, options);
  }

  /** exec with the output as bytes, for file contents. */
  async #run(command: string, options: RunOptions = {}): Promise<RawResult> {
    const shown = options.sensitive ? "[sensitive command]" : abbreviate(this.redactor.redact(command));
    const fail = (exitCode: number | null, reason: string, cause?: unknown) =>
      new RemoteCommandError(this.label, shown, exitCode, this.redactor.redact(reason), { cause });
    options.signal?.throwIfAborted();

    const sudo = options.sudo === true && this.user !== "root";
    const password = sudo ? this.#sudoPassword : undefined;
    const wrapped = wrapCommand(command, { sudo, sudoPassword: password !== undefined });
    const lane = options.lane ?? "command";
    const proc = await this.start(wrapped.command, lane, options.signal);

    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    const onOutput = options.sensitive ? undefined : options.onOutput;
    const lines = {
      stdout: new LineSplitter((line) => onOutput?.(this.redactor.redact(line), "stdout")),
      stderr: new LineSplitter((line) => onOutput?.(this.redactor.redact(line), "stderr")),
    };
    const parser = new StderrParser(wrapped.markers);
    let prompts = 0;
    let pgid: number | undefined;
    // Set when the run must end early (timeout, abort, stdin failure); the exit is then not awaited.
    let stop: (reason: string, cause?: unknown) => void = () => {};
    const stopped = new Promise<{ reason: string; cause: unknown }>((resolve) => {
      stop = (reason, cause) => resolve({ reason, cause });
    });

    proc.stdin.on("error", () => {}); // EPIPE when the command does not read its stdin; its exit tells.
    proc.stdout.on("data", (chunk: Buffer) => {
      stdout.push(chunk);
      lines.stdout.push(chunk);
    });
    proc.stderr.on("data", (chunk: Buffer) => {
      for (const event of parser.push(chunk)) {
        if (event.type === "data") {
          stderr.push(event.data);
          lines.stderr.push(event.data);
        } else if (event.type === "prompt") {
          prompts++;
          // A second prompt means the password was wrong: end stdin so sudo gives up instead of
          // waiting, and say so below. The password is never sent twice.
          if (prompts === 1 && password !== undefined) proc.stdin.write(`${password}\n`);
          else proc.stdin.end();
        } else {
          pgid = event.pgid;
          if (options.signal?.aborted) proc.stdin.end();
          else sendStdin(proc.stdin, options.stdin, (error) => stop("reading its stdin failed", error));
        }
      }
    });

    const timer =
      options.timeoutMs === undefined
        ? undefined
        : setTimeout(() => stop(`timed out after ${formatMs(options.timeoutMs ?? 0)}`), options.timeoutMs);
    const onAbort = () => stop("aborted", options.signal?.reason);
    options.signal?.addEventListener("abort", onAbort, { once: true });
    try {
      const outcome = await Promise.race([
        proc.exit.then((exit) => ({ exit })),
        stopped.then((stopping) => ({ stopping })),
      ]);
      if ("stopping" in outcome) {
        const { reason, cause } = outcome.stopping;
        let killed = "";
        if (pgid !== undefined && lane === "command") killed = await this.#kill(pgid, sudo);
        proc.close();
        throw fail(null, `${reason}${killed}`, cause);
      }
      const { exit } = outcome;
      const rest = parser.flush();
      stderr.push(rest);
      lines.stderr.push(rest);
      lines.stdout.end();
      lines.stderr.end();
      const err = Buffer.concat(stderr);
      if (exit.code === null) {
        throw fail(null, exit.signal ? `by SIG${exit.signal}` : "the connection closed before it finished");
      }
      if (sudo && !parser.started) {
        if (prompts > 1) throw fail(exit.code, `sudo rejected the password for ${this.user}`);
        if (prompts === 0 && password === undefined && exit.code !== 0) {
          throw fail(exit.code, `sudo needs a password for ${this.user} and none was given: ${tail(err)}`);
        }
      }
      if (exit.code !== 0 && !options.allowFailure) throw fail(exit.code, tail(err));
      return { exitCode: exit.code, stdout: Buffer.concat(stdout), stderr: err };
    } finally {
      if (timer) clearTimeout(timer);
      options.signal?.removeEventListener("abort", onAbort);
    }
  }

  /** Kills a command's process group on the host: SIGTERM, then SIGKILL after a grace period. */
  async #kill(pgid: number, sudo: boolean): Promise<string> {
    // `kill -SIG -N` (no `--`: dash's kill rejects it) signals process group N. A member that is
    // only a zombie holds no lock any more, so "alive" ignores zombies when ps can tell them apart.
    const script = [
      `kill -TERM -${pgid} 2>/dev/null || exit 0`,
      "if command -v ps >/dev/null; then",
      `  alive() { ps -A -o pgid=,stat= | grep -q '^ *${pgid} [^Z]'; }`,
      "else",
      `  alive() { kill -0 -${pgid} 2>/dev/null; }`,
      "fi",
      "i=0",
      "while alive; do",
      `  i=$((i+1)); if [ $i -ge ${KILL_GRACE_S * 10} ]; then kill -KILL -${pgid}; exit 0; fi; sleep 0.1`,
      "done",
    ].join("\n");
    try {
      await this.#run(script, { sudo, lane: "control", timeoutMs: KILL_TIMEOUT_MS });
      return " (its process group was killed on the host)";
    } catch (error) {
      return ` (killing its process group ${pgid} on the host failed: ${(error as Error).message})`;
    }
  }
}

function sendStdin(stdin: Writable, data: ExecOptions["stdin"], onError: (error: unknown) => void): void {
  stdin.write(GO_LINE);
  if (data === undefined || typeof data === "string" || Buffer.isBuffer(data)) {
    stdin.end(data);
    return;
  }
  data.once("error", onError);
  data.pipe(stdin);
}

function tail(stderr: Buffer): string {
  const text = stderr.toString().trim();
  return text.length > STDERR_TAIL ? `…${text.slice(-STDERR_TAIL)}` : text;
}

function formatMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

/** Turns chunks into complete lines (a final unterminated line is flushed by `end`). */
class LineSplitter {
  #decoder = new StringDecoder("utf8");
  #partial = "";

  constructor(private readonly emit: (line: string) => void) {}

  push(chunk: Buffer): void {
    const lines = (this.#partial + this.#decoder.write(chunk)).split("\n");
    this.#partial = lines.pop() ?? "";
    for (const line of lines) this.emit(line.replace(/\r$/, ""));
  }

  end(): void {
    const rest = this.#partial + this.#decoder.end();
    this.#partial = "";
    if (rest !== "") this.emit(rest.replace(/\r$/, ""));
  }
}
