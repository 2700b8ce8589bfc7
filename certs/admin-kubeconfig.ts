// The cluster's admin credentials in the user's kubeconfig on the workstation: merged under
// kubeforge's names (or written standalone), 0600. When the endpoint is kubeforge's default name
// (`<cluster>-api`, which only the nodes' /etc/hosts resolve), the workstation's copy dials the
// control plane's address and still verifies the API server's certificate for that name.
import { mkdir, readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { ClusterFile } from "../config/schema.js";
import { UsageError } from "../workflow/errors.js";
import { KUBECONFIG_MODE, writeFileAtomic } from "./files.js";
import { type Kubeconfig, mergeKubeconfig, parseKubeconfig, serializeKubeconfig } from "./kubeconfigs.js";
import { apiDialAddress, pkiInputs, serverUrl } from "./specs.js";
import { ADMIN_KUBECONFIG } from "./store.js";

/** admin.conf as the workstation can use it: see the file comment. */
export function workstationAdmin(cluster: ClusterFile, admin: Kubeconfig): Kubeconfig {
  if (cluster.spec.kubernetes.controlPlaneEndpoint !== undefined) return admin;
  const controlPlane = cluster.spec.hosts.find((host) => host.role === "control-plane");
  if (!controlPlane) return admin;
  const { endpoint } = pkiInputs(cluster);
  return {
    ...admin,
    clusters: admin.clusters.map((entry) => ({
      ...entry,
      cluster: {
        ...entry.cluster,
        server: serverUrl(apiDialAddress(controlPlane), endpoint.port),
        "tls-server-name": endpoint.host,
      },
    })),
  };
}

export interface AdminKubeconfigOptions {
  /** The kubeconfig to merge into, or the standalone file to write. */
  target: string;
  standalone: boolean;
  useContext: boolean;
  /** The cluster file as the user named it, for the fix in the error. */
  clusterFile: string;
}

/** What the target would hold after the merge, and what it holds now (undefined: no file). */
export interface AdminKubeconfigPlan {
  text: string;
  current: string | undefined;
  context: string;
}

export async function planAdminKubeconfig(
  cluster: ClusterFile,
  clusterDir: string,
  options: AdminKubeconfigOptions,
): Promise<AdminKubeconfigPlan> {
  const adminPath = join(clusterDir, ADMIN_KUBECONFIG);
  const adminText = await readFile(adminPath, "utf8").catch(() => {
    throw new UsageError(
      `${adminPath} does not exist yet: run \`kubeforge certs generate -f ${options.clusterFile}\` first`,
    );
  });
  const admin = workstationAdmin(cluster, parseKubeconfig(adminText));
  const current = await readFile(options.target, "utf8").catch(() => undefined);
  const merged = mergeKubeconfig(
    options.standalone || current === undefined ? undefined : parseKubeconfig(current),
    admin,
    {
      name: cluster.metadata.name,
      useContext: options.standalone || options.useContext,
    },
  );
  return { text: serializeKubeconfig(merged.config), current, context: merged.context };
}

/** Writes the planned kubeconfig, 0600, creating its directory 0700. */
export async function writeAdminKubeconfig(target: string, plan: AdminKubeconfigPlan): Promise<void> {
  await mkdir(dirname(target), { recursive: true, mode: 0o700 });
  await writeFileAtomic(target, plan.text, KUBECONFIG_MODE);
}
