import { describe, expect, it } from "vitest";
import { InterruptedError } from "./errors.js";
import { type Poll, waitFor } from "./wait.js";

/** A poll that is pending with `states[i]` on the i-th call and done after the last one. */
function pollThrough(states: string[]) {
  let calls = 0;
  return async (): Promise<Poll<number, string>> => {
    const state = states[calls];
    calls += 1;
    return state === undefined ? { done: true, value: calls } : { done: false, pending: state };
  };
}

function options(timeoutMs: number, signal = new AbortController().signal) {
  const lines: string[] = [];
  return {
    lines,
    options: {
      what: "the thing",
      timing: { timeoutMs, intervalMs: 1 },
      signal,
      log: (line: string) => lines.push(line),
      describe: (pending: string) => pending,
    },
  };
}

describe("waitFor", () => {
  it("polls until done and says what it waits for whenever the state changes", async () => {
    const { lines, options: opts } = options(60_000);
    expect(await waitFor(opts, pollThrough(["a missing", "a missing", "b missing"]))).toEqual({
      done: true,
      value: 4,
    });
    expect(lines).toEqual([
      "waiting for the thing (0 s of 60 s): a missing",
      "waiting for the thing (0 s of 60 s): b missing",
    ]);
  });

  it("returns the last pending state when time is up", async () => {
    const { options: opts } = options(20);
    const pending = async (): Promise<Poll<number, string>> => ({ done: false, pending: "still b" });
    expect(await waitFor(opts, pending)).toEqual({ done: false, pending: "still b" });
  });

  it("stops with InterruptedError when aborted", async () => {
    const controller = new AbortController();
    const { options: opts } = options(60_000, controller.signal);
    setTimeout(() => controller.abort(), 20);
    const pending = async (): Promise<Poll<number, string>> => ({ done: false, pending: "x" });
    await expect(waitFor(opts, pending)).rejects.toBeInstanceOf(InterruptedError);
  });
});
