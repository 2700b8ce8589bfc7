// What kubeforge's phases need from the Kubernetes API, as one small interface: the init/join/apply
// phases, `token` and validation are written against it; api/client.ts implements it on
// @kubernetes/client-node, and tests run it against the recording fake API server.
import type { ApiObject } from "./objects.js";

/** Names one object; `namespace` only for namespaced kinds. */
export interface ObjectRef {
  apiVersion: string;
  kind: string;
  name: string;
  namespace?: string;
}

export type ApplyOutcome = "created" | "updated" | "unchanged";

export interface ListOptions {
  labelSelector?: string;
  fieldSelector?: string;
}

export interface ClusterApi {
  /**
   * Creates the object, or updates it when the fields kubeforge sets differ from the live ones.
   * An object that already matches is not written, so a re-run makes no writes.
   */
  apply(object: ApiObject): Promise<ApplyOutcome>;
  get(ref: ObjectRef): Promise<ApiObject | undefined>;
  list(apiVersion: string, kind: string, namespace?: string, options?: ListOptions): Promise<ApiObject[]>;
  /** JSON merge patch (RFC 7386); returns the object as the server has it afterwards. */
  patch(ref: ObjectRef, patch: Record<string, unknown>): Promise<ApiObject>;
  /** True when something was deleted, false when it did not exist. */
  delete(ref: ObjectRef): Promise<boolean>;
}
