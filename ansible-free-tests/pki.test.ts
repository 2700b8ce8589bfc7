// The cluster PKI proven by the programs that consume it, not by reading it back:
// - a real 3-member etcd cluster (Debian's etcd 3.4, run by systemd on three lab hosts with distinct
//   addresses) on each node's own etcd server/peer certificates, with client and peer cert auth;
// - a stand-in for kube-apiserver (Node https in this process) presenting apiserver.crt and requiring
//   client certs from ca.crt, queried by kubectl with admin.conf, super-admin.conf, a front-proxy
//   client cert and a user kubeconfig;
// - reuse: the same file again changes nothing; changed certSANs are refused with exit 2 and no file
//   in the store changes.
//
// The PKI comes from kubeforge's generator through the built CLI. Needs etcd-server, etcd-client,
// openssl and a kubectl (KUBEFORGE_TEST_KUBECTL, default `kubectl` on PATH; CI unpacks Debian's
// kubernetes-client, v1.20).

import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type TLSSocket } from "node:tls";
import yaml from "js-yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { $ } from "zx";
import { type Lab, type LabOptions, labDown, labUp } from "../lab/testhosts.js";
import { type ProcessRun, run } from "./support/cli.js";
import { opensslCert } from "./support/openssl.js";
import { kubeforgePki, type PkiSource } from "./support/pki-source.js";
import { must as mustOn, onHost, show } from "./support/scenario.js";
import {
  fingerprint,
  parseKubeconfig,
  snapshotStore,
  subjectOf,
  withClientCredentials,
} from "./support/store.js";

const PKI: PkiSource = kubeforgePki;

const LAB: LabOptions = { bridge: "kfbre0", subnet: "198.18.12", log: (line) => console.error(line) };
const HOSTS = ["h1", "h2", "h3"] as const;
const ADDRESS: Record<(typeof HOSTS)[number], string> = {
  h1: "198.18.12.11",
  h2: "198.18.12.12",
  h3: "198.18.12.13",
};
const CLUSTER = "pki";
const VERSION = "v1.30.4";
/** Debian's kubectl (kubernetes-client, v1.20) unless told otherwise. */
const KUBECTL = process.env.KUBEFORGE_TEST_KUBECTL || "kubectl";
const ETCD_UNIT = "kf-pki-etcd";
const sh = $({ quiet: true, nothrow: true });

let work: string;
let booted: Lab | undefined;
let bootError: unknown;
let storeError: unknown;
let stored = false;

// Every test fails (rather than being skipped, as after a failed hook) when its setup failed.
function theLab(): Lab {
  if (!booted) throw new Error(`lab setup failed: ${String(bootError)}`, { cause: bootError });
  return booted;
}
function theStore(): string {
  if (!stored) throw new Error(`generating the PKI failed: ${String(storeError)}`, { cause: storeError });
  return join(work, "state", CLUSTER);
}

/** The cluster file: h1–h3 all control planes at the lab's addresses, written under `work`. */
function clusterFile(name: string, certSANs: string[] = ["kf-api.example.com"]): string {
  const document = {
    apiVersion: "kubeforge.dev/v1alpha1",
    kind: "Cluster",
    metadata: { name: CLUSTER },
    spec: {
      ssh: { user: "root", knownHostsPath: "./known_hosts" },
      kubernetes: { version: VERSION, apiServer: { certSANs } },
      hosts: HOSTS.map((host) => ({ name: host, address: ADDRESS[host], role: "control-plane" })),
    },
  };
  const path = join(work, `${name}.yaml`);
  writeFileSync(path, yaml.dump(document));
  return path;
}

// ---------------------------------------------------------------------------------------------
// Lab hosts over plain OpenSSH as root (the lab's own key, ssh_config and known_hosts)

const must = async (host: string, command: string) => mustOn(theLab(), host, command);

async function copyTo(host: string, files: Array<[local: string, remote: string]>): Promise<void> {
  const args = ["-F", theLab().sshConfigPath, "-o", "BatchMode=yes", "-q"];
  for (const [local, remote] of files) {
    const r = await sh`scp ${args} ${local} ${`root@${host}:${remote}`}`;
    if (r.exitCode !== 0) throw new Error(`scp ${local} to ${host}:${remote} failed: ${r.stderr}`);
  }
}

// ---------------------------------------------------------------------------------------------

describe(`PKI from ${PKI.label}`, () => {
  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), "kf-pki-"));
    chmodSync(work, 0o700);
    mkdirSync(join(work, "home"), { mode: 0o700 });
    try {
      await PKI.prepare();
      const generated = await PKI.generate(clusterFile("cluster"), join(work, "state"), work);
      if (generated.code !== 0) throw new Error(`certs generate: ${show(generated)}`);
      stored = true;
    } catch (error) {
      storeError = error;
    }
    try {
      booted = await labUp(3, LAB);
      const got = booted.hosts.map((h) => `${h.name}=${h.address}`);
      const want = HOSTS.map((h) => `${h}=${ADDRESS[h]}`);
      if (got.join() !== want.join()) throw new Error(`lab hosts ${got.join()}, expected ${want.join()}`);
    } catch (error) {
      bootError = error;
      booted = undefined;
    }
  });

  afterAll(async () => {
    try {
      if (booted) {
        for (const host of HOSTS) {
          await onHost(booted, host, `systemctl stop ${ETCD_UNIT}`);
        }
      }
    } finally {
      await labDown(LAB);
      if (work) rmSync(work, { recursive: true, force: true });
    }
  });

  it("writes the store layout with kubeadm's modes: dirs 0700, keys and kubeconfigs 0600, certs 0644", () => {
    const store = snapshotStore(theStore());
    const mode = (path: string) => store[path]?.split(" ")[1];
    const keyPairs = [
      "pki/ca",
      "pki/front-proxy-ca",
      "pki/etcd/ca",
      ...HOSTS.flatMap((host) =>
        [
          "apiserver",
          "apiserver-kubelet-client",
          "front-proxy-client",
          "apiserver-etcd-client",
          "etcd/server",
          "etcd/peer",
          "etcd/healthcheck-client",
        ].map((base) => `nodes/${host}/pki/${base}`),
      ),
    ];
    for (const base of keyPairs) {
      expect(mode(`${base}.crt`), `${base}.crt`).toBe("644");
      expect(mode(`${base}.key`), `${base}.key`).toBe("600");
    }
    expect(mode("pki/sa.key")).toBe("600");
    expect(Number.parseInt(mode("pki/sa.pub") ?? "777", 8) & 0o022).toBe(0);
    const kubeconfigs = [
      "kubeconfigs/admin.conf",
      "kubeconfigs/super-admin.conf",
      ...HOSTS.flatMap((host) =>
        ["controller-manager", "scheduler", "kubelet"].map((name) => `nodes/${host}/${name}.conf`),
      ),
    ];
    for (const path of kubeconfigs) expect(mode(path), path).toBe("600");
    for (const [path, entry] of Object.entries(store)) {
      if (path.endsWith("/")) expect(entry, path).toBe("dir 700");
    }
    // 3 CAs + sa + 7 leaves × 3 nodes + 2 admin kubeconfigs + 3 kubeconfigs × 3 nodes.
    expect(keyPairs.length + 1 + kubeconfigs.length).toBe(36);
  });

  // -------------------------------------------------------------------------------------------
  // etcd

  it("runs a real 3-member etcd cluster on each node's own certs: healthcheck-client is let in by IP, other CAs are not", async () => {
    const lab = theLab();
    const store = theStore();
    const etcdCa = join(store, "pki/etcd/ca.crt");
    const node = (host: string, file: string) => join(store, "nodes", host, "pki", file);
    const initialCluster = HOSTS.map((h) => `${h}=https://${ADDRESS[h]}:2380`).join(",");

    let failure: unknown;
    try {
      // Binaries from this machine's Debian packages (etcd-server, etcd-client): the hosts have no network.
      await Promise.all(
        HOSTS.map(async (host) => {
          await must(
            host,
            "mkdir -p /usr/local/bin /etc/kubernetes/pki/etcd && chmod 700 /etc/kubernetes/pki",
          );
          await copyTo(host, [
            ["/usr/bin/etcd", "/usr/local/bin/etcd"],
            ["/usr/bin/etcdctl", "/usr/local/bin/etcdctl"],
            [etcdCa, "/etc/kubernetes/pki/etcd/ca.crt"],
            ...(["server", "peer"] as const).flatMap(
              (kind): Array<[string, string]> => [
                [node(host, `etcd/${kind}.crt`), `/etc/kubernetes/pki/etcd/${kind}.crt`],
                [node(host, `etcd/${kind}.key`), `/etc/kubernetes/pki/etcd/${kind}.key`],
              ],
            ),
          ]);
          await must(host, "chmod 600 /etc/kubernetes/pki/etcd/*.key && rm -rf /var/lib/etcd");
          // kubeadm's flags for a stacked member (kubeadm-spec.md §1.5), as a transient systemd unit.
          const ip = ADDRESS[host];
          const pki = "/etc/kubernetes/pki/etcd";
          const flags = [
            `--name=${host}`,
            `--listen-client-urls=https://127.0.0.1:2379,https://${ip}:2379`,
            `--advertise-client-urls=https://${ip}:2379`,
            `--listen-peer-urls=https://${ip}:2380`,
            `--initial-advertise-peer-urls=https://${ip}:2380`,
            `--initial-cluster=${initialCluster}`,
            "--initial-cluster-state=new",
            "--initial-cluster-token=kf-pki-test",
            "--data-dir=/var/lib/etcd",
            `--cert-file=${pki}/server.crt`,
            `--key-file=${pki}/server.key`,
            `--trusted-ca-file=${pki}/ca.crt`,
            "--client-cert-auth=true",
            `--peer-cert-file=${pki}/peer.crt`,
            `--peer-key-file=${pki}/peer.key`,
            `--peer-trusted-ca-file=${pki}/ca.crt`,
            "--peer-client-cert-auth=true",
            "--listen-metrics-urls=http://127.0.0.1:2381",
          ];
          await must(
            host,
            `systemd-run --quiet --collect --unit=${ETCD_UNIT} /usr/local/bin/etcd ${flags.join(" ")}`,
          );
        }),
      );

      // Each member by IP with its own node's healthcheck-client (etcdctl verifies the IP SAN).
      const etcdctl = (ip: string, cert: string, key: string, ...command: string[]) =>
        run(
          "etcdctl",
          [
            `--endpoints=https://${ip}:2379`,
            `--cacert=${etcdCa}`,
            `--cert=${cert}`,
            `--key=${key}`,
            "--dial-timeout=3s",
            "--command-timeout=5s",
            ...command,
          ],
          { cwd: work, env: { ETCDCTL_API: "3" } },
        );
      const healthcheck = (host: (typeof HOSTS)[number]) =>
        [node(host, "etcd/healthcheck-client.crt"), node(host, "etcd/healthcheck-client.key")] as const;

      const deadline = Date.now() + 60_000;
      for (const host of HOSTS) {
        for (;;) {
          const health = await etcdctl(ADDRESS[host], ...healthcheck(host), "endpoint", "health");
          if (health.code === 0) {
            expect(health.stdout + health.stderr).toContain(`https://${ADDRESS[host]}:2379 is healthy`);
            break;
          }
          if (Date.now() > deadline) {
            const journal = await must(host, `journalctl -u ${ETCD_UNIT} --no-pager -n 30 || true`);
            throw new Error(`etcd on ${host} not healthy within 60 s: ${show(health)}\njournal:\n${journal}`);
          }
          await new Promise((resolve) => setTimeout(resolve, 500));
        }
      }

      // One cluster of three voting members, each at its own address.
      const members = await etcdctl(ADDRESS.h1, ...healthcheck("h1"), "member", "list", "-w", "json");
      expect(members.code, show(members)).toBe(0);
      const list = (
        JSON.parse(members.stdout) as {
          members: Array<{ name: string; peerURLs: string[]; clientURLs: string[]; isLearner?: boolean }>;
        }
      ).members;
      expect(
        list.map((m) => ({
          name: m.name,
          peer: m.peerURLs,
          client: m.clientURLs,
          learner: m.isLearner ?? false,
        })),
      ).toEqual(
        expect.arrayContaining(
          HOSTS.map((h) => ({
            name: h,
            peer: [`https://${ADDRESS[h]}:2380`],
            client: [`https://${ADDRESS[h]}:2379`],
            learner: false,
          })),
        ),
      );
      expect(list).toHaveLength(3);
      // Replicated: written through h1, read through h3 (peer TLS carries it).
      const put = await etcdctl(ADDRESS.h1, ...healthcheck("h1"), "put", "kubeforge/pki", "ok");
      expect(put.code, show(put)).toBe(0);
      const get = await etcdctl(
        ADDRESS.h3,
        ...healthcheck("h3"),
        "get",
        "kubeforge/pki",
        "--print-value-only",
      );
      expect(get.stdout.trim(), show(get)).toBe("ok");

      // Each member serves ITS node's server cert on 2379 and peer cert on 2380.
      for (const host of HOSTS) {
        for (const [port, kind] of [
          [2379, "server"],
          [2380, "peer"],
        ] as const) {
          const presented = await peerCertificate(ADDRESS[host], port, {
            ca: readFileSync(etcdCa),
            cert: readFileSync(node(host, kind === "peer" ? "etcd/peer.crt" : "etcd/healthcheck-client.crt")),
            key: readFileSync(node(host, kind === "peer" ? "etcd/peer.key" : "etcd/healthcheck-client.key")),
          });
          expect(presented, `${host}:${port}`).toBe(
            fingerprint(readFileSync(node(host, `etcd/${kind}.crt`))),
          );
        }
      }

      // A client cert from another CA is refused by every member: a foreign CA, and the cluster's own
      // Kubernetes CA (apiserver-kubelet-client), which must not open etcd.
      const foreign = join(work, "foreign");
      await opensslCert({
        cert: join(foreign, "ca.crt"),
        key: join(foreign, "ca.key"),
        cn: "etcd-ca",
        isCa: true,
        days: 1,
        scratch: work,
      });
      await opensslCert({
        cert: join(foreign, "healthcheck-client.crt"),
        key: join(foreign, "healthcheck-client.key"),
        ca: { cert: join(foreign, "ca.crt"), key: join(foreign, "ca.key") },
        cn: "kube-etcd-healthcheck-client",
        usages: ["clientAuth"],
        days: 1,
        scratch: work,
      });
      const outsiders = [
        ["a foreign CA", join(foreign, "healthcheck-client.crt"), join(foreign, "healthcheck-client.key")],
        [
          "the Kubernetes CA",
          node("h1", "apiserver-kubelet-client.crt"),
          node("h1", "apiserver-kubelet-client.key"),
        ],
      ] as const;
      for (const host of HOSTS) {
        for (const [what, cert, key] of outsiders) {
          const refused = await etcdctl(ADDRESS[host], cert, key, "endpoint", "health");
          expect(refused.code, `${host} with a client cert from ${what}: ${show(refused)}`).not.toBe(0);
          expect(refused.stdout + refused.stderr).toContain(`https://${ADDRESS[host]}:2379 is unhealthy`);
        }
        // …and refused for the reason under test: the member rejected the client certificate.
        const journal = await must(host, `journalctl -u ${ETCD_UNIT} --no-pager -o cat`);
        expect(journal).toMatch(
          /rejected connection from "198\.18\.12\.1:\d+".*(unknown authority|bad certificate)/,
        );
      }
      // The healthcheck client still gets in afterwards.
      const again = await etcdctl(ADDRESS.h2, ...healthcheck("h2"), "endpoint", "health");
      expect(again.code, show(again)).toBe(0);
    } catch (error) {
      failure = error;
    }
    // Stop and clean up the members whatever happened; a failed cleanup fails the test too.
    const cleanup = await Promise.allSettled(
      lab.hosts.map((h) =>
        must(
          h.name,
          `systemctl stop ${ETCD_UNIT} 2>/dev/null; rm -rf /var/lib/etcd /etc/kubernetes/pki /usr/local/bin/etcd /usr/local/bin/etcdctl; ` +
            `! systemctl is-active --quiet ${ETCD_UNIT}`,
        ),
      ),
    );
    if (failure !== undefined) throw failure;
    const failed = cleanup.filter((r) => r.status === "rejected");
    if (failed.length > 0)
      throw new Error(`etcd cleanup failed: ${failed.map((r) => String(r.reason)).join("\n")}`);
  });

  // -------------------------------------------------------------------------------------------
  // TLS: a stand-in for kube-apiserver

  describe("kube-apiserver stand-in (Node https on 127.0.0.1, h1's apiserver.crt, client certs from ca.crt)", () => {
    let standIn: ApiserverStandIn | undefined;
    let standInError: unknown;
    const theStandIn = (): ApiserverStandIn => {
      if (!standIn) throw new Error(`starting the stand-in failed: ${String(standInError)}`);
      return standIn;
    };

    beforeAll(async () => {
      try {
        const store = theStore();
        standIn = await startApiserverStandIn({
          cert: readFileSync(join(store, "nodes/h1/pki/apiserver.crt")),
          key: readFileSync(join(store, "nodes/h1/pki/apiserver.key")),
          clientCa: readFileSync(join(store, "pki/ca.crt")),
        });
      } catch (error) {
        standInError = error;
      }
    });
    afterAll(async () => {
      await standIn?.close();
    });

    /** `kubectl --kubeconfig FILE --server <stand-in> --tls-server-name NAME get --raw /version`. */
    const getVersion = (kubeconfig: string, serverName = "kubernetes") =>
      run(
        KUBECTL,
        [
          "--kubeconfig",
          kubeconfig,
          "--server",
          theStandIn().url,
          "--tls-server-name",
          serverName,
          "--request-timeout=10s",
          "get",
          "--raw",
          "/version",
        ],
        { cwd: work },
      );

    const echoed = (r: ProcessRun) => (JSON.parse(r.stdout) as VersionBody).kubeforgeTestClient;

    it("accepts kubectl with admin.conf (CN=kubernetes-admin, O=kubeadm:cluster-admins) and super-admin.conf (O=system:masters)", async () => {
      const store = theStore();
      const admin = join(store, "kubeconfigs/admin.conf");
      // admin.conf points at the cluster endpoint; the stand-in is reached with --server.
      expect(parseKubeconfig(readFileSync(admin, "utf8")).server).toBe(`https://${CLUSTER}-api:6443`);

      const asAdmin = await getVersion(admin);
      expect(asAdmin.code, show(asAdmin)).toBe(0);
      expect(JSON.parse(asAdmin.stdout)).toMatchObject({ major: "1", minor: "30" });
      expect(echoed(asAdmin)).toEqual({ cn: "kubernetes-admin", o: ["kubeadm:cluster-admins"] });

      const asSuperAdmin = await getVersion(join(store, "kubeconfigs/super-admin.conf"));
      expect(asSuperAdmin.code, show(asSuperAdmin)).toBe(0);
      expect(echoed(asSuperAdmin)).toEqual({ cn: "kubernetes-super-admin", o: ["system:masters"] });
    });

    it("is verified by name honestly: a server name that is not a SAN of apiserver.crt is refused by kubectl", async () => {
      const admin = join(theStore(), "kubeconfigs/admin.conf");
      const before = theStandIn().requests.length;
      const wrongName = await getVersion(admin, "not-a-san.example.com");
      expect(wrongName.code).not.toBe(0);
      expect(wrongName.stderr).toMatch(/x509: certificate is valid for .*not not-a-san\.example\.com/);
      expect(theStandIn().requests.length).toBe(before);
      // Every SAN kubeadm puts on it for the cluster endpoint is accepted.
      for (const name of [`${CLUSTER}-api`, "kubernetes.default.svc.cluster.local", "kf-api.example.com"]) {
        const ok = await getVersion(admin, name);
        expect(ok.code, `${name}: ${show(ok)}`).toBe(0);
      }
    });

    it("rejects a client cert from front-proxy-ca (front-proxy-client) in the TLS handshake", async () => {
      const store = theStore();
      const frontProxy = join(work, "front-proxy-client.conf");
      writeFileSync(
        frontProxy,
        withClientCredentials(
          readFileSync(join(store, "kubeconfigs/admin.conf"), "utf8"),
          readFileSync(join(store, "nodes/h1/pki/front-proxy-client.crt"), "utf8"),
          readFileSync(join(store, "nodes/h1/pki/front-proxy-client.key"), "utf8"),
        ),
        { mode: 0o600 },
      );
      const before = theStandIn().requests.length;
      const refusedBefore = theStandIn().refused.length;
      const rejected = await getVersion(frontProxy);
      expect(rejected.code, show(rejected)).not.toBe(0);
      expect(theStandIn().requests.length).toBe(before);
      // Refused for the reason under test: front-proxy-client does not chain to ca.crt.
      expect(theStandIn().refused.slice(refusedBefore)).toEqual([
        { cn: "front-proxy-client", reason: "UNABLE_TO_VERIFY_LEAF_SIGNATURE" },
      ]);
    });

    it("presents CN=alice, O=dev with the user kubeconfig from `kubeconfig user --name alice --group dev`", async () => {
      const made = await PKI.userKubeconfig(join(work, "cluster.yaml"), join(work, "state"), work, {
        name: "alice",
        groups: ["dev"],
      });
      expect(made.code, show(made)).toBe(0);
      const parts = parseKubeconfig(made.stdout);
      expect(parts.server).toBe(`https://${CLUSTER}-api:6443`);
      expect(parts.caPem.trim()).toBe(readFileSync(join(theStore(), "pki/ca.crt"), "utf8").trim());
      expect(subjectOf(parts.certPem)).toEqual({ cn: "alice", o: ["dev"] });
      const alice = join(work, "alice.conf");
      writeFileSync(alice, made.stdout, { mode: 0o600 });

      const asAlice = await getVersion(alice);
      expect(asAlice.code, show(asAlice)).toBe(0);
      expect(echoed(asAlice)).toEqual({ cn: "alice", o: ["dev"] });
    });
  });

  // -------------------------------------------------------------------------------------------
  // Reuse

  it("reuses the store as it is, and refuses changed certSANs with exit 2 naming the difference, changing no file", async () => {
    theStore(); // the generator works at all
    const stateDir = join(work, "state-sans");
    const clusterDir = join(stateDir, CLUSTER);
    const first = await PKI.generate(clusterFile("sans"), stateDir, work);
    expect(first.code, show(first)).toBe(0);
    const before = snapshotStore(clusterDir);
    expect(Object.keys(before).length).toBeGreaterThan(36);

    const same = await PKI.generate(clusterFile("sans"), stateDir, work);
    expect(same.code, show(same)).toBe(0);
    expect(snapshotStore(clusterDir)).toEqual(before);

    const changed = await PKI.generate(
      clusterFile("sans", ["kf-other.example.com", "198.18.12.200"]),
      stateDir,
      work,
    );
    expect(changed.code, show(changed)).toBe(2);
    expect(changed.stderr).toContain("apiserver");
    expect(changed.stderr).toContain("kf-other.example.com"); // added
    expect(changed.stderr).toContain("198.18.12.200"); // added
    expect(changed.stderr).toContain("kf-api.example.com"); // removed
    expect(changed.stderr).toContain("certs renew apiserver"); // the fix
    expect(snapshotStore(clusterDir)).toEqual(before);
  });
});

// ---------------------------------------------------------------------------------------------
// Helpers

interface VersionBody {
  major: string;
  minor: string;
  gitVersion: string;
  kubeforgeTestClient: { cn: string; o: string[] };
}

interface ApiserverStandIn {
  url: string;
  requests: Array<{ path: string; cn: string; o: string[] }>;
  /** Connections whose client cert did not verify against the client CA, closed after the handshake. */
  refused: Array<{ cn: string; reason: string }>;
  tlsErrors: string[];
  close(): Promise<void>;
}

/** An HTTPS server answering `/version` like kube-apiserver, echoing the client cert's CN and O. */
async function startApiserverStandIn(options: {
  cert: Buffer;
  key: Buffer;
  clientCa: Buffer;
}): Promise<ApiserverStandIn> {
  const requests: ApiserverStandIn["requests"] = [];
  const tlsErrors: string[] = [];
  const refused: ApiserverStandIn["refused"] = [];
  const server: Server = createServer(
    {
      cert: options.cert,
      key: options.key,
      ca: options.clientCa,
      requestCert: true,
      rejectUnauthorized: false, // refused in "secureConnection" below, with the reason recorded
    },
    (request, response) => {
      const socket = request.socket as TLSSocket;
      // Recorded in "secureConnection"; a request already buffered with the handshake can still arrive.
      if (!socket.authorized) {
        socket.destroy();
        return;
      }
      const peer = socket.getPeerCertificate();
      const o = peer.subject?.O;
      const client = {
        cn: String(peer.subject?.CN ?? ""),
        o: o === undefined ? [] : Array.isArray(o) ? o : [o],
      };
      // kubectl adds ?timeout= from --request-timeout.
      const path = new URL(request.url ?? "/", "https://stand-in").pathname;
      requests.push({ path, ...client });
      if (path !== "/version") {
        response.writeHead(404, { "content-type": "application/json" });
        response.end(JSON.stringify({ kind: "Status", status: "Failure", code: 404 }));
        return;
      }
      const body: VersionBody = {
        major: "1",
        minor: "30",
        gitVersion: `${VERSION}-kubeforge-test-stand-in`,
        kubeforgeTestClient: client,
      };
      response.writeHead(200, { "content-type": "application/json" });
      response.end(JSON.stringify(body));
    },
  );
  server.on("tlsClientError", (error) => tlsErrors.push(String(error)));
  // As kube-apiserver (Go's VerifyClientCertIfGiven): a client cert that does not chain to the client
  // CA ends the connection before any request; recorded here with the reason, to prove why.
  // Prepended so it runs before the HTTP parser is attached to the socket.
  server.prependListener("secureConnection", (socket: TLSSocket) => {
    if (socket.authorized) return;
    const peer = socket.getPeerCertificate();
    refused.push({ cn: String(peer.subject?.CN ?? ""), reason: String(socket.authorizationError) });
    socket.destroy();
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `https://127.0.0.1:${port}`,
    requests,
    refused,
    tlsErrors,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The SHA-256 fingerprint of the certificate a TLS server presents, verified against `ca` by IP. */
function peerCertificate(
  host: string,
  port: number,
  credentials: { ca: Buffer; cert: Buffer; key: Buffer },
): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, ...credentials, rejectUnauthorized: true, timeout: 5000 }, () => {
      const presented = socket.getPeerCertificate().fingerprint256;
      socket.end();
      resolve(presented);
    });
    socket.once("timeout", () => socket.destroy(new Error(`TLS to ${host}:${port} timed out`)));
    socket.once("error", reject);
  });
}
