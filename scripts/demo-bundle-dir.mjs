// The demo's offline-bundle directory: real Debian 12 packages (containerd, runc, conntrack, socat,
// ethtool, CNI plugins) and Debian's kubectl, plus stand-ins for what these machines cannot
// download — a kubelet that answers --version and its healthz (and forwards a control plane's :6443
// to the recording fake API server of scripts/demo-cluster.mjs) and small images named as the real ones.
// Usage: node scripts/demo-bundle-dir.mjs DIR VERSION IMAGE…
import { buildTestBundleDir } from "../dist/ansible-free-tests/support/bundle-dir.js";

const [dir, kubernetesVersion, ...images] = process.argv.slice(2);
if (!dir || !kubernetesVersion || images.length === 0) {
  process.stderr.write("usage: node scripts/demo-bundle-dir.mjs DIR VERSION IMAGE…\n");
  process.exit(2);
}
await buildTestBundleDir(dir, { kubernetesVersion, images, kubelet: "serving" });
