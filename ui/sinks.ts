// Event sinks: JSON lines, plain lines, the log file, and the redacting fan-out in front of them.
import { appendFileSync, closeSync, mkdirSync, openSync } from "node:fs";
import { join } from "node:path";
import { EVENT_VERSION, type EventSink, type RunEvent } from "../workflow/events.js";
import type { Redactor } from "../workflow/redact.js";
import { formatEvent } from "./lines.js";

export interface TextOutput {
  write(text: string): unknown;
}

/** Every sink sees the event only after the redactor has: no secret reaches any output. */
export function redactingSink(redactor: Redactor, sinks: readonly EventSink[]): EventSink {
  return (event) => {
    const safe = redactor.redactDeep(event);
    for (const sink of sinks) sink(safe);
  };
}

/** `--output json`: one versioned JSON object per line, nothing else on this stream. */
export function jsonSink(out: TextOutput, now: () => Date = () => new Date()): EventSink {
  return (event) => {
    out.write(`${JSON.stringify({ v: EVENT_VERSION, ts: now().toISOString(), ...event })}\n`);
  };
}

export function plainSink(out: TextOutput): EventSink {
  return (event) => {
    const line = formatEvent(event);
    if (line !== undefined) out.write(`${line}\n`);
  };
}

/**
 * The run's log file under `<stateDir>/<cluster>/logs/`, directories 0700 and the file 0600 (it
 * names hosts and commands). Lines carry timestamps; writes are synchronous so a crash keeps them.
 */
export function logFileSink(
  dir: string,
  command: string,
  now: () => Date = () => new Date(),
): { path: string; sink: EventSink } {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const stamp = now().toISOString().replace(/[:.]/g, "-");
  const path = join(dir, `${stamp}-${command}.log`);
  closeSync(openSync(path, "a", 0o600));
  const sink: EventSink = (event: RunEvent) => {
    const line = formatEvent(event) ?? `${event.type}`;
    appendFileSync(path, `${now().toISOString()} ${line}\n`);
  };
  return { path, sink };
}
