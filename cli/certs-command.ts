// `kubeforge certs …` and `kubeforge kubeconfig …`: the cluster's PKI in the local store
// (`<state dir>/<cluster>/`), generated on the workstation as kubeadm lays it out.
import { join, resolve } from "node:path";
import type { Command } from "commander";
import { planAdminKubeconfig, writeAdminKubeconfig } from "../certs/admin-kubeconfig.js";
import { ensurePki, listStore, renew, type StoreEntry, userKubeconfig } from "../certs/pki.js";
import { loadClusterFile } from "../config/load.js";
import type { ClusterFile } from "../config/schema.js";
import { EVENT_VERSION } from "../workflow/events.js";
import { DEFAULT_FILE, FILE_FLAGS, FILE_HELP } from "./config-command.js";
import type { CliContext } from "./program.js";

const EXPIRY_WARNING_MS = 30 * 24 * 3600 * 1000;

interface Loaded {
  cluster: ClusterFile;
  clusterDir: string;
  file: string;
}

async function load(context: CliContext, file: string): Promise<Loaded> {
  const { io } = context;
  const loaded = await loadClusterFile(file, { env: io.env, homeDir: io.homeDir, cwd: io.cwd });
  return { cluster: loaded.cluster, file, clusterDir: join(context.stateDir, loaded.cluster.metadata.name) };
}

function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, column) => Math.max(...rows.map((row) => row[column]?.length ?? 0))) ?? [];
  return rows
    .map((row) =>
      row
        .map((cell, column) => cell.padEnd(widths[column] ?? 0))
        .join("   ")
        .trimEnd(),
    )
    .join("\n");
}

function expires(entry: StoreEntry): string {
  return entry.notAfter ? entry.notAfter.toUTCString().replace("GMT", "UTC") : "";
}

function label(entry: StoreEntry): string {
  return entry.node ? `${entry.name} (${entry.node})` : entry.name;
}

function json(context: CliContext, type: string, body: object): void {
  context.io.stdout.write(`${JSON.stringify({ v: EVENT_VERSION, type, ...body })}\n`);
}

/** Certificates present in the store (sa is a bare key: it does not expire). */
function certificates(entries: readonly StoreEntry[]): StoreEntry[] {
  return entries.filter((entry) => entry.present && entry.kind !== "key");
}

function soon(entry: StoreEntry): boolean {
  return (entry.residualMs ?? 0) < EXPIRY_WARNING_MS;
}

/** kubeadm's check-expiration: leaves and kubeconfigs, then CAs; what expires within 30 days is flagged. */
export function formatExpiration(entries: readonly StoreEntry[]): string {
  const present = certificates(entries);
  const flag = (entry: StoreEntry) => (soon(entry) ? " !" : "");
  const leaves = present.filter((entry) => entry.kind !== "ca");
  const cas = present.filter((entry) => entry.kind === "ca");
  const managed = (entry: StoreEntry) => (entry.externallyManaged ? "yes" : "no");
  const parts = [
    table([
      ["CERTIFICATE", "EXPIRES", "RESIDUAL TIME", "CERTIFICATE AUTHORITY", "EXTERNALLY MANAGED"],
      ...leaves.map((e) => [
        label(e),
        expires(e),
        `${e.residual ?? ""}${flag(e)}`,
        e.signedBy ?? "",
        managed(e),
      ]),
    ]),
    table([
      ["CERTIFICATE AUTHORITY", "EXPIRES", "RESIDUAL TIME", "EXTERNALLY MANAGED"],
      ...cas.map((e) => [e.name, expires(e), `${e.residual ?? ""}${flag(e)}`, managed(e)]),
    ]),
  ];
  const expiring = present.filter(soon);
  if (expiring.length > 0) {
    parts.push(
      `! ${expiring.length} expire(s) within 30 days or already expired: renew them with \`kubeforge certs renew NAME|all\` (CAs cannot be renewed).`,
    );
  }
  const missing = entries.filter((entry) => !entry.present);
  if (missing.length > 0) parts.push(`${missing.length} file(s) missing: run \`kubeforge certs generate\`.`);
  return parts.join("\n\n");
}

export function addCertsCommands(program: Command, context: CliContext): void {
  const { io } = context;
  const certs = program
    .command("certs")
    .description("The cluster's PKI in the local store, as kubeadm lays it out");

  certs
    .command("generate")
    .description("Generate every missing certificate, key and kubeconfig; reuse valid ones (idempotent)")
    .option(FILE_FLAGS, FILE_HELP, DEFAULT_FILE)
    .action(async (options: { file: string }) => {
      const { cluster, clusterDir, file } = await load(context, options.file);
      const result = await ensurePki(cluster, clusterDir, { clusterFile: file });
      if (context.output === "json") return json(context, "certs.generated", { dir: clusterDir, ...result });
      const lines = [
        ...result.created.map((id) => `[certs] generated ${id}`),
        ...result.reused.map((id) => `[certs] using existing ${id}`),
        `${result.created.length} generated, ${result.reused.length} reused, in ${clusterDir}`,
      ];
      io.stdout.write(`${lines.join("\n")}\n`);
    });

  certs
    .command("list")
    .description("List every certificate, key and kubeconfig of the cluster with its subject and expiry")
    .option(FILE_FLAGS, FILE_HELP, DEFAULT_FILE)
    .action(async (options: { file: string }) => {
      const { cluster, clusterDir } = await load(context, options.file);
      const entries = await listStore(cluster, clusterDir);
      if (context.output === "json") return json(context, "certs.list", { dir: clusterDir, entries });
      const rows = entries.map((e) => [
        label(e),
        e.file,
        e.present ? (e.commonName ?? "") : "(missing)",
        (e.organizations ?? []).join(","),
        expires(e),
        e.signedBy ?? "",
        e.algorithm ?? "",
      ]);
      io.stdout.write(`${table([["NAME", "FILE", "CN", "O", "EXPIRES", "CA", "KEY"], ...rows])}\n`);
    });

  certs
    .command("check-expiration")
    .description("Show when each certificate expires; flag those within 30 days")
    .option(FILE_FLAGS, FILE_HELP, DEFAULT_FILE)
    .action(async (options: { file: string }) => {
      const { cluster, clusterDir } = await load(context, options.file);
      const entries = await listStore(cluster, clusterDir);
      if (context.output === "json") {
        const expiring = certificates(entries)
          .filter(soon)
          .map((e) => e.id);
        return json(context, "certs.expiration", { dir: clusterDir, entries, expiring });
      }
      io.stdout.write(`${formatExpiration(entries)}\n`);
    });

  certs
    .command("renew <name>")
    .description(
      "Re-sign a certificate or kubeconfig (or all) with the current cluster file; CAs are never renewed",
    )
    .option(FILE_FLAGS, FILE_HELP, DEFAULT_FILE)
    .option("--hosts <names>", "only these control-plane hosts, comma-separated")
    .action(async (name: string, options: { file: string; hosts?: string }) => {
      const { cluster, clusterDir, file } = await load(context, options.file);
      const nodes = options.hosts
        ?.split(",")
        .map((host) => host.trim())
        .filter(Boolean);
      const result = await renew(cluster, clusterDir, name, { clusterFile: file, ...(nodes && { nodes }) });
      if (context.output === "json") return json(context, "certs.renewed", { dir: clusterDir, ...result });
      io.stdout.write(
        `${result.renewed.map((id) => `[certs] renewed ${id}`).join("\n")}\n` +
          "Nodes pick the new files up when they are next pushed (kube-apiserver, kube-controller-manager, kube-scheduler and etcd then restart).\n",
      );
    })
    .addHelpText(
      "after",
      "\nNAME is kubeadm's: apiserver, apiserver-kubelet-client, front-proxy-client, apiserver-etcd-client,\n" +
        "etcd-server, etcd-peer, etcd-healthcheck-client, admin.conf, super-admin.conf, controller-manager.conf,\n" +
        "scheduler.conf, kubelet.conf, or all (all but kubelet.conf, as kubeadm).",
    );
}

export function addKubeconfigCommands(program: Command, context: CliContext): void {
  const { io } = context;
  const kubeconfig = program.command("kubeconfig").description("kubeconfig files for admins and users");

  kubeconfig
    .command("admin")
    .description(
      "Merge the cluster's admin credentials into your kubeconfig ($KUBECONFIG or ~/.kube/config, 0600)",
    )
    .option(FILE_FLAGS, FILE_HELP, DEFAULT_FILE)
    .option("--kubeconfig-out <file>", "write a standalone kubeconfig to this file instead of merging")
    .option("--use-context", "also switch the current context to this cluster")
    .action(async (options: { file: string; kubeconfigOut?: string; useContext?: boolean }) => {
      const { cluster, clusterDir } = await load(context, options.file);
      const standalone = options.kubeconfigOut !== undefined;
      const target = standalone
        ? resolve(io.cwd, options.kubeconfigOut as string)
        : defaultKubeconfigPath(io.env, io.homeDir);
      const plan = await planAdminKubeconfig(cluster, clusterDir, {
        target,
        standalone,
        useContext: options.useContext === true,
        clusterFile: options.file,
      });
      await writeAdminKubeconfig(target, plan);
      const mergedContext = plan.context;
      const switched =
        standalone || options.useContext ? "" : ` (switch with: kubectl config use-context ${mergedContext})`;
      io.stdout.write(
        `${standalone ? "wrote" : "merged into"} ${target}: context ${mergedContext}${switched}\n`,
      );
    });

  kubeconfig
    .command("user")
    .description("Print a kubeconfig for a user, with a client certificate signed by the cluster CA")
    .option(FILE_FLAGS, FILE_HELP, DEFAULT_FILE)
    .requiredOption("--name <name>", "the user name (certificate CN)")
    .option(
      "--group <group>",
      "a group (certificate O); repeatable",
      (group: string, groups: string[]) => [...groups, group],
      [],
    )
    .option(
      "--validity <duration>",
      "how long the certificate is valid, e.g. 720h (default: the cluster's certificateValidityPeriod)",
    )
    .action(async (options: { file: string; name: string; group: string[]; validity?: string }) => {
      const { cluster, clusterDir } = await load(context, options.file);
      const text = await userKubeconfig(cluster, clusterDir, {
        name: options.name,
        groups: options.group,
        ...(options.validity && { validity: options.validity }),
      });
      io.stdout.write(text);
    });
}

/** Where kubectl reads its kubeconfig: the first file of $KUBECONFIG, else ~/.kube/config. */
export function defaultKubeconfigPath(
  env: Readonly<Record<string, string | undefined>>,
  homeDir: string,
): string {
  const first = env.KUBECONFIG?.split(":").find(Boolean);
  return first ? resolve(first) : join(homeDir, ".kube", "config");
}
