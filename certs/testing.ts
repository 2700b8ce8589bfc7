// Test helpers for certs/: cluster files, the real `openssl` CLI, and snapshots of a store's files.
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, readdir, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { parseClusterFile } from "../config/load.js";
import type { ClusterFile } from "../config/schema.js";

export interface ClusterOptions {
  version?: string;
  algorithm?: string;
  certSANs?: string[];
  controlPlanes?: number;
  /** Extra YAML lines under `spec.kubernetes` (indented by the helper). */
  kubernetes?: string[];
}

/** A small valid cluster: `cp1…cpN` control planes and one worker, addresses in 198.18.0.0/15. */
export function clusterFile(options: ClusterOptions = {}): ClusterFile {
  const controlPlanes = options.controlPlanes ?? 2;
  const hosts = [
    ...Array.from(
      { length: controlPlanes },
      (_, i) => `    - {name: cp${i + 1}, address: 198.18.0.${11 + i}, role: control-plane}`,
    ),
    "    - {name: w1, address: 198.18.0.30, role: worker}",
  ];
  const text = [
    "apiVersion: kubeforge.dev/v1alpha1",
    "kind: Cluster",
    "metadata: {name: demo}",
    "spec:",
    "  kubernetes:",
    `    version: ${options.version ?? "v1.34.2"}`,
    `    encryptionAlgorithm: ${options.algorithm ?? "ECDSA-P256"}`,
    `    apiServer: {certSANs: [${(options.certSANs ?? ["api.example.com", "198.18.0.100"]).join(", ")}]}`,
    ...(options.kubernetes ?? []).map((line) => `    ${line}`),
    "  hosts:",
    ...hosts,
    "",
  ].join("\n");
  return parseClusterFile(text, "cluster.yaml", { env: {}, homeDir: tmpdir(), cwd: tmpdir() }).cluster;
}

/** A fresh `<tmp>/demo` cluster directory (not created) and a function that removes it all. */
export async function tempClusterDir(): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const root = await mkdtemp(join(tmpdir(), "kubeforge-certs-"));
  return { dir: join(root, "demo"), cleanup: () => rm(root, { recursive: true, force: true }) };
}

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

export function openssl(args: string[], input?: string): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile("openssl", args, { encoding: "utf8" }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

/** `openssl verify -CAfile ca cert` succeeded. */
export async function verifies(caFile: string, certFile: string): Promise<boolean> {
  const run = await openssl(["verify", "-CAfile", caFile, certFile]);
  return run.code === 0 && run.stdout.trim() === `${certFile}: OK`;
}

/** The subject as kubeadm's own e2e tests print it: `O = a, CN = b`. */
export async function subjectOf(certFile: string): Promise<string> {
  const run = await openssl([
    "x509",
    "-in",
    certFile,
    "-noout",
    "-subject",
    "-nameopt",
    "sep_comma_plus_space,space_eq,sname",
  ]);
  return run.stdout.trim().replace(/^subject=/, "");
}

/** `openssl x509 -ext NAME` text, trimmed lines (header first); empty when the extension is absent. */
export async function extensionOf(certFile: string, name: string): Promise<string> {
  const run = await openssl(["x509", "-in", certFile, "-noout", "-ext", name]);
  return run.stdout
    .split("\n")
    .map((line) => line.trim())
    .filter(Boolean)
    .join("\n");
}

export async function validityOf(certFile: string): Promise<{ notBefore: Date; notAfter: Date }> {
  const run = await openssl(["x509", "-in", certFile, "-noout", "-startdate", "-enddate"]);
  const field = (name: string) =>
    new Date(/=(.+)/.exec(run.stdout.split("\n").find((l) => l.startsWith(name)) ?? "")?.[1] ?? "");
  return { notBefore: field("notBefore"), notAfter: field("notAfter") };
}

/** The key's public half equals the certificate's, per openssl. */
export async function keyMatchesCert(keyPem: string, certPem: string): Promise<boolean> {
  const fromKey = await openssl(["pkey", "-pubout"], keyPem);
  const fromCert = await openssl(["x509", "-noout", "-pubkey"], certPem);
  return fromKey.code === 0 && fromCert.code === 0 && fromKey.stdout === fromCert.stdout;
}

export interface FileState {
  sha256: string;
  mtimeMs: number;
  mode: number;
}

/** Every file and directory under `dir` with its hash (files), mtime and mode. */
export async function snapshot(dir: string): Promise<Map<string, FileState>> {
  const states = new Map<string, FileState>();
  const walk = async (current: string): Promise<void> => {
    for (const entry of await readdir(current, { withFileTypes: true })) {
      const path = join(current, entry.name);
      const info = await stat(path);
      const sha256 = entry.isFile()
        ? createHash("sha256")
            .update(await readFile(path))
            .digest("hex")
        : "dir";
      states.set(relative(dir, path), { sha256, mtimeMs: info.mtimeMs, mode: info.mode & 0o777 });
      if (entry.isDirectory()) await walk(path);
    }
  };
  await walk(dir);
  return states;
}
