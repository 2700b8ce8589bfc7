// The objects `kubeadm init` creates in its addon phase, as pure builders: CoreDNS and kube-proxy,
// per supported version, every version difference from config/version-gates.ts addonGates.
//
// Sources (kubernetes/kubernetes cmd/kubeadm/app, read through the code index; what a file's stored
// copy did not show for a minor is pinned by the PR named in version-gates.ts):
// - phases/addons/proxy/manifests.go: ConfigMap kube-proxy (label app=kube-proxy; kubeconfig.conf
//   with the service account's CA and token, server = the control-plane endpoint URL; config.conf),
//   DaemonSet kube-proxy (privileged, hostNetwork, tolerates everything, system-node-critical).
//   The stored current copy asks for NET_ADMIN/SYS_MODULE instead of privileged, in YAML a tab makes
//   invalid; kubernetes/kubeadm#2948 (unprivileged kube-proxy) is still open, so every supported
//   minor is taken as privileged (unverified for v1.34).
// - phases/addons/proxy/proxy.go: ServiceAccount kube-proxy, ClusterRoleBinding kubeadm:node-proxier
//   (→ system:node-proxier), Role + RoleBinding kube-proxy (get that ConfigMap; the default-node-token
//   group). The ConfigMap is signed (kubeadm.kubernetes.io/component-config.hash) unless the
//   KubeProxyConfiguration was user-supplied.
// - componentconfigs/kubeproxy.go Default: bindAddress 0.0.0.0 (:: for an IPv6 advertise address),
//   clusterCIDR = podSubnet, clientConnection.kubeconfig; v1.21 also passes IPv6DualStack on.
// - phases/addons/dns/manifests.go + dns.go: ConfigMap coredns (Corefile), ClusterRole and
//   ClusterRoleBinding system:coredns, ServiceAccount coredns, Deployment coredns (2 replicas),
//   Service kube-dns at the 10th service address (constants GetDNSIP).
// Mapping from the cluster file: addons.*.enabled (off: no objects, as kubeadm's proxy.disabled and
// dns.disabled), addons.kubeProxy.mode (`iptables`, kube-proxy's default on Linux in every supported
// minor, is written as kubeadm's own default config, empty mode and signed; `ipvs`/`nftables` as a
// user-supplied KubeProxyConfiguration would be, unsigned), the images as config/images.ts names them,
// networking (podSubnet, serviceSubnet, dnsDomain), featureGates.
// Left out: the HTTP(S)_PROXY variables kubeadm copies from its own environment into the kube-proxy
// container (the workstation's environment is not a node's), the Service's `resourceVersion: "0"`
// (a detail of kubeadm's create-or-update request, not of the object), and Go's omitempty drops
// `readOnly: false` from the DaemonSet's volume mount, as the API stores it.
import { pkiInputs } from "../certs/specs.js";
import { clusterImages } from "../config/images.js";
import type { ClusterFile } from "../config/schema.js";
import { type AddonGates, addonGates, type CoreDNSGates, staticPodGates } from "../config/version-gates.js";
import { clusterDNSIP } from "../templates/kubelet-config.js";
import { InternalError } from "../workflow/errors.js";
import {
  type ApiObject,
  BOOTSTRAPPERS_GROUP,
  configMap,
  configMapChecksum,
  configMapReader,
  goYaml,
  group,
  HASH_ANNOTATION,
  KUBE_SYSTEM,
  RBAC,
  RBAC_V1,
} from "./objects.js";

export interface AddonOptions {
  /**
   * The nodes are containers (as in kind): kube-proxy must leave nf_conntrack_max alone, which a
   * container cannot write (`conntrack.maxPerCore: 0`, as kind configures it).
   */
  containerHosts: boolean;
}

/** Each add-on's objects in the order kubeadm creates them; empty when the add-on is disabled. */
export interface AddonObjects {
  kubeProxy: ApiObject[];
  coreDns: ApiObject[];
}

const KUBE_PROXY = "kube-proxy";
const COREDNS = "coredns";
const KUBE_DNS = "kube-dns";
const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";
const KUBE_PROXY_DIR = "/var/lib/kube-proxy";
const LINUX = { "kubernetes.io/os": "linux" };

function image(cluster: ClusterFile, component: string): string {
  const found = clusterImages(cluster).find((entry) => entry.component === component);
  if (!found) throw new InternalError(`no ${component} image for an enabled add-on`);
  return found.ref;
}

function serviceAccount(name: string): ApiObject {
  return { apiVersion: "v1", kind: "ServiceAccount", metadata: { name, namespace: KUBE_SYSTEM } };
}

/** A ClusterRoleBinding of a kube-system ServiceAccount (subjects of that kind carry no apiGroup). */
function serviceAccountBinding(name: string, clusterRole: string, account: string): ApiObject {
  return {
    apiVersion: RBAC_V1,
    kind: "ClusterRoleBinding",
    metadata: { name },
    roleRef: { apiGroup: RBAC, kind: "ClusterRole", name: clusterRole },
    subjects: [{ kind: "ServiceAccount", name: account, namespace: KUBE_SYSTEM }],
  };
}

type ProxyConfig = Record<string, unknown> & {
  clientConnection: Record<string, unknown>;
  conntrack: Record<string, unknown>;
};

/** config.conf, and whether it is kubeadm's own default (signed) rather than a user-supplied one. */
function kubeProxyConfig(
  cluster: ClusterFile,
  gates: AddonGates,
  options: AddonOptions,
): { text: string; kubeadmDefault: boolean } {
  const k8s = cluster.spec.kubernetes;
  const { mode } = cluster.spec.addons.kubeProxy;
  const advertise = pkiInputs(cluster).controlPlanes[0];
  if (!advertise) throw new InternalError("a validated cluster file has a control plane");
  const config = structuredClone(gates.kubeProxyConfigZeroValues) as ProxyConfig;
  config.apiVersion = "kubeproxy.config.k8s.io/v1alpha1";
  config.kind = "KubeProxyConfiguration";
  config.bindAddress = advertise.ip.includes(":") ? "::" : "0.0.0.0";
  config.clientConnection.kubeconfig = `${KUBE_PROXY_DIR}/kubeconfig.conf`;
  config.clusterCIDR = k8s.networking.podSubnet;
  const passed = staticPodGates(k8s.version).componentFeatureGates.filter((name) => name in k8s.featureGates);
  if (passed.length > 0) {
    config.featureGates = Object.fromEntries(passed.map((name) => [name, k8s.featureGates[name]]));
  }
  if (mode !== "iptables") config.mode = mode;
  if (options.containerHosts) config.conntrack.maxPerCore = 0;
  // kubeadm's printer writes the config under a `|-` block: no trailing newline.
  return { text: goYaml(config).trimEnd(), kubeadmDefault: mode === "iptables" && !options.containerHosts };
}

/** kubeconfig.conf, as manifests.go's template writes it. */
function kubeProxyKubeconfig(server: string): string {
  return [
    "apiVersion: v1",
    "kind: Config",
    "clusters:",
    "- cluster:",
    `    certificate-authority: ${SERVICE_ACCOUNT_DIR}/ca.crt`,
    `    server: ${server}`,
    "  name: default",
    "contexts:",
    "- context:",
    "    cluster: default",
    "    namespace: default",
    "    user: default",
    "  name: default",
    "current-context: default",
    "users:",
    "- name: default",
    "  user:",
    `    tokenFile: ${SERVICE_ACCOUNT_DIR}/token`,
  ].join("\n");
}

function kubeProxyDaemonSet(cluster: ClusterFile): ApiObject {
  const labels = { "k8s-app": KUBE_PROXY };
  return {
    apiVersion: "apps/v1",
    kind: "DaemonSet",
    metadata: { name: KUBE_PROXY, namespace: KUBE_SYSTEM, labels },
    spec: {
      selector: { matchLabels: labels },
      updateStrategy: { type: "RollingUpdate" },
      template: {
        metadata: { labels },
        spec: {
          priorityClassName: "system-node-critical",
          containers: [
            {
              name: KUBE_PROXY,
              image: image(cluster, KUBE_PROXY),
              imagePullPolicy: "IfNotPresent",
              command: [
                "/usr/local/bin/kube-proxy",
                `--config=${KUBE_PROXY_DIR}/config.conf`,
                "--hostname-override=$(NODE_NAME)",
              ],
              securityContext: { privileged: true },
              volumeMounts: [
                { mountPath: KUBE_PROXY_DIR, name: KUBE_PROXY },
                { mountPath: "/run/xtables.lock", name: "xtables-lock" },
                { mountPath: "/lib/modules", name: "lib-modules", readOnly: true },
              ],
              env: [{ name: "NODE_NAME", valueFrom: { fieldRef: { fieldPath: "spec.nodeName" } } }],
            },
          ],
          hostNetwork: true,
          serviceAccountName: KUBE_PROXY,
          volumes: [
            { name: KUBE_PROXY, configMap: { name: KUBE_PROXY } },
            { name: "xtables-lock", hostPath: { path: "/run/xtables.lock", type: "FileOrCreate" } },
            { name: "lib-modules", hostPath: { path: "/lib/modules" } },
          ],
          tolerations: [{ key: "CriticalAddonsOnly", operator: "Exists" }, { operator: "Exists" }],
          nodeSelector: LINUX,
        },
      },
    },
  };
}

function kubeProxyObjects(cluster: ClusterFile, gates: AddonGates, options: AddonOptions): ApiObject[] {
  const { text, kubeadmDefault } = kubeProxyConfig(cluster, gates, options);
  const data = {
    "config.conf": text,
    "kubeconfig.conf": kubeProxyKubeconfig(pkiInputs(cluster).endpoint.url),
  };
  const proxyConfigMap = configMap(KUBE_SYSTEM, KUBE_PROXY, data);
  proxyConfigMap.metadata.labels = { app: KUBE_PROXY };
  if (kubeadmDefault) proxyConfigMap.metadata.annotations = { [HASH_ANNOTATION]: configMapChecksum(data) };
  const account = serviceAccount(KUBE_PROXY);
  const workload = [proxyConfigMap, kubeProxyDaemonSet(cluster)];
  return [
    ...(gates.kubeProxyOrder === "service-account-first" ? [account, ...workload] : [...workload, account]),
    serviceAccountBinding("kubeadm:node-proxier", "system:node-proxier", KUBE_PROXY),
    ...configMapReader(KUBE_SYSTEM, KUBE_PROXY, KUBE_PROXY, [group(BOOTSTRAPPERS_GROUP)]),
  ];
}

/** The Corefile of dns/manifests.go for the cluster domain. */
function corefile(domain: string, gates: CoreDNSGates): string {
  const cache = gates.cacheDisablesClusterDomain
    ? ["    cache 30 {", `       disable success ${domain}`, `       disable denial ${domain}`, "    }"]
    : ["    cache 30"];
  return [
    ".:53 {",
    "    errors",
    "    health {",
    "       lameduck 5s",
    "    }",
    "    ready",
    `    kubernetes ${domain} in-addr.arpa ip6.arpa {`,
    "       pods insecure",
    "       fallthrough in-addr.arpa ip6.arpa",
    "       ttl 30",
    "    }",
    "    prometheus :9153",
    "    forward . /etc/resolv.conf {",
    "       max_concurrent 1000",
    "    }",
    ...cache,
    "    loop",
    "    reload",
    "    loadbalance",
    "}",
    "",
  ].join("\n");
}

function coreDnsClusterRole(gates: CoreDNSGates): ApiObject {
  const listWatch = ["list", "watch"];
  return {
    apiVersion: RBAC_V1,
    kind: "ClusterRole",
    metadata: { name: "system:coredns" },
    rules: [
      { apiGroups: [""], resources: ["endpoints", "services", "pods", "namespaces"], verbs: listWatch },
      ...(gates.clusterRoleNodesGet ? [{ apiGroups: [""], resources: ["nodes"], verbs: ["get"] }] : []),
      ...(gates.clusterRoleEndpointSlices
        ? [{ apiGroups: ["discovery.k8s.io"], resources: ["endpointslices"], verbs: listWatch }]
        : []),
    ],
  };
}

function coreDnsDeployment(cluster: ClusterFile, gates: CoreDNSGates): ApiObject {
  const labels = { "k8s-app": KUBE_DNS };
  const probePorts = gates.namedProbePorts
    ? { liveness: "liveness-probe", readiness: "readiness-probe" }
    : { liveness: 8080, readiness: 8181 };
  const containerPort = (port: number, name: string, protocol: "UDP" | "TCP") => ({
    containerPort: port,
    name,
    protocol,
  });
  const affinity = {
    podAntiAffinity: {
      preferredDuringSchedulingIgnoredDuringExecution: [
        {
          weight: 100,
          podAffinityTerm: {
            labelSelector: { matchExpressions: [{ key: "k8s-app", operator: "In", values: [KUBE_DNS] }] },
            topologyKey: "kubernetes.io/hostname",
          },
        },
      ],
    },
  };
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: COREDNS, namespace: KUBE_SYSTEM, labels },
    spec: {
      replicas: 2,
      strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 1 } },
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: {
          priorityClassName: "system-cluster-critical",
          serviceAccountName: COREDNS,
          ...(gates.podAntiAffinity && { affinity }),
          tolerations: [
            { key: "CriticalAddonsOnly", operator: "Exists" },
            ...gates.controlPlaneTolerations.map((key) => ({ key, effect: "NoSchedule" })),
          ],
          nodeSelector: LINUX,
          containers: [
            {
              name: COREDNS,
              image: image(cluster, COREDNS),
              imagePullPolicy: "IfNotPresent",
              resources: { limits: { memory: "170Mi" }, requests: { cpu: "100m", memory: "70Mi" } },
              args: ["-conf", "/etc/coredns/Corefile"],
              volumeMounts: [{ name: "config-volume", mountPath: "/etc/coredns", readOnly: true }],
              ports: [
                containerPort(53, "dns", "UDP"),
                containerPort(53, "dns-tcp", "TCP"),
                containerPort(9153, "metrics", "TCP"),
                ...(gates.namedProbePorts
                  ? [
                      containerPort(8080, "liveness-probe", "TCP"),
                      containerPort(8181, "readiness-probe", "TCP"),
                    ]
                  : []),
              ],
              livenessProbe: {
                httpGet: { path: "/health", port: probePorts.liveness, scheme: "HTTP" },
                initialDelaySeconds: 60,
                timeoutSeconds: 5,
                successThreshold: 1,
                failureThreshold: 5,
              },
              readinessProbe: { httpGet: { path: "/ready", port: probePorts.readiness, scheme: "HTTP" } },
              securityContext: {
                allowPrivilegeEscalation: false,
                capabilities: { add: ["NET_BIND_SERVICE"], drop: [gates.dropCapability] },
                readOnlyRootFilesystem: true,
              },
            },
          ],
          dnsPolicy: "Default",
          volumes: [
            {
              name: "config-volume",
              configMap: { name: COREDNS, items: [{ key: "Corefile", path: "Corefile" }] },
            },
          ],
        },
      },
    },
  };
}

function kubeDnsService(cluster: ClusterFile): ApiObject {
  const port = (name: string, number: number, protocol: "UDP" | "TCP") => ({
    name,
    port: number,
    protocol,
    targetPort: number,
  });
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: {
      name: KUBE_DNS,
      namespace: KUBE_SYSTEM,
      labels: {
        "k8s-app": KUBE_DNS,
        "kubernetes.io/cluster-service": "true",
        "kubernetes.io/name": "CoreDNS",
      },
      annotations: { "prometheus.io/port": "9153", "prometheus.io/scrape": "true" },
    },
    spec: {
      clusterIP: clusterDNSIP(cluster.spec.kubernetes.networking.serviceSubnet),
      ports: [port("dns", 53, "UDP"), port("dns-tcp", 53, "TCP"), port("metrics", 9153, "TCP")],
      selector: { "k8s-app": KUBE_DNS },
    },
  };
}

function coreDnsObjects(cluster: ClusterFile, gates: CoreDNSGates): ApiObject[] {
  return [
    configMap(KUBE_SYSTEM, COREDNS, {
      Corefile: corefile(cluster.spec.kubernetes.networking.dnsDomain, gates),
    }),
    coreDnsClusterRole(gates),
    serviceAccountBinding("system:coredns", "system:coredns", COREDNS),
    serviceAccount(COREDNS),
    coreDnsDeployment(cluster, gates),
    kubeDnsService(cluster),
  ];
}

/** The objects kubeadm's addon phase creates for the cluster's enabled add-ons. */
export function addonObjects(cluster: ClusterFile, options: AddonOptions): AddonObjects {
  const gates = addonGates(cluster.spec.kubernetes.version);
  const { kubeProxy, coreDNS } = cluster.spec.addons;
  return {
    kubeProxy: kubeProxy.enabled ? kubeProxyObjects(cluster, gates, options) : [],
    coreDns: coreDNS.enabled ? coreDnsObjects(cluster, gates.coreDNS) : [],
  };
}
