import yaml from "js-yaml";
import { describe, expect, it } from "vitest";
import { kubeforge, minimalClusterFile, testDir } from "../cli/testing.js";
import { parseClusterFile } from "../config/load.js";
import { hostNamed, nodeFiles } from "./files.js";

const PLAIN_HOST = {
  hostname: "",
  container: undefined,
  cgroupVersion: 2 as const,
  systemdResolvedActive: false,
};

function cluster(text = minimalClusterFile()) {
  return parseClusterFile(text, "cluster.yaml", { env: {}, homeDir: "/root", cwd: "/" }).cluster;
}

describe("the files a node gets", () => {
  it("gives the first control plane init's static pods (0600) and kubelet files, a worker join's kubelet files", () => {
    const file = cluster();
    const cp1 = nodeFiles(file, hostNamed(file, "cp1"), { ...PLAIN_HOST, hostname: "cp1" });
    expect(cp1.map(({ path, mode }) => [path, mode.toString(8)])).toEqual([
      ["/etc/kubernetes/manifests/etcd.yaml", "600"],
      ["/etc/kubernetes/manifests/kube-apiserver.yaml", "600"],
      ["/etc/kubernetes/manifests/kube-controller-manager.yaml", "600"],
      ["/etc/kubernetes/manifests/kube-scheduler.yaml", "600"],
      ["/var/lib/kubelet/config.yaml", "644"],
      ["/var/lib/kubelet/kubeadm-flags.env", "644"],
      ["/usr/lib/systemd/system/kubelet.service", "644"],
      ["/usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf", "644"],
    ]);
    const w1 = nodeFiles(file, hostNamed(file, "w1"), { ...PLAIN_HOST, hostname: "w1" });
    expect(w1.map(({ path }) => path)).not.toContain("/etc/kubernetes/manifests/etcd.yaml");
    expect(w1.find(({ path }) => path.endsWith("kubeadm-flags.env"))?.content).toContain(
      "--node-ip=198.18.0.12",
    );
    const apiserver = yaml.load(cp1[1]?.content ?? "") as {
      spec: { containers: Array<{ command: string[] }> };
    };
    expect(apiserver.spec.containers[0]?.command).toContain("--advertise-address=198.18.0.11");
  });

  it("overrides the hostname only when the host's own differs from its name", () => {
    const file = cluster();
    const flags = (hostname: string) =>
      nodeFiles(file, hostNamed(file, "w1"), { ...PLAIN_HOST, hostname }).find(({ path }) =>
        path.endsWith("kubeadm-flags.env"),
      )?.content;
    expect(flags("w1")).not.toContain("--hostname-override");
    expect(flags("node-17")).toContain("--hostname-override=w1");
  });

  it("refuses a second control plane (no HA yet) and an unknown host, naming the valid ones", () => {
    const file = cluster(minimalClusterFile().replace("role: worker", "role: control-plane"));
    expect(() => nodeFiles(file, hostNamed(file, "w1"), PLAIN_HOST)).toThrow(
      "host w1 would join as a second control plane: kubeforge does not support more than one yet",
    );
    expect(() => hostNamed(file, "w9")).toThrow(
      "--host w9: no such host; the cluster file's hosts are cp1, w1",
    );
  });
});

describe("kubeforge config render", () => {
  it("prints each file under its path and mode, or as one JSON event", async () => {
    const cwd = testDir({ "cluster.yaml": minimalClusterFile() });
    const text = await kubeforge(["config", "render", "--host", "w1"], { cwd });
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(
      /^# \/var\/lib\/kubelet\/config\.yaml \(mode 0644\)\napiVersion: kubelet\.config\.k8s\.io\/v1beta1\n/,
    );
    const json = await kubeforge(["-o", "json", "config", "render", "--host", "cp1"], { cwd });
    const event = JSON.parse(json.stdout) as { type: string; files: Array<{ path: string; mode: number }> };
    expect(event.type).toBe("node.files");
    expect(event.files).toHaveLength(8);
    const unknown = await kubeforge(["config", "render", "--host", "w9"], { cwd });
    expect(unknown.code).toBe(2);
  });
});
