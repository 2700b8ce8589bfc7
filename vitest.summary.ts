import type { RunnerTask, RunnerTestFile } from "vitest";
import type { Reporter } from "vitest/reporters";

// Ends the run with one plain line, `N passed, N failed, N skipped`, which any CI log reader
// understands. A skipped test is counted as skipped, never as passed.
export default class PlainSummary implements Reporter {
  onFinished(files: RunnerTestFile[] = []): void {
    const counts = { passed: 0, failed: 0, skipped: 0 };
    const visit = (task: RunnerTask) => {
      if (task.type === "suite") {
        for (const child of task.tasks) visit(child);
        return;
      }
      if (task.result?.state === "fail") counts.failed++;
      else if (task.result?.state === "pass") counts.passed++;
      else counts.skipped++;
    };
    for (const file of files) {
      visit(file);
      // A file that failed to load has no tests to count but must not pass silently.
      if (file.result?.state === "fail" && file.tasks.length === 0) counts.failed++;
    }
    console.log(`\n${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped`);
  }
}
