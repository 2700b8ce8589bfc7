import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { factsScript, parseFacts } from "./facts.js";

// What the probe printed on a Debian 12 lab host (systemd-nspawn), plus a swap line.
const PROBE_OUTPUT = `os.id=debian
os.version=12
os.like=
os.name=Debian GNU/Linux 12 (bookworm)
pm=apt-get
arch=x86_64
kernel=6.18.44-fc-v669
hostname=h1
machine_id=57809b552760280f28de2db0a5609c40
cpus=2
mem_kib=24684084
swap=/swapfile 1048572
cgroup_fs=tmpfs
init=systemd
container=systemd-nspawn
resolved=1
containerd=containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+deb12u3
nonempty=/var/lib/etcd
listen=00000000:0016
listen=00000000000000000000000000000000:0016
listen=0100007F:192B
uid=0
ip_forward=0
bridge_nf=1
binary=ip
binary=iptables
clock_ms=1795761368526
`;

describe("parseFacts", () => {
  it("reads every fact of the probe's output", () => {
    const facts = parseFacts(PROBE_OUTPUT, { sent: 1795761368400, received: 1795761368600 });
    expect(facts).toEqual({
      os: { id: "debian", versionId: "12", like: [], prettyName: "Debian GNU/Linux 12 (bookworm)" },
      packageManager: "apt-get",
      arch: "x86_64",
      kernel: "6.18.44-fc-v669",
      hostname: "h1",
      machineId: "57809b552760280f28de2db0a5609c40",
      cpus: 2,
      memoryKiB: 24684084,
      swap: [{ device: "/swapfile", sizeKiB: 1048572 }],
      cgroupVersion: 1,
      init: "systemd",
      container: "systemd-nspawn",
      systemdResolved: true,
      containerd: "containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+deb12u3",
      kubelet: undefined,
      manifests: [],
      nonEmptyDirs: ["/var/lib/etcd"],
      listeningPorts: [22, 6443],
      privilegedUid: 0,
      ipForward: false,
      bridgeNfCallIptables: true,
      binaries: ["ip", "iptables"],
      clockSkewMs: 26,
      clockUncertaintyMs: 100,
    });
  });

  it("tells a machine that is not a container, cgroup v2 and a missing br_netfilter apart", () => {
    const facts = parseFacts("container=none\ncgroup_fs=cgroup2fs\nbridge_nf=\n", { sent: 0, received: 0 });
    expect(facts.container).toBeUndefined();
    expect(facts.cgroupVersion).toBe(2);
    expect(facts.bridgeNfCallIptables).toBeUndefined();
    expect(facts.systemdResolved).toBe(false);
  });

  it("is a probe that this machine's sh runs and the parser reads", () => {
    const output = execFileSync("sh", ["-c", factsScript(["/proc"])], { encoding: "utf8" });
    const facts = parseFacts(output, { sent: Date.now(), received: Date.now() });
    expect(facts.kernel).toBe(execFileSync("uname", ["-r"], { encoding: "utf8" }).trim());
    expect(facts.cpus).toBeGreaterThan(0);
    expect(facts.memoryKiB).toBeGreaterThan(0);
    expect(facts.nonEmptyDirs).toEqual(["/proc"]);
    expect(Math.abs(facts.clockSkewMs)).toBeLessThan(5_000);
  });
});
