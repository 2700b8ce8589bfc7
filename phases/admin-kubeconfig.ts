// The last step of init and apply on the workstation: the cluster's admin credentials merged into
// the user's kubeconfig, so `kubectl get nodes` works next. Written only when the merge changes it.
import { access } from "node:fs/promises";
import { join } from "node:path";
import { planAdminKubeconfig, writeAdminKubeconfig } from "../certs/admin-kubeconfig.js";
import { mergedNames } from "../certs/kubeconfigs.js";
import { ADMIN_KUBECONFIG } from "../certs/store.js";
import type { ClusterFile } from "../config/schema.js";
import type { ClusterHost } from "../hosts/open.js";
import type { LocalPhase } from "../workflow/phase.js";

export interface AdminKubeconfigRun {
  cluster: ClusterFile;
  file: string;
  clusterDir: string;
  /** $KUBECONFIG's first file or ~/.kube/config. */
  userKubeconfig: string;
  /** The merged context, once the phase has run (and not in a dry run). */
  adminContext?: string;
}

export const adminKubeconfigPhase: LocalPhase<AdminKubeconfigRun, ClusterHost> = {
  id: "admin-kubeconfig",
  title: "Merge the admin credentials into your kubeconfig",
  help: "Adds (or refreshes) context kubeforge-<cluster>-admin@kubeforge-<cluster> in $KUBECONFIG or ~/.kube/config, 0600; the current context is left as it is.",
  run: async (step) => {
    const { cluster, clusterDir, file, userKubeconfig } = step.data;
    const generated = await access(join(clusterDir, ADMIN_KUBECONFIG)).then(
      () => true,
      () => false,
    );
    // A dry run on a fresh store: certs/store has only planned admin.conf.
    if (!generated && step.dryRun) {
      const { context } = mergedNames(cluster.metadata.name);
      await step.change(`merge context ${context} into ${userKubeconfig}`, async () => undefined);
      return;
    }
    const plan = await planAdminKubeconfig(cluster, clusterDir, {
      target: userKubeconfig,
      standalone: false,
      useContext: false,
      clusterFile: file,
    });
    if (plan.text !== plan.current) {
      await step.change(`merge context ${plan.context} into ${userKubeconfig}`, () =>
        writeAdminKubeconfig(userKubeconfig, plan),
      );
    }
    if (!step.dryRun) step.data.adminContext = plan.context;
    step.log(`kubectl --context ${plan.context} get nodes`);
  },
};
