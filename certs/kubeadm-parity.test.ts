// kubeforge's PKI generator against the hand-transcribed kubeadm fixtures (certs/testdata/kubeadm-v*.yaml),
// compared field by field with the real openssl CLI (certs/fixtures.ts). The cluster is the fixtures'
// example cluster; its controlPlaneEndpoint is left unset so kubeforge's default (`demo-api:6443`) is tested.
//
// The generator's API is `ensurePki` in certs/pki.ts. It is imported by a computed specifier so that this
// file type-checks before that module lands; until it does, these tests fail loudly (by design: no skips).
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseClusterFile } from "../config/load.js";
import type { ClusterFile } from "../config/schema.js";
import { compareStore, type KeyType, loadFixture } from "./fixtures.js";

type EnsurePki = (
  cluster: ClusterFile,
  clusterDir: string,
  options?: { now?: Date },
) => Promise<{ created: string[]; reused: string[] }>;

const PKI_MODULE = "./pki.js";

async function loadEnsurePki(): Promise<EnsurePki> {
  const module = (await import(/* @vite-ignore */ PKI_MODULE)) as { ensurePki?: unknown };
  if (typeof module.ensurePki !== "function") throw new Error(`${PKI_MODULE} does not export ensurePki`);
  return module.ensurePki as EnsurePki;
}

/** The fixtures' example cluster (see `exampleCluster` at the top of each fixture). */
function exampleClusterFile(version: string, keyType: KeyType): string {
  return [
    "apiVersion: kubeforge.dev/v1alpha1",
    "kind: Cluster",
    "metadata: {name: demo}",
    "spec:",
    "  kubernetes:",
    `    version: ${version}`,
    `    encryptionAlgorithm: ${keyType}`,
    "    apiServer: {certSANs: [api.example.com, 198.18.0.100]}",
    "  hosts:",
    "    - {name: cp1, address: 198.18.0.11, role: control-plane}",
    "",
  ].join("\n");
}

// The last patch of each old minor, and for v1.34 the last patch known to keep O=kubeadm:cluster-admins on
// apiserver-kubelet-client (v1.34.7) and one certainly after the change that drops it (kubernetes#138960).
const CASES = [
  { minor: "1.21", version: "v1.21.14" },
  { minor: "1.30", version: "v1.30.14" },
  { minor: "1.34", version: "v1.34.7" },
  { minor: "1.34", version: "v1.34.9" },
] as const;
const KEY_TYPES: KeyType[] = ["RSA-2048", "ECDSA-P256"];

let root: string;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "kubeforge-parity-"));
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("kubeforge's PKI matches kubeadm's", { timeout: 180_000 }, () => {
  for (const { minor, version } of CASES) {
    for (const keyType of KEY_TYPES) {
      it(`${version}, ${keyType}: the generated store equals kubeadm ${minor}'s, and a second run keeps it`, async () => {
        const ensurePki = await loadEnsurePki();
        const dir = await mkdtemp(join(root, `${version}-${keyType}-`));
        const { cluster } = parseClusterFile(exampleClusterFile(version, keyType), "cluster.yaml", {
          env: {},
          homeDir: dir,
          cwd: dir,
        });
        const clusterDir = join(dir, "demo");
        const now = new Date();

        const first = await ensurePki(cluster, clusterDir, { now });
        expect(first.created.length).toBeGreaterThan(0);
        expect(first.reused).toEqual([]);

        const fixture = await loadFixture(minor);
        const patch = Number(version.split(".")[2]);
        const options = { keyType, patch, generatedAt: { from: now, to: new Date() } };
        expect(await compareStore(clusterDir, fixture, options)).toEqual([]);

        const second = await ensurePki(cluster, clusterDir, { now: new Date() });
        expect(second.created).toEqual([]);
        expect(second.reused.length).toBeGreaterThan(0);
        expect(await compareStore(clusterDir, fixture, options)).toEqual([]);
      });
    }
  }
});
