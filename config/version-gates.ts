// What kubeadm does differently per supported version, in one table: the identities (O=) of the
// certificates and kubeconfigs it writes. Later issues (init's RBAC objects, upgrade) read the same
// rows, so a version difference is decided here once.
import { InternalError } from "../workflow/errors.js";
import { type KubernetesVersion, parseSupportedVersion, type SupportedMinor } from "./versions.js";

const MASTERS = "system:masters";
const CLUSTER_ADMINS = "kubeadm:cluster-admins";

interface GateRow {
  /** O of admin.conf's client certificate. */
  adminOrganization: string;
  /** Whether init writes super-admin.conf (CN=kubernetes-super-admin, O=system:masters). */
  superAdminConf: boolean;
  /** O of apiserver-kubelet-client; `fromPatch` replaces it from that patch release of the minor on. */
  apiserverKubeletClient: { organizations: string[]; fromPatch?: { patch: number; organizations: string[] } };
  /** O of etcd/healthcheck-client and apiserver-etcd-client. */
  etcdClientOrganizations: string[];
  /**
   * Default of kubeadm's ControlPlaneKubeletLocalMode feature gate (a control plane's kubelet.conf
   * dials its own API server); absent where the minor has no such gate.
   */
  controlPlaneKubeletLocalMode?: boolean;
}

const ROWS: Record<SupportedMinor, GateRow> = {
  // v1.21: phases/certs/certlist.go (every client cert O=MastersGroup) and
  // phases/kubeconfig/kubeconfig.go (admin.conf O=SystemPrivilegedGroup, no super-admin.conf).
  "1.21": {
    adminOrganization: MASTERS,
    superAdminConf: false,
    apiserverKubeletClient: { organizations: [MASTERS] },
    etcdClientOrganizations: [MASTERS],
  },
  // v1.30: kubeconfig.go since v1.29 (admin.conf O=ClusterAdminsGroupAndClusterRoleBinding +
  // super-admin.conf); certlist.go since v1.29: apiserver-kubelet-client
  // O=ClusterAdminsGroupAndClusterRoleBinding (kubernetes/kubernetes#121837), no O on
  // healthcheck-client (#119859) and apiserver-etcd-client (#120521).
  "1.30": {
    adminOrganization: CLUSTER_ADMINS,
    superAdminConf: true,
    apiserverKubeletClient: { organizations: [CLUSTER_ADMINS] },
    etcdClientOrganizations: [],
  },
  // v1.34: as v1.30, except that kubernetes/kubernetes#138957, cherry-picked into v1.34.8 (and
  // v1.33.12, v1.35.5, v1.36.1), drops O from apiserver-kubelet-client: the user
  // kube-apiserver-kubelet-client is bound to ClusterRole system:kubelet-api-admin by the
  // ClusterRoleBinding kubeadm:apiserver-kubelet-client instead (kubernetes/kubeadm#3307).
  "1.34": {
    adminOrganization: CLUSTER_ADMINS,
    superAdminConf: true,
    apiserverKubeletClient: { organizations: [CLUSTER_ADMINS], fromPatch: { patch: 8, organizations: [] } },
    etcdClientOrganizations: [],
    // ControlPlaneKubeletLocalMode: alpha in v1.31 (kubernetes/kubernetes#125780), beta and on by
    // default since v1.33 (#129956), so init's kubelet.conf dials the node's own API server.
    controlPlaneKubeletLocalMode: true,
  },
};

export interface IdentityGates {
  adminOrganization: string;
  superAdminConf: boolean;
  apiserverKubeletClientOrganizations: string[];
  /** init must create ClusterRoleBinding kubeadm:apiserver-kubelet-client (when the cert has no O). */
  apiserverKubeletClientRoleBinding: boolean;
  etcdHealthcheckClientOrganizations: string[];
  apiserverEtcdClientOrganizations: string[];
  /** kubeadm's ControlPlaneKubeletLocalMode gate: its default, or undefined where it does not exist. */
  controlPlaneKubeletLocalMode: boolean | undefined;
}

/**
 * The gates of a version (`v1.30.4` or a parsed version). CertificateBackdate (5 min) applies to
 * every supported version, so it is no gate: v1.21/v1.30 back-date the CA (pkiutil
 * NewCertificateAuthority) and leaves copy the CA's NotBefore; v1.31+ back-date every cert
 * (certlist.go KubeadmCert.GetConfig). kubeforge back-dates every cert, as v1.31+ does.
 */
export function identityGates(version: string | KubernetesVersion): IdentityGates {
  const parsed = typeof version === "string" ? parseSupportedVersion(version) : version;
  // A validated cluster file always names a supported version.
  if (!parsed) throw new InternalError(`${String(version)} is not a supported Kubernetes version`);
  const row = ROWS[parsed.minorKey];
  const later = row.apiserverKubeletClient.fromPatch;
  const kubeletClient =
    later && parsed.patch >= later.patch ? later.organizations : row.apiserverKubeletClient.organizations;
  return {
    adminOrganization: row.adminOrganization,
    superAdminConf: row.superAdminConf,
    apiserverKubeletClientOrganizations: [...kubeletClient],
    apiserverKubeletClientRoleBinding: kubeletClient.length === 0,
    etcdHealthcheckClientOrganizations: [...row.etcdClientOrganizations],
    apiserverEtcdClientOrganizations: [...row.etcdClientOrganizations],
    controlPlaneKubeletLocalMode: row.controlPlaneKubeletLocalMode,
  };
}
