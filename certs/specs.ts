// The certificates of a cluster as one table, as kubeadm's phases/certs/certlist.go has it: name,
// file, signing CA, subject, usages and the rule for SANs. `resolveCerts` turns the table and a
// cluster file into the concrete certificates: the CAs once, the leaves once per control plane.
import { parseCidrList, parseIp } from "../config/net.js";
import type { ClusterFile } from "../config/schema.js";
import { type IdentityGates, identityGates } from "../config/version-gates.js";
import { type KubernetesVersion, parseSupportedVersion } from "../config/versions.js";
import { InternalError, PkiError, type PkiProblem } from "../workflow/errors.js";
import { parseGoDuration } from "./duration.js";
import type { EncryptionAlgorithm } from "./keys.js";
import { type CertificateProfile, canonicalIp, type ExtKeyUsage, type KeyUsage } from "./x509.js";

export type CaName = "ca" | "front-proxy-ca" | "etcd-ca";

export interface ControlPlaneNode {
  name: string;
  /** Node IP: `privateAddress`, else `address`. */
  ip: string;
}

/** Everything the certificates depend on, taken from the cluster file once. */
export interface PkiInputs {
  version: KubernetesVersion;
  gates: IdentityGates;
  clusterName: string;
  /** controlPlaneEndpoint (default `<metadata.name>-api:<bindPort>`). */
  endpoint: { host: string; port: number; url: string };
  bindPort: number;
  /** A control plane's kubelet.conf dials its own API server (kubeadm's ControlPlaneKubeletLocalMode). */
  kubeletLocalMode: boolean;
  dnsDomain: string;
  /** The first address of each service CIDR: the `kubernetes` Service's ClusterIP. */
  serviceIps: string[];
  apiServerCertSANs: string[];
  etcdServerCertSANs: string[];
  etcdPeerCertSANs: string[];
  algorithm: EncryptionAlgorithm;
  leafValidityMs: number;
  caValidityMs: number;
  controlPlanes: ControlPlaneNode[];
}

interface Sans {
  dns: string[];
  ips: string[];
}

export interface CertSpec {
  /** kubeadm's name, as `kubeadm certs renew <name>` takes it. */
  name: string;
  /** File base under pki/, as kubeadm lays it out: `etcd/server` → etcd/server.crt + .key. */
  baseName: string;
  /** The signing CA; undefined for a CA. */
  ca: CaName | undefined;
  /** One per control-plane node (nodes/<host>/pki/) rather than one per cluster (pki/). */
  perNode: boolean;
  /**
   * A per-node file whose identity does not depend on the node: one key and certificate for the
   * whole cluster, the same copy in every control plane's directory (as the CA keys already are in
   * kubeadm HA). A node added later gets a copy of the existing one, not a new key.
   */
  shared: boolean;
  commonName: (inputs: PkiInputs, node: ControlPlaneNode) => string;
  organizations: (gates: IdentityGates) => string[];
  extKeyUsages: ExtKeyUsage[];
  sans: (inputs: PkiInputs, node: ControlPlaneNode) => Sans;
}

export const CA_KEY_USAGES: KeyUsage[] = ["digitalSignature", "keyEncipherment", "keyCertSign"];
// kubeadm sets KeyEncipherment for ECDSA keys too (pkiutil NewSignedCert, every supported version).
export const LEAF_KEY_USAGES: KeyUsage[] = ["digitalSignature", "keyEncipherment"];

const none = () => [];
const noSans = (): Sans => ({ dns: [], ips: [] });

function caSpec(name: CaName, baseName: string, commonName: string): CertSpec {
  return {
    name,
    baseName,
    ca: undefined,
    perNode: false,
    shared: false,
    commonName: () => commonName,
    organizations: none,
    extKeyUsages: [],
    sans: () => ({ dns: [commonName], ips: [] }),
  };
}

function extraSans(sans: readonly string[]): Sans {
  return {
    dns: sans.filter((san) => !parseIp(san)),
    ips: sans.filter((san) => parseIp(san)),
  };
}

/** etcd's server and peer SANs (pkiutil getAltNames): node name, localhost and the node's IPs. */
function etcdSans(node: ControlPlaneNode, extra: readonly string[]): Sans {
  const more = extraSans(extra);
  return { dns: [node.name, "localhost", ...more.dns], ips: [node.ip, "127.0.0.1", "::1", ...more.ips] };
}

/** The table, in kubeadm's order (GetDefaultCertList): each CA before its leaves. */
export const CERT_SPECS: readonly CertSpec[] = [
  caSpec("ca", "ca", "kubernetes"),
  {
    name: "apiserver",
    baseName: "apiserver",
    ca: "ca",
    perNode: true,
    shared: false,
    commonName: () => "kube-apiserver",
    organizations: none,
    extKeyUsages: ["serverAuth"],
    // pkiutil GetAPIServerAltNames: node name, the kubernetes Service names and IP, the node IP,
    // the controlPlaneEndpoint host and apiServer.certSANs.
    sans: (inputs, node) => {
      const endpointIsIp = parseIp(inputs.endpoint.host) !== undefined;
      const more = extraSans(inputs.apiServerCertSANs);
      return {
        dns: [
          node.name,
          "kubernetes",
          "kubernetes.default",
          "kubernetes.default.svc",
          `kubernetes.default.svc.${inputs.dnsDomain}`,
          ...(endpointIsIp ? [] : [inputs.endpoint.host]),
          ...more.dns,
        ],
        ips: [...inputs.serviceIps, node.ip, ...(endpointIsIp ? [inputs.endpoint.host] : []), ...more.ips],
      };
    },
  },
  {
    name: "apiserver-kubelet-client",
    baseName: "apiserver-kubelet-client",
    ca: "ca",
    perNode: true,
    shared: true,
    commonName: () => "kube-apiserver-kubelet-client",
    organizations: (gates) => gates.apiserverKubeletClientOrganizations,
    extKeyUsages: ["clientAuth"],
    sans: noSans,
  },
  caSpec("front-proxy-ca", "front-proxy-ca", "front-proxy-ca"),
  {
    name: "front-proxy-client",
    baseName: "front-proxy-client",
    ca: "front-proxy-ca",
    perNode: true,
    shared: true,
    commonName: () => "front-proxy-client",
    organizations: none,
    extKeyUsages: ["clientAuth"],
    sans: noSans,
  },
  caSpec("etcd-ca", "etcd/ca", "etcd-ca"),
  {
    name: "etcd-server",
    baseName: "etcd/server",
    ca: "etcd-ca",
    perNode: true,
    shared: false,
    commonName: (_inputs, node) => node.name,
    organizations: none,
    // etcd ≥3.2 also wants ClientAuth on its server certificate (certlist.go's comment).
    extKeyUsages: ["serverAuth", "clientAuth"],
    sans: (inputs, node) => etcdSans(node, inputs.etcdServerCertSANs),
  },
  {
    name: "etcd-peer",
    baseName: "etcd/peer",
    ca: "etcd-ca",
    perNode: true,
    shared: false,
    commonName: (_inputs, node) => node.name,
    organizations: none,
    extKeyUsages: ["serverAuth", "clientAuth"],
    sans: (inputs, node) => etcdSans(node, inputs.etcdPeerCertSANs),
  },
  {
    name: "etcd-healthcheck-client",
    baseName: "etcd/healthcheck-client",
    ca: "etcd-ca",
    perNode: true,
    shared: true,
    commonName: () => "kube-etcd-healthcheck-client",
    organizations: (gates) => gates.etcdHealthcheckClientOrganizations,
    extKeyUsages: ["clientAuth"],
    sans: noSans,
  },
  {
    name: "apiserver-etcd-client",
    baseName: "apiserver-etcd-client",
    ca: "etcd-ca",
    perNode: true,
    shared: true,
    commonName: () => "kube-apiserver-etcd-client",
    organizations: (gates) => gates.apiserverEtcdClientOrganizations,
    extKeyUsages: ["clientAuth"],
    sans: noSans,
  },
];

/** The service-account signing key pair: a bare key, no certificate (pki/sa.key, pki/sa.pub). */
export const SERVICE_ACCOUNT_KEY = { name: "sa", baseName: "sa" } as const;

export const CA_NAMES: readonly CaName[] = CERT_SPECS.filter((s) => s.ca === undefined).map(
  (s) => s.name as CaName,
);

/** A certificate of this cluster, with everything filled in. */
export interface ResolvedCert {
  /** `ca`, or `<node>/<name>` for a per-node leaf: unique in the store. */
  id: string;
  spec: CertSpec;
  node: string | undefined;
  /** Directory relative to the cluster directory: `pki` or `nodes/<node>/pki`. */
  dir: string;
  profile: CertificateProfile;
  validityMs: number;
}

export function certFiles(cert: { dir: string; spec: { baseName: string } }): { crt: string; key: string } {
  const base = `${cert.dir}/${cert.spec.baseName}`;
  return { crt: `${base}.crt`, key: `${base}.key` };
}

/**
 * kubeadm's RemoveDuplicateAltNames: DNS names sorted and unique, IPs unique in their order.
 */
function dedupeSans(sans: Sans): Sans {
  const ips: string[] = [];
  for (const ip of sans.ips.map(canonicalIp)) if (!ips.includes(ip)) ips.push(ip);
  return { dns: [...new Set(sans.dns)].sort(), ips };
}

export function resolveCerts(inputs: PkiInputs): ResolvedCert[] {
  const resolved: ResolvedCert[] = [];
  for (const spec of CERT_SPECS) {
    const nodes = spec.perNode ? inputs.controlPlanes : [undefined];
    for (const node of nodes) {
      // The CA rules read no node; the first control plane stands in.
      const subjectNode = node ?? inputs.controlPlanes[0];
      if (!subjectNode) throw new InternalError("a cluster without control planes reached the PKI");
      const sans =
        spec.ca === undefined ? spec.sans(inputs, subjectNode) : dedupeSans(spec.sans(inputs, subjectNode));
      resolved.push({
        id: node ? `${node.name}/${spec.name}` : spec.name,
        spec,
        node: node?.name,
        dir: node ? `nodes/${node.name}/pki` : "pki",
        profile: {
          commonName: spec.commonName(inputs, subjectNode),
          organizations: spec.organizations(inputs.gates),
          dnsNames: sans.dns,
          ipAddresses: sans.ips,
          isCA: spec.ca === undefined,
          keyUsages: spec.ca === undefined ? CA_KEY_USAGES : LEAF_KEY_USAGES,
          extKeyUsages: spec.extKeyUsages,
        },
        validityMs: spec.ca === undefined ? inputs.caValidityMs : inputs.leafValidityMs,
      });
    }
  }
  return resolved;
}

/** `host[:port]`, `[v6]:port` or a bare IPv6 address. */
function parseEndpoint(text: string, defaultPort: number): { host: string; port: number } {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  if (bracketed?.[1]) return { host: bracketed[1], port: Number(bracketed[2] ?? defaultPort) };
  if (parseIp(text)?.family === 6) return { host: text, port: defaultPort };
  const [host = text, port] = text.split(":");
  return { host, port: port ? Number(port) : defaultPort };
}

export function serverUrl(host: string, port: number): string {
  return parseIp(host)?.family === 6 ? `https://[${canonicalIp(host)}]:${port}` : `https://${host}:${port}`;
}

function ipText(family: 4 | 6, value: bigint): string {
  if (family === 4) return [24n, 16n, 8n, 0n].map((shift) => (value >> shift) & 0xffn).join(".");
  const groups = [...Array(8).keys()].map((i) => ((value >> BigInt(112 - 16 * i)) & 0xffffn).toString(16));
  return canonicalIp(groups.join(":"));
}

/**
 * Where the workstation reaches a control plane's API server: its `address`, unless that is a
 * loopback address (SSH through a forwarded port, as Vagrant's VirtualBox VMs): then its node IP.
 */
export function apiDialAddress(host: ClusterFile["spec"]["hosts"][number]): string {
  const loopback = /^127\./.test(host.address) || host.address === "::1" || host.address === "localhost";
  return loopback && host.privateAddress ? host.privateAddress : host.address;
}

/** The node IP of a host, when the cluster file gives one. */
export function nodeIp(host: ClusterFile["spec"]["hosts"][number]): string | undefined {
  return host.privateAddress ?? (parseIp(host.address) ? host.address : undefined);
}

/**
 * Reads what the PKI needs from a validated cluster file. A control plane whose node IP is unknown
 * (an `address` that is a hostname and no `privateAddress`) is a PkiError: its certificates need it.
 */
export function pkiInputs(cluster: ClusterFile): PkiInputs {
  const k8s = cluster.spec.kubernetes;
  const version = parseSupportedVersion(k8s.version);
  const leafValidityMs = parseGoDuration(k8s.certificateValidityPeriod);
  const caValidityMs = parseGoDuration(k8s.caCertificateValidityPeriod);
  if (!version || !leafValidityMs || !caValidityMs) {
    throw new InternalError("an unvalidated cluster file reached the PKI");
  }
  const problems: PkiProblem[] = [];
  const controlPlanes: ControlPlaneNode[] = [];
  cluster.spec.hosts.forEach((host, index) => {
    if (host.role !== "control-plane") return;
    const ip = nodeIp(host);
    if (ip) controlPlanes.push({ name: host.name, ip: canonicalIp(ip) });
    else {
      problems.push({
        subject: host.name,
        problem: `its certificates need the node IP, but address ${host.address} is a hostname`,
        fix: `set spec.hosts[${index}].privateAddress to the node's IP`,
      });
    }
  });
  if (problems.length > 0) throw new PkiError("the cluster file", problems);
  const bindPort = k8s.apiServer.bindPort;
  const endpoint = parseEndpoint(k8s.controlPlaneEndpoint ?? `${cluster.metadata.name}-api`, bindPort);
  const serviceCidrs = parseCidrList(k8s.networking.serviceSubnet) ?? [];
  const gates = identityGates(version);
  // The cluster file's featureGates override the default, on versions that have the gate.
  const localModeDefault = gates.controlPlaneKubeletLocalMode;
  const kubeletLocalMode =
    localModeDefault !== undefined && (k8s.featureGates.ControlPlaneKubeletLocalMode ?? localModeDefault);
  return {
    version,
    gates,
    clusterName: k8s.clusterName,
    endpoint: { ...endpoint, url: serverUrl(endpoint.host, endpoint.port) },
    bindPort,
    kubeletLocalMode,
    dnsDomain: k8s.networking.dnsDomain,
    serviceIps: serviceCidrs.map((cidr) => ipText(cidr.family, cidr.network + 1n)),
    apiServerCertSANs: k8s.apiServer.certSANs,
    etcdServerCertSANs: k8s.etcd.local.serverCertSANs,
    etcdPeerCertSANs: k8s.etcd.local.peerCertSANs,
    algorithm: k8s.encryptionAlgorithm as EncryptionAlgorithm,
    leafValidityMs,
    caValidityMs,
    controlPlanes,
  };
}
