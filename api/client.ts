// The ClusterApi (api/cluster-api.ts) on @kubernetes/client-node's generic KubernetesObjectApi,
// opened from a kubeconfig of the local store. The workstation may dial another address than the
// kubeconfig's server (the first control plane, before the endpoint resolves) while TLS still
// verifies the serving certificate against the server's host name. Every call is retried as
// kubeadm retries API calls (every 500 ms for up to 1 min, `kubernetesAPICall`) when the error is
// transient: no connection yet, or a 5xx/429 answer. Errors name the object and carry the server's
// Status message; object contents (Secret data, tokens) are never put into a message.

import {
  ApiException,
  createConfiguration,
  KubeConfig,
  type KubernetesObject,
  KubernetesObjectApi,
  PatchStrategy,
  ServerConfiguration,
  VersionApi,
} from "@kubernetes/client-node";
// The generated models turn answers into classes (Date fields and all); this turns them back into
// the JSON the server sent. client-node has no `exports` map, so the deep path is public.
import { ObjectSerializer } from "@kubernetes/client-node/dist/serializer.js";
import { messageOf } from "../workflow/errors.js";
import { waitUntil } from "../workflow/wait.js";
import type { ApplyOutcome, ClusterApi, ListOptions, ObjectRef } from "./cluster-api.js";
import type { ApiObject } from "./objects.js";

/** An address the workstation dials instead of the kubeconfig server's. */
export interface Dial {
  host: string;
  port: number;
}

export interface RetryOptions {
  /** 0 tries once. */
  timeoutMs: number;
  intervalMs: number;
}

/** kubeadm's kubernetesAPICall timeout and APICallRetryInterval (kubeadm-spec.md §9). */
export const API_CALL_RETRY: RetryOptions = { timeoutMs: 60_000, intervalMs: 500 };

export interface OpenOptions {
  /** The kubeconfig's text (admin.conf, super-admin.conf from the local store). */
  kubeconfig: string;
  dial?: Dial;
  /** Default API_CALL_RETRY. */
  retry?: RetryOptions;
  /** Bounds one HTTP request, so a silent address fails into the retry loop. Default 10 s. */
  requestTimeoutMs?: number;
  /** Ends retries and requests (Ctrl-C). */
  signal?: AbortSignal;
}

/** A failed API call: what was asked of which object, and the server's answer. */
export class ApiError extends Error {
  override name = "ApiError";
  constructor(
    message: string,
    /** HTTP status, when the server answered. */
    readonly status: number | undefined,
    /** The Status reason (`Forbidden`, `NotFound`, `AlreadyExists`, `Conflict`), when given. */
    readonly reason: string | undefined,
    /** Worth another try: no connection, a timeout, or a 5xx/429 answer. */
    readonly transient: boolean,
    options: ErrorOptions,
  ) {
    super(message, options);
  }
}

export const isTransient = (error: unknown) => error instanceof ApiError && error.transient;
export const isForbidden = (error: unknown) => error instanceof ApiError && error.status === 403;
export const isConflict = (error: unknown) => error instanceof ApiError && error.status === 409;

/** `ConfigMap kube-system/kubeadm-config`, `ClusterRoleBinding kubeadm:cluster-admins`. */
export function describeObject(ref: { kind: string; name: string; namespace?: string | undefined }): string {
  return `${ref.kind} ${ref.namespace ? `${ref.namespace}/` : ""}${ref.name}`;
}

export function refOf(object: ApiObject): ObjectRef {
  const { apiVersion, kind, metadata } = object;
  return {
    apiVersion,
    kind,
    name: metadata.name,
    ...(metadata.namespace && { namespace: metadata.namespace }),
  };
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);
const isEmpty = (value: unknown) =>
  (Array.isArray(value) && value.length === 0) || (isRecord(value) && Object.keys(value).length === 0);

/**
 * Whether the live object already has every field `desired` sets, with the same values: fields the
 * server or other components add (uid, resourceVersion, managedFields, status, cluster-info's JWS
 * keys) do not count. Lists must match item by item; an empty list or map matches an absent one,
 * which is how the server returns them.
 */
export function matchesLive(desired: unknown, live: unknown): boolean {
  if (isEmpty(desired) && (live === undefined || live === null)) return true;
  if (Array.isArray(desired)) {
    return (
      Array.isArray(live) &&
      live.length === desired.length &&
      desired.every((item, i) => matchesLive(item, live[i]))
    );
  }
  if (isRecord(desired)) {
    return isRecord(live) && Object.entries(desired).every(([key, value]) => matchesLive(value, live[key]));
  }
  return desired === live;
}

export interface RetryCallOptions extends RetryOptions {
  /** Ends the retries (Ctrl-C). */
  signal?: AbortSignal | undefined;
  /** Errors worth another try; any other error ends it at once. Default: transient ones. */
  retryOn?: (error: unknown) => boolean;
}

/**
 * Runs `call` until it succeeds, retrying transient errors (or those `retryOn` picks), on
 * workflow/wait's loop. It is one API call, retried quietly: a wait on the cluster says what it
 * waits for (workflow/wait.ts). Out of time it throws what it tried, how often and the last error;
 * with timeoutMs 0 it tries once and throws that error as it is.
 */
export function withRetry<T>(
  description: string,
  call: () => Promise<T>,
  options: RetryCallOptions,
): Promise<T> {
  const { timeoutMs, intervalMs, signal, retryOn = isTransient } = options;
  return waitUntil(
    {
      what: `${description} to succeed`,
      timing: { timeoutMs, intervalMs },
      signal,
      log: () => undefined,
      retryOn,
    },
    async () => ({ done: true, value: await call() }),
  );
}

// Answers with no connection behind them: the API server is not up (yet), or restarting.
const TRANSIENT_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EPIPE",
  "EAI_AGAIN",
]);

/** The one wrapping of a client-node error: what was asked (`get ConfigMap a/b`), then the server's message. */
function apiError(asked: string, error: unknown): ApiError {
  const what = `cannot ${asked}`;
  if (error instanceof ApiException) {
    const status = parseStatus(error.body);
    const detail = status?.message ?? `HTTP ${error.code}`;
    const transient = error.code >= 500 || error.code === 429;
    return new ApiError(`${what}: ${detail}`, error.code, status?.reason, transient, { cause: error });
  }
  const code = (error as { code?: unknown }).code;
  const timedOut = (error as { name?: unknown }).name === "AbortError";
  const transient = timedOut || (typeof code === "string" && TRANSIENT_CODES.has(code));
  const detail = timedOut ? "no answer in time" : messageOf(error);
  return new ApiError(`${what}: ${detail}`, undefined, undefined, transient, { cause: error });
}

function parseStatus(
  body: unknown,
): { message?: string; reason?: string; details?: { name?: string } } | undefined {
  let value = body;
  if (typeof body === "string") {
    try {
      value = JSON.parse(body);
    } catch {
      return undefined;
    }
  }
  return isRecord(value) && value.kind === "Status" ? value : undefined;
}

/** client-node's model name for a kind: `V1ConfigMap`, `V1ClusterRoleBinding`. */
function modelName(apiVersion: string, kind: string): string {
  const version = apiVersion.split("/").at(-1) ?? apiVersion;
  return `${version.charAt(0).toUpperCase()}${version.slice(1)}${kind}`;
}

/** The server's JSON for a model instance, with apiVersion and kind (list items come without). */
function plain(object: KubernetesObject, apiVersion: string, kind: string): ApiObject {
  // The serializer writes every model field, unset ones as undefined: a JSON round trip drops them.
  const json = JSON.parse(JSON.stringify(ObjectSerializer.serialize(object, modelName(apiVersion, kind))));
  return { ...json, apiVersion, kind };
}

const FIELD_MANAGER = "kubeforge";

/**
 * The kubeconfig as client-node loads it; with `dial`, the current cluster's server becomes the
 * dialled address and its host name the TLS server name (unless the kubeconfig sets one).
 */
function loadKubeconfig(text: string, dial: Dial | undefined): KubeConfig {
  const config = new KubeConfig();
  config.loadFromString(text);
  const current = config.getCurrentCluster();
  if (!current) throw new Error("the kubeconfig has no current context with a cluster");
  const server = new URL(current.server);
  const host = server.hostname.replace(/^\[|\]$/g, "");
  if (!dial || (dial.host === host && String(dial.port) === (server.port || "443"))) return config;
  const dialled = new URL(current.server);
  dialled.hostname = dial.host.includes(":") ? `[${dial.host}]` : dial.host;
  dialled.port = String(dial.port);
  config.loadFromOptions({
    clusters: config.clusters.map((cluster) =>
      cluster.name === current.name
        ? {
            ...cluster,
            server: dialled.origin,
            tlsServerName: cluster.tlsServerName ?? host,
          }
        : cluster,
    ),
    contexts: config.contexts,
    users: config.users,
    currentContext: config.currentContext,
  });
  return config;
}

/** The API server's gitVersion (GET /version), asked once: how a user's kubectl would reach it. */
export async function serverVersion(options: Pick<OpenOptions, "kubeconfig" | "dial">): Promise<string> {
  const api = loadKubeconfig(options.kubeconfig, options.dial).makeApiClient(VersionApi);
  return (await api.getCode()).gitVersion;
}

export function openClusterApi(options: OpenOptions): ClusterApi {
  const config = loadKubeconfig(options.kubeconfig, options.dial);
  const server = config.getCurrentCluster()?.server ?? "";
  const requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
  const configuration = createConfiguration({
    baseServer: new ServerConfiguration(server, {}),
    authMethods: { default: config },
    promiseMiddleware: [
      {
        pre: async (context) => {
          const timeout = AbortSignal.timeout(requestTimeoutMs);
          context.setSignal(options.signal ? AbortSignal.any([options.signal, timeout]) : timeout);
          return context;
        },
        post: async (context) => context,
      },
    ],
  });
  return new Client(new KubernetesObjectApi(configuration), options.retry ?? API_CALL_RETRY, options.signal);
}

class Client implements ClusterApi {
  constructor(
    private readonly objects: KubernetesObjectApi,
    private readonly retry: RetryOptions,
    private readonly signal: AbortSignal | undefined,
  ) {}

  apply(object: ApiObject): Promise<ApplyOutcome> {
    // The whole read-compare-write is retried, so a create or update that raced another writer
    // (AlreadyExists, Conflict) is decided again from what is there then.
    return this.#retrying(
      `apply ${describeObject(refOf(object))}`,
      () => this.#apply(object),
      (error) => isTransient(error) || isConflict(error),
    );
  }

  get(ref: ObjectRef): Promise<ApiObject | undefined> {
    return this.#retrying(`get ${describeObject(ref)}`, () => this.#get(ref));
  }

  list(
    apiVersion: string,
    kind: string,
    namespace?: string,
    options: ListOptions = {},
  ): Promise<ApiObject[]> {
    const asked = `list ${kind}${namespace ? ` in ${namespace}` : ""}`;
    return this.#retrying(asked, async () => {
      try {
        const list = await this.objects.list(
          apiVersion,
          kind,
          namespace,
          undefined,
          undefined,
          undefined,
          options.fieldSelector,
          options.labelSelector,
        );
        return list.items.map((item) => plain(item, apiVersion, kind));
      } catch (error) {
        throw apiError(asked, error);
      }
    });
  }

  patch(ref: ObjectRef, patch: Record<string, unknown>): Promise<ApiObject> {
    return this.#retrying(`patch ${describeObject(ref)}`, () => this.#patch(ref, patch));
  }

  delete(ref: ObjectRef): Promise<boolean> {
    return this.#retrying(`delete ${describeObject(ref)}`, async () => {
      try {
        await this.objects.delete(this.#header(ref));
        return true;
      } catch (error) {
        if (this.#notFound(error, ref)) return false;
        throw apiError(`delete ${describeObject(ref)}`, error);
      }
    });
  }

  #retrying<T>(what: string, call: () => Promise<T>, retryOn = isTransient): Promise<T> {
    return withRetry(what, call, { ...this.retry, retryOn, ...(this.signal && { signal: this.signal }) });
  }

  #header(ref: ObjectRef): KubernetesObject & { metadata: { name: string } } {
    return {
      apiVersion: ref.apiVersion,
      kind: ref.kind,
      metadata: { name: ref.name, ...(ref.namespace && { namespace: ref.namespace }) },
    };
  }

  /** The object is not there (not: the server does not know the kind, which is also a 404). */
  #notFound(error: unknown, ref: ObjectRef): boolean {
    return (
      error instanceof ApiException &&
      error.code === 404 &&
      parseStatus(error.body)?.details?.name === ref.name
    );
  }

  async #get(ref: ObjectRef): Promise<ApiObject | undefined> {
    try {
      return plain(await this.objects.read(this.#header(ref)), ref.apiVersion, ref.kind);
    } catch (error) {
      if (this.#notFound(error, ref)) return undefined;
      throw apiError(`get ${describeObject(ref)}`, error);
    }
  }

  async #patch(ref: ObjectRef, patch: Record<string, unknown>): Promise<ApiObject> {
    const metadata = isRecord(patch.metadata) ? patch.metadata : {};
    const body = { ...patch, ...this.#header(ref), metadata: { ...metadata, ...this.#header(ref).metadata } };
    try {
      const patched = await this.objects.patch(
        body,
        undefined,
        undefined,
        FIELD_MANAGER,
        undefined,
        PatchStrategy.MergePatch,
      );
      return plain(patched, ref.apiVersion, ref.kind);
    } catch (error) {
      throw apiError(`patch ${describeObject(ref)}`, error);
    }
  }

  async #apply(object: ApiObject): Promise<ApplyOutcome> {
    const ref = refOf(object);
    const live = await this.#get(ref);
    if (!live) {
      try {
        await this.objects.create(structuredClone(object), undefined, undefined, FIELD_MANAGER);
      } catch (error) {
        throw apiError(`create ${describeObject(ref)}`, error);
      }
      return "created";
    }
    if (matchesLive(object, live)) return "unchanged";
    // A merge patch keeps what others added (cluster-info's JWS keys); the resourceVersion makes it
    // fail with Conflict, rather than overwrite, when the object changed since it was read.
    const { metadata, ...fields } = structuredClone(object);
    const { resourceVersion } = live.metadata as { resourceVersion?: string };
    await this.#patch(ref, { ...fields, metadata: { ...metadata, resourceVersion } });
    return "updated";
  }
}
