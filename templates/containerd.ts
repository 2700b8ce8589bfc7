// containerd's config.toml, written whole (never patched), in the config version the installed
// containerd reads: version 2 for 1.6/1.7, version 3 for 2.x. Only what Kubernetes needs differs from
// containerd's defaults: the CRI plugin on, the systemd cgroup driver the kubelet uses, the one pause
// image, where the CNI plugins really are, and the OOM-score restriction hosts in containers need.

export interface ContainerdSettings {
  /** `containerd --version`'s version, e.g. `1.6.20` or `2.1.4`. */
  version: string;
  /** The pause image, the same ref the kubelet and the bundle use. */
  sandboxImage: string;
  /** systemd as cgroup driver (PID 1 is systemd): the kubelet gets the same. */
  systemdCgroup: boolean;
  /** Directories holding the CNI plugins, first one searched first. */
  cniBinDirs: readonly string[];
  cniConfDir: string;
  /**
   * Hosts that are containers cannot lower oom_score_adj (no CAP_SYS_RESOURCE): without this every
   * pod sandbox fails in runc ("can't get final child's PID from pipe").
   */
  restrictOomScoreAdj: boolean;
}

/** The config-file version a containerd release reads; undefined for releases kubeforge does not support. */
export function containerdConfigVersion(version: string): 2 | 3 | undefined {
  const [major, minor] = version.split(".").map(Number);
  if (major === 1 && minor !== undefined && minor >= 6) return 2;
  if (major === 2) return 3;
  return undefined;
}

const HEADER = "# Written by kubeforge prepare; re-running prepare restores it.\n";

function toml(value: string | boolean | readonly string[]): string {
  if (typeof value === "boolean") return String(value);
  if (typeof value === "string") return JSON.stringify(value);
  return `[${value.map((item) => JSON.stringify(item)).join(", ")}]`;
}

export function renderContainerdConfig(settings: ContainerdSettings): string {
  const configVersion = containerdConfigVersion(settings.version);
  if (configVersion === undefined)
    throw new Error(`containerd ${settings.version} is not supported (1.6 or later)`);
  return configVersion === 2 ? version2(settings) : version3(settings);
}

function version2(s: ContainerdSettings): string {
  const cri = `[plugins."io.containerd.grpc.v1.cri"]`;
  const runc = `${cri.slice(0, -1)}.containerd.runtimes.runc]`;
  return `${HEADER}version = 2
disabled_plugins = []

${cri}
  sandbox_image = ${toml(s.sandboxImage)}
  restrict_oom_score_adj = ${toml(s.restrictOomScoreAdj)}

${cri.slice(0, -1)}.containerd]
  default_runtime_name = "runc"

${runc}
  runtime_type = "io.containerd.runc.v2"

${runc.slice(0, -1)}.options]
  SystemdCgroup = ${toml(s.systemdCgroup)}

${cri.slice(0, -1)}.cni]
  bin_dir = ${toml(s.cniBinDirs[0] ?? "/opt/cni/bin")}
  conf_dir = ${toml(s.cniConfDir)}
`;
}

function version3(s: ContainerdSettings): string {
  const runtime = `[plugins."io.containerd.cri.v1.runtime"]`;
  const runc = `${runtime.slice(0, -1)}.containerd.runtimes.runc]`;
  const [, minor] = s.version.split(".").map(Number);
  // containerd 2.1 takes a list (bin_dirs) and deprecates bin_dir; 2.0 knows only bin_dir.
  const binDirs =
    (minor ?? 0) >= 1
      ? `bin_dirs = ${toml(s.cniBinDirs)}`
      : `bin_dir = ${toml(s.cniBinDirs[0] ?? "/opt/cni/bin")}`;
  return `${HEADER}version = 3
disabled_plugins = []

[plugins."io.containerd.cri.v1.images".pinned_images]
  sandbox = ${toml(s.sandboxImage)}

${runtime}
  restrict_oom_score_adj = ${toml(s.restrictOomScoreAdj)}

${runtime.slice(0, -1)}.containerd]
  default_runtime_name = "runc"

${runc}
  runtime_type = "io.containerd.runc.v2"

${runc.slice(0, -1)}.options]
  SystemdCgroup = ${toml(s.systemdCgroup)}

${runtime.slice(0, -1)}.cni]
  ${binDirs}
  conf_dir = ${toml(s.cniConfDir)}
`;
}
