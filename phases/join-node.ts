// The node side of `kubeforge join` on a worker, as kubeadm join's kubelet-start does it: the cluster
// CA, a bootstrap kubeconfig holding a bootstrap token (pushed over the verified SSH channel, so no
// discovery round trip is needed), the kubelet's files, the kubelet started, and the wait for its
// TLS bootstrap. A node that already holds a valid client certificate is never bootstrapped again.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { type BootstrapToken, formatBootstrapToken, pkiInputs, serializeKubeconfig } from "../certs/pki.js";
import { isIssuedBy, parseCertificate } from "../certs/x509.js";
import type { ClusterHost } from "../hosts/open.js";
import { KUBERNETES_DIR } from "../node/paths.js";
import { presentFiles, syncNodeFiles } from "../node/sync-files.js";
import { PkiError, type PkiProblem } from "../workflow/errors.js";
import type { HostPhase, HostStep, LocalPhase } from "../workflow/phase.js";
import { type ApiRun, connectApi } from "./init-api.js";
import {
  KUBELET_CLIENT_CURRENT,
  KUBELET_CONF,
  KUBELET_FILES,
  kubeletHealthy,
  type NodeSetupRun,
  nodeFilesOf,
  PKI_DIR,
  startKubelet,
  waitOnNode,
} from "./init-node.js";

export const BOOTSTRAP_KUBELET_CONF = `${KUBERNETES_DIR}/bootstrap-kubelet.conf`;
/** discovery.TokenUser: the user name of the bootstrap kubeconfig. */
const TOKEN_USER = "tls-bootstrap-token-user";
/** kubeadm's DefaultClusterName: join's bootstrap kubeconfig names its cluster so, whatever clusterName is. */
const BOOTSTRAP_CLUSTER = "kubernetes";

/** The token the workers' kubelets authenticate with is ApiRun's, set by bootstrap-token. */
export interface JoinRun extends NodeSetupRun, ApiRun {
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

/**
 * What the kubelet holds: whether kubelet.conf exists and the CA it trusts (only that field is read:
 * an old kubelet.conf may embed a key), and the certificate block of its rotated client certificate.
 */
async function kubeletIdentity(
  host: ClusterHost,
  signal: AbortSignal,
): Promise<{ conf: boolean; confCa: string | undefined; certificate: string }> {
  const out = await host.host.exec(
    `[ -f ${KUBELET_CONF} ] && printf '# kubelet.conf %s\\n' "$(sed -n 's/^ *certificate-authority-data: *//p' ${KUBELET_CONF} | head -n 1)"; sed -n '/BEGIN CERTIFICATE/,/END CERTIFICATE/p' ${KUBELET_CLIENT_CURRENT} 2>/dev/null; true`,
    { sudo: host.sudo, signal },
  );
  const header = /^# kubelet\.conf ?(\S*)\n/.exec(out.stdout);
  const caData = header?.[1];
  return {
    conf: header !== null,
    confCa: caData ? Buffer.from(caData, "base64").toString("utf8") : undefined,
    certificate: header ? out.stdout.slice(header[0].length) : out.stdout,
  };
}

/**
 * Notes the workers that already hold a valid client certificate from this cluster's CA: they
 * joined before and are not bootstrapped again. A worker with a kubelet.conf but no such
 * certificate (another cluster's, or expired) stops the run before any change, as kubeadm's
 * FileAvailable check does: its kubelet would ignore the bootstrap kubeconfig.
 */
export const joinedCheckPhase: LocalPhase<JoinRun, ClusterHost> = {
  id: "joined",
  prerequisite: true,
  title: "Find the workers that already joined",
  help: `A worker whose ${KUBELET_CONF} exists and whose ${KUBELET_CLIENT_CURRENT} is signed by the cluster CA and valid has joined; it is not bootstrapped again.`,
  run: async ({ data, signal, log }) => {
    const caPem = await clusterCa(data).catch(() => undefined);
    const workers = data.hosts.filter((host) => host.spec.role === "worker");
    const identities = await Promise.all(workers.map((host) => kubeletIdentity(host, signal)));
    const problems: PkiProblem[] = [];
    workers.forEach((host, i) => {
      const identity = identities[i];
      if (!identity) return;
      if (caPem && validClientCertificate(identity.certificate, caPem, new Date(data.now()))) {
        data.bootstrapped.add(host.name);
        log(`${host.name}: joined already (holds a valid client certificate)`);
      } else if (identity.conf && identity.confCa?.trim() !== caPem?.trim()) {
        // A kubelet.conf trusting this CA without a certificate yet is a bootstrap that did not
        // finish (the kubelet writes kubelet.conf first): that worker is simply bootstrapped again.
        problems.push({
          subject: `${host.name}:${KUBELET_CONF}`,
          problem:
            "the kubelet trusts another cluster's CA (or none it names): it would ignore the bootstrap kubeconfig",
          fix: `wipe the host with \`kubeforge reset -f ${data.file} --hosts ${host.name}\`, then join it again`,
        });
      }
    });
    if (problems.length > 0) throw new PkiError(data.clusterDir, problems);
  },
};

/** The kubelet's TLS bootstrap is done when its rotated client certificate is this cluster's and valid. */
async function bootstrapDone(step: Step, caPem: string): Promise<boolean> {
  const { certificate } = await kubeletIdentity(step.host, step.signal);
  return validClientCertificate(certificate, caPem, new Date(step.data.now()));
}

async function nodeExists(step: Step): Promise<boolean> {
  const api = await connectApi(step);
  return (await api.get({ apiVersion: "v1", kind: "Node", name: step.host.name })) !== undefined;
}

export const joinKubeletStartPhase: HostPhase<JoinRun, ClusterHost> = {
  id: "kubelet-start",
  title: "Start the workers' kubelets; bootstrap the new ones with a bootstrap token",
  help: `Every worker gets ${PKI_DIR}/ca.crt and the kubelet's files, and a running kubelet. A worker without a client certificate of the cluster also gets ${BOOTSTRAP_KUBELET_CONF} (the endpoint, the CA and a bootstrap token, over the verified SSH channel); kubeforge waits for its TLS bootstrap (a valid ${KUBELET_CLIENT_CURRENT}), then removes the bootstrap kubeconfig.`,
  hosts: (run) => run.hosts.filter((host) => host.spec.role === "worker"),
  run: async (step) => {
    const { data, host } = step;
    const caPem = await clusterCa(data).catch(() => undefined);
    if (caPem === undefined) {
      // A dry run on a fresh store: certs/store has only planned the CA the files are made from.
      if (!step.dryRun)
        throw new Error(
          `${data.clusterDir}/pki/ca.crt is missing: the cluster CA comes first (kubeforge init)`,
        );
      await step.change(
        `write ${PKI_DIR}/ca.crt, ${BOOTSTRAP_KUBELET_CONF} and the kubelet's files, start the kubelet and wait for its TLS bootstrap (once the store has the CA)`,
        async () => undefined,
      );
      return;
    }
    const joined = data.bootstrapped.has(host.name);
    if (!joined && !data.token)
      throw new Error(
        "no bootstrap token for the new worker: the bootstrap-token phase makes one (do not skip it, or run the whole join)",
      );
    const bootstrap =
      !joined && data.token
        ? [
            {
              path: BOOTSTRAP_KUBELET_CONF,
              mode: 0o600,
              content: bootstrapKubeconfig({
                server: pkiInputs(data.cluster).endpoint.url,
                caPem,
                token: data.token,
              }),
            },
          ]
        : [];
    const changed = await syncNodeFiles(step, [
      { path: `${PKI_DIR}/ca.crt`, mode: 0o644, content: caPem },
      ...bootstrap,
      ...nodeFilesOf(step).filter((file) => KUBELET_FILES.includes(file.path)),
    ]);
    // A new bootstrap kubeconfig (a new token) is read only when the kubelet starts.
    await startKubelet(step, changed);
    // A kubelet registers its Node only when it starts: one deleted meanwhile needs a restart.
    if (joined && changed.length === 0 && !(await nodeExists(step))) {
      await step.change(
        `restart the kubelet: Node ${host.name} is gone, and a kubelet registers only when it starts`,
        () => host.host.exec("systemctl restart kubelet", { sudo: host.sudo, signal: step.signal }),
      );
    }
    if (step.dryRun) return;
    if (!joined) {
      const { kubeletHealthMs, controlPlaneMs } = data.timeouts;
      await waitOnNode(step, "the kubelet's healthz", kubeletHealthMs, () => kubeletHealthy(step), []);
      await waitOnNode(
        step,
        `the kubelet's TLS bootstrap (${KUBELET_CLIENT_CURRENT})`,
        controlPlaneMs,
        () => bootstrapDone(step, caPem),
        [],
      );
      data.bootstrapped.add(host.name);
    }
    // The bootstrap kubeconfig holds a token: it goes once the kubelet has its own certificate,
    // also when an earlier run stopped before removing it.
    if ((await presentFiles(host, [BOOTSTRAP_KUBELET_CONF], step.signal)).has(BOOTSTRAP_KUBELET_CONF))
      await step.change(`remove ${BOOTSTRAP_KUBELET_CONF} (the kubelet has its own certificate)`, () =>
        host.host.exec(`rm -f ${BOOTSTRAP_KUBELET_CONF}`, { sudo: host.sudo, signal: step.signal }),
      );
  },
};
