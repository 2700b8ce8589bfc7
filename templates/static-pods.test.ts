import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import yaml from "js-yaml";
import { describe, expect, it } from "vitest";
import type { ClusterFile } from "../config/schema.js";
import { applyDefaults } from "../config/validate.js";
import { staticPodGates } from "../config/version-gates.js";
import {
  type ControlPlaneNode,
  controlPlaneNode,
  etcdAtLeast36,
  STATIC_POD_COMPONENTS,
  type StaticPod,
  staticPods,
} from "./static-pods.js";

const TESTDATA = join(dirname(fileURLToPath(import.meta.url)), "testdata", "static-pods");

/** The example cluster of testdata/static-pods/README.md, with `kubernetes` fields on top. */
function cluster(
  version: string,
  kubernetes: Record<string, unknown> = {},
  host: Record<string, unknown> = {},
) {
  return applyDefaults({
    apiVersion: "kubeforge.dev/v1alpha1",
    kind: "Cluster",
    metadata: { name: "demo" },
    spec: {
      kubernetes: { version, ...kubernetes },
      hosts: [{ name: "cp1", address: "198.18.0.11", role: "control-plane", ...host }],
    },
  }) as ClusterFile;
}

function nodeOf(file: ClusterFile): ControlPlaneNode {
  const [host] = file.spec.hosts;
  if (!host) throw new Error("no host");
  return controlPlaneNode(host);
}

// biome-ignore lint/suspicious/noExplicitAny: assertions walk the parsed YAML freely
type Pod = Record<string, any>;

/**
 * Parses a manifest for a semantic comparison: `metadata.creationTimestamp: null` and `status: {}`
 * are what Go's serializer leaves of unset fields, so they count as absent. Every list (the
 * `command` included) stays ordered.
 */
function parse(text: string): Pod {
  const pod = yaml.load(text) as Pod;
  if (pod.metadata?.creationTimestamp === null) delete pod.metadata.creationTimestamp;
  if (pod.status && Object.keys(pod.status).length === 0) delete pod.status;
  return pod;
}

function render(file: ClusterFile, node = nodeOf(file)): Record<string, Pod> {
  return Object.fromEntries(staticPods(file, node).map((p) => [p.component, parse(p.content)]));
}

function container(pods: Record<string, Pod>, component: string): Pod {
  return pods[component]?.spec.containers[0];
}

function flags(pods: Record<string, Pod>, component: string): string[] {
  return container(pods, component).command;
}

describe("staticPods against kubeadm's manifests, transcribed by hand", () => {
  it.each([
    ["v1.21", "v1.21.14"],
    ["v1.30", "v1.30.14"],
    ["v1.34", "v1.34.2"],
  ])("%s: the four manifests of the example node", (minor, version) => {
    const rendered = staticPods(cluster(version), nodeOf(cluster(version)));
    expect(rendered.map((p) => [p.component, p.path])).toEqual(
      STATIC_POD_COMPONENTS.map((c) => [c, `/etc/kubernetes/manifests/${c}.yaml`]),
    );
    for (const pod of rendered) {
      const golden = readFileSync(join(TESTDATA, minor, `${pod.component}.yaml`), "utf8");
      expect(parse(pod.content), `${minor}/${pod.component}.yaml`).toEqual(parse(golden));
    }
  });
});

describe("staticPods", () => {
  it("renders YAML that parses back to one Pod per file", () => {
    const pods: StaticPod[] = staticPods(cluster("v1.30.4"), nodeOf(cluster("v1.30.4")));
    for (const pod of pods) {
      const docs = yaml.loadAll(pod.content) as Pod[];
      expect(docs).toHaveLength(1);
      expect(docs[0]).toMatchObject({ apiVersion: "v1", kind: "Pod", metadata: { name: pod.component } });
    }
  });

  it("extraArgs: a name replaces kubeadm's flag of that name, a repeated name appends, all sorted", () => {
    const file = cluster("v1.30.4", {
      apiServer: {
        extraArgs: [
          { name: "enable-admission-plugins", value: "NodeRestriction,PodSecurity" },
          { name: "tls-cipher-suites", value: "TLS_AES_128_GCM_SHA256" },
          { name: "audit-log-path", value: "/var/log/b.log" },
          { name: "audit-log-path", value: "/var/log/a.log" },
        ],
      },
      scheduler: { extraArgs: [{ name: "v", value: "4" }] },
    });
    const command = flags(render(file), "kube-apiserver");
    expect(command).toContain("--enable-admission-plugins=NodeRestriction,PodSecurity");
    expect(command).not.toContain("--enable-admission-plugins=NodeRestriction");
    // Both instances, sorted by value (ArgumentsToCommand), at their place among the sorted flags.
    expect(command.slice(0, 5)).toEqual([
      "kube-apiserver",
      "--advertise-address=198.18.0.11",
      "--allow-privileged=true",
      "--audit-log-path=/var/log/a.log",
      "--audit-log-path=/var/log/b.log",
    ]);
    expect(command.at(-1)).toBe("--tls-private-key-file=/etc/kubernetes/pki/apiserver.key");
    expect(command.at(-2)).toBe("--tls-cipher-suites=TLS_AES_128_GCM_SHA256");
    expect(flags(render(file), "kube-scheduler").at(-1)).toBe("--v=4");
  });

  it("extraArgs on etcd: overriding a default drops every default of that name", () => {
    const file = cluster("v1.34.2", {
      etcd: {
        local: {
          extraArgs: [
            { name: "snapshot-count", value: "5000" },
            { name: "quota-backend-bytes", value: "8589934592" },
          ],
        },
      },
    });
    const command = flags(render(file), "etcd");
    expect(command.filter((f) => f.startsWith("--snapshot-count="))).toEqual(["--snapshot-count=5000"]);
    expect(command).toContain("--quota-backend-bytes=8589934592");
  });

  it("a bind-address extraArg moves the probes with it; 0.0.0.0 leaves the host to the pod IP", () => {
    const file = cluster("v1.30.4", {
      controllerManager: { extraArgs: [{ name: "bind-address", value: "0.0.0.0" }] },
      scheduler: { extraArgs: [{ name: "bind-address", value: "198.18.0.11" }] },
    });
    const pods = render(file);
    expect(container(pods, "kube-controller-manager").livenessProbe.httpGet).toEqual({
      path: "/healthz",
      port: 10257,
      scheme: "HTTPS",
    });
    expect(container(pods, "kube-scheduler").startupProbe.httpGet.host).toBe("198.18.0.11");
  });

  it("uses privateAddress, when set, for the advertise address, etcd's URLs and the annotations", () => {
    const file = cluster("v1.30.4", {}, { address: "198.18.5.1", privateAddress: "198.18.0.21" });
    const pods = render(file);
    const api = flags(pods, "kube-apiserver");
    expect(api).toContain("--advertise-address=198.18.0.21");
    expect(pods["kube-apiserver"]?.metadata.annotations).toEqual({
      "kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint": "198.18.0.21:6443",
    });
    expect(container(pods, "kube-apiserver").livenessProbe.httpGet.host).toBe("198.18.0.21");
    const etcd = flags(pods, "etcd");
    expect(etcd).toContain("--listen-client-urls=https://127.0.0.1:2379,https://198.18.0.21:2379");
    expect(etcd).toContain("--initial-cluster=cp1=https://198.18.0.21:2380");
    expect(pods.etcd?.metadata.annotations).toEqual({
      "kubeadm.kubernetes.io/etcd.advertise-client-urls": "https://198.18.0.21:2379",
    });
    expect(JSON.stringify(pods)).not.toContain("198.18.5.1");
  });

  it("refuses a host whose node IP is unknown", () => {
    expect(() =>
      controlPlaneNode({
        name: "cp1",
        address: "cp1.example",
        role: "control-plane",
        labels: {},
        taints: [],
      }),
    ).toThrow(/privateAddress/);
  });

  it("featureGates: kubeadm's own gates never become component flags, except v1.21's IPv6DualStack", () => {
    const gates = { featureGates: { IPv6DualStack: true, PublicKeysECDSA: true } };
    const old = render(cluster("v1.21.14", gates));
    for (const component of ["kube-apiserver", "kube-controller-manager", "kube-scheduler"]) {
      expect(flags(old, component)).toContain("--feature-gates=IPv6DualStack=true");
    }
    expect(flags(old, "etcd").some((f) => f.startsWith("--feature-gates"))).toBe(false);
    const current = render(cluster("v1.30.4", { featureGates: { ControlPlaneKubeletLocalMode: true } }));
    expect(current).toEqual(render(cluster("v1.30.4")));
    expect(() => render(cluster("v1.30.4", { featureGates: { RootlessControlPlane: true } }))).toThrow(
      /RootlessControlPlane/,
    );
  });

  it("component feature gates come through extraArgs, which override v1.21's pass-through", () => {
    const file = cluster("v1.21.14", {
      featureGates: { IPv6DualStack: false },
      apiServer: { extraArgs: [{ name: "feature-gates", value: "EphemeralContainers=true" }] },
    });
    const pods = render(file);
    expect(flags(pods, "kube-apiserver").filter((f) => f.startsWith("--feature-gates"))).toEqual([
      "--feature-gates=EphemeralContainers=true",
    ]);
    expect(flags(pods, "kube-scheduler")).toContain("--feature-gates=IPv6DualStack=false");
  });

  it("a certSANs change does not touch any manifest", () => {
    const before = staticPods(cluster("v1.34.2"), nodeOf(cluster("v1.34.2")));
    const withSans = cluster("v1.34.2", { apiServer: { certSANs: ["api.example.com", "198.18.0.100"] } });
    expect(staticPods(withSans, nodeOf(withSans))).toEqual(before);
  });

  it("extraVolumes: added to their component, sorted; one named like a default replaces it", () => {
    const file = cluster("v1.30.4", {
      apiServer: {
        extraVolumes: [
          {
            name: "audit",
            hostPath: "/var/log/kubernetes",
            mountPath: "/var/log/audit",
            pathType: "DirectoryOrCreate",
          },
          { name: "ca-certs", hostPath: "/etc/pki/tls/certs", mountPath: "/etc/ssl/certs", readOnly: true },
        ],
      },
    });
    const pod = render(file)["kube-apiserver"] as Pod;
    expect(pod.spec.volumes.map((v: Pod) => v.name)).toEqual([
      "audit",
      "ca-certs",
      "etc-ca-certificates",
      "k8s-certs",
      "usr-local-share-ca-certificates",
      "usr-share-ca-certificates",
    ]);
    expect(pod.spec.volumes[0]).toEqual({
      hostPath: { path: "/var/log/kubernetes", type: "DirectoryOrCreate" },
      name: "audit",
    });
    expect(pod.spec.volumes[1]).toEqual({
      hostPath: { path: "/etc/pki/tls/certs", type: "" },
      name: "ca-certs",
    });
    expect(pod.spec.containers[0].volumeMounts.slice(0, 2)).toEqual([
      { mountPath: "/var/log/audit", name: "audit" },
      { mountPath: "/etc/ssl/certs", name: "ca-certs", readOnly: true },
    ]);
  });

  it("mounts the CA directories the node has, by the version's list", () => {
    const rhel = ["/etc/pki", "/etc/pki/ca-trust", "/etc/pki/tls/certs"];
    const names = (version: string) => {
      const file = cluster(version);
      const pod = render(file, controlPlaneNode(file.spec.hosts[0] as never, rhel))[
        "kube-controller-manager"
      ] as Pod;
      return pod.spec.volumes.map((v: Pod) => v.name);
    };
    expect(names("v1.30.4")).toEqual(["ca-certs", "etc-pki", "flexvolume-dir", "k8s-certs", "kubeconfig"]);
    expect(names("v1.34.2")).toEqual([
      "ca-certs",
      "etc-pki-ca-trust",
      "etc-pki-tls-certs",
      "flexvolume-dir",
      "k8s-certs",
      "kubeconfig",
    ]);
  });

  it("v1.34 picks etcd's flags by the etcd image tag, as kubeadm does; v1.30 always the experimental ones", () => {
    const etcdFlags = (version: string, imageTag?: string) =>
      flags(render(cluster(version, imageTag ? { etcd: { local: { imageTag } } } : {})), "etcd").filter((f) =>
        /corrupt|progress|feature-gates/.test(f),
      );
    const experimental = [
      "--experimental-initial-corrupt-check=true",
      "--experimental-watch-progress-notify-interval=5s",
    ];
    expect(etcdFlags("v1.34.2")).toEqual([
      "--feature-gates=InitialCorruptCheck=true",
      "--watch-progress-notify-interval=5s",
    ]);
    expect(etcdFlags("v1.34.2", "3.5.21-0")).toEqual(experimental);
    expect(etcdFlags("v1.30.4", "3.6.5-0")).toEqual(experimental);
    expect(etcdFlags("v1.21.14")).toEqual([]);
    expect([etcdAtLeast36("3.6.0"), etcdAtLeast36("3.6.5-0"), etcdAtLeast36("v3.7.0")]).toEqual([
      true,
      true,
      true,
    ]);
    expect([etcdAtLeast36("3.6.0-rc.1"), etcdAtLeast36("3.5.24-0"), etcdAtLeast36("latest")]).toEqual([
      false,
      false,
      false,
    ]);
  });

  it("IPv6: etcd and the API server use ::1 and bracketed URLs", () => {
    const file = cluster("v1.34.2", {}, { address: "2001:db8::11" });
    const pods = render(file);
    expect(flags(pods, "kube-apiserver")).toContain("--etcd-servers=https://[::1]:2379");
    expect(flags(pods, "etcd")).toContain(
      "--listen-client-urls=https://[::1]:2379,https://[2001:db8::11]:2379",
    );
    expect(flags(pods, "etcd")).toContain("--listen-metrics-urls=http://[::1]:2381");
    expect(container(pods, "etcd").livenessProbe.httpGet.host).toBe("::1");
    expect(pods["kube-apiserver"]?.metadata.annotations).toEqual({
      "kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint": "[2001:db8::11]:6443",
    });
  });

  it("takes etcd-servers from etcd's advertise-client-urls extraArg, and etcd's probe from listen-metrics-urls", () => {
    const file = cluster("v1.34.2", {
      etcd: {
        local: {
          dataDir: "/data/etcd",
          extraArgs: [
            { name: "advertise-client-urls", value: "https://198.18.0.11:2379" },
            { name: "listen-metrics-urls", value: "https://198.18.0.11:2390,http://127.0.0.1:2381" },
          ],
        },
      },
    });
    const pods = render(file);
    expect(flags(pods, "kube-apiserver")).toContain("--etcd-servers=https://198.18.0.11:2379");
    expect(container(pods, "etcd").readinessProbe.httpGet).toEqual({
      host: "198.18.0.11",
      path: "/readyz",
      port: 2390,
      scheme: "HTTPS",
    });
    expect(pods.etcd?.spec.volumes[1]).toEqual({
      hostPath: { path: "/data/etcd", type: "DirectoryOrCreate" },
      name: "etcd-data",
    });
    expect(flags(pods, "etcd")).toContain("--data-dir=/data/etcd");
  });

  it("extraEnvs: merged by name, later wins, sorted; no env field without them", () => {
    const file = cluster("v1.30.4", {
      controllerManager: {
        extraEnvs: [
          { name: "ZONE", value: "a" },
          { name: "GODEBUG", value: "x509sha1=1" },
          { name: "ZONE", value: "b" },
        ],
      },
    });
    const pods = render(file);
    expect(container(pods, "kube-controller-manager").env).toEqual([
      { name: "GODEBUG", value: "x509sha1=1" },
      { name: "ZONE", value: "b" },
    ]);
    expect(container(pods, "kube-apiserver").env).toBeUndefined();
  });

  it("authorization-config replaces kubeadm's authorization-mode", () => {
    const file = cluster("v1.30.4", {
      apiServer: { extraArgs: [{ name: "authorization-config", value: "/etc/kubernetes/authz.yaml" }] },
    });
    expect(flags(render(file), "kube-apiserver").some((f) => f.startsWith("--authorization-mode"))).toBe(
      false,
    );
  });

  it("reads every version difference from the gate table", () => {
    expect(staticPodGates("v1.21.0")).toMatchObject({ apiServerInsecurePort: true, priority: false });
    expect(staticPodGates("v1.34.0")).toMatchObject({
      schedulerProbes: "livez-readyz",
      etcdProbes: "livez-readyz",
    });
  });
});
