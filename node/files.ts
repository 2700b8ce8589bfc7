// The files kubeadm (and the packages it relies on) would leave on one node of the cluster, as a
// pure list: what `kubeforge config render` prints for review, and what init/join will write.
import { nodeIp } from "../certs/specs.js";
import type { ClusterFile, HostSpec } from "../config/schema.js";
import {
  KUBEADM_FLAGS_FILE,
  KUBELET_CONFIG_FILE,
  type KubeletHost,
  renderKubeadmFlagsEnv,
  renderKubeletConfig,
} from "../templates/kubelet-config.js";
import { KUBEADM_DROP_IN, KUBELET_SERVICE } from "../templates/kubelet-unit.js";
import { controlPlaneNode, staticPods } from "../templates/static-pods.js";
import { UsageError } from "../workflow/errors.js";
import { KUBELET_DROP_IN, KUBELET_UNIT } from "./paths.js";

export interface NodeFile {
  path: string;
  /** As kubeadm writes it: manifests 0600, kubelet files 0644. */
  mode: number;
  content: string;
}

/** What the node's facts would say; `config render` assumes a plain host unless told otherwise. */
export interface NodeAssumptions extends KubeletHost {
  /** The host's own hostname; --hostname-override is written when it differs from the node name. */
  hostname: string;
}

export function hostNamed(cluster: ClusterFile, name: string): HostSpec {
  const host = cluster.spec.hosts.find((entry) => entry.name === name);
  if (!host) {
    const names = cluster.spec.hosts.map((entry) => entry.name).join(", ");
    throw new UsageError(`--host ${name}: no such host; the cluster file's hosts are ${names}`);
  }
  return host;
}

/**
 * The first control plane gets init's files (its static pods and kubelet files); every other host
 * join's kubelet files. Every node gets the kubelet unit and kubeadm's drop-in from prepare.
 */
export function nodeFiles(cluster: ClusterFile, host: HostSpec, assumed: NodeAssumptions): NodeFile[] {
  const nodeIP = nodeIp(host);
  if (!nodeIP) {
    throw new UsageError(
      `host ${host.name}: its address ${host.address} is not an IP address; set privateAddress to the node's IP`,
    );
  }
  const first = cluster.spec.hosts.find((entry) => entry.role === "control-plane");
  const command = first?.name === host.name ? "init" : "join";
  if (host.role === "control-plane" && command === "join") {
    throw new UsageError(
      `host ${host.name} would join as a second control plane: kubeforge does not support more than one yet (HA is the next step)`,
    );
  }
  const manifests =
    host.role === "control-plane"
      ? staticPods(cluster, controlPlaneNode(host)).map(({ path, content }) => ({
          path,
          mode: 0o600,
          content,
        }))
      : [];
  return [
    ...manifests,
    { path: KUBELET_CONFIG_FILE, mode: 0o644, content: renderKubeletConfig(cluster, assumed) },
    {
      path: KUBEADM_FLAGS_FILE,
      mode: 0o644,
      content: renderKubeadmFlagsEnv(cluster, {
        name: host.name,
        hostname: assumed.hostname,
        nodeIP,
        role: host.role,
        command,
        taints: host.taints,
      }),
    },
    { path: KUBELET_UNIT, mode: 0o644, content: KUBELET_SERVICE },
    { path: KUBELET_DROP_IN, mode: 0o644, content: KUBEADM_DROP_IN },
  ];
}
