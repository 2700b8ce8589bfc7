import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import yaml from "js-yaml";
import { describe, expect, it } from "vitest";
import { kubeforge, testDir } from "./testing.js";

// ECDSA keeps these fast; RSA and every field are covered by certs/ and the kubeadm fixtures.
const CLUSTER = `apiVersion: kubeforge.dev/v1alpha1
kind: Cluster
metadata: {name: demo}
spec:
  ssh: {user: root, keyPath: ./id_ed25519, knownHostsPath: ./known_hosts}
  kubernetes:
    version: v1.30.4
    encryptionAlgorithm: ECDSA-P256
    apiServer: {certSANs: [api.example.com]}
  hosts:
    - {name: cp1, address: 198.18.0.11, role: control-plane}
    - {name: w1, address: 198.18.0.12, role: worker}
`;

function hashes(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (at: string) => {
    for (const entry of readdirSync(at, { withFileTypes: true })) {
      const path = join(at, entry.name);
      if (entry.isDirectory()) walk(path);
      else out[relative(dir, path)] = createHash("sha256").update(readFileSync(path)).digest("hex");
    }
  };
  walk(dir);
  return out;
}

async function setup() {
  const cwd = testDir({ "cluster.yaml": CLUSTER });
  const run = (...argv: string[]) => kubeforge(["--state-dir", join(cwd, "state"), ...argv], { cwd });
  return { cwd, run, store: join(cwd, "state", "demo") };
}

describe("kubeforge certs", () => {
  it("generates the store once, then reuses it", async () => {
    const { run, store } = await setup();
    const first = await run("certs", "generate");
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toContain("[certs] generated ca\n");
    expect(first.stdout).toContain(`16 generated, 0 reused, in ${store}\n`);
    expect(statSync(join(store, "pki", "ca.key")).mode & 0o777).toBe(0o600);
    expect(statSync(join(store, "nodes", "cp1", "pki")).mode & 0o777).toBe(0o700);
    const before = hashes(store);
    const second = await run("certs", "generate");
    expect(second.stdout).toContain("0 generated, 16 reused");
    expect(hashes(store)).toEqual(before);
    execFileSync("openssl", [
      "verify",
      "-CAfile",
      join(store, "pki", "ca.crt"),
      join(store, "nodes", "cp1", "pki", "apiserver.crt"),
    ]);
  });

  it("refuses a changed certSAN with exit 2, names the difference and the fix, and changes no file", async () => {
    const { cwd, run, store } = await setup();
    await run("certs", "generate");
    const before = hashes(store);
    writeFileSync(join(cwd, "cluster.yaml"), CLUSTER.replace("api.example.com", "api2.example.com"));
    const changed = await run("certs", "generate");
    expect(changed.code).toBe(2);
    expect(changed.stderr).toContain(
      "apiserver (cp1) (nodes/cp1/pki/apiserver.crt): SANs: missing DNS:api2.example.com; unexpected DNS:api.example.com",
    );
    expect(changed.stderr).toContain("fix: kubeforge certs renew apiserver -f cluster.yaml");
    expect(hashes(store)).toEqual(before);

    const renewed = await run("certs", "renew", "apiserver");
    expect(renewed.code, renewed.stderr).toBe(0);
    expect(renewed.stdout).toContain("[certs] renewed cp1/apiserver");
    const text = execFileSync(
      "openssl",
      [
        "x509",
        "-noout",
        "-ext",
        "subjectAltName",
        "-in",
        join(store, "nodes", "cp1", "pki", "apiserver.crt"),
      ],
      {
        encoding: "utf8",
      },
    );
    expect(text).toContain("DNS:api2.example.com");
    expect((await run("certs", "generate")).code).toBe(0);
  });

  it("never renews a CA and rejects unknown names with exit 2", async () => {
    const { run } = await setup();
    await run("certs", "generate");
    expect((await run("certs", "renew", "ca")).stderr).toContain("CAs are never renewed");
    expect((await run("certs", "renew", "ca")).code).toBe(2);
    expect((await run("certs", "renew", "apiserverx")).code).toBe(2);
  });

  it("lists the store and its expiry, in text and as JSON", async () => {
    const { run } = await setup();
    const missing = await run("certs", "check-expiration");
    expect(missing.stdout).toContain("file(s) missing: run `kubeforge certs generate`");
    await run("certs", "generate");
    const text = await run("certs", "check-expiration");
    expect(text.stdout).toMatch(
      /^CERTIFICATE\s+EXPIRES\s+RESIDUAL TIME\s+CERTIFICATE AUTHORITY\s+EXTERNALLY MANAGED$/m,
    );
    expect(text.stdout).toMatch(/^apiserver \(cp1\)\s+.+\s+364d\s+ca\s+no$/m);
    expect(text.stdout).toMatch(/^etcd-ca\s+.+\s+9y\s+no$/m);
    const json = JSON.parse((await run("-o", "json", "certs", "check-expiration")).stdout);
    expect(json).toMatchObject({ v: 1, type: "certs.expiration", expiring: [] });
    expect(json.entries.find((e: { id: string }) => e.id === "cp1/apiserver")).toMatchObject({
      commonName: "kube-apiserver",
      signedBy: "ca",
      algorithm: "ECDSA-P256",
    });
    const list = await run("certs", "list");
    expect(list.stdout).toMatch(
      /^admin\.conf\s+kubeconfigs\/admin\.conf\s+kubernetes-admin\s+kubeadm:cluster-admins\s/m,
    );
  });
});

describe("kubeforge kubeconfig", () => {
  it("merges the admin credentials under per-cluster names, 0600, switching context only when asked", async () => {
    const { cwd, run } = await setup();
    const before = await run("kubeconfig", "admin");
    expect(before.code).toBe(2);
    expect(before.stderr).toContain("run `kubeforge certs generate -f cluster.yaml` first");
    await run("certs", "generate");
    const target = join(cwd, "home", ".kube", "config");
    writeFileSync(join(cwd, "other.yaml"), "");
    const merged = await run("kubeconfig", "admin");
    expect(merged.stdout).toBe(
      `merged into ${target}: context kubeforge-demo-admin@kubeforge-demo (switch with: kubectl config use-context kubeforge-demo-admin@kubeforge-demo)\n`,
    );
    expect(statSync(target).mode & 0o777).toBe(0o600);
    const config = yaml.load(readFileSync(target, "utf8")) as {
      clusters: { name: string; cluster: { server: string } }[];
      "current-context"?: string;
    };
    expect(config.clusters).toEqual([
      expect.objectContaining({
        name: "kubeforge-demo",
        // demo-api resolves on the nodes only: the workstation dials cp1 and verifies the name.
        cluster: expect.objectContaining({
          server: "https://198.18.0.11:6443",
          "tls-server-name": "demo-api",
        }),
      }),
    ]);
    expect(config["current-context"] ?? "").toBe("");
    await run("kubeconfig", "admin", "--use-context");
    expect(
      (yaml.load(readFileSync(target, "utf8")) as { "current-context": string })["current-context"],
    ).toBe("kubeforge-demo-admin@kubeforge-demo");
    const standalone = await run("kubeconfig", "admin", "--kubeconfig-out", "demo.conf");
    expect(standalone.stdout).toBe(
      `wrote ${join(cwd, "demo.conf")}: context kubeforge-demo-admin@kubeforge-demo\n`,
    );
  });

  it("prints a user kubeconfig whose client certificate says CN=alice, O=dev and chains to the cluster CA", async () => {
    const { cwd, run, store } = await setup();
    await run("certs", "generate");
    const user = await run("kubeconfig", "user", "--name", "alice", "--group", "dev", "--validity", "720h");
    expect(user.code, user.stderr).toBe(0);
    const config = yaml.load(user.stdout) as { users: { user: { "client-certificate-data": string } }[] };
    const cert = Buffer.from(config.users[0]?.user["client-certificate-data"] ?? "", "base64").toString();
    writeFileSync(join(cwd, "alice.crt"), cert);
    const subject = execFileSync(
      "openssl",
      ["x509", "-noout", "-subject", "-nameopt", "RFC2253", "-in", join(cwd, "alice.crt")],
      { encoding: "utf8" },
    );
    expect(subject.trim()).toBe("subject=CN=alice,O=dev");
    execFileSync("openssl", ["verify", "-CAfile", join(store, "pki", "ca.crt"), join(cwd, "alice.crt")]);
  });
});
