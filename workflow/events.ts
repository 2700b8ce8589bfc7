// What a run reports, as data. Every renderer (listr2 tree, plain lines, JSON lines, the log file)
// consumes the same events, after redaction. `--output json` prints them as versioned JSON lines.

/** Bump when an event's meaning or a field's type changes; adding fields does not bump it. */
export const EVENT_VERSION = 1;

export type Status = "ok" | "failed" | "skipped" | "cancelled";

export interface ErrorInfo {
  kind: string;
  message: string;
}

export interface PlannedPhase {
  path: string;
  title: string;
  depth: number;
}

export type RunEvent =
  | { type: "run.start"; command: string; dryRun: boolean; phases: PlannedPhase[] }
  | { type: "phase.start"; phase: string; title: string; hosts?: string[] }
  | {
      type: "phase.end";
      phase: string;
      status: Status;
      durationMs: number;
      reason?: string;
      error?: ErrorInfo;
    }
  | { type: "host.start"; phase: string; host: string }
  | { type: "host.end"; phase: string; host: string; status: Status; durationMs: number; error?: ErrorInfo }
  | { type: "change"; phase: string; host: string; description: string; applied: boolean }
  | { type: "log"; phase: string; host?: string; level: "info" | "warn"; message: string }
  /** One preflight check on one host; `status` is ok, warning, error, fixable (by prepare) or ignored. */
  | { type: "check"; phase: string; host: string; check: string; status: string; message: string }
  | {
      type: "run.end";
      command: string;
      status: "ok" | "failed" | "interrupted";
      durationMs: number;
      dryRun: boolean;
      /** Per target (host name, or `workstation`), the changes made — or, in a dry run, that would be. */
      changes: Record<string, string[]>;
      error?: ErrorInfo;
    };

export type EventSink = (event: RunEvent) => void;

/** The name changes made on the workstation itself are recorded under. */
export const WORKSTATION = "workstation";

export function errorInfo(error: unknown): ErrorInfo {
  return error instanceof Error
    ? { kind: error.name, message: error.message }
    : { kind: "Error", message: String(error) };
}
