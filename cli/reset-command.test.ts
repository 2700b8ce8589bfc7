// The parts of `kubeforge reset` decided before any host is touched: the confirmation and --hosts.
// The addresses are never dialled: every case here ends before the connect phase.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { CliIo } from "./io.js";
import { runCli } from "./program.js";
import { addResetCommand } from "./reset-command.js";
import { kubeforge, minimalClusterFile, testDir } from "./testing.js";

const CLUSTER = minimalClusterFile();

const FILES = { "cluster.yaml": CLUSTER, id_ed25519: "not a key: never read", known_hosts: "" };

/** A run that got as far as the hosts has written its log under the state directory. */
const reachedHosts = (cwd: string) => existsSync(join(cwd, "home", ".kubeforge"));

/** `kubeforge reset -f cluster.yaml args…` in-process on a terminal that answers the prompt with `answer`. */
async function resetOnTerminal(args: string[], answer: boolean) {
  const cwd = testDir(FILES);
  const questions: string[] = [];
  const output = () => ({
    text: "",
    write(chunk: string) {
      this.text += chunk;
    },
  });
  const stderr = output();
  const io: CliIo = {
    env: {},
    cwd,
    homeDir: join(cwd, "home"),
    stdout: output(),
    stderr,
    signal: new AbortController().signal,
    version: "0.0.0-test",
    confirm: async (question) => {
      questions.push(question);
      return answer;
    },
  };
  const code = await runCli(["reset", "-f", "cluster.yaml", ...args], io, [addResetCommand]);
  return { code, stderr: stderr.text, questions, reachedHosts: reachedHosts(cwd) };
}

/** The same without a terminal (testing.ts gives no prompt). */
async function reset(args: string[]) {
  const cwd = testDir(FILES);
  const run = await kubeforge(["reset", "-f", "cluster.yaml", ...args], { cwd, commands: [addResetCommand] });
  return { ...run, reachedHosts: reachedHosts(cwd) };
}

describe("kubeforge reset, before the hosts", () => {
  it("refuses without a terminal and without --yes", async () => {
    const run = await reset([]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("there is no terminal to ask on: run with --yes");
    expect(run.reachedHosts).toBe(false);
  });

  it("asks on a terminal, listing the hosts, and stops when the answer is no", async () => {
    const run = await resetOnTerminal(["--purge"], false);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain("reset aborted at the prompt: nothing was changed");
    expect(run.questions).toHaveLength(1);
    expect(run.questions[0]).toMatch(/^Reset 2 host\(s\): cp1 \(198\.18\.0\.11\), w1 \(198\.18\.0\.12\)\?/);
    expect(run.questions[0]).toContain("(--purge) the binaries and packages kubeforge installed");
    expect(run.reachedHosts).toBe(false);
  });

  it("asks only about the hosts --hosts names", async () => {
    const run = await resetOnTerminal(["--hosts", "w1"], false);
    expect(run.questions[0]).toMatch(/^Reset 1 host\(s\): w1 \(198\.18\.0\.12\)\?/);
    expect(run.questions[0]).not.toContain("purge");
  });

  it("rejects unknown --hosts names, naming the valid ones", async () => {
    const run = await reset(["--hosts", "w1,w9,x", "--yes"]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(
      "--hosts w1,w9,x: unknown host(s) w9, x; the cluster file's hosts are cp1, w1",
    );
    expect((await reset(["--hosts", ",", "--yes"])).code).toBe(2);
  });

  it("lists its phases in --help", async () => {
    const run = await kubeforge(["reset", "--help"], { cwd: testDir(), commands: [addResetCommand] });
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(
      / {2}connect +Connect to the hosts over SSH\n {2}facts +.*\n {2}cleanup-node +/,
    );
  });
});
