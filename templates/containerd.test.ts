import { describe, expect, it } from "vitest";
import { containerdConfigVersion, renderContainerdConfig } from "./containerd.js";

const settings = {
  sandboxImage: "registry.k8s.io/pause:3.9",
  systemdCgroup: true,
  cniBinDirs: ["/opt/cni/bin"],
  cniConfDir: "/etc/cni/net.d",
  restrictOomScoreAdj: true,
};

/** `[table]` → its `key = value` lines, so tests read the TOML as containerd's decoder would. */
function tables(toml: string): Map<string, Map<string, string>> {
  const result = new Map<string, Map<string, string>>([["", new Map()]]);
  let current = "";
  for (const raw of toml.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header?.[1]) {
      current = header[1];
      expect(result.has(current), `table ${current} defined twice`).toBe(false);
      result.set(current, new Map());
      continue;
    }
    const [key, value] = line.split(/\s*=\s*/, 2);
    result.get(current)?.set(key ?? "", value ?? "");
  }
  return result;
}

describe("containerd config", () => {
  it("uses config version 2 for containerd 1.6 and 1.7, 3 for 2.x, nothing older", () => {
    expect(containerdConfigVersion("1.6.20")).toBe(2);
    expect(containerdConfigVersion("1.7.27")).toBe(2);
    expect(containerdConfigVersion("2.0.5")).toBe(3);
    expect(containerdConfigVersion("2.1.4")).toBe(3);
    expect(containerdConfigVersion("1.5.9")).toBeUndefined();
    expect(() => renderContainerdConfig({ ...settings, version: "1.4.0" })).toThrow(/not supported/);
  });

  it("v2 (containerd 1.6/1.7): CRI plugin enabled, pause image, systemd cgroups, CNI dir, OOM restriction", () => {
    const t = tables(renderContainerdConfig({ ...settings, version: "1.6.20" }));
    const cri = 'plugins."io.containerd.grpc.v1.cri"';
    expect(t.get("")?.get("version")).toBe("2");
    expect(t.get("")?.get("disabled_plugins")).toBe("[]");
    expect(t.get(cri)?.get("sandbox_image")).toBe('"registry.k8s.io/pause:3.9"');
    expect(t.get(cri)?.get("restrict_oom_score_adj")).toBe("true");
    expect(t.get(`${cri}.containerd`)?.get("default_runtime_name")).toBe('"runc"');
    expect(t.get(`${cri}.containerd.runtimes.runc`)?.get("runtime_type")).toBe('"io.containerd.runc.v2"');
    expect(t.get(`${cri}.containerd.runtimes.runc.options`)?.get("SystemdCgroup")).toBe("true");
    expect(t.get(`${cri}.cni`)?.get("bin_dir")).toBe('"/opt/cni/bin"');
    expect(t.get(`${cri}.cni`)?.get("conf_dir")).toBe('"/etc/cni/net.d"');
  });

  it("v3 (containerd 2.x): the split CRI plugins; bin_dirs from 2.1, bin_dir in 2.0", () => {
    const t = tables(renderContainerdConfig({ ...settings, version: "2.1.4", cniBinDirs: ["/usr/lib/cni"] }));
    const runtime = 'plugins."io.containerd.cri.v1.runtime"';
    expect(t.get("")?.get("version")).toBe("3");
    expect(t.get('plugins."io.containerd.cri.v1.images".pinned_images')?.get("sandbox")).toBe(
      '"registry.k8s.io/pause:3.9"',
    );
    expect(t.get(runtime)?.get("restrict_oom_score_adj")).toBe("true");
    expect(t.get(`${runtime}.containerd.runtimes.runc.options`)?.get("SystemdCgroup")).toBe("true");
    expect(t.get(`${runtime}.cni`)?.get("bin_dirs")).toBe('["/usr/lib/cni"]');
    const v20 = tables(renderContainerdConfig({ ...settings, version: "2.0.5" }));
    expect(v20.get(`${runtime}.cni`)?.get("bin_dir")).toBe('"/opt/cni/bin"');
  });

  it("leaves OOM scores alone on real machines and uses cgroupfs without systemd", () => {
    const t = tables(
      renderContainerdConfig({
        ...settings,
        version: "1.7.27",
        restrictOomScoreAdj: false,
        systemdCgroup: false,
      }),
    );
    const cri = 'plugins."io.containerd.grpc.v1.cri"';
    expect(t.get(cri)?.get("restrict_oom_score_adj")).toBe("false");
    expect(t.get(`${cri}.containerd.runtimes.runc.options`)?.get("SystemdCgroup")).toBe("false");
  });
});
