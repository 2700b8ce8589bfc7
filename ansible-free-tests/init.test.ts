// `kubeforge init` on real lab hosts, one single-node cluster per supported version (h1 v1.21, h2 v1.30,
// h3 v1.34), from bundles with real Debian packages and containerd and two STAND-INS for what these
// machines cannot download (support/bundle-dir.ts): a kubelet that only answers --version and fails
// when started, and small images named as the real ones. So init runs for real up to the kubelet:
// prepare, certificates, kubeconfigs, the endpoint name, the static pods and the kubelet's files,
// then wait-control-plane must fail within its timeout with the stand-in's log line in the error.
// Every file init wrote is compared with kubeadm's output as hand-transcribed in the fixtures of
// templates/testdata (the example node's IP replaced by the lab host's).
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import yaml from "js-yaml";
import { describe, expect, it } from "vitest";
import type { Lab, LabOptions } from "../lab/testhosts.js";
import { packTestBundle, STAND_IN_KUBELET_MARKER } from "./support/bundle-dir.js";
import { ROOT } from "./support/cli.js";
import { changesOf, cliIn, must, show } from "./support/scenario.js";
import { labSuite } from "./support/suite.js";

const LAB: LabOptions = { bridge: "kfbri0", subnet: "198.18.25", log: (line) => console.error(line) };
/** The example node of the fixtures (templates/testdata/*): its IP is replaced by the lab host's. */
const EXAMPLE_IP = "198.18.0.11";
const WAIT = "10s";

interface Case {
  version: string;
  fixtures: string;
  labHost: "h1" | "h2" | "h3";
}
/** The fixtures' versions exactly, so image tags match too. */
const CASES: Case[] = [
  { version: "v1.21.14", fixtures: "v1.21", labHost: "h1" },
  { version: "v1.30.14", fixtures: "v1.30", labHost: "h2" },
  { version: "v1.34.2", fixtures: "v1.34", labHost: "h3" },
];

function addressOf(lab: Lab, labHost: string): string {
  const host = lab.hosts.find((entry) => entry.name === labHost);
  if (!host) throw new Error(`no lab host ${labHost}`);
  return host.address;
}

const nameOf = (c: Case) => `init${c.fixtures.replace(/\D/g, "")}`;

/** A single-node cluster: node cp1 on the lab host, the fixtures' networking, the case's bundle. */
function clusterFile(
  lab: Lab,
  c: Case,
  hosts: Array<{ name: string; labHost: string; role: string }>,
): string {
  return yaml.dump({
    apiVersion: "kubeforge.dev/v1alpha1",
    kind: "Cluster",
    metadata: { name: nameOf(c) },
    spec: {
      ssh: { user: "root", keyPath: lab.keyPath, knownHostsPath: lab.knownHostsPath },
      kubernetes: {
        version: c.version,
        networking: { podSubnet: "198.19.0.0/17", serviceSubnet: "198.19.128.0/20" },
      },
      hosts: hosts.map((host) => ({
        name: host.name,
        address: addressOf(lab, host.labHost),
        role: host.role,
      })),
      artifacts: { source: "bundle", bundle: `${nameOf(c)}.tar` },
    },
  });
}

function fixture(c: Case, path: string): string {
  return readFileSync(
    join(ROOT, "templates/testdata", path.replace("VERSION", c.fixtures)),
    "utf8",
  ).replaceAll(EXAMPLE_IP, addressOf(suite.ready().lab, c.labHost));
}

/** Go's serializer leaves `creationTimestamp: null` and `status: {}` of unset fields: absent here. */
function parseManifest(text: string): Record<string, unknown> {
  const pod = yaml.load(text) as { metadata?: Record<string, unknown>; status?: object };
  if (pod.metadata?.creationTimestamp === null) delete pod.metadata.creationTimestamp;
  if (pod.status && Object.keys(pod.status).length === 0) delete pod.status;
  return pod as Record<string, unknown>;
}

/** `mode owner:group sha256` of a file on a host. */
async function remoteFile(labHost: string, path: string): Promise<string> {
  return (
    await must(
      suite.ready().lab,
      labHost,
      `stat -c '%a %U:%G' ${path} && sha256sum < ${path} | cut -d' ' -f1`,
    )
  )
    .trim()
    .replace("\n", " ");
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name));
}

const sha256 = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex");

const INIT = (c: Case) => [
  "init",
  "-f",
  `${nameOf(c)}.yaml`,
  "--timeout",
  WAIT,
  // The read-only kernel settings are the machine's (prepare.test.ts looks at that check).
  "--ignore-preflight-errors",
  "KubeletKernelSettings",
];

/** One bundle per case, packed from the fixtures' version: a failing stand-in kubelet, stand-in images. */
const suite = labSuite({
  lab: LAB,
  hosts: 3,
  workPrefix: "kf-init-",
  setup: async (lab, work) => {
    const cli = (args: string[]) => cliIn(work, args);
    for (const c of CASES) {
      writeFileSync(
        join(work, `${nameOf(c)}.yaml`),
        clusterFile(lab, c, [{ name: "cp1", labHost: c.labHost, role: "control-plane" }]),
      );
      await packTestBundle(cli, {
        work,
        clusterFile: `${nameOf(c)}.yaml`,
        dir: `${nameOf(c)}-dir`,
        bundle: `${nameOf(c)}.tar`,
        kubernetesVersion: c.version,
      });
    }
    return {};
  },
});

describe("kubeforge init on real hosts up to the kubelet (stand-in kubelet and images: no Kubernetes server binaries here)", () => {
  it("refuses a second control plane with exit 2 before touching any host", async () => {
    const { lab, work } = suite.ready();
    const c = CASES[1] as Case;
    writeFileSync(
      join(work, "two-control-planes.yaml"),
      clusterFile(lab, c, [
        { name: "cp1", labHost: "h1", role: "control-plane" },
        { name: "cp2", labHost: "h2", role: "control-plane" },
      ]),
    );
    const run = await cliIn(work, ["init", "-f", "two-control-planes.yaml"]);
    expect(run.code, show(run)).toBe(2);
    expect(run.stderr).toContain("2 control-plane hosts (cp1, cp2)");
    expect(run.stderr).toContain("HA");
    expect(run.events.filter((event) => event.type.startsWith("phase"))).toEqual([]);
  });

  for (const c of CASES) {
    it(`${c.version}: writes kubeadm's files, then fails wait-control-plane within ${WAIT} with the kubelet's log`, async () => {
      const { lab, work } = suite.ready();
      const first = await cliIn(work, INIT(c));
      expect(first.code, show(first)).toBe(1);
      expect(first.stderr).toContain("error execution phase wait-control-plane");
      expect(first.stderr).toMatch(/the kubelet's healthz: not ready after 1\d s \(timeout 10 s\)/);
      expect(first.stderr).toContain(STAND_IN_KUBELET_MARKER);

      // The static pods: kubeadm's manifests field for field, 0600 in a 0700 directory.
      for (const component of ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"]) {
        const path = `/etc/kubernetes/manifests/${component}.yaml`;
        const live = await must(lab, c.labHost, `cat ${path}`);
        expect(parseManifest(live), `${c.version} ${component}`).toEqual(
          parseManifest(fixture(c, `static-pods/VERSION/${component}.yaml`)),
        );
        expect((await remoteFile(c.labHost, path)).split(" ").slice(0, 2)).toEqual(["600", "root:root"]);
      }
      expect(await must(lab, c.labHost, "stat -c %a /etc/kubernetes/manifests")).toBe("700\n");

      // The kubelet's files: kubeadm's, plus what kind sets for a node that is a container, and
      // --hostname-override because the lab host's hostname is not the node name cp1.
      const resolved = (await must(lab, c.labHost, "systemctl is-active systemd-resolved || true")).trim();
      const expectedConfig = {
        ...(yaml.load(fixture(c, "kubelet/VERSION/config.yaml")) as Record<string, unknown>),
        failSwapOn: false,
        imageGCHighThresholdPercent: 100,
        evictionHard: { "imagefs.available": "0%", "nodefs.available": "0%", "nodefs.inodesFree": "0%" },
        ...(resolved === "active" && { resolvConf: "/run/systemd/resolve/resolv.conf" }),
      };
      expect(yaml.load(await must(lab, c.labHost, "cat /var/lib/kubelet/config.yaml"))).toEqual(
        expectedConfig,
      );
      const flags = fixture(c, "kubelet/VERSION/kubeadm-flags.env")
        .split("\n")
        .find((line) => line.startsWith("KUBELET_KUBEADM_ARGS="));
      const expectedFlags = (flags ?? "").replace(/="(.*)"$/, (_, list: string) => {
        // kubeadm sorts by flag name (so --container-runtime before --container-runtime-endpoint).
        const name = (flag: string) => flag.split("=")[0] ?? flag;
        const sorted = [...list.split(" "), "--hostname-override=cp1"].sort((a, b) =>
          name(a) < name(b) ? -1 : name(a) > name(b) ? 1 : 0,
        );
        return `="${sorted.join(" ")}"`;
      });
      expect(await must(lab, c.labHost, "cat /var/lib/kubelet/kubeadm-flags.env")).toBe(`${expectedFlags}\n`);
      for (const path of ["/var/lib/kubelet/config.yaml", "/var/lib/kubelet/kubeadm-flags.env"]) {
        expect((await remoteFile(c.labHost, path)).split(" ").slice(0, 2)).toEqual(["644", "root:root"]);
      }

      // Certificates, keys and kubeconfigs: the store's, byte for byte, with kubeadm's modes.
      const store = join(work, "state", nameOf(c));
      const pki = [
        ...filesUnder(join(store, "pki")).map((file) => ({ file, path: relative(join(store, "pki"), file) })),
        ...filesUnder(join(store, "nodes/cp1/pki")).map((file) => ({
          file,
          path: relative(join(store, "nodes/cp1/pki"), file),
        })),
      ];
      expect(pki.length).toBeGreaterThanOrEqual(22);
      for (const { file, path } of pki) {
        const mode = path.endsWith(".crt") ? "644" : "600";
        expect(await remoteFile(c.labHost, `/etc/kubernetes/pki/${path}`), path).toBe(
          `${mode} root:root ${sha256(file)}`,
        );
      }
      const kubeconfigs = [
        ...filesUnder(join(store, "kubeconfigs")),
        ...filesUnder(join(store, "nodes/cp1")).filter((file) => file.endsWith(".conf")),
      ];
      const names = kubeconfigs.map((file) => file.split("/").at(-1)).sort();
      const superAdmin = c.fixtures === "v1.21" ? [] : ["super-admin.conf"];
      expect(names).toEqual(
        ["admin.conf", "controller-manager.conf", "kubelet.conf", "scheduler.conf", ...superAdmin].sort(),
      );
      for (const file of kubeconfigs) {
        expect(await remoteFile(c.labHost, `/etc/kubernetes/${file.split("/").at(-1)}`)).toBe(
          `600 root:root ${sha256(file)}`,
        );
        expect(statSync(file).mode & 0o777).toBe(0o600);
      }

      // The endpoint name resolves to the control plane on the node.
      expect(await must(lab, c.labHost, `getent hosts ${nameOf(c)}-api`)).toMatch(
        new RegExp(`^${addressOf(lab, c.labHost).replaceAll(".", "\\.")}\\s+${nameOf(c)}-api`),
      );

      // A re-run writes nothing and leaves the kubelet to systemd's restarts; it fails the same way.
      const again = await cliIn(work, INIT(c));
      expect(again.code, show(again)).toBe(1);
      expect(changesOf(again)).toEqual({});
      expect(again.stderr).toContain(STAND_IN_KUBELET_MARKER);
    });
  }

  it("stops with exit 2, changing nothing, when the host trusts another store's CA", async () => {
    const { lab, work } = suite.ready();
    const c = CASES[1] as Case;
    const before = await must(
      lab,
      c.labHost,
      "find /etc/kubernetes /var/lib/kubelet -type f | sort | xargs sha256sum",
    );
    const run = await cliIn(work, INIT(c), join(work, "another-store"));
    expect(run.code, show(run)).toBe(2);
    expect(run.stderr).toContain("cp1:/etc/kubernetes/pki/ca.crt");
    expect(run.stderr).toContain("the local store has none");
    expect(run.stderr).toContain("kubeforge reset");
    expect(changesOf(run)).toEqual({});
    expect(
      await must(lab, c.labHost, "find /etc/kubernetes /var/lib/kubelet -type f | sort | xargs sha256sum"),
    ).toBe(before);
  });
});
