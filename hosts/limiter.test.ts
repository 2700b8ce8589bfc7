import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { Limiter } from "./limiter.js";

describe("Limiter", () => {
  it("never lets more than `limit` holders in at once", async () => {
    const limiter = new Limiter(3);
    let peak = 0;
    await Promise.all(
      Array.from({ length: 12 }, async () => {
        const release = await limiter.acquire();
        peak = Math.max(peak, limiter.active);
        await sleep(5);
        release();
      }),
    );
    expect(peak).toBe(3);
    expect(limiter.active).toBe(0);
  });

  it("stops waiting when the signal aborts, without taking a slot", async () => {
    const limiter = new Limiter(1);
    const release = await limiter.acquire();
    const controller = new AbortController();
    const waiting = limiter.acquire(controller.signal);
    controller.abort(new Error("cancelled"));
    await expect(waiting).rejects.toThrow("cancelled");
    release();
    expect(limiter.active).toBe(0);
    (await limiter.acquire())();
  });

  it("ignores a second release", async () => {
    const limiter = new Limiter(1);
    const release = await limiter.acquire();
    release();
    release();
    expect(limiter.active).toBe(0);
  });
});
