import { describe, expect, it } from "vitest";
import { MemoryClusterApi } from "../api/memory-api.js";
import type { ApiObject } from "../api/objects.js";
import { clusterFile } from "../certs/testing.js";
import type { RunEvent } from "../workflow/events.js";
import { runWorkflow } from "../workflow/runner.js";
import { clusterProblems, type ValidateRun, ValidationError, validatePhase } from "./validate.js";

const VERSION = "v1.34.2";
const SERVICE_IP = "198.19.128.20";
const cluster = clusterFile({ version: VERSION }); // cp1, cp2 (control planes), w1
const hosts = cluster.spec.hosts.map((spec) => ({ name: spec.name, spec }));

function node(
  name: string,
  options: { ready?: boolean; version?: string; controlPlane?: boolean; message?: string } = {},
): ApiObject {
  const { ready = true, version = VERSION, controlPlane = name.startsWith("cp") } = options;
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: {
      name,
      labels: {
        "kubernetes.io/hostname": name,
        ...(controlPlane && { "node-role.kubernetes.io/control-plane": "" }),
      },
    },
    status: {
      conditions: [
        { type: "MemoryPressure", status: "False" },
        ready
          ? { type: "Ready", status: "True", reason: "KubeletReady" }
          : { type: "Ready", status: "False", reason: "KubeletNotReady", message: options.message },
      ],
      nodeInfo: { kubeletVersion: version },
    },
  };
}

function systemPod(name: string, nodeName: string, status: Record<string, unknown>): ApiObject {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: "kube-system" },
    spec: { nodeName },
    status,
  };
}

const running = (container = "c") => ({
  phase: "Running",
  containerStatuses: [{ name: container, ready: true, state: { running: {} } }],
});

function labelled(pod: ApiObject, app: string): ApiObject {
  return { ...pod, metadata: { ...pod.metadata, labels: { "k8s-app": app } } };
}

/** What every cluster of the test file runs: the control planes' static pods, kube-proxy everywhere, CoreDNS. */
const standardPods = () => [
  ...["cp1", "cp2"].flatMap((name) =>
    ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"].map((component) =>
      systemPod(`${component}-${name}`, name, running(component)),
    ),
  ),
  ...["cp1", "cp2", "w1"].map((name) =>
    labelled(systemPod(`kube-proxy-${name}`, name, running("kube-proxy")), "kube-proxy"),
  ),
  labelled(systemPod("coredns-7d9f-a1b", "cp1", running("coredns")), "kube-dns"),
];

const healthyCluster = () => [...["cp1", "cp2", "w1"].map((name) => node(name)), ...standardPods()];

type Behaviour = (pod: ApiObject, reads: number) => Record<string, unknown> | undefined;

/** Stands in for the controllers and kubelets: a ClusterIP for Services, pod status as `behave` says. */
function clusterApi(objects: ApiObject[], behave: Behaviour = () => undefined) {
  return new MemoryClusterApi(objects, (api) => {
    for (const object of api.all()) {
      if (object.metadata.namespace !== "default") continue;
      const spec = object.spec as Record<string, unknown>;
      if (object.kind === "Service" && !spec.clusterIP) spec.clusterIP = SERVICE_IP;
      if (object.kind === "Pod") object.status = behave(object, api.reads) ?? object.status;
    }
  });
}

/** The kubelets of a healthy cluster: the server runs, each client succeeds on its second look. */
const healthyKubelets: Behaviour = (pod) => {
  const component = pod.metadata.labels?.["app.kubernetes.io/component"];
  if (component === "server") return running("check");
  const seen = (pod.status as { seen?: number } | undefined)?.seen ?? 0;
  return seen >= 1 ? { phase: "Succeeded", seen } : { phase: "Pending", seen: seen + 1 };
};

function data(api: MemoryClusterApi | undefined, overrides: Partial<ValidateRun> = {}) {
  const reached: string[] = [];
  const run: ValidateRun = {
    cluster,
    hosts,
    api,
    validate: "basic",
    reachApi: async () => {
      reached.push("demo-api:6443");
      return "https://demo-api:6443 (v1.34.2)";
    },
    wait: { timeoutMs: 1_000, intervalMs: 1 },
    ...overrides,
  };
  return { run, reached };
}

async function validate(run: ValidateRun, dryRun = false) {
  const events: RunEvent[] = [];
  const result = runWorkflow(
    { command: "test", phases: [validatePhase] },
    {
      data: run,
      dryRun,
      concurrency: 10,
      emit: (event) => events.push(event),
      signal: new AbortController().signal,
    },
  );
  const logs = () => events.flatMap((event) => (event.type === "log" ? [event.message] : []));
  return { result, events, logs };
}

async function failure(promise: Promise<unknown>): Promise<ValidationError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => (caught as Error).cause,
  );
  expect(error).toBeInstanceOf(ValidationError);
  return error as ValidationError;
}

describe("clusterProblems", () => {
  it("names every node and kube-system pod that is not as the cluster file says, with a fix", () => {
    const nodes = [
      node("cp1", { version: "v1.34.1" }),
      node("w1", { ready: false, controlPlane: true, message: "container runtime network not ready" }),
    ];
    const pods = [
      ...standardPods(),
      systemPod("coredns-7d9f-x2x", "w1", {
        phase: "Pending",
        containerStatuses: [
          {
            name: "coredns",
            ready: false,
            state: { waiting: { reason: "ErrImageNeverPull", message: "not present" } },
          },
        ],
      }),
      systemPod("kube-proxy-q8r", "cp1", {
        phase: "Running",
        containerStatuses: [
          {
            name: "kube-proxy",
            ready: false,
            state: { waiting: { reason: "CrashLoopBackOff", message: "back-off 5m0s" } },
          },
        ],
      }),
      systemPod("scheduled-job-1", "cp1", { phase: "Succeeded" }),
      {
        ...systemPod("metrics-0", "", {
          phase: "Pending",
          conditions: [
            { type: "PodScheduled", status: "False", reason: "Unschedulable", message: "0/3 nodes" },
          ],
        }),
        spec: {},
      },
    ];
    expect(clusterProblems({ cluster, hosts }, nodes, pods)).toEqual([
      {
        subject: "cp1",
        problem: "kubelet v1.34.1, expected v1.34.2",
        fix: "install kubelet v1.34.2 on cp1 (kubeforge prepare) and restart it",
      },
      {
        subject: "cp2",
        problem: "no Node registered",
        fix: "check the kubelet on cp2 (journalctl -u kubelet)",
      },
      {
        subject: "w1",
        problem: "not Ready (KubeletNotReady: container runtime network not ready)",
        fix: 'check the kubelet on w1 (journalctl -u kubelet); "NetworkReady=false" means no pod network: addons.cni: bridge sets one up, with none you install one',
      },
      {
        subject: "w1",
        problem: "labelled node-role.kubernetes.io/control-plane, though a worker in the cluster file",
        fix: "kubectl label node w1 node-role.kubernetes.io/control-plane-",
      },
      {
        subject: "pod kube-system/coredns-7d9f-x2x on w1",
        problem: "Pending (coredns ErrImageNeverPull: not present)",
        fix: "its image is not on the node: it must be in the bundle (kubeforge prepare imports the images a role needs)",
      },
      {
        subject: "pod kube-system/kube-proxy-q8r on cp1",
        problem: "Running, not ready (kube-proxy CrashLoopBackOff: back-off 5m0s)",
        fix: "kubectl -n kube-system describe pod kube-proxy-q8r; kubectl -n kube-system logs kube-proxy-q8r",
      },
      {
        subject: "pod kube-system/metrics-0",
        problem: "Pending (Unschedulable: 0/3 nodes)",
        fix: "kubectl -n kube-system describe pod metrics-0; kubectl -n kube-system logs metrics-0",
      },
    ]);
  });

  it("wants the control-plane label on control planes", () => {
    const nodes = [node("cp1", { controlPlane: false }), node("cp2"), node("w1")];
    expect(clusterProblems({ cluster, hosts }, nodes, standardPods())).toEqual([
      {
        subject: "cp1",
        problem: "no node-role.kubernetes.io/control-plane label, though a control plane in the cluster file",
        fix: "kubectl label node cp1 node-role.kubernetes.io/control-plane=",
      },
    ]);
  });

  it("wants every control plane's static pods, kube-proxy on every node and CoreDNS, as enabled", () => {
    const nodes = ["cp1", "cp2", "w1"].map((name) => node(name));
    const pods = standardPods().filter(
      (pod) => !["kube-scheduler-cp2", "kube-proxy-w1", "coredns-7d9f-a1b"].includes(pod.metadata.name),
    );
    expect(clusterProblems({ cluster, hosts }, nodes, pods).map((p) => `${p.subject}: ${p.problem}`)).toEqual(
      [
        "pod kube-system/kube-scheduler-cp2: missing: the kubelet has not started this static pod",
        "kube-proxy on w1: no pod: the DaemonSet has not placed one there",
        "CoreDNS: no pod",
      ],
    );
    const without = structuredClone(cluster);
    without.spec.addons.kubeProxy.enabled = false;
    without.spec.addons.coreDNS.enabled = false;
    expect(clusterProblems({ cluster: without, hosts }, nodes, pods).map((p) => p.subject)).toEqual([
      "pod kube-system/kube-scheduler-cp2",
    ]);
  });
});

describe("validate basic", () => {
  it("waits for the nodes to become Ready, lists kube-system's pods and reaches the endpoint", async () => {
    const api = new MemoryClusterApi(healthyCluster(), (self) => {
      if (self.reads === 4) self.put(node("w1"));
    });
    api.put(node("w1", { ready: false, message: "NetworkReady=false" }));
    const { run, reached } = data(api);
    const { result, logs } = await validate(run);
    expect((await result).changes).toEqual({});
    expect(reached).toEqual(["demo-api:6443"]);
    expect(logs()).toEqual([
      "waiting for Ready nodes and running kube-system pods (0 s of 1 s): w1: not Ready (KubeletNotReady: NetworkReady=false)",
      `kube-system pods: ${standardPods()
        .map((pod) => `${pod.metadata.name} Running`)
        .join(", ")}`,
      "the API answers through controlPlaneEndpoint: https://demo-api:6443 (v1.34.2)",
      "3 nodes Ready with kubelet v1.34.2",
    ]);
  });

  it("fails once with every problem, the endpoint's too, after the wait", async () => {
    const api = new MemoryClusterApi([...healthyCluster(), node("w1", { ready: false })]);
    const { run } = data(api, {
      wait: { timeoutMs: 20, intervalMs: 1 },
      reachApi: () => Promise.reject(new Error("getaddrinfo ENOTFOUND demo-api")),
    });
    const error = await failure((await validate(run)).result);
    expect(error.problems.map((p) => `${p.subject}: ${p.problem}`)).toEqual([
      "w1: not Ready (KubeletNotReady)",
      "API endpoint: not reached with the admin kubeconfig: getaddrinfo ENOTFOUND demo-api",
    ]);
    expect(error.message).toMatch(
      /^2 problems with the cluster:\n- w1: not Ready \(KubeletNotReady\)\n {2}fix: /,
    );
  });

  it("waits for nothing in a dry run, with or without a cluster: it validates what the changes make", async () => {
    for (const api of [undefined, new MemoryClusterApi()]) {
      const { run, reached } = data(api);
      const { result, logs } = await validate(run, true);
      await result;
      expect(logs()).toEqual(["dry run: the cluster is validated once the changes are made"]);
      expect(reached).toEqual([]);
    }
  });
});

describe("validate full", () => {
  const image = "registry.k8s.io/e2e-test-images/busybox:1.36.1-1";

  it("runs a pod on every node that reaches the Service across nodes, then deletes them all", async () => {
    const api = clusterApi(healthyCluster(), healthyKubelets);
    const { run } = data(api, { validate: "full", testImage: image });
    const { result, logs } = await validate(run);
    const { changes } = await result;
    expect(changes).toEqual({
      workstation: [
        `run ${image} on cp1, cp2, w1, each fetching from a ClusterIP Service in front of a pod on w1; delete them afterwards`,
      ],
    });
    const created = api.writes.filter((write) => write.startsWith("apply"));
    const id = /kubeforge-validate-([0-9a-f]{6})-server/.exec(created[0] ?? "")?.[1];
    const name = `kubeforge-validate-${id}`;
    expect(api.writes).toEqual([
      `apply Pod default/${name}-server`,
      `apply Service default/${name}`,
      `apply Pod default/${name}-cp1`,
      `apply Pod default/${name}-cp2`,
      `apply Pod default/${name}-w1`,
      `delete Pod default/${name}-w1`,
      `delete Pod default/${name}-cp2`,
      `delete Pod default/${name}-cp1`,
      `delete Service default/${name}`,
      `delete Pod default/${name}-server`,
    ]);
    expect(api.all().filter((object) => object.metadata.namespace === "default")).toEqual([]);
    expect(logs()).toContain(
      `a pod ran on each of 3 nodes and reached Service ${name} (${SERVICE_IP}) in front of a pod on w1`,
    );
    expect(
      logs().some((line) => line.startsWith("waiting for the validation pods on 3 nodes (0 s of 1 s): ")),
    ).toBe(true);
  });

  it("pins each client to its node and points it at the Service's ClusterIP", async () => {
    const created = new Map<string, ApiObject>();
    const api = clusterApi(healthyCluster(), (pod, reads) => {
      if (!created.has(pod.metadata.name)) created.set(pod.metadata.name, structuredClone(pod));
      return healthyKubelets(pod, reads);
    });
    await (await validate(data(api, { validate: "full", testImage: image }).run)).result;
    const client = [...created.values()].find((pod) => pod.metadata.name.endsWith("-cp2")) as ApiObject;
    const spec = client.spec as {
      nodeName: string;
      containers: Array<{ command: string[]; imagePullPolicy: string }>;
    };
    expect(spec.nodeName).toBe("cp2");
    expect(spec.containers[0]?.imagePullPolicy).toBe("IfNotPresent");
    expect(spec.containers[0]?.command[2]).toContain(`wget -q -T 3 -O - http://${SERVICE_IP}/`);
    expect(client.metadata.labels?.["app.kubernetes.io/managed-by"]).toBe("kubeforge-validate");
  });

  it("names each node whose pod failed, and why, and still deletes everything", async () => {
    const api = clusterApi(healthyCluster(), (pod, reads) => {
      if (pod.metadata.name.endsWith("-cp1"))
        return {
          phase: "Pending",
          containerStatuses: [
            { name: "check", ready: false, state: { waiting: { reason: "ErrImageNeverPull" } } },
          ],
        };
      if (pod.metadata.name.endsWith("-cp2"))
        return {
          phase: "Failed",
          containerStatuses: [
            {
              name: "check",
              ready: false,
              state: { terminated: { exitCode: 1, reason: "Error", message: "no answer from Service" } },
            },
          ],
        };
      return healthyKubelets(pod, reads);
    });
    const { run } = data(api, { validate: "full", testImage: image });
    const error = await failure((await validate(run)).result);
    expect(error.problems).toEqual([
      {
        subject: "cp1",
        problem: "its pod is Pending (check ErrImageNeverPull)",
        fix: `${image} is not on cp1: it must be in the bundle and imported into containerd's k8s.io namespace`,
      },
      {
        subject: "cp2",
        problem:
          "its pod could not fetch from the Service: Failed (check exited 1 (Error: no answer from Service))",
        fix: "pod traffic from cp2 to w1: check the pod routes (ip route; addons.cni), that the nodes reach each other's InternalIPs, and kube-proxy's pods",
      },
    ]);
    expect(api.all().filter((object) => object.metadata.namespace === "default")).toEqual([]);
  });

  it("stops waiting when the Service's pod cannot start", async () => {
    const api = clusterApi(healthyCluster(), (pod) =>
      pod.metadata.labels?.["app.kubernetes.io/component"] === "server"
        ? {
            phase: "Pending",
            containerStatuses: [{ name: "check", state: { waiting: { reason: "InvalidImageName" } } }],
          }
        : { phase: "Pending" },
    );
    const { run } = data(api, {
      validate: "full",
      testImage: image,
      wait: { timeoutMs: 60_000, intervalMs: 1 },
    });
    const error = await failure((await validate(run)).result);
    expect(error.problems.map((p) => `${p.subject}: ${p.problem}`)).toEqual([
      expect.stringMatching(
        /^w1: the Service's backing pod kubeforge-validate-\w+-server is Pending \(check InvalidImageName\)$/,
      ),
      "cp1: its pod is Pending after 60 s",
      "cp2: its pod is Pending after 60 s",
      "w1: its pod is Pending after 60 s",
    ]);
  });

  it("first deletes what a killed validation left", async () => {
    const leftover: ApiObject = {
      apiVersion: "v1",
      kind: "Pod",
      metadata: {
        name: "kubeforge-validate-0a0a0a-w1",
        namespace: "default",
        labels: { "app.kubernetes.io/managed-by": "kubeforge-validate" },
      },
    };
    const api = clusterApi([...healthyCluster(), leftover], healthyKubelets);
    const { changes } = await (await validate(data(api, { validate: "full", testImage: image }).run)).result;
    expect(changes.workstation?.[0]).toBe(
      "delete what an earlier validation left in default: Pod kubeforge-validate-0a0a0a-w1",
    );
    expect(api.writes[0]).toBe("delete Pod default/kubeforge-validate-0a0a0a-w1");
  });

  it("fails, never skips, without a test image", async () => {
    const { run } = data(undefined, { validate: "full" });
    const { result } = await validate(run, true);
    await expect(result).rejects.toThrow(
      "error execution phase validate/workloads: full validation runs a busybox-class image (sh, wget, httpd) on every node, and none was given",
    );
  });

  it("in a dry run says what it would run and touches nothing", async () => {
    const api = clusterApi(healthyCluster(), healthyKubelets);
    const { changes } = await (await validate(data(api, { validate: "full", testImage: image }).run, true))
      .result;
    expect(changes.workstation).toHaveLength(1);
    expect(api.writes).toEqual([]);
  });
});

describe("validate with addons.cni: none", () => {
  it("asks for registration only: NotReady nodes and a pending CoreDNS wait for the user's pod network", () => {
    const networkless = structuredClone(cluster);
    networkless.spec.addons.cni = "none";
    const nodes = ["cp1", "cp2", "w1"].map((name) =>
      node(name, { ready: false, message: "container runtime network not ready: NetworkReady=false" }),
    );
    const pods = standardPods().map((pod) =>
      pod.metadata.name.startsWith("coredns") ? { ...pod, status: { phase: "Pending" } } : pod,
    );
    expect(clusterProblems({ cluster: networkless, hosts }, nodes, pods)).toEqual([]);
    expect(clusterProblems({ cluster, hosts }, nodes, pods).map((p) => p.subject)).toEqual([
      "cp1",
      "cp2",
      "w1",
      "pod kube-system/coredns-7d9f-a1b on cp1",
    ]);
  });
});
