// An in-memory ClusterApi for phase tests. Objects live in a map; `onRead` runs before every read,
// so a test moves the cluster along as its components would (kube-controller-manager assigning pod
// CIDRs, a kubelet finishing a pod) and a phase that polls sees the objects change over time.
import { isDeepStrictEqual } from "node:util";
import type { ApplyOutcome, ClusterApi, ListOptions, ObjectRef } from "./cluster-api.js";
import type { ApiObject } from "./objects.js";

const keyOf = (ref: ObjectRef) => `${ref.apiVersion}/${ref.kind}/${ref.namespace ?? ""}/${ref.name}`;

const refOf = (object: ApiObject): ObjectRef => ({ ...object.metadata, ...object });

/** `a=b,c=d`: every pair must match (all the selectors kubeforge sends). */
function matchesLabels(object: ApiObject, selector: string | undefined): boolean {
  return (selector ?? "")
    .split(",")
    .filter(Boolean)
    .every((pair) => {
      const [key = "", value] = pair.split("=");
      return object.metadata.labels?.[key] === value;
    });
}

function mergePatch(target: unknown, patch: unknown): unknown {
  if (typeof patch !== "object" || patch === null || Array.isArray(patch)) return patch;
  const result: Record<string, unknown> =
    typeof target === "object" && target !== null && !Array.isArray(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = mergePatch(result[key], value);
  }
  return result;
}

export class MemoryClusterApi implements ClusterApi {
  readonly #objects = new Map<string, ApiObject>();
  /** Every write, as `<verb> <Kind> <namespace/>name`, in order. */
  readonly writes: string[] = [];
  /** Reads so far (get and list), for hooks that act after the n-th poll. */
  reads = 0;

  constructor(
    objects: readonly ApiObject[] = [],
    private readonly onRead: (api: MemoryClusterApi) => void = () => {},
  ) {
    for (const object of objects) this.put(object);
  }

  /** Stores an object as a cluster component would: not recorded as a write. */
  put(object: ApiObject): void {
    this.#objects.set(keyOf(refOf(object)), structuredClone(object));
  }

  /** The stored object itself, for hooks to change in place. */
  object(ref: ObjectRef): ApiObject | undefined {
    return this.#objects.get(keyOf(ref));
  }

  all(): ApiObject[] {
    return [...this.#objects.values()];
  }

  #write(verb: string, ref: ObjectRef): void {
    this.writes.push(`${verb} ${ref.kind} ${ref.namespace ? `${ref.namespace}/` : ""}${ref.name}`);
  }

  #read(): void {
    this.reads += 1;
    this.onRead(this);
  }

  async apply(object: ApiObject): Promise<ApplyOutcome> {
    const ref = refOf(object);
    const existing = this.#objects.get(keyOf(ref));
    if (existing && isDeepStrictEqual(existing, object)) return "unchanged";
    this.put(object);
    this.#write("apply", ref);
    return existing ? "updated" : "created";
  }

  async get(ref: ObjectRef): Promise<ApiObject | undefined> {
    this.#read();
    const object = this.#objects.get(keyOf(ref));
    return object && structuredClone(object);
  }

  async list(
    apiVersion: string,
    kind: string,
    namespace?: string,
    options: ListOptions = {},
  ): Promise<ApiObject[]> {
    this.#read();
    return this.all()
      .filter(
        (object) =>
          object.apiVersion === apiVersion &&
          object.kind === kind &&
          (namespace === undefined || object.metadata.namespace === namespace) &&
          matchesLabels(object, options.labelSelector),
      )
      .map((object) => structuredClone(object));
  }

  async patch(ref: ObjectRef, patch: Record<string, unknown>): Promise<ApiObject> {
    const existing = this.#objects.get(keyOf(ref));
    if (!existing) throw new Error(`${ref.kind} ${ref.name} not found`);
    const patched = mergePatch(existing, patch) as ApiObject;
    this.put(patched);
    this.#write("patch", ref);
    return structuredClone(patched);
  }

  async delete(ref: ObjectRef): Promise<boolean> {
    const deleted = this.#objects.delete(keyOf(ref));
    if (deleted) this.#write("delete", ref);
    return deleted;
  }
}
