// `kubeforge reset` end to end: the built CLI against two real lab hosts seeded like used nodes — a
// "kubelet" (a transient unit of that name), a running container in containerd's k8s.io namespace,
// a tmpfs and a bind mount of outside data under /var/lib/kubelet, static pod manifests, etcd data,
// kubeforge's CNI config and KUBE-* chains with jump rules in filter and nat — next to what is not
// ours: another tool's CNI config, its iptables chain and rule, and a container in another
// containerd namespace. The hosts are seeded and read over plain ssh as root; the lab's addresses
// and the rules' addresses are in 198.18.0.0/15.
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { labClusterFile } from "../cli/lab-command.js";
import {
  BUSYBOX_IMAGE_NAME,
  BUSYBOX_IMAGE_PATH,
  type Lab,
  type LabOptions,
  labDown,
  labUp,
} from "../lab/testhosts.js";
import { ensureBuilt, kubeforgeCli } from "./support/cli.js";
import { cliIn, must as mustOn, type RunEvent, show } from "./support/scenario.js";

const LAB: LabOptions = { bridge: "kfbrr0", subnet: "198.18.21", log: (line) => console.error(line) };
const HOSTS = ["h1", "h2"] as const;
type HostName = (typeof HOSTS)[number];
const POD_VOLUMES = "/var/lib/kubelet/pods/0a1b2c3d/volumes";
/** Outside data bind-mounted into a pod volume: reset must unmount it, never delete into it. */
const PRECIOUS = "/srv/kf-precious";
const FOREIGN_CNI = "/etc/cni/net.d/99-foreign.conflist";
const OUR_CNI = "/etc/cni/net.d/10-kubeforge-bridge.conflist";

let booted: Lab | undefined;
let bootError: unknown;
let work: string;
let clusterFile: string;

// Every test fails (rather than being skipped, as after a failed hook) when the setup failed.
function theLab(): Lab {
  if (!booted) throw new Error(`lab setup failed: ${String(bootError)}`, { cause: bootError });
  return booted;
}

const must = async (host: HostName, command: string) => mustOn(theLab(), host, command);

const SEED = [
  "set -e",
  // The lab has no kubelet; a transient unit of that name stands in for it.
  "systemd-run --quiet --unit=kubelet sleep infinity",
  "systemctl start containerd",
  ...["k8s.io", "kf-foreign"].map((ns) => `ctr -n ${ns} images import ${BUSYBOX_IMAGE_PATH} >/dev/null`),
  `ctr -n k8s.io run -d ${BUSYBOX_IMAGE_NAME} kf-pod sleep 100000`,
  `ctr -n kf-foreign run -d ${BUSYBOX_IMAGE_NAME} kf-foreign-c sleep 100000`,
  `mkdir -p ${POD_VOLUMES}/x ${POD_VOLUMES}/data ${PRECIOUS}`,
  `mount -t tmpfs kf-volume ${POD_VOLUMES}/x && echo scratch > ${POD_VOLUMES}/x/file`,
  `echo keep > ${PRECIOUS}/file && mount --bind ${PRECIOUS} ${POD_VOLUMES}/data`,
  "mkdir -p /etc/kubernetes/manifests /var/lib/etcd/member /etc/cni/net.d",
  "echo 'kind: Pod' > /etc/kubernetes/manifests/kube-apiserver.yaml",
  "echo 'kind: Config' > /etc/kubernetes/admin.conf",
  "echo wal > /var/lib/etcd/member/wal",
  `echo '{"name": "kubeforge"}' > ${OUR_CNI}`,
  `echo '{"name": "foreign"}' > ${FOREIGN_CNI}`,
  "iptables -N KUBE-SERVICES && iptables -N KUBE-FIREWALL",
  "iptables -A KUBE-SERVICES -j KUBE-FIREWALL",
  "iptables -A KUBE-FIREWALL -s 198.18.255.1/32 -j DROP",
  'iptables -A INPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
  "iptables -t nat -N KUBE-POSTROUTING",
  "iptables -t nat -A KUBE-POSTROUTING -s 198.18.255.2/32 -j MASQUERADE",
  "iptables -t nat -A POSTROUTING -j KUBE-POSTROUTING",
  "iptables -N FOREIGN-FW",
  "iptables -A FOREIGN-FW -s 198.18.255.9/32 -j ACCEPT",
  "iptables -A INPUT -j FOREIGN-FW",
].join("\n");

/** Everything reset could touch on a host, as text: files, mounts, rules, containers, the kubelet. */
async function snapshot(host: HostName): Promise<string> {
  return must(
    host,
    [
      "find /etc/kubernetes /var/lib/kubelet /var/lib/etcd /etc/cni /srv /var/lib/kubeforge -printf '%p %y %s %m\\n' 2>/dev/null | sort",
      "echo; awk '{print $5, $9}' /proc/self/mountinfo",
      "echo; iptables-save | grep -v '^#'",
      "echo; for ns in k8s.io kf-foreign; do ctr -n $ns tasks ls; ctr -n $ns containers ls -q; done",
      "echo; systemctl is-active kubelet || true",
    ].join("; "),
  );
}

const snapshotAll = () => Promise.all(HOSTS.map(snapshot));

/** `kubeforge -o json reset -f <cluster> args…` with no terminal; stdout holds nothing but events. */
const reset = (args: string[]) =>
  cliIn(work, ["reset", "-f", clusterFile, ...args], undefined, { strict: true });

/** The change events of a run, per host. */
function changesByHost(events: readonly RunEvent[]): Record<string, string[]> {
  const changes: Record<string, string[]> = {};
  for (const event of events) {
    if (event.type !== "change" || !event.host) continue;
    changes[event.host] = [...(changes[event.host] ?? []), event.description ?? ""];
  }
  return changes;
}

/** What reset should plan for a freshly seeded host, in order. */
const SEEDED_CHANGES = [
  "stop the kubelet",
  "remove the static pod manifests: kube-apiserver.yaml",
  "stop and remove 1 container in containerd's k8s.io namespace: kf-pod",
  // Equally deep: the later mount first.
  `unmount 2 filesystems under /var/lib/kubelet, deepest first: ${POD_VOLUMES}/data, ${POD_VOLUMES}/x`,
  "remove /etc/kubernetes",
  "remove /var/lib/kubelet",
  "remove /var/lib/etcd",
  `remove kubeforge's CNI config ${OUR_CNI}`,
  "remove 3 KUBE-* chains and the 2 rules jumping to them (iptables: filter, nat)",
];

/** Ours is gone from `host`, and what belongs to others is still there. */
async function expectReset(host: HostName): Promise<void> {
  const state = await must(
    host,
    [
      "echo kubelet=$(systemctl is-active kubelet)",
      "echo k8s-containers=$(ctr -n k8s.io containers ls -q | wc -l)",
      "echo k8s-tasks=$(ctr -n k8s.io tasks ls -q | wc -l)",
      "echo foreign-task=$(ctr -n kf-foreign tasks ls | awk '$1 == \"kf-foreign-c\" {print $3}')",
      "echo kubelet-mounts=$(awk '$5 ~ \"^/var/lib/kubelet\"' /proc/self/mountinfo | wc -l)",
      `for p in /etc/kubernetes /var/lib/kubelet /var/lib/etcd ${OUR_CNI} ${FOREIGN_CNI}; do [ -e "$p" ] && echo "exists=$p"; done`,
      `echo precious=$(cat ${PRECIOUS}/file)`,
      "echo kube-chains=$(iptables-save | grep -c KUBE- || true)",
      "true",
    ].join("; "),
  );
  expect(state.trim().split("\n")).toEqual([
    "kubelet=inactive",
    "k8s-containers=0",
    "k8s-tasks=0",
    "foreign-task=RUNNING",
    "kubelet-mounts=0",
    `exists=${FOREIGN_CNI}`,
    "precious=keep",
    "kube-chains=0",
  ]);
  const rules = (await must(host, "iptables-save")).split("\n");
  expect(rules).toEqual(
    expect.arrayContaining([
      ":FOREIGN-FW - [0:0]",
      "-A INPUT -j FOREIGN-FW",
      "-A FOREIGN-FW -s 198.18.255.9/32 -j ACCEPT",
    ]),
  );
}

describe("kubeforge reset on lab hosts (the built CLI)", () => {
  beforeAll(async () => {
    try {
      work = mkdtempSync(join(tmpdir(), "kf-reset-"));
      chmodSync(work, 0o700);
      await ensureBuilt();
      const lab = await labUp(HOSTS.length, LAB);
      booted = lab;
      clusterFile = join(work, "cluster.yaml");
      writeFileSync(clusterFile, labClusterFile(lab, { name: "rs", version: "v1.30.4", user: "root" }));
      await Promise.all(HOSTS.map((host) => must(host, SEED)));
    } catch (error) {
      bootError = error;
    }
  });

  afterAll(async () => {
    await labDown(LAB);
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it("--dry-run lists each host's named changes and changes nothing", async () => {
    theLab();
    const before = await snapshotAll();
    const run = await reset(["--dry-run"]);
    expect(run.code, show(run)).toBe(0);
    expect(changesByHost(run.events)).toEqual({ h1: SEEDED_CHANGES, h2: SEEDED_CHANGES });
    expect(run.events.filter((event) => event.type === "change" && event.applied)).toEqual([]);
    expect(await snapshotAll()).toEqual(before);
  });

  it("refuses without a terminal and without --yes, and with unknown --hosts, touching no host", async () => {
    theLab();
    const before = await snapshotAll();
    const refused = await reset([]);
    expect(refused.code, show(refused)).toBe(2);
    expect(refused.stderr).toContain("there is no terminal to ask on: run with --yes");
    const unknown = await reset(["--yes", "--hosts", "h1,h7"]);
    expect(unknown.code, show(unknown)).toBe(2);
    expect(unknown.stderr).toContain("unknown host(s) h7; the cluster file's hosts are h1, h2");
    for (const run of [refused, unknown]) expect(run.events).toEqual([]);
    expect(await snapshotAll()).toEqual(before);
  });

  it("--hosts resets only the hosts named", async () => {
    theLab();
    const h1Before = await snapshot("h1");
    const run = await reset(["--yes", "--hosts", "h2"]);
    expect(run.code, show(run)).toBe(0);
    expect(changesByHost(run.events)).toEqual({ h2: SEEDED_CHANGES });
    expect(run.events.filter((event) => event.host === "h1")).toEqual([]);
    await expectReset("h2");
    expect(await snapshot("h1")).toBe(h1Before);
  });

  it("removes ours and keeps what is not; a second reset changes nothing", async () => {
    theLab();
    const run = await reset(["--yes"]);
    expect(run.code, show(run)).toBe(0);
    // h2 was reset above: nothing left to do there.
    expect(changesByHost(run.events)).toEqual({ h1: SEEDED_CHANGES });
    for (const host of HOSTS) await expectReset(host);

    const again = await kubeforgeCli(
      ["--state-dir", join(work, "state"), "reset", "-f", clusterFile, "--yes"],
      {
        cwd: work,
      },
    );
    expect(again.code, show(again)).toBe(0);
    expect(again.stdout.trim()).toBe("Nothing changed.");
    expect(again.stderr).toContain("h1: clean: nothing to reset");
    expect(again.stderr).toContain("h2: clean: nothing to reset");
  });

  it("goes on past a failed step, lists every failure, and never deletes into a mount it could not unmount", async () => {
    theLab();
    const busy = "/var/lib/kubelet/pods/busy/volumes/v";
    // A process whose working directory is inside the mount keeps it busy.
    await must(
      "h2",
      [
        "set -e",
        `mkdir -p ${busy} && mount -t tmpfs kf-busy ${busy} && echo data > ${busy}/file`,
        `systemd-run --quiet --unit=kf-busy --working-directory=${busy} sleep infinity`,
        "iptables -N KUBE-LATER",
      ].join("\n"),
    );
    const run = await reset(["--yes", "--hosts", "h2"]);
    expect(run.code, show(run)).toBe(1);
    expect(run.stderr).toContain("h2: 2 of 3 reset steps failed:");
    expect(run.stderr).toContain(`- unmount 1 filesystem under /var/lib/kubelet, deepest first: ${busy}: `);
    expect(run.stderr).toContain("- remove /var/lib/kubelet: ");
    // The step after the failures ran; the busy mount's data is untouched.
    expect(await must("h2", `iptables-save | grep -c KUBE- || true; cat ${busy}/file`)).toBe("0\ndata\n");

    await must("h2", "systemctl stop kf-busy");
    const after = await reset(["--yes", "--hosts", "h2"]);
    expect(after.code, show(after)).toBe(0);
    expect(changesByHost(after.events)).toEqual({
      h2: [`unmount 1 filesystem under /var/lib/kubelet, deepest first: ${busy}`, "remove /var/lib/kubelet"],
    });
    await expectReset("h2");
  });

  it("--purge also removes what the install record lists, and only that", async () => {
    theLab();
    const file = (path: string) => ({ path, sha256: "0".repeat(64), size: 1, mtime: 1 });
    const record = {
      kubernetesVersion: "v1.30.4",
      files: [file("/usr/bin/kubelet"), file("/opt/cni/bin/kf-bridge")],
      packages: [{ name: "ethtool", version: "1" }],
    };
    // A stand-in kubelet binary and unit, enabled, as prepare leaves a node.
    await must(
      "h1",
      [
        "set -e",
        "printf '#!/bin/sh\\nexec sleep infinity\\n' > /usr/bin/kubelet && chmod 755 /usr/bin/kubelet",
        "printf '[Service]\\nExecStart=/usr/bin/kubelet\\n[Install]\\nWantedBy=multi-user.target\\n' > /usr/lib/systemd/system/kubelet.service",
        "mkdir -p /usr/lib/systemd/system/kubelet.service.d && printf '[Service]\\n' > /usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf",
        "systemctl daemon-reload && systemctl enable --quiet kubelet",
        "mkdir -p /opt/cni/bin && touch /opt/cni/bin/kf-bridge /opt/cni/bin/foreign-plugin",
        "mkdir -p /var/lib/kubeforge/tmp",
        `echo '${JSON.stringify(record)}' > /var/lib/kubeforge/install.json`,
      ].join("\n"),
    );
    const plain = await reset(["--yes", "--hosts", "h1"]);
    expect(plain.code, show(plain)).toBe(0);
    expect(changesByHost(plain.events)).toEqual({});

    const purge = await reset(["--yes", "--hosts", "h1", "--purge"]);
    expect(purge.code, show(purge)).toBe(0);
    expect(changesByHost(purge.events)).toEqual({
      h1: [
        "disable the kubelet unit",
        "remove the files kubeforge installed: /usr/lib/systemd/system/kubelet.service, " +
          "/usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf, /usr/bin/kubelet, /opt/cni/bin/kf-bridge",
        "purge the packages kubeforge installed: ethtool",
        "remove kubeforge's install record and state (/var/lib/kubeforge)",
      ],
    });
    const state = await must(
      "h1",
      [
        'for p in /usr/bin/kubelet /usr/lib/systemd/system/kubelet.service /usr/lib/systemd/system/kubelet.service.d /opt/cni/bin/kf-bridge /var/lib/kubeforge /etc/systemd/system/multi-user.target.wants/kubelet.service; do [ -e "$p" ] && echo "exists=$p"; done',
        "echo enabled=$(systemctl is-enabled kubelet 2>/dev/null)",
        "for p in ethtool containerd containernetworking-plugins; do echo \"$p=$(dpkg-query -W -f '${db:Status-Status}' $p 2>/dev/null)\"; done",
        "[ -e /opt/cni/bin/foreign-plugin ] && [ -e /usr/lib/cni/bridge ] && echo plugins=kept",
        "true",
      ].join("; "),
    );
    // ethtool is purged (dpkg no longer knows it); what kubeforge did not install stays.
    expect(state.trim().split("\n")).toEqual([
      "enabled=",
      "ethtool=",
      "containerd=installed",
      "containernetworking-plugins=installed",
      "plugins=kept",
    ]);

    const again = await reset(["--yes", "--hosts", "h1", "--purge"]);
    expect(again.code, show(again)).toBe(0);
    expect(changesByHost(again.events)).toEqual({});
  });
});
