// What the schema becomes for people and editors: a plain JSON Schema, the README's field
// reference, and the minimal file with every default filled in.
import type { TSchema } from "@sinclair/typebox";
import yaml from "js-yaml";
import { API_VERSION, ClusterSchema, KIND } from "./schema.js";
import { applyDefaults } from "./validate.js";
import { describeSupportedVersions } from "./versions.js";

/**
 * JSON Schema (draft-07) for editors. A field with a default is not required of the user, so it
 * leaves `required`; TypeBox's private markers are dropped by the JSON round trip.
 */
export function clusterJsonSchema(): Record<string, unknown> {
  const strip = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(strip);
    if (node === null || typeof node !== "object") return node;
    const schema = Object.fromEntries(
      Object.entries(node)
        .filter(([key]) => key !== "secret")
        .map(([key, value]) => [key, strip(value)]),
    ) as Record<string, unknown>;
    const properties = schema.properties as Record<string, { default?: unknown }> | undefined;
    if (Array.isArray(schema.required) && properties) {
      const required = schema.required.filter((name: string) => properties[name]?.default === undefined);
      if (required.length > 0) schema.required = required;
      else delete schema.required;
    }
    return schema;
  };
  const plain = JSON.parse(JSON.stringify(ClusterSchema));
  return { $schema: "http://json-schema.org/draft-07/schema#", ...(strip(plain) as object) };
}

/** The smallest valid file, as in the README's quick start. */
export const MINIMAL_CLUSTER = {
  apiVersion: API_VERSION,
  kind: KIND,
  metadata: { name: "demo" },
  spec: {
    ssh: { user: "root", keyPath: "./id_ed25519", knownHostsPath: "./known_hosts" },
    kubernetes: { version: "v1.30.4" },
    hosts: [
      { name: "cp1", address: "198.18.0.11", role: "control-plane" },
      { name: "w1", address: "198.18.0.12", role: "worker" },
    ],
  },
};

export function dumpYaml(value: unknown): string {
  return yaml.dump(value, { noRefs: true, lineWidth: 120, quotingType: '"' });
}

/** `kubeforge config print-defaults`: the minimal file with every default the schema states. */
export function printDefaults(document: unknown = MINIMAL_CLUSTER): string {
  return dumpYaml(applyDefaults(document));
}

interface Row {
  path: string;
  type: string;
  required: boolean;
  fallback: string;
  description: string;
}

function typeOf(schema: TSchema): string {
  if (schema.const !== undefined) return `\`${schema.const}\``;
  if (schema.anyOf) return (schema.anyOf as TSchema[]).map(typeOf).join(" \\| ");
  if (schema.type === "array") return `list of ${typeOf(schema.items as TSchema)}`;
  if (schema.type === "object" && schema.patternProperties) return "map of string";
  if (schema.secret) return "secret ref";
  return String(schema.type ?? "any");
}

function rows(schema: TSchema, path: string, required: boolean, out: Row[]): void {
  const fallback = schema.default === undefined ? "" : `\`${JSON.stringify(schema.default)}\``;
  const isNested = schema.type === "object" && schema.properties && !schema.secret;
  const items = schema.type === "array" ? (schema.items as TSchema) : undefined;
  if (path) {
    const nestedDefault = isNested || (items?.type === "object" && items.properties);
    out.push({
      path,
      type: typeOf(schema),
      required,
      fallback: nestedDefault && fallback.startsWith("`{") ? "" : fallback,
      description: schema.description ?? "",
    });
  }
  const objectSchema = isNested ? schema : items?.type === "object" && items.properties ? items : undefined;
  if (!objectSchema) return;
  const requiredNames: string[] = objectSchema.required ?? [];
  const prefix = objectSchema === items ? `${path}[]` : path;
  for (const [name, child] of Object.entries(objectSchema.properties as Record<string, TSchema>)) {
    const childPath = prefix ? `${prefix}.${name}` : name;
    rows(child, childPath, requiredNames.includes(name) && child.default === undefined, out);
  }
}

/** The cluster file reference in the README, generated so it cannot drift from the schema. */
export function renderReference(): string {
  const out: Row[] = [];
  rows(ClusterSchema, "", true, out);
  const cell = (text: string) => text.replace(/\|/g, "\\|").replace(/\n/g, " ");
  const table = out.map(
    (row) =>
      `| \`${row.path}\` | ${row.type} | ${row.required ? "yes" : ""} | ${row.fallback} | ${cell(row.description)} |`,
  );
  return [
    `Supported Kubernetes versions: ${describeSupportedVersions()}.`,
    "",
    "| Field | Type | Required | Default | Description |",
    "|---|---|---|---|---|",
    ...table,
  ].join("\n");
}
