// The demo's cluster: `kubeforge apply` on the lab hosts of `kubeforge lab up`, then `kubectl get
// nodes` with the kubeconfig apply merged, then apply again (nothing to change). The Kubernetes
// server binaries cannot be downloaded here, so the API server, the kubelets' registration and TLS
// bootstrap and the controllers are STAND-INS (ansible-free-tests/support/stand-in-cluster.ts): the
// recording fake API server behind the control plane's :6443, and a registrar. Everything kubeforge
// does on the hosts and through the API is real.
// Usage: node scripts/demo-cluster.mjs CLUSTER_FILE BUNDLE KUBECONFIG [LAB_BRIDGE]
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import yaml from "js-yaml";
import { startStandIns } from "../dist/ansible-free-tests/support/stand-in-cluster.js";

const [clusterFile, bundle, kubeconfig, bridge = "kfbr0"] = process.argv.slice(2);
if (!clusterFile || !bundle || !kubeconfig) {
  process.stderr.write("usage: node scripts/demo-cluster.mjs CLUSTER_FILE BUNDLE KUBECONFIG [LAB_BRIDGE]\n");
  process.exit(2);
}
const lab = JSON.parse(readFileSync(`/var/lib/kubeforge-lab/run-${bridge}/lab.json`, "utf8"));
const cluster = yaml.load(readFileSync(clusterFile, "utf8"));
const [a, b] = cluster.spec.kubernetes.networking.podSubnet.split(".");
const nodes = cluster.spec.hosts.map((host, i) => ({
  name: host.name,
  labHost: lab.hosts.find((entry) => entry.address === host.address).name,
  address: host.address,
  role: host.role,
  podCIDR: `${a}.${b}.${i}.0/24`,
}));
const env = { ...process.env, KUBECONFIG: kubeconfig };

/** The CLI, asynchronously: the fake API server answers from this process meanwhile. */
function run(command, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: "inherit", env });
    child.on("error", reject);
    child.on("close", (code) =>
      code === 0 ? resolve() : reject(new Error(`${command} ${args.join(" ")}: exit ${code}`)),
    );
  });
}

const stateDir = process.env.KUBEFORGE_STATE_DIR ?? join(homedir(), ".kubeforge");
const standIns = await startStandIns({
  lab,
  clusterDir: join(stateDir, cluster.metadata.name),
  nodes,
  version: cluster.spec.kubernetes.version,
  endpoint: `https://${cluster.metadata.name}-api:6443`,
  port: 16443,
});
try {
  const apply = [
    "apply",
    "-f",
    clusterFile,
    "--bundle",
    bundle,
    "--ignore-preflight-errors",
    "KubeletKernelSettings",
  ];
  await run("node_modules/.bin/kubeforge", apply);
  const context = `kubeforge-${cluster.metadata.name}-admin@kubeforge-${cluster.metadata.name}`;
  process.stdout.write(`\n$ kubectl --context ${context} get nodes -o wide\n`);
  await run("demo-bundle/bin/linux-amd64/kubectl", ["--context", context, "get", "nodes", "-o", "wide"]);
  process.stdout.write("\n$ kubeforge apply (again: a converged cluster changes nothing)\n");
  await run("node_modules/.bin/kubeforge", apply);
} finally {
  await standIns.stop();
}
