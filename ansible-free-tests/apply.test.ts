// `kubeforge apply`, `join` and `token` end to end on three real lab hosts (cp1, w1, w2) from an
// offline bundle of real Debian packages and containerd. What cannot run here is stood in for, and
// named so (support/stand-in-cluster.ts): kube-apiserver is the RECORDING FAKE API server behind
// the control plane's :6443, the kubelet a serving stand-in, and a registrar plays the kubelets'
// registration and TLS bootstrap and the controllers. Everything kubeforge does is real: prepare,
// the files and units on the nodes, every API call (recorded and compared with the objects kubeadm
// init creates, hand-listed from kubeadm-spec.md §1.8), the pod network's routes, the merged
// kubeconfig that kubectl uses, and the re-run that writes nothing.
import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { $ } from "zx";
import type { LabOptions } from "../lab/testhosts.js";
import { type CliRun, changesOf, must, show } from "./support/scenario.js";
import type { StandInNode, StandIns } from "./support/stand-in-cluster.js";
import { standInSuite } from "./support/suite.js";

const LAB: LabOptions = { bridge: "kfbra0", subnet: "198.18.27", log: (line) => console.error(line) };
const VERSION = "v1.30.14";
const NAME = "demo";
const API_PORT = 16443;

const { ready, kubeforge } = standInSuite({
  lab: LAB,
  workPrefix: "kf-apply-",
  name: NAME,
  version: VERSION,
  port: API_PORT,
  // A label only the API can set: mark-workers applies it after w1 registers.
  labels: { w1: { "node-role.kubernetes.io/worker": "" } },
});

const APPLY = [
  "apply",
  "-f",
  "cluster.yaml",
  "--timeout",
  "60s",
  "--ignore-preflight-errors",
  "KubeletKernelSettings",
];
const nodeOf = (name: string) => ready().nodes.find((node) => node.name === name) as StandInNode;

/** The API writes as `verb Kind namespace/name`, the token's random id written as <id>. */
function writesOf(s: StandIns): string[] {
  return s.fake
    .writes()
    .map((w) => `${w.verb} ${w.kind} ${w.namespace ? `${w.namespace}/` : ""}${w.name}`)
    .map((line) => line.replace(/bootstrap-token-[a-z0-9]{6}$/, "bootstrap-token-<id>"))
    .sort();
}

/**
 * What kubeadm init of v1.30 creates in the API (kubeadm-spec.md §1.8), listed by hand: v1.29+'s
 * cluster-admins binding, upload-config, the control plane's Node patch (label and taint: the
 * cluster has workers), bootstrap-token with its RBAC and cluster-info, then the CoreDNS and
 * kube-proxy add-ons. (kubeadm:apiserver-kubelet-client arrived after v1.30, in v1.33.12/v1.34.8.)
 */
const KUBEADM_INIT_WRITES = [
  "create ClusterRoleBinding kubeadm:cluster-admins",
  "create ConfigMap kube-system/kubeadm-config",
  "create Role kube-system/kubeadm:nodes-kubeadm-config",
  "create RoleBinding kube-system/kubeadm:nodes-kubeadm-config",
  "create ConfigMap kube-system/kubelet-config",
  "create Role kube-system/kubeadm:kubelet-config",
  "create RoleBinding kube-system/kubeadm:kubelet-config",
  "patch Node cp1",
  "create Secret kube-system/bootstrap-token-<id>",
  "create ClusterRole kubeadm:get-nodes",
  "create ClusterRoleBinding kubeadm:get-nodes",
  "create ClusterRoleBinding kubeadm:kubelet-bootstrap",
  "create ClusterRoleBinding kubeadm:node-autoapprove-bootstrap",
  "create ClusterRoleBinding kubeadm:node-autoapprove-certificate-rotation",
  "create ConfigMap kube-public/cluster-info",
  "create Role kube-public/kubeadm:bootstrap-signer-clusterinfo",
  "create RoleBinding kube-public/kubeadm:bootstrap-signer-clusterinfo",
  "create ConfigMap kube-system/coredns",
  "create ClusterRole system:coredns",
  "create ClusterRoleBinding system:coredns",
  "create ServiceAccount kube-system/coredns",
  "create Deployment kube-system/coredns",
  "create Service kube-system/kube-dns",
  "create ConfigMap kube-system/kube-proxy",
  "create DaemonSet kube-system/kube-proxy",
  "create ServiceAccount kube-system/kube-proxy",
  "create ClusterRoleBinding kubeadm:node-proxier",
  "create Role kube-system/kube-proxy",
  "create RoleBinding kube-system/kube-proxy",
].sort();

/** The kubectl the bundle holds (Debian's), run on the workstation with the merged kubeconfig. */
async function kubectl(args: string[]): Promise<string> {
  const { work } = ready();
  const binary = join(work, "bundle-dir/bin/linux-amd64/kubectl");
  const env = { ...process.env, KUBECONFIG: join(work, "kubeconfig") };
  const out = await $({ quiet: true, nothrow: true, env })`${binary} ${args}`;
  if (out.exitCode !== 0) throw new Error(`kubectl ${args.join(" ")}: ${out.stderr}`);
  return out.stdout;
}

describe("kubeforge apply, join and token on real hosts (recording fake API server, stand-in kubelets and controllers)", () => {
  let first: CliRun;

  it("takes bare hosts to a cluster whose nodes joined, are Ready and validated", async () => {
    const { lab, standIns, work, nodes } = ready();
    first = await kubeforge(APPLY);
    expect(first.code, `${show(first)}\n${standIns.log.join("\n")}`).toBe(0);
    expect(first.stderr).toContain("3 nodes Ready with kubelet v1.30.14");
    expect(first.stderr).toMatch(/answers with Kubernetes v1\.30\.14/);

    // Exactly kubeadm init's objects, each written once, and w1's label from the cluster file.
    expect(writesOf(standIns)).toEqual([...KUBEADM_INIT_WRITES, "patch Node w1"].sort());
    expect(
      standIns.fake.object({ apiVersion: "v1", kind: "Node", name: "w1" })?.metadata.labels,
    ).toMatchObject({
      "node-role.kubernetes.io/worker": "",
    });
    const cp1 = standIns.fake.object({ apiVersion: "v1", kind: "Node", name: "cp1" });
    expect(cp1?.metadata).toMatchObject({
      labels: {
        "node-role.kubernetes.io/control-plane": "",
        "node.kubernetes.io/exclude-from-external-load-balancers": "",
      },
    });
    expect((cp1?.spec as { taints?: unknown })?.taints).toEqual([
      { key: "node-role.kubernetes.io/control-plane", effect: "NoSchedule" },
    ]);

    // The workers: the CA, their own kubelet.conf, no bootstrap kubeconfig (with its token) left.
    const ca = readFileSync(join(work, "state", NAME, "pki/ca.crt"));
    for (const worker of ["w1", "w2"]) {
      const host = nodeOf(worker).labHost;
      expect(await must(lab, host, "sha256sum < /etc/kubernetes/pki/ca.crt | cut -d' ' -f1")).toBe(
        `${createHash("sha256").update(ca).digest("hex")}\n`,
      );
      expect(await must(lab, host, "stat -c %a /etc/kubernetes/kubelet.conf")).toBe("600\n");
      expect(await must(lab, host, "ls /etc/kubernetes")).not.toContain("bootstrap-kubelet.conf");
      expect(await must(lab, host, "cat /var/lib/kubelet/kubeadm-flags.env")).toContain(
        `--node-ip=${nodeOf(worker).address}`,
      );
    }
    // kubelet-finalize: the control plane's kubelet.conf follows the rotated certificate.
    expect(await must(lab, nodeOf("cp1").labHost, "cat /etc/kubernetes/kubelet.conf")).toContain(
      "client-certificate: /var/lib/kubelet/pki/kubelet-client-current.pem",
    );

    // The pod network: each node's bridge config and real routes to the other nodes' pod CIDRs.
    for (const node of nodes) {
      const conflist = JSON.parse(
        await must(lab, node.labHost, "cat /etc/cni/net.d/10-kubeforge-bridge.conflist"),
      );
      expect(JSON.stringify(conflist)).toContain(node.podCIDR);
      const routes = await must(lab, node.labHost, "ip -4 route show");
      for (const other of nodes.filter((entry) => entry !== node)) {
        expect(routes).toContain(`${other.podCIDR} via ${other.address}`);
      }
    }

    // The bootstrap token's secret went to the workers' bootstrap kubeconfigs only: not into the
    // output, the events or the run's log.
    const secrets = standIns.fake
      .writes()
      .filter((w) => w.kind === "Secret")
      .map((w) =>
        standIns.fake.object({ apiVersion: "v1", kind: "Secret", namespace: w.namespace, name: w.name }),
      )
      .map((secret) =>
        Buffer.from(
          String(((secret?.data ?? {}) as Record<string, string>)["token-secret"]),
          "base64",
        ).toString(),
      );
    expect(secrets).toHaveLength(1);
    const logs = readdirSync(join(work, "state", NAME, "logs")).map((file) =>
      readFileSync(join(work, "state", NAME, "logs", file), "utf8"),
    );
    for (const text of [first.stdout, first.stderr, ...logs]) expect(text).not.toContain(secrets[0]);

    // kubectl on the workstation, with the kubeconfig apply merged.
    const context = `kubeforge-${NAME}-admin@kubeforge-${NAME}`;
    expect(await kubectl(["--context", context, "get", "nodes", "-o", "name"])).toBe(
      "node/cp1\nnode/w1\nnode/w2\n",
    );
  });

  it("changes nothing and writes nothing to the API when run again", async () => {
    const { standIns } = ready();
    standIns.fake.clearRecords();
    const again = await kubeforge(APPLY);
    expect(again.code, show(again)).toBe(0);
    expect(changesOf(again)).toEqual({});
    expect(writesOf(standIns)).toEqual([]);
  });

  it("prints kubeadm's join command with the CA's discovery hash, lists and deletes tokens", async () => {
    const { standIns, work } = ready();
    const created = await kubeforge(["token", "create", "-f", "cluster.yaml", "--print-join-command"], {
      output: "text",
    });
    expect(created.code, show(created)).toBe(0);
    // The hash as kubeadm's documentation computes it, with openssl.
    const caFile = join(work, "state", NAME, "pki/ca.crt");
    const hash = (
      await $({
        quiet: true,
      })`openssl x509 -pubkey -noout -in ${caFile} | openssl pkey -pubin -outform der | sha256sum`
    ).stdout.split(" ")[0];
    const joinLine = new RegExp(
      `^kubeadm join ${NAME}-api:6443 --token ([a-z0-9]{6})\\.[a-z0-9]{16} --discovery-token-ca-cert-hash sha256:${hash}\\s*$`,
    );
    expect(created.stdout).toMatch(joinLine);
    // demo-api resolves on kubeforge's nodes only: a host joined by hand needs the line.
    expect(created.stderr).toContain(`${nodeOf("cp1").address} ${NAME}-api`);
    const id = joinLine.exec(created.stdout)?.[1] as string;
    const secret = {
      apiVersion: "v1",
      kind: "Secret",
      namespace: "kube-system",
      name: `bootstrap-token-${id}`,
    };
    expect(standIns.fake.object(secret)).toBeDefined();

    const listed = await kubeforge(["token", "list", "-f", "cluster.yaml"], { output: "text" });
    expect(listed.stdout).toContain(id);
    const deleted = await kubeforge(["token", "delete", "-f", "cluster.yaml", id], { output: "text" });
    expect(deleted.code, show(deleted)).toBe(0);
    expect(standIns.fake.object(secret)).toBeUndefined();
  });

  it("joins a worker again after a reset, touching only that worker", async () => {
    const { lab, standIns } = ready();
    const w2 = nodeOf("w2").labHost;
    const reset = await kubeforge(["reset", "-f", "cluster.yaml", "--hosts", "w2", "--yes"]);
    expect(reset.code, show(reset)).toBe(0);
    expect(await must(lab, w2, "ls /etc/kubernetes/kubelet.conf 2>&1 || true")).toContain("No such file");
    // The pod network's routes and their boot unit went with it.
    expect(await must(lab, w2, "ls /etc/systemd/system/kubeforge-pod-routes.service 2>&1 || true")).toContain(
      "No such file",
    );
    expect(await must(lab, w2, "ip -4 route show")).not.toContain(nodeOf("cp1").podCIDR);
    // Credentials left by another cluster would make its kubelet ignore the bootstrap kubeconfig.
    await must(lab, w2, "mkdir -p /etc/kubernetes && echo 'apiVersion: v1' > /etc/kubernetes/kubelet.conf");
    const JOIN_W2 = [
      "join",
      "-f",
      "cluster.yaml",
      "--hosts",
      "w2",
      "--timeout",
      "60s",
      "--ignore-preflight-errors",
      "KubeletKernelSettings",
    ];
    const refused = await kubeforge(JOIN_W2);
    expect(refused.code, show(refused)).toBe(2);
    expect(refused.stderr).toContain("w2:/etc/kubernetes/kubelet.conf");
    expect(refused.stderr).toContain("kubeforge reset -f cluster.yaml --hosts w2");
    expect(changesOf(refused)).toEqual({});
    await must(lab, w2, "rm /etc/kubernetes/kubelet.conf");

    // A TLS bootstrap that does not finish in time (no certificate signed yet) fails the run…
    standIns.holdBootstrap("w2", true);
    const stalled = await kubeforge([...JOIN_W2, "--timeout", "5s"]);
    expect(stalled.code, show(stalled)).toBe(1);
    expect(stalled.stderr).toContain("the kubelet's TLS bootstrap");
    // …and leaves kubelet.conf written by the kubelet: a re-run bootstraps again, not refuses.
    expect(await must(lab, w2, "grep -c certificate-authority-data /etc/kubernetes/kubelet.conf")).toBe(
      "1\n",
    );
    standIns.holdBootstrap("w2", false);
    standIns.fake.clearRecords();

    const joined = await kubeforge(JOIN_W2);
    expect(joined.code, `${show(joined)}\n${standIns.log.join("\n")}`).toBe(0);
    expect(Object.keys(changesOf(joined))).toEqual(["w2"]);
    expect(writesOf(standIns)).toEqual([]);
    expect(await must(lab, w2, "stat -c %a /etc/kubernetes/kubelet.conf")).toBe("600\n");
    expect(standIns.log.filter((line) => line === "w2: client certificate issued")).toHaveLength(2);
    expect(await must(lab, w2, "ip -4 route show")).toContain(
      `${nodeOf("cp1").podCIDR} via ${nodeOf("cp1").address}`,
    );
  });
});
