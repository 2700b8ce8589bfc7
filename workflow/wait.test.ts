import { describe, expect, it } from "vitest";
import { InterruptedError } from "./errors.js";
import { type Poll, waitFor, waitUntil } from "./wait.js";

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

describe("waitUntil", () => {
  const transient = new Error("connect ECONNREFUSED 198.18.0.11:6443");
  const retryOn = (error: unknown) => error === transient;

  /** Throws `transient` on the first call, is not there yet on the second, then done. */
  function flaky() {
    let calls = 0;
    return async (): Promise<Poll<string, string>> => {
      calls += 1;
      if (calls === 1) throw transient;
      return calls === 2 ? { done: false, pending: "no Node cp1 yet" } : { done: true, value: "cp1" };
    };
  }

  it("polls through retried errors and pending states, saying each, then how long it took", async () => {
    const { lines, options: opts } = options(60_000);
    expect(await waitUntil({ ...opts, what: "Node cp1", retryOn }, flaky())).toBe("cp1");
    expect(lines).toEqual([
      "waiting for Node cp1 (0 s of 60 s): error: connect ECONNREFUSED 198.18.0.11:6443",
      "waiting for Node cp1 (0 s of 60 s): no Node cp1 yet",
      "Node cp1: done after 0 s",
    ]);
  });

  it("on a timeout says what it polled, the timeout, the tries, the last error and the hint", async () => {
    const { lines, options: opts } = options(30);
    const error = await waitUntil(
      { ...opts, what: "Node cp1", retryOn, hint: "Is the kubelet running?" },
      () => Promise.reject(transient),
    ).catch((e: unknown) => e);
    expect((error as Error).message).toMatch(
      /^timed out after 30 ms waiting for Node cp1 \(\d+ tries, every 1 ms\); last error: connect ECONNREFUSED 198\.18\.0\.11:6443\. Is the kubelet running\?$/,
    );
    expect((error as Error).cause).toBe(transient);
    expect(lines[0]).toBe("waiting for Node cp1 (0 s of 0 s): error: connect ECONNREFUSED 198.18.0.11:6443");
  });

  it("on a timeout without an error says the last pending state", async () => {
    const { options: opts } = options(20);
    await expect(
      waitUntil({ ...opts, what: "a signature" }, async () => ({ done: false, pending: "no key yet" })),
    ).rejects.toThrow(
      /^timed out after 20 ms waiting for a signature \(\d+ tries, every 1 ms\); last state: no key yet$/,
    );
  });

  it("with a timeout of 0 tries once and throws that try's error as it is", async () => {
    const { lines, options: opts } = options(0);
    let calls = 0;
    const once = () => {
      calls += 1;
      return Promise.reject(transient);
    };
    await expect(waitUntil({ ...opts, retryOn }, once)).rejects.toBe(transient);
    expect(calls).toBe(1);
    expect(lines).toEqual([]);
  });

  it("ends at once on an error it does not retry", async () => {
    const { options: opts } = options(60_000);
    const bug = new TypeError("boom");
    let calls = 0;
    const failing = () => {
      calls += 1;
      return Promise.reject(bug);
    };
    await expect(waitUntil({ ...opts, retryOn }, failing)).rejects.toBe(bug);
    expect(calls).toBe(1);
  });

  it("stops with InterruptedError when aborted, also while a poll fails because of it", async () => {
    const controller = new AbortController();
    const { options: opts } = options(60_000, controller.signal);
    setTimeout(() => controller.abort(), 20);
    const aborted = () =>
      Promise.reject(controller.signal.aborted ? new Error("aborted request") : transient);
    await expect(waitUntil({ ...opts, retryOn }, aborted)).rejects.toBeInstanceOf(InterruptedError);
  });
});
