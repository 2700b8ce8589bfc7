// The preflight result as a table: one row per check, one column per host, then what to do about
// each cell that is not ok.
import type { CheckResult, CheckStatus } from "../preflight/checks.js";

const CELL: Record<CheckStatus, string> = {
  ok: "ok",
  warning: "warning",
  error: "ERROR",
  fixable: "prepare",
  ignored: "ignored",
};

export function formatChecks(
  results: readonly CheckResult[],
  passed = "Preflight passed: the hosts are ready for prepare.",
): string {
  if (results.length === 0) return "";
  const hosts = [...new Set(results.map((r) => r.host))];
  const checks = [...new Set(results.map((r) => r.check))];
  const cell = (host: string, check: string) => {
    const result = results.find((r) => r.host === host && r.check === check);
    return result ? CELL[result.status] : "-";
  };
  const rows = [
    ["CHECK", ...hosts],
    ...checks.map((check) => [check, ...hosts.map((host) => cell(host, check))]),
  ];
  const widths = rows[0]?.map((_, column) => Math.max(...rows.map((row) => row[column]?.length ?? 0))) ?? [];
  const table = rows.map((row) =>
    row
      .map((text, column) => text.padEnd(widths[column] ?? 0))
      .join("  ")
      .trimEnd(),
  );
  const notes = results
    .filter((r) => r.status !== "ok")
    .map((r) => `  ${r.host}: [${r.check}] ${r.status === "fixable" ? "" : `${r.status}: `}${r.message}`);
  const errors = results.filter((r) => r.status === "error").length;
  const verdict = errors > 0 ? `${errors} check(s) failed.` : passed;
  return [...table, ...(notes.length > 0 ? ["", ...notes] : []), "", verdict].join("\n");
}
