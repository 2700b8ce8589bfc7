// The drop-in's directives, transcribed by hand from kubeadm-spec.md §1.6 (kubernetes/release
// packaging), compared with what kubeforge writes.
import { describe, expect, it } from "vitest";
import { KUBEADM_DROP_IN, KUBELET_SERVICE } from "./kubelet-unit.js";

const directives = (unit: string) => unit.split("\n").filter((line) => line && !line.startsWith("#"));

describe("kubelet systemd unit", () => {
  it("has kubeadm's drop-in, directive for directive", () => {
    expect(directives(KUBEADM_DROP_IN)).toEqual([
      "[Service]",
      'Environment="KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf"',
      'Environment="KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml"',
      "EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env",
      "EnvironmentFile=-/etc/default/kubelet",
      "ExecStart=",
      "ExecStart=/usr/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS",
    ]);
  });

  it("restarts the kubelet forever, as the packages' kubelet.service does (it crash-loops until init writes its config)", () => {
    const lines = directives(KUBELET_SERVICE);
    expect(lines).toEqual(
      expect.arrayContaining([
        "ExecStart=/usr/bin/kubelet",
        "Restart=always",
        "StartLimitInterval=0",
        "RestartSec=10",
      ]),
    );
    expect(lines).toContain("WantedBy=multi-user.target");
  });
});
