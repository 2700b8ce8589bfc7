// The bundle's manifest (the first member, `manifest.json`): what the bundle holds, with a sha256 per
// file, so a bundle is checked before any host is touched. Also the error every bundle problem
// becomes: bad input, exit 2, naming the bundle, the member and the fix.
import { BundleError } from "../workflow/errors.js";

export const MANIFEST_MEMBER = "manifest.json";
export const BUNDLE_API_VERSION = "kubeforge.dev/v1alpha1";

/**
 * The only files `bin/<platform>/` may hold. prepare installs them to /usr/bin, so anything else
 * (runc, containerd from an upstream tarball) would silently replace files dpkg owns.
 */
export const BUNDLE_BINARIES = ["kubelet", "kubectl", "crictl", "kubeadm"];

export type BundleFileKind = "binary" | "cni" | "image" | "package" | "manifest";

export interface BundleFile {
  /** Member path in the bundle, e.g. `bin/linux-amd64/kubelet`. */
  path: string;
  size: number;
  sha256: string;
  kind: BundleFileKind;
  /** `linux-amd64`, for binary and cni. */
  platform?: string;
  /** `debian-12-amd64`, for package. */
  distro?: string;
  /** Full image refs the archive holds, for image. */
  images?: string[];
  package?: { name: string; version: string; arch: string };
}

export interface BundleManifest {
  apiVersion: typeof BUNDLE_API_VERSION;
  kind: "Bundle";
  kubernetesVersion: string;
  /** ISO 8601. */
  created: string;
  files: BundleFile[];
}

/** One thing wrong with a bundle or its source directory, and how to fix it. */
const RECREATE = "re-create it with `kubeforge bundle create`";

const isString = (value: unknown): value is string => typeof value === "string";
const isStringArray = (value: unknown): value is string[] => Array.isArray(value) && value.every(isString);

/** The problem with one manifest entry, or undefined when it is well-formed. */
function entryProblem(entry: unknown): string | undefined {
  if (entry === null || typeof entry !== "object") return "is not an object";
  const file = entry as Record<string, unknown>;
  if (!isString(file.path) || file.path === "") return "has no path";
  if (!Number.isSafeInteger(file.size) || (file.size as number) < 0) return "has no valid size";
  if (!isString(file.sha256) || !/^[0-9a-f]{64}$/.test(file.sha256)) return "has no valid sha256";
  if (!["binary", "cni", "image", "package", "manifest"].includes(file.kind as string))
    return "has no valid kind";
  if (file.kind === "image" && !isStringArray(file.images)) return "is an image without image names";
  if ((file.kind === "binary" || file.kind === "cni") && !isString(file.platform)) return "has no platform";
  if (file.kind === "binary" && !BUNDLE_BINARIES.includes(file.path.split("/").at(-1) ?? "")) {
    return `is a binary other than ${BUNDLE_BINARIES.join(", ")}`;
  }
  if (file.kind === "package") {
    const pkg = file.package as Record<string, unknown> | undefined;
    if (!isString(file.distro) || !pkg || ![pkg.name, pkg.version, pkg.arch].every(isString)) {
      return "is a package without distro, name, version and arch";
    }
  }
  return undefined;
}

/** Parses and checks `manifest.json`; anything malformed is a BundleError naming the bundle. */
export function parseManifest(text: string, bundle: string): BundleManifest {
  const fail = (problem: string): never => {
    throw new BundleError(bundle, [{ member: MANIFEST_MEMBER, problem, fix: RECREATE }]);
  };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return fail(`is not JSON (${(error as Error).message})`);
  }
  const manifest = value as Partial<BundleManifest> | null;
  if (manifest?.apiVersion !== BUNDLE_API_VERSION || manifest.kind !== "Bundle") {
    return fail(`is not a kubeforge bundle manifest (apiVersion ${BUNDLE_API_VERSION}, kind Bundle)`);
  }
  if (
    !isString(manifest.kubernetesVersion) ||
    !isString(manifest.created) ||
    !Array.isArray(manifest.files)
  ) {
    return fail("lacks kubernetesVersion, created or files");
  }
  manifest.files.forEach((entry, index) => {
    const problem = entryProblem(entry);
    if (problem) fail(`files[${index}] ${problem}`);
  });
  return manifest as BundleManifest;
}
