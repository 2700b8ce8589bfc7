// Where kubeforge puts things on a node, in one place: prepare writes them, preflight reads them,
// reset removes exactly these (and kubeadm's own paths), so the three can never disagree.

/** kubeforge's record of what prepare installed (versions, checksums, sizes): makes a no-op re-run cheap. */
export const INSTALL_RECORD = "/var/lib/kubeforge/install.json";
/** Temporary files (image archives on their way into containerd); removed after use. */
export const NODE_SCRATCH_DIR = "/var/lib/kubeforge/tmp";
/** kubeforge's own sysctl file, applied with `sysctl -p` (never `sysctl --system`). */
export const SYSCTL_FILE = "/etc/sysctl.d/99-kubeforge.conf";
export const MODULES_FILE = "/etc/modules-load.d/kubeforge.conf";
export const CONTAINERD_CONFIG = "/etc/containerd/config.toml";
export const CONTAINERD_SOCKET = "/run/containerd/containerd.sock";
/** Kubernetes binaries (kubelet, kubectl, crictl) go here, as the upstream packages put them. */
export const BIN_DIR = "/usr/bin";
/** CNI plugins from a bundle's `cni/` directory. */
export const CNI_BIN_DIR = "/opt/cni/bin";
export const CNI_CONFIG_DIR = "/etc/cni/net.d";
/** The pod network config `addons.cni: bridge` writes; reset removes this one and no other. */
export const KUBEFORGE_CNI_CONFIG = "/etc/cni/net.d/10-kubeforge-bridge.conflist";
/** The oneshot unit that puts back, at boot, the routes to the other nodes' pod CIDRs (`addons.cni: bridge`). */
export const POD_ROUTES_UNIT = "/etc/systemd/system/kubeforge-pod-routes.service";
export const KUBELET_UNIT = "/usr/lib/systemd/system/kubelet.service";
export const KUBELET_DROP_IN = "/usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf";
export const KUBERNETES_DIR = "/etc/kubernetes";
export const MANIFESTS_DIR = "/etc/kubernetes/manifests";
export const KUBELET_DIR = "/var/lib/kubelet";
export const ETCD_DATA_DIR = "/var/lib/etcd";
/** containerd namespace the CRI plugin (and so the kubelet) uses. */
export const K8S_NAMESPACE = "k8s.io";
