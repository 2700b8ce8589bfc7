// Loading a cluster file: read, parse with line numbers, substitute ${ENV}, default, validate,
// resolve paths. Pure apart from reading the file; the environment and home directory are passed in.
import { readFile } from "node:fs/promises";
import { dirname, isAbsolute, resolve } from "node:path";
import { ConfigError, type ConfigIssue } from "../workflow/errors.js";
import "./formats.js";
import type { ClusterFile } from "./schema.js";
import { applyDefaults, crossFieldProblems, type Problem, schemaProblems } from "./validate.js";
import { formatPath, type PathSegment, parseYaml, YamlSyntaxError } from "./yaml.js";

export interface LoadOptions {
  env: Readonly<Record<string, string | undefined>>;
  homeDir: string;
  /** What a relative `file` is relative to. */
  cwd: string;
}

export interface LoadedCluster {
  /** The file as given on the command line, for messages. */
  file: string;
  /** The validated file with every default filled in and every path absolute. */
  cluster: ClusterFile;
}

export async function loadClusterFile(file: string, options: LoadOptions): Promise<LoadedCluster> {
  let text: string;
  try {
    text = await readFile(resolve(options.cwd, file), "utf8");
  } catch (error) {
    const reason =
      (error as NodeJS.ErrnoException).code === "ENOENT" ? "file not found" : (error as Error).message;
    throw new ConfigError(
      [{ file, line: undefined, path: "", message: `${reason} (pass the cluster file with -f FILE)` }],
      {
        cause: error,
      },
    );
  }
  return parseClusterFile(text, file, options);
}

export function parseClusterFile(text: string, file: string, options: LoadOptions): LoadedCluster {
  const issue = (line: number | undefined, path: PathSegment[], message: string): ConfigIssue => ({
    file,
    line,
    path: formatPath(path),
    message,
  });

  let parsed: ReturnType<typeof parseYaml>;
  try {
    parsed = parseYaml(text);
  } catch (error) {
    if (error instanceof YamlSyntaxError)
      throw new ConfigError([issue(error.line, [], error.message)], { cause: error });
    throw error;
  }
  if (parsed.value === null || typeof parsed.value !== "object" || Array.isArray(parsed.value)) {
    throw new ConfigError([issue(1, [], "must be a mapping with apiVersion, kind, metadata and spec")]);
  }

  const located = (problems: Problem[]) =>
    problems.map((p) => issue(parsed.lineOf(p.path), p.path, p.message));
  const substitution = substituteEnv(parsed.value, options.env);
  const defaulted = applyDefaults(substitution.value);
  const findings = [...substitution.problems, ...schemaProblems(defaulted)];
  const problems = [...findings, ...crossFieldProblems(defaulted, findings)];
  if (problems.length > 0) {
    const issues = located(problems).sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
    throw new ConfigError(issues);
  }

  const baseDir = dirname(resolve(options.cwd, file));
  return { file, cluster: resolvePaths(defaulted as ClusterFile, baseDir, options.homeDir) };
}

const ENV_REFERENCE = /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/** `${NAME}` and `${NAME:-default}` in string values; `$$` is a literal `$`. */
function substituteEnv(
  value: unknown,
  env: LoadOptions["env"],
  path: PathSegment[] = [],
): { value: unknown; problems: Problem[] } {
  const problems: Problem[] = [];
  const visit = (node: unknown, at: PathSegment[]): unknown => {
    if (typeof node === "string") {
      return node.replace(ENV_REFERENCE, (match, name: string | undefined, fallback: string | undefined) => {
        if (match === "$$") return "$";
        const found = env[name ?? ""];
        if (found !== undefined && found !== "") return found;
        if (fallback !== undefined) return fallback;
        problems.push({
          path: at,
          message: `environment variable ${name} is not set (write \${${name}:-default} for a default)`,
        });
        return match;
      });
    }
    if (Array.isArray(node)) return node.map((item, index) => visit(item, [...at, index]));
    if (node !== null && typeof node === "object") {
      return Object.fromEntries(Object.entries(node).map(([key, item]) => [key, visit(item, [...at, key])]));
    }
    return node;
  };
  return { value: visit(value, path), problems };
}

function resolvePath(path: string, baseDir: string, homeDir: string): string {
  if (path === "~") return homeDir;
  if (path.startsWith("~/")) return resolve(homeDir, path.slice(2));
  return isAbsolute(path) ? path : resolve(baseDir, path);
}

// Fields holding local file paths, relative to an ssh settings block (spec.ssh, spec.hosts[].ssh).
const SSH_PATH_FIELDS = [
  ["keyPath"],
  ["knownHostsPath"],
  ["passphrase", "file"],
  ["password", "file"],
  ["sudo", "password", "file"],
];

/** Makes every path absolute: relative to the file's directory, `~` to the home directory. Mutates. */
function resolvePaths(cluster: ClusterFile, baseDir: string, homeDir: string): ClusterFile {
  const absolute = (container: Record<string, unknown> | undefined, fields: string[]) => {
    const key = fields.at(-1) ?? "";
    const parent = fields
      .slice(0, -1)
      .reduce<Record<string, unknown> | undefined>(
        (node, field) => node?.[field] as Record<string, unknown> | undefined,
        container,
      );
    if (parent && typeof parent[key] === "string") parent[key] = resolvePath(parent[key], baseDir, homeDir);
  };
  const spec = cluster.spec;
  for (const ssh of [spec.ssh, ...spec.hosts.map((host) => host.ssh)]) {
    for (const fields of SSH_PATH_FIELDS) absolute(ssh, fields);
  }
  absolute(spec.artifacts, ["bundle"]);
  return cluster;
}
