import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { nodeStateScript, parseContainerdVersion, parseNodeState } from "./state.js";

describe("node state probe", () => {
  it("parses what the probe prints", () => {
    const record = Buffer.from('{"files":[]}').toString("base64");
    const state = parseNodeState(
      [
        "swap=/dev/sda2",
        "fstab_swap=1",
        "hash=/etc/sysctl.d/99-kubeforge.conf abc123",
        "sysctl=net.ipv4.ip_forward 1",
        "sysctl=vm.overcommit_memory 0",
        "writable=net.ipv4.ip_forward",
        "overlay=1",
        "tool=containerd",
        "tool=ctr",
        "pkg=containerd 1.6.20~ds1-1+deb12u3 installed",
        "pkg=runc 1.1.5 config-files",
        "containerd=containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+deb12u3",
        "kubelet=Kubernetes v1.30.4",
        "unit_enabled_containerd=enabled",
        "unit_active_containerd=active",
        "unit_enabled_kubelet=",
        "unit_active_kubelet=inactive",
        "cri=1",
        "image=registry.k8s.io/pause:3.9",
        "image=sha256:0123",
        `record=${record}`,
      ].join("\n"),
    );
    expect(state.swapDevices).toEqual(["/dev/sda2"]);
    expect(state.fstabSwapEntries).toBe(1);
    expect(state.fileHashes.get("/etc/sysctl.d/99-kubeforge.conf")).toBe("abc123");
    expect(state.sysctls.get("vm.overcommit_memory")).toBe("0");
    expect([...state.writableSysctls]).toEqual(["net.ipv4.ip_forward"]);
    expect(state.overlayFs).toBe(true);
    expect(state.bridgeNetfilter).toBe(false);
    // Removed-but-configured packages are not installed.
    expect([...state.packages]).toEqual([["containerd", "1.6.20~ds1-1+deb12u3"]]);
    expect(state.containerdVersion).toBe("1.6.20");
    expect(state.units.kubelet).toEqual({ enabled: "not-found", active: "inactive" });
    expect(state.criAnswers).toBe(true);
    expect(state.images.has("registry.k8s.io/pause:3.9")).toBe(true);
    expect(state.installRecord).toBe('{"files":[]}');
  });

  it("names packages an interrupted dpkg left half-done, and what says an applied config or unit is stale", () => {
    const state = parseNodeState(
      [
        "pkg=containerd 1.6.20~ds1-1+deb12u3 half-configured",
        "pkg=runc 1.1.5+ds1-1+deb12u1 unpacked",
        "pkg=socat 1.7.4.4-2 installed",
        "pkg=ethtool 1:6.1-1 not-installed",
        "containerd_since=1764230000",
        "containerd_config_mtime=1764230042",
        "kubelet_reload=yes",
      ].join("\n"),
    );
    expect(state.unfinishedPackages).toEqual(["containerd", "runc"]);
    expect([...state.packages.keys()]).toEqual(["socat"]);
    expect(state.containerdSince).toBe(1764230000);
    expect(state.containerdConfigMtime).toBe(1764230042);
    expect(state.kubeletNeedsReload).toBe(true);
    expect(parseNodeState("").containerdSince).toBeUndefined();
  });

  it("reads containerd's version from Debian's and upstream's --version lines", () => {
    expect(
      parseContainerdVersion("containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+b1"),
    ).toBe("1.6.20");
    expect(
      parseContainerdVersion("containerd containerd.io v2.1.4 75cb2b7193e4e490e9fbdc236c0e811ccaba3376"),
    ).toBe("2.1.4");
    expect(parseContainerdVersion("garbage")).toBeUndefined();
  });

  it("is a valid POSIX sh script that runs read-only on this machine", () => {
    const script = nodeStateScript({ hashFiles: ["/etc/hostname", "/nonexistent"], packages: ["dpkg"] });
    const output = execFileSync("sh", ["-n", "-c", script], { encoding: "utf8" });
    expect(output).toBe("");
    const state = parseNodeState(execFileSync("sh", ["-c", script], { encoding: "utf8" }));
    expect(state.fileHashes.has("/etc/hostname")).toBe(true);
    expect(state.fileHashes.has("/nonexistent")).toBe(false);
    expect(state.packages.has("dpkg")).toBe(true);
    expect(state.sysctls.get("net.ipv4.ip_forward")).toMatch(/^[01]$/);
  });
});
