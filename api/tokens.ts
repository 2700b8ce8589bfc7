// Bootstrap tokens as `kubeadm token` handles them, pure: the Secret ↔ token conversion of kubeadm's
// apis/bootstraptoken/v1 (BootstrapTokenToSecret, BootstrapTokenFromSecret), the `token list` table
// (cmd/token.go tokenTextPrinter), --ttl/--usages/--groups checks (k8s.io/cluster-bootstrap
// token/util, kubeadm's ValidateBootstrapTokens) and the join command `--print-join-command` prints
// (cmd/util/join.go). The secret appears in a Secret's data, the list table and the join command,
// as kubeadm prints it there, and in no error message.
import { parseGoDuration, shortHumanDuration } from "../certs/duration.js";
import {
  type BootstrapToken,
  discoveryHash,
  formatBootstrapToken,
  parseBootstrapToken,
} from "../certs/tokens.js";
import type { ApiObject } from "./objects.js";

/** cluster-bootstrap token/api SecretTypeBootstrapToken. */
export const TOKEN_SECRET_TYPE = "bootstrap.kubernetes.io/token";
/** token/api KnownTokenUsages, in kubeadm's order (also `--usages`' default). */
export const TOKEN_USAGES: readonly string[] = ["signing", "authentication"];
const SECRET_PREFIX = "bootstrap-token-";
const USAGE_PREFIX = "usage-bootstrap-";
const TOKEN_ID = /^[a-z0-9]{6}$/;
/** token/api BootstrapGroupPattern. */
const GROUP = /^system:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]$/;
const GROUP_PATTERN_TEXT = "\\Asystem:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]\\z";
/** Go's time.RFC3339 as time.Parse accepts it. */
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;
/** A Go duration whose value is zero (`0`, `0s`, `0h0m`): `--ttl` then means "never expires". */
const ZERO_DURATION = /^(0|((0+(\.0*)?|\.0+)(ns|us|µs|ms|s|m|h))+)$/;

/** One bootstrap token, as `kubeadm token list` shows it. */
export interface TokenRow {
  token: BootstrapToken;
  /** Empty when there is none. */
  description: string;
  /** Absent: the token never expires. */
  expires?: Date;
  /** Sorted, as BootstrapTokenFromSecret returns them. */
  usages: string[];
  groups: string[];
}

export function tokenSecretName(id: string): string {
  return `${SECRET_PREFIX}${id}`;
}

/** RFC 3339 in UTC, to the second, as Go's time.RFC3339 formats it. */
export function rfc3339(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** BootstrapTokenToSecret: the Secret `bootstrap-token-<id>` in kube-system, values base64 in `data`. */
export function tokenToSecret(row: TokenRow): ApiObject {
  const data: Record<string, string> = { "token-id": row.token.id, "token-secret": row.token.secret };
  if (row.description) data.description = row.description;
  if (row.expires) data.expiration = rfc3339(row.expires);
  for (const usage of row.usages) data[`${USAGE_PREFIX}${usage}`] = "true";
  if (row.groups.length > 0) data["auth-extra-groups"] = row.groups.join(",");
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name: tokenSecretName(row.token.id), namespace: "kube-system" },
    type: TOKEN_SECRET_TYPE,
    data: Object.fromEntries(
      Object.entries(data).map(([key, value]) => [key, Buffer.from(value).toString("base64")]),
    ),
  };
}

/** BootstrapTokenFromSecret; throws with kubeadm's wording (never the secret) when it is not one. */
export function tokenFromSecret(secret: ApiObject): TokenRow {
  const encoded = (secret.data ?? {}) as Record<string, string>;
  const data = (key: string) => Buffer.from(encoded[key] ?? "", "base64").toString();
  const { name } = secret.metadata;
  const id = data("token-id");
  if (!id) throw new Error(`bootstrap Token Secret has no token-id data: ${name}`);
  if (name !== tokenSecretName(id)) {
    throw new Error(
      `bootstrap token name is not of the form '${SECRET_PREFIX}(token-id)'. Actual: "${name}". Expected: "${tokenSecretName(id)}"`,
    );
  }
  const secretText = data("token-secret");
  if (!secretText) throw new Error(`bootstrap Token Secret has no token-secret data: ${name}`);
  const token = parseBootstrapToken(`${id}.${secretText}`);
  if (!token) throw new Error(`bootstrap Token Secret is invalid and couldn't be parsed: ${name}`);
  const expiration = data("expiration");
  if (expiration && !RFC3339.test(expiration)) {
    throw new Error(`can't parse expiration time of bootstrap token "${name}"`);
  }
  const usages = Object.keys(encoded)
    .filter((key) => key.startsWith(USAGE_PREFIX) && data(key) === "true")
    .map((key) => key.slice(USAGE_PREFIX.length))
    .sort();
  const groups = data("auth-extra-groups");
  return {
    token,
    description: data("description"),
    ...(expiration && { expires: new Date(expiration) }),
    usages,
    groups: groups ? groups.split(",") : [],
  };
}

/**
 * `--ttl` (a Go duration) in milliseconds, 0 for a token that never expires (`0`, `0s`), undefined
 * when it is not a duration. Negative durations are refused: kubeadm would quietly make such a token
 * never expire.
 */
export function parseTokenTtl(text: string): number | undefined {
  if (ZERO_DURATION.test(text)) return 0;
  const ms = parseGoDuration(text);
  // A positive TTL below a millisecond still expires; 0 would mean "never".
  return ms === undefined ? undefined : Math.max(ms, 1);
}

/** The id of a `token delete` argument: a token id or a whole token; undefined when it is neither. */
export function tokenIdOf(text: string): string | undefined {
  return TOKEN_ID.test(text) ? text : parseBootstrapToken(text)?.id;
}

export interface TokenFlagProblem {
  flag: "--usages" | "--groups";
  message: string;
}

/** What is wrong with `--usages` and `--groups`, in the words of cluster-bootstrap and kubeadm. */
export function tokenUsageProblems(usages: readonly string[], groups: readonly string[]): TokenFlagProblem[] {
  const problems: TokenFlagProblem[] = [];
  const unknown = [...new Set(usages.filter((usage) => !TOKEN_USAGES.includes(usage)))].sort();
  if (unknown.length > 0) {
    problems.push({
      flag: "--usages",
      message: `invalid bootstrap token usage string: ${unknown.join(",")}, valid usage options: ${TOKEN_USAGES.join(",")}`,
    });
  }
  // Extra groups only matter to a token that authenticates (kubeadm ValidateTokenGroups).
  if (groups.length > 0 && !usages.includes("authentication")) {
    problems.push({
      flag: "--groups",
      message: 'token groups cannot be specified unless --usages includes "authentication"',
    });
  }
  for (const group of groups.filter((name) => !GROUP.test(name))) {
    problems.push({
      flag: "--groups",
      message: `bootstrap group "${group}" is invalid (must match ${GROUP_PATTERN_TEXT})`,
    });
  }
  return problems;
}

/** Go's fmt `%-Ns`: padded to N characters. */
const padRight = (text: string, width: number) => text + " ".repeat(Math.max(0, width - [...text].length));

/**
 * One text/tabwriter block as kubeadm's printer configures it (minwidth 10, padding 3, spaces): every
 * cell but a line's last is padded to its column's widest cell plus 3, at least 10.
 */
function tabwriterBlock(lines: readonly string[][]): string {
  const widths = (lines[0] ?? []).map((_, column) =>
    Math.max(10, ...lines.map((cells) => [...(cells[column] ?? "")].length + 3)),
  );
  return lines
    .map((cells) =>
      cells
        .map((cell, column) => (column < cells.length - 1 ? padRight(cell, widths[column] ?? 0) : cell))
        .join(""),
    )
    .map((line) => `${line}\n`)
    .join("");
}

/**
 * `kubeadm token list`'s table. kubeadm flushes a new tabwriter per token, so the header is aligned
 * with the first row only and every later row on its own; fixed `%-9s`/`%-22s`/`%-56s` padding keeps
 * the columns mostly straight. TTL as apimachinery ShortHumanDuration (`23h`, `<invalid>` once
 * expired), `<forever>`/`<never>` without an expiry, `<none>` for empty fields. No tokens: no output.
 */
export function formatTokenTable(rows: readonly TokenRow[], now: Date): string {
  const cells = (row: TokenRow) => [
    formatBootstrapToken(row.token),
    padRight(row.expires ? shortHumanDuration(row.expires.getTime() - now.getTime()) : "<forever>", 9),
    row.expires ? rfc3339(row.expires) : "<never>",
    padRight(row.usages.join(",") || "<none>", 22),
    padRight(row.description || "<none>", 56),
    row.groups.join(",") || "<none>",
  ];
  const header = ["TOKEN", "TTL", "EXPIRES", "USAGES", "DESCRIPTION", "EXTRA GROUPS"];
  return rows.map((row, index) => tabwriterBlock(index === 0 ? [header, cells(row)] : [cells(row)])).join("");
}

/**
 * The worker join command `kubeadm token create --print-join-command` prints: the endpoint as
 * `host:port` (a kubeconfig server URL loses its `https://`), the token, the CA's discovery hash.
 */
export function joinCommand(input: { endpoint: string; token: BootstrapToken; caCertPem: string }): string {
  const hostPort = input.endpoint.replace(/^https:\/\//, "");
  return `kubeadm join ${hostPort} --token ${formatBootstrapToken(input.token)} --discovery-token-ca-cert-hash ${discoveryHash(input.caCertPem)}`;
}
