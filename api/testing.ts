// What the API objects' tests share: the example cluster their hand-written fixtures describe, the
// fixtures themselves, and one id per object.
import { readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import yaml from "js-yaml";
import { parseClusterFile } from "../config/load.js";
import type { ClusterFile } from "../config/schema.js";
import type { ApiObject } from "./objects.js";

/** The example of the fixtures' headers (api/testdata), with `extra` lines under spec.kubernetes. */
export function exampleCluster(version: string, extra = ""): ClusterFile {
  const text = `apiVersion: kubeforge.dev/v1alpha1
kind: Cluster
metadata: {name: demo}
spec:
  kubernetes:
    version: ${version}
    networking: {serviceSubnet: 198.19.128.0/20, podSubnet: 198.19.0.0/17}
${extra}
  hosts:
    - {name: cp1, address: 198.18.0.11, role: control-plane}
    - {name: w1, address: 198.18.0.12, role: worker}
`;
  return parseClusterFile(text, "cluster.yaml", { env: {}, homeDir: tmpdir(), cwd: tmpdir() }).cluster;
}

/** The objects of a multi-document fixture in api/testdata. */
export function readFixture(file: string): ApiObject[] {
  const text = readFileSync(join(import.meta.dirname, "testdata", file), "utf8");
  return yaml.loadAll(text).filter((doc) => doc !== null) as ApiObject[];
}

export const objectId = (object: ApiObject) =>
  `${object.kind}/${object.metadata.namespace ?? ""}/${object.metadata.name}`;
