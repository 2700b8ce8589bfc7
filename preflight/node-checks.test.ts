import { describe, expect, it } from "vitest";
import { parseSupportedVersion } from "../config/versions.js";
import { parseNodeState } from "../node/state.js";
import { nodeChecks } from "./node-checks.js";

const READY = [
  "cri=1",
  "containerd=containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1",
  "kubelet=Kubernetes v1.30.4",
  "sysctl=net.ipv4.ip_forward 1",
  "sysctl=net.bridge.bridge-nf-call-iptables 1",
  "sysctl=net.bridge.bridge-nf-call-ip6tables 1",
  "sysctl=vm.overcommit_memory 1",
  "sysctl=kernel.panic 10",
  "sysctl=kernel.panic_on_oops 1",
  ...["ip", "iptables", "mount", "nsenter", "conntrack", "socat", "ethtool"].map((tool) => `tool=${tool}`),
];

function checks(lines: string[], options: { container?: string; version?: string; ignore?: string[] } = {}) {
  const target = parseSupportedVersion(options.version ?? "v1.30.4");
  if (!target) throw new Error("bad version");
  return nodeChecks("w1", parseNodeState(lines.join("\n")), { container: options.container }, target, {
    ignore: options.ignore ?? [],
  });
}

const statusOf = (results: ReturnType<typeof checks>, name: string) =>
  results.find((result) => result.check === name)?.status;

describe("node checks", () => {
  it("passes a prepared node, with kubeadm's check names", () => {
    const results = checks(READY);
    expect(results.filter((result) => result.status !== "ok")).toEqual([]);
    expect(results.map((result) => result.check)).toEqual([
      "CRI",
      "KubeletVersion",
      "Swap",
      "FileContent--proc-sys-net-ipv4-ip_forward",
      "FileContent--proc-sys-net-bridge-bridge-nf-call-iptables",
      "FileExisting-ip",
      "FileExisting-iptables",
      "FileExisting-mount",
      "FileExisting-nsenter",
      "FileExisting-conntrack",
      "FileExisting-socat",
      "FileExisting-ethtool",
      "KubeletKernelSettings",
    ]);
  });

  it("fails what prepare should have fixed: no CRI, swap on, forwarding off, a missing tool", () => {
    const broken = READY.filter(
      (line) => line !== "cri=1" && line !== "tool=socat" && line !== "sysctl=net.ipv4.ip_forward 1",
    );
    const results = checks([...broken, "sysctl=net.ipv4.ip_forward 0", "swap=/swapfile"]);
    expect(statusOf(results, "CRI")).toBe("error");
    expect(statusOf(results, "Swap")).toBe("error");
    expect(statusOf(results, "FileContent--proc-sys-net-ipv4-ip_forward")).toBe("error");
    expect(statusOf(results, "FileExisting-socat")).toBe("error");
  });

  it("holds the kubelet within kubeadm's skew: not newer than the control plane, at most 3 minors older (1 before v1.28)", () => {
    const withKubelet = (version: string) => [
      ...READY.filter((line) => !line.startsWith("kubelet=")),
      `kubelet=Kubernetes ${version}`,
    ];
    expect(statusOf(checks(withKubelet("v1.31.0")), "KubeletVersion")).toBe("error");
    expect(statusOf(checks(withKubelet("v1.27.9")), "KubeletVersion")).toBe("ok");
    expect(statusOf(checks(withKubelet("v1.26.0")), "KubeletVersion")).toBe("error");
    expect(statusOf(checks(withKubelet("v1.20.15"), { version: "v1.21.14" }), "KubeletVersion")).toBe("ok");
    expect(statusOf(checks(withKubelet("v1.19.0"), { version: "v1.21.14" }), "KubeletVersion")).toBe("error");
    expect(statusOf(checks(READY.filter((line) => !line.startsWith("kubelet="))), "KubeletVersion")).toBe(
      "error",
    );
  });

  it("wrong kernel settings: a warning when the kubelet can set them, an error naming the fix on the machine underneath when read-only", () => {
    const wrong = [
      ...READY.filter((line) => !line.startsWith("sysctl=vm.") && !line.startsWith("sysctl=kernel.panic ")),
      "sysctl=vm.overcommit_memory 0",
      "sysctl=kernel.panic 1",
    ];
    const writable = checks([...wrong, "writable=vm.overcommit_memory", "writable=kernel.panic"]);
    expect(writable.find((result) => result.check === "KubeletKernelSettings")).toMatchObject({
      status: "warning",
      message: expect.stringContaining("the kubelet will set them"),
    });
    const readOnly = checks(wrong, { container: "systemd-nspawn" });
    const result = readOnly.find((entry) => entry.check === "KubeletKernelSettings");
    expect(result?.status).toBe("error");
    expect(result?.message).toContain("vm.overcommit_memory=0 (needs 1)");
    expect(result?.message).toContain("container (systemd-nspawn)");
    expect(result?.message).toContain("sysctl -w vm.overcommit_memory=1 kernel.panic=10");
    const ignored = checks(wrong, { container: "systemd-nspawn", ignore: ["kubeletkernelsettings"] });
    expect(statusOf(ignored, "KubeletKernelSettings")).toBe("ignored");
  });
});
