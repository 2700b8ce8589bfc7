// The Kubernetes versions kubeforge supports: the one place that says so. A minor is listed only
// when what kubeadm of that minor writes is known (golden fixtures per minor come with init/join).
export const SUPPORTED_MINORS = ["1.21", "1.30", "1.34"] as const;

export type SupportedMinor = (typeof SUPPORTED_MINORS)[number];

export interface KubernetesVersion {
  major: number;
  minor: number;
  patch: number;
  /** `1.30` */
  minorKey: SupportedMinor;
}

/** Parses `v1.30.4`; undefined when the text is not a version of a supported minor. */
export function parseSupportedVersion(text: string): KubernetesVersion | undefined {
  const match = /^v(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (!match) return undefined;
  const [major, minor, patch] = match.slice(1).map(Number) as [number, number, number];
  const minorKey = SUPPORTED_MINORS.find((supported) => supported === `${major}.${minor}`);
  return minorKey ? { major, minor, patch, minorKey } : undefined;
}

export function describeSupportedVersions(): string {
  return SUPPORTED_MINORS.map((minor) => `v${minor}.x`).join(", ");
}
