// The one polling loop. Waiting on the cluster (a pod CIDR on every node, pods that finish, a Node
// registering, a signature): poll a read-only state, say what is polled and how long it has taken,
// and hand the last state back on a timeout, so the caller words the error from what was still
// missing. waitUntil is that loop for a value that may fail on the way: it throws the timeout itself.
import { setTimeout as sleep } from "node:timers/promises";
import { InterruptedError, messageOf } from "./errors.js";

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
  /** Ends the wait with InterruptedError (Ctrl-C); absent: nothing interrupts it. */
  signal?: AbortSignal | undefined;
  log: (message: string) => void;
  /** The pending state in words, for progress lines. */
  describe: (pending: P) => string;
}

/** A progress line at least this often while the state stays the same. */
const PROGRESS_EVERY_MS = 15_000;

export function seconds(ms: number): string {
  return `${Math.round(ms / 1000)} s`;
}

/** `20 ms` below a second, else seconds(). */
export function duration(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : seconds(ms);
}

const interrupted = (signal: AbortSignal | undefined) => new InterruptedError({ cause: signal?.reason });

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
    if (signal?.aborted) throw interrupted(signal);
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
      throw signal?.aborted ? interrupted(signal) : error;
    });
  }
}

export interface UntilOptions extends Omit<WaitOptions<never>, "describe"> {
  /** Errors that are a state worth polling on; any other ends the wait at once. Default: none. */
  retryOn?: (error: unknown) => boolean;
  /** Said after the timeout: what to check. */
  hint?: string;
}

/** What a waitUntil poll is at: a state in words, or an error it retries. */
type Pending = { state: string } | { error: unknown };

const describePending = (pending: Pending) =>
  "error" in pending ? `error: ${messageOf(pending.error)}` : pending.state;

/**
 * waitFor for a poll that may fail on the way: errors `retryOn` picks are its pending state (the
 * progress lines show them). A timeout throws what was polled, the timeout, the tries, the last
 * state or error and the hint; a wait that timed out on its first try (timeout 0) throws that
 * try's error as it is. When it had to wait, a last line says how long it took.
 */
export async function waitUntil<T>(options: UntilOptions, poll: () => Promise<Poll<T, string>>): Promise<T> {
  const { what, timing, signal, retryOn = () => false } = options;
  const started = performance.now();
  let tries = 0;
  const result = await waitFor<T, Pending>({ ...options, describe: describePending }, async () => {
    tries += 1;
    try {
      const polled = await poll();
      return polled.done ? polled : { done: false, pending: { state: polled.pending } };
    } catch (error) {
      // An aborted request fails too: the interruption is the reason, not the request.
      if (signal?.aborted) throw interrupted(signal);
      if (!retryOn(error)) throw error;
      return { done: false, pending: { error } };
    }
  });
  if (result.done) {
    if (tries > 1) options.log(`${what}: done after ${seconds(performance.now() - started)}`);
    return result.value;
  }
  const last = result.pending;
  if (tries === 1 && "error" in last) throw last.error;
  const lastText = "error" in last ? `; last error: ${messageOf(last.error)}` : `; last state: ${last.state}`;
  throw new Error(
    `timed out after ${duration(timing.timeoutMs)} waiting for ${what} (${tries} ${tries === 1 ? "try" : "tries"}, every ${duration(timing.intervalMs)})${lastText}${options.hint ? `. ${options.hint}` : ""}`,
    "error" in last ? { cause: last.error } : undefined,
  );
}
