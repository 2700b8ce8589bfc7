// Whether a bundle holds everything a cluster needs, for the hosts it will be used on: the
// Kubernetes binaries and CNI plugins per platform, every image per role, the OS packages per
// distro. What a host already has is skipped later by prepare; this lists what a bare host needs.
import { imagesForRole, type NodeRole } from "../config/images.js";
import type { ClusterFile } from "../config/schema.js";
import type { BundleManifest } from "./manifest.js";

export interface BundleTarget {
  /** `linux-amd64` (platformOf). */
  platform: string;
  /** `debian-12-amd64` (distroOf); without it, OS packages are not checked. */
  distro?: string;
  roles: NodeRole[];
}

export const REQUIRED_BINARIES = ["kubelet", "kubectl"];
/** What the bridge CNI config kubeforge writes calls, plus portmap for hostPort. */
export const REQUIRED_CNI_PLUGINS = ["bridge", "host-local", "loopback", "portmap"];
/** Debian's package of the CNI plugins, an alternative to `cni/<platform>/`. */
export const CNI_PACKAGE = "containernetworking-plugins";
/** The OS packages a bare host needs: the runtime and kubeadm preflight's required binaries. */
export const REQUIRED_PACKAGES = ["containerd", "runc", "conntrack", "socat", "ethtool"];

/** `uname -m` → Go's GOARCH names, which Kubernetes release artifacts use. */
const ARCHES: Record<string, string> = {
  x86_64: "amd64",
  amd64: "amd64",
  aarch64: "arm64",
  arm64: "arm64",
  armv7l: "arm",
  armv6l: "arm",
  ppc64le: "ppc64le",
  s390x: "s390x",
  riscv64: "riscv64",
};

/** `x86_64` → `linux-amd64`; undefined for a machine Kubernetes does not ship binaries for. */
export function platformOf(machine: string): string | undefined {
  const arch = ARCHES[machine];
  return arch ? `linux-${arch}` : undefined;
}

/** `debian`, `12`, `amd64` → `debian-12-amd64`; the arch may be given as `uname -m` or GOARCH. */
export function distroOf(osId: string, versionId: string, arch: string): string {
  return `${osId}-${versionId}-${ARCHES[arch] ?? arch}`;
}

/** Human lines for everything the bundle lacks; empty when it is complete. */
export function missingFromBundle(
  manifest: BundleManifest,
  cluster: ClusterFile,
  targets: readonly BundleTarget[],
): string[] {
  const missing: string[] = [];
  const wanted = cluster.spec.kubernetes.version;
  if (manifest.kubernetesVersion !== wanted) {
    missing.push(
      `Kubernetes ${wanted}: the bundle is for ${manifest.kubernetesVersion} (make one for ${wanted} with \`kubeforge bundle create --kubernetes-version ${wanted}\`)`,
    );
  }
  const paths = new Set(manifest.files.map((file) => file.path));
  const packagesOf = (distro: string) =>
    new Set(
      manifest.files.filter((f) => f.kind === "package" && f.distro === distro).map((f) => f.package?.name),
    );

  for (const platform of new Set(targets.map((target) => target.platform))) {
    for (const binary of REQUIRED_BINARIES) {
      if (!paths.has(`bin/${platform}/${binary}`))
        missing.push(`${binary} for ${platform} (bin/${platform}/${binary})`);
    }
    const distros = targets.filter((t) => t.platform === platform && t.distro).map((t) => t.distro as string);
    const fromPackage = distros.length > 0 && distros.every((distro) => packagesOf(distro).has(CNI_PACKAGE));
    const absent = REQUIRED_CNI_PLUGINS.filter((plugin) => !paths.has(`cni/${platform}/${plugin}`));
    if (!fromPackage && absent.length > 0) {
      missing.push(
        `CNI plugins for ${platform}: ${absent.join(", ")} (cni/${platform}/, or the ${CNI_PACKAGE} package)`,
      );
    }
  }

  const images = new Set(manifest.files.flatMap((file) => file.images ?? []));
  const roles = new Set(targets.flatMap((target) => target.roles));
  const needed = new Set([...roles].flatMap((role) => imagesForRole(cluster, role)));
  for (const ref of needed) if (!images.has(ref)) missing.push(`image ${ref}`);

  for (const distro of new Set(targets.flatMap((target) => (target.distro ? [target.distro] : [])))) {
    const present = packagesOf(distro);
    const lacking = REQUIRED_PACKAGES.filter((name) => !present.has(name));
    if (lacking.length > 0)
      missing.push(`packages for ${distro}: ${lacking.join(", ")} (packages/${distro}/)`);
  }
  return missing;
}
