// Waiting on the cluster (a pod CIDR on every node, pods that finish): poll a read-only state, say
// what is polled and how long it has taken, and hand the last state back on a timeout, so the
// caller words the error from what was still missing.
import { setTimeout as sleep } from "node:timers/promises";
import { InterruptedError } from "./errors.js";

export interface WaitTiming {
  timeoutMs: number;
  /** The pause between two polls. */
  intervalMs: number;
}

export type Poll<T, P> = { done: true; value: T } | { done: false; pending: P };

export interface WaitOptions<P> {
  /** What is polled, for progress lines: `a pod CIDR on every node`. */
  what: string;
  timing: WaitTiming;
  signal: AbortSignal;
  log: (message: string) => void;
  /** The pending state in words, for progress lines. */
  describe: (pending: P) => string;
}

/** A progress line at least this often while the state stays the same. */
const PROGRESS_EVERY_MS = 15_000;

export function seconds(ms: number): string {
  return `${Math.round(ms / 1000)} s`;
}

/**
 * Polls until done or out of time, with a progress line whenever the pending state changes.
 * Returns the last poll: `done: false` means it timed out with that state still pending.
 */
export async function waitFor<T, P>(
  options: WaitOptions<P>,
  poll: () => Promise<Poll<T, P>>,
): Promise<Poll<T, P>> {
  const { what, timing, signal, log, describe } = options;
  const started = performance.now();
  let shown = "";
  let shownAt = started;
  for (;;) {
    if (signal.aborted) throw new InterruptedError({ cause: signal.reason });
    const result = await poll();
    const now = performance.now();
    if (result.done || now - started >= timing.timeoutMs) return result;
    const state = describe(result.pending);
    if (state !== shown || now - shownAt >= PROGRESS_EVERY_MS) {
      log(`waiting for ${what} (${seconds(now - started)} of ${seconds(timing.timeoutMs)}): ${state}`);
      shown = state;
      shownAt = now;
    }
    await sleep(timing.intervalMs, undefined, { signal }).catch((error: unknown) => {
      throw signal.aborted ? new InterruptedError({ cause: signal.reason }) : error;
    });
  }
}
