// The kubelet's config.yaml and kubeadm-flags.env compared with what kubeadm of each supported minor
// writes, transcribed by hand into templates/testdata/kubelet/v<minor>/ (see their headers), plus the
// parts the example node does not reach: IPv6 service subnets, container hosts, hostname override,
// taints, and the gate rows (ConfigMap name, control-plane label/taint).
import { readFileSync } from "node:fs";
import yaml from "js-yaml";
import { describe, expect, it } from "vitest";
import type { ClusterFile } from "../config/schema.js";
import { applyDefaults } from "../config/validate.js";
import { kubeletGates } from "../config/version-gates.js";
import {
  buildKubeletConfiguration,
  clusterDNSIP,
  formatIp,
  type KubeletHost,
  type KubeletNode,
  kubeadmFlags,
  kubeletConfiguration,
  renderKubeadmFlagsEnv,
  renderKubeletConfig,
} from "./kubelet-config.js";

const VERSIONS = [
  ["v1.21", "v1.21.14"],
  ["v1.30", "v1.30.14"],
  ["v1.34", "v1.34.8"],
] as const;

function cluster(version: string, networking: Record<string, unknown> = {}, featureGates = {}): ClusterFile {
  return applyDefaults({
    apiVersion: "kubeforge.dev/v1alpha1",
    kind: "Cluster",
    metadata: { name: "demo" },
    spec: {
      kubernetes: { version, networking, featureGates },
      hosts: [
        { name: "cp1", address: "198.18.0.11", role: "control-plane" },
        { name: "w1", address: "198.18.0.12", role: "worker" },
      ],
    },
  }) as ClusterFile;
}

/** The fixtures' example node. */
const CP1: KubeletNode = {
  name: "cp1",
  hostname: "cp1",
  nodeIP: "198.18.0.11",
  role: "control-plane",
  command: "init",
  taints: [],
};
const MACHINE: KubeletHost = { systemdResolvedActive: false, container: undefined, cgroupVersion: 2 };

const fixture = (minor: string, file: string) =>
  readFileSync(new URL(`./testdata/kubelet/${minor}/${file}`, import.meta.url), "utf8");

/** The flags of an env file: `KUBELET_KUBEADM_ARGS="…"` with comments and blank lines ignored. */
function envFlags(text: string): string[] {
  const lines = text.split("\n").filter((line) => line && !line.startsWith("#"));
  expect(lines).toHaveLength(1);
  const match = /^KUBELET_KUBEADM_ARGS="(.*)"$/.exec(lines[0] ?? "");
  expect(match).not.toBeNull();
  return (match?.[1] ?? "").split(" ").filter(Boolean);
}

describe.each(VERSIONS)("kubeadm %s, the example node", (minor, version) => {
  it("config.yaml equals the fixture, parsed", () => {
    const ours = yaml.load(renderKubeletConfig(cluster(version), MACHINE));
    expect(ours).toEqual(yaml.load(fixture(minor, "config.yaml")));
  });

  it("config.yaml lists its keys in Go's order (sorted) like the fixture", () => {
    const keys = (text: string) => Object.keys(yaml.load(text) as object);
    expect(keys(renderKubeletConfig(cluster(version), MACHINE))).toEqual(keys(fixture(minor, "config.yaml")));
  });

  it("kubeadm-flags.env has the fixture's flags, in kubeadm's (sorted) order", () => {
    const ours = renderKubeadmFlagsEnv(cluster(version), CP1);
    const expected = envFlags(fixture(minor, "kubeadm-flags.env"));
    expect(envFlags(ours)).toEqual(expected);
    // kubeadm sorts by flag name (so --container-runtime precedes --container-runtime-endpoint).
    const name = (flag: string) => flag.slice(2).split("=")[0] ?? "";
    expect([...expected].sort((a, b) => (name(a) < name(b) ? -1 : 1))).toEqual(expected);
    expect(ours.endsWith('"\n')).toBe(true);
  });
});

describe("clusterDNS", () => {
  it.each([
    ["198.19.128.0/20", "198.19.128.10"],
    ["198.18.255.240/28", "198.18.255.250"],
    ["2001:db8::/108", "2001:db8::a"],
    ["2001:db8:0:1::/112", "2001:db8:0:1::a"],
    ["2001:db8:1:0:0:0:ff:0/124", "2001:db8:1::ff:a"],
    // dual-stack: GetDNSIP takes the first CIDR
    ["2001:db8:1::/112,198.19.128.0/20", "2001:db8:1::a"],
    ["198.19.128.0/20,2001:db8:1::/112", "198.19.128.10"],
  ])("%s → %s", (subnet, dns) => {
    expect(clusterDNSIP(subnet)).toBe(dns);
  });

  it("formats IPv6 as Go's net.IP.String(): longest zero run compressed, single zero groups kept", () => {
    expect(formatIp(6, 0x20010db8000000010000000000000001n)).toBe("2001:db8:0:1::1");
    expect(formatIp(6, 0x20010db8000000000001000000000000n)).toBe("2001:db8:0:0:1::");
    expect(formatIp(6, 0x20010db8000000000001000000000001n)).toBe("2001:db8::1:0:0:1");
    expect(formatIp(6, 0x20010db8000000010001000100010001n)).toBe("2001:db8:0:1:1:1:1:1");
    expect(formatIp(6, 0x20010db8000100010001000100010001n)).toBe("2001:db8:1:1:1:1:1:1");
    expect(formatIp(6, 0n)).toBe("::");
  });

  it("an IPv6 service subnet gives an IPv6 clusterDNS in config.yaml", () => {
    const config = kubeletConfiguration(cluster("v1.30.14", { serviceSubnet: "2001:db8:1::/112" }), MACHINE);
    expect(config.clusterDNS).toEqual(["2001:db8:1::a"]);
  });
});

describe("config.yaml, node-dependent parts", () => {
  it("points resolvConf at systemd-resolved's file when systemd-resolved is active", () => {
    for (const [, version] of VERSIONS) {
      const config = kubeletConfiguration(cluster(version), { ...MACHINE, systemdResolvedActive: true });
      expect(config.resolvConf).toBe("/run/systemd/resolve/resolv.conf");
    }
    expect(kubeletConfiguration(cluster("v1.30.14"), MACHINE)).not.toHaveProperty("resolvConf");
  });

  it("on a container host, sets what kind sets for the kubelet: no image GC or eviction on the host's disk, swap tolerated", () => {
    for (const [minor, version] of VERSIONS) {
      const config = kubeletConfiguration(cluster(version), { ...MACHINE, container: "systemd-nspawn" });
      const expected = yaml.load(fixture(minor, "config.yaml")) as Record<string, unknown>;
      expect(config).toEqual({
        ...expected,
        failSwapOn: false,
        imageGCHighThresholdPercent: 100,
        evictionHard: { "imagefs.available": "0%", "nodefs.available": "0%", "nodefs.inodesFree": "0%" },
      });
    }
  });

  it("writes no failCgroupV1 for v1.21/v1.30 (no such field) nor v1.34 (default false), even on cgroup v1", () => {
    expect(kubeletGates("v1.21.14").failCgroupV1Default).toBeUndefined();
    expect(kubeletGates("v1.30.14").failCgroupV1Default).toBeUndefined();
    expect(kubeletGates("v1.34.8").failCgroupV1Default).toBe(false);
    for (const [, version] of VERSIONS) {
      const host: KubeletHost = { systemdResolvedActive: false, container: "docker", cgroupVersion: 1 };
      expect(kubeletConfiguration(cluster(version), host)).not.toHaveProperty("failCgroupV1");
    }
  });

  it("sets failCgroupV1: false on a cgroup v1 container for a kubelet whose default is true (v1.35+)", () => {
    const gates = { ...kubeletGates("v1.34.8"), failCgroupV1Default: true };
    const inputs = { serviceSubnet: "198.19.128.0/20", dnsDomain: "cluster.local", featureGates: {} };
    const v1 = buildKubeletConfiguration(gates, inputs, {
      ...MACHINE,
      container: "docker",
      cgroupVersion: 1,
    });
    expect(v1.failCgroupV1).toBe(false);
    const v2 = buildKubeletConfiguration(gates, inputs, {
      ...MACHINE,
      container: "docker",
      cgroupVersion: 2,
    });
    expect(v2).not.toHaveProperty("failCgroupV1");
    const machine = buildKubeletConfiguration(gates, inputs, { ...MACHINE, cgroupVersion: 1 });
    expect(machine).not.toHaveProperty("failCgroupV1");
  });

  it("uses the cluster's dnsDomain", () => {
    const config = kubeletConfiguration(cluster("v1.34.8", { dnsDomain: "corp.example" }), MACHINE);
    expect(config.clusterDomain).toBe("corp.example");
  });

  it("v1.34 with NodeLocalCRISocket turned off: the socket goes back to the flag and the field is empty", () => {
    const off = cluster("v1.34.8", {}, { NodeLocalCRISocket: false });
    expect(kubeletConfiguration(off, MACHINE).containerRuntimeEndpoint).toBe("");
    expect(kubeadmFlags(off, CP1)).toEqual([
      "--container-runtime-endpoint=unix:///run/containerd/containerd.sock",
      "--node-ip=198.18.0.11",
      "--pod-infra-container-image=registry.k8s.io/pause:3.10.1",
    ]);
  });
});

describe("kubeadm-flags.env, node-dependent parts", () => {
  it("adds --hostname-override when the node name differs from the host's hostname", () => {
    const node = { ...CP1, hostname: "cp1.lab.example" };
    expect(kubeadmFlags(cluster("v1.30.14"), node)).toEqual([
      "--container-runtime-endpoint=unix:///run/containerd/containerd.sock",
      "--hostname-override=cp1",
      "--node-ip=198.18.0.11",
      "--pod-infra-container-image=registry.k8s.io/pause:3.9",
    ]);
  });

  it("registers a joining worker's taints by flag, as Taint.ToString() prints them", () => {
    const worker: KubeletNode = {
      name: "w1",
      hostname: "w1",
      nodeIP: "198.18.0.12",
      role: "worker",
      command: "join",
      taints: [
        { key: "dedicated", value: "gpu", effect: "NoSchedule" },
        { key: "example.com/spot", effect: "NoExecute" },
      ],
    };
    expect(kubeadmFlags(cluster("v1.21.14"), worker)).toEqual([
      "--container-runtime=remote",
      "--container-runtime-endpoint=unix:///run/containerd/containerd.sock",
      "--node-ip=198.18.0.12",
      "--pod-infra-container-image=k8s.gcr.io/pause:3.4.1",
      "--register-with-taints=dedicated=gpu:NoSchedule,example.com/spot:NoExecute",
    ]);
    expect(kubeadmFlags(cluster("v1.34.8"), worker)).toContain(
      "--register-with-taints=dedicated=gpu:NoSchedule,example.com/spot:NoExecute",
    );
  });

  it("never registers taints by flag on init or for a joining control plane (mark-control-plane does)", () => {
    const taints = [{ key: "dedicated", value: "infra", effect: "NoSchedule" as const }];
    for (const node of [
      { ...CP1, taints },
      { ...CP1, taints, command: "join" as const },
      { ...CP1, taints, role: "worker" as const, command: "init" as const },
    ]) {
      expect(
        kubeadmFlags(cluster("v1.30.14"), node).some((flag) => flag.startsWith("--register-with-taints")),
      ).toBe(false);
    }
  });

  it("takes the pause image from the cluster's imageRepository", () => {
    const mirrored = applyDefaults({
      ...cluster("v1.30.14"),
      spec: {
        ...cluster("v1.30.14").spec,
        kubernetes: { version: "v1.30.14", imageRepository: "mirror.example/k8s" },
      },
    }) as ClusterFile;
    expect(kubeadmFlags(mirrored, CP1)).toContain("--pod-infra-container-image=mirror.example/k8s/pause:3.9");
  });

  it("quotes the whole list as Go's %q", () => {
    expect(renderKubeadmFlagsEnv(cluster("v1.34.8"), CP1)).toBe(
      'KUBELET_KUBEADM_ARGS="--node-ip=198.18.0.11 --pod-infra-container-image=registry.k8s.io/pause:3.10.1"\n',
    );
  });
});

describe("kubeletGates: ConfigMap and control-plane Node per version", () => {
  it("v1.21: kubelet-config-1.21; master and control-plane labels, master taint", () => {
    expect(kubeletGates("v1.21.14")).toMatchObject({
      configMap: "kubelet-config-1.21",
      configMapRole: "kubeadm:kubelet-config-1.21",
      controlPlaneLabels: [
        "node-role.kubernetes.io/master",
        "node-role.kubernetes.io/control-plane",
        "node.kubernetes.io/exclude-from-external-load-balancers",
      ],
      controlPlaneTaints: [{ key: "node-role.kubernetes.io/master", effect: "NoSchedule" }],
    });
  });

  it.each(["v1.30.0", "v1.34.0"])("%s: kubelet-config; control-plane label and taint only", (version) => {
    expect(kubeletGates(version)).toMatchObject({
      configMap: "kubelet-config",
      configMapRole: "kubeadm:kubelet-config",
      controlPlaneLabels: [
        "node-role.kubernetes.io/control-plane",
        "node.kubernetes.io/exclude-from-external-load-balancers",
      ],
      controlPlaneTaints: [{ key: "node-role.kubernetes.io/control-plane", effect: "NoSchedule" }],
    });
  });

  it("hands out copies", () => {
    kubeletGates("v1.30.0").controlPlaneLabels.push("x");
    (kubeletGates("v1.30.0").configZeroValues.logging as Record<string, unknown>).verbosity = 9;
    expect(kubeletGates("v1.30.0").controlPlaneLabels).toHaveLength(2);
    expect(kubeletGates("v1.30.0").configZeroValues.logging).toMatchObject({ verbosity: 0 });
  });
});
