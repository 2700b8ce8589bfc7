// kubeadm init's addon phase: kube-proxy and CoreDNS, with kubeadm's object names, through the API.
// Objects that already match are not written, so a re-run makes no writes.
import { addonObjects } from "../api/addons.js";
import type { ApiObject } from "../api/objects.js";
import type { ClusterHost } from "../hosts/open.js";
import type { LocalPhase } from "../workflow/phase.js";
import type { ClusterRun } from "./cluster-run.js";
import { type ApiRun, applyObject, connectApi } from "./init-api.js";

type AddonRun = ClusterRun & ApiRun;

function addonPhase(
  id: string,
  title: string,
  pick: (objects: ReturnType<typeof addonObjects>) => ApiObject[],
): LocalPhase<AddonRun, ClusterHost> {
  return {
    id,
    title,
    run: async (step) => {
      const { cluster, facts } = step.data;
      // kind's rule: when the nodes are containers, kube-proxy must not set nf_conntrack_max.
      const containerHosts = [...facts.values()].some((host) => host.container !== undefined);
      const objects = pick(addonObjects(cluster, { containerHosts }));
      if (objects.length === 0) {
        step.log("disabled in the cluster file");
        return;
      }
      const api = await connectApi(step);
      for (const object of objects) await applyObject(step, api, object);
    },
  };
}

export const addonsPhase: LocalPhase<AddonRun, ClusterHost> = {
  id: "addon",
  title: "Install the add-ons",
  phases: [
    addonPhase(
      "coredns",
      "Install CoreDNS (Deployment, kube-dns Service, ConfigMap, RBAC)",
      (o) => o.coreDns,
    ),
    addonPhase("kube-proxy", "Install kube-proxy (DaemonSet, ConfigMap, RBAC)", (o) => o.kubeProxy),
  ],
};
