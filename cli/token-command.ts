// `kubeforge token …`: the cluster's bootstrap tokens, as `kubeadm token` manages them, through the
// API: admin.conf from the local store, dialling the first control plane's address. Every flag and
// argument is checked before anything is read or dialled. The token secret is printed only where
// kubeadm prints it, on this command's stdout (`create`, `generate`, the `list` table), never in a
// JSON event or an error message.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { Command } from "commander";
import { type OpenOptions, openClusterApi } from "../api/client.js";
import type { ClusterApi } from "../api/cluster-api.js";
import { BOOTSTRAPPERS_GROUP } from "../api/objects.js";
import {
  formatTokenTable,
  joinCommand,
  parseTokenTtl,
  rfc3339,
  TOKEN_SECRET_TYPE,
  TOKEN_USAGES,
  type TokenRow,
  tokenFromSecret,
  tokenIdOf,
  tokenSecretName,
  tokenToSecret,
  tokenUsageProblems,
} from "../api/tokens.js";
import { shortHumanDuration } from "../certs/duration.js";
import { ADMIN_KUBECONFIG, parseKubeconfig } from "../certs/pki.js";
import { apiDialAddress } from "../certs/specs.js";
import { formatBootstrapToken, generateBootstrapToken, parseBootstrapToken } from "../certs/tokens.js";
import { loadClusterFile } from "../config/load.js";
import { endpointHostsEntry } from "../phases/init-node.js";
import { InternalError, UsageError } from "../workflow/errors.js";
import { EVENT_VERSION } from "../workflow/events.js";
import { DEFAULT_FILE, FILE_FLAGS, FILE_HELP } from "./config-command.js";
import type { CliContext, CommandInstaller } from "./program.js";
import { parseList } from "./workflow-command.js";

/** How a command reaches the cluster's API; tests pass an in-memory one. */
export type ApiOpener = (options: OpenOptions) => ClusterApi;

const TOKEN_FORM = "[a-z0-9]{6}.[a-z0-9]{16}";
const secretRef = (id: string) => ({
  apiVersion: "v1",
  kind: "Secret",
  name: tokenSecretName(id),
  namespace: "kube-system",
});

interface Target {
  api: ClusterApi;
  /** admin.conf as read: its server and CA make the join command, as kubeadm's are made. */
  kubeconfig: string;
}

/** The cluster's API, reached with the store's admin.conf at the first control plane's address. */
async function openApi(context: CliContext, file: string, open: ApiOpener): Promise<Target> {
  const { io } = context;
  const { cluster } = await loadClusterFile(file, { env: io.env, homeDir: io.homeDir, cwd: io.cwd });
  const path = join(context.stateDir, cluster.metadata.name, ADMIN_KUBECONFIG);
  const kubeconfig = await readFile(path, "utf8").catch(() => {
    throw new UsageError(`${path} does not exist: run \`kubeforge certs generate -f ${file}\` first`);
  });
  const first = cluster.spec.hosts.find((host) => host.role === "control-plane");
  if (!first) throw new InternalError("a validated cluster file has a control plane");
  const dial = { host: apiDialAddress(first), port: cluster.spec.kubernetes.apiServer.bindPort };
  return { api: open({ kubeconfig, dial, signal: io.signal }), kubeconfig };
}

interface CreateFlags {
  file: string;
  ttl: string;
  description?: string;
  usages: string[];
  groups: string[];
  printJoinCommand?: boolean;
}

/** The token row `create` writes, or a UsageError naming the flag and the fix. */
function tokenToCreate(tokenText: string | undefined, flags: CreateFlags, now: Date): TokenRow {
  const token = tokenText === undefined ? generateBootstrapToken() : parseBootstrapToken(tokenText);
  // The text is not echoed: a mistyped token is still mostly a secret.
  if (!token) {
    throw new UsageError(
      `the token argument is not of the form ${TOKEN_FORM}: give one as \`kubeforge token generate\` prints it, or none for a random one`,
    );
  }
  const ttl = parseTokenTtl(flags.ttl);
  if (ttl === undefined) {
    throw new UsageError(
      `--ttl ${flags.ttl} is not a duration: give a Go duration such as 24h or 1h30m, or 0 for a token that never expires`,
    );
  }
  const problems = tokenUsageProblems(flags.usages, flags.groups);
  if (problems.length > 0) {
    throw new UsageError(
      `${problems.map((p) => `${p.flag}: ${p.message}`).join("\n")}\nfix: --usages takes ${TOKEN_USAGES.join(",")}; --groups takes system:bootstrappers:… groups (or "" for none)`,
    );
  }
  return {
    token,
    description: flags.description ?? "",
    ...(ttl > 0 && { expires: new Date(now.getTime() + ttl) }),
    usages: flags.usages,
    groups: flags.groups,
  };
}

/** The /etc/hosts line for kubeforge's default endpoint name, when the file sets no controlPlaneEndpoint. */
async function endpointHostsLine(context: CliContext, file: string): Promise<string | undefined> {
  const { io } = context;
  const { cluster } = await loadClusterFile(file, { env: io.env, homeDir: io.homeDir, cwd: io.cwd });
  const entry = endpointHostsEntry(cluster);
  return entry && `${entry.ip} ${entry.name}`;
}

/** The join command, with the server and CA of admin.conf's cluster, as kubeadm reads its kubeconfig. */
function joinCommandFor(kubeconfig: string, row: TokenRow): string {
  const cluster = parseKubeconfig(kubeconfig).clusters[0]?.cluster;
  const ca = cluster?.["certificate-authority-data"];
  if (!cluster?.server || !ca) throw new Error("admin.conf names no server or CA to join");
  return joinCommand({
    endpoint: cluster.server,
    token: row.token,
    caCertPem: Buffer.from(ca, "base64").toString(),
  });
}

function json(context: CliContext, type: string, body: object): void {
  context.io.stdout.write(`${JSON.stringify({ v: EVENT_VERSION, type, ...body })}\n`);
}

/** The `token` commands, reaching the API through `open`. */
export function tokenCommands(open: ApiOpener = openClusterApi): CommandInstaller {
  return (program: Command, context: CliContext) => {
    const { io } = context;
    const token = program
      .command("token")
      .description("Bootstrap tokens in the cluster, as kubeadm token manages them");

    token
      .command("create [token]")
      .description(
        "Create a bootstrap token (random unless given) and print it, or the whole join command; plain text in either output mode",
      )
      .option(FILE_FLAGS, FILE_HELP, DEFAULT_FILE)
      .option("--ttl <duration>", "how long the token is valid, a Go duration; 0 = never expires", "24h")
      .option("--description <text>", "a human-readable note on what the token is for")
      .option("--usages <list>", "comma-separated: signing, authentication", parseList, [...TOKEN_USAGES])
      .option(
        "--groups <list>",
        'extra groups the token authenticates as, comma-separated ("" for none)',
        parseList,
        [BOOTSTRAPPERS_GROUP],
      )
      .option("--print-join-command", "print `kubeadm join …` with this token and the CA hash instead")
      .action(async (tokenText: string | undefined, flags: CreateFlags) => {
        const row = tokenToCreate(tokenText, flags, new Date());
        context.redactor.addSecret(row.token.secret);
        const { api, kubeconfig } = await openApi(context, flags.file, open);
        // Made before the token is: a store without the CA fails with nothing written.
        const output = flags.printJoinCommand
          ? joinCommandFor(kubeconfig, row)
          : formatBootstrapToken(row.token);
        // kubeadm CreateNewTokens: an existing token is not overwritten.
        if (await api.get(secretRef(row.token.id))) {
          throw new Error(`a token with id "${row.token.id}" already exists`);
        }
        await api.apply(tokenToSecret(row));
        io.stdout.write(`${output}\n`);
        const hostsLine = flags.printJoinCommand ? await endpointHostsLine(context, flags.file) : undefined;
        if (hostsLine)
          io.stderr.write(
            `note: the endpoint resolves through /etc/hosts on the nodes kubeforge set up; on another host add first: ${hostsLine}\n`,
          );
      });

    token
      .command("list")
      .description(
        "List the bootstrap tokens (the table shows each whole token, as kubeadm's; JSON does not)",
      )
      .option(FILE_FLAGS, FILE_HELP, DEFAULT_FILE)
      .action(async (flags: { file: string }) => {
        const { api } = await openApi(context, flags.file, open);
        const secrets = await api.list("v1", "Secret", "kube-system", {
          fieldSelector: `type=${TOKEN_SECRET_TYPE}`,
        });
        const rows: TokenRow[] = [];
        for (const secret of secrets.filter((s) => s.type === TOKEN_SECRET_TYPE)) {
          try {
            rows.push(tokenFromSecret(secret));
          } catch (error) {
            // kubeadm reports a malformed token Secret and lists the others.
            io.stderr.write(`${(error as Error).message}\n`);
          }
        }
        rows.sort((a, b) => (a.token.id < b.token.id ? -1 : 1));
        const now = new Date();
        if (context.output !== "json") {
          io.stdout.write(formatTokenTable(rows, now));
          return;
        }
        json(context, "token.list", {
          tokens: rows.map((row) => ({
            id: row.token.id,
            ttl: row.expires ? shortHumanDuration(row.expires.getTime() - now.getTime()) : null,
            expires: row.expires ? rfc3339(row.expires) : null,
            usages: row.usages,
            description: row.description,
            groups: row.groups,
          })),
        });
      });

    token
      .command("delete <token...>")
      .description("Delete bootstrap tokens, each given by its id or as the whole token")
      .option(FILE_FLAGS, FILE_HELP, DEFAULT_FILE)
      .action(async (texts: string[], flags: { file: string }) => {
        const ids = texts.map(tokenIdOf);
        const bad = ids.flatMap((id, index) => (id === undefined ? [index + 1] : []));
        // Neither echoed: a mistyped token is still mostly a secret.
        if (bad.length > 0) {
          throw new UsageError(
            `argument ${bad.join(", ")} is neither a token id ([a-z0-9]{6}) nor a token (${TOKEN_FORM}): give ids as \`kubeforge token list\` shows them`,
          );
        }
        const { api } = await openApi(context, flags.file, open);
        for (const id of ids as string[]) {
          if (!(await api.delete(secretRef(id)))) {
            throw new Error(
              `failed to delete bootstrap token "${id}": secret ${tokenSecretName(id)} not found`,
            );
          }
          if (context.output !== "json") io.stdout.write(`bootstrap token "${id}" deleted\n`);
        }
        if (context.output === "json") json(context, "token.deleted", { ids });
      });

    token
      .command("generate")
      .description("Print a random bootstrap token without creating it in the cluster")
      .action(() => {
        io.stdout.write(`${formatBootstrapToken(generateBootstrapToken())}\n`);
      });
  };
}

/** `kubeforge token create|list|delete|generate`. */
export const addTokenCommands: CommandInstaller = tokenCommands();
