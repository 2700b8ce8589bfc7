import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import yaml from "js-yaml";
import { describe, expect, it } from "vitest";
import { kubeforge, minimalClusterFile, testDir } from "./testing.js";

// hosts[1].address sits on line 14, as in the issue's example message.
const BASE = `apiVersion: kubeforge.dev/v1alpha1
kind: Cluster
metadata: {name: demo}
spec:
  ssh: {user: root, keyPath: ./id_ed25519, knownHostsPath: ./known_hosts}
  kubernetes:
    version: v1.30.4
  hosts:
    - name: cp1
      address: 198.18.0.11
      role: control-plane
    - name: w1
      role: worker
      address: 198.18.0.12
`;

/** The issue's minimal file, verbatim: it must be valid with everything else defaulted. */
const MINIMAL = minimalClusterFile();

function edit(replacements: Array<[string, string]>, text = BASE): string {
  return replacements.reduce((out, [from, to]) => {
    if (!out.includes(from)) throw new Error(`fixture has no "${from}"`);
    return out.replace(from, to);
  }, text);
}

async function validate(text: string, env: Record<string, string> = {}) {
  const cwd = testDir({ "cluster.yaml": text });
  return kubeforge(["config", "validate", "-f", "cluster.yaml"], { cwd, env });
}

interface BadFile {
  name: string;
  text: string;
  /** `cluster.yaml:LINE PATH: message` as printed. */
  expected: string | RegExp;
  env?: Record<string, string>;
}

const BAD_FILES: BadFile[] = [
  {
    name: "address that is neither IP nor hostname",
    text: edit([["address: 198.18.0.12", 'address: "198.18.0.300"']]),
    expected: 'cluster.yaml:14 spec.hosts[1].address: "198.18.0.300" is not an IP address or hostname',
  },
  {
    name: "YAML syntax error",
    text: edit([["    version: v1.30.4", "    version: [v1.30.4"]]),
    expected: /^cluster\.yaml:\d+: invalid YAML: /m,
  },
  {
    name: "a document that is not a mapping",
    text: "- just\n- a list\n",
    expected: "cluster.yaml:1: must be a mapping with apiVersion, kind, metadata and spec",
  },
  {
    name: "wrong apiVersion",
    text: edit([["kubeforge.dev/v1alpha1", "kubeadm.k8s.io/v1beta4"]]),
    expected: 'cluster.yaml:1 apiVersion: "kubeadm.k8s.io/v1beta4" must be "kubeforge.dev/v1alpha1"',
  },
  {
    name: "wrong kind",
    text: edit([["kind: Cluster", "kind: ClusterConfiguration"]]),
    expected: 'cluster.yaml:2 kind: "ClusterConfiguration" must be "Cluster"',
  },
  {
    name: "cluster name that is not a DNS label",
    text: edit([["{name: demo}", "{name: Demo_1}"]]),
    expected: /^cluster\.yaml:3 metadata\.name: "Demo_1" does not match a DNS-1123 label/m,
  },
  {
    name: "unknown field, with a suggestion",
    text: edit([["  hosts:\n", "  hostz: []\n  hosts:\n"]]),
    expected: /^cluster\.yaml:8 spec\.hostz: unknown field; did you mean "hosts"\?/m,
  },
  {
    name: "unknown field inside a host",
    text: edit([["      role: worker", "      role: worker\n      adress: 198.18.0.99"]]),
    expected: /^cluster\.yaml:14 spec\.hosts\[1\]\.adress: unknown field; did you mean "address"\?/m,
  },
  {
    name: "unknown role",
    text: edit([["role: worker", "role: wroker"]]),
    expected: 'cluster.yaml:13 spec.hosts[1].role: "wroker" is not one of: control-plane, worker',
  },
  {
    name: "missing required field",
    text: edit([["      role: worker\n", ""]]),
    expected: "cluster.yaml:12 spec.hosts[1].role: is required",
  },
  {
    name: "missing version",
    text: edit([["  kubernetes:\n    version: v1.30.4\n", "  kubernetes: {}\n"]]),
    expected: "cluster.yaml:6 spec.kubernetes.version: is required",
  },
  {
    name: "empty host list",
    text: `${BASE.slice(0, BASE.indexOf("  hosts:"))}  hosts: []\n`,
    expected: "cluster.yaml:8 spec.hosts: needs at least 1 entry",
  },
  {
    name: "malformed version",
    text: edit([["version: v1.30.4", 'version: "1.30"']]),
    expected:
      'cluster.yaml:7 spec.kubernetes.version: "1.30" does not match vMAJOR.MINOR.PATCH (e.g. v1.30.4)',
  },
  {
    name: "unsupported version",
    text: edit([["version: v1.30.4", "version: v1.29.3"]]),
    expected:
      "cluster.yaml:7 spec.kubernetes.version: v1.29.3 is not a supported version; supported: v1.21.x, v1.30.x, v1.34.x",
  },
  {
    name: "SSH port out of range",
    text: edit([["      role: worker", "      role: worker\n      port: 70000"]]),
    expected: "cluster.yaml:14 spec.hosts[1].port: 70000 is more than 65535",
  },
  {
    name: "privateAddress that is a hostname",
    text: edit([["      role: worker", "      role: worker\n      privateAddress: w1.example.com"]]),
    expected: 'cluster.yaml:14 spec.hosts[1].privateAddress: "w1.example.com" is not an IP address',
  },
  {
    name: "duplicate host names",
    text: edit([["name: w1", "name: cp1"]]),
    expected: 'cluster.yaml:12 spec.hosts[1].name: name "cp1" is already used by spec.hosts[0]',
  },
  {
    name: "duplicate SSH endpoint",
    text: edit([["address: 198.18.0.12", "address: 198.18.0.11"]]),
    expected:
      "cluster.yaml:14 spec.hosts[1].address: SSH endpoint 198.18.0.11:22 is already used by spec.hosts[0]",
  },
  {
    name: "duplicate node IP behind distinct SSH ports",
    text: edit([
      ["address: 198.18.0.12", "address: 198.18.0.11\n      port: 2222\n      privateAddress: 198.18.1.5"],
      ["      role: control-plane", "      role: control-plane\n      privateAddress: 198.18.1.5"],
    ]),
    expected:
      /^cluster\.yaml:17 spec\.hosts\[1\]\.privateAddress: node IP 198\.18\.1\.5 is already used by spec\.hosts\[0\]/m,
  },
  {
    name: "no control plane",
    text: edit([["role: control-plane", "role: worker"]]),
    expected: "cluster.yaml:8 spec.hosts: needs at least one host with role: control-plane",
  },
  {
    name: "CIDR that does not parse",
    text: edit([
      ["    version: v1.30.4", "    version: v1.30.4\n    networking: {podSubnet: 198.19.0.0/33}"],
    ]),
    expected: /^cluster\.yaml:8 spec\.kubernetes\.networking\.podSubnet: "198\.19\.0\.0\/33" is not a CIDR/m,
  },
  {
    name: "pod and service subnets overlap",
    text: edit([
      [
        "    version: v1.30.4",
        "    version: v1.30.4\n    networking: {podSubnet: 198.19.0.0/16, serviceSubnet: 198.19.128.0/20}",
      ],
    ]),
    expected:
      "cluster.yaml:8 spec.kubernetes.networking.serviceSubnet: 198.19.128.0/20 overlaps the pod subnet 198.19.0.0/16",
  },
  {
    name: "service subnet larger than /12",
    text: edit([
      ["    version: v1.30.4", "    version: v1.30.4\n    networking:\n      serviceSubnet: 198.0.0.0/8"],
    ]),
    expected:
      "cluster.yaml:9 spec.kubernetes.networking.serviceSubnet: 198.0.0.0/8: a service subnet must be between /12 and /28 for IPv4",
  },
  {
    name: "service subnet smaller than /28",
    text: edit([
      ["    version: v1.30.4", "    version: v1.30.4\n    networking:\n      serviceSubnet: 198.19.128.0/30"],
    ]),
    expected:
      "cluster.yaml:9 spec.kubernetes.networking.serviceSubnet: 198.19.128.0/30: a service subnet must be between /12 and /28 for IPv4",
  },
  {
    name: "pod subnet too small for a /24 per node",
    text: edit([
      ["    version: v1.30.4", "    version: v1.30.4\n    networking:\n      podSubnet: 198.19.0.0/26"],
    ]),
    expected:
      "cluster.yaml:9 spec.kubernetes.networking.podSubnet: 198.19.0.0/26: a pod subnet must be between /8 and /24 for IPv4",
  },
  {
    name: "host inside the pod subnet",
    text: edit([["address: 198.18.0.12", "address: 198.19.0.12"]]),
    expected: "cluster.yaml:14 spec.hosts[1].address: 198.19.0.12 lies inside the pod subnet 198.19.0.0/17",
  },
  {
    name: "secret written inline is refused and not echoed",
    text: edit([
      ["knownHostsPath: ./known_hosts}", "knownHostsPath: ./known_hosts, password: hunter2-inline}"],
    ]),
    expected:
      "cluster.yaml:5 spec.ssh.password: a secret must be a reference, not written inline: use {env: VAR}, {file: PATH} or {prompt: true}",
  },
  {
    name: "secret reference with two sources",
    text: edit([
      [
        "knownHostsPath: ./known_hosts}",
        "knownHostsPath: ./known_hosts, sudo: {password: {env: PW, file: ./pw}}}",
      ],
    ]),
    expected:
      "cluster.yaml:5 spec.ssh.sudo.password: needs exactly one of env, file or prompt (got env, file)",
  },
  {
    name: "unset environment variable",
    text: edit([["version: v1.30.4", "version: ${K8S_VERSION}"]]),
    expected:
      "cluster.yaml:7 spec.kubernetes.version: environment variable K8S_VERSION is not set (write ${K8S_VERSION:-default} for a default)",
  },
  {
    name: "extra flag written with dashes",
    text: edit([
      [
        "    version: v1.30.4",
        "    version: v1.30.4\n    apiServer:\n      extraArgs:\n        - {name: --v, value: '4'}",
      ],
    ]),
    expected:
      /^cluster\.yaml:10 spec\.kubernetes\.apiServer\.extraArgs\[0\]\.name: "--v" does not match a flag name/m,
  },
  {
    name: "certSAN that is not a name or address",
    text: edit([
      [
        "    version: v1.30.4",
        "    version: v1.30.4\n    apiServer: {certSANs: [api.example.com, 'not a name']}",
      ],
    ]),
    expected:
      'cluster.yaml:8 spec.kubernetes.apiServer.certSANs[1]: "not a name" is not an IP address or DNS name',
  },
  {
    name: "bundle source without a bundle",
    text: `${BASE}  artifacts: {source: bundle}\n`,
    expected: /^cluster\.yaml:15 spec\.artifacts\.bundle: is required when source is bundle/m,
  },
  {
    name: "controlPlaneEndpoint with a bad port",
    text: edit([
      ["    version: v1.30.4", "    version: v1.30.4\n    controlPlaneEndpoint: api.example.com:99999"],
    ]),
    expected:
      'cluster.yaml:8 spec.kubernetes.controlPlaneEndpoint: "api.example.com:99999" is not a host or host:port',
  },
];

describe("config validate", () => {
  it("accepts the issue's minimal file", async () => {
    const run = await validate(MINIMAL);
    expect(run).toMatchObject({ code: 0, stderr: "" });
    expect(run.stdout).toBe("cluster.yaml is valid: 2 host(s), 1 control plane(s), Kubernetes v1.30.4\n");
  });

  it.each(BAD_FILES)("rejects: $name (exit 2, file:line and path)", async ({ text, expected, env }) => {
    const run = await validate(text, env);
    expect(run.code).toBe(2);
    expect(run.stdout).toBe("");
    if (typeof expected === "string") expect(run.stderr.split("\n")).toContain(expected);
    else expect(run.stderr).toMatch(expected);
  });

  it("never echoes an inline secret", async () => {
    const run = await validate(
      edit([["knownHostsPath: ./known_hosts}", "knownHostsPath: ./known_hosts, passphrase: s3cr3t-pass}"]]),
    );
    expect(run.code).toBe(2);
    expect(run.stderr).not.toContain("s3cr3t-pass");
  });

  it("reports every problem at once, in file order", async () => {
    const run = await validate(
      edit([
        ["{name: demo}", "{name: Demo}"],
        ["version: v1.30.4", "version: v1.29.0"],
        ["role: worker", "role: boss"],
        ["address: 198.18.0.12", 'address: "198.18.0.300"'],
      ]),
    );
    expect(run.code).toBe(2);
    const lines = run.stderr.trim().split("\n");
    expect(lines[0]).toBe("error: 4 problems in the cluster file:");
    expect(lines.slice(1).map((line) => line.split(" ")[0])).toEqual([
      "cluster.yaml:3",
      "cluster.yaml:7",
      "cluster.yaml:13",
      "cluster.yaml:14",
    ]);
  });

  it("substitutes ${VAR} and ${VAR:-default} from the environment", async () => {
    const run = await validate(
      edit([
        ["version: v1.30.4", "version: ${K8S_VERSION}"],
        ["address: 198.18.0.12", "address: ${W1_ADDRESS:-198.18.0.12}"],
      ]),
      { K8S_VERSION: "v1.34.1" },
    );
    expect(run).toMatchObject({ code: 0 });
    expect(run.stdout).toContain("Kubernetes v1.34.1");
  });

  it("fails with exit 2 and the fix when the file is missing", async () => {
    const run = await kubeforge(["config", "validate", "-f", "nope.yaml"], { cwd: testDir() });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("nope.yaml: file not found (pass the cluster file with -f FILE)");
  });

  it("prints the problems as one JSON object with --output json", async () => {
    const cwd = testDir({ "cluster.yaml": edit([["role: worker", "role: boss"]]) });
    const run = await kubeforge(["--output", "json", "config", "validate", "-f", "cluster.yaml"], { cwd });
    expect(run.code).toBe(2);
    expect(JSON.parse(run.stdout)).toEqual({
      v: 1,
      type: "config.invalid",
      issues: [
        {
          file: "cluster.yaml",
          line: 13,
          path: "spec.hosts[1].role",
          message: '"boss" is not one of: control-plane, worker',
        },
      ],
    });
  });
});

describe("config print-defaults and schema", () => {
  it("prints a complete file that is itself valid and states kubeadm's defaults", async () => {
    const cwd = testDir();
    const run = await kubeforge(["config", "print-defaults"], { cwd });
    expect(run.code).toBe(0);
    const printed = yaml.load(run.stdout) as { spec: { kubernetes: Record<string, unknown>; ssh: unknown } };
    expect(printed.spec.kubernetes).toMatchObject({
      clusterName: "kubernetes",
      networking: { dnsDomain: "cluster.local" },
      apiServer: { bindPort: 6443 },
      etcd: { local: { dataDir: "/var/lib/etcd" } },
      certificateValidityPeriod: "8760h",
      caCertificateValidityPeriod: "87600h",
      encryptionAlgorithm: "RSA-2048",
    });
    const again = await validate(run.stdout);
    expect(again.code).toBe(0);
  });

  it("completes a given file, with paths resolved against its directory and ~ expanded", async () => {
    const cwd = testDir({
      "cluster.yaml": edit([["knownHostsPath: ./known_hosts}", "knownHostsPath: ~/.ssh/known_hosts}"]]),
    });
    const run = await kubeforge(["config", "print-defaults", "-f", "cluster.yaml"], { cwd });
    expect(run.code).toBe(0);
    const printed = yaml.load(run.stdout) as {
      spec: { ssh: { keyPath: string; knownHostsPath: string; port: number } };
    };
    expect(printed.spec.ssh).toEqual({
      user: "root",
      port: 22,
      keyPath: join(cwd, "id_ed25519"),
      knownHostsPath: join(cwd, "home", ".ssh", "known_hosts"),
    });
  });

  it("prints a JSON Schema that editors can use, requiring only what has no default", async () => {
    const run = await kubeforge(["config", "schema"], { cwd: testDir() });
    expect(run.code).toBe(0);
    const schema = JSON.parse(run.stdout);
    expect(schema.$schema).toBe("http://json-schema.org/draft-07/schema#");
    expect(schema.$id).toBe("https://kubeforge.dev/schemas/cluster-v1alpha1.json");
    expect(schema.required).toEqual(["apiVersion", "kind", "metadata", "spec"]);
    expect(schema.properties.spec.required).toEqual(["hosts", "kubernetes"]);
    expect(schema.properties.spec.properties.ssh.required).toBeUndefined();
    expect(schema.properties.spec.properties.ssh.properties.port.default).toBe(22);
    expect(schema.additionalProperties).toBe(false);
  });

  it("keeps the README's reference in step with the schema", async () => {
    const run = await kubeforge(["config", "reference"], { cwd: testDir() });
    const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
    expect(readme).toContain(run.stdout.trim());
  });
  it("render --objects prints init's API objects with a placeholder token, and the store's CA when there is one", async () => {
    const cwd = testDir({ "cluster.yaml": MINIMAL });
    const env = { KUBEFORGE_STATE_DIR: join(cwd, "state") };
    const placeholder = await kubeforge(["config", "render", "-f", "cluster.yaml", "--objects"], {
      cwd,
      env,
    });
    expect(placeholder.code).toBe(0);
    expect(placeholder.stdout).toContain("# No CA in the local store");
    const objects = yaml.loadAll(placeholder.stdout) as Array<{ kind: string; metadata: { name: string } }>;
    expect(objects.map((object) => object.metadata.name)).toContain("kubeadm-config");
    const secret = objects.find((object) => object.kind === "Secret") as unknown as {
      metadata: { name: string };
      stringData: Record<string, string>;
    };
    expect(secret.metadata.name).toBe("bootstrap-token-<token-id>");
    expect(secret.stringData["token-secret"]).toBe("<redacted>");

    const ca = readFileSync(new URL("../api/testdata/test-ca.crt", import.meta.url), "utf8");
    mkdirSync(join(cwd, "state", "demo", "pki"), { recursive: true });
    writeFileSync(join(cwd, "state", "demo", "pki", "ca.crt"), ca);
    const json = await kubeforge(["-o", "json", "config", "render", "-f", "cluster.yaml", "--objects"], {
      cwd,
      env,
    });
    expect(json.code).toBe(0);
    const lines = json.stdout.trim().split("\n");
    expect(lines).toHaveLength(1);
    const event = JSON.parse(lines[0] as string);
    expect(event).toMatchObject({ type: "api.objects", caFromStore: true });
    const clusterInfo = event.objects.find(
      (object: { metadata: { name: string } }) => object.metadata.name === "cluster-info",
    );
    expect(clusterInfo.data.kubeconfig).toContain(Buffer.from(ca).toString("base64"));
  });

  it("render needs --host or --objects, not both", async () => {
    const cwd = testDir({ "cluster.yaml": MINIMAL });
    expect((await kubeforge(["config", "render", "-f", "cluster.yaml"], { cwd })).code).toBe(2);
    const both = await kubeforge(["config", "render", "-f", "cluster.yaml", "--objects", "--host", "cp1"], {
      cwd,
    });
    expect(both.code).toBe(2);
  });
});
