// `kubeforge config validate|schema|print-defaults|render|reference`: the cluster file, checked and
// explained, and the files it gives each host.
import type { Command } from "commander";
import { clusterJsonSchema, printDefaults, renderReference } from "../config/export.js";
import { loadClusterFile } from "../config/load.js";
import { hostNamed, nodeFiles } from "../node/files.js";
import { ConfigError } from "../workflow/errors.js";
import { EVENT_VERSION } from "../workflow/events.js";
import type { CliContext } from "./program.js";

export const FILE_FLAGS = "-f, --file <path>";
export const FILE_HELP = "cluster file";
export const DEFAULT_FILE = "cluster.yaml";

export function addConfigCommands(program: Command, context: CliContext): void {
  const { io } = context;
  const config = program.command("config").description("Check and explain the cluster file");
  const json = () => context.output === "json";
  const loadOptions = { env: io.env, homeDir: io.homeDir, cwd: io.cwd };

  config
    .command("validate")
    .description("Check the cluster file's schema and cross-field rules (opens no key file and no host)")
    .option(FILE_FLAGS, FILE_HELP, DEFAULT_FILE)
    .action(async (options: { file: string }) => {
      try {
        const { cluster } = await loadClusterFile(options.file, loadOptions);
        const controlPlanes = cluster.spec.hosts.filter((host) => host.role === "control-plane").length;
        const summary = `${options.file} is valid: ${cluster.spec.hosts.length} host(s), ${controlPlanes} control plane(s), Kubernetes ${cluster.spec.kubernetes.version}`;
        io.stdout.write(
          json()
            ? `${JSON.stringify({ v: EVENT_VERSION, type: "config.valid", file: options.file })}\n`
            : `${summary}\n`,
        );
      } catch (error) {
        if (json() && error instanceof ConfigError) {
          io.stdout.write(
            `${JSON.stringify({ v: EVENT_VERSION, type: "config.invalid", issues: error.issues })}\n`,
          );
        }
        throw error;
      }
    });

  config
    .command("schema")
    .description("Print the cluster file's JSON Schema, for editors (# yaml-language-server: $schema=FILE)")
    .action(() => {
      io.stdout.write(`${JSON.stringify(clusterJsonSchema(), null, 2)}\n`);
    });

  config
    .command("print-defaults")
    .description("Print a cluster file with every default filled in (of --file, or of a minimal example)")
    .option(FILE_FLAGS, "cluster file to complete; without it, a minimal example")
    .action(async (options: { file?: string }) => {
      if (!options.file) {
        io.stdout.write(printDefaults());
        return;
      }
      const { cluster } = await loadClusterFile(options.file, loadOptions);
      io.stdout.write(printDefaults(cluster));
    });

  config
    .command("render")
    .description(
      "Print the files a host gets, as kubeadm writes them: static pod manifests (control plane), the kubelet's config.yaml and kubeadm-flags.env, its unit and drop-in (opens no host)",
    )
    .option(FILE_FLAGS, FILE_HELP, DEFAULT_FILE)
    .requiredOption("--host <name>", "the host of the cluster file")
    .option("--hostname <name>", "the host's own hostname, when it differs from its name in the file")
    .option("--container <kind>", "the host is a container of this kind (systemd-detect-virt --container)")
    .option("--cgroup-v1", "the host has cgroup v1 (default: v2)")
    .option("--systemd-resolved", "systemd-resolved is active on the host")
    .action(
      async (options: {
        file: string;
        host: string;
        hostname?: string;
        container?: string;
        cgroupV1?: boolean;
        systemdResolved?: boolean;
      }) => {
        const { cluster } = await loadClusterFile(options.file, loadOptions);
        const files = nodeFiles(cluster, hostNamed(cluster, options.host), {
          hostname: options.hostname ?? options.host,
          container: options.container,
          cgroupVersion: options.cgroupV1 ? 1 : 2,
          systemdResolvedActive: options.systemdResolved === true,
        });
        io.stdout.write(
          json()
            ? `${JSON.stringify({ v: EVENT_VERSION, type: "node.files", host: options.host, files })}\n`
            : files
                .map(
                  (file) =>
                    `# ${file.path} (mode ${file.mode.toString(8).padStart(4, "0")})\n${file.content}`,
                )
                .join("\n"),
        );
      },
    );

  config
    .command("reference")
    .description("Print the cluster file reference (Markdown), as in the README")
    .action(() => {
      io.stdout.write(`${renderReference()}\n`);
    });
}
