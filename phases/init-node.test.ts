import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseKubeconfig } from "../certs/pki.js";
import { clusterFile, tempClusterDir } from "../certs/testing.js";
import { runWorkflow } from "../workflow/runner.js";
import {
  controlPlanePki,
  KUBELET_CLIENT_CURRENT,
  rotatingKubeletConf,
  storePhase,
  withEndpointEntry,
} from "./init-node.js";

describe("withEndpointEntry", () => {
  const entry = { name: "demo-api", ip: "198.18.0.11" };

  it("appends one marked line and keeps everything else", () => {
    const hosts = "127.0.0.1 localhost\n198.18.0.12 w1\n";
    expect(withEndpointEntry(hosts, entry)).toBe(
      "127.0.0.1 localhost\n198.18.0.12 w1\n198.18.0.11 demo-api # kubeforge: control-plane endpoint\n",
    );
  });

  it("replaces its own line when the control plane moved, and is stable on a re-run", () => {
    const once = withEndpointEntry("127.0.0.1 localhost\n", { name: "demo-api", ip: "198.18.0.99" });
    const moved = withEndpointEntry(once, entry);
    expect(moved).toBe("127.0.0.1 localhost\n198.18.0.11 demo-api # kubeforge: control-plane endpoint\n");
    expect(withEndpointEntry(moved, entry)).toBe(moved);
  });
});

describe("rotatingKubeletConf", () => {
  it("points the current user at the kubelet's rotated certificate and keeps cluster and context", () => {
    const conf = `apiVersion: v1
kind: Config
clusters:
- cluster: {certificate-authority-data: Q0E=, server: "https://demo-api:6443"}
  name: kubernetes
contexts:
- context: {cluster: kubernetes, user: "system:node:cp1"}
  name: system:node:cp1@kubernetes
current-context: system:node:cp1@kubernetes
users:
- name: system:node:cp1
  user: {client-certificate-data: Q0VSVA==, client-key-data: S0VZ}
`;
    const rotated = parseKubeconfig(rotatingKubeletConf(conf));
    expect(rotated.users).toEqual([
      {
        name: "system:node:cp1",
        user: { "client-certificate": KUBELET_CLIENT_CURRENT, "client-key": KUBELET_CLIENT_CURRENT },
      },
    ]);
    expect(rotated.clusters).toEqual(parseKubeconfig(conf).clusters);
    expect(rotatingKubeletConf(rotatingKubeletConf(conf))).toBe(rotatingKubeletConf(conf));
  });
});

describe("controlPlanePki", () => {
  it("lays the store's CAs and one node's leaves out as kubeadm does, keys 0600 and certificates 0644", async () => {
    const store = await mkdtemp(join(tmpdir(), "kf-pki-"));
    try {
      const files: Record<string, string> = {
        "pki/ca.crt": "ca",
        "pki/ca.key": "ca-key",
        "pki/sa.key": "sa",
        "pki/sa.pub": "sa-pub",
        "pki/etcd/ca.crt": "etcd-ca",
        "nodes/cp1/pki/apiserver.crt": "apiserver",
        "nodes/cp1/pki/etcd/server.key": "etcd-server-key",
        "nodes/cp2/pki/apiserver.crt": "someone else's",
      };
      for (const [path, content] of Object.entries(files)) {
        await mkdir(join(store, path, ".."), { recursive: true });
        await writeFile(join(store, path), content);
      }
      const laid = (await controlPlanePki(store, "cp1"))
        .map((file) => `${file.path} ${file.mode.toString(8)} ${file.content.toString()}`)
        .sort();
      expect(laid).toEqual([
        "/etc/kubernetes/pki/apiserver.crt 644 apiserver",
        "/etc/kubernetes/pki/ca.crt 644 ca",
        "/etc/kubernetes/pki/ca.key 600 ca-key",
        "/etc/kubernetes/pki/etcd/ca.crt 644 etcd-ca",
        "/etc/kubernetes/pki/etcd/server.key 600 etcd-server-key",
        "/etc/kubernetes/pki/sa.key 600 sa",
        "/etc/kubernetes/pki/sa.pub 600 sa-pub",
      ]);
    } finally {
      await rm(store, { recursive: true, force: true });
    }
  });
});

describe("certs/store", () => {
  async function runStore(clusterDir: string, dryRun: boolean) {
    const cluster = clusterFile({ controlPlanes: 1 });
    const data = {
      file: "cluster.yaml",
      cluster,
      hosts: [],
      facts: new Map(),
      ignorePreflightErrors: [],
      checks: [],
      nodeChecks: [],
      members: new Set<string>(),
      now: Date.now,
      clusterDir,
      timeouts: { kubeletHealthMs: 1, controlPlaneMs: 1 },
    };
    return runWorkflow(
      { command: "test", phases: [storePhase] },
      { data, dryRun, concurrency: 1, emit: () => undefined, signal: new AbortController().signal },
    );
  }

  it("in a dry run says what it would generate and writes nothing; then generates it once", async () => {
    const { dir, cleanup } = await tempClusterDir();
    try {
      const planned = await runStore(dir, true);
      expect(Object.values(planned.changes).flat()).toEqual([
        expect.stringMatching(/^generate \d+ files in the local store/),
      ]);
      await expect(readdir(dir)).rejects.toThrow();
      const made = await runStore(dir, false);
      expect(Object.values(made.changes).flat()).toHaveLength(1);
      expect(await readdir(join(dir, "pki"))).toContain("ca.crt");
      expect((await runStore(dir, false)).changes).toEqual({});
    } finally {
      await cleanup();
    }
  });
});
