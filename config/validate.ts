// Validation of a parsed cluster file: the schema first, then the rules across fields. Problems are
// collected, never thrown one by one, so the user sees all of them at once.
import type { TSchema } from "@sinclair/typebox";
import { Value, type ValueError, ValueErrorType } from "@sinclair/typebox/value";
import { FORMATS } from "./formats.js";
import { type Cidr, cidrContains, cidrsOverlap, parseCidrList, parseIp } from "./net.js";
import { type ClusterFile, ClusterSchema } from "./schema.js";
import { describeSupportedVersions, parseSupportedVersion } from "./versions.js";
import type { PathSegment } from "./yaml.js";

export interface Problem {
  path: PathSegment[];
  message: string;
}

/** Fills in every default the schema states; the input is not changed. */
export function applyDefaults(document: unknown): unknown {
  return Value.Default(ClusterSchema, structuredClone(document));
}

export function schemaProblems(document: unknown): Problem[] {
  const seen = new Set<string>();
  const problems: Problem[] = [];
  for (const error of Value.Errors(ClusterSchema, document)) {
    // TypeBox reports a missing property twice (required, then wrong type): keep the first.
    if (seen.has(error.path)) continue;
    seen.add(error.path);
    problems.push({ path: toSegments(error.path, document), message: describe(error) });
  }
  return problems;
}

function toSegments(jsonPointer: string, document: unknown): PathSegment[] {
  const segments: PathSegment[] = [];
  let node: unknown = document;
  for (const raw of jsonPointer.split("/").slice(1)) {
    const key = raw.replace(/~1/g, "/").replace(/~0/g, "~");
    const segment = Array.isArray(node) ? Number(key) : key;
    segments.push(segment);
    node =
      node !== null && typeof node === "object" ? (node as Record<PathSegment, unknown>)[segment] : undefined;
  }
  return segments;
}

function shown(value: unknown, schema: TSchema): string {
  // A secret written inline must not be echoed back in the error.
  if (schema.secret) return "an inline value";
  return JSON.stringify(value) ?? String(value);
}

const TYPE_NAMES: Partial<Record<ValueErrorType, string>> = {
  [ValueErrorType.String]: "a string",
  [ValueErrorType.Integer]: "an integer",
  [ValueErrorType.Number]: "a number",
  [ValueErrorType.Boolean]: "true or false",
  [ValueErrorType.Object]: "a mapping",
  [ValueErrorType.Array]: "a list",
};

function describe(error: ValueError): string {
  const { schema, value } = error;
  const typeName = TYPE_NAMES[error.type];
  if (schema.secret) {
    return "a secret must be a reference, not written inline: use {env: VAR}, {file: PATH} or {prompt: true}";
  }
  if (typeName) {
    return value === undefined ? `is required (${typeName})` : `${shown(value, schema)} is not ${typeName}`;
  }
  switch (error.type) {
    case ValueErrorType.ObjectRequiredProperty:
      return "is required";
    case ValueErrorType.ObjectAdditionalProperties: {
      const key = error.path.split("/").at(-1) ?? "";
      const known = Object.keys(schema.properties ?? {});
      const hint = closest(key, known);
      return `unknown field${hint ? `; did you mean "${hint}"?` : ""} (known: ${known.join(", ")})`;
    }
    case ValueErrorType.Literal:
      return value === undefined ? "is required" : `${shown(value, schema)} must be "${schema.const}"`;
    case ValueErrorType.Union: {
      const options = (schema.anyOf as TSchema[])
        .map((option) => option.const)
        .filter((v) => v !== undefined);
      return options.length > 0
        ? `${shown(value, schema)} is not one of: ${options.join(", ")}`
        : `${shown(value, schema)} is not allowed here`;
    }
    case ValueErrorType.StringFormat: {
      const format = FORMATS[schema.format as string];
      return `${shown(value, schema)} is not ${format?.expected ?? schema.format}`;
    }
    case ValueErrorType.StringPattern:
      return `${shown(value, schema)} does not match ${patternMeaning(schema.pattern as string)}`;
    case ValueErrorType.StringMinLength:
      return "must not be empty";
    case ValueErrorType.StringMaxLength:
      return `is longer than ${schema.maxLength} characters`;
    case ValueErrorType.IntegerMinimum:
      return `${shown(value, schema)} is less than ${schema.minimum}`;
    case ValueErrorType.IntegerMaximum:
      return `${shown(value, schema)} is more than ${schema.maximum}`;
    case ValueErrorType.ArrayMinItems:
      return `needs at least ${schema.minItems} ${schema.minItems === 1 ? "entry" : "entries"}`;
    default:
      return error.message;
  }
}

function patternMeaning(pattern: string): string {
  if (pattern.startsWith("^v\\d")) return "vMAJOR.MINOR.PATCH (e.g. v1.30.4)";
  if (pattern.includes("{0,61}")) return "a DNS-1123 label (lowercase letters, digits and '-', at most 63)";
  if (pattern.includes("253")) return "a DNS-1123 subdomain (lowercase letters, digits, '-' and '.')";
  if (pattern === "^/") return "an absolute path";
  if (pattern.startsWith("^[a-zA-Z0-9][a-zA-Z0-9-]*$")) return "a flag name without leading dashes";
  return `the pattern ${pattern}`;
}

/** The known name nearest to a misspelt one, when it is near enough to be a likely typo. */
function closest(word: string, candidates: string[]): string | undefined {
  let best: { name: string; distance: number } | undefined;
  for (const name of candidates) {
    const distance = editDistance(word.toLowerCase(), name.toLowerCase());
    if (distance <= Math.max(2, Math.floor(name.length / 3)) && (!best || distance < best.distance)) {
      best = { name, distance };
    }
  }
  return best?.name;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

const SERVICE_PREFIX = { 4: { min: 12, max: 28 }, 6: { min: 108, max: 124 } } as const;
// kube-controller-manager gives each node a /24 (IPv4) or /64 (IPv6) of the pod subnet, and at
// most 16 bits may separate the two (kubeadm's ValidatePodSubnetNodeMask).
const POD_PREFIX = { 4: { min: 8, max: 24 }, 6: { min: 48, max: 64 } } as const;

/**
 * Rules across fields. Each rule names the parts of the file it reads and runs only when the schema
 * found nothing wrong there, so one typo does not hide the problems elsewhere nor cause bogus ones.
 */
export function crossFieldProblems(document: unknown, schemaFindings: readonly Problem[] = []): Problem[] {
  const cluster = document as ClusterFile;
  const problems: Problem[] = [];
  const problem = (path: PathSegment[], message: string) => problems.push({ path, message });
  const related = (a: PathSegment[], b: PathSegment[]) => a.slice(0, b.length).every((s, i) => s === b[i]);
  const sound = (...paths: PathSegment[][]) =>
    !schemaFindings.some((found) =>
      paths.some((path) => related(found.path, path) || related(path, found.path)),
    );

  const hostsPath = ["spec", "hosts"];
  const versionPath = ["spec", "kubernetes", "version"];
  const networkingPath = ["spec", "kubernetes", "networking"];
  const sshPortPath = ["spec", "ssh", "port"];

  if (sound(versionPath) && !parseSupportedVersion(cluster.spec.kubernetes.version)) {
    problem(
      versionPath,
      `${cluster.spec.kubernetes.version} is not a supported version; supported: ${describeSupportedVersions()}`,
    );
  }
  if (sound(hostsPath, sshPortPath)) {
    checkHosts(cluster, problem);
  }
  if (sound(hostsPath, networkingPath)) {
    checkNetworks(cluster, problem);
  }
  if (
    sound(["spec", "artifacts"]) &&
    cluster.spec.artifacts.source === "bundle" &&
    !cluster.spec.artifacts.bundle
  ) {
    problem(
      ["spec", "artifacts", "bundle"],
      "is required when source is bundle (a file made by `kubeforge bundle create`)",
    );
  }
  if (sound(hostsPath, ["spec", "ssh"])) {
    forEachSecretRef(cluster, (ref, path) => {
      const given = (["env", "file", "prompt"] as const).filter((key) => ref[key] !== undefined);
      if (given.length !== 1) {
        problem(
          path,
          `needs exactly one of env, file or prompt (got ${given.length === 0 ? "none" : given.join(", ")})`,
        );
      } else if (ref.prompt === false) {
        problem([...path, "prompt"], "must be true, or leave the secret out");
      }
    });
  }
  return problems;
}

type Report = (path: PathSegment[], message: string) => void;

function checkHosts(cluster: ClusterFile, problem: Report): void {
  const { hosts, ssh } = cluster.spec;
  if (!hosts.some((host) => host.role === "control-plane")) {
    problem(["spec", "hosts"], "needs at least one host with role: control-plane");
  }
  const firstByName = new Map<string, number>();
  const firstBySshEndpoint = new Map<string, number>();
  const firstByNodeIp = new Map<string, number>();
  hosts.forEach((host, index) => {
    const unique = (seen: Map<string, number>, key: string, field: string, what: string) => {
      const first = seen.get(key);
      if (first === undefined) seen.set(key, index);
      else problem(["spec", "hosts", index, field], `${what} is already used by spec.hosts[${first}]`);
    };
    unique(firstByName, host.name, "name", `name "${host.name}"`);
    // Two hosts may share an address behind NAT (Vagrant forwards ports); the SSH endpoint is unique.
    const port = host.port ?? ssh.port;
    unique(
      firstBySshEndpoint,
      `${host.address.toLowerCase()}:${port}`,
      "address",
      `SSH endpoint ${host.address}:${port}`,
    );
    const nodeIp = host.privateAddress ?? (parseIp(host.address) ? host.address : undefined);
    if (nodeIp)
      unique(firstByNodeIp, nodeIp, host.privateAddress ? "privateAddress" : "address", `node IP ${nodeIp}`);
  });
}

function checkNetworks(cluster: ClusterFile, problem: Report): void {
  const networking = cluster.spec.kubernetes.networking;
  const podPath = ["spec", "kubernetes", "networking", "podSubnet"];
  const servicePath = ["spec", "kubernetes", "networking", "serviceSubnet"];
  const pods = checkedCidrs(networking.podSubnet, POD_PREFIX, "pod subnet", podPath, problem);
  const services = checkedCidrs(
    networking.serviceSubnet,
    SERVICE_PREFIX,
    "service subnet",
    servicePath,
    problem,
  );
  for (const pod of pods) {
    for (const service of services) {
      if (cidrsOverlap(pod, service))
        problem(servicePath, `${service.text} overlaps the pod subnet ${pod.text}`);
    }
  }
  const subnets = [
    ...pods.map((cidr) => ({ cidr, name: "pod" })),
    ...services.map((cidr) => ({ cidr, name: "service" })),
  ];
  cluster.spec.hosts.forEach((host, index) => {
    for (const field of ["address", "privateAddress"] as const) {
      const text = host[field];
      const ip = text === undefined ? undefined : parseIp(text);
      if (!ip) continue;
      for (const { cidr, name } of subnets) {
        if (cidrContains(cidr, ip))
          problem(["spec", "hosts", index, field], `${text} lies inside the ${name} subnet ${cidr.text}`);
      }
    }
  });
}

function checkedCidrs(
  text: string,
  limits: Record<4 | 6, { min: number; max: number }>,
  what: string,
  path: PathSegment[],
  problem: Report,
): Cidr[] {
  const cidrs = parseCidrList(text) ?? [];
  for (const cidr of cidrs) {
    const { min, max } = limits[cidr.family];
    if (cidr.prefix < min || cidr.prefix > max) {
      problem(path, `${cidr.text}: a ${what} must be between /${min} and /${max} for IPv${cidr.family}`);
    }
  }
  return cidrs;
}

type SecretRefValue = { env?: string; file?: string; prompt?: boolean };

/** Visits every secret reference in the file, with its path. */
export function forEachSecretRef(
  cluster: ClusterFile,
  visit: (ref: SecretRefValue, path: PathSegment[]) => void,
): void {
  const visitSsh = (ssh: ClusterFile["spec"]["ssh"] | undefined, base: PathSegment[]) => {
    if (!ssh) return;
    if (ssh.passphrase) visit(ssh.passphrase, [...base, "passphrase"]);
    if (ssh.password) visit(ssh.password, [...base, "password"]);
    if (ssh.sudo?.password) visit(ssh.sudo.password, [...base, "sudo", "password"]);
  };
  visitSsh(cluster.spec.ssh, ["spec", "ssh"]);
  cluster.spec.hosts.forEach((host, index) => {
    visitSsh(host.ssh as ClusterFile["spec"]["ssh"] | undefined, ["spec", "hosts", index, "ssh"]);
  });
}
