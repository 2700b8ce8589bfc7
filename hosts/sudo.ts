// How every command is started on a host, and how the start is recognised on its stderr.
//
// The wrapper does three things before the command runs:
// - `sudo -S -p <prompt marker>` (or `sudo -n` without a password): sudo writes the unique marker to
//   stderr when it wants the password, and reads the password from stdin. The runner answers only
//   then, so the password never sits in argv, in the environment or in the command's own stdin.
// - `setsid`: the command leads a new process group, which a timeout or abort kills as a whole from a
//   second channel (`kill -TERM -PGID`, as root when the command ran under sudo). Closing an SSH
//   channel does not kill a non-pty command, and OpenSSH 9.2 ignores a "signal" channel request on a
//   non-pty session (both checked against the test hosts); a pty would merge stderr into stdout and
//   mangle binary stdin.
// - It prints a start marker with the group id, then waits for one `go` line on stdin. Only then
//   does the command's stdin flow; if the run was aborted meanwhile, stdin is closed instead and the
//   command never starts, so nothing is left behind even if the abort races the start.
//
// sshd hands the line to the login user's shell (`$SHELL -c`), so it is one simple command that any
// POSIX shell parses the same way; the real command runs under `sh`. Needs util-linux's setsid.
import { randomBytes } from "node:crypto";

/** Quotes for a POSIX shell: the result is one word whatever `value` holds. */
export function shellQuote(value: string): string {
  return /^[\w@%+=:,./-]+$/.test(value) ? value : `'${value.replaceAll("'", `'\\''`)}'`;
}

export const GO_LINE = "go\n";
/** Exit code of the wrapper when it was told not to start the command. */
export const NOT_STARTED_EXIT = 125;

export interface WrapOptions {
  /** Run through sudo (the caller already skips it for root). */
  sudo: boolean;
  /** Whether a sudo password will be supplied: `-S -p marker` instead of `-n`. */
  sudoPassword: boolean;
}

export interface WrappedCommand {
  command: string;
  markers: StartMarkers;
}

export function wrapCommand(command: string, options: WrapOptions): WrappedCommand {
  const markers = newMarkers();
  const inner =
    `printf '%s%s\\n' ${shellQuote(markers.start)} "$$" >&2; ` +
    `IFS= read -r kf_go && [ "$kf_go" = go ] || exit ${NOT_STARTED_EXIT}; ` +
    `exec sh -c "$1"`;
  let sudo = "";
  if (options.sudo) sudo = options.sudoPassword ? `sudo -S -p ${markers.prompt} -- ` : "sudo -n -- ";
  return {
    command: `exec ${sudo}setsid -w sh -c ${shellQuote(inner)} kubeforge ${shellQuote(command)}`,
    markers,
  };
}

export interface StartMarkers {
  /** sudo's `-p` prompt: no `%` (sudo expands those) and no newline. */
  prompt: string;
  /** Printed by the wrapper, followed by the process group id and a newline. */
  start: string;
}

function newMarkers(): StartMarkers {
  const token = randomBytes(9).toString("hex");
  return { prompt: `[kubeforge-sudo-${token}]`, start: `[kubeforge-start-${token}]` };
}

export type StderrEvent =
  | { type: "prompt" }
  | { type: "started"; pgid: number }
  | { type: "data"; data: Buffer };

/**
 * Splits the stderr of a wrapped command into sudo prompts, the start marker and plain data, with
 * the markers removed. Before the start only sudo and the wrapper write to stderr, so markers are
 * looked for only there; afterwards everything is the command's own output.
 */
export class StderrParser {
  #pending = Buffer.alloc(0);
  #started = false;

  constructor(private readonly markers: StartMarkers) {}

  get started(): boolean {
    return this.#started;
  }

  push(chunk: Buffer): StderrEvent[] {
    if (this.#started) return [{ type: "data", data: chunk }];
    this.#pending = Buffer.concat([this.#pending, chunk]);
    const events: StderrEvent[] = [];
    for (;;) {
      const prompt = this.#pending.indexOf(this.markers.prompt);
      const start = this.#pending.indexOf(this.markers.start);
      if (prompt >= 0 && (start < 0 || prompt < start)) {
        this.#emitData(events, this.#pending.subarray(0, prompt));
        events.push({ type: "prompt" });
        this.#pending = this.#pending.subarray(prompt + this.markers.prompt.length);
        continue;
      }
      if (start < 0) break;
      const newline = this.#pending.indexOf(10, start);
      if (newline < 0) break;
      const pgid = Number(this.#pending.subarray(start + this.markers.start.length, newline).toString());
      this.#emitData(events, this.#pending.subarray(0, start));
      events.push({ type: "started", pgid });
      this.#started = true;
      this.#emitData(events, this.#pending.subarray(newline + 1));
      this.#pending = Buffer.alloc(0);
      break;
    }
    if (!this.#started) {
      // Hand on what cannot be the beginning of a marker, keep the rest for the next chunk.
      const keep = partialMarkerLength(this.#pending, [this.markers.prompt, this.markers.start]);
      const startMarkerSeen = this.#pending.indexOf(this.markers.start) >= 0;
      if (!startMarkerSeen) {
        this.#emitData(events, this.#pending.subarray(0, this.#pending.length - keep));
        this.#pending = this.#pending.subarray(this.#pending.length - keep);
      }
    }
    return events;
  }

  /** What is still held back when the stream ends (a marker that never completed). */
  flush(): Buffer {
    const rest = this.#pending;
    this.#pending = Buffer.alloc(0);
    return rest;
  }

  #emitData(events: StderrEvent[], data: Buffer): void {
    if (data.length > 0) events.push({ type: "data", data: Buffer.from(data) });
  }
}

/** Length of the longest suffix of `data` that is a proper prefix of one of `markers`. */
function partialMarkerLength(data: Buffer, markers: readonly string[]): number {
  let longest = 0;
  for (const marker of markers) {
    for (let length = Math.min(marker.length - 1, data.length); length > longest; length--) {
      if (data.subarray(data.length - length).toString("latin1") === marker.slice(0, length)) {
        longest = length;
        break;
      }
    }
  }
  return longest;
}
