// Human-readable lines for events: used by the plain (non-TTY) renderer and the run's log file.
import type { RunEvent } from "../workflow/events.js";

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}

/** One line per event worth a human's attention; undefined for events that add nothing. */
export function formatEvent(event: RunEvent): string | undefined {
  switch (event.type) {
    case "run.start":
      return `${event.command}${event.dryRun ? " (dry run: nothing will be changed)" : ""}`;
    case "phase.start":
      return `[${event.phase}] ${event.title}${event.hosts ? ` on ${event.hosts.length} host(s)` : ""}`;
    case "phase.end":
      if (event.status === "ok") return `[${event.phase}] done in ${seconds(event.durationMs)}`;
      if (event.status === "skipped") return `[${event.phase}] skipped: ${event.reason ?? ""}`;
      return `[${event.phase}] ${event.status}${event.error ? `: ${event.error.message}` : ""}`;
    case "host.start":
      return undefined;
    case "host.end":
      if (event.status === "ok") return `[${event.phase}] ${event.host}: ok (${seconds(event.durationMs)})`;
      return `[${event.phase}] ${event.host}: ${event.status}${event.error ? `: ${event.error.message}` : ""}`;
    case "change":
      return `[${event.phase}] ${event.host}: ${event.applied ? "" : "would "}${event.description}`;
    case "log":
      return `[${event.phase}] ${event.host ? `${event.host}: ` : ""}${event.level === "warn" ? "warning: " : ""}${event.message}`;
    case "check":
      return event.status === "ok"
        ? undefined
        : `[${event.phase}] ${event.host}: [${event.check}] ${event.status}: ${event.message}`;
    case "run.end":
      return `${event.command} ${event.status} in ${seconds(event.durationMs)}`;
  }
}

/** The per-host list of what changed (or would change) that ends a run. */
export function formatChanges(changes: Record<string, string[]>, dryRun: boolean): string {
  const targets = Object.entries(changes);
  if (targets.length === 0) return dryRun ? "Nothing would change." : "Nothing changed.";
  const heading = dryRun ? "Would change:" : "Changed:";
  const blocks = targets.map(
    ([target, list]) => `  ${target}:\n${list.map((item) => `    - ${item}`).join("\n")}`,
  );
  return `${heading}\n${blocks.join("\n")}`;
}
