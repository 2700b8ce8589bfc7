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
import { TOKEN_SECRET_TYPE, type TokenRow, tokenFromSecret } from "../api/tokens.js";
import { apiDialAddress } from "../certs/specs.js";
import { ADMIN_KUBECONFIG } from "../certs/store.js";
import { type BootstrapToken, generateBootstrapToken } from "../certs/tokens.js";
import type { ClusterFile, HostSpec } from "../config/schema.js";
import { identityGates, kubeletGates } from "../config/version-gates.js";
import type { ClusterHost } from "../hosts/open.js";
import { InternalError, messageOf } from "../workflow/errors.js";
import type { LocalPhase, Phase, Step, Target } from "../workflow/phase.js";
import { type Poll, type UntilOptions, waitUntil } from "../workflow/wait.js";

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
  /** Filled by bootstrap-token (a reused or new token; none when the run needs none); join needs it. */
  token?: InitToken;
}

const SUPER_ADMIN_KUBECONFIG = "kubeconfigs/super-admin.conf";
const CA_CERT = "pki/ca.crt";
const REUSE_MIN_LEFT_MS = 3_600_000;
const CLUSTER_INFO: ObjectRef = {
  apiVersion: "v1",
  kind: "ConfigMap",
  name: "cluster-info",
  namespace: "kube-public",
};
const KUBE_SYSTEM: ObjectRef = { apiVersion: "v1", kind: "Namespace", name: "kube-system" };

const timeoutsOf = (run: ApiRun): ApiTimeouts => ({ ...API_TIMEOUTS, ...run.apiTimeouts });

/**
 * The cluster file's first control plane: the one init sets up and the workstation dials. (The
 * run's connected host for it is phases/init-node.ts firstControlPlane.)
 */
export function firstControlPlaneSpec(cluster: ClusterFile): HostSpec {
  const host = cluster.spec.hosts.find((h) => h.role === "control-plane");
  if (!host) throw new InternalError("a validated cluster file has a control plane");
  return host;
}

/** A wait of these phases on workflow/wait's loop, with the step's progress lines and signal. */
function waitOn<T>(
  step: Step<ApiRun>,
  options: Omit<UntilOptions, "timing" | "signal" | "log"> & { timeoutMs: number },
  poll: () => Promise<Poll<T, string>>,
): Promise<T> {
  const { timeoutMs, ...rest } = options;
  return waitUntil(
    {
      ...rest,
      timing: { timeoutMs, intervalMs: timeoutsOf(step.data).retryIntervalMs },
      signal: step.signal,
      log: step.log,
    },
    poll,
  );
}

/** A poll's answer: done with `value`, or still `notYet` while there is none. */
const found = <T>(value: T | undefined, notYet: string): Poll<T, string> =>
  value === undefined ? { done: false, pending: notYet } : { done: true, value };

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

/** Where the workstation reaches the API server. */
function dialOf(run: ApiRun): Dial {
  return (
    run.apiDial ?? {
      host: apiDialAddress(firstControlPlaneSpec(run.cluster)),
      port: run.cluster.spec.kubernetes.apiServer.bindPort,
    }
  );
}

/**
 * A client from the store's kubeconfig `file`, each call retried for `retryMs`. A dry run asks
 * once: it must not wait a minute for an API server that is not there yet.
 */
async function openKubeconfig(
  step: Step<ApiRun>,
  file: string,
  retryMs = step.dryRun ? 0 : timeoutsOf(step.data).apiCallMs,
): Promise<ClusterApi> {
  const run = step.data;
  return openClusterApi({
    kubeconfig: await readFile(join(run.clusterDir, file), "utf8"),
    dial: dialOf(run),
    retry: { timeoutMs: retryMs, intervalMs: timeoutsOf(run).retryIntervalMs },
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

/**
 * admin.conf's client once the API server answers. The wait polls with a client that asks once, so
 * it (not the client's quiet retries) says what it waits for; a dry run asks once and, with no
 * admin.conf or no answer, reads from NOTHING_YET.
 */
async function answeringAdmin(step: Step<ApiRun>): Promise<ClusterApi> {
  try {
    const probe = await openKubeconfig(step, ADMIN_KUBECONFIG, 0);
    const { host, port } = dialOf(step.data);
    await waitOn(
      step,
      {
        what: `the API server at ${host.includes(":") ? `[${host}]` : host}:${port} to answer admin.conf`,
        timeoutMs: step.dryRun ? 0 : timeoutsOf(step.data).apiCallMs,
        retryOn: isTransient,
        hint: "Is kube-apiserver running on the first control plane (crictl ps), and is its port reachable from this workstation?",
      },
      async () => {
        // Forbidden is an answer too: admin.conf may not be bound yet.
        await probe.get(KUBE_SYSTEM).catch((error: unknown) => {
          if (!isForbidden(error)) throw error;
        });
        return { done: true, value: true };
      },
    );
    return await openKubeconfig(step, ADMIN_KUBECONFIG);
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
  await waitOn(
    step,
    {
      what: "admin.conf to be authorized by ClusterRoleBinding kubeadm:cluster-admins",
      timeoutMs: timeoutsOf(step.data).apiCallMs,
      retryOn: isForbidden,
      hint: "Does kube-apiserver run with --authorization-mode including RBAC?",
    },
    async () =>
      found(
        await admin.get(refOf(binding)),
        "admin.conf is authorized, but ClusterRoleBinding kubeadm:cluster-admins is not there yet",
      ),
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
  // A dry run does not wait: the kubelet it would wait for was not started.
  const node = step.dryRun
    ? await api.get(ref)
    : await waitOn(
        step,
        {
          what: `Node ${host.name} to be registered by its kubelet`,
          timeoutMs: timeouts.nodeRegistrationMs,
          retryOn: isTransient,
          hint: `Is the kubelet on ${host.name} running (journalctl -u kubelet)?`,
        },
        async () => found(await api.get(ref), `no Node ${host.name} yet`),
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
      {
        timeoutMs: timeouts.apiCallMs,
        intervalMs: timeouts.retryIntervalMs,
        signal: step.signal,
        retryOn: isConflict,
      },
    ),
  );
}

export const markControlPlanePhase: LocalPhase<ApiRun, ClusterHost> = {
  id: "mark-control-plane",
  title: "Mark the first control plane",
  help: "Wait for the first control plane's Node (its kubelet registers it), then label it as a control plane and taint it NoSchedule as kubeadm does, plus the host's labels and taints from the cluster file. With no worker hosts the control-plane taint is left off (and removed), so the node runs workloads.",
  run: async (step) => {
    const host = firstControlPlaneSpec(step.data.cluster);
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

/**
 * A token Secret made by init (its description and group) with more than an hour left, the
 * longest-lived first. Secrets that are no valid token (tokenFromSecret refuses them) are passed over.
 */
async function reusableToken(api: ClusterApi, now: number): Promise<InitToken | undefined> {
  const secrets = await api.list("v1", "Secret", "kube-system", {
    fieldSelector: `type=${TOKEN_SECRET_TYPE}`,
  });
  const tokens = secrets.flatMap((secret): InitToken[] => {
    let row: TokenRow;
    try {
      row = tokenFromSecret(secret);
    } catch {
      return [];
    }
    const { token, description, expires, groups } = row;
    return description === INIT_TOKEN_DESCRIPTION &&
      groups.join(",") === BOOTSTRAPPERS_GROUP &&
      expires &&
      expires.getTime() - now > REUSE_MIN_LEFT_MS
      ? [{ ...token, expires }]
      : [];
  });
  return tokens.sort((a, b) => b.expires.getTime() - a.expires.getTime())[0];
}

function newToken(now: number): InitToken {
  // Whole seconds: the Secret's expiration has no fractions, and a re-read must compare equal.
  const expires = new Date(Math.floor((now + DEFAULT_TOKEN_TTL_MS) / 1000) * 1000);
  return { ...generateBootstrapToken(), expires };
}

/** `run.token`: the run's own, else init's reusable one, else a new one when `mint` says so. */
async function tokenOf<D extends ApiRun>(
  step: Step<D>,
  api: ClusterApi,
  mint: TokenPredicate<D>,
): Promise<InitToken | undefined> {
  const run = step.data;
  if (run.token) return run.token;
  const reused = await reusableToken(api, run.now());
  run.token = reused ?? ((await mint(run, api)) ? newToken(run.now()) : undefined);
  step.log(
    run.token
      ? `${reused ? "reusing" : "new"} bootstrap token ${run.token.id}, expires ${run.token.expires.toISOString()}`
      : "no bootstrap token: none has more than an hour left, and no host of this run needs one",
  );
  return run.token;
}

/** Waits until the controller-manager's bootstrapsigner has signed cluster-info for `token`. */
async function waitForSignature(step: Step<ApiRun>, api: ClusterApi, token: InitToken): Promise<void> {
  const key = `jws-kubeconfig-${token.id}`;
  await waitOn(
    step,
    {
      what: `the controller-manager's bootstrapsigner to sign ${describeObject(CLUSTER_INFO)} for token ${token.id} (key ${key})`,
      timeoutMs: timeoutsOf(step.data).clusterInfoSignatureMs,
      retryOn: isTransient,
      hint: "Is kube-controller-manager running, with its bootstrapsigner controller enabled (the default)?",
    },
    async () => {
      const data = ((await api.get(CLUSTER_INFO))?.data ?? {}) as Record<string, string>;
      const signature = data[key];
      if (signature === undefined || data.kubeconfig === undefined)
        return { done: false, pending: `no ${key} key yet` };
      return detachedSignatureIsValid(signature, data.kubeconfig, token.id, token.secret)
        ? { done: true, value: true }
        : {
            done: false,
            pending: `${key} does not verify against the kubeconfig and the token yet`,
          };
    },
  );
}

/**
 * The bootstrap-token phase, `mintToken` deciding whether a run without a reusable token (init's,
 * more than an hour left) gets a new one. Whatever it decides, the TLS-bootstrap RBAC and
 * kube-public/cluster-info are applied (an existing cluster is repaired, a converged one is left
 * alone); the cluster-info signature is waited for only for a token the run has.
 *
 * join and apply: `bootstrapTokenPhaseWith<ClusterSetupRun>((run) => <a worker still joins>)`.
 */
/** Whether the bootstrap-token phase makes a token when none is reusable; read before it writes. */
export type TokenPredicate<D> = (run: D, api: ClusterApi) => boolean | Promise<boolean>;

/**
 * kubeadm init's token: made while the control plane's set-up is unfinished (cluster-info, which this
 * phase publishes, is not there yet: a first init, or one that stopped before this phase). A re-run of
 * a finished init makes none: `kubeforge token create` does.
 */
export const untilInitFinished: TokenPredicate<ApiRun> = async (_run, api) =>
  (await api.get(CLUSTER_INFO)) === undefined;

export function bootstrapTokenPhaseWith<D extends ApiRun>(
  mintToken: TokenPredicate<D>,
): LocalPhase<D, ClusterHost> {
  return {
    id: "bootstrap-token",
    title: "Create the join RBAC, cluster-info and the bootstrap token",
    help: "Bind the TLS-bootstrap roles and publish kube-public/cluster-info (always, so a re-run repairs them). Reuse init's bootstrap token while it has more than an hour left, else create one (24h) when the run needs one; wait until the controller-manager has signed cluster-info for that token (kubeadm join checks that signature).",
    run: async (step) => {
      const api = await connectApi(step);
      const token = await tokenOf(step, api, mintToken);
      const objects = await objectsOf(step, "bootstrap-token", token);
      for (const object of objects.filter((o) => token || o.kind !== "Secret"))
        await applyObject(step, api, object);
      // Nothing was published under --dry-run: there is no signature to wait for.
      if (!step.dryRun && token) await waitForSignature(step, api, token);
    },
  };
}

/** kubeadm init's bootstrap-token phase: a new token whenever none is reusable. */
export const bootstrapTokenPhase: LocalPhase<ApiRun, ClusterHost> = bootstrapTokenPhaseWith(() => true);

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
 * opens it too, so it plans from the cluster as it is: connectApi asks once there, and before init
 * (no admin.conf, no answer) it reads from an empty cluster, which those phases plan nothing from.
 */
export function withApi<D extends ApiRun, H extends Target>(phase: Phase<D, H>): Phase<D, H> {
  const phases = phase.phases?.map((child) => withApi(child));
  const run = phase.run as ((step: Step<D>) => Promise<void>) | undefined;
  return {
    ...phase,
    ...(phases && { phases }),
    ...(run && {
      run: async (step: Step<D>) => {
        await sharedApi(step);
        await run(step);
      },
    }),
  } as Phase<D, H>;
}
