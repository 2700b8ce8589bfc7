// End-of-run validation. `basic`: every host of the cluster file has a Ready Node with the expected
// kubelet version and role, kube-system's pods run, and the API answers through controlPlaneEndpoint
// with the admin kubeconfig. `full` also runs a pod on every node that fetches, through a ClusterIP
// Service, from a pod on another node, and deletes everything it created. A failure names every
// problem at once, each with a fix.
import { randomBytes } from "node:crypto";
import type { ClusterApi, ObjectRef } from "../api/cluster-api.js";
import type { ApiObject } from "../api/objects.js";
import type { ClusterFile } from "../config/schema.js";
import type { ClusterHost } from "../hosts/open.js";
import { STATIC_POD_COMPONENTS } from "../templates/static-pods.js";
import { InternalError, messageOf } from "../workflow/errors.js";
import type { LocalPhase, Step } from "../workflow/phase.js";
import { seconds, type WaitTiming, waitFor } from "../workflow/wait.js";

export interface ValidateRun {
  cluster: ClusterFile;
  hosts: readonly Pick<ClusterHost, "name" | "spec">[];
  /** The cluster's API; absent only in a dry run, before the cluster exists. */
  api?: ClusterApi;
  validate: "basic" | "full";
  /**
   * Reaches the API through controlPlaneEndpoint with the admin kubeconfig, as a user would:
   * resolves with what answered (for the log), rejects with why not.
   */
  reachApi: () => Promise<string>;
  /** `full`: a busybox-class image (sh, wget, httpd) that every node has, e.g. from the bundle. */
  testImage?: string;
  /** How long and how often to poll the API; the defaults suit a real cluster, tests shorten them. */
  wait?: WaitTiming;
}

export interface ValidationProblem {
  /** What it is about: a node, a pod, the API endpoint. */
  subject: string;
  problem: string;
  fix?: string;
}

/** The cluster is not as the cluster file says; every problem found is listed. */
export class ValidationError extends Error {
  override name = "ValidationError";
  constructor(
    readonly problems: readonly ValidationProblem[],
    options?: ErrorOptions,
  ) {
    const lines = problems.map((p) => `- ${p.subject}: ${p.problem}${p.fix ? `\n  fix: ${p.fix}` : ""}`);
    const noun = problems.length === 1 ? "problem" : "problems";
    super(`${problems.length} ${noun} with the cluster:\n${lines.join("\n")}`, options);
  }
}

type ValidateStep = Step<ValidateRun>;

const DEFAULT_WAIT: WaitTiming = { timeoutMs: 180_000, intervalMs: 2_000 };
const CONTROL_PLANE_LABEL = "node-role.kubernetes.io/control-plane";
const KUBE_SYSTEM = "kube-system";
/** Where `full` runs its pods, each labelled so a later run finds what a killed one left. */
const NAMESPACE = "default";
const MANAGED_BY = "app.kubernetes.io/managed-by";
const VALIDATE = "kubeforge-validate";
const INSTANCE = "app.kubernetes.io/instance";
const COMPONENT = "app.kubernetes.io/component";
/** Waiting reasons a pod does not get out of on its own. */
const STUCK = new Set(["ErrImageNeverPull", "InvalidImageName"]);
const IMAGE_REASON = /Image/;

interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}

interface NodeView {
  metadata: { name: string; labels?: Record<string, string> };
  status?: { conditions?: Condition[]; nodeInfo?: { kubeletVersion?: string } };
}

interface ContainerStatus {
  name: string;
  ready?: boolean;
  state?: {
    waiting?: { reason?: string; message?: string };
    terminated?: { exitCode?: number; reason?: string; message?: string };
  };
}

interface PodView {
  metadata: { name: string; labels?: Record<string, string> };
  spec?: { nodeName?: string };
  status?: {
    phase?: string;
    reason?: string;
    message?: string;
    conditions?: Condition[];
    containerStatuses?: ContainerStatus[];
  };
}

const asNode = (object: ApiObject) => object as unknown as NodeView;
const asPod = (object: ApiObject) => object as unknown as PodView;

function requireApi(api: ClusterApi | undefined): ClusterApi {
  if (!api)
    throw new InternalError("validate has no API client: the control-plane phases must run before it");
  return api;
}

/** Why a pod is where it is: the first waiting or failed container, else the pod's or the scheduler's reason. */
function podReason(pod: PodView): string | undefined {
  const status = pod.status ?? {};
  const detail = (reason?: string, message?: string) =>
    reason ? `${reason}${message ? `: ${message.trim()}` : ""}` : undefined;
  for (const container of status.containerStatuses ?? []) {
    const { waiting, terminated } = container.state ?? {};
    if (waiting?.reason) return `${container.name} ${detail(waiting.reason, waiting.message)}`;
    if (terminated && terminated.exitCode !== 0)
      return `${container.name} exited ${terminated.exitCode} (${detail(terminated.reason, terminated.message)})`;
  }
  const unscheduled = status.conditions?.find((c) => c.type === "PodScheduled" && c.status === "False");
  return detail(status.reason, status.message) ?? detail(unscheduled?.reason, unscheduled?.message);
}

function podState(pod: PodView): string {
  const phase = pod.status?.phase ?? "Unknown";
  const notReady = (pod.status?.containerStatuses ?? []).filter((c) => !c.ready).map((c) => c.name);
  const what = phase === "Running" && notReady.length > 0 ? "Running, not ready" : phase;
  const reason = podReason(pod);
  return reason ? `${what} (${reason})` : what;
}

/** Running with every container ready, or done. */
function healthy(pod: PodView): boolean {
  const { phase, containerStatuses = [] } = pod.status ?? {};
  return phase === "Succeeded" || (phase === "Running" && containerStatuses.every((c) => c.ready));
}

/**
 * The kube-system pods a working cluster has and that are not there at all: each control plane's
 * static pods (their mirror pods are named `<component>-<node>`), a kube-proxy pod per node, and
 * CoreDNS, as far as the cluster file enables them.
 */
function missingPods(
  run: Pick<ValidateRun, "cluster" | "hosts">,
  pods: readonly PodView[],
): ValidationProblem[] {
  const { addons } = run.cluster.spec;
  const problems: ValidationProblem[] = [];
  const has = (match: (pod: PodView) => boolean) => pods.some(match);
  const appOf = (pod: PodView) => pod.metadata.labels?.["k8s-app"];
  for (const host of run.hosts) {
    const staticPods = host.spec.role === "control-plane" ? STATIC_POD_COMPONENTS : [];
    for (const component of staticPods) {
      const name = `${component}-${host.name}`;
      if (!has((pod) => pod.metadata.name === name))
        problems.push({
          subject: `pod ${KUBE_SYSTEM}/${name}`,
          problem: "missing: the kubelet has not started this static pod",
          fix: `look at /etc/kubernetes/manifests/${component}.yaml and the kubelet's log on ${host.name} (journalctl -u kubelet)`,
        });
    }
    if (
      addons.kubeProxy.enabled &&
      !has((pod) => appOf(pod) === "kube-proxy" && pod.spec?.nodeName === host.name)
    )
      problems.push({
        subject: `kube-proxy on ${host.name}`,
        problem: "no pod: the DaemonSet has not placed one there",
        fix: `kubectl -n ${KUBE_SYSTEM} describe daemonset kube-proxy`,
      });
  }
  if (addons.coreDNS.enabled && !has((pod) => appOf(pod) === "kube-dns"))
    problems.push({
      subject: "CoreDNS",
      problem: "no pod",
      fix: `kubectl -n ${KUBE_SYSTEM} describe deployment coredns`,
    });
  return problems;
}

const withoutPodNetwork = (run: Pick<ValidateRun, "cluster">) => run.cluster.spec.addons.cni === "none";

/** What is wrong with the hosts' Nodes and with kube-system's pods, as the API has them now. */
export function clusterProblems(
  run: Pick<ValidateRun, "cluster" | "hosts">,
  nodes: readonly ApiObject[],
  pods: readonly ApiObject[],
): ValidationProblem[] {
  const expected = run.cluster.spec.kubernetes.version;
  const byName = new Map(nodes.map((node) => [node.metadata.name, asNode(node)]));
  const problems: ValidationProblem[] = [];
  for (const host of run.hosts) {
    const add = (problem: string, fix: string) => problems.push({ subject: host.name, problem, fix });
    const node = byName.get(host.name);
    if (!node) {
      add("no Node registered", `check the kubelet on ${host.name} (journalctl -u kubelet)`);
      continue;
    }
    const ready = node.status?.conditions?.find((c) => c.type === "Ready");
    // With addons.cni: none the user brings the pod network: until then nodes stay NotReady.
    if (ready?.status !== "True" && !withoutPodNetwork(run))
      add(
        ready
          ? `not Ready (${ready.reason ?? ready.status}${ready.message ? `: ${ready.message}` : ""})`
          : "no Ready condition yet",
        `check the kubelet on ${host.name} (journalctl -u kubelet); "NetworkReady=false" means no pod network: addons.cni: bridge sets one up, with none you install one`,
      );
    const version = node.status?.nodeInfo?.kubeletVersion;
    if (version !== expected)
      add(
        `kubelet ${version ?? "of unknown version"}, expected ${expected}`,
        `install kubelet ${expected} on ${host.name} (kubeforge prepare) and restart it`,
      );
    const labelled = node.metadata.labels?.[CONTROL_PLANE_LABEL] !== undefined;
    if (host.spec.role === "control-plane" && !labelled)
      add(
        `no ${CONTROL_PLANE_LABEL} label, though a control plane in the cluster file`,
        `kubectl label node ${host.name} ${CONTROL_PLANE_LABEL}=`,
      );
    if (host.spec.role === "worker" && labelled)
      add(
        `labelled ${CONTROL_PLANE_LABEL}, though a worker in the cluster file`,
        `kubectl label node ${host.name} ${CONTROL_PLANE_LABEL}-`,
      );
  }
  problems.push(...missingPods(run, pods.map(asPod)));
  // CoreDNS cannot start before there is a pod network.
  const waitsForNetwork = (pod: PodView) =>
    withoutPodNetwork(run) && pod.metadata.labels?.["k8s-app"] === "kube-dns";
  for (const pod of pods
    .map(asPod)
    .filter((candidate) => !healthy(candidate) && !waitsForNetwork(candidate))) {
    const state = podState(pod);
    const node = pod.spec?.nodeName;
    problems.push({
      subject: `pod ${KUBE_SYSTEM}/${pod.metadata.name}${node ? ` on ${node}` : ""}`,
      problem: state,
      fix: IMAGE_REASON.test(state)
        ? "its image is not on the node: it must be in the bundle (kubeforge prepare imports the images a role needs)"
        : `kubectl -n ${KUBE_SYSTEM} describe pod ${pod.metadata.name}; kubectl -n ${KUBE_SYSTEM} logs ${pod.metadata.name}`,
    });
  }
  return problems;
}

const clusterPhase: LocalPhase<ValidateRun, ClusterHost> = {
  id: "cluster",
  title: "Check the nodes, kube-system's pods and the API endpoint",
  run: async (step) => {
    if (step.dryRun) {
      step.log("dry run: the cluster is validated once the changes are made");
      return;
    }
    const api = requireApi(step.data.api);
    const timing = step.data.wait ?? DEFAULT_WAIT;
    const result = await waitFor(
      {
        what: "Ready nodes and running kube-system pods",
        timing,
        signal: step.signal,
        log: step.log,
        describe: ({ problems }: { problems: ValidationProblem[] }) =>
          problems.map((p) => `${p.subject}: ${p.problem}`).join("; "),
      },
      async () => {
        const nodes = await api.list("v1", "Node");
        const pods = await api.list("v1", "Pod", KUBE_SYSTEM);
        const problems = clusterProblems(step.data, nodes, pods);
        return problems.length > 0
          ? { done: false as const, pending: { problems, pods } }
          : { done: true as const, value: { problems, pods } };
      },
    );
    const { pods, problems } = result.done ? result.value : result.pending;
    step.log(
      `${KUBE_SYSTEM} pods: ${pods.map((pod) => `${pod.metadata.name} ${podState(asPod(pod))}`).join(", ") || "none"}`,
    );
    try {
      step.log(`the API answers through controlPlaneEndpoint: ${await step.data.reachApi()}`);
    } catch (error) {
      problems.push({
        subject: "API endpoint",
        problem: `not reached with the admin kubeconfig: ${messageOf(error)}`,
        fix: "the endpoint must resolve and be reachable from here (the kubeconfig's server; without controlPlaneEndpoint that is <cluster>-api, which may need an /etc/hosts entry on this machine)",
      });
    }
    if (problems.length > 0) throw new ValidationError(problems);
    const { hosts, cluster } = step.data;
    if (withoutPodNetwork(step.data))
      step.warn(
        `${hosts.length} nodes registered with kubelet ${cluster.spec.kubernetes.version}; addons.cni is none: they turn Ready, and CoreDNS starts, once you install a pod network`,
      );
    else step.log(`${hosts.length} nodes Ready with kubelet ${cluster.spec.kubernetes.version}`);
  },
};

// ---------------------------------------------------------------------------------------------
// full: a pod on every node reaching a Service across nodes

interface Workload {
  /** Tells this run's objects apart from an earlier one's. */
  id: string;
  serverNode: string;
  server: ApiObject;
  service: ApiObject;
  /** A client pod per node, once the Service's ClusterIP is known. */
  clients: (clusterIP: string) => Array<{ node: string; pod: ApiObject }>;
}

const refTo = (kind: string, name: string): ObjectRef => ({
  apiVersion: "v1",
  kind,
  name,
  namespace: NAMESPACE,
});

function labels(id: string, component: string): Record<string, string> {
  return { [MANAGED_BY]: VALIDATE, [INSTANCE]: id, [COMPONENT]: component };
}

function pod(
  run: ValidateRun,
  image: string,
  name: string,
  node: string,
  podLabels: Record<string, string>,
  script: string,
): ApiObject {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: NAMESPACE, labels: podLabels },
    spec: {
      // Pinned, past the scheduler and any taint, so every node runs one.
      nodeName: node,
      tolerations: [{ operator: "Exists" }],
      restartPolicy: "Never",
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      terminationGracePeriodSeconds: 1,
      containers: [
        {
          name: "check",
          image,
          // From a bundle the image is on the node or nowhere: fail at once rather than pull.
          imagePullPolicy: run.cluster.spec.artifacts.source === "bundle" ? "Never" : "IfNotPresent",
          command: ["sh", "-c", script],
        },
      ],
    },
  };
}

/** The objects of one full validation: httpd on one node, a Service in front, a client on every node. */
function workload(run: ValidateRun, image: string, id: string): Workload {
  const hosts = run.hosts;
  const serverNode = (hosts.find((host) => host.spec.role === "worker") ?? hosts[0])?.name;
  if (!serverNode) throw new InternalError("validate needs at least one host");
  const name = `${VALIDATE}-${id}`;
  const marker = `${name} answers`;
  const server = pod(
    run,
    image,
    `${name}-server`,
    serverNode,
    labels(id, "server"),
    `mkdir -p /tmp/www && echo '${marker}' > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www`,
  );
  const service: ApiObject = {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name, namespace: NAMESPACE, labels: labels(id, "service") },
    spec: {
      type: "ClusterIP",
      selector: { [INSTANCE]: id, [COMPONENT]: "server" },
      ports: [{ name: "http", port: 80, targetPort: 8080, protocol: "TCP" }],
    },
  };
  const clients = (clusterIP: string) => {
    const url = `http://${clusterIP.includes(":") ? `[${clusterIP}]` : clusterIP}/`;
    // Retries while the Service's endpoints and kube-proxy's rules catch up; the termination
    // message says why it gave up.
    const script = [
      `for i in $(seq 1 20); do wget -q -T 3 -O - ${url} 2>/dev/null | grep -q '${marker}' && exit 0; sleep 2; done`,
      `echo 'no answer from Service ${name} (${clusterIP}:80) in front of the pod on ${serverNode}' > /dev/termination-log`,
      "exit 1",
    ].join("; ");
    return hosts.map((host) => ({
      node: host.name,
      pod: pod(run, image, `${name}-${host.name}`, host.name, labels(id, "client"), script),
    }));
  };
  return { id, serverNode, server, service, clients };
}

/** Deletes what an earlier, killed validation left behind. */
async function removeLeftovers(step: ValidateStep, api: ClusterApi): Promise<void> {
  const selector = { labelSelector: `${MANAGED_BY}=${VALIDATE}` };
  const leftovers = [
    ...(await api.list("v1", "Pod", NAMESPACE, selector)),
    ...(await api.list("v1", "Service", NAMESPACE, selector)),
  ];
  if (leftovers.length === 0) return;
  await step.change(
    `delete what an earlier validation left in ${NAMESPACE}: ${leftovers.map((o) => `${o.kind} ${o.metadata.name}`).join(", ")}`,
    async () => {
      for (const object of leftovers) await api.delete(refTo(object.kind, object.metadata.name));
    },
  );
}

interface Progress {
  server: PodView | undefined;
  clients: Map<string, PodView | undefined>;
}

function finished(pod: PodView | undefined): boolean {
  const { phase, containerStatuses = [] } = pod?.status ?? {};
  return (
    phase === "Succeeded" ||
    phase === "Failed" ||
    containerStatuses.some((c) => STUCK.has(c.state?.waiting?.reason ?? ""))
  );
}

function workloadProblems(
  step: ValidateStep,
  work: Workload,
  progress: Progress,
  image: string,
): ValidationProblem[] {
  const problems: ValidationProblem[] = [];
  const stateOf = (pod: PodView | undefined) => (pod ? podState(pod) : "not created");
  const fixFor = (node: string, state: string) =>
    IMAGE_REASON.test(state)
      ? `${image} is not on ${node}: it must be in the bundle and imported into containerd's k8s.io namespace`
      : `check the kubelet and containerd on ${node} (journalctl -u kubelet -u containerd)`;
  const { server } = progress;
  if (!server || !healthy(server)) {
    const state = stateOf(server);
    problems.push({
      subject: work.serverNode,
      problem: `the Service's backing pod ${work.server.metadata.name} is ${state}`,
      fix: fixFor(work.serverNode, state),
    });
  }
  for (const [node, client] of progress.clients) {
    if (client?.status?.phase === "Succeeded") continue;
    const state = stateOf(client);
    const unreached = client?.status?.phase === "Failed" && !IMAGE_REASON.test(state);
    problems.push({
      subject: node,
      problem: unreached
        ? `its pod could not fetch from the Service: ${state}`
        : `its pod is ${state}${finished(client) ? "" : ` after ${seconds((step.data.wait ?? DEFAULT_WAIT).timeoutMs)}`}`,
      fix: unreached
        ? `pod traffic from ${node} to ${work.serverNode}: check the pod routes (ip route; addons.cni), that the nodes reach each other's InternalIPs, and kube-proxy's pods`
        : fixFor(node, state),
    });
  }
  return problems;
}

/** Creates the workload, waits for every client to finish, and deletes it all whatever happened. */
async function runWorkload(
  step: ValidateStep,
  api: ClusterApi,
  work: Workload,
  image: string,
): Promise<void> {
  const created: ObjectRef[] = [];
  const create = async (object: ApiObject) => {
    await api.apply(object);
    created.push(refTo(object.kind, object.metadata.name));
  };
  try {
    await create(work.server);
    await create(work.service);
    const service = await api.get(refTo("Service", work.service.metadata.name));
    const clusterIP = (service?.spec as { clusterIP?: string } | undefined)?.clusterIP;
    if (!clusterIP) throw new Error(`Service ${NAMESPACE}/${work.service.metadata.name} got no ClusterIP`);
    const clients = work.clients(clusterIP);
    for (const client of clients) await create(client.pod);

    const result = await waitFor(
      {
        what: `the validation pods on ${clients.length} nodes`,
        timing: step.data.wait ?? DEFAULT_WAIT,
        signal: step.signal,
        log: step.log,
        describe: ({ clients: states }: Progress) =>
          [...states]
            .filter(([, client]) => !finished(client))
            .map(([node, client]) => `${node} ${client ? podState(client) : "not created"}`)
            .join(", "),
      },
      async () => {
        const pods = new Map(
          (await api.list("v1", "Pod", NAMESPACE, { labelSelector: `${INSTANCE}=${work.id}` })).map(
            (object) => [object.metadata.name, asPod(object)],
          ),
        );
        const progress: Progress = {
          server: pods.get(work.server.metadata.name),
          clients: new Map(clients.map((client) => [client.node, pods.get(client.pod.metadata.name)])),
        };
        // A server that cannot start leaves nothing to wait for.
        const over = [...progress.clients.values()].every(finished) || finished(progress.server);
        return over ? { done: true as const, value: progress } : { done: false as const, pending: progress };
      },
    );
    const progress = result.done ? result.value : result.pending;
    const problems = workloadProblems(step, work, progress, image);
    if (problems.length > 0) throw new ValidationError(problems);
    step.log(
      `a pod ran on each of ${clients.length} nodes and reached Service ${work.service.metadata.name} (${clusterIP}) in front of a pod on ${work.serverNode}`,
    );
  } finally {
    for (const ref of created.reverse()) {
      await api
        .delete(ref)
        .catch((error: unknown) =>
          step.warn(
            `could not delete ${ref.kind} ${NAMESPACE}/${ref.name}: ${messageOf(error)}; delete it with kubectl -n ${NAMESPACE} delete pod,service -l ${MANAGED_BY}=${VALIDATE}`,
          ),
        );
    }
  }
}

const workloadsPhase: LocalPhase<ValidateRun, ClusterHost> = {
  id: "workloads",
  title: "Run a pod on every node and reach a Service across nodes",
  runIf: (run) => run.validate === "full",
  run: async (step) => {
    const { testImage, api } = step.data;
    if (!testImage)
      throw new Error(
        "full validation runs a busybox-class image (sh, wget, httpd) on every node, and none was given: name one that the bundle holds, or validate basic",
      );
    const work = workload(step.data, testImage, randomBytes(3).toString("hex"));
    if (api) await removeLeftovers(step, api);
    const nodes = step.data.hosts.map((host) => host.name).join(", ");
    await step.change(
      `run ${testImage} on ${nodes}, each fetching from a ClusterIP Service in front of a pod on ${work.serverNode}; delete them afterwards`,
      () => runWorkload(step, requireApi(api), work, testImage),
    );
  },
};

export const validatePhase: LocalPhase<ValidateRun, ClusterHost> = {
  id: "validate",
  title: "Validate the cluster",
  help: "basic: every host has a Ready Node with the expected kubelet version and role, kube-system's pods run, and the API answers through controlPlaneEndpoint with the admin kubeconfig. full: also a pod on every node that reaches a ClusterIP Service in front of a pod on another node (all deleted afterwards).",
  phases: [clusterPhase, workloadsPhase],
};
