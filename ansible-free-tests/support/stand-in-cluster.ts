// STAND-INS for the parts of a cluster that cannot run on these machines (the Kubernetes server
// binaries cannot be downloaded here), so init, join and apply can run end to end on real lab hosts:
//
// - kube-apiserver: the recording fake API server (api/fake-apiserver.ts) on the workstation, serving
//   the store's apiserver certificate; the control plane's serving stand-in kubelet forwards the
//   host's :6443 to it once the kube-apiserver manifest is written (support/bundle-dir.ts).
// - the kubelets' registration and TLS bootstrap, and kube-controller-manager's CSR signing, node
//   IPAM and bootstrapsigner: a registrar that watches the hosts. When a kubelet runs it signs the
//   node's client certificate with the store's CA (a worker's only after checking its bootstrap token
//   against the API's token Secret, as kube-apiserver would), writes it where the kubelet keeps it,
//   and registers the Node (Ready, the version, a pod CIDR) with its static pods' mirror pods.
// - kube-proxy's DaemonSet and CoreDNS' Deployment controllers: a Running pod per node / one pod,
//   once kubeforge has created them.
// Everything kubeforge does to the hosts and through the API is real; only these answers are not.
import { generateKeyPairSync } from "node:crypto";
import { writeFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import yaml from "js-yaml";
import type { RecordingFakeApiServer } from "../../api/fake-apiserver.js";
import { startFakeApiServerFromStore } from "../../api/fake-apiserver.js";
import type { ApiObject } from "../../api/objects.js";
import { parsePrivateKey, privateKeyToPem } from "../../certs/keys.js";
import { parseKubeconfig, serializeKubeconfig } from "../../certs/kubeconfigs.js";
import { parseCertificate, signCertificate } from "../../certs/x509.js";
import type { Lab } from "../../lab/testhosts.js";
import { packTestBundle, STAND_IN_API_FORWARD_FILE } from "./bundle-dir.js";
import { type CliRun, must, onHost, show } from "./scenario.js";

export interface StandInNode {
  /** The Node name (the cluster file's host name). */
  name: string;
  /** The lab host it runs on (h1, h2, …). */
  labHost: string;
  address: string;
  role: "control-plane" | "worker";
  podCIDR: string;
}

export interface StandIns {
  fake: RecordingFakeApiServer;
  /** Holds (or releases) a node's TLS bootstrap, as a controller-manager that has not signed yet. */
  holdBootstrap(node: string, held: boolean): void;
  /** What the registrar did, for a failing test's message. */
  log: string[];
  stop(): Promise<void>;
}

const KUBELET_PKI = "/var/lib/kubelet/pki/kubelet-client-current.pem";
const BOOTSTRAP_CONF = "/etc/kubernetes/bootstrap-kubelet.conf";
const KUBELET_CONF = "/etc/kubernetes/kubelet.conf";
const STATIC_PODS = ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"];
const running = (container: string) => ({
  phase: "Running",
  containerStatuses: [{ name: container, ready: true, state: { running: {} } }],
});

interface HostView {
  kubeletActive: boolean;
  hasClientCert: boolean;
  hasKubeletConf: boolean;
  bootstrapToken: string | undefined;
}

/** One ssh round trip: is the kubelet running, does it hold a certificate, which bootstrap token has it. */
async function look(lab: Lab, node: StandInNode): Promise<HostView | undefined> {
  const out = await onHost(
    lab,
    node.labHost,
    `systemctl is-active --quiet kubelet && echo active; [ -f ${KUBELET_PKI} ] && echo cert; [ -f ${KUBELET_CONF} ] && echo conf; [ -f ${BOOTSTRAP_CONF} ] && cat ${BOOTSTRAP_CONF}; true`,
  );
  if (out.exitCode !== 0) return undefined;
  const lines = out.stdout.split("\n");
  const conf = out.stdout.indexOf("apiVersion");
  const token = conf >= 0 ? parseKubeconfig(out.stdout.slice(conf)).users[0]?.user.token : undefined;
  return {
    kubeletActive: lines.includes("active"),
    hasClientCert: lines.includes("cert"),
    hasKubeletConf: lines.includes("conf"),
    bootstrapToken: typeof token === "string" ? token : undefined,
  };
}

export async function startStandIns(options: {
  lab: Lab;
  /** The cluster's directory in the local store; its PKI must exist (kubeforge certs generate). */
  clusterDir: string;
  nodes: readonly StandInNode[];
  version: string;
  /** The endpoint URL the workers' kubelet.conf names, as kubeforge's bootstrap kubeconfig does. */
  endpoint: string;
  port: number;
}): Promise<StandIns> {
  const { lab, clusterDir, nodes, version, port } = options;
  const controlPlane = nodes.find((node) => node.role === "control-plane");
  if (!controlPlane) throw new Error("the stand-ins need a control plane");
  const workstation = `${lab.subnet}.1`;
  const fake = await startFakeApiServerFromStore(clusterDir, controlPlane.name, {
    host: workstation,
    port,
    bootstrapSigner: true,
    gitVersion: version,
  });
  await must(
    lab,
    controlPlane.labHost,
    `mkdir -p /etc/kubeforge-test && echo ${workstation}:${port} > ${STAND_IN_API_FORWARD_FILE}`,
  );
  const caPem = await readFile(join(clusterDir, "pki/ca.crt"), "utf8");
  const issuer = {
    certificate: parseCertificate(caPem),
    key: parsePrivateKey(await readFile(join(clusterDir, "pki/ca.key"), "utf8")),
  };
  const log: string[] = [];

  /** What kube-controller-manager's csrsigning would hand the kubelet: a client certificate for the node. */
  async function issueClientCertificate(node: StandInNode): Promise<void> {
    const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const now = Date.now();
    const cert = await signCertificate(
      {
        commonName: `system:node:${node.name}`,
        organizations: ["system:nodes"],
        dnsNames: [],
        ipAddresses: [],
        isCA: false,
        keyUsages: ["digitalSignature"],
        extKeyUsages: ["clientAuth"],
      },
      { notBefore: new Date(now - 300_000), notAfter: new Date(now + 365 * 86_400_000) },
      privateKey,
      issuer,
    );
    await must(
      lab,
      node.labHost,
      `mkdir -p /var/lib/kubelet/pki && umask 077 && cat > ${KUBELET_PKI}`,
      `${cert.pem}${privateKeyToPem(privateKey)}`,
    );
    log.push(`${node.name}: client certificate issued`);
  }

  /** kube-apiserver's bootstrap token authentication: the token matches a token Secret. */
  function tokenIsValid(token: string): boolean {
    const [id, secret] = token.split(".");
    const stored = fake.object({
      apiVersion: "v1",
      kind: "Secret",
      namespace: "kube-system",
      name: `bootstrap-token-${id}`,
    });
    const data = (stored?.data ?? {}) as Record<string, string>;
    return (
      data["token-secret"] !== undefined && Buffer.from(data["token-secret"], "base64").toString() === secret
    );
  }

  /** The kubelet's own kubelet.conf after its TLS bootstrap: the endpoint, the CA, its rotated certificate. */
  async function writeKubeletConf(node: StandInNode): Promise<void> {
    const user = `system:node:${node.name}`;
    const conf = serializeKubeconfig({
      apiVersion: "v1",
      kind: "Config",
      clusters: [
        {
          name: "default-cluster",
          cluster: {
            "certificate-authority-data": Buffer.from(caPem).toString("base64"),
            server: options.endpoint,
          },
        },
      ],
      contexts: [{ name: "default-context", context: { cluster: "default-cluster", user } }],
      "current-context": "default-context",
      users: [{ name: user, user: { "client-certificate": KUBELET_PKI, "client-key": KUBELET_PKI } }],
    });
    await must(lab, node.labHost, `umask 077 && cat > ${KUBELET_CONF}`, conf);
  }

  function register(node: StandInNode): void {
    const ref = { apiVersion: "v1", kind: "Node", name: node.name };
    if (!fake.object(ref)) {
      fake.put({
        apiVersion: "v1",
        kind: "Node",
        metadata: {
          name: node.name,
          labels: { "kubernetes.io/hostname": node.name, "kubernetes.io/os": "linux" },
        },
        spec: { podCIDR: node.podCIDR, podCIDRs: [node.podCIDR] },
        status: {
          conditions: [{ type: "Ready", status: "True", reason: "KubeletReady" }],
          addresses: [{ type: "InternalIP", address: node.address }],
          nodeInfo: { kubeletVersion: version },
        },
      } as ApiObject);
      log.push(`${node.name}: Node registered`);
    }
    if (node.role === "control-plane") {
      for (const component of STATIC_PODS)
        putPod(`${component}-${node.name}`, node.name, component, { component });
    }
  }

  function putPod(name: string, nodeName: string, container: string, labels: Record<string, string>): void {
    if (fake.object({ apiVersion: "v1", kind: "Pod", namespace: "kube-system", name })) return;
    fake.put({
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name, namespace: "kube-system", labels },
      spec: { nodeName },
      status: running(container),
    } as ApiObject);
  }

  /** The DaemonSet and Deployment controllers' and the kubelets' part for the add-ons kubeforge created. */
  function runAddons(registered: readonly StandInNode[]): void {
    const exists = (kind: string, name: string) =>
      fake.object({ apiVersion: "apps/v1", kind, namespace: "kube-system", name }) !== undefined;
    if (exists("DaemonSet", "kube-proxy")) {
      for (const node of registered)
        putPod(`kube-proxy-${node.name}`, node.name, "kube-proxy", { "k8s-app": "kube-proxy" });
    }
    if (exists("Deployment", "coredns"))
      putPod("coredns-0", controlPlane?.name ?? "", "coredns", { "k8s-app": "kube-dns" });
  }

  async function step(node: StandInNode): Promise<boolean> {
    const view = await look(lab, node);
    if (!view?.kubeletActive) return false;
    if (node.role === "worker" && !view.hasClientCert) {
      // A worker's kubelet bootstraps with the token of its bootstrap kubeconfig, or not at all;
      // like the real one it writes kubelet.conf first, naming the certificate it is about to get.
      if (!view.bootstrapToken) return false;
      if (!view.hasKubeletConf) await writeKubeletConf(node);
      if (held.has(node.name) || !tokenIsValid(view.bootstrapToken)) return false;
      await issueClientCertificate(node);
    } else if (!view.hasClientCert) {
      await issueClientCertificate(node);
    }
    register(node);
    return true;
  }

  const held = new Set<string>();
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const results = await Promise.all(nodes.map((node) => step(node).catch(() => false)));
      runAddons(nodes.filter((_, i) => results[i]));
      await sleep(300);
    }
  })();

  return {
    fake,
    log,
    holdBootstrap: (node, on) => {
      if (on) held.add(node);
      else held.delete(node);
    },
    stop: async () => {
      stopped = true;
      await loop;
      await fake.close();
    },
  };
}

/**
 * A 3-node cluster file on the lab (cp1, w1, w2 on its first three hosts), a bundle of real Debian
 * packages with the serving stand-in kubelet, the store's PKI, and the stand-ins running: what the
 * end-to-end tests of init, join and apply start from.
 */
export async function standInCluster(options: {
  work: string;
  lab: Lab;
  name: string;
  version: string;
  port: number;
  /** Labels per node name, for the cluster file. */
  labels?: Record<string, Record<string, string>>;
  /** The CLI in `work` (with the test's environment). */
  cli: (args: string[]) => Promise<CliRun>;
}): Promise<{ nodes: StandInNode[]; standIns: StandIns }> {
  const { work, lab, name, version, cli } = options;
  const [h1, h2, h3] = lab.hosts;
  if (!h1 || !h2 || !h3) throw new Error("the lab has fewer than 3 hosts");
  const nodes: StandInNode[] = [
    { name: "cp1", labHost: h1.name, address: h1.address, role: "control-plane", podCIDR: "198.19.0.0/24" },
    { name: "w1", labHost: h2.name, address: h2.address, role: "worker", podCIDR: "198.19.1.0/24" },
    { name: "w2", labHost: h3.name, address: h3.address, role: "worker", podCIDR: "198.19.2.0/24" },
  ];
  writeFileSync(
    join(work, "cluster.yaml"),
    yaml.dump({
      apiVersion: "kubeforge.dev/v1alpha1",
      kind: "Cluster",
      metadata: { name },
      spec: {
        ssh: { user: "root", keyPath: lab.keyPath, knownHostsPath: lab.knownHostsPath },
        kubernetes: { version, networking: { podSubnet: "198.19.0.0/17", serviceSubnet: "198.19.128.0/20" } },
        hosts: nodes.map((node) => ({
          name: node.name,
          address: node.address,
          role: node.role,
          ...(options.labels?.[node.name] && { labels: options.labels[node.name] }),
        })),
        artifacts: { source: "bundle", bundle: "bundle.tar" },
      },
    }),
  );
  await packTestBundle(cli, {
    work,
    clusterFile: "cluster.yaml",
    dir: "bundle-dir",
    bundle: "bundle.tar",
    kubernetesVersion: version,
    kubelet: "serving",
  });
  const generated = await cli(["certs", "generate", "-f", "cluster.yaml"]);
  if (generated.code !== 0) throw new Error(`certs generate failed:\n${show(generated)}`);
  const standIns = await startStandIns({
    lab,
    clusterDir: join(work, "state", name),
    nodes,
    version,
    endpoint: `https://${name}-api:6443`,
    port: options.port,
  });
  return { nodes, standIns };
}
