import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import { Option } from "commander";
import { describe, expect, it } from "vitest";
import { loadClusterFile } from "../config/load.js";
import type { HostPhase, LocalPhase, Workflow } from "../workflow/phase.js";
import type { CliContext } from "./program.js";
import { kubeforge, testDir } from "./testing.js";
import { addWorkflowCommand } from "./workflow-command.js";

const CLUSTER = `apiVersion: kubeforge.dev/v1alpha1
kind: Cluster
metadata: {name: demo}
spec:
  ssh: {user: root, keyPath: ./id_ed25519, knownHostsPath: ./known_hosts, sudo: {password: {env: SUDO_PW}}}
  kubernetes: {version: v1.30.4}
  hosts:
    - {name: cp1, address: 198.18.0.11, role: control-plane}
    - {name: w1, address: 198.18.0.12, role: worker}
    - {name: w2, address: 198.18.0.13, role: worker}
`;

interface Machine {
  name: string;
  files: Set<string>;
}

interface Data {
  machines: Machine[];
  failOn: string[];
  sudoPassword: string;
  ran: string[];
}

// A stand-in workflow shaped like kubeadm init's first phases, over in-memory machines: it pins
// down what the CLI derives from a phase tree, not what any real phase does.
const local = (id: string, title: string): LocalPhase<Data, Machine> => ({
  id,
  title,
  run: async (step) => {
    step.data.ran.push(step.phase);
  },
});
const writeConfig: HostPhase<Data, Machine> = {
  id: "write-config",
  title: "Write the node configuration",
  hosts: (data) => data.machines.filter((machine) => !machine.files.has("config")),
  run: async (step) => {
    step.data.ran.push(`${step.phase}@${step.host.name}`);
    step.log(`sudo password is ${step.data.sudoPassword}`);
    if (step.data.failOn.includes(step.host.name)) throw new Error(`cannot write on ${step.host.name}`);
    await step.change("write /etc/kubeforge/config", async () => {
      step.host.files.add("config");
    });
  },
};
const workflow: Workflow<Data, Machine> = {
  command: "demo",
  phases: [
    local("preflight", "Run preflight checks"),
    {
      id: "certs",
      title: "Generate certificates",
      phases: [local("ca", "Generate the CA"), local("apiserver", "Generate the API server certificate")],
    },
    writeConfig,
  ],
};

function install(data: Data) {
  return (program: Command, context: CliContext) => {
    addWorkflowCommand(program, context, {
      workflow,
      description: "A stand-in workflow",
      options: () => [new Option("--fail-on <hosts>", "hosts whose phase body throws")],
      prepare: async (flags, ctx) => {
        const { cluster } = await loadClusterFile(flags.file, {
          env: ctx.io.env,
          homeDir: ctx.io.homeDir,
          cwd: ctx.io.cwd,
        });
        const sudoPassword = ctx.io.env.SUDO_PW ?? "";
        ctx.redactor.addSecret(sudoPassword);
        data.sudoPassword = sudoPassword;
        data.failOn = typeof flags.failOn === "string" ? flags.failOn.split(",") : [];
        if (data.machines.length === 0)
          data.machines = cluster.spec.hosts.map((host) => ({ name: host.name, files: new Set() }));
        return { data, clusterName: cluster.metadata.name, concurrency: cluster.spec.options.concurrency };
      },
    });
  };
}

const SECRET = "pw-6f1d93";

async function run(
  argv: string[],
  options: { data?: Data; cwd?: string; stderrIsTTY?: boolean; signal?: AbortSignal } = {},
) {
  const data = options.data ?? { machines: [], failOn: [], sudoPassword: "", ran: [] };
  const cwd = options.cwd ?? testDir({ "cluster.yaml": CLUSTER });
  const result = await kubeforge(argv, {
    cwd,
    env: { SUDO_PW: SECRET },
    commands: [install(data)],
    ...(options.stderrIsTTY !== undefined && { stderrIsTTY: options.stderrIsTTY }),
    ...(options.signal && { signal: options.signal }),
  });
  return { ...result, data, cwd, stateDir: join(cwd, "home", ".kubeforge") };
}

function logFiles(stateDir: string): string[] {
  const dir = join(stateDir, "demo", "logs");
  return readdirSync(dir).map((name) => join(dir, name));
}

describe("a command derived from a workflow", () => {
  it("lists its phase tree in --help", async () => {
    const { code, stdout } = await run(["demo", "--help"]);
    expect(code).toBe(0);
    expect(stdout).toContain(
      [
        "Phases (run one with `kubeforge demo phase <path>`):",
        "  preflight     Run preflight checks",
        "  certs         Generate certificates",
        "    ca          Generate the CA",
        "    apiserver   Generate the API server certificate",
        "  write-config  Write the node configuration",
      ].join("\n"),
    );
    expect(stdout).toContain("--skip-phases <phases>");
    expect(stdout).toContain("--dry-run");
  });

  it("runs every phase, ends with the per-host changes and writes a private log", async () => {
    const { code, stdout, data, stateDir } = await run(["demo"]);
    expect(code).toBe(0);
    expect(data.ran.slice(0, 3)).toEqual(["preflight", "certs/ca", "certs/apiserver"]);
    expect(data.ran.slice(3).sort()).toEqual(["write-config@cp1", "write-config@w1", "write-config@w2"]);
    expect(stdout).toBe(
      [
        "Changed:",
        "  cp1:",
        "    - write /etc/kubeforge/config",
        "  w1:",
        "    - write /etc/kubeforge/config",
        "  w2:",
        "    - write /etc/kubeforge/config",
        "",
      ].join("\n"),
    );
    for (const dir of [stateDir, join(stateDir, "demo"), join(stateDir, "demo", "logs")]) {
      expect(statSync(dir).mode & 0o777).toBe(0o700);
    }
    const [log] = logFiles(stateDir);
    expect(statSync(log as string).mode & 0o777).toBe(0o600);
    expect(readFileSync(log as string, "utf8")).toMatch(
      /\[write-config\] w1: write \/etc\/kubeforge\/config/,
    );
  });

  it("converges: the second run changes nothing", async () => {
    const first = await run(["demo"]);
    const second = await run(["demo"], { data: first.data, cwd: first.cwd });
    expect(second.code).toBe(0);
    expect(second.stdout).toBe("Nothing changed.\n");
  });

  it("runs one phase with `phase <path>`, and a parent with its children", async () => {
    const one = await run(["demo", "phase", "certs", "apiserver"]);
    expect(one.code).toBe(0);
    expect(one.data.ran).toEqual(["certs/apiserver"]);
    const parent = await run(["demo", "phase", "certs"]);
    expect(parent.data.ran).toEqual(["certs/ca", "certs/apiserver"]);
  });

  it("skips phases, and rejects unknown ones with exit 2 before touching anything", async () => {
    const skipped = await run(["demo", "--skip-phases", "certs,write-config"]);
    expect(skipped.code).toBe(0);
    expect(skipped.data.ran).toEqual(["preflight"]);
    expect(skipped.stderr).toContain("[certs] skipped: --skip-phases");

    const unknown = await run(["demo", "--skip-phases", "cert"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain(
      'unknown phase "cert"; phases are: preflight, certs, certs/ca, certs/apiserver, write-config',
    );
    expect(unknown.data.ran).toEqual([]);
  });

  it("describes but applies nothing under --dry-run", async () => {
    const { code, stdout, data } = await run(["demo", "--dry-run"]);
    expect(code).toBe(0);
    expect(data.machines.every((machine) => machine.files.size === 0)).toBe(true);
    expect(stdout).toContain("Would change:\n  cp1:\n    - write /etc/kubeforge/config");
  });

  it("reports all failed hosts together with exit 1", async () => {
    const { code, stdout, stderr, data } = await run(["demo", "--fail-on", "w1,w2"]);
    expect(code).toBe(1);
    // What the failed run did change is still said.
    expect(stdout).toBe("Changed:\n  cp1:\n    - write /etc/kubeforge/config\n");
    expect(stderr).toContain(
      "error: error execution phase write-config: failed on 2 of 3 hosts:\n- w1: cannot write on w1\n- w2: cannot write on w2",
    );
    expect(stderr).toMatch(/The run's log: .*demo\/logs\/.*-demo\.log/);
    expect(data.machines.find((m) => m.name === "cp1")?.files.has("config")).toBe(true);
  });

  it("exits 2 on a bad cluster file without running any phase", async () => {
    const cwd = testDir({ "cluster.yaml": CLUSTER.replace("v1.30.4", "v1.99.0") });
    const { code, stderr, data } = await run(["demo"], { cwd });
    expect(code).toBe(2);
    expect(stderr).toContain("cluster.yaml:6 spec.kubernetes.version: v1.99.0 is not a supported version");
    expect(data.ran).toEqual([]);
  });

  it("rejects a bad --concurrency with exit 2", async () => {
    const { code, stderr } = await run(["demo", "--concurrency", "0"]);
    expect(code).toBe(2);
    expect(stderr).toContain("--concurrency 0: must be a whole number ≥ 1");
  });

  it("puts only versioned JSON events on stdout with --output json", async () => {
    const { code, stdout, stderr } = await run(["--output", "json", "demo", "--fail-on", "w2"]);
    expect(code).toBe(1);
    const events = stdout
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line));
    expect(events.every((event) => event.v === 1 && typeof event.ts === "string")).toBe(true);
    expect(events[0]).toMatchObject({ type: "run.start", command: "demo", dryRun: false });
    expect(events.at(-1)).toMatchObject({
      type: "run.end",
      status: "failed",
      changes: { cp1: ["write /etc/kubeforge/config"], w1: ["write /etc/kubeforge/config"] },
      error: { kind: "PhaseError" },
    });
    expect(
      events
        .filter((event) => event.type === "host.end")
        .map((event) => [event.host, event.status])
        .sort(),
    ).toEqual([
      ["cp1", "ok"],
      ["w1", "ok"],
      ["w2", "failed"],
    ]);
    expect(stderr).toContain("[write-config] w2: failed: cannot write on w2");
  });

  it("never shows a secret: not on stdout, stderr, JSON events or in the log file", async () => {
    for (const argv of [["demo"], ["--output", "json", "demo"], ["demo", "--fail-on", "cp1"]]) {
      const { stdout, stderr, stateDir } = await run(argv);
      const log = logFiles(stateDir)
        .map((file) => readFileSync(file, "utf8"))
        .join("");
      expect(log).toContain("sudo password is [REDACTED]");
      for (const text of [stdout, stderr, log]) expect(text).not.toContain(SECRET);
    }
  });

  it("ends with exit 130 when interrupted", async () => {
    const controller = new AbortController();
    controller.abort(new Error("received SIGINT"));
    const { code, stderr, data } = await run(["demo"], { signal: controller.signal });
    expect(code).toBe(130);
    expect(stderr).toContain("error: interrupted");
    expect(data.ran).toEqual([]);
  });

  it("draws the phase tree with listr2 on a terminal", async () => {
    const { code, stderr } = await run(["demo", "--fail-on", "w2"], { stderrIsTTY: true });
    expect(code).toBe(1);
    for (const text of [
      "Run preflight checks",
      "Generate the API server certificate",
      "Write the node configuration",
      "w2: cannot write on w2",
    ]) {
      expect(stderr).toContain(text);
    }
  });
});
