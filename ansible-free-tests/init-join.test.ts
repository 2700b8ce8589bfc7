// `kubeforge init` and `kubeforge join` on their own, on three real lab hosts (cp1, w1, w2), then
// `apply` on what they built. The same STAND-INS as apply.test.ts (support/stand-in-cluster.ts: the
// recording fake API server standing in for kube-apiserver, a serving stand-in kubelet, a registrar
// for registration, TLS bootstrap and the controllers); everything kubeforge does is real.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { LabOptions } from "../lab/testhosts.js";
import { changesOf, cliIn, must, show } from "./support/scenario.js";
import type { StandIns } from "./support/stand-in-cluster.js";
import { standInSuite } from "./support/suite.js";

const LAB: LabOptions = { bridge: "kfbrj0", subnet: "198.18.29", log: (line) => console.error(line) };
const NAME = "split";
const FLAGS = [
  "-f",
  "cluster.yaml",
  "--timeout",
  "60s",
  "--ignore-preflight-errors",
  "KubeletKernelSettings",
];

const { ready, kubeforge } = standInSuite({
  lab: LAB,
  workPrefix: "kf-init-join-",
  name: NAME,
  version: "v1.34.2",
  port: 16445,
});

const labHostOf = (name: string) => ready().nodes.find((node) => node.name === name)?.labHost ?? name;
const writes = (s: StandIns) => s.fake.writes().map((w) => `${w.verb} ${w.kind} ${w.name}`);

describe("kubeforge init, then join, then apply (recording fake API server, stand-in kubelets and controllers)", () => {
  it("plans the whole apply on bare hosts with an empty store, and changes nothing anywhere", async () => {
    const { lab, work, nodes } = ready();
    const before = await Promise.all(
      nodes.map((node) => must(lab, node.labHost, "ls -A /etc/kubernetes /var/lib/kubelet 2>&1; true")),
    );
    const emptyStore = join(work, "empty-store");
    const run = await cliIn(work, ["apply", "--dry-run", ...FLAGS], emptyStore, {
      env: { KUBECONFIG: join(work, "dry-run-kubeconfig") },
    });
    expect(run.code, show(run)).toBe(0);
    const changes = changesOf(run);
    expect(changes.workstation).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^generate \d+ files in the local store/),
        "create ConfigMap kube-system/kubeadm-config",
        `merge context kubeforge-${NAME}-admin@kubeforge-${NAME} into ${join(work, "dry-run-kubeconfig")}`,
      ]),
    );
    expect(changes.cp1).toContain("write /etc/kubernetes/manifests/kube-apiserver.yaml (mode 0600)");
    expect(
      await Promise.all(
        nodes.map((node) => must(lab, node.labHost, "ls -A /etc/kubernetes /var/lib/kubelet 2>&1; true")),
      ),
    ).toEqual(before);
    // The run's log is written there; no PKI is.
    expect(existsSync(join(emptyStore, NAME, "pki"))).toBe(false);
    expect(existsSync(join(work, "dry-run-kubeconfig"))).toBe(false);
  });

  it("refuses join before init with exit 2, naming init, and changes nothing", async () => {
    ready();
    const run = await kubeforge(["join", ...FLAGS]);
    expect(run.code, show(run)).toBe(2);
    expect(run.stderr).toContain("kubeforge init -f cluster.yaml");
    expect(changesOf(run)).toEqual({});
  });

  it("init sets up the control plane alone, and leaves the workers untouched", async () => {
    const { lab, standIns } = ready();
    const run = await kubeforge(["init", ...FLAGS]);
    expect(run.code, `${show(run)}\n${standIns.log.join("\n")}`).toBe(0);
    expect(Object.keys(changesOf(run)).sort()).toEqual(["cp1", "workstation"]);
    expect(run.stderr).toContain("1 nodes Ready with kubelet v1.34.2");
    // kubeadm init's token, which join uses next.
    expect(
      writes(standIns).filter((w) => /^create Secret bootstrap-token-[a-z0-9]{6}$/.test(w)),
    ).toHaveLength(1);
    for (const worker of ["w1", "w2"])
      expect(await must(lab, labHostOf(worker), "ls /etc/kubernetes 2>&1 || true")).toContain("No such file");
  });

  it("join bootstraps the workers with init's token and writes nothing to the API", async () => {
    const { lab, standIns } = ready();
    standIns.fake.clearRecords();
    const run = await kubeforge(["join", ...FLAGS]);
    expect(run.code, `${show(run)}\n${standIns.log.join("\n")}`).toBe(0);
    expect(run.stderr).toContain("3 nodes Ready with kubelet v1.34.2");
    expect(writes(standIns)).toEqual([]);
    for (const worker of ["w1", "w2"])
      expect(await must(lab, labHostOf(worker), "stat -c %a /etc/kubernetes/kubelet.conf")).toBe("600\n");
    // The control plane got routes to the new nodes' pods.
    expect(await must(lab, labHostOf("cp1"), "ip -4 route show")).toContain("198.19.2.0/24 via");
  });

  it("apply on the cluster init and join built changes nothing and writes nothing", async () => {
    const { standIns } = ready();
    standIns.fake.clearRecords();
    const run = await kubeforge(["apply", ...FLAGS]);
    expect(run.code, show(run)).toBe(0);
    expect(changesOf(run)).toEqual({});
    expect(writes(standIns)).toEqual([]);
  });
});
