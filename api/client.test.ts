// The client against the recording fake API server, over real TLS with a PKI from the local store.
import { readFile } from "node:fs/promises";
import { createServer } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { ensurePki } from "../certs/store.js";
import { clusterFile, tempClusterDir } from "../certs/testing.js";
import { causeChain, InterruptedError, messageOf } from "../workflow/errors.js";
import {
  ApiError,
  isForbidden,
  matchesLive,
  openClusterApi,
  type RetryOptions,
  serverVersion,
  withRetry,
} from "./client.js";
import type { ObjectRef } from "./cluster-api.js";
import { type RecordingFakeApiServer, startFakeApiServerFromStore } from "./fake-apiserver.js";
import type { ApiObject } from "./objects.js";

const FAST: RetryOptions = { timeoutMs: 2_000, intervalMs: 50 };
const KUBE_SYSTEM: ObjectRef = { apiVersion: "v1", kind: "Namespace", name: "kube-system" };

let dir: string;
let cleanup: () => Promise<void>;
let fake: RecordingFakeApiServer;
let superAdmin: string;
let admin: string;

beforeAll(async () => {
  ({ dir, cleanup } = await tempClusterDir());
  // v1.30: admin.conf is O=kubeadm:cluster-admins (Forbidden until bound), super-admin.conf O=system:masters.
  await ensurePki(clusterFile({ version: "v1.30.4" }), dir);
  superAdmin = await readFile(join(dir, "kubeconfigs/super-admin.conf"), "utf8");
  admin = await readFile(join(dir, "kubeconfigs/admin.conf"), "utf8");
  fake = await startFakeApiServerFromStore(dir, "cp1");
});

afterAll(async () => {
  await fake.close();
  await cleanup();
});

beforeEach(() => fake.clearRecords());

const open = (kubeconfig = superAdmin, retry = FAST) =>
  openClusterApi({ kubeconfig, dial: { host: fake.host, port: fake.port }, retry });

const configMap = (name: string, data: Record<string, string>): ApiObject => ({
  apiVersion: "v1",
  kind: "ConfigMap",
  metadata: { name, namespace: "kube-system" },
  data,
});

/** A port nothing listens on (yet). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  return typeof address === "object" && address ? address.port : 0;
}

describe("openClusterApi", () => {
  it("dials the given address while TLS verifies the kubeconfig's server name (demo-api)", async () => {
    expect(superAdmin).toContain("server: https://demo-api:6443");
    const namespace = await open().get(KUBE_SYSTEM);
    expect(namespace).toMatchObject({
      apiVersion: "v1",
      kind: "Namespace",
      metadata: { name: "kube-system" },
    });
    expect(fake.requests.map((r) => r.user)).toContain("kubernetes-super-admin");
  });

  it("refuses a serving certificate for another name, without retrying", async () => {
    const other = superAdmin.replace("https://demo-api:6443", "https://elsewhere.example:6443");
    const error = await open(other)
      .get(KUBE_SYSTEM)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect(messageOf(error)).toMatch(/^cannot get Namespace kube-system: .*elsewhere\.example/);
    expect((error as ApiError).transient).toBe(false);
    expect(fake.requests).toEqual([]);
  });

  it("apply creates, leaves a matching object alone, and merge-patches what differs", async () => {
    const api = open();
    expect(await api.apply(configMap("apply-me", { a: "1" }))).toBe("created");
    expect(await api.apply(configMap("apply-me", { a: "1" }))).toBe("unchanged");
    // Someone else adds a key (as the bootstrapsigner does to cluster-info): it stays.
    const ref = { apiVersion: "v1", kind: "ConfigMap", name: "apply-me", namespace: "kube-system" };
    await api.patch(ref, { data: { theirs: "x" } });
    expect(await api.apply(configMap("apply-me", { a: "1" }))).toBe("unchanged");
    expect(await api.apply(configMap("apply-me", { a: "2" }))).toBe("updated");
    expect((await api.get(ref))?.data).toEqual({ a: "2", theirs: "x" });
    expect(fake.writes().map(({ verb, name }) => `${verb} ${name}`)).toEqual([
      "create apply-me",
      "patch apply-me",
      "patch apply-me",
    ]);
  });

  it("gets, lists by label, patches (null removes) and deletes", async () => {
    const api = open();
    const ref = { apiVersion: "v1", kind: "ConfigMap", name: "crud", namespace: "kube-system" };
    expect(await api.get(ref)).toBeUndefined();
    await api.apply({
      ...configMap("crud", { a: "1" }),
      metadata: { ...ref, labels: { app: "x", tier: "y" } },
    });
    expect(
      (await api.list("v1", "ConfigMap", "kube-system", { labelSelector: "app=x" })).map(
        (o) => o.metadata.name,
      ),
    ).toEqual(["crud"]);
    expect(await api.list("v1", "ConfigMap", "kube-system", { labelSelector: "app=other" })).toEqual([]);
    const patched = await api.patch(ref, { metadata: { labels: { tier: null } } });
    expect(patched.metadata).toMatchObject({ labels: { app: "x" } });
    expect(await api.delete(ref)).toBe(true);
    expect(await api.delete(ref)).toBe(false);
  });

  it("names the object and the server's message; a 4xx is not retried", async () => {
    const error = await open(admin)
      .apply(configMap("kubeadm-config", {}))
      .catch((e: unknown) => e);
    expect(isForbidden(error)).toBe(true);
    expect(messageOf(error)).toBe(
      'cannot get ConfigMap kube-system/kubeadm-config: configmaps "kubeadm-config" is forbidden: User "kubernetes-admin" cannot get resource "configmaps" in API group "" in the namespace "kube-system"',
    );
    expect(fake.requests.filter((r) => r.path.includes("kubeadm-config"))).toHaveLength(1);
  });

  it("never puts Secret data into an error", async () => {
    const secret: ApiObject = {
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "bootstrap-token-abcdef", namespace: "no-such-namespace" },
      data: { "token-secret": Buffer.from("0123456789abcdef").toString("base64") },
    };
    const error = await open()
      .apply(secret)
      .catch((e: unknown) => e);
    expect(messageOf(error)).toBe(
      'cannot create Secret no-such-namespace/bootstrap-token-abcdef: namespaces "no-such-namespace" not found',
    );
    for (const link of causeChain(error)) {
      expect(messageOf(link)).not.toContain("0123456789abcdef");
      expect(messageOf(link)).not.toContain("MDEyMzQ1Njc4OWFiY2RlZg");
    }
  });

  it("retries 5xx answers", async () => {
    fake.failNext(2);
    expect(await open().get(KUBE_SYSTEM)).toMatchObject({ metadata: { name: "kube-system" } });
    expect(fake.requests.map((r) => r.status)).toEqual([503, 503, 200, 200]);
  });

  it("retries a refused connection until the API server is up", async () => {
    const port = await freePort();
    const api = openClusterApi({ kubeconfig: superAdmin, dial: { host: "127.0.0.1", port }, retry: FAST });
    const answer = api.get(KUBE_SYSTEM);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const late = await startFakeApiServerFromStore(dir, "cp1", { port });
    try {
      expect(await answer).toMatchObject({ metadata: { name: "kube-system" } });
    } finally {
      await late.close();
    }
  });

  it("gives up after the retry timeout, saying what it tried and the last error", async () => {
    const port = await freePort();
    const api = openClusterApi({
      kubeconfig: superAdmin,
      dial: { host: "127.0.0.1", port },
      retry: { timeoutMs: 300, intervalMs: 100 },
    });
    await expect(api.get(KUBE_SYSTEM)).rejects.toThrow(
      /^timed out after 300 ms waiting for get Namespace kube-system to succeed \([2-5] tries, every 100 ms\); last error: cannot get Namespace kube-system: .*ECONNREFUSED/,
    );
  });

  it("with a retry timeout of 0 asks once and throws the client's own error (how a dry run reads)", async () => {
    const port = await freePort();
    const api = openClusterApi({
      kubeconfig: superAdmin,
      dial: { host: "127.0.0.1", port },
      retry: { timeoutMs: 0, intervalMs: 100 },
    });
    const started = performance.now();
    const error = await api.get(KUBE_SYSTEM).catch((e: unknown) => e);
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).transient).toBe(true);
    expect(messageOf(error)).toMatch(/^cannot get Namespace kube-system: .*ECONNREFUSED/);
  });
});

describe("withRetry", () => {
  it("retries what retryOn picks until the call succeeds, and ends at once on any other error", async () => {
    let calls = 0;
    const conflict = new ApiError("cannot patch Node cp1: Conflict", 409, "Conflict", false, {});
    expect(
      await withRetry(
        "patch Node cp1",
        async () => {
          calls += 1;
          if (calls < 3) throw conflict;
          return "patched";
        },
        { timeoutMs: 1_000, intervalMs: 1, retryOn: (e) => e === conflict },
      ),
    ).toBe("patched");
    expect(calls).toBe(3);
    calls = 0;
    // Default retryOn: transient errors only; a Conflict is not one.
    await expect(
      withRetry(
        "patch Node cp1",
        async () => {
          calls += 1;
          throw conflict;
        },
        { timeoutMs: 1_000, intervalMs: 1 },
      ),
    ).rejects.toBe(conflict);
    expect(calls).toBe(1);
  });

  it("stops when the run is interrupted", async () => {
    const controller = new AbortController();
    const transient = new ApiError("cannot get Node cp1: no answer in time", undefined, undefined, true, {});
    const retrying = withRetry("get Node cp1", () => Promise.reject(transient), {
      timeoutMs: 60_000,
      intervalMs: 10,
      signal: controller.signal,
    });
    setTimeout(() => controller.abort(), 30);
    await expect(retrying).rejects.toBeInstanceOf(InterruptedError);
  });
});

describe("serverVersion", () => {
  it("asks /version through the dialled address with the kubeconfig's TLS name", async () => {
    await expect(
      serverVersion({ kubeconfig: admin, dial: { host: fake.host, port: fake.port } }),
    ).resolves.toBe("v0.0.0-kubeforge-recording-fake");
  });
});

describe("matchesLive", () => {
  it("is true when every field we set is there, whatever the server added", () => {
    const live = {
      metadata: { name: "a", uid: "u", resourceVersion: "7" },
      data: { a: "1", extra: "2" },
      subjects: [{ kind: "Group", name: "g", apiGroup: "rbac.authorization.k8s.io" }],
    };
    expect(
      matchesLive(
        { metadata: { name: "a" }, data: { a: "1" }, subjects: [{ kind: "Group", name: "g" }] },
        live,
      ),
    ).toBe(true);
    expect(matchesLive({ data: { a: "2" } }, live)).toBe(false);
    expect(matchesLive({ subjects: [] }, live)).toBe(false);
    expect(matchesLive({ rules: [] }, live)).toBe(true);
  });
});
