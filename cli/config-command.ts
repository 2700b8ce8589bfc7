// `kubeforge config validate|schema|print-defaults|render|reference`: the cluster file, checked and
// explained, and the files it gives each host.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { Command } from "commander";
import { type ApiObject, initObjects, renderObjects } from "../api/objects.js";
import { clusterJsonSchema, printDefaults, renderReference } from "../config/export.js";
import { loadClusterFile } from "../config/load.js";
import { hostNamed, nodeFiles } from "../node/files.js";
import { ConfigError, UsageError } from "../workflow/errors.js";
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
      "Print the files a host gets, as kubeadm writes them: static pod manifests (control plane), the kubelet's config.yaml and kubeadm-flags.env, its unit and drop-in; or with --objects the API objects init creates before its add-ons (opens no host)",
    )
    .option(FILE_FLAGS, FILE_HELP, DEFAULT_FILE)
    .option("--host <name>", "the host of the cluster file (required without --objects)")
    .option(
      "--objects",
      "print the Kubernetes API objects `kubeadm init` creates before the add-ons instead (multi-document YAML); the bootstrap token is a `<token-id>.<redacted>` placeholder, never a real secret, and the CA is the local store's (`certs generate`) or a placeholder",
    )
    .option("--hostname <name>", "the host's own hostname, when it differs from its name in the file")
    .option("--container <kind>", "the host is a container of this kind (systemd-detect-virt --container)")
    .option("--cgroup-v1", "the host has cgroup v1 (default: v2)")
    .option("--systemd-resolved", "systemd-resolved is active on the host")
    .action(
      async (options: {
        file: string;
        host?: string;
        objects?: boolean;
        hostname?: string;
        container?: string;
        cgroupV1?: boolean;
        systemdResolved?: boolean;
      }) => {
        const { cluster } = await loadClusterFile(options.file, loadOptions);
        if (options.objects) {
          if (options.host !== undefined) throw new UsageError("--objects and --host exclude each other");
          const ca = await storeCa(join(context.stateDir, cluster.metadata.name));
          const objects = initObjects(cluster, {
            token: { id: PLACEHOLDER_TOKEN.id, secret: PLACEHOLDER_TOKEN.secret },
            caCert: ca.pem,
            now: new Date(),
          }).map(readableSecret);
          io.stdout.write(
            json()
              ? `${JSON.stringify({ v: EVENT_VERSION, type: "api.objects", caFromStore: ca.fromStore, objects })}\n`
              : `# The API objects kubeadm init creates before its add-ons (kube-proxy and CoreDNS not shown).\n# The bootstrap token is a placeholder (<token-id>.<redacted>); Secret data is shown decoded as stringData.\n${ca.fromStore ? "" : "# No CA in the local store (kubeforge certs generate): cluster-info holds a placeholder CA.\n"}${renderObjects(objects)}`,
          );
          return;
        }
        if (options.host === undefined)
          throw new UsageError("config render needs --host <name> or --objects");
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

/** What `config render --objects` shows instead of init's real token: never a secret. */
const PLACEHOLDER_TOKEN = { id: "<token-id>", secret: "<redacted>" };
const PLACEHOLDER_CA =
  "-----BEGIN CERTIFICATE-----\n<the cluster CA: run kubeforge certs generate>\n-----END CERTIFICATE-----\n";

/** The local store's ca.crt (`certs generate`), else a placeholder. */
async function storeCa(clusterDir: string): Promise<{ pem: string; fromStore: boolean }> {
  const pem = await readFile(join(clusterDir, "pki", "ca.crt"), "utf8").catch(() => undefined);
  return pem === undefined ? { pem: PLACEHOLDER_CA, fromStore: false } : { pem, fromStore: true };
}

/** A Secret with its data decoded into stringData, for reading (the placeholders stay visible). */
function readableSecret(object: ApiObject): ApiObject {
  if (object.kind !== "Secret") return object;
  const { data, ...rest } = object;
  const decoded = Object.entries(data as Record<string, string>).map(([key, value]) => [
    key,
    Buffer.from(value, "base64").toString(),
  ]);
  return { ...rest, stringData: Object.fromEntries(decoded) };
}
