import { describe, expect, it } from "vitest";
import { parseClusterFile } from "../config/load.js";
import type { HostSpec } from "../config/schema.js";
import type { HostFacts } from "../facts/facts.js";
import { type CheckResult, runChecks } from "./checks.js";

const { cluster } = parseClusterFile(
  `apiVersion: kubeforge.dev/v1alpha1
kind: Cluster
metadata: {name: demo}
spec:
  kubernetes: {version: v1.30.4}
  hosts:
    - {name: cp1, address: 198.18.0.11, role: control-plane}
    - {name: w1, address: 198.18.0.12, role: worker}
`,
  "cluster.yaml",
  { env: {}, homeDir: "/home/u", cwd: "/work" },
);
const [cp1, w1] = cluster.spec.hosts as [HostSpec, HostSpec];

function healthy(hostname: string, machineId: string): HostFacts {
  return {
    os: { id: "debian", versionId: "12", like: [], prettyName: "Debian GNU/Linux 12 (bookworm)" },
    packageManager: "apt-get",
    arch: "x86_64",
    kernel: "6.1.0-18-amd64",
    hostname,
    machineId,
    cpus: 2,
    memoryKiB: 4 * 1024 * 1024,
    swap: [],
    cgroupVersion: 2,
    init: "systemd",
    container: undefined,
    systemdResolved: false,
    containerd: "containerd 1.7.24",
    kubelet: undefined,
    manifests: [],
    nonEmptyDirs: [],
    listeningPorts: [22],
    privilegedUid: 0,
    ipForward: true,
    bridgeNfCallIptables: true,
    binaries: [],
    clockSkewMs: 120,
    clockUncertaintyMs: 40,
  };
}

function check(results: CheckResult[], host: string, name: string): CheckResult | undefined {
  return results.find((result) => result.host === host && result.check === name);
}

function run(cpFacts: Partial<HostFacts>, workerFacts: Partial<HostFacts> = {}, ignore: string[] = []) {
  return runChecks(
    cluster,
    [
      { spec: cp1, facts: { ...healthy("cp1", "m-cp1"), ...cpFacts } },
      { spec: w1, facts: { ...healthy("w1", "m-w1"), ...workerFacts } },
    ],
    { ignore },
  );
}

describe("host preflight checks", () => {
  it("passes healthy hosts, with the control-plane checks only on control planes", () => {
    const results = run({});
    expect(results.filter((r) => r.status !== "ok")).toEqual([]);
    expect(results.filter((r) => r.host === "cp1").map((r) => r.check)).toEqual([
      "IsPrivilegedUser",
      "SystemVerification",
      "NumCPU",
      "Mem",
      "Hostname",
      "Port-6443",
      "Port-10250",
      "Port-10257",
      "Port-10259",
      "Port-2379",
      "Port-2380",
      "DirAvailable--etc-kubernetes-manifests",
      "DirAvailable--var-lib-etcd",
      "ClockSkew",
      "Swap",
      "FileContent--proc-sys-net-ipv4-ip_forward",
      "FileContent--proc-sys-net-bridge-bridge-nf-call-iptables",
      "CRI",
      "HostnameUnique",
      "MachineIDUnique",
    ]);
    expect(results.filter((r) => r.host === "w1").map((r) => r.check)).not.toContain("NumCPU");
  });

  it.each<[string, Partial<HostFacts>, string, string]>([
    [
      "not root",
      { privilegedUid: 1000 },
      "IsPrivilegedUser",
      "privileged commands run as uid 1000, not root",
    ],
    ["one CPU", { cpus: 1 }, "NumCPU", "1 CPU(s); a control plane needs at least 2"],
    ["little memory", { memoryKiB: 1024 * 1024 }, "Mem", "1024 MB; a control plane needs at least 1700 MB"],
    ["API port taken", { listeningPorts: [22, 6443] }, "Port-6443", "port 6443 is in use"],
    ["etcd port taken", { listeningPorts: [2379] }, "Port-2379", "port 2379 is in use"],
    [
      "leftover etcd data",
      { nonEmptyDirs: ["/var/lib/etcd"] },
      "DirAvailable--var-lib-etcd",
      "/var/lib/etcd is not empty: etcd data of an earlier cluster; run kubeforge reset first",
    ],
    [
      "leftover manifests",
      { manifests: ["/etc/kubernetes/manifests/kube-apiserver.yaml"] },
      "DirAvailable--etc-kubernetes-manifests",
      "/etc/kubernetes/manifests is not empty (/etc/kubernetes/manifests/kube-apiserver.yaml): an earlier cluster is here; run kubeforge reset first",
    ],
    [
      "unsupported OS",
      { os: { id: "alpine", versionId: "3.20", like: [], prettyName: "Alpine Linux v3.20" } },
      "SystemVerification",
      "Alpine Linux v3.20 on x86_64 is not supported yet (supported: debian, ubuntu on x86_64, aarch64)",
    ],
    [
      "invalid hostname",
      { hostname: "CP_1" },
      "Hostname",
      '"CP_1" is not a lowercase DNS-1123 subdomain; rename the host (hostnamectl set-hostname)',
    ],
    [
      "clock far behind",
      { clockSkewMs: -125_000, clockUncertaintyMs: 50 },
      "ClockSkew",
      "the host's clock is -125.0s off the workstation's, which signs the certificates; sync both (NTP)",
    ],
  ])("fails the named check on that host only: %s", (_name, facts, name, message) => {
    const results = run(facts);
    expect(check(results, "cp1", name)).toEqual({ host: "cp1", check: name, status: "error", message });
    expect(results.filter((r) => r.status === "error")).toHaveLength(1);
  });

  it("tolerates a skew within the estimate's uncertainty", () => {
    expect(check(run({ clockSkewMs: 61_000, clockUncertaintyMs: 2_000 }), "cp1", "ClockSkew")?.status).toBe(
      "ok",
    );
  });

  it("reports what prepare will fix as fixable, never as an error", () => {
    const results = run(
      {},
      {
        swap: [{ device: "/swapfile", sizeKiB: 1048572 }],
        ipForward: false,
        containerd: undefined,
        bridgeNfCallIptables: undefined,
      },
    );
    expect(results.filter((r) => r.status === "error")).toEqual([]);
    expect(results.filter((r) => r.status === "fixable").map((r) => [r.host, r.check, r.message])).toEqual([
      ["w1", "Swap", "swap is on (/swapfile, 1024 MiB): will be fixed by prepare"],
      ["w1", "FileContent--proc-sys-net-ipv4-ip_forward", "IP forwarding is off: will be fixed by prepare"],
      [
        "w1",
        "FileContent--proc-sys-net-bridge-bridge-nf-call-iptables",
        "br_netfilter is not loaded: will be fixed by prepare",
      ],
      ["w1", "CRI", "containerd is not installed: will be installed by prepare"],
    ]);
  });

  it("stops on an installed containerd older than 1.6, which prepare cannot configure, naming the fix", () => {
    const results = run(
      {},
      { containerd: "containerd github.com/containerd/containerd 1.4.13~ds1 1.4.13~ds1-1~deb11u4" },
    );
    expect(check(results, "w1", "CRI")).toMatchObject({
      status: "error",
      message: expect.stringContaining(
        "1.6 or later; upgrade it, or remove it (prepare then installs the bundle's)",
      ),
    });
  });

  it("finds the same machine twice by hostname and by machine-id, on the second host", () => {
    const results = run({}, { hostname: "cp1", machineId: "m-cp1" });
    expect(check(results, "w1", "HostnameUnique")).toMatchObject({
      status: "error",
      message: "hostname cp1 is also cp1's",
    });
    expect(check(results, "w1", "MachineIDUnique")).toMatchObject({
      status: "error",
      message: "machine-id m-cp1 is also cp1's",
    });
    expect(check(results, "cp1", "HostnameUnique")?.status).toBe("ok");
  });

  it("turns errors named in --ignore-preflight-errors (any case) or `all` into ignored", () => {
    expect(check(run({ cpus: 1 }, {}, ["numcpu"]), "cp1", "NumCPU")?.status).toBe("ignored");
    const all = run({ cpus: 1, listeningPorts: [6443] }, {}, ["all"]);
    expect(all.filter((r) => r.status === "error")).toEqual([]);
    expect(all.filter((r) => r.status === "ignored").map((r) => r.check)).toEqual(["NumCPU", "Port-6443"]);
  });
});

describe("a host already in this cluster (its CA is the store's)", () => {
  it("passes the ports and leftover checks a fresh host would fail, so a re-run converges", () => {
    const facts = {
      ...healthy("cp1", "m-cp1"),
      listeningPorts: [22, 2379, 6443, 10250],
      manifests: ["/etc/kubernetes/manifests/kube-apiserver.yaml"],
      nonEmptyDirs: ["/var/lib/etcd"],
    };
    const fresh = runChecks(cluster, [{ spec: cp1, facts }], { ignore: [] });
    const member = runChecks(cluster, [{ spec: cp1, facts, member: true }], { ignore: [] });
    const failing = ["Port-6443", "Port-2379", "Port-10250", "DirAvailable--var-lib-etcd"];
    for (const name of failing) {
      expect(check(fresh, "cp1", name)?.status).toBe("error");
      expect(check(member, "cp1", name)).toMatchObject({
        status: "ok",
        message: expect.stringContaining("this cluster"),
      });
    }
    expect(check(member, "cp1", "DirAvailable--etc-kubernetes-manifests")?.status).toBe("ok");
  });
});
