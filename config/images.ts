// The container images a cluster runs, exactly as kubeadm of its version names them: one tag table
// per supported minor, and kubeadm's rules for repositories and overrides
// (cmd/kubeadm/app/images/images.go: GetKubernetesImage, GetDNSImage, GetEtcdImage, GetPauseImage).
import { InternalError } from "../workflow/errors.js";
import type { ClusterFile, Role } from "./schema.js";
import { parseSupportedVersion, type SupportedMinor } from "./versions.js";

export type NodeRole = Role;

export interface ClusterImage {
  /** kubeadm's component name: kube-apiserver, etcd, pause, coredns, … */
  component: string;
  ref: string;
  /** The roles whose nodes run (and so need) the image. */
  roles: NodeRole[];
}

interface MinorImages {
  /** kubeadm's DefaultImageRepository of that release. */
  repository: string;
  /** SupportedEtcdVersion[minor] as kubeadm of the minor's latest patch release has it. */
  etcd: string;
  pause: string;
  /** CoreDNSVersion; the image is `<repository>/coredns/coredns` under the default repository. */
  coreDNS: string;
}

// Sources: kubernetes/kubernetes cmd/kubeadm/app/constants/constants.go (PauseVersion,
// CoreDNSVersion, SupportedEtcdVersion) and apis/kubeadm/v1beta*/defaults.go
// (DefaultImageRepository) on each release branch; cross-checked against minikube's
// pkg/minikube/constants/constants_kubeadm_images.go, which records `kubeadm config images list`
// for every patch release. The etcd tag moves within a minor (kubeadm backports etcd bumps), so the
// row holds the latest patch release's value; `etcd.local.imageTag` pins another.
const IMAGES: Record<SupportedMinor, MinorImages> = {
  // release-1.21: k8s.gcr.io (registry.k8s.io became the default in v1.25), SupportedEtcdVersion
  // 21: "3.4.13-0", PauseVersion "3.4.1", CoreDNSVersion "v1.8.0"; the same for v1.21.0–v1.21.14.
  "1.21": { repository: "k8s.gcr.io", etcd: "3.4.13-0", pause: "3.4.1", coreDNS: "v1.8.0" },
  // release-1.30: etcd 3.5.12-0 until v1.30.4, 3.5.15-0 from v1.30.5 (kubernetes/kubernetes#126395)
  // to v1.30.14, the last release (the 3.5.16, 3.5.17 and 3.5.21 cherry-picks #127953, #129673 and
  // #131960 were closed unmerged); PauseVersion "3.9"; CoreDNSVersion "v1.11.3" from v1.30.5.
  "1.30": { repository: "registry.k8s.io", etcd: "3.5.15-0", pause: "3.9", coreDNS: "v1.11.3" },
  // release-1.34: SupportedEtcdVersion 34: "3.6.5-0" (after #134861, which moved 31–33 to
  // 3.5.24-0; v1.34.0 shipped 3.6.4-0); PauseVersion "3.10.1"; CoreDNSVersion "v1.12.1".
  "1.34": { repository: "registry.k8s.io", etcd: "3.6.5-0", pause: "3.10.1", coreDNS: "v1.12.1" },
};

const CONTROL_PLANE: NodeRole[] = ["control-plane"];
const ALL_ROLES: NodeRole[] = ["control-plane", "worker"];

function rowOf(cluster: ClusterFile): MinorImages {
  const version = parseSupportedVersion(cluster.spec.kubernetes.version);
  // A validated cluster file always names a supported version.
  if (!version) throw new InternalError(`${cluster.spec.kubernetes.version} is not a supported version`);
  return IMAGES[version.minorKey];
}

/** `spec.kubernetes.imageRepository`, or kubeadm's default for the version. */
export function imageRepository(cluster: ClusterFile): string {
  return cluster.spec.kubernetes.imageRepository ?? rowOf(cluster).repository;
}

/** The one pause image: containerd's sandbox_image, the kubelet flag where needed, the bundle. */
export function pauseImage(cluster: ClusterFile): string {
  return `${imageRepository(cluster)}/pause:${rowOf(cluster).pause}`;
}

function coreDNSImage(cluster: ClusterFile): string {
  const { coreDNS } = cluster.spec.addons;
  const row = rowOf(cluster);
  const repository = coreDNS.imageRepository ?? imageRepository(cluster);
  // kubeadm's GetDNSImage: the official image moved to `coredns/coredns`; a mirror keeps `coredns`.
  const path = repository === row.repository ? `${repository}/coredns` : repository;
  return `${path}/coredns:${coreDNS.imageTag ?? row.coreDNS}`;
}

function etcdImage(cluster: ClusterFile): string {
  const { local } = cluster.spec.kubernetes.etcd;
  return `${local.imageRepository ?? imageRepository(cluster)}/etcd:${local.imageTag ?? rowOf(cluster).etcd}`;
}

/** Every image the cluster runs, in kubeadm's order (`kubeadm config images list`). */
export function clusterImages(cluster: ClusterFile): ClusterImage[] {
  const { version } = cluster.spec.kubernetes;
  const { addons } = cluster.spec;
  const kubernetes = (component: string) => `${imageRepository(cluster)}/${component}:${version}`;
  // addons.cni is `bridge` (plugins on the host, no image) or `none`: no CNI image either way.
  return [
    { component: "kube-apiserver", ref: kubernetes("kube-apiserver"), roles: CONTROL_PLANE },
    {
      component: "kube-controller-manager",
      ref: kubernetes("kube-controller-manager"),
      roles: CONTROL_PLANE,
    },
    { component: "kube-scheduler", ref: kubernetes("kube-scheduler"), roles: CONTROL_PLANE },
    ...(addons.kubeProxy.enabled
      ? [{ component: "kube-proxy", ref: kubernetes("kube-proxy"), roles: ALL_ROLES }]
      : []),
    ...(addons.coreDNS.enabled
      ? [{ component: "coredns", ref: coreDNSImage(cluster), roles: ALL_ROLES }]
      : []),
    { component: "pause", ref: pauseImage(cluster), roles: ALL_ROLES },
    { component: "etcd", ref: etcdImage(cluster), roles: CONTROL_PLANE },
  ];
}

/** The refs a node of `role` needs. */
export function imagesForRole(cluster: ClusterFile, role: NodeRole): string[] {
  return clusterImages(cluster)
    .filter((image) => image.roles.includes(role))
    .map((image) => image.ref);
}

/**
 * A ref as containerd stores it (Docker's normalization): Docker Hub's `docker.io/` and `library/`
 * written out and `:latest` added when there is no tag, so a bundle's names, the cluster's and
 * containerd's compare equal.
 */
export function normalizeImageRef(ref: string): string {
  const slash = ref.indexOf("/");
  const first = slash === -1 ? "" : ref.slice(0, slash);
  const hasRegistry = first.includes(".") || first.includes(":") || first === "localhost";
  let named = hasRegistry ? ref : `docker.io/${slash === -1 ? `library/${ref}` : ref}`;
  const lastPart = named.slice(named.lastIndexOf("/") + 1);
  if (!lastPart.includes(":") && !named.includes("@")) named = `${named}:latest`;
  return named;
}
