// Kubeconfigs as a table of specs, as kubeadm's phases/kubeconfig/kubeconfig.go has it
// (getKubeConfigSpecsBase): who the client is, its groups and which API server URL it uses. Plus
// the pure parts around them: build, parse, serialize, and merge into a user's kubeconfig.
import yaml from "js-yaml";
import type { IdentityGates } from "../config/version-gates.js";
import type { ControlPlaneNode, PkiInputs } from "./specs.js";
import { LEAF_KEY_USAGES, serverUrl } from "./specs.js";
import type { CertificateProfile } from "./x509.js";

export interface KubeconfigSpec {
  /** The file name, as `kubeadm certs renew <name>` takes it. */
  name: string;
  /** One per control-plane node (nodes/<host>/) rather than one per cluster (kubeconfigs/). */
  perNode: boolean;
  /**
   * Per node, but the client identity does not depend on the node (only the server URL does): one
   * key and certificate for the cluster, embedded in every control plane's file.
   */
  shared: boolean;
  clientName: (node: ControlPlaneNode) => string;
  organizations: (gates: IdentityGates) => string[];
  /** The API server URL the client dials. */
  server: (inputs: PkiInputs, node: ControlPlaneNode) => string;
  applies: (gates: IdentityGates) => boolean;
  /** Listed by `certs check-expiration` and renewed by `renew all` (kubelet.conf is not: the kubelet rotates it). */
  inRenewAll: boolean;
}

const controlPlaneEndpoint = (inputs: PkiInputs) => inputs.endpoint.url;
// kube-controller-manager and kube-scheduler talk to their own node's API server.
const localEndpoint = (inputs: PkiInputs, node: ControlPlaneNode) => serverUrl(node.ip, inputs.bindPort);
const always = () => true;

export const KUBECONFIG_SPECS: readonly KubeconfigSpec[] = [
  {
    name: "admin.conf",
    perNode: false,
    shared: false,
    clientName: () => "kubernetes-admin",
    organizations: (gates) => [gates.adminOrganization],
    server: controlPlaneEndpoint,
    applies: always,
    inRenewAll: true,
  },
  {
    name: "super-admin.conf",
    perNode: false,
    shared: false,
    clientName: () => "kubernetes-super-admin",
    organizations: () => ["system:masters"],
    server: controlPlaneEndpoint,
    applies: (gates) => gates.superAdminConf,
    inRenewAll: true,
  },
  {
    name: "controller-manager.conf",
    perNode: true,
    shared: true,
    clientName: () => "system:kube-controller-manager",
    organizations: () => [],
    server: localEndpoint,
    applies: always,
    inRenewAll: true,
  },
  {
    name: "scheduler.conf",
    perNode: true,
    shared: true,
    clientName: () => "system:kube-scheduler",
    organizations: () => [],
    server: localEndpoint,
    applies: always,
    inRenewAll: true,
  },
  {
    name: "kubelet.conf",
    perNode: true,
    shared: false,
    clientName: (node) => `system:node:${node.name}`,
    organizations: () => ["system:nodes"],
    server: (inputs, node) =>
      inputs.kubeletLocalMode ? localEndpoint(inputs, node) : controlPlaneEndpoint(inputs),
    applies: always,
    inRenewAll: false,
  },
];

export interface ResolvedKubeconfig {
  /** `admin.conf`, or `<node>/<name>` for a per-node file: unique in the store. */
  id: string;
  spec: KubeconfigSpec;
  node: string | undefined;
  /** Relative to the cluster directory: `kubeconfigs/admin.conf`, `nodes/cp1/scheduler.conf`. */
  file: string;
  clusterName: string;
  server: string;
  /** The client certificate; its CN is the kubeconfig's user. */
  profile: CertificateProfile;
  validityMs: number;
}

/** A client certificate's profile: CN and O, ClientAuth, signed by `ca` (kubeadm's clientCertAuth). */
export function clientProfile(commonName: string, organizations: readonly string[]): CertificateProfile {
  return {
    commonName,
    organizations,
    dnsNames: [],
    ipAddresses: [],
    isCA: false,
    keyUsages: LEAF_KEY_USAGES,
    extKeyUsages: ["clientAuth"],
  };
}

export function resolveKubeconfigs(inputs: PkiInputs): ResolvedKubeconfig[] {
  const resolved: ResolvedKubeconfig[] = [];
  for (const spec of KUBECONFIG_SPECS) {
    if (!spec.applies(inputs.gates)) continue;
    const nodes = spec.perNode ? inputs.controlPlanes : inputs.controlPlanes.slice(0, 1);
    for (const node of nodes) {
      resolved.push({
        id: spec.perNode ? `${node.name}/${spec.name}` : spec.name,
        spec,
        node: spec.perNode ? node.name : undefined,
        file: spec.perNode ? `nodes/${node.name}/${spec.name}` : `kubeconfigs/${spec.name}`,
        clusterName: inputs.clusterName,
        server: spec.server(inputs, node),
        profile: clientProfile(spec.clientName(node), spec.organizations(inputs.gates)),
        validityMs: inputs.leafValidityMs,
      });
    }
  }
  return resolved;
}

/** A kubeconfig as kubectl reads it; fields kubeforge does not know are kept as they are. */
export interface Kubeconfig {
  apiVersion: string;
  kind: string;
  clusters: { name: string; cluster: { server?: string; "certificate-authority-data"?: string } & Extra }[];
  contexts: { name: string; context: { cluster: string; user: string } & Extra }[];
  users: { name: string; user: { "client-certificate-data"?: string; "client-key-data"?: string } & Extra }[];
  "current-context": string;
  preferences?: Extra;
  [key: string]: unknown;
}

type Extra = Record<string, unknown>;

const base64 = (text: string) => Buffer.from(text).toString("base64");

/** A kubeconfig with one cluster, user and context `<user>@<cluster>`, certs embedded (kubeadm CreateWithCerts). */
export function buildKubeconfig(options: {
  clusterName: string;
  server: string;
  caPem: string;
  userName: string;
  certPem: string;
  keyPem: string;
}): Kubeconfig {
  const context = `${options.userName}@${options.clusterName}`;
  return {
    apiVersion: "v1",
    clusters: [
      {
        cluster: { "certificate-authority-data": base64(options.caPem), server: options.server },
        name: options.clusterName,
      },
    ],
    contexts: [{ context: { cluster: options.clusterName, user: options.userName }, name: context }],
    "current-context": context,
    kind: "Config",
    preferences: {},
    users: [
      {
        name: options.userName,
        user: {
          "client-certificate-data": base64(options.certPem),
          "client-key-data": base64(options.keyPem),
        },
      },
    ],
  };
}

export function serializeKubeconfig(config: Kubeconfig): string {
  // kubectl's layout: list items flush with their key, long base64 lines never folded.
  return yaml.dump(config, { lineWidth: -1, noRefs: true, noArrayIndent: true });
}

/** Parses a kubeconfig; missing lists become empty ones. Throws when the text is not a mapping. */
export function parseKubeconfig(text: string): Kubeconfig {
  const value = yaml.load(text);
  if (value === undefined || value === null) return emptyKubeconfig();
  if (typeof value !== "object" || Array.isArray(value)) throw new Error("not a kubeconfig (not a mapping)");
  const config = value as Partial<Kubeconfig>;
  return {
    ...config,
    apiVersion: config.apiVersion ?? "v1",
    kind: config.kind ?? "Config",
    clusters: Array.isArray(config.clusters) ? config.clusters : [],
    contexts: Array.isArray(config.contexts) ? config.contexts : [],
    users: Array.isArray(config.users) ? config.users : [],
    "current-context": config["current-context"] ?? "",
  };
}

function emptyKubeconfig(): Kubeconfig {
  return {
    apiVersion: "v1",
    kind: "Config",
    clusters: [],
    contexts: [],
    users: [],
    "current-context": "",
    preferences: {},
  };
}

const unbase64 = (text: string | undefined) =>
  text ? Buffer.from(text, "base64").toString("utf8") : undefined;

/** What the current context of a kubeconfig uses: server, CA, client cert and key (PEM). */
export function currentCredentials(config: Kubeconfig): {
  server: string | undefined;
  caPem: string | undefined;
  certPem: string | undefined;
  keyPem: string | undefined;
} {
  const context = config.contexts.find((c) => c.name === config["current-context"])?.context;
  const cluster = config.clusters.find((c) => c.name === context?.cluster)?.cluster;
  const user = config.users.find((u) => u.name === context?.user)?.user;
  return {
    server: cluster?.server,
    caPem: unbase64(cluster?.["certificate-authority-data"]),
    certPem: unbase64(user?.["client-certificate-data"]),
    keyPem: unbase64(user?.["client-key-data"]),
  };
}

/** The entry names a kubeforge cluster gets in a user's kubeconfig. */
export function mergedNames(clusterName: string): { cluster: string; user: string; context: string } {
  const cluster = `kubeforge-${clusterName}`;
  const user = `${cluster}-admin`;
  return { cluster, user, context: `${user}@${cluster}` };
}

/**
 * Merges a cluster's admin kubeconfig into `existing` (pure). The admin's entries are renamed per
 * kubeforge cluster (`kubeforge-<name>`, `kubeforge-<name>-admin`, context
 * `kubeforge-<name>-admin@kubeforge-<name>`), replacing entries of those names only, so clusters
 * never clash and re-merging is idempotent. current-context changes only with `useContext`.
 */
export function mergeKubeconfig(
  existing: Kubeconfig | undefined,
  admin: Kubeconfig,
  options: { name: string; useContext: boolean },
): { config: Kubeconfig; context: string } {
  const base = existing ?? emptyKubeconfig();
  const adminContext = admin.contexts.find((c) => c.name === admin["current-context"]);
  const adminCluster = admin.clusters.find((c) => c.name === adminContext?.context.cluster);
  const adminUser = admin.users.find((u) => u.name === adminContext?.context.user);
  if (!adminContext || !adminCluster || !adminUser) {
    throw new Error("the admin kubeconfig has no complete current context");
  }
  const names = mergedNames(options.name);
  const replace = <T extends { name: string }>(list: T[], entry: T) => [
    ...list.filter((item) => item.name !== entry.name),
    entry,
  ];
  const config: Kubeconfig = {
    ...base,
    clusters: replace(base.clusters, { ...adminCluster, name: names.cluster }),
    users: replace(base.users, { ...adminUser, name: names.user }),
    contexts: replace(base.contexts, {
      name: names.context,
      context: { ...adminContext.context, cluster: names.cluster, user: names.user },
    }),
    "current-context": options.useContext ? names.context : base["current-context"],
  };
  return { config, context: names.context };
}
