// The API phases of init through the real runner and client, against the recording fake API server
// over real TLS, with a PKI made by the local store. The expected writes are written out by hand
// from kubeadm-spec.md §1.8, not derived from api/objects.ts.

import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { openClusterApi } from "../api/client.js";
import { type RecordingFakeApiServer, startFakeApiServerFromStore } from "../api/fake-apiserver.js";
import type { ApiObject } from "../api/objects.js";
import { ensurePki } from "../certs/store.js";
import { clusterFile, tempClusterDir } from "../certs/testing.js";
import { parseClusterFile } from "../config/load.js";
import type { ClusterFile } from "../config/schema.js";
import type { ClusterHost } from "../hosts/open.js";
import { PhaseError } from "../workflow/errors.js";
import type { RunEvent } from "../workflow/events.js";
import type { Workflow } from "../workflow/phase.js";
import { runWorkflow } from "../workflow/runner.js";
import {
  type ApiRun,
  type ApiTimeouts,
  bootstrapTokenPhase,
  markControlPlanePhase,
  markWorkersPhase,
  uploadConfigPhase,
} from "./init-api.js";

const WORKFLOW: Workflow<ApiRun, ClusterHost> = {
  command: "init",
  phases: [uploadConfigPhase, markControlPlanePhase, bootstrapTokenPhase],
};
const FAST: ApiTimeouts = {
  apiCallMs: 2_000,
  retryIntervalMs: 20,
  nodeRegistrationMs: 2_000,
  clusterInfoSignatureMs: 2_000,
};
const HOUR = 3_600_000;
// The fake checks token expiry against the real clock, so the runs start from it too.
const NOW = Date.now();

interface Setup {
  cluster: ClusterFile;
  dir: string;
  fake: RecordingFakeApiServer;
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setup(
  cluster: ClusterFile,
  options: { signer?: boolean; register?: "now" | "later" | "never" } = {},
): Promise<Setup> {
  const { dir, cleanup } = await tempClusterDir();
  cleanups.push(cleanup);
  await ensurePki(cluster, dir);
  const fake = await startFakeApiServerFromStore(dir, "cp1", { bootstrapSigner: options.signer ?? true });
  cleanups.push(() => fake.close());
  // Stands in for cp1's kubelet registering its Node.
  const register = () =>
    fake.put({
      apiVersion: "v1",
      kind: "Node",
      metadata: { name: "cp1", labels: { "kubernetes.io/hostname": "cp1" } },
    });
  if ((options.register ?? "now") === "now") register();
  if (options.register === "later") setTimeout(register, 150);
  return { cluster, dir, fake };
}

function run(
  { cluster, dir, fake }: Setup,
  options: { dryRun?: boolean; now?: number; dial?: { host: string; port: number } } = {},
) {
  const data: ApiRun = {
    cluster,
    clusterDir: dir,
    now: () => options.now ?? NOW,
    apiDial: options.dial ?? { host: fake.host, port: fake.port },
    apiTimeouts: FAST,
  };
  const events: RunEvent[] = [];
  const result = runWorkflow(WORKFLOW, {
    data,
    dryRun: options.dryRun ?? false,
    concurrency: 1,
    emit: (event) => events.push(event),
    signal: new AbortController().signal,
  });
  return { data, events, result };
}

const writesOf = (fake: RecordingFakeApiServer) =>
  fake
    .writes()
    .map(({ verb, kind, namespace, name }) => `${verb} ${kind} ${namespace ? `${namespace}/` : ""}${name}`);

/** kubeadm-spec.md §1.8, in init's order: upload-config/kubeadm, upload-config/kubelet, mark-control-plane, bootstrap-token. */
function expectedWrites(version: "v1.21" | "v1.30" | "v1.34.8", tokenId: string): string[] {
  const kubeletConfig = version === "v1.21" ? "kubelet-config-1.21" : "kubelet-config";
  return [
    ...(version === "v1.21" ? [] : ["create ClusterRoleBinding kubeadm:cluster-admins"]),
    "create ConfigMap kube-system/kubeadm-config",
    "create Role kube-system/kubeadm:nodes-kubeadm-config",
    "create RoleBinding kube-system/kubeadm:nodes-kubeadm-config",
    `create ConfigMap kube-system/${kubeletConfig}`,
    `create Role kube-system/kubeadm:${kubeletConfig}`,
    `create RoleBinding kube-system/kubeadm:${kubeletConfig}`,
    "patch Node cp1",
    `create Secret kube-system/bootstrap-token-${tokenId}`,
    "create ClusterRole kubeadm:get-nodes",
    "create ClusterRoleBinding kubeadm:get-nodes",
    "create ClusterRoleBinding kubeadm:kubelet-bootstrap",
    "create ClusterRoleBinding kubeadm:node-autoapprove-bootstrap",
    "create ClusterRoleBinding kubeadm:node-autoapprove-certificate-rotation",
    ...(version === "v1.34.8" ? ["create ClusterRoleBinding kubeadm:apiserver-kubelet-client"] : []),
    "create ConfigMap kube-public/cluster-info",
    "create Role kube-public/kubeadm:bootstrap-signer-clusterinfo",
    "create RoleBinding kube-public/kubeadm:bootstrap-signer-clusterinfo",
  ];
}

const NODE = { apiVersion: "v1", kind: "Node", name: "cp1" };

describe.each([
  ["v1.21", "v1.21.14"],
  ["v1.30", "v1.30.4"],
  ["v1.34.8", "v1.34.8"],
] as const)("init's API phases for %s", (label, version) => {
  it("write exactly kubeadm's objects, then nothing on a second run", async () => {
    const context = await setup(clusterFile({ version }));
    const first = run(context);
    await first.result;
    const token = first.data.token;
    expect(token?.id).toMatch(/^[a-z0-9]{6}$/);
    expect(writesOf(context.fake)).toEqual(expectedWrites(label, token?.id ?? ""));
    expect(new Set(context.fake.writes().map((w) => w.user))).toEqual(
      new Set(label === "v1.21" ? ["kubernetes-admin"] : ["kubernetes-super-admin", "kubernetes-admin"]),
    );

    const node = context.fake.object(NODE);
    const masterNames = label === "v1.21" ? ["node-role.kubernetes.io/master"] : [];
    expect(Object.keys(node?.metadata.labels ?? {}).sort()).toEqual(
      [
        "kubernetes.io/hostname",
        ...masterNames,
        "node-role.kubernetes.io/control-plane",
        "node.kubernetes.io/exclude-from-external-load-balancers",
      ].sort(),
    );
    expect((node?.spec as { taints?: unknown } | undefined)?.taints).toEqual([
      { key: masterNames[0] ?? "node-role.kubernetes.io/control-plane", effect: "NoSchedule" },
    ]);

    context.fake.clearRecords();
    const second = run(context);
    expect(await second.result).toEqual({ changes: {} });
    expect(context.fake.writes()).toEqual([]);
    expect(second.data.token?.id).toBe(token?.id);
  });
});

describe("init's API phases", () => {
  it("v1.29+: admin.conf is Forbidden, so kubeadm:cluster-admins is bound with super-admin.conf first", async () => {
    const context = await setup(clusterFile({ version: "v1.30.4" }));
    const { events, result } = run(context);
    await result;
    const first = context.fake.requests
      .filter((r) => r.path.includes("namespaces/kube-system") || r.path.includes("clusterrolebindings"))
      .slice(0, 6)
      .map((r) => `${r.user} ${r.method} ${decodeURIComponent(r.path)} ${r.status}`);
    const bindings = "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings";
    expect(first).toEqual([
      "kubernetes-admin GET /api/v1/namespaces/kube-system 403",
      `kubernetes-admin GET ${bindings}/kubeadm:cluster-admins 403`,
      // Read to decide on a change, then by apply itself.
      `kubernetes-super-admin GET ${bindings}/kubeadm:cluster-admins 404`,
      `kubernetes-super-admin GET ${bindings}/kubeadm:cluster-admins 404`,
      `kubernetes-super-admin POST ${bindings}?fieldManager=kubeforge 201`,
      `kubernetes-admin GET ${bindings}/kubeadm:cluster-admins 200`,
    ]);
    expect(
      context.fake
        .writes()
        .slice(1)
        .every((w) => w.user === "kubernetes-admin"),
    ).toBe(true);
    expect(events).toContainEqual(
      expect.objectContaining({ type: "log", message: expect.stringContaining("using super-admin.conf") }),
    );
  });

  it("under --dry-run writes nothing and plans what a real run writes", async () => {
    const context = await setup(clusterFile({ version: "v1.34.8" }));
    const { data, result } = run(context, { dryRun: true });
    const { changes } = await result;
    expect(context.fake.writes()).toEqual([]);
    const planned = expectedWrites("v1.34.8", data.token?.id ?? "").map((w) =>
      w.replace(
        /^patch Node cp1$/,
        "label node-role.kubernetes.io/control-plane, node.kubernetes.io/exclude-from-external-load-balancers; taint node-role.kubernetes.io/control-plane:NoSchedule on Node cp1",
      ),
    );
    expect(changes.workstation).toEqual(planned);
  });

  it("under --dry-run without an API server (fresh init) plans every object as new", async () => {
    const context = await setup(clusterFile({ version: "v1.30.4" }));
    await context.fake.close();
    const { data, events, result } = run(context, { dryRun: true });
    const { changes } = await result;
    expect(changes.workstation).toHaveLength(expectedWrites("v1.30", "").length);
    expect(changes.workstation?.[0]).toBe("create ClusterRoleBinding kubeadm:cluster-admins");
    expect(data.token?.id).toMatch(/^[a-z0-9]{6}$/);
    expect(events).toContainEqual(
      expect.objectContaining({
        type: "log",
        message: expect.stringMatching(
          /^no API server to read \(.*ECONNREFUSED.*\): every object is shown as new$/,
        ),
      }),
    );
  });

  it("never puts the token secret into a log line, a change or an error", async () => {
    const context = await setup(clusterFile({ version: "v1.34.8" }), { signer: false });
    const { data, events, result } = run(context);
    const error = await result.catch((e: unknown) => e);
    const secret = data.token?.secret ?? "";
    expect(secret).toMatch(/^[a-z0-9]{16}$/);
    expect(error).toBeInstanceOf(PhaseError);
    expect((error as Error).message).toMatch(
      /^error execution phase bootstrap-token: timed out after 2s waiting for the controller-manager's bootstrapsigner to sign ConfigMap kube-public\/cluster-info for token [a-z0-9]{6} \(key jws-kubeconfig-[a-z0-9]{6}\) \(\d+ tries, every 20ms\)\. Is kube-controller-manager running/,
    );
    const everything = JSON.stringify({ events, error: (error as Error).message });
    expect(everything).toContain(data.token?.id);
    expect(everything).not.toContain(secret);
    expect(everything).not.toContain(Buffer.from(secret).toString("base64"));
  });

  it("reuses init's token while it has more than an hour left, then makes a new one", async () => {
    const context = await setup(clusterFile({ version: "v1.30.4" }));
    const first = run(context);
    await first.result;
    context.fake.clearRecords();
    const later = run(context, { now: NOW + 22 * HOUR });
    await later.result;
    expect(later.data.token?.id).toBe(first.data.token?.id);
    expect(context.fake.writes()).toEqual([]);
    const tooLate = run(context, { now: NOW + 23.5 * HOUR });
    await tooLate.result;
    expect(tooLate.data.token?.id).not.toBe(first.data.token?.id);
    expect(writesOf(context.fake)).toEqual([
      `create Secret kube-system/bootstrap-token-${tooLate.data.token?.id}`,
    ]);
    const info = context.fake.object({
      ...NODE,
      kind: "ConfigMap",
      name: "cluster-info",
      namespace: "kube-public",
    });
    expect(Object.keys(info?.data as object)).toContain(`jws-kubeconfig-${tooLate.data.token?.id}`);
  });

  it("waits for the Node, and says which when it never registers", async () => {
    const late = await setup(clusterFile({ version: "v1.30.4" }), { register: "later" });
    await run(late).result;
    expect(writesOf(late.fake)).toContain("patch Node cp1");

    const never = await setup(clusterFile({ version: "v1.30.4" }), { register: "never" });
    await expect(run(never).result).rejects.toThrow(
      /^error execution phase mark-control-plane: timed out after 2s waiting for Node cp1 to be registered by its kubelet .*Is the kubelet on cp1 running/,
    );
  });

  it("without workers leaves the control-plane taint off (removing it) and adds the host's labels and taints", async () => {
    const base = clusterFile({ version: "v1.34.8", controlPlanes: 1 });
    const hosts = base.spec.hosts
      .filter((h) => h.role === "control-plane")
      .map((h) => ({
        ...h,
        labels: { zone: "a" },
        taints: [{ key: "dedicated", value: "db", effect: "NoExecute" as const }],
      }));
    const single = await setup({ ...base, spec: { ...base.spec, hosts } }, { register: "never" });
    // As if a kubelet had registered with kubeadm's default taint.
    single.fake.put({
      ...NODE,
      metadata: { name: "cp1" },
      spec: { taints: [{ key: "node-role.kubernetes.io/control-plane", effect: "NoSchedule" }] },
    } as ApiObject);
    const { events, result } = run(single);
    await result;
    expect((single.fake.object(NODE)?.spec as { taints?: unknown } | undefined)?.taints).toEqual([
      { key: "dedicated", value: "db", effect: "NoExecute" },
    ]);
    expect(single.fake.object(NODE)?.metadata.labels).toMatchObject({ zone: "a" });
    expect(events).toContainEqual(
      expect.objectContaining({
        type: "change",
        description:
          "label node-role.kubernetes.io/control-plane, node.kubernetes.io/exclude-from-external-load-balancers, zone; taint dedicated=db:NoExecute; remove taint node-role.kubernetes.io/control-plane:NoSchedule on Node cp1",
      }),
    );
  });

  it("an error names the phase, the object and the server's answer", async () => {
    const context = await setup(clusterFile({ version: "v1.21.14" }));
    const superAdmin = await readFile(join(context.dir, "kubeconfigs/admin.conf"), "utf8");
    const api = openClusterApi({
      kubeconfig: superAdmin,
      dial: { host: context.fake.host, port: context.fake.port },
    });
    await api.delete({ apiVersion: "v1", kind: "Namespace", name: "kube-public" });
    await expect(run(context).result).rejects.toThrow(
      'error execution phase bootstrap-token: cannot create ConfigMap kube-public/cluster-info: namespaces "kube-public" not found',
    );
  });
});

describe("mark-workers", () => {
  it("waits for each worker's Node, adds the cluster file's labels and taints once, and skips bare workers", async () => {
    const { cluster } = parseClusterFile(
      `apiVersion: kubeforge.dev/v1alpha1
kind: Cluster
metadata: {name: demo}
spec:
  kubernetes: {version: v1.30.4}
  hosts:
    - {name: cp1, address: 198.18.0.11, role: control-plane}
    - name: w1
      address: 198.18.0.30
      role: worker
      labels: {node-role.kubernetes.io/worker: ""}
      taints: [{key: gpu, value: "true", effect: NoSchedule}]
    - {name: w2, address: 198.18.0.31, role: worker}
`,
      "cluster.yaml",
      { env: {}, homeDir: tmpdir(), cwd: tmpdir() },
    );
    const hosts = cluster.spec.hosts;
    const context = await setup(cluster);
    setTimeout(() => context.fake.put({ apiVersion: "v1", kind: "Node", metadata: { name: "w1" } }), 150);
    const workflow: Workflow<ApiRun & { hosts: readonly ClusterHost[] }, ClusterHost> = {
      command: "test",
      phases: [markWorkersPhase],
    };
    const data = {
      cluster: context.cluster,
      clusterDir: context.dir,
      now: () => NOW,
      apiDial: { host: context.fake.host, port: context.fake.port },
      apiTimeouts: FAST,
      hosts: hosts.map((spec) => ({ name: spec.name, spec }) as ClusterHost),
    };
    const runIt = () =>
      runWorkflow(workflow, {
        data: { ...data },
        dryRun: false,
        concurrency: 1,
        emit: () => undefined,
        signal: new AbortController().signal,
      });
    await runIt();
    const w1 = context.fake.object({ apiVersion: "v1", kind: "Node", name: "w1" });
    expect(w1?.metadata.labels).toMatchObject({ "node-role.kubernetes.io/worker": "" });
    expect((w1?.spec as { taints?: unknown } | undefined)?.taints).toEqual([
      { key: "gpu", value: "true", effect: "NoSchedule" },
    ]);
    expect(writesOf(context.fake).filter((line) => line.includes("Node"))).toEqual(["patch Node w1"]);
    context.fake.clearRecords();
    await runIt();
    expect(writesOf(context.fake)).toEqual([]);
  });
});
