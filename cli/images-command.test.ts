import { describe, expect, it } from "vitest";
import { kubeforge, minimalClusterFile, testDir } from "./testing.js";

const CLUSTER = minimalClusterFile("v1.34.2");

describe("kubeforge images list", () => {
  it("prints the exact refs, one per line", async () => {
    const cwd = testDir({ "cluster.yaml": CLUSTER });
    const run = await kubeforge(["images", "list", "-f", "cluster.yaml"], { cwd });
    expect(run.code).toBe(0);
    expect(run.stdout).toBe(
      [
        "registry.k8s.io/kube-apiserver:v1.34.2",
        "registry.k8s.io/kube-controller-manager:v1.34.2",
        "registry.k8s.io/kube-scheduler:v1.34.2",
        "registry.k8s.io/kube-proxy:v1.34.2",
        "registry.k8s.io/coredns/coredns:v1.12.1",
        "registry.k8s.io/pause:3.10.1",
        "registry.k8s.io/etcd:3.6.5-0",
        "",
      ].join("\n"),
    );
  });

  it("filters by role, and speaks JSON", async () => {
    const cwd = testDir({ "cluster.yaml": CLUSTER });
    const run = await kubeforge(["-o", "json", "images", "list", "-f", "cluster.yaml", "--role", "worker"], {
      cwd,
    });
    expect(JSON.parse(run.stdout)).toEqual({
      v: expect.any(Number),
      type: "images.list",
      images: [
        {
          component: "kube-proxy",
          ref: "registry.k8s.io/kube-proxy:v1.34.2",
          roles: ["control-plane", "worker"],
        },
        {
          component: "coredns",
          ref: "registry.k8s.io/coredns/coredns:v1.12.1",
          roles: ["control-plane", "worker"],
        },
        { component: "pause", ref: "registry.k8s.io/pause:3.10.1", roles: ["control-plane", "worker"] },
      ],
    });
  });

  it("exits 2 on an unknown role or a missing cluster file", async () => {
    const cwd = testDir({ "cluster.yaml": CLUSTER });
    expect((await kubeforge(["images", "list", "--role", "master"], { cwd })).code).toBe(2);
    const missing = await kubeforge(["images", "list", "-f", "nope.yaml"], { cwd });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("nope.yaml: file not found (pass the cluster file with -f FILE)");
  });
});
