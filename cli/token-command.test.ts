import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it, onTestFinished } from "vitest";
import { type OpenOptions, openClusterApi } from "../api/client.js";
import { startFakeApiServerFromStore } from "../api/fake-apiserver.js";
import { MemoryClusterApi } from "../api/memory-api.js";
import type { ApiObject } from "../api/objects.js";
import { tokenFromSecret, tokenToSecret } from "../api/tokens.js";
import { ensurePki } from "../certs/store.js";
import { parseClusterFile } from "../config/load.js";
import { kubeforge, minimalClusterFile, testDir } from "./testing.js";
import { type ApiOpener, tokenCommands } from "./token-command.js";

// kubeadm's pubkeypin test certificate and its expected hash (pubkeypin_test.go).
const CA = readFileSync(join(import.meta.dirname, "..", "api", "testdata", "test-ca.crt"), "utf8");
const CA_HASH = "sha256:345959acb2c3b2feb87d281961c893f62a314207ef02599f1cc4a5fb255480b3";
const ADMIN_CONF = `apiVersion: v1
kind: Config
clusters:
- cluster:
    certificate-authority-data: ${Buffer.from(CA).toString("base64")}
    server: https://demo-api:6443
  name: kubernetes
contexts: []
users: []
current-context: ""
`;
const TOKEN = "abcdef.0123456789abcdef";
const INIT_GROUP = "system:bootstrappers:kubeadm:default-node-token";

/** A cluster directory with the cluster file and, unless told otherwise, the store's admin.conf. */
function clusterDir(withAdmin = true): string {
  const cwd = testDir({ "cluster.yaml": minimalClusterFile("v1.30.4") });
  if (withAdmin) {
    const kubeconfigs = join(cwd, "home", ".kubeforge", "demo", "kubeconfigs");
    mkdirSync(kubeconfigs, { recursive: true });
    writeFileSync(join(kubeconfigs, "admin.conf"), ADMIN_CONF);
  }
  return cwd;
}

/** The CLI with `token` on an in-memory API; `opened` records every open. */
function withMemory(objects: ApiObject[] = []) {
  const api = new MemoryClusterApi(objects);
  const opened: OpenOptions[] = [];
  const open: ApiOpener = (options) => {
    opened.push(options);
    return api;
  };
  const cwd = clusterDir();
  const run = (...argv: string[]) => kubeforge(["token", ...argv], { cwd, commands: [tokenCommands(open)] });
  return { api, opened, run };
}

const secrets = (api: MemoryClusterApi) => api.all().filter((object) => object.kind === "Secret");
const tokenSecret = (token: string, fields: Partial<Parameters<typeof tokenToSecret>[0]> = {}) => {
  const [id = "", secret = ""] = token.split(".");
  return tokenToSecret({ token: { id, secret }, description: "", usages: [], groups: [], ...fields });
};

describe("token create", () => {
  it("writes the token's Secret with kubeadm's defaults through admin.conf at the first control plane", async () => {
    const { api, opened, run } = withMemory();
    const before = Date.now();
    const result = await run("create", TOKEN);
    expect(result).toMatchObject({ code: 0, stdout: `${TOKEN}\n`, stderr: "" });
    expect(opened).toHaveLength(1);
    expect(opened[0]).toMatchObject({ kubeconfig: ADMIN_CONF, dial: { host: "198.18.0.11", port: 6443 } });
    const [secret] = secrets(api);
    const row = tokenFromSecret(secret as ApiObject);
    expect(row).toMatchObject({
      token: { id: "abcdef", secret: "0123456789abcdef" },
      description: "",
      usages: ["authentication", "signing"],
      groups: [INIT_GROUP],
    });
    const ttl = (row.expires?.getTime() ?? 0) - before;
    expect(ttl).toBeGreaterThan(24 * 3_600_000 - 2_000);
    expect(ttl).toBeLessThanOrEqual(24 * 3_600_000 + 1_000);
  });

  it("takes --ttl, --description, --usages and --groups; a random token without an argument", async () => {
    const { api, run } = withMemory();
    const result = await run(
      "create",
      "--ttl",
      "0",
      "--description",
      "for w2",
      "--usages",
      "authentication",
      "--groups",
      "system:bootstrappers:workers,system:bootstrappers:kubeadm:default-node-token",
    );
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^[a-z0-9]{6}\.[a-z0-9]{16}\n$/);
    const row = tokenFromSecret(secrets(api)[0] as ApiObject);
    expect(row).toEqual({
      token: expect.objectContaining({ id: result.stdout.slice(0, 6) }),
      description: "for w2",
      usages: ["authentication"],
      groups: ["system:bootstrappers:workers", INIT_GROUP],
    });
    expect(row.expires).toBeUndefined();
  });

  it("--print-join-command prints kubeadm's join command with admin.conf's server and CA hash", async () => {
    const { run } = withMemory();
    expect(await run("create", TOKEN, "--print-join-command")).toMatchObject({
      code: 0,
      stdout: `kubeadm join demo-api:6443 --token ${TOKEN} --discovery-token-ca-cert-hash ${CA_HASH}\n`,
    });
  });

  it("refuses to overwrite an existing token (exit 1)", async () => {
    const { api, run } = withMemory([tokenSecret(TOKEN, { description: "theirs" })]);
    const result = await run("create", TOKEN);
    expect(result).toMatchObject({ code: 1, stdout: "" });
    expect(result.stderr).toContain('a token with id "abcdef" already exists');
    expect(api.writes).toEqual([]);
  });

  it.each([
    [["create", "abcdef.0123456789ABCDEF"], "the token argument is not of the form"],
    [["create", "--ttl", "1d"], "--ttl 1d is not a duration"],
    [["create", "--ttl", "-1h"], "--ttl -1h is not a duration"],
    [["create", "--usages", "signing,foo"], "--usages: invalid bootstrap token usage string: foo"],
    [
      ["create", "--usages", "signing"],
      '--groups: token groups cannot be specified unless --usages includes "authentication"',
    ],
    [
      ["create", "--groups", "system:bootstrappers:Bad"],
      '--groups: bootstrap group "system:bootstrappers:Bad" is invalid',
    ],
  ])("bad input %j: exit 2, naming the flag and the fix, before any API call", async (argv, message) => {
    const { opened, run } = withMemory();
    const result = await run(...argv);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(message);
    expect(result.stderr).not.toContain("0123456789");
    expect(opened).toEqual([]);
  });

  it('--usages signing with --groups "" is a signing-only token', async () => {
    const { api, run } = withMemory();
    expect((await run("create", TOKEN, "--usages", "signing", "--groups", "")).code).toBe(0);
    expect(tokenFromSecret(secrets(api)[0] as ApiObject)).toMatchObject({ usages: ["signing"], groups: [] });
  });

  it("without admin.conf in the store: exit 2, pointing at certs generate", async () => {
    const cwd = clusterDir(false);
    const result = await kubeforge(["token", "create"], {
      cwd,
      commands: [tokenCommands(() => new MemoryClusterApi())],
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(
      /kubeconfigs\/admin\.conf does not exist: run `kubeforge certs generate -f cluster\.yaml` first/,
    );
  });
});

describe("token list", () => {
  const init = tokenSecret(TOKEN, {
    description: "The default bootstrap token generated by 'kubeadm init'.",
    expires: new Date(Date.now() + 23.5 * 3_600_000),
    usages: ["signing", "authentication"],
    groups: [INIT_GROUP],
  });
  const broken: ApiObject = {
    ...tokenSecret("zzzzzz.0123456789abcdef"),
    metadata: { name: "bootstrap-token-yyyyyy", namespace: "kube-system" },
  };
  const other: ApiObject = {
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name: "x", namespace: "kube-system" },
    type: "Opaque",
  };

  it("prints kubeadm's table with the whole token; a broken token Secret is reported, others skipped", async () => {
    const { run } = withMemory([
      other,
      broken,
      tokenSecret("ghijkl.0123456789abcdef", { usages: ["signing"] }),
      init,
    ]);
    const result = await run("list");
    expect(result.code).toBe(0);
    const lines = result.stdout.split("\n");
    expect(lines[0]).toMatch(/^TOKEN {21}TTL {9}EXPIRES {16}USAGES {19}DESCRIPTION {48}EXTRA GROUPS$/);
    expect(lines[1]).toMatch(
      /^abcdef\.0123456789abcdef {3}23h {9}\S+Z {3}authentication,signing {3}The default bootstrap token generated by 'kubeadm init'\. {3}system:bootstrappers:kubeadm:default-node-token$/,
    );
    expect(lines[2]).toMatch(
      /^ghijkl\.0123456789abcdef {3}<forever> {3}<never> {3}signing {18}<none> {53}<none>$/,
    );
    expect(lines).toHaveLength(4);
    expect(result.stderr).toContain("bootstrap token name is not of the form");
  });

  it("-o json lists the tokens without their secrets", async () => {
    const { run } = withMemory([init]);
    const result = await run("list", "-o", "json");
    expect(result.code).toBe(0);
    expect(result.stdout).not.toContain("0123456789abcdef");
    expect(JSON.parse(result.stdout)).toMatchObject({
      type: "token.list",
      tokens: [
        {
          id: "abcdef",
          ttl: "23h",
          usages: ["authentication", "signing"],
          description: "The default bootstrap token generated by 'kubeadm init'.",
          groups: [INIT_GROUP],
        },
      ],
    });
  });

  it("prints nothing when there are no tokens", async () => {
    expect(await withMemory().run("list")).toMatchObject({ code: 0, stdout: "" });
  });
});

describe("token delete", () => {
  it("deletes by id or whole token", async () => {
    const { api, run } = withMemory([tokenSecret(TOKEN), tokenSecret("ghijkl.0123456789abcdef")]);
    const result = await run("delete", "abcdef", "ghijkl.0123456789abcdef");
    expect(result).toMatchObject({
      code: 0,
      stdout: 'bootstrap token "abcdef" deleted\nbootstrap token "ghijkl" deleted\n',
    });
    expect(secrets(api)).toEqual([]);
  });

  it("a token that is not there: exit 1", async () => {
    const result = await withMemory().run("delete", "abcdef");
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('failed to delete bootstrap token "abcdef"');
  });

  it("arguments that are neither ids nor tokens: exit 2, not echoed, before any API call", async () => {
    const { opened, run } = withMemory([tokenSecret(TOKEN)]);
    const result = await run("delete", "abcdef", "abcdef.0123456789ABCDEF");
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("argument 2 is neither a token id");
    expect(result.stderr).not.toContain("0123456789");
    expect(opened).toEqual([]);
  });
});

describe("token generate", () => {
  it("prints a random token and touches nothing", async () => {
    const { opened, run } = withMemory();
    const result = await run("generate");
    expect(result).toMatchObject({ code: 0, stderr: "" });
    expect(result.stdout).toMatch(/^[a-z0-9]{6}\.[a-z0-9]{16}\n$/);
    expect(opened).toEqual([]);
  });
});

// The real client against the recording fake API server, over TLS with a PKI from the local store;
// only the dial is redirected to where the fake listens.
describe("token against the fake API server", () => {
  it("creates, lists and deletes a token", async () => {
    const text = minimalClusterFile("v1.30.4").replace(
      "kubernetes: {version: v1.30.4}",
      "kubernetes: {version: v1.30.4, encryptionAlgorithm: ECDSA-P256}",
    );
    const cwd = testDir({ "cluster.yaml": text });
    const dir = join(cwd, "home", ".kubeforge", "demo");
    await ensurePki(parseClusterFile(text, "cluster.yaml", { env: {}, homeDir: cwd, cwd }).cluster, dir);
    const fake = await startFakeApiServerFromStore(dir, "cp1");
    onTestFinished(() => fake.close());
    // v1.30's admin.conf is O=kubeadm:cluster-admins: bound as init binds it.
    fake.put({
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRoleBinding",
      metadata: { name: "kubeadm:cluster-admins" },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "cluster-admin" },
      subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "Group", name: "kubeadm:cluster-admins" }],
    });
    const open: ApiOpener = (options) =>
      openClusterApi({
        ...options,
        dial: { host: fake.host, port: fake.port },
        retry: { timeoutMs: 2_000, intervalMs: 50 },
      });
    const run = (...argv: string[]) =>
      kubeforge(["token", ...argv], { cwd, commands: [tokenCommands(open)] });

    expect(await run("create", TOKEN, "--description", "for w2")).toMatchObject({
      code: 0,
      stdout: `${TOKEN}\n`,
    });
    expect(fake.writes()).toEqual([
      expect.objectContaining({
        verb: "create",
        kind: "Secret",
        name: "bootstrap-token-abcdef",
        user: "kubernetes-admin",
      }),
    ]);
    const listed = await run("list");
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(
      /^abcdef\.0123456789abcdef {3}23h .* for w2 +system:bootstrappers:kubeadm:default-node-token$/m,
    );
    expect(await run("delete", "abcdef")).toMatchObject({
      code: 0,
      stdout: 'bootstrap token "abcdef" deleted\n',
    });
    expect(await run("list")).toMatchObject({ code: 0, stdout: "" });
  });
});
