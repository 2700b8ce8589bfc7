// A lab for one scenario file, booted before its tests and torn down after them (vitest hooks: only
// test files import this; the benches and scripts use the other support modules without vitest).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll } from "vitest";
import { type Lab, type LabOptions, labDown, labUp } from "../../lab/testhosts.js";
import { ensureBuilt } from "./cli.js";
import { type CliOptions, type CliRun, cliIn } from "./scenario.js";
import { type StandInNode, type StandIns, standInCluster } from "./stand-in-cluster.js";

export interface LabSuite<T> {
  /** The lab, the work directory and what setup made; throws the setup's error, so tests fail, not skip. */
  ready(): { lab: Lab; work: string } & T;
  /** The work directory (the CLI's cwd), also while setup runs. */
  work(): string;
}

/**
 * One lab for a test file: beforeAll builds the CLI, makes a work directory, boots `hosts` lab
 * hosts and runs `setup`; afterAll runs `teardown`, removes the hosts and the directory.
 */
export function labSuite<T extends object>(options: {
  lab: LabOptions;
  hosts: number;
  workPrefix: string;
  setup: (lab: Lab, work: string) => Promise<T>;
  teardown?: (made: T | undefined) => Promise<void>;
}): LabSuite<T> {
  let work: string | undefined;
  let lab: Lab | undefined;
  let made: T | undefined;
  let setupError: unknown;
  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), options.workPrefix));
    try {
      await ensureBuilt();
      lab = await labUp(options.hosts, options.lab);
      made = await options.setup(lab, work);
    } catch (error) {
      setupError = error;
    }
  });
  afterAll(async () => {
    try {
      await options.teardown?.(made);
      await labDown(options.lab);
    } finally {
      if (work) rmSync(work, { recursive: true, force: true });
    }
  });
  const workDir = () => {
    if (!work) throw new Error("the suite's work directory exists only once beforeAll ran");
    return work;
  };
  return {
    work: workDir,
    ready: () => {
      if (!lab || !made || setupError)
        throw new Error(`setup failed: ${String(setupError)}`, { cause: setupError });
      return { lab, work: workDir(), ...made };
    },
  };
}

/** What a test of the stand-in cluster works with; `kubeforge` runs the CLI with the test's kubeconfig. */
export interface StandInSuite {
  ready(): { lab: Lab; work: string; nodes: StandInNode[]; standIns: StandIns };
  kubeforge(args: string[], options?: Pick<CliOptions, "output">): Promise<CliRun>;
}

/**
 * A test file's stand-in cluster (see standInCluster) on its own lab, torn down after the file.
 * The CLI gets KUBECONFIG=<work>/kubeconfig, so the user's kubeconfig is never written.
 */
export function standInSuite(options: {
  lab: LabOptions;
  workPrefix: string;
  name: string;
  version: string;
  port: number;
  labels?: Record<string, Record<string, string>>;
}): StandInSuite {
  const kubeforge = (args: string[], cliOptions: Pick<CliOptions, "output"> = {}): Promise<CliRun> =>
    cliIn(suite.work(), args, undefined, {
      env: { KUBECONFIG: join(suite.work(), "kubeconfig") },
      ...cliOptions,
    });
  const suite: LabSuite<{ nodes: StandInNode[]; standIns: StandIns }> = labSuite({
    lab: options.lab,
    hosts: 3,
    workPrefix: options.workPrefix,
    setup: (lab, work) => standInCluster({ ...options, lab, work, cli: kubeforge }),
    teardown: async (made) => made?.standIns.stop(),
  });
  return { ready: suite.ready, kubeforge };
}
