// The node side of `kubeforge join` on a worker, as kubeadm join's kubelet-start does it: the cluster
// CA, a bootstrap kubeconfig holding a bootstrap token (pushed over the verified SSH channel, so no
// discovery round trip is needed), the kubelet's files, the kubelet started, and the wait for its
// TLS bootstrap. A node that already holds a valid client certificate is never bootstrapped again.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { type BootstrapToken, formatBootstrapToken, pkiInputs, serializeKubeconfig } from "../certs/pki.js";
import { isIssuedBy, parseCertificate } from "../certs/x509.js";
import type { ClusterHost } from "../hosts/open.js";
import { nodeFiles } from "../node/files.js";
import { KUBERNETES_DIR } from "../node/paths.js";
import { presentFiles, syncNodeFiles } from "../node/sync-files.js";
import type { HostPhase, HostStep } from "../workflow/phase.js";
import { factsOf } from "./cluster-run.js";
import {
  KUBELET_CLIENT_CURRENT,
  KUBELET_CONF,
  KUBELET_FILES,
  kubeletHealthy,
  type NodeSetupRun,
  PKI_DIR,
  startKubelet,
  waitOnNode,
} from "./init-node.js";

export const BOOTSTRAP_KUBELET_CONF = `${KUBERNETES_DIR}/bootstrap-kubelet.conf`;
/** discovery.TokenUser: the user name of the bootstrap kubeconfig. */
const TOKEN_USER = "tls-bootstrap-token-user";
/** kubeadm's DefaultClusterName: join's bootstrap kubeconfig names its cluster so, whatever clusterName is. */
const BOOTSTRAP_CLUSTER = "kubernetes";

export interface JoinRun extends NodeSetupRun {
  /** The bootstrap token the workers' kubelets authenticate with; set before kubelet-start. */
  token?: BootstrapToken;
  /** Workers that already hold a valid client certificate: not bootstrapped again. */
  bootstrapped: Set<string>;
}

type Step = HostStep<JoinRun, ClusterHost>;

/** kubeadm's bootstrap-kubelet.conf (kubeconfigutil.CreateWithToken): the endpoint, the CA and the token. */
export function bootstrapKubeconfig(options: {
  server: string;
  caPem: string;
  token: BootstrapToken;
}): string {
  const context = `${TOKEN_USER}@${BOOTSTRAP_CLUSTER}`;
  return serializeKubeconfig({
    apiVersion: "v1",
    clusters: [
      {
        cluster: {
          "certificate-authority-data": Buffer.from(options.caPem).toString("base64"),
          server: options.server,
        },
        name: BOOTSTRAP_CLUSTER,
      },
    ],
    contexts: [{ context: { cluster: BOOTSTRAP_CLUSTER, user: TOKEN_USER }, name: context }],
    "current-context": context,
    kind: "Config",
    preferences: {},
    users: [{ name: TOKEN_USER, user: { token: formatBootstrapToken(options.token) } }],
  });
}

/**
 * Whether the node's rotated client certificate (only its certificate part is read: the key stays
 * on the node) is signed by the cluster CA and valid now.
 */
export function validClientCertificate(pem: string, caPem: string, now: Date): boolean {
  try {
    const cert = parseCertificate(pem);
    return isIssuedBy(cert, parseCertificate(caPem)) && cert.notBefore <= now && now < cert.notAfter;
  } catch {
    return false;
  }
}

async function clusterCa(run: JoinRun): Promise<string> {
  return readFile(join(run.clusterDir, "pki/ca.crt"), "utf8");
}

/** Reads the certificate block of the kubelet's rotated client certificate, if any. */
async function rotatedCertificate(host: ClusterHost, signal: AbortSignal): Promise<string> {
  const out = await host.host.exec(
    `[ -f ${KUBELET_CONF} ] && sed -n '/BEGIN CERTIFICATE/,/END CERTIFICATE/p' ${KUBELET_CLIENT_CURRENT} 2>/dev/null || true`,
    { sudo: host.sudo, signal },
  );
  return out.stdout;
}

/**
 * Notes the workers that already hold a valid client certificate from this cluster's CA: they
 * joined before (the API tells whether their Node still exists), so kubelet-start leaves them be.
 */
export const joinedCheckPhase: HostPhase<JoinRun, ClusterHost> = {
  id: "joined",
  prerequisite: true,
  title: "Find the workers that already joined",
  help: `A worker whose ${KUBELET_CONF} exists and whose ${KUBELET_CLIENT_CURRENT} is signed by the cluster CA and valid has joined; it is not bootstrapped again.`,
  hosts: (run) => run.hosts.filter((host) => host.spec.role === "worker"),
  run: async ({ host, data, signal, log }) => {
    const caPem = await clusterCa(data).catch(() => undefined);
    if (!caPem) return;
    const pem = await rotatedCertificate(host, signal);
    if (pem && validClientCertificate(pem, caPem, new Date(data.now()))) {
      data.bootstrapped.add(host.name);
      log("joined already: holds a valid client certificate");
    }
  },
};

async function workerFiles(step: Step) {
  const facts = factsOf(step.data, step.host.name);
  const resolved = await step.host.host.exec("systemctl is-active --quiet systemd-resolved", {
    sudo: step.host.sudo,
    signal: step.signal,
    allowFailure: true,
  });
  return nodeFiles(step.data.cluster, step.host.spec, {
    hostname: facts.hostname,
    container: facts.container,
    cgroupVersion: facts.cgroupVersion,
    systemdResolvedActive: resolved.exitCode === 0,
  }).filter((file) => KUBELET_FILES.includes(file.path));
}

async function kubeletConfLoadable(step: Step): Promise<boolean> {
  const present = await presentFiles(step.host, [KUBELET_CONF, KUBELET_CLIENT_CURRENT], step.signal);
  return present.has(KUBELET_CONF) && present.has(KUBELET_CLIENT_CURRENT);
}

export const joinKubeletStartPhase: HostPhase<JoinRun, ClusterHost> = {
  id: "kubelet-start",
  title: "Bootstrap the workers' kubelets with a bootstrap token",
  help: `Writes ${PKI_DIR}/ca.crt, ${BOOTSTRAP_KUBELET_CONF} (the endpoint, the CA and a bootstrap token, over the verified SSH channel) and the kubelet's files, starts the kubelet and waits for its TLS bootstrap (${KUBELET_CONF}); then removes the bootstrap kubeconfig.`,
  hosts: (run) => run.hosts.filter((host) => host.spec.role === "worker" && !run.bootstrapped.has(host.name)),
  run: async (step) => {
    const { data } = step;
    if (!data.token)
      throw new Error("no bootstrap token: the bootstrap-token phase must run before kubelet-start");
    const caPem = await clusterCa(data);
    const bootstrap = bootstrapKubeconfig({
      server: pkiInputs(data.cluster).endpoint.url,
      caPem,
      token: data.token,
    });
    const changed = await syncNodeFiles(step, [
      { path: `${PKI_DIR}/ca.crt`, mode: 0o644, content: caPem },
      { path: BOOTSTRAP_KUBELET_CONF, mode: 0o600, content: bootstrap },
      ...(await workerFiles(step)),
    ]);
    await startKubelet(step, changed);
    if (step.dryRun) return;
    const { kubeletHealthMs, controlPlaneMs } = data.timeouts;
    await waitOnNode(step, "the kubelet's healthz", kubeletHealthMs, () => kubeletHealthy(step), []);
    await waitOnNode(
      step,
      `the TLS bootstrap (${KUBELET_CONF})`,
      controlPlaneMs,
      () => kubeletConfLoadable(step),
      [],
    );
    await step.change(`remove ${BOOTSTRAP_KUBELET_CONF} (the kubelet has its own certificate)`, () =>
      step.host.host.exec(`rm -f ${BOOTSTRAP_KUBELET_CONF}`, { sudo: step.host.sudo, signal: step.signal }),
    );
    data.bootstrapped.add(step.host.name);
  },
};
