// A RECORDING FAKE standing in for kube-apiserver in tests (the Kubernetes server binaries cannot be
// downloaded where kubeforge is tested). It is a real HTTPS server with the cluster's serving
// certificate, so the real client (api/client.ts on @kubernetes/client-node) talks to it over real
// TLS. What it does:
// - Authentication as kube-apiserver: a client certificate signed by the CA (CN → user, O → groups),
//   a bootstrap token (`Bearer <id>.<secret>`) matching a stored bootstrap-token Secret (user
//   `system:bootstrap:<id>`, groups system:bootstrappers + auth-extra-groups), else anonymous. A bad
//   certificate or token is 401.
// - Authorization, kept simple: group system:masters may do everything; everyone else gets what the
//   stored RBAC objects grant (ClusterRoles/Roles bound by ClusterRoleBindings/RoleBindings; the
//   ClusterRole cluster-admin is seeded, as the real server bootstraps it), so admin.conf with
//   O=kubeadm:cluster-admins is Forbidden until ClusterRoleBinding kubeadm:cluster-admins exists.
//   No aggregation, no built-in system:* roles, no non-resource rules: health and discovery
//   endpoints are open to everyone.
// - A generic in-memory store for the kinds kubeforge uses (RESOURCES), with discovery enough for
//   client-node's KubernetesObjectApi: GET, LIST (label and field selectors with =, ==, !=, exists),
//   POST (409 AlreadyExists, generateName), PUT and PATCH (merge and strategic merge both applied as
//   a JSON merge patch; resourceVersion preconditions give 409 Conflict), DELETE; uid,
//   resourceVersion and creationTimestamp set by the server; errors as Status objects.
// - It RECORDS every request (method, path, user, status; for writes the kind, namespace and name).
// - A stand-in for the controller-manager's bootstrapsigner, off unless switched on: it keeps
//   `jws-kubeconfig-<id>` in kube-public/cluster-info for every signing bootstrap token.
// No watch, no subresources (/status), no admission, no validation beyond names and namespaces.
import { randomUUID } from "node:crypto";
import { readFile } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer } from "node:https";
import { join } from "node:path";
import type { TLSSocket } from "node:tls";
import type { ObjectRef } from "./cluster-api.js";
import { detachedSignature } from "./jws.js";
import type { ApiObject } from "./objects.js";

export interface FakeApiServerOptions {
  caCertPem: string;
  serverCertPem: string;
  serverKeyPem: string;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0: any free port. */
  port?: number;
  /** Start with the bootstrapsigner stand-in on. */
  bootstrapSigner?: boolean;
  /** The clock for token expiry; default Date.now. */
  now?: () => number;
  /** What /version answers as gitVersion; says it is the fake unless a test names a version. */
  gitVersion?: string;
}

export type WriteVerb = "create" | "update" | "patch" | "delete";

export interface RecordedWrite {
  verb: WriteVerb;
  kind: string;
  namespace?: string;
  name: string;
  user: string;
}

export interface RecordedRequest {
  method: string;
  /** Path and query, as sent. */
  path: string;
  user: string;
  status: number;
  /** For POST, PUT, PATCH and DELETE on an object (also when refused). */
  write?: RecordedWrite;
}

export interface RecordingFakeApiServer {
  /** `https://<host>:<port>`. */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** Every request, in the order answered. */
  readonly requests: readonly RecordedRequest[];
  /** The writes that succeeded, in order. */
  writes(): RecordedWrite[];
  /** Forgets the recorded requests (the objects stay). */
  clearRecords(): void;
  /** Stores an object as a component would (a kubelet registering its Node); not recorded. */
  put(object: ApiObject): ApiObject;
  /** The stored object, as the server would return it. */
  object(ref: ObjectRef): ApiObject | undefined;
  setBootstrapSigner(on: boolean): void;
  /** The next `count` requests are answered with `code` (a 5xx, as from an API server still starting). */
  failNext(count: number, code?: number): void;
  close(): Promise<void>;
}

interface Resource {
  group: string;
  version: string;
  plural: string;
  singular: string;
  kind: string;
  namespaced: boolean;
}

const resource = (apiVersion: string, kind: string, plural: string, namespaced: boolean): Resource => {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  return {
    group: group ?? "",
    version: version ?? "",
    plural,
    singular: kind.toLowerCase(),
    kind,
    namespaced,
  };
};

const RBAC_V1 = "rbac.authorization.k8s.io/v1";
const RESOURCES: readonly Resource[] = [
  resource("v1", "ConfigMap", "configmaps", true),
  resource("v1", "Secret", "secrets", true),
  resource("v1", "ServiceAccount", "serviceaccounts", true),
  resource("v1", "Service", "services", true),
  resource("v1", "Pod", "pods", true),
  resource("v1", "Node", "nodes", false),
  resource("v1", "Namespace", "namespaces", false),
  resource("apps/v1", "DaemonSet", "daemonsets", true),
  resource("apps/v1", "Deployment", "deployments", true),
  resource(RBAC_V1, "Role", "roles", true),
  resource(RBAC_V1, "RoleBinding", "rolebindings", true),
  resource(RBAC_V1, "ClusterRole", "clusterroles", false),
  resource(RBAC_V1, "ClusterRoleBinding", "clusterrolebindings", false),
  resource("certificates.k8s.io/v1", "CertificateSigningRequest", "certificatesigningrequests", false),
];

const groupVersion = (r: Resource) => (r.group ? `${r.group}/${r.version}` : r.version);
/** `configmaps`, `clusterrolebindings.rbac.authorization.k8s.io`: how the server names a resource in messages. */
const qualified = (r: Resource) => (r.group ? `${r.plural}.${r.group}` : r.plural);
const VERBS = ["create", "delete", "get", "list", "patch", "update"];
// Strategic merge is applied as a JSON merge patch: for the fields kubeforge patches (labels,
// annotations, data, taints) the two agree, except that a merge patch replaces lists whole.
const MERGE_PATCHES = ["application/merge-patch+json", "application/strategic-merge-patch+json"];
const SEEDED_NAMESPACES = ["default", "kube-system", "kube-public", "kube-node-lease"];
const TOKEN_TYPE = "bootstrap.kubernetes.io/token";
const JWS_PREFIX = "jws-kubeconfig-";

interface Identity {
  user: string;
  groups: string[];
}

/** One request as the router sees it. */
interface Call {
  record: RecordedRequest;
  url: URL;
  identity: Identity;
  body: string;
  contentType: string;
}

interface Reply {
  code: number;
  body: unknown;
}

type Json = Record<string, unknown>;

class StatusError extends Error {
  constructor(readonly reply: Reply) {
    super((reply.body as { message: string }).message);
  }
}

function failure(
  code: number,
  reason: string,
  message: string,
  target?: { resource: Resource; name?: string },
): StatusError {
  const details = target && {
    ...(target.name && { name: target.name }),
    ...(target.resource.group && { group: target.resource.group }),
    kind: target.resource.plural,
  };
  return new StatusError({
    code,
    body: {
      kind: "Status",
      apiVersion: "v1",
      metadata: {},
      status: "Failure",
      message,
      reason,
      ...(details && { details }),
      code,
    },
  });
}

const isObject = (value: unknown): value is Json =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/** RFC 7386. */
function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return patch;
  const out: Json = isObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete out[key];
    else out[key] = mergePatch(out[key], value);
  }
  return out;
}

const metadataOf = (object: Json): Json => (isObject(object.metadata) ? object.metadata : {});
const decode = (data: unknown): Record<string, string> =>
  Object.fromEntries(
    Object.entries(isObject(data) ? data : {}).map(([key, value]) => [
      key,
      Buffer.from(String(value), "base64").toString("utf8"),
    ]),
  );

/** One `key=value`, `key==value`, `key!=value`, `key` or `!key` term of a selector. */
function matchesSelector(selector: string, lookup: (key: string) => string | undefined): boolean {
  return selector
    .split(",")
    .map((term) => term.trim())
    .filter(Boolean)
    .every((term) => {
      const match = /^(!?)([^!=]+?)\s*(?:(==|=|!=)\s*(.*))?$/.exec(term);
      if (!match) throw failure(400, "BadRequest", `unable to parse requirement: ${term}`);
      const [, not, key = "", operator, expected = ""] = match;
      const actual = lookup(key);
      if (!operator) return not ? actual === undefined : actual !== undefined;
      return operator === "!=" ? actual !== expected : actual === expected;
    });
}

function fieldValue(object: Json, path: string): string | undefined {
  let current: unknown = object;
  for (const part of path.split(".")) current = isObject(current) ? current[part] : undefined;
  return current === undefined ? undefined : String(current);
}

interface RbacRule {
  apiGroups?: string[];
  resources?: string[];
  resourceNames?: string[];
  verbs?: string[];
}

interface Attributes {
  verb: string;
  resource: Resource;
  namespace: string | undefined;
  name: string | undefined;
}

const includes = (list: string[] | undefined, value: string) =>
  (list ?? []).includes("*") || (list ?? []).includes(value);

function ruleAllows(rule: RbacRule, attributes: Attributes): boolean {
  const names = rule.resourceNames ?? [];
  return (
    includes(rule.verbs, attributes.verb) &&
    includes(rule.apiGroups, attributes.resource.group) &&
    includes(rule.resources, attributes.resource.plural) &&
    (names.length === 0 || (attributes.name !== undefined && names.includes(attributes.name)))
  );
}

export async function startRecordingFakeApiServer(
  options: FakeApiServerOptions,
): Promise<RecordingFakeApiServer> {
  const fake = new FakeApiServer(options);
  return fake.listen(options.host ?? "127.0.0.1", options.port ?? 0);
}

class FakeApiServer implements RecordingFakeApiServer {
  readonly requests: RecordedRequest[] = [];
  url = "";
  host = "";
  port = 0;
  #objects = new Map<string, Json>();
  #resourceVersion = 0;
  #signer: boolean;
  #failures: { count: number; code: number } = { count: 0, code: 503 };
  readonly #now: () => number;
  readonly #server;
  readonly gitVersion: string;

  constructor(options: FakeApiServerOptions) {
    this.#signer = options.bootstrapSigner ?? false;
    this.gitVersion = options.gitVersion ?? "v0.0.0-kubeforge-recording-fake";
    this.#now = options.now ?? Date.now;
    // Client certificates are asked for but not required: tokens and anonymous requests are allowed
    // too, and a certificate the CA did not sign is refused per request (401), as kube-apiserver does.
    this.#server = createServer(
      {
        ca: options.caCertPem,
        cert: options.serverCertPem,
        key: options.serverKeyPem,
        requestCert: true,
        rejectUnauthorized: false,
      },
      (request, response) => void this.#handle(request, response),
    );
    for (const name of SEEDED_NAMESPACES)
      this.put({ apiVersion: "v1", kind: "Namespace", metadata: { name } });
    this.put({
      apiVersion: RBAC_V1,
      kind: "ClusterRole",
      metadata: { name: "cluster-admin" },
      rules: [{ apiGroups: ["*"], resources: ["*"], verbs: ["*"] }],
    });
  }

  listen(host: string, port: number): Promise<this> {
    return new Promise((resolve, reject) => {
      this.#server.once("error", reject);
      this.#server.listen(port, host, () => {
        const address = this.#server.address();
        this.host = host;
        this.port = typeof address === "object" && address ? address.port : port;
        this.url = `https://${host.includes(":") ? `[${host}]` : host}:${this.port}`;
        resolve(this);
      });
    });
  }

  writes(): RecordedWrite[] {
    return this.requests.flatMap((r) => (r.write && r.status < 300 ? [r.write] : []));
  }

  clearRecords(): void {
    this.requests.length = 0;
  }

  put(object: ApiObject): ApiObject {
    const target = this.#resourceOf(object.apiVersion, object.kind);
    const namespace = target.namespaced ? object.metadata.namespace : undefined;
    const stored = this.#write(
      target,
      namespace,
      structuredClone(object) as Json,
      this.#get(target, namespace, object.metadata.name),
    );
    return structuredClone(stored) as ApiObject;
  }

  object(ref: ObjectRef): ApiObject | undefined {
    const target = this.#resourceOf(ref.apiVersion, ref.kind);
    const stored = this.#get(target, target.namespaced ? ref.namespace : undefined, ref.name);
    return stored && (structuredClone(stored) as ApiObject);
  }

  setBootstrapSigner(on: boolean): void {
    this.#signer = on;
    this.#sign();
  }

  failNext(count: number, code = 503): void {
    this.#failures = { count, code };
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }

  #resourceOf(apiVersion: string, kind: string): Resource {
    const found = RESOURCES.find((r) => groupVersion(r) === apiVersion && r.kind === kind);
    if (!found) throw new Error(`the fake API server does not serve ${apiVersion} ${kind}`);
    return found;
  }

  #key(target: Resource, namespace: string | undefined, name: string): string {
    return `${target.group}/${target.plural}/${namespace ?? ""}/${name}`;
  }

  #get(target: Resource, namespace: string | undefined, name: string): Json | undefined {
    return this.#objects.get(this.#key(target, namespace, name));
  }

  /** In key order, as etcd lists; every namespace's when `namespace` is undefined. */
  #list(target: Resource, namespace: string | undefined): Json[] {
    const prefix = `${target.group}/${target.plural}/${namespace === undefined ? "" : `${namespace}/`}`;
    return [...this.#objects.entries()]
      .filter(([key]) => key.startsWith(prefix))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, object]) => object);
  }

  /** Stores `object` with the metadata the server owns; `existing` keeps its uid and creation time. */
  #write(target: Resource, namespace: string | undefined, object: Json, existing: Json | undefined): Json {
    const metadata = metadataOf(object);
    const old = existing && metadataOf(existing);
    const name = String(metadata.name);
    if (target.kind === "Secret") {
      // As the real server: stringData is write-only, folded into data.
      const plain = isObject(object.stringData) ? object.stringData : {};
      const encoded = Object.fromEntries(
        Object.entries(plain).map(([key, value]) => [key, Buffer.from(String(value)).toString("base64")]),
      );
      object.data = { ...(isObject(object.data) ? object.data : {}), ...encoded };
      delete object.stringData;
      object.type ??= "Opaque";
    }
    const stored: Json = {
      ...object,
      apiVersion: groupVersion(target),
      kind: target.kind,
      metadata: {
        ...metadata,
        name,
        ...(namespace !== undefined && { namespace }),
        uid: old?.uid ?? randomUUID(),
        resourceVersion: String(++this.#resourceVersion),
        creationTimestamp:
          old?.creationTimestamp ?? new Date(this.#now()).toISOString().replace(/\.\d{3}Z$/, "Z"),
      },
    };
    this.#objects.set(this.#key(target, namespace, name), stored);
    this.#sign();
    return stored;
  }

  /** The bootstrapsigner stand-in: one signature per signing token, stale ones removed. */
  #sign(): void {
    if (!this.#signer) return;
    const configMaps = this.#resourceOf("v1", "ConfigMap");
    const info = this.#get(configMaps, "kube-public", "cluster-info");
    const data = info && isObject(info.data) ? info.data : undefined;
    if (!info || typeof data?.kubeconfig !== "string") return;
    const kubeconfig = data.kubeconfig;
    const signatures: Record<string, string> = {};
    for (const secret of this.#list(this.#resourceOf("v1", "Secret"), "kube-system")) {
      const token = this.#token(secret);
      if (token && token.data["usage-bootstrap-signing"] === "true") {
        signatures[`${JWS_PREFIX}${token.id}`] = detachedSignature(kubeconfig, token.id, token.secret);
      }
    }
    const next = {
      ...Object.fromEntries(Object.entries(data).filter(([key]) => !key.startsWith(JWS_PREFIX))),
      ...signatures,
    };
    if (JSON.stringify(next) !== JSON.stringify(data)) {
      this.#write(configMaps, "kube-public", { ...info, data: next }, info);
    }
  }

  /** A valid (well-formed, unexpired) bootstrap token Secret's parts. */
  #token(secret: Json): { id: string; secret: string; data: Record<string, string> } | undefined {
    if (secret.type !== TOKEN_TYPE) return undefined;
    const data = decode(secret.data);
    const id = data["token-id"];
    const tokenSecret = data["token-secret"];
    if (!id || !tokenSecret || metadataOf(secret).name !== `bootstrap-token-${id}`) return undefined;
    const expiration = data.expiration;
    if (expiration && Date.parse(expiration) <= this.#now()) return undefined;
    return { id, secret: tokenSecret, data };
  }

  #authenticate(request: IncomingMessage): Identity {
    const socket = request.socket as TLSSocket;
    const certificate = socket.getPeerCertificate();
    if (certificate && Object.keys(certificate).length > 0) {
      if (!socket.authorized) throw failure(401, "Unauthorized", "Unauthorized");
      const o = certificate.subject.O;
      const groups = o === undefined ? [] : Array.isArray(o) ? o : [o];
      return { user: String(certificate.subject.CN), groups: [...groups, "system:authenticated"] };
    }
    const bearer = /^Bearer\s+(\S+)$/i.exec(request.headers.authorization ?? "")?.[1];
    if (bearer === undefined) return { user: "system:anonymous", groups: ["system:unauthenticated"] };
    const [id = "", secret] = bearer.split(".");
    const stored = this.#get(this.#resourceOf("v1", "Secret"), "kube-system", `bootstrap-token-${id}`);
    const token = stored && this.#token(stored);
    if (!token || token.secret !== secret || token.data["usage-bootstrap-authentication"] !== "true") {
      throw failure(401, "Unauthorized", "Unauthorized");
    }
    const extra = (token.data["auth-extra-groups"] ?? "").split(",").filter(Boolean);
    return {
      user: `system:bootstrap:${id}`,
      groups: ["system:bootstrappers", ...extra, "system:authenticated"],
    };
  }

  #authorize(identity: Identity, attributes: Attributes): void {
    if (identity.groups.includes("system:masters") || this.#rbacAllows(identity, attributes)) return;
    const { verb, resource: target, namespace, name } = attributes;
    const what = name ? `${qualified(target)} "${name}"` : qualified(target);
    const scope = namespace ? `in the namespace "${namespace}"` : "at the cluster scope";
    throw failure(
      403,
      "Forbidden",
      `${what} is forbidden: User "${identity.user}" cannot ${verb} resource "${target.plural}" in API group "${target.group}" ${scope}`,
      { resource: target, ...(name && { name }) },
    );
  }

  #rbacAllows(identity: Identity, attributes: Attributes): boolean {
    const rbac = (kind: string) => this.#resourceOf(RBAC_V1, kind);
    const bound = (binding: Json) =>
      (Array.isArray(binding.subjects) ? (binding.subjects as Json[]) : []).some(
        (s) =>
          (s.kind === "User" && s.name === identity.user) ||
          (s.kind === "Group" && identity.groups.includes(String(s.name))),
      );
    const allows = (role: Json | undefined) =>
      (Array.isArray(role?.rules) ? (role.rules as RbacRule[]) : []).some((rule) =>
        ruleAllows(rule, attributes),
      );
    const roleOf = (binding: Json, namespace: string | undefined) => {
      const ref = isObject(binding.roleRef) ? binding.roleRef : {};
      return ref.kind === "ClusterRole"
        ? this.#get(rbac("ClusterRole"), undefined, String(ref.name))
        : this.#get(rbac("Role"), namespace, String(ref.name));
    };
    const clusterWide = this.#list(rbac("ClusterRoleBinding"), undefined);
    const local = attributes.namespace ? this.#list(rbac("RoleBinding"), attributes.namespace) : [];
    return (
      clusterWide.some((binding) => bound(binding) && allows(roleOf(binding, undefined))) ||
      local.some((binding) => bound(binding) && allows(roleOf(binding, attributes.namespace)))
    );
  }

  async #handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? "/", "https://fake");
    const record: RecordedRequest = {
      method: request.method ?? "GET",
      path: `${url.pathname}${url.search}`,
      user: "",
      status: 0,
    };
    let reply: Reply;
    try {
      const body = await readBody(request);
      const identity = this.#authenticate(request);
      record.user = identity.user;
      if (this.#failures.count > 0) {
        this.#failures.count--;
        throw failure(this.#failures.code, "ServiceUnavailable", "failed on purpose by the test");
      }
      const contentType = (request.headers["content-type"] ?? "").split(";")[0]?.trim() ?? "";
      reply = this.#route({ record, url, identity, body, contentType });
    } catch (error) {
      reply =
        error instanceof StatusError
          ? error.reply
          : failure(500, "InternalError", `the fake API server failed: ${String(error)}`).reply;
    }
    record.status = reply.code;
    this.requests.push(record);
    const text = typeof reply.body === "string" ? reply.body : JSON.stringify(reply.body);
    response.writeHead(reply.code, {
      "content-type": typeof reply.body === "string" ? "text/plain; charset=utf-8" : "application/json",
    });
    response.end(text);
  }

  #route(call: Call): Reply {
    const path = call.url.pathname.replace(/\/+$/, "");
    if (["/livez", "/readyz", "/healthz"].includes(path)) return { code: 200, body: "ok" };
    if (path === "/version") return { code: 200, body: { gitVersion: this.gitVersion } };
    if (path === "/api") {
      return {
        code: 200,
        body: {
          kind: "APIVersions",
          versions: ["v1"],
          serverAddressByClientCIDRs: [
            { clientCIDR: "0.0.0.0/0", serverAddress: `${this.host}:${this.port}` },
          ],
        },
      };
    }
    if (path === "/apis") return { code: 200, body: this.#groups() };
    const parts = path.split("/").slice(1).map(decodeURIComponent);
    const [root, ...rest] = parts;
    const version = root === "api" ? rest.shift() : `${rest.shift()}/${rest.shift()}`;
    const served = RESOURCES.filter(
      (r) => (root === "api" || root === "apis") && groupVersion(r) === version,
    );
    if (served.length === 0)
      throw failure(404, "NotFound", "the server could not find the requested resource");
    if (rest.length === 0) {
      return {
        code: 200,
        body: {
          kind: "APIResourceList",
          apiVersion: "v1",
          groupVersion: version,
          resources: served.map((r) => ({
            name: r.plural,
            singularName: r.singular,
            namespaced: r.namespaced,
            kind: r.kind,
            verbs: VERBS,
          })),
        },
      };
    }
    // A namespaced path is `namespaces/<ns>/<plural>[/<name>]`; `namespaces[/<name>]` is the Namespace itself.
    const namespaced = rest[0] === "namespaces" && rest.length >= 3;
    const namespace = namespaced ? rest[1] : undefined;
    const [plural, name, ...subresource] = namespaced ? rest.slice(2) : rest;
    const target = served.find((r) => r.plural === plural);
    if (!target || subresource.length > 0 || (namespaced && !target.namespaced)) {
      throw failure(404, "NotFound", "the server could not find the requested resource");
    }
    return this.#resourceRequest(call, { target, namespace, name });
  }

  #groups(): Json {
    const groups = [...new Set(RESOURCES.filter((r) => r.group).map(groupVersion))].map((gv) => {
      const [name = "", version = ""] = gv.split("/");
      const entry = { groupVersion: gv, version };
      return { name, versions: [entry], preferredVersion: entry };
    });
    return { kind: "APIGroupList", apiVersion: "v1", groups };
  }

  #resourceRequest(
    call: Call,
    where: { target: Resource; namespace: string | undefined; name: string | undefined },
  ): Reply {
    const { record, identity, url } = call;
    const { target, namespace } = where;
    const verb =
      record.method === "GET"
        ? where.name
          ? "get"
          : "list"
        : ({ POST: "create", PUT: "update", PATCH: "patch", DELETE: "delete" } as const)[record.method];
    if (!verb || url.searchParams.get("watch") === "true" || (verb === "create" && where.name)) {
      throw failure(
        405,
        "MethodNotAllowed",
        "the server does not allow this method on the requested resource",
      );
    }
    if (verb === "patch" && !MERGE_PATCHES.includes(call.contentType)) {
      throw failure(
        415,
        "UnsupportedMediaType",
        `the body of the request was in an unknown format - accepted media types include: ${MERGE_PATCHES.join(", ")}`,
      );
    }
    const incoming = verb === "create" || verb === "update" || verb === "patch" ? parseJson(call.body) : {};
    const metadata = metadataOf(incoming);
    const name =
      where.name ??
      (typeof metadata.name === "string"
        ? metadata.name
        : typeof metadata.generateName === "string"
          ? `${metadata.generateName}${randomUUID().slice(0, 5)}`
          : undefined);
    if (verb !== "get" && verb !== "list") {
      record.write = {
        verb,
        kind: target.kind,
        ...(namespace !== undefined && { namespace }),
        name: name ?? "",
        user: identity.user,
      };
    }
    this.#authorize(identity, {
      verb,
      resource: target,
      namespace,
      name: verb === "create" ? undefined : name,
    });
    if (verb === "list") return { code: 200, body: this.#listReply(target, namespace, url) };
    if (!name) {
      throw failure(
        422,
        "Invalid",
        `${target.kind} "" is invalid: metadata.name: Required value: name or generateName is required`,
      );
    }
    const existing = this.#get(target, namespace, name);
    const notFound = () =>
      failure(404, "NotFound", `${qualified(target)} "${name}" not found`, { resource: target, name });
    if (verb === "get") {
      if (!existing) throw notFound();
      return { code: 200, body: existing };
    }
    if (verb === "delete") {
      if (!existing) throw notFound();
      this.#objects.delete(this.#key(target, namespace, name));
      this.#sign();
      const details = {
        name,
        ...(target.group && { group: target.group }),
        kind: target.plural,
        uid: metadataOf(existing).uid,
      };
      return {
        code: 200,
        body: { kind: "Status", apiVersion: "v1", metadata: {}, status: "Success", details },
      };
    }
    if (namespace !== undefined && metadata.namespace !== undefined && metadata.namespace !== namespace) {
      throw failure(
        400,
        "BadRequest",
        "the namespace of the provided object does not match the namespace sent on the request",
      );
    }
    if (verb === "create") {
      const namespaces = this.#resourceOf("v1", "Namespace");
      if (namespace !== undefined && !this.#get(namespaces, undefined, namespace)) {
        throw failure(404, "NotFound", `namespaces "${namespace}" not found`, {
          resource: namespaces,
          name: namespace,
        });
      }
      if (existing) {
        throw failure(409, "AlreadyExists", `${qualified(target)} "${name}" already exists`, {
          resource: target,
          name,
        });
      }
      return {
        code: 201,
        body: this.#write(target, namespace, { ...incoming, metadata: { ...metadata, name } }, undefined),
      };
    }
    if (!existing) throw notFound();
    // A resourceVersion in the body (update) or the patch is a precondition, as on the real server.
    if (
      metadata.resourceVersion !== undefined &&
      metadata.resourceVersion !== metadataOf(existing).resourceVersion
    ) {
      throw failure(
        409,
        "Conflict",
        `Operation cannot be fulfilled on ${qualified(target)} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
        { resource: target, name },
      );
    }
    const next = verb === "update" ? incoming : (mergePatch(existing, incoming) as Json);
    if (metadataOf(next).name !== name) {
      throw failure(
        400,
        "BadRequest",
        `the name of the object (${String(metadataOf(next).name)}) does not match the name on the URL (${name})`,
      );
    }
    return { code: 200, body: this.#write(target, namespace, next, existing) };
  }

  #listReply(target: Resource, namespace: string | undefined, url: URL): Json {
    const labels = url.searchParams.get("labelSelector") ?? "";
    const fields = url.searchParams.get("fieldSelector") ?? "";
    const items = this.#list(target, namespace)
      .filter((object) => {
        const objectLabels = metadataOf(object).labels;
        const labelOf = (key: string) =>
          isObject(objectLabels) && key in objectLabels ? String(objectLabels[key]) : undefined;
        return (
          matchesSelector(labels, labelOf) && matchesSelector(fields, (path) => fieldValue(object, path))
        );
      })
      // List items carry no apiVersion and kind, as the real server sends them.
      .map(({ apiVersion: _apiVersion, kind: _kind, ...item }) => item);
    return {
      kind: `${target.kind}List`,
      apiVersion: groupVersion(target),
      metadata: { resourceVersion: String(this.#resourceVersion) },
      items,
    };
  }
}

function parseJson(body: string): Json {
  try {
    const value: unknown = JSON.parse(body);
    if (isObject(value)) return value;
  } catch {
    // reported below
  }
  throw failure(400, "BadRequest", "the request body is not a JSON object");
}

function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    request.on("error", reject);
  });
}

/**
 * The fake serving as control plane `node` of a local PKI store (certs/store.ts layout): the
 * cluster CA and that node's apiserver certificate and key.
 */
export async function startFakeApiServerFromStore(
  clusterDir: string,
  node: string,
  options: Omit<FakeApiServerOptions, "caCertPem" | "serverCertPem" | "serverKeyPem"> = {},
): Promise<RecordingFakeApiServer> {
  const read = (file: string) => readFile(join(clusterDir, file), "utf8");
  const [caCertPem, serverCertPem, serverKeyPem] = await Promise.all([
    read("pki/ca.crt"),
    read(`nodes/${node}/pki/apiserver.crt`),
    read(`nodes/${node}/pki/apiserver.key`),
  ]);
  return startRecordingFakeApiServer({ ...options, caCertPem, serverCertPem, serverKeyPem });
}
