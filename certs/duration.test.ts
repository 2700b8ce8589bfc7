import { describe, expect, it } from "vitest";
import { parseGoDuration, shortHumanDuration } from "./duration.js";

describe("parseGoDuration", () => {
  it("reads Go durations as kubeadm's validity periods take them", () => {
    expect(parseGoDuration("8760h")).toBe(8760 * 3_600_000);
    expect(parseGoDuration("87600h")).toBe(87600 * 3_600_000);
    expect(parseGoDuration("1h30m")).toBe(90 * 60_000);
    expect(parseGoDuration("90m")).toBe(90 * 60_000);
    expect(parseGoDuration("1.5h")).toBe(90 * 60_000);
    expect(parseGoDuration("2m30.5s")).toBe(150_500);
    expect(parseGoDuration("1500ms")).toBe(1500);
  });

  it("rejects what is not a positive duration", () => {
    for (const text of ["", "8760", "h", "1d", "-1h", "0s", "1h 30m", "1H"]) {
      expect([text, parseGoDuration(text)]).toEqual([text, undefined]);
    }
  });
});

describe("shortHumanDuration", () => {
  it("prints residual time as kubeadm's check-expiration does", () => {
    expect(shortHumanDuration(45_000)).toBe("45s");
    expect(shortHumanDuration(12 * 60_000)).toBe("12m");
    expect(shortHumanDuration(5 * 3_600_000)).toBe("5h");
    expect(shortHumanDuration(8760 * 3_600_000 - 1)).toBe("364d");
    expect(shortHumanDuration(87600 * 3_600_000)).toBe("10y");
    expect(shortHumanDuration(-500)).toBe("0s");
    expect(shortHumanDuration(-5_000)).toBe("<invalid>");
  });
});
