// `kubeforge lab up|down|status`: a kind-like local lab on the exact production path — real
// systemd hosts on this machine, reached over SSH, with a ready cluster file for them.
import { readFile, rename, writeFile } from "node:fs/promises";
import { resolve } from "node:path";
import { type Command, Option } from "commander";
import { dumpYaml } from "../config/export.js";
import { loadClusterFile } from "../config/load.js";
import { API_VERSION, KIND } from "../config/schema.js";
import { type Lab, labDown, labStatus, labUp } from "../lab/testhosts.js";
import { UsageError } from "../workflow/errors.js";
import type { CliContext } from "./program.js";

const MARKER = "# Written by `kubeforge lab up`";
const SUBNET = /^198\.(18|19)\.(25[0-5]|2[0-4]\d|1?\d?\d)$/;

interface LabFlags {
  bridge: string;
  subnet: string;
}

function instanceOptions(): Option[] {
  return [
    new Option("--bridge <name>", "bridge on this machine; also names the lab instance").default("kfbr0"),
    new Option("--subnet <prefix>", "the hosts' /24, inside 198.18.0.0/15")
      .default("198.18.0")
      .argParser((text) => {
        if (!SUBNET.test(text))
          throw new UsageError(`--subnet ${text}: give a /24 prefix inside 198.18.0.0/15, e.g. 198.18.0`);
        return text;
      }),
  ];
}

/** The cluster file for a lab: the first host is the control plane; networks avoid the hosts' /24. */
export function labClusterFile(
  lab: Lab,
  options: { name: string; version: string; user: "root" | "sudo" },
): string {
  const networking = lab.subnet.startsWith("198.19.")
    ? { podSubnet: "198.18.128.0/17", serviceSubnet: "198.18.112.0/20" }
    : { podSubnet: "198.19.0.0/17", serviceSubnet: "198.19.128.0/20" };
  const ssh =
    options.user === "root"
      ? { user: "root", keyPath: lab.keyPath, knownHostsPath: lab.knownHostsPath }
      : {
          user: lab.users.sudoUser,
          keyPath: lab.keyPath,
          knownHostsPath: lab.knownHostsPath,
          sudo: { password: { file: `${lab.runDir}/sudo-password` } },
        };
  const document = {
    apiVersion: API_VERSION,
    kind: KIND,
    metadata: { name: options.name },
    spec: {
      ssh,
      kubernetes: { version: options.version, networking },
      hosts: lab.hosts.map((host, index) => ({
        name: host.name,
        address: host.address,
        role: index === 0 ? "control-plane" : "worker",
      })),
    },
  };
  return `${MARKER} for lab instance ${lab.bridge}; \`kubeforge lab down --bridge ${lab.bridge}\` removes the hosts.\n${dumpYaml(document)}`;
}

export function addLabCommands(program: Command, context: CliContext): void {
  const { io } = context;
  const log = (line: string) => io.stderr.write(`${line}\n`);
  const lab = program
    .command("lab")
    .description(
      "Local test hosts (systemd-nspawn, real sshd and systemd) with a ready cluster file; needs root",
    );

  const up = lab
    .command("up")
    .description("Boot Debian 12 hosts on this machine and write a cluster file for them")
    .addOption(
      new Option("--hosts <n>", "how many hosts (the first is the control plane)")
        .default(3)
        .argParser((text) => {
          const count = Number(text);
          if (!Number.isInteger(count) || count < 1 || count > 200)
            throw new UsageError(`--hosts ${text}: give 1 to 200`);
          return count;
        }),
    )
    .option("--cluster-file <path>", "where to write the cluster file", "lab-cluster.yaml")
    .option("--name <name>", "metadata.name of the cluster", "lab")
    .option("--kubernetes-version <version>", "spec.kubernetes.version", "v1.30.4")
    .addOption(
      new Option("--user <user>", "SSH as root, or as a user with a sudo password")
        .choices(["root", "sudo"])
        .default("root"),
    );
  for (const option of instanceOptions()) up.addOption(option);
  up.action(
    async (
      flags: LabFlags & {
        hosts: number;
        clusterFile: string;
        name: string;
        kubernetesVersion: string;
        user: "root" | "sudo";
      },
    ) => {
      const target = resolve(io.cwd, flags.clusterFile);
      const existing = await readFile(target, "utf8").catch(() => undefined);
      if (existing !== undefined && !existing.startsWith(MARKER)) {
        throw new UsageError(
          `${flags.clusterFile} exists and was not written by lab up: choose another --cluster-file`,
        );
      }
      const started = await labUp(flags.hosts, {
        bridge: flags.bridge,
        subnet: flags.subnet,
        log,
        signal: io.signal,
      });
      await writeFile(`${started.runDir}/sudo-password`, `${started.users.sudoPassword}\n`, { mode: 0o600 });
      const text = labClusterFile(started, {
        name: flags.name,
        version: flags.kubernetesVersion,
        user: flags.user,
      });
      // Written whole or not at all: a half-written cluster file would be worse than none.
      await writeFile(`${target}.tmp`, text, { mode: 0o644 });
      await rename(`${target}.tmp`, target);
      await loadClusterFile(target, { env: io.env, homeDir: io.homeDir, cwd: io.cwd });
      io.stdout.write(
        `${started.hosts.map((host) => `${host.name}\t${host.address}`).join("\n")}\n` +
          `cluster file: ${flags.clusterFile}\nssh: ssh -F ${started.sshConfigPath} ${started.hosts[0]?.name ?? "h1"}\n`,
      );
    },
  );

  const down = lab.command("down").description("Power off and remove the lab's hosts, bridge and state");
  for (const option of instanceOptions()) down.addOption(option);
  down.action(async (flags: LabFlags) => {
    await labDown({ bridge: flags.bridge, subnet: flags.subnet, log, signal: io.signal });
  });

  const status = lab.command("status").description("List the lab's hosts and whether they run");
  for (const option of instanceOptions()) status.addOption(option);
  status.action(async (flags: LabFlags) => {
    const hosts = await labStatus({ bridge: flags.bridge, subnet: flags.subnet });
    if (hosts.length === 0) io.stdout.write(`lab ${flags.bridge} is not up\n`);
    for (const host of hosts)
      io.stdout.write(`${host.name}\t${host.address}\t${host.running ? "running" : "stopped"}\n`);
  });
}
