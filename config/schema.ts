// The cluster file's schema: one TypeBox definition gives the JSON Schema (for editors and
// `kubeforge config schema`), the TypeScript types, the defaults and the README reference.
// Names follow kubeadm's v1beta4 ClusterConfiguration wherever kubeadm has the concept.
import { type Static, type TSchema, Type } from "@sinclair/typebox";

export const API_VERSION = "kubeforge.dev/v1alpha1";
export const KIND = "Cluster";
export const SCHEMA_ID = "https://kubeforge.dev/schemas/cluster-v1alpha1.json";

/** Custom string formats, checked by config/formats.ts. */
export const Format = {
  /** An IPv4/IPv6 address or a DNS name: what SSH can dial. */
  host: "kubeforge-host",
  ip: "kubeforge-ip",
  /** `host` or `host:port`. */
  endpoint: "kubeforge-endpoint",
  /** A subject alternative name: IP address or DNS name, wildcards allowed. */
  san: "kubeforge-san",
  /** One CIDR, or an IPv4 and an IPv6 CIDR separated by a comma (dual-stack, as kubeadm). */
  cidrs: "kubeforge-cidrs",
  /** A Go duration as kubeadm accepts it: `8760h`, `90m`, `1h30m`. */
  duration: "kubeforge-duration",
} as const;

const strict = { additionalProperties: false } as const;

/** DNS-1123 label: metadata.name becomes a directory and a DNS name. */
const DNS_LABEL = "^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$";
/** DNS-1123 subdomain: the rule for Kubernetes node names. */
const DNS_SUBDOMAIN = "^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";

function object<P extends Record<string, TSchema>>(properties: P, description: string) {
  return Type.Object(properties, { ...strict, description, default: {} });
}

/** A secret is never written inline: it is read from an environment variable or a file, or asked for. */
function secretRef(description: string) {
  return Type.Object(
    {
      env: Type.Optional(
        Type.String({ minLength: 1, description: "Name of an environment variable holding it." }),
      ),
      file: Type.Optional(
        Type.String({ minLength: 1, description: "File holding it (one trailing newline is removed)." }),
      ),
      prompt: Type.Optional(
        Type.Boolean({ description: "Ask for it on the terminal when it is first needed." }),
      ),
    },
    {
      ...strict,
      secret: true,
      description: `${description} By reference: exactly one of \`env\`, \`file\` or \`prompt: true\`; never inline.`,
    },
  );
}

const Sudo = Type.Object(
  {
    enabled: Type.Optional(
      Type.Boolean({
        description: "Run privileged commands through sudo. Default: when `user` is not root.",
      }),
    ),
    password: Type.Optional(secretRef("sudo password. Omit for passwordless sudo.")),
  },
  { ...strict, description: "How a non-root SSH user gains root." },
);

/** Settings every host inherits; a host may override them in `hosts[].ssh`. */
const sshSettings = {
  user: Type.Optional(Type.String({ minLength: 1, description: "Login user." })),
  keyPath: Type.Optional(
    Type.String({
      minLength: 1,
      description:
        "Private key file. Without it, the ssh-agent (`SSH_AUTH_SOCK`) and then `~/.ssh/id_ed25519`, `~/.ssh/id_ecdsa`, `~/.ssh/id_rsa` are tried, as OpenSSH does.",
    }),
  ),
  passphrase: Type.Optional(secretRef("Passphrase of `keyPath`.")),
  password: Type.Optional(secretRef("Password for password authentication.")),
  knownHostsPath: Type.Optional(
    Type.String({
      minLength: 1,
      description: "known_hosts file that host keys are verified against (never skipped).",
    }),
  ),
  sudo: Type.Optional(Sudo),
};

const Ssh = Type.Object(
  {
    ...sshSettings,
    user: Type.String({ minLength: 1, default: "root", description: "Login user." }),
    port: Type.Integer({ minimum: 1, maximum: 65535, default: 22, description: "SSH port." }),
    knownHostsPath: Type.String({
      minLength: 1,
      default: "~/.ssh/known_hosts",
      description: "known_hosts file that host keys are verified against (never skipped).",
    }),
  },
  { ...strict, default: {}, description: "SSH settings shared by every host." },
);

const Taint = Type.Object(
  {
    key: Type.String({ minLength: 1, maxLength: 316, description: "Taint key." }),
    value: Type.Optional(Type.String({ maxLength: 63, description: "Taint value." })),
    effect: Type.Union(
      [Type.Literal("NoSchedule"), Type.Literal("PreferNoSchedule"), Type.Literal("NoExecute")],
      {
        description: "Taint effect.",
      },
    ),
  },
  { ...strict, description: "A Node taint, as in the Kubernetes API." },
);

export const ROLES = ["control-plane", "worker"] as const;

const HostSchema = Type.Object(
  {
    name: Type.String({
      pattern: DNS_SUBDOMAIN,
      description: "Node name: a lowercase DNS-1123 subdomain, unique in the cluster.",
    }),
    address: Type.String({ format: Format.host, description: "Address SSH dials: IP address or hostname." }),
    privateAddress: Type.Optional(
      Type.String({
        format: Format.ip,
        description:
          "Node IP: the kubelet's `--node-ip`, the API server's advertise address and etcd's URLs. Set it when it differs from `address` (NAT, clouds, Vagrant). Default: `address` when that is an IP.",
      }),
    ),
    port: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 65535,
        description: "SSH port of this host. Default: `spec.ssh.port`.",
      }),
    ),
    role: Type.Union(
      ROLES.map((role) => Type.Literal(role)),
      { description: "`control-plane` or `worker`." },
    ),
    labels: Type.Record(Type.String(), Type.String({ maxLength: 63 }), {
      default: {},
      description: "Node labels, applied through the API after the node registers.",
    }),
    taints: Type.Array(Taint, { default: [], description: "Node taints, applied after the node registers." }),
    ssh: Type.Optional(
      Type.Object(sshSettings, { ...strict, description: "Overrides of `spec.ssh` for this host." }),
    ),
  },
  { ...strict, description: "A machine of the cluster." },
);

const Arg = Type.Object(
  {
    name: Type.String({
      pattern: "^[a-zA-Z0-9][a-zA-Z0-9-]*$",
      description: "Flag name without leading dashes.",
    }),
    value: Type.String({ description: "Flag value." }),
  },
  { ...strict, description: "One command-line flag, as kubeadm v1beta4 `extraArgs`." },
);

const EnvVar = Type.Object(
  {
    name: Type.String({ minLength: 1, description: "Variable name." }),
    value: Type.String({ description: "Variable value." }),
  },
  { ...strict, description: "An environment variable of the component's container." },
);

const HostPathMount = Type.Object(
  {
    name: Type.String({ pattern: DNS_LABEL, description: "Volume name." }),
    hostPath: Type.String({ pattern: "^/", description: "Path on the node." }),
    mountPath: Type.String({ pattern: "^/", description: "Path in the container." }),
    readOnly: Type.Boolean({ default: false, description: "Mount read-only." }),
    pathType: Type.Optional(
      Type.Union(
        [
          "",
          "DirectoryOrCreate",
          "Directory",
          "FileOrCreate",
          "File",
          "Socket",
          "CharDevice",
          "BlockDevice",
        ].map((type) => Type.Literal(type)),
        { description: "Kubernetes hostPath type." },
      ),
    ),
  },
  { ...strict, description: "A hostPath volume mounted into the component, as kubeadm's `extraVolumes`." },
);

function controlPlaneComponent<E extends Record<string, TSchema>>(description: string, extra: E = {} as E) {
  return object(
    {
      ...extra,
      extraArgs: Type.Array(Arg, {
        default: [],
        description: "Extra flags; a name may repeat. Overrides kubeforge's flag of the same name.",
      }),
      extraEnvs: Type.Array(EnvVar, { default: [], description: "Extra environment variables." }),
      extraVolumes: Type.Array(HostPathMount, { default: [], description: "Extra hostPath volumes." }),
    },
    description,
  );
}

const Kubernetes = Type.Object(
  {
    version: Type.String({
      pattern: "^v\\d+\\.\\d+\\.\\d+$",
      description: "Kubernetes version, `vMAJOR.MINOR.PATCH`, of a supported minor (see below).",
    }),
    clusterName: Type.String({
      pattern: DNS_SUBDOMAIN,
      default: "kubernetes",
      description: "Cluster name in kubeconfigs, as kubeadm's `clusterName`.",
    }),
    controlPlaneEndpoint: Type.Optional(
      Type.String({
        format: Format.endpoint,
        description:
          "Stable `host[:port]` for the API server. Default: the name `<metadata.name>-api`, written to every node's /etc/hosts and pointing at the first control plane, so more control planes can join later without re-signing certificates.",
      }),
    ),
    imageRepository: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          "Registry (and path) of every image: control plane, kube-proxy, pause, etcd and CoreDNS. Default: kubeadm's for the version, `k8s.gcr.io` for v1.21 and `registry.k8s.io` later (which also serves the old images).",
      }),
    ),
    networking: object(
      {
        podSubnet: Type.String({
          format: Format.cidrs,
          default: "198.19.0.0/17",
          description:
            "Pod addresses (a /24 per node for IPv4). Default inside 198.18.0.0/15 (RFC 2544), which never collides with the RFC 1918 ranges of company networks and VPNs.",
        }),
        serviceSubnet: Type.String({
          format: Format.cidrs,
          default: "198.19.128.0/20",
          description:
            "Service ClusterIPs: the API's `kubernetes` Service gets the 1st address, cluster DNS the 10th. Between /12 and /28 for IPv4 (/108 to /124 for IPv6), as kubeadm allows.",
        }),
        dnsDomain: Type.String({
          pattern: DNS_SUBDOMAIN,
          default: "cluster.local",
          description: "Cluster DNS domain.",
        }),
      },
      "Cluster networks, as kubeadm's `networking`.",
    ),
    apiServer: controlPlaneComponent("kube-apiserver settings.", {
      certSANs: Type.Array(Type.String({ format: Format.san }), {
        default: [],
        description: "Extra subject alternative names (IPs or DNS names) for the API server certificate.",
      }),
      bindPort: Type.Integer({ minimum: 1, maximum: 65535, default: 6443, description: "API server port." }),
    }),
    controllerManager: controlPlaneComponent("kube-controller-manager settings."),
    scheduler: controlPlaneComponent("kube-scheduler settings."),
    etcd: object(
      {
        local: object(
          {
            dataDir: Type.String({
              pattern: "^/",
              default: "/var/lib/etcd",
              description: "etcd data directory.",
            }),
            imageRepository: Type.Optional(
              Type.String({
                minLength: 1,
                description: "Registry of the etcd image. Default: `spec.kubernetes.imageRepository`.",
              }),
            ),
            imageTag: Type.Optional(
              Type.String({
                minLength: 1,
                description: "etcd image tag. Default: kubeadm's for the version.",
              }),
            ),
            extraArgs: Type.Array(Arg, { default: [], description: "Extra etcd flags." }),
            extraEnvs: Type.Array(EnvVar, { default: [], description: "Extra environment variables." }),
            serverCertSANs: Type.Array(Type.String({ format: Format.san }), {
              default: [],
              description: "Extra SANs for etcd's server certificate.",
            }),
            peerCertSANs: Type.Array(Type.String({ format: Format.san }), {
              default: [],
              description: "Extra SANs for etcd's peer certificate.",
            }),
          },
          "Stacked etcd, one member per control-plane node, as kubeadm's `etcd.local`.",
        ),
      },
      "etcd settings.",
    ),
    certificateValidityPeriod: Type.String({
      format: Format.duration,
      default: "8760h",
      description: "Validity of leaf certificates.",
    }),
    caCertificateValidityPeriod: Type.String({
      format: Format.duration,
      default: "87600h",
      description: "Validity of CA certificates.",
    }),
    encryptionAlgorithm: Type.Union(
      ["RSA-2048", "RSA-3072", "RSA-4096", "ECDSA-P256"].map((name) => Type.Literal(name)),
      { default: "RSA-2048", description: "Key type of every certificate and of the service-account key." },
    ),
    featureGates: Type.Record(Type.String({ pattern: "^[A-Za-z0-9]+$" }), Type.Boolean(), {
      default: {},
      description: "kubeadm feature gates to apply to the control plane.",
    }),
  },
  { ...strict, description: "What to run: the Kubernetes version and the cluster configuration." },
);

const Artifacts = object(
  {
    source: Type.Union([Type.Literal("online"), Type.Literal("bundle")], {
      default: "online",
      description:
        "`online`: download binaries and pull images. `bundle`: take everything from `bundle` (air-gapped).",
    }),
    bundle: Type.Optional(
      Type.String({ minLength: 1, description: "Offline bundle file (`kubeforge bundle create`)." }),
    ),
  },
  "Where binaries, images and OS packages come from.",
);

const Addons = object(
  {
    cni: Type.Union([Type.Literal("bridge"), Type.Literal("none")], {
      default: "bridge",
      description:
        "Pod network. `bridge`: a bridge + host-local config per node with routes between nodes (no images needed). `none`: bring your own.",
    }),
    kubeProxy: object(
      {
        enabled: Type.Boolean({ default: true, description: "Deploy kube-proxy." }),
        mode: Type.Union([Type.Literal("iptables"), Type.Literal("nftables"), Type.Literal("ipvs")], {
          default: "iptables",
          description: "kube-proxy mode.",
        }),
      },
      "kube-proxy, as kubeadm's `addon/kube-proxy`.",
    ),
    coreDNS: object(
      {
        enabled: Type.Boolean({ default: true, description: "Deploy CoreDNS." }),
        imageRepository: Type.Optional(
          Type.String({
            minLength: 1,
            description:
              "Registry of the CoreDNS image, `<imageRepository>/coredns:<tag>`. Default: `spec.kubernetes.imageRepository`; kubeadm's default registry holds it as `coredns/coredns`.",
          }),
        ),
        imageTag: Type.Optional(
          Type.String({
            minLength: 1,
            description: "CoreDNS image tag. Default: kubeadm's for the version.",
          }),
        ),
      },
      "CoreDNS, as kubeadm's `addon/coredns`.",
    ),
  },
  "Cluster add-ons.",
);

const Options = object(
  {
    concurrency: Type.Integer({
      minimum: 1,
      maximum: 1000,
      default: 30,
      description: "How many hosts a phase works on at once (`--concurrency` overrides it).",
    }),
  },
  "How kubeforge runs.",
);

export const ClusterSchema = Type.Object(
  {
    apiVersion: Type.Literal(API_VERSION, { description: `Always \`${API_VERSION}\`.` }),
    kind: Type.Literal(KIND, { description: `Always \`${KIND}\`.` }),
    metadata: Type.Object(
      {
        name: Type.String({
          pattern: DNS_LABEL,
          description:
            "Cluster name in kubeforge: a DNS-1123 label. Names the state directory `~/.kubeforge/<name>`.",
        }),
      },
      { ...strict, description: "Identity of this cluster file." },
    ),
    spec: Type.Object(
      {
        hosts: Type.Array(HostSchema, {
          minItems: 1,
          description: "The machines, at least one control plane.",
        }),
        ssh: Ssh,
        kubernetes: Kubernetes,
        artifacts: Artifacts,
        addons: Addons,
        options: Options,
      },
      { ...strict, description: "The cluster." },
    ),
  },
  {
    ...strict,
    $id: SCHEMA_ID,
    title: "kubeforge Cluster",
    description: "A kubeforge cluster file.",
  },
);

export type ClusterFile = Static<typeof ClusterSchema>;
export type HostSpec = Static<typeof HostSchema>;
export type SecretReference = Static<ReturnType<typeof secretRef>>;
export type Role = (typeof ROLES)[number];
