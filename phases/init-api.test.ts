// The API phases of init through the real runner and client, against the recording fake API server
// over real TLS, with a PKI made by the local store. The expected writes are written out by hand
// from kubeadm-spec.md §1.8, not derived from api/objects.ts.

import { readFile, rm } from "node:fs/promises";
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
import type { LocalPhase, Phase, Workflow } from "../workflow/phase.js";
import { runWorkflow } from "../workflow/runner.js";
import {
  type ApiRun,
  type ApiTimeouts,
  bootstrapTokenPhase,
  bootstrapTokenPhaseWith,
  firstControlPlaneSpec,
  markControlPlanePhase,
  markWorkersPhase,
  untilInitFinished,
  uploadConfigPhase,
  withApi,
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
  options: { signer?: boolean; register?: "now" | "never" } = {},
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
  return { cluster, dir, fake };
}

function run(
  { cluster, dir, fake }: Setup,
  options: {
    dryRun?: boolean;
    now?: number;
    dial?: { host: string; port: number };
    phases?: readonly Phase<ApiRun, ClusterHost>[];
    timeouts?: ApiTimeouts;
    onEvent?: (event: RunEvent) => void;
  } = {},
) {
  const data: ApiRun = {
    cluster,
    clusterDir: dir,
    now: () => options.now ?? NOW,
    apiDial: options.dial ?? { host: fake.host, port: fake.port },
    apiTimeouts: options.timeouts ?? FAST,
  };
  const events: RunEvent[] = [];
  const workflow = options.phases ? { ...WORKFLOW, phases: options.phases } : WORKFLOW;
  const result = runWorkflow(workflow, {
    data,
    dryRun: options.dryRun ?? false,
    concurrency: 1,
    emit: (event) => {
      events.push(event);
      options.onEvent?.(event);
    },
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
      /^error execution phase bootstrap-token: timed out after 2 s waiting for the controller-manager's bootstrapsigner to sign ConfigMap kube-public\/cluster-info for token ([a-z0-9]{6}) \(key jws-kubeconfig-\1\) \(\d+ tries, every 20 ms\); last state: no jws-kubeconfig-\1 key yet\. Is kube-controller-manager running/,
    );
    // The wait said what it polled, and for how long, while it waited.
    expect(events).toContainEqual(
      expect.objectContaining({
        type: "log",
        phase: "bootstrap-token",
        message: `waiting for the controller-manager's bootstrapsigner to sign ConfigMap kube-public/cluster-info for token ${data.token?.id} (key jws-kubeconfig-${data.token?.id}) (0 s of 2 s): no jws-kubeconfig-${data.token?.id} key yet`,
      }),
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
    const late = await setup(clusterFile({ version: "v1.30.4" }), { register: "never" });
    // cp1's kubelet registers its Node a moment after mark-control-plane started waiting for it.
    const { events, result } = run(late, {
      onEvent: (event) => {
        if (event.type === "phase.start" && event.phase === "mark-control-plane")
          setTimeout(() => late.fake.put({ apiVersion: "v1", kind: "Node", metadata: { name: "cp1" } }), 200);
      },
    });
    await result;
    expect(writesOf(late.fake)).toContain("patch Node cp1");
    const lines = events.flatMap((e) =>
      e.type === "log" && e.phase === "mark-control-plane" ? [e.message] : [],
    );
    expect(lines[0]).toBe(
      "waiting for Node cp1 to be registered by its kubelet (0 s of 2 s): no Node cp1 yet",
    );
    expect(lines).toContainEqual(
      expect.stringMatching(/^Node cp1 to be registered by its kubelet: done after \d+ s$/),
    );

    const never = await setup(clusterFile({ version: "v1.30.4" }), { register: "never" });
    await expect(run(never).result).rejects.toThrow(
      /^error execution phase mark-control-plane: timed out after 2 s waiting for Node cp1 to be registered by its kubelet \(\d+ tries, every 20 ms\); last state: no Node cp1 yet\. Is the kubelet on cp1 running \(journalctl -u kubelet\)\?$/,
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

/** The cluster file with its control plane only: `apply` of a one-node cluster. */
function oneNode(version: string): ClusterFile {
  const base = clusterFile({ version, controlPlanes: 1 });
  return {
    ...base,
    spec: { ...base.spec, hosts: base.spec.hosts.filter((h) => h.role === "control-plane") },
  };
}

/** bootstrap-token as join and apply wire it: a token only when the run says one is needed. */
const noTokenNeeded = bootstrapTokenPhaseWith<ApiRun>(() => false);
const NO_TOKEN_PHASES = [uploadConfigPhase, markControlPlanePhase, noTokenNeeded];

const tokenSecrets = (fake: RecordingFakeApiServer) =>
  fake
    .writes()
    .filter((w) => w.kind === "Secret")
    .map((w) => w.name);

describe("bootstrap-token when the run needs no token (join, apply)", () => {
  it("a one-node apply creates the join RBAC and cluster-info, no token, waits for no signature; a re-run writes nothing", async () => {
    // No bootstrapsigner: a wait for a signature would time out.
    const context = await setup(oneNode("v1.34.8"), { signer: false });
    const first = run(context, { phases: NO_TOKEN_PHASES });
    const { changes } = await first.result;
    expect(first.data.token).toBeUndefined();
    expect(writesOf(context.fake)).toEqual(
      expectedWrites("v1.34.8", "").filter((line) => !line.startsWith("create Secret")),
    );
    expect(tokenSecrets(context.fake)).toEqual([]);
    expect(changes.workstation).toContain("create ConfigMap kube-public/cluster-info");
    const messages = first.events.flatMap((e) => (e.type === "log" ? [e.message] : []));
    expect(messages).toContain(
      "no bootstrap token: none has more than an hour left, and no host of this run needs one",
    );
    expect(messages.filter((m) => m.includes("bootstrapsigner"))).toEqual([]);

    context.fake.clearRecords();
    const second = run(context, { phases: NO_TOKEN_PHASES });
    expect(await second.result).toEqual({ changes: {} });
    expect(context.fake.writes()).toEqual([]);
  });

  it("repairs the RBAC and cluster-info of an existing cluster, reusing init's token", async () => {
    const context = await setup(clusterFile({ version: "v1.30.4" }));
    const init = run(context);
    await init.result;
    const superAdmin = openClusterApi({
      kubeconfig: await readFile(join(context.dir, "kubeconfigs/super-admin.conf"), "utf8"),
      dial: { host: context.fake.host, port: context.fake.port },
    });
    const rbac = "rbac.authorization.k8s.io/v1";
    await superAdmin.delete({
      apiVersion: "v1",
      kind: "ConfigMap",
      name: "cluster-info",
      namespace: "kube-public",
    });
    await superAdmin.delete({
      apiVersion: rbac,
      kind: "ClusterRoleBinding",
      name: "kubeadm:kubelet-bootstrap",
    });
    context.fake.clearRecords();

    const repair = run(context, { phases: NO_TOKEN_PHASES, now: NOW + 2 * HOUR });
    await repair.result;
    expect(repair.data.token?.id).toBe(init.data.token?.id);
    expect(writesOf(context.fake)).toEqual([
      "create ClusterRoleBinding kubeadm:kubelet-bootstrap",
      "create ConfigMap kube-public/cluster-info",
    ]);
    // Re-signed for the reused token before the phase ended.
    const info = context.fake.object({
      apiVersion: "v1",
      kind: "ConfigMap",
      name: "cluster-info",
      namespace: "kube-public",
    });
    expect(Object.keys(info?.data as object)).toContain(`jws-kubeconfig-${init.data.token?.id}`);
  });

  it("once init's token is nearly expired makes no new one and writes nothing (init's phase would mint)", async () => {
    const context = await setup(clusterFile({ version: "v1.30.4" }));
    const init = run(context);
    await init.result;
    context.fake.clearRecords();
    const later = run(context, { phases: NO_TOKEN_PHASES, now: NOW + 23.5 * HOUR });
    expect(await later.result).toEqual({ changes: {} });
    expect(later.data.token).toBeUndefined();
    expect(context.fake.writes()).toEqual([]);

    const needed = run(context, {
      phases: [bootstrapTokenPhaseWith<ApiRun>(() => true)],
      now: NOW + 23.5 * HOUR,
    });
    await needed.result;
    expect(needed.data.token?.id).not.toBe(init.data.token?.id);
    expect(tokenSecrets(context.fake)).toEqual([`bootstrap-token-${needed.data.token?.id}`]);
  });

  it("init's own predicate mints while cluster-info is missing (a first or unfinished init), not after", async () => {
    const context = await setup(clusterFile({ version: "v1.30.4" }));
    const initPhases = [
      uploadConfigPhase,
      markControlPlanePhase,
      bootstrapTokenPhaseWith<ApiRun>(untilInitFinished),
    ];
    const first = run(context, { phases: initPhases });
    await first.result;
    expect(tokenSecrets(context.fake)).toEqual([`bootstrap-token-${first.data.token?.id}`]);
    context.fake.clearRecords();
    const later = run(context, { phases: initPhases, now: NOW + 23.5 * HOUR });
    await later.result;
    expect(later.data.token).toBeUndefined();
    expect(context.fake.writes()).toEqual([]);
  });

  it("passes over token Secrets that are not init's or not valid tokens", async () => {
    const context = await setup(clusterFile({ version: "v1.30.4" }));
    const expiration = Buffer.from(
      new Date(NOW + 20 * HOUR).toISOString().replace(/\.\d{3}Z$/, "Z"),
    ).toString("base64");
    const b64 = (text: string) => Buffer.from(text).toString("base64");
    const secret = (name: string, data: Record<string, string>) =>
      context.fake.put({
        apiVersion: "v1",
        kind: "Secret",
        metadata: { name, namespace: "kube-system" },
        type: "bootstrap.kubernetes.io/token",
        data,
      } as ApiObject);
    const init = {
      description: b64("The default bootstrap token generated by 'kubeadm init'."),
      "auth-extra-groups": b64("system:bootstrappers:kubeadm:default-node-token"),
      expiration,
    };
    // Named for another id than its token-id: tokenFromSecret refuses it.
    secret("bootstrap-token-aaaaaa", {
      ...init,
      "token-id": b64("bbbbbb"),
      "token-secret": b64("0123456789abcdef"),
    });
    // A user's token (`kubeforge token create`): not init's to reuse.
    secret("bootstrap-token-cccccc", {
      ...init,
      description: b64("mine"),
      "token-id": b64("cccccc"),
      "token-secret": b64("0123456789abcdef"),
    });
    const first = run(context);
    await first.result;
    expect(first.data.token?.id).toMatch(/^[a-z0-9]{6}$/);
    expect(["aaaaaa", "bbbbbb", "cccccc"]).not.toContain(first.data.token?.id);
    expect(tokenSecrets(context.fake)).toEqual([`bootstrap-token-${first.data.token?.id}`]);
  });
});

describe("withApi", () => {
  /** Reads the Nodes from `data.api`, as pod-network does. */
  function nodesProbe(seen: string[][]): LocalPhase<ApiRun, ClusterHost> {
    return {
      id: "probe",
      title: "Read the Nodes",
      run: async (step) => {
        seen.push((await step.data.api?.list("v1", "Node"))?.map((node) => node.metadata.name) ?? ["no api"]);
      },
    };
  }
  const SLOW: ApiTimeouts = { ...FAST, apiCallMs: 60_000 };

  it("under --dry-run opens the API too, so a phase plans from the cluster as it is", async () => {
    const context = await setup(clusterFile({ version: "v1.30.4" }));
    await run(context).result;
    context.fake.clearRecords();
    const seen: string[][] = [];
    const { result } = run(context, { dryRun: true, phases: [withApi(nodesProbe(seen))] });
    expect(await result).toEqual({ changes: {} });
    expect(seen).toEqual([["cp1"]]);
    expect(context.fake.writes()).toEqual([]);
  });

  it("under --dry-run without admin.conf or an answering API server reads an empty cluster, at once", async () => {
    const closed = await setup(clusterFile({ version: "v1.30.4" }));
    await closed.fake.close();
    const missing = await setup(clusterFile({ version: "v1.30.4" }));
    await rm(join(missing.dir, "kubeconfigs/admin.conf"));
    for (const context of [closed, missing]) {
      const seen: string[][] = [];
      const started = performance.now();
      const { events, result } = run(context, {
        dryRun: true,
        timeouts: SLOW,
        phases: [withApi(nodesProbe(seen))],
      });
      await result;
      // A minute of retries would be waiting for a cluster that is not there.
      expect(performance.now() - started).toBeLessThan(5_000);
      expect(seen).toEqual([[]]);
      expect(events).toContainEqual(
        expect.objectContaining({
          type: "log",
          message: expect.stringMatching(
            /^no API server to read \(.*(ECONNREFUSED|ENOENT).*\): every object is shown as new$/,
          ),
        }),
      );
    }
  });

  it("in a real run says what it waits for while the API server does not answer", async () => {
    const context = await setup(clusterFile({ version: "v1.21.14" }));
    const { port } = context.fake;
    await context.fake.close();
    const seen: string[][] = [];
    const { events, result } = run(context, { phases: [withApi(nodesProbe(seen))] });
    const error = await result.catch((e: unknown) => e);
    expect((error as Error).message).toMatch(
      new RegExp(
        `^error execution phase probe: timed out after 2 s waiting for the API server at 127\\.0\\.0\\.1:${port} to answer admin\\.conf \\(\\d+ tries, every 20 ms\\); last error: cannot get Namespace kube-system: .*ECONNREFUSED.*\\. Is kube-apiserver running`,
      ),
    );
    expect(events).toContainEqual(
      expect.objectContaining({
        type: "log",
        phase: "probe",
        message: expect.stringMatching(
          new RegExp(
            `^waiting for the API server at 127\\.0\\.0\\.1:${port} to answer admin\\.conf \\(0 s of 2 s\\): error: cannot get Namespace kube-system: .*ECONNREFUSED`,
          ),
        ),
      }),
    );
    expect(seen).toEqual([]);
  });
});

describe("firstControlPlaneSpec", () => {
  it("is the cluster file's first control-plane host, whatever comes before it", () => {
    const base = clusterFile({ version: "v1.30.4" });
    // w1, cp2, cp1
    const hosts = [...base.spec.hosts].reverse();
    expect(firstControlPlaneSpec({ ...base, spec: { ...base.spec, hosts } }).name).toBe("cp2");
  });
});
