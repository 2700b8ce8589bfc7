// The recording fake API server on its own, spoken to with raw HTTPS requests, so what it answers is
// checked independently of api/client.ts.
import { readFile } from "node:fs/promises";
import { request } from "node:https";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { currentCredentials, parseKubeconfig } from "../certs/kubeconfigs.js";
import { ensurePki } from "../certs/store.js";
import { clusterFile, openssl, tempClusterDir } from "../certs/testing.js";
import { type RecordingFakeApiServer, startFakeApiServerFromStore } from "./fake-apiserver.js";
import { detachedSignatureIsValid } from "./jws.js";
import type { ApiObject } from "./objects.js";

interface Identity {
  cert?: string;
  key?: string;
  token?: string;
}

let dir: string;
let cleanup: () => Promise<void>;
let fake: RecordingFakeApiServer;
let ca: string;
let masters: Identity;
let clusterAdmins: Identity;

beforeAll(async () => {
  ({ dir, cleanup } = await tempClusterDir());
  await ensurePki(clusterFile({ version: "v1.30.4" }), dir);
  ca = await readFile(join(dir, "pki/ca.crt"), "utf8");
  const identity = async (file: string): Promise<Identity> => {
    const { certPem, keyPem } = currentCredentials(parseKubeconfig(await readFile(join(dir, file), "utf8")));
    return { cert: certPem ?? "", key: keyPem ?? "" };
  };
  masters = await identity("kubeconfigs/super-admin.conf");
  clusterAdmins = await identity("kubeconfigs/admin.conf");
  fake = await startFakeApiServerFromStore(dir, "cp1");
});

afterAll(async () => {
  await fake.close();
  await cleanup();
});

beforeEach(() => fake.clearRecords());

/** One HTTPS request that verifies the server as `demo-api`; the JSON (or text) answer. */
function call(
  who: Identity,
  method: string,
  path: string,
  body?: unknown,
  contentType = "application/json",
): Promise<{ status: number; body: Record<string, unknown> & { items?: ApiObject[] }; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: fake.host,
        port: fake.port,
        method,
        path,
        ca,
        servername: "demo-api",
        ...(who.cert && { cert: who.cert, key: who.key }),
        headers: {
          ...(who.token && { authorization: `Bearer ${who.token}` }),
          ...(body !== undefined && { "content-type": contentType }),
        },
      },
      (response) => {
        let text = "";
        response.on("data", (chunk) => {
          text += chunk;
        });
        response.on("end", () => {
          const json = response.headers["content-type"]?.startsWith("application/json")
            ? JSON.parse(text)
            : {};
          resolve({ status: response.statusCode ?? 0, body: json, text });
        });
      },
    );
    req.on("error", reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

const b64 = (text: string) => Buffer.from(text).toString("base64");
const CONFIG_MAPS = "/api/v1/namespaces/kube-system/configmaps";

function tokenSecret(id: string, secret: string, extra: Record<string, string> = {}): ApiObject {
  const data = {
    "token-id": id,
    "token-secret": secret,
    "usage-bootstrap-authentication": "true",
    "usage-bootstrap-signing": "true",
    "auth-extra-groups": "system:bootstrappers:kubeadm:default-node-token",
    ...extra,
  };
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name: `bootstrap-token-${id}`, namespace: "kube-system" },
    type: "bootstrap.kubernetes.io/token",
    data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, b64(v)])),
  };
}

describe("the recording fake API server", () => {
  it("answers health checks and the discovery client-node needs", async () => {
    for (const path of ["/livez", "/readyz", "/healthz"]) {
      expect(await call({}, "GET", path)).toMatchObject({ status: 200, text: "ok" });
    }
    expect((await call(masters, "GET", "/api")).body.versions).toEqual(["v1"]);
    const groups = (await call(masters, "GET", "/apis")).body.groups as { name: string }[];
    expect(groups.map((g) => g.name)).toEqual(["apps", "rbac.authorization.k8s.io", "certificates.k8s.io"]);
    const kinds = async (path: string) =>
      ((await call(masters, "GET", path)).body.resources as { kind: string }[]).map((r) => r.kind);
    expect(await kinds("/api/v1")).toEqual([
      "ConfigMap",
      "Secret",
      "ServiceAccount",
      "Service",
      "Pod",
      "Node",
      "Namespace",
    ]);
    expect(await kinds("/apis/apps/v1")).toEqual(["DaemonSet", "Deployment"]);
    expect(await kinds("/apis/rbac.authorization.k8s.io/v1")).toEqual([
      "Role",
      "RoleBinding",
      "ClusterRole",
      "ClusterRoleBinding",
    ]);
    expect(await kinds("/apis/certificates.k8s.io/v1")).toEqual(["CertificateSigningRequest"]);
  });

  it("creates with server metadata, refuses a duplicate and records the writes", async () => {
    const object = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "one" }, data: { a: "1" } };
    const created = await call(masters, "POST", CONFIG_MAPS, object);
    expect(created.status).toBe(201);
    expect(created.body.metadata).toMatchObject({
      name: "one",
      namespace: "kube-system",
      uid: expect.any(String),
      resourceVersion: expect.any(String),
      creationTimestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/),
    });
    expect(await call(masters, "POST", CONFIG_MAPS, object)).toMatchObject({
      status: 409,
      body: {
        kind: "Status",
        status: "Failure",
        reason: "AlreadyExists",
        message: 'configmaps "one" already exists',
        details: { name: "one", kind: "configmaps" },
        code: 409,
      },
    });
    expect(fake.writes()).toEqual([
      {
        verb: "create",
        kind: "ConfigMap",
        namespace: "kube-system",
        name: "one",
        user: "kubernetes-super-admin",
      },
    ]);
    expect(fake.requests.map((r) => `${r.method} ${r.status}`)).toEqual(["POST 201", "POST 409"]);
  });

  it("updates with a resourceVersion precondition, merge-patches, deletes, and 404s as the real server", async () => {
    const path = `${CONFIG_MAPS}/two`;
    const created = await call(masters, "POST", CONFIG_MAPS, { metadata: { name: "two" }, data: { a: "1" } });
    const version = (created.body.metadata as { resourceVersion: string }).resourceVersion;
    const stale = { metadata: { name: "two", resourceVersion: "1" }, data: { a: "2" } };
    expect(await call(masters, "PUT", path, stale)).toMatchObject({
      status: 409,
      body: { reason: "Conflict" },
    });
    const updated = await call(masters, "PUT", path, {
      metadata: { name: "two", resourceVersion: version },
      data: { a: "2" },
    });
    expect(updated.body.metadata).toMatchObject({ uid: (created.body.metadata as { uid: string }).uid });
    const patch = { metadata: { labels: { x: "y" } }, data: { a: null, b: "3" } };
    const patched = await call(masters, "PATCH", path, patch, "application/strategic-merge-patch+json");
    expect(patched.body).toMatchObject({ metadata: { labels: { x: "y" } }, data: { b: "3" } });
    expect(await call(masters, "PATCH", path, [], "application/json-patch+json")).toMatchObject({
      status: 415,
    });
    expect(await call(masters, "DELETE", path)).toMatchObject({ status: 200, body: { status: "Success" } });
    expect(await call(masters, "GET", path)).toMatchObject({
      status: 404,
      body: { reason: "NotFound", message: 'configmaps "two" not found' },
    });
    expect(fake.writes().map((w) => w.verb)).toEqual(["create", "update", "patch", "delete"]);
  });

  it("lists by label and field selectors; items come without apiVersion and kind", async () => {
    fake.put({
      apiVersion: "v1",
      kind: "Node",
      metadata: { name: "n1", labels: { role: "cp" } },
    } as ApiObject);
    fake.put({
      apiVersion: "v1",
      kind: "Node",
      metadata: { name: "n2", labels: { role: "worker" } },
    } as ApiObject);
    const names = async (query: string) =>
      ((await call(masters, "GET", `/api/v1/nodes${query}`)).body.items ?? []).map((n) => n.metadata.name);
    expect(await names("")).toEqual(["n1", "n2"]);
    expect(await names("?labelSelector=role%3Dcp")).toEqual(["n1"]);
    expect(await names("?labelSelector=role!%3Dcp")).toEqual(["n2"]);
    expect(await names("?labelSelector=!role")).toEqual([]);
    expect(await names("?fieldSelector=metadata.name%3Dn2")).toEqual(["n2"]);
    const list = await call(masters, "GET", "/api/v1/nodes");
    expect(list.body).toMatchObject({ kind: "NodeList", apiVersion: "v1" });
    expect(list.body.items?.[0]).not.toHaveProperty("kind");
    expect(fake.writes()).toEqual([]);
  });

  it("O=kubeadm:cluster-admins is Forbidden until ClusterRoleBinding kubeadm:cluster-admins exists", async () => {
    expect(await call(clusterAdmins, "GET", `${CONFIG_MAPS}/x`)).toMatchObject({
      status: 403,
      body: {
        reason: "Forbidden",
        message:
          'configmaps "x" is forbidden: User "kubernetes-admin" cannot get resource "configmaps" in API group "" in the namespace "kube-system"',
      },
    });
    const binding = {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRoleBinding",
      metadata: { name: "kubeadm:cluster-admins" },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "cluster-admin" },
      subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "Group", name: "kubeadm:cluster-admins" }],
    };
    expect(
      (await call(masters, "POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", binding)).status,
    ).toBe(201);
    expect((await call(clusterAdmins, "GET", `${CONFIG_MAPS}/x`)).status).toBe(404);
    expect(fake.requests.map((r) => r.user)).toEqual([
      "kubernetes-admin",
      "kubernetes-super-admin",
      "kubernetes-admin",
    ]);
  });

  it("authenticates bootstrap tokens and anonymous users, and grants them what RBAC grants", async () => {
    fake.put(tokenSecret("abcdef", "0123456789abcdef"));
    fake.put(tokenSecret("old000", "0123456789abcdef", { expiration: "2000-01-01T00:00:00Z" }));
    const token = { token: "abcdef.0123456789abcdef" };
    expect((await call(token, "GET", "/api/v1/nodes/n1")).status).toBe(403);
    expect((await call({ token: "abcdef.ffffffffffffffff" }, "GET", "/api/v1/nodes/n1")).status).toBe(401);
    expect((await call({ token: "old000.0123456789abcdef" }, "GET", "/api/v1/nodes/n1")).status).toBe(401);
    fake.put({
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRole",
      metadata: { name: "kubeadm:get-nodes" },
      rules: [{ apiGroups: [""], resources: ["nodes"], verbs: ["get"] }],
    } as ApiObject);
    fake.put({
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRoleBinding",
      metadata: { name: "kubeadm:get-nodes" },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "kubeadm:get-nodes" },
      subjects: [{ kind: "Group", name: "system:bootstrappers:kubeadm:default-node-token" }],
    } as ApiObject);
    expect((await call(token, "GET", "/api/v1/nodes/n1")).status).toBe(200);
    expect((await call(token, "GET", "/api/v1/nodes")).status).toBe(403);

    const clusterInfo = "/api/v1/namespaces/kube-public/configmaps/cluster-info";
    fake.put({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "cluster-info", namespace: "kube-public" },
      data: {},
    });
    expect((await call({}, "GET", clusterInfo)).status).toBe(403);
    fake.put({
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "Role",
      metadata: { name: "reader", namespace: "kube-public" },
      rules: [
        { apiGroups: [""], resources: ["configmaps"], resourceNames: ["cluster-info"], verbs: ["get"] },
      ],
    } as ApiObject);
    fake.put({
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "RoleBinding",
      metadata: { name: "reader", namespace: "kube-public" },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "reader" },
      subjects: [{ kind: "User", name: "system:anonymous" }],
    } as ApiObject);
    expect((await call({}, "GET", clusterInfo)).status).toBe(200);
    expect((await call({}, "GET", "/api/v1/namespaces/kube-public/configmaps/other")).status).toBe(403);
    expect(fake.requests.map((r) => r.user)).toEqual([
      "system:bootstrap:abcdef",
      "",
      "",
      "system:bootstrap:abcdef",
      "system:bootstrap:abcdef",
      "system:anonymous",
      "system:anonymous",
      "system:anonymous",
    ]);
  });

  it("refuses a client certificate another CA signed", async () => {
    const keyFile = join(dir, "mallory.key");
    const certFile = join(dir, "mallory.crt");
    const made = await openssl([
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-subj",
      "/O=system:masters/CN=mallory",
      "-days",
      "1",
      "-keyout",
      keyFile,
      "-out",
      certFile,
    ]);
    expect(made.code).toBe(0);
    const [cert, key] = await Promise.all([readFile(certFile, "utf8"), readFile(keyFile, "utf8")]);
    expect(await call({ cert, key }, "GET", "/api/v1/nodes")).toMatchObject({
      status: 401,
      body: { reason: "Unauthorized" },
    });
  });

  it("the bootstrapsigner stand-in signs cluster-info for each signing token, once switched on", async () => {
    const ref = { apiVersion: "v1", kind: "ConfigMap", name: "cluster-info", namespace: "kube-public" };
    fake.put({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "cluster-info", namespace: "kube-public" },
      data: { kubeconfig: "kc" },
    });
    fake.put(tokenSecret("sign01", "aaaaaaaaaaaaaaaa"));
    fake.put(tokenSecret("auth01", "bbbbbbbbbbbbbbbb", { "usage-bootstrap-signing": "false" }));
    expect(Object.keys(fake.object(ref)?.data as object)).toEqual(["kubeconfig"]);
    fake.setBootstrapSigner(true);
    const data = fake.object(ref)?.data as Record<string, string>;
    expect(Object.keys(data)).toContain("jws-kubeconfig-sign01");
    expect(Object.keys(data)).not.toContain("jws-kubeconfig-auth01");
    expect(
      detachedSignatureIsValid(data["jws-kubeconfig-sign01"] ?? "", "kc", "sign01", "aaaaaaaaaaaaaaaa"),
    ).toBe(true);
    // A deleted token's signature goes.
    expect(
      (await call(masters, "DELETE", "/api/v1/namespaces/kube-system/secrets/bootstrap-token-sign01")).status,
    ).toBe(200);
    expect(Object.keys(fake.object(ref)?.data as object)).not.toContain("jws-kubeconfig-sign01");
    fake.setBootstrapSigner(false);
  });
});
