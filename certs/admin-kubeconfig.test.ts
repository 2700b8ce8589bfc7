import { describe, expect, it } from "vitest";
import { workstationAdmin } from "./admin-kubeconfig.js";
import type { Kubeconfig } from "./kubeconfigs.js";
import { clusterFile } from "./testing.js";

const admin: Kubeconfig = {
  apiVersion: "v1",
  kind: "Config",
  clusters: [
    {
      name: "kubernetes",
      cluster: { server: "https://demo-api:6443", "certificate-authority-data": "Q0E=" },
    },
  ],
  contexts: [
    { name: "kubernetes-admin@kubernetes", context: { cluster: "kubernetes", user: "kubernetes-admin" } },
  ],
  users: [{ name: "kubernetes-admin", user: {} }],
  "current-context": "kubernetes-admin@kubernetes",
};

describe("workstationAdmin", () => {
  it("dials the control plane's address for kubeforge's default endpoint name, verifying that name", () => {
    const cluster = clusterFile({ controlPlanes: 1 });
    const controlPlane = cluster.spec.hosts.find((host) => host.role === "control-plane");
    expect(workstationAdmin(cluster, admin).clusters).toEqual([
      {
        name: "kubernetes",
        cluster: {
          server: `https://${controlPlane?.address}:6443`,
          "tls-server-name": `${cluster.metadata.name}-api`,
          "certificate-authority-data": "Q0E=",
        },
      },
    ]);
  });

  it("keeps a controlPlaneEndpoint the user chose: it resolves wherever the user set it up", () => {
    const cluster = clusterFile({ kubernetes: ["controlPlaneEndpoint: api.example.com:6443"] });
    expect(workstationAdmin(cluster, admin)).toEqual(admin);
  });
});
