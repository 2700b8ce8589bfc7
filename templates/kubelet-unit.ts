// The kubelet's systemd unit and kubeadm's drop-in, as the Kubernetes DEB/RPM packages ship them
// (kubernetes/release packaging; kubeadm-spec.md §1.6): kubeadm never writes these, the packages do,
// and kubeforge installs the kubelet without packages, so it writes them itself, byte for byte the
// same in everything systemd reads.
import { KUBELET_DIR, KUBERNETES_DIR } from "../node/paths.js";

export const KUBELET_SERVICE = `[Unit]
Description=kubelet: The Kubernetes Node Agent
Documentation=https://kubernetes.io/docs/
Wants=network-online.target
After=network-online.target

[Service]
ExecStart=/usr/bin/kubelet
Restart=always
StartLimitInterval=0
RestartSec=10

[Install]
WantedBy=multi-user.target
`;

export const KUBEADM_DROP_IN = `# Note: This dropin only works with kubeadm and kubelet v1.11+
[Service]
Environment="KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=${KUBERNETES_DIR}/bootstrap-kubelet.conf --kubeconfig=${KUBERNETES_DIR}/kubelet.conf"
Environment="KUBELET_CONFIG_ARGS=--config=${KUBELET_DIR}/config.yaml"
# This is a file that "kubeadm init" and "kubeadm join" generates at runtime, populating the KUBELET_KUBEADM_ARGS variable dynamically
EnvironmentFile=-${KUBELET_DIR}/kubeadm-flags.env
# This is a file that the user can use for overrides of the kubelet args as a last resort. Preferably, the user should use
# the .NodeRegistration.KubeletExtraArgs object in the configuration files instead. KUBELET_EXTRA_ARGS should be sourced from this file.
EnvironmentFile=-/etc/default/kubelet
ExecStart=
ExecStart=/usr/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS
`;
