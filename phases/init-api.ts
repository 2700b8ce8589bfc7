// The API half of `kubeforge init`: kubeadm init's upload-config, mark-control-plane and
// bootstrap-token phases, run from the workstation against the first control plane's API server.
// The objects are api/objects.ts's, split per phase as kubeadm creates them. Every write passes
// `step.change`; an object that already matches is not written, so a re-run writes nothing.
// kubelet-finalize is node-side work, not here.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import {
  API_CALL_RETRY,
  type Dial,
  describeObject,
  isConflict,
  isForbidden,
  isTransient,
  matchesLive,
  openClusterApi,
  refOf,
  waitFor,
  withRetry,
} from "../api/client.js";
import type { ClusterApi, ObjectRef } from "../api/cluster-api.js";
import { detachedSignatureIsValid } from "../api/jws.js";
import {
  type ApiObject,
  BOOTSTRAPPERS_GROUP,
  DEFAULT_TOKEN_TTL_MS,
  INIT_TOKEN_DESCRIPTION,
  initObjects,
} from "../api/objects.js";
import { apiDialAddress } from "../certs/specs.js";
import { ADMIN_KUBECONFIG } from "../certs/store.js";
import { type BootstrapToken, generateBootstrapToken, isValidBootstrapToken } from "../certs/tokens.js";
import type { ClusterFile, HostSpec } from "../config/schema.js";
import { identityGates, kubeletGates } from "../config/version-gates.js";
import type { ClusterHost } from "../hosts/open.js";
import { InternalError, messageOf } from "../workflow/errors.js";
import type { LocalPhase, Phase, Step, Target } from "../workflow/phase.js";

export interface ApiTimeouts {
  /** kubeadm's kubernetesAPICall: how long one API call is retried. */
  apiCallMs: number;
  /** kubeadm's APICallRetryInterval: how often calls are retried and waits poll. */
  retryIntervalMs: number;
  /** The first control plane's kubelet registering its Node (kubeadm's PatchNode waits kubernetesAPICall). */
  nodeRegistrationMs: number;
  /**
   * The controller-manager's bootstrapsigner signing cluster-info: it needs kube-controller-manager
   * up and leading, so kubeadm's controlPlaneComponentHealthCheck.
   */
  clusterInfoSignatureMs: number;
}

export const API_TIMEOUTS: ApiTimeouts = {
  apiCallMs: API_CALL_RETRY.timeoutMs,
  retryIntervalMs: API_CALL_RETRY.intervalMs,
  nodeRegistrationMs: API_CALL_RETRY.timeoutMs,
  clusterInfoSignatureMs: 4 * 60_000,
};

/** init's bootstrap token; the secret never reaches a message, a log line or an event. */
export interface InitToken extends BootstrapToken {
  expires: Date;
}

/** What the API phases read and fill; the init command's data extends it. */
export interface ApiRun {
  cluster: ClusterFile;
  /** The cluster's local store (certs/store.ts layout). */
  clusterDir: string;
  /** The workstation's clock in ms. */
  now: () => number;
  /** Where the workstation reaches the API server; default: the first control plane's address and bindPort. */
  apiDial?: Dial;
  /** Overrides kubeadm's timeouts (tests). */
  apiTimeouts?: Partial<ApiTimeouts>;
  /** Filled by connectApi. */
  api?: ClusterApi;
  /** Filled by bootstrap-token (a reused or new token); join needs it. */
  token?: InitToken;
}

const SUPER_ADMIN_KUBECONFIG = "kubeconfigs/super-admin.conf";
const CA_CERT = "pki/ca.crt";
const REUSE_MIN_LEFT_MS = 3_600_000;
const TOKEN_SECRET_TYPE = "bootstrap.kubernetes.io/token";
const CLUSTER_INFO: ObjectRef = {
  apiVersion: "v1",
  kind: "ConfigMap",
  name: "cluster-info",
  namespace: "kube-public",
};
const KUBE_SYSTEM: ObjectRef = { apiVersion: "v1", kind: "Namespace", name: "kube-system" };

const timeoutsOf = (run: ApiRun): ApiTimeouts => ({ ...API_TIMEOUTS, ...run.apiTimeouts });

function firstControlPlane(cluster: ClusterFile): HostSpec {
  const host = cluster.spec.hosts.find((h) => h.role === "control-plane");
  if (!host) throw new InternalError("a validated cluster file has a control plane");
  return host;
}

/**
 * A dry run of a fresh init has no API server (nor kubeconfig) yet. It reads what it can; when there
 * is nothing to read from, every object is planned as new, and nothing is ever written here.
 */
const NOTHING_YET: ClusterApi = {
  get: async () => undefined,
  list: async () => [],
  apply: () => Promise.reject(new InternalError("a dry run wrote to the API")),
  patch: () => Promise.reject(new InternalError("a dry run wrote to the API")),
  delete: () => Promise.reject(new InternalError("a dry run wrote to the API")),
};

const isMissingFile = (error: unknown) => (error as NodeJS.ErrnoException).code === "ENOENT";

async function openKubeconfig(step: Step<ApiRun>, file: string): Promise<ClusterApi> {
  const run = step.data;
  const timeouts = timeoutsOf(run);
  const first = firstControlPlane(run.cluster);
  return openClusterApi({
    kubeconfig: await readFile(join(run.clusterDir, file), "utf8"),
    dial: run.apiDial ?? {
      host: apiDialAddress(first),
      port: run.cluster.spec.kubernetes.apiServer.bindPort,
    },
    // A dry run asks once: it must not wait a minute for an API server that is not there yet.
    retry: { timeoutMs: step.dryRun ? 0 : timeouts.apiCallMs, intervalMs: timeouts.retryIntervalMs },
    signal: step.signal,
  });
}

/** Creates `object`, or updates it when a field kubeforge sets differs; a matching object is left alone. */
export async function applyObject(step: Step<ApiRun>, api: ClusterApi, object: ApiObject): Promise<void> {
  const live = await api.get(refOf(object));
  if (live && matchesLive(object, live)) return;
  await step.change(`${live ? "update" : "create"} ${describeObject(refOf(object))}`, () =>
    api.apply(object),
  );
}

type ObjectGroup = "cluster-admins" | "kubeadm" | "kubelet" | "bootstrap-token";

// upload-config's objects do not depend on the token, but initObjects builds them all.
const PLACEHOLDER_TOKEN = { id: "000000", secret: "0000000000000000" };

/** The part of init's objects that one step creates. */
async function objectsOf(
  step: Step<ApiRun>,
  group: ObjectGroup,
  token = PLACEHOLDER_TOKEN,
): Promise<ApiObject[]> {
  const { cluster, clusterDir, now } = step.data;
  const caCert = await readFile(join(clusterDir, CA_CERT), "utf8").catch((error: unknown) => {
    if (step.dryRun && isMissingFile(error)) return `(the cluster CA, ${CA_CERT}, once generated)`;
    throw error;
  });
  const kubelet = kubeletGates(cluster.spec.kubernetes.version);
  const groupOf = ({ metadata: { name } }: ApiObject): ObjectGroup => {
    if (name === "kubeadm:cluster-admins") return "cluster-admins";
    if (name === "kubeadm-config" || name === "kubeadm:nodes-kubeadm-config") return "kubeadm";
    if (name === kubelet.configMap || name === kubelet.configMapRole) return "kubelet";
    return "bootstrap-token";
  };
  return initObjects(cluster, { token, caCert, now: new Date(now()) }).filter((o) => groupOf(o) === group);
}

/**
 * The client the API phases share, opened once from admin.conf; its first call is retried until the
 * API server answers. From v1.29 admin.conf's group kubeadm:cluster-admins has rights only through
 * ClusterRoleBinding kubeadm:cluster-admins: while admin.conf is Forbidden, the binding is made with
 * super-admin.conf (kubeadm's EnsureAdminClusterRoleBinding).
 */
export async function connectApi(step: Step<ApiRun>): Promise<ClusterApi> {
  if (step.data.api) return step.data.api;
  const admin = await answeringAdmin(step);
  step.data.api = identityGates(step.data.cluster.spec.kubernetes.version).superAdminConf
    ? await bindClusterAdmins(step, admin)
    : admin;
  return step.data.api;
}

async function answeringAdmin(step: Step<ApiRun>): Promise<ClusterApi> {
  try {
    const admin = await openKubeconfig(step, ADMIN_KUBECONFIG);
    // Forbidden is an answer too: admin.conf may not be bound yet.
    await admin.get(KUBE_SYSTEM).catch((error: unknown) => {
      if (!isForbidden(error)) throw error;
    });
    return admin;
  } catch (error) {
    if (!step.dryRun || !(isTransient(error) || isMissingFile(error))) throw error;
    step.log(`no API server to read (${messageOf(error)}): every object is shown as new`);
    return NOTHING_YET;
  }
}

async function bindClusterAdmins(step: Step<ApiRun>, admin: ClusterApi): Promise<ClusterApi> {
  const [binding] = await objectsOf(step, "cluster-admins");
  if (!binding) throw new InternalError("initObjects made no kubeadm:cluster-admins binding");
  try {
    await applyObject(step, admin, binding);
    return admin;
  } catch (error) {
    if (!isForbidden(error)) throw error;
  }
  step.log(
    "admin.conf is Forbidden until ClusterRoleBinding kubeadm:cluster-admins exists: using super-admin.conf for it",
  );
  const superAdmin = await openKubeconfig(step, SUPER_ADMIN_KUBECONFIG);
  await applyObject(step, superAdmin, binding);
  // Under --dry-run the binding was not made: super-admin.conf reads what admin.conf may not yet.
  if (step.dryRun) return superAdmin;
  const { apiCallMs, retryIntervalMs } = timeoutsOf(step.data);
  await waitFor(
    "admin.conf to be authorized by ClusterRoleBinding kubeadm:cluster-admins",
    () => admin.get(refOf(binding)),
    apiCallMs,
    { intervalMs: retryIntervalMs, signal: step.signal, retryOn: isForbidden },
  );
  return admin;
}

const uploadGroup =
  (group: ObjectGroup) =>
  async (step: Step<ApiRun>): Promise<void> => {
    const api = await connectApi(step);
    for (const object of await objectsOf(step, group)) await applyObject(step, api, object);
  };

export const uploadConfigPhase: LocalPhase<ApiRun, ClusterHost> = {
  id: "upload-config",
  title: "Upload the configuration to the cluster",
  help: "Store the ClusterConfiguration and the kubelet's configuration in ConfigMaps in kube-system, readable by joining nodes.",
  phases: [
    {
      id: "kubeadm",
      title: "Upload the ClusterConfiguration",
      help: "ConfigMap kube-system/kubeadm-config (v1.21: with ClusterStatus), and Role and RoleBinding kubeadm:nodes-kubeadm-config that let bootstrapping and joined nodes read it.",
      run: uploadGroup("kubeadm"),
    },
    {
      id: "kubelet",
      title: "Upload the kubelet configuration",
      help: "ConfigMap kube-system/kubelet-config (v1.21: kubelet-config-1.21), and the Role and RoleBinding that let nodes read it.",
      run: uploadGroup("kubelet"),
    },
  ],
};

type Taint = HostSpec["taints"][number];

const sameSlot = (a: Taint, b: Taint) => a.key === b.key && a.effect === b.effect;
const sameTaint = (a: Taint, b: Taint) => sameSlot(a, b) && (a.value ?? "") === (b.value ?? "");
const taintText = (t: Taint) => `${t.key}${t.value ? `=${t.value}` : ""}:${t.effect}`;

/** Labels and taints a Node must carry, and taints it must not. */
interface NodeMarks {
  labels: Record<string, string>;
  taints: Taint[];
  unwanted: Taint[];
}

/** The labels and taints the first control plane must carry, and the default taints it must not. */
function controlPlaneMarks(cluster: ClusterFile, host: HostSpec): NodeMarks {
  const gates = kubeletGates(cluster.spec.kubernetes.version);
  const labels = {
    ...Object.fromEntries(gates.controlPlaneLabels.map((label) => [label, ""])),
    ...host.labels,
  };
  // Without workers the control plane must run workloads: kubeadm's default taint is left off.
  const hasWorkers = cluster.spec.hosts.some((h) => h.role === "worker");
  const taints: Taint[] = host.taints.length > 0 ? host.taints : hasWorkers ? gates.controlPlaneTaints : [];
  const unwanted = gates.controlPlaneTaints.filter((t) => !taints.some((wanted) => sameSlot(wanted, t)));
  return { labels, taints, unwanted };
}

/** What the Node lacks (all of it for a Node not there yet): a merge patch and its description. */
function nodeChanges(node: ApiObject | undefined, marks: NodeMarks) {
  const labels = Object.fromEntries(
    Object.entries(marks.labels).filter(([key, value]) => node?.metadata.labels?.[key] !== value),
  );
  const current = ((node?.spec as { taints?: Taint[] } | undefined)?.taints ?? []) as Taint[];
  const kept = current.filter(
    (t) =>
      !marks.unwanted.some((u) => sameSlot(u, t)) &&
      marks.taints.every((w) => !sameSlot(w, t) || sameTaint(w, t)),
  );
  const added = marks.taints.filter((w) => !kept.some((t) => sameTaint(w, t)));
  const removed = current.filter((t) => !kept.includes(t));
  const parts = [
    ...(Object.keys(labels).length > 0 ? [`label ${Object.keys(labels).join(", ")}`] : []),
    ...(added.length > 0 ? [`taint ${added.map(taintText).join(", ")}`] : []),
    ...(removed.length > 0 ? [`remove taint ${removed.map(taintText).join(", ")}`] : []),
  ];
  if (parts.length === 0) return undefined;
  const taintsChange = added.length > 0 || removed.length > 0;
  const resourceVersion = (node?.metadata as { resourceVersion?: string } | undefined)?.resourceVersion;
  // Taints are a list a merge patch replaces whole: the resourceVersion makes a concurrent change
  // (the node lifecycle controller's taints) a Conflict to re-read, not something overwritten.
  const patch = {
    metadata: { labels, ...(taintsChange && resourceVersion && { resourceVersion }) },
    ...(taintsChange && {
      spec: {
        taints: [
          ...kept,
          ...added.map(({ key, value, effect }) => ({ key, ...(value && { value }), effect })),
        ],
      },
    }),
  };
  return { patch, description: parts.join("; ") };
}

/** Waits for the host's Node (its kubelet registers it), then patches what it lacks of `marks`. */
async function markNode(step: Step<ApiRun>, host: HostSpec, marks: NodeMarks): Promise<void> {
  const api = await connectApi(step);
  const ref: ObjectRef = { apiVersion: "v1", kind: "Node", name: host.name };
  const timeouts = timeoutsOf(step.data);
  const wait = { intervalMs: timeouts.retryIntervalMs, signal: step.signal };
  // A dry run does not wait: the kubelet it would wait for was not started.
  const node = step.dryRun
    ? await api.get(ref)
    : await waitFor(
        `Node ${host.name} to be registered by its kubelet`,
        () => api.get(ref),
        timeouts.nodeRegistrationMs,
        {
          ...wait,
          hint: `Is the kubelet on ${host.name} running (journalctl -u kubelet)?`,
        },
      );
  const changes = nodeChanges(node, marks);
  if (!changes) return;
  await step.change(`${changes.description} on Node ${host.name}`, () =>
    withRetry(
      `mark Node ${host.name}`,
      async () => {
        const patch = nodeChanges(await api.get(ref), marks)?.patch;
        if (patch) await api.patch(ref, patch);
      },
      { ...wait, timeoutMs: timeouts.apiCallMs, retryOn: isConflict },
    ),
  );
}

export const markControlPlanePhase: LocalPhase<ApiRun, ClusterHost> = {
  id: "mark-control-plane",
  title: "Mark the first control plane",
  help: "Wait for the first control plane's Node (its kubelet registers it), then label it as a control plane and taint it NoSchedule as kubeadm does, plus the host's labels and taints from the cluster file. With no worker hosts the control-plane taint is left off (and removed), so the node runs workloads.",
  run: async (step) => {
    const host = firstControlPlane(step.data.cluster);
    await markNode(step, host, controlPlaneMarks(step.data.cluster, host));
  },
};

/**
 * The workers' labels and taints from the cluster file, through the API: the kubelet may not set
 * `node-role.kubernetes.io/*` labels itself, and taints registered by flag are only applied once.
 */
export const markWorkersPhase: LocalPhase<ApiRun & { hosts: readonly ClusterHost[] }, ClusterHost> = {
  id: "mark-workers",
  title: "Label and taint the workers as the cluster file says",
  help: "For every worker of the run with labels or taints in the cluster file: wait for its Node, then add what it lacks (labels such as node-role.kubernetes.io/worker can only be set through the API).",
  run: async (step) => {
    const workers = step.data.hosts.filter(
      (host) =>
        host.spec.role === "worker" &&
        (Object.keys(host.spec.labels).length > 0 || host.spec.taints.length > 0),
    );
    for (const worker of workers)
      await markNode(step, worker.spec, {
        labels: worker.spec.labels,
        taints: worker.spec.taints,
        unwanted: [],
      });
  },
};

/** A token Secret made by init (its description) with more than an hour left, the longest-lived first. */
async function reusableToken(api: ClusterApi, now: number): Promise<InitToken | undefined> {
  const secrets = await api.list("v1", "Secret", "kube-system", {
    fieldSelector: `type=${TOKEN_SECRET_TYPE}`,
  });
  const tokens = secrets.flatMap((secret) => {
    const data = Object.fromEntries(
      Object.entries((secret.data ?? {}) as Record<string, string>).map(([key, value]) => [
        key,
        Buffer.from(value, "base64").toString("utf8"),
      ]),
    );
    const id = data["token-id"] ?? "";
    const tokenSecret = data["token-secret"] ?? "";
    const expires = new Date(data.expiration ?? "");
    const reusable =
      data.description === INIT_TOKEN_DESCRIPTION &&
      data["auth-extra-groups"] === BOOTSTRAPPERS_GROUP &&
      isValidBootstrapToken(`${id}.${tokenSecret}`) &&
      expires.getTime() - now > REUSE_MIN_LEFT_MS;
    return reusable ? [{ id, secret: tokenSecret, expires }] : [];
  });
  return tokens.sort((a, b) => b.expires.getTime() - a.expires.getTime())[0];
}

function newToken(now: number): InitToken {
  // Whole seconds: the Secret's expiration has no fractions, and a re-read must compare equal.
  const expires = new Date(Math.floor((now + DEFAULT_TOKEN_TTL_MS) / 1000) * 1000);
  return { ...generateBootstrapToken(), expires };
}

export const bootstrapTokenPhase: LocalPhase<ApiRun, ClusterHost> = {
  id: "bootstrap-token",
  title: "Create the bootstrap token and the join RBAC",
  help: "Reuse init's bootstrap token while it has more than an hour left, else create one (24h); bind the TLS-bootstrap roles; publish kube-public/cluster-info and wait until the controller-manager has signed it for the token (kubeadm join checks that signature).",
  run: async (step) => {
    const api = await connectApi(step);
    const run = step.data;
    if (!run.token) {
      const reused = await reusableToken(api, run.now());
      run.token = reused ?? newToken(run.now());
      step.log(
        `${reused ? "reusing" : "new"} bootstrap token ${run.token.id}, expires ${run.token.expires.toISOString()}`,
      );
    }
    const token = run.token;
    for (const object of await objectsOf(step, "bootstrap-token", token))
      await applyObject(step, api, object);
    // Nothing was published under --dry-run: there is no signature to wait for.
    if (step.dryRun) return;
    const key = `jws-kubeconfig-${token.id}`;
    const { clusterInfoSignatureMs, retryIntervalMs } = timeoutsOf(run);
    await waitFor(
      `the controller-manager's bootstrapsigner to sign ${describeObject(CLUSTER_INFO)} for token ${token.id} (key ${key})`,
      async () => {
        const data = ((await api.get(CLUSTER_INFO))?.data ?? {}) as Record<string, string>;
        const signature = data[key];
        const valid =
          signature !== undefined &&
          data.kubeconfig !== undefined &&
          detachedSignatureIsValid(signature, data.kubeconfig, token.id, token.secret);
        return valid || undefined;
      },
      clusterInfoSignatureMs,
      {
        intervalMs: retryIntervalMs,
        signal: step.signal,
        hint: "Is kube-controller-manager running, with its bootstrapsigner controller enabled (the default)?",
      },
    );
  },
};

const opening = new WeakMap<object, Promise<ClusterApi>>();

/** connectApi once per run, however many hosts of a phase ask at the same time. */
function sharedApi(step: Step<ApiRun>): Promise<ClusterApi> {
  let api = opening.get(step.data);
  if (!api) {
    api = connectApi(step);
    opening.set(step.data, api);
    api.catch(() => opening.delete(step.data));
  }
  return api;
}

/**
 * The phase (and every phase under it) with the cluster's API client opened first, for phases that
 * read `data.api` (pod-network, validate), so they also work alone under `phase <path>`. A dry run
 * leaves it closed: before init there is no cluster, and those phases say so.
 */
export function withApi<D extends ApiRun, H extends Target>(phase: Phase<D, H>): Phase<D, H> {
  const phases = phase.phases?.map((child) => withApi(child));
  const run = phase.run as ((step: Step<D>) => Promise<void>) | undefined;
  return {
    ...phase,
    ...(phases && { phases }),
    ...(run && {
      run: async (step: Step<D>) => {
        if (!step.dryRun) await sharedApi(step);
        await run(step);
      },
    }),
  } as Phase<D, H>;
}
