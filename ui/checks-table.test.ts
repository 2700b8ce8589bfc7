import { describe, expect, it } from "vitest";
import { formatChecks } from "./checks-table.js";

describe("formatChecks", () => {
  it("draws one row per check and one column per host, then what to do about each cell not ok", () => {
    const text = formatChecks([
      {
        host: "cp1",
        check: "NumCPU",
        status: "error",
        message: "1 CPU(s); a control plane needs at least 2",
      },
      { host: "cp1", check: "Swap", status: "ok", message: "swap is off" },
      { host: "w1", check: "Swap", status: "fixable", message: "swap is on: will be fixed by prepare" },
    ]);
    expect(text).toBe(
      [
        "CHECK   cp1    w1",
        "NumCPU  ERROR  -",
        "Swap    ok     prepare",
        "",
        "  cp1: [NumCPU] error: 1 CPU(s); a control plane needs at least 2",
        "  w1: [Swap] swap is on: will be fixed by prepare",
        "",
        "1 check(s) failed.",
      ].join("\n"),
    );
  });

  it("says the hosts are ready when nothing failed", () => {
    expect(formatChecks([{ host: "cp1", check: "Swap", status: "ok", message: "swap is off" }])).toBe(
      "CHECK  cp1\nSwap   ok\n\nPreflight passed: the hosts are ready for prepare.",
    );
  });
});
