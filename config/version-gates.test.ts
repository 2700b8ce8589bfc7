import { describe, expect, it } from "vitest";
import { identityGates, kubeadmConfigGates } from "./version-gates.js";

describe("identityGates", () => {
  it("v1.21: system:masters everywhere, no super-admin.conf, no kubelet local mode gate", () => {
    expect(identityGates("v1.21.14")).toEqual({
      adminOrganization: "system:masters",
      superAdminConf: false,
      apiserverKubeletClientOrganizations: ["system:masters"],
      apiserverKubeletClientRoleBinding: false,
      etcdHealthcheckClientOrganizations: ["system:masters"],
      apiserverEtcdClientOrganizations: ["system:masters"],
      controlPlaneKubeletLocalMode: undefined,
    });
  });

  it("v1.30: kubeadm:cluster-admins and super-admin.conf; no O on the etcd clients", () => {
    expect(identityGates("v1.30.0")).toEqual({
      adminOrganization: "kubeadm:cluster-admins",
      superAdminConf: true,
      apiserverKubeletClientOrganizations: ["kubeadm:cluster-admins"],
      apiserverKubeletClientRoleBinding: false,
      etcdHealthcheckClientOrganizations: [],
      apiserverEtcdClientOrganizations: [],
      controlPlaneKubeletLocalMode: undefined,
    });
  });

  it("v1.34: apiserver-kubelet-client loses its O from v1.34.8 on, bound by a ClusterRoleBinding instead", () => {
    expect(identityGates("v1.34.7")).toMatchObject({
      apiserverKubeletClientOrganizations: ["kubeadm:cluster-admins"],
      apiserverKubeletClientRoleBinding: false,
      controlPlaneKubeletLocalMode: true,
    });
    expect(identityGates("v1.34.8")).toMatchObject({
      adminOrganization: "kubeadm:cluster-admins",
      apiserverKubeletClientOrganizations: [],
      apiserverKubeletClientRoleBinding: true,
    });
  });

  it("returns copies, so a caller cannot change the table", () => {
    identityGates("v1.21.1").apiserverKubeletClientOrganizations.push("x");
    expect(identityGates("v1.21.1").apiserverKubeletClientOrganizations).toEqual(["system:masters"]);
  });
});

describe("kubeadmConfigGates", () => {
  it("v1beta2 with ClusterStatus on v1.21, v1beta3 on v1.30, v1beta4 with list extraArgs on v1.34", () => {
    expect(kubeadmConfigGates("v1.21.14")).toMatchObject({
      apiVersion: "kubeadm.k8s.io/v1beta2",
      clusterStatus: true,
      extraArgs: "map",
      dnsType: true,
    });
    expect(kubeadmConfigGates("v1.30.4")).toMatchObject({
      apiVersion: "kubeadm.k8s.io/v1beta3",
      clusterStatus: false,
      extraArgs: "map",
      timeoutForControlPlane: true,
    });
    expect(kubeadmConfigGates("v1.34.8")).toMatchObject({
      apiVersion: "kubeadm.k8s.io/v1beta4",
      extraArgs: "list",
      v1beta4Fields: true,
      timeoutForControlPlane: false,
    });
  });
});
