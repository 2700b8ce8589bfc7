// Reading a cluster's local PKI store the way the proofs need it: every file hashed (to prove nothing
// changed) and kubeconfigs taken apart into PEM.
import { createHash, X509Certificate } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import yaml from "js-yaml";

/**
 * Every file under `clusterDir` (minus the per-run logs/, which are not the store) as
 * `relative path → "sha256 mode"`, sorted by path.
 */
export function snapshotStore(
  clusterDir: string,
  exclude: readonly string[] = ["logs"],
): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) =>
      a.name.localeCompare(b.name),
    )) {
      const path = join(dir, entry.name);
      const rel = relative(clusterDir, path);
      if (exclude.some((prefix) => rel === prefix || rel.startsWith(`${prefix}/`))) continue;
      if (entry.isDirectory()) {
        out[`${rel}/`] = `dir ${(statSync(path).mode & 0o7777).toString(8)}`;
        walk(path);
      } else {
        const hash = createHash("sha256").update(readFileSync(path)).digest("hex");
        out[rel] = `${hash} ${(statSync(path).mode & 0o7777).toString(8)}`;
      }
    }
  };
  walk(clusterDir);
  return out;
}

export interface KubeconfigParts {
  server: string;
  clusterName: string;
  userName: string;
  caPem: string;
  certPem: string;
  keyPem: string;
}

interface KubeconfigDocument {
  clusters: Array<{ name: string; cluster: { server: string; "certificate-authority-data": string } }>;
  users: Array<{ name: string; user: { "client-certificate-data": string; "client-key-data": string } }>;
  contexts: Array<{ name: string; context: { cluster: string; user: string } }>;
  "current-context": string;
}

/** The current context's server, CA and client credentials, decoded to PEM. */
export function parseKubeconfig(text: string): KubeconfigParts {
  const doc = yaml.load(text) as KubeconfigDocument;
  const context = doc.contexts.find((c) => c.name === doc["current-context"])?.context;
  if (!context) throw new Error(`kubeconfig has no context ${doc["current-context"]}`);
  const cluster = doc.clusters.find((c) => c.name === context.cluster)?.cluster;
  const user = doc.users.find((u) => u.name === context.user)?.user;
  if (!cluster || !user) throw new Error("kubeconfig's current context names a missing cluster or user");
  const pem = (b64: string) => Buffer.from(b64, "base64").toString("utf8");
  return {
    server: cluster.server,
    clusterName: context.cluster,
    userName: context.user,
    caPem: pem(cluster["certificate-authority-data"]),
    certPem: pem(user["client-certificate-data"]),
    keyPem: pem(user["client-key-data"]),
  };
}

/** A kubeconfig with the same cluster entry and other client credentials. */
export function withClientCredentials(text: string, certPem: string, keyPem: string): string {
  const doc = yaml.load(text) as KubeconfigDocument;
  const context = doc.contexts.find((c) => c.name === doc["current-context"])?.context;
  for (const user of doc.users) {
    if (user.name !== context?.user) continue;
    user.user["client-certificate-data"] = Buffer.from(certPem).toString("base64");
    user.user["client-key-data"] = Buffer.from(keyPem).toString("base64");
  }
  return yaml.dump(doc);
}

/** CN and O values of a certificate's subject. */
export function subjectOf(certPem: string): { cn: string; o: string[] } {
  const lines = new X509Certificate(certPem).subject.split("\n");
  return {
    cn: lines.find((l) => l.startsWith("CN="))?.slice(3) ?? "",
    o: lines.filter((l) => l.startsWith("O=")).map((l) => l.slice(2)),
  };
}

export function fingerprint(certPem: string | Buffer): string {
  return new X509Certificate(certPem).fingerprint256;
}
