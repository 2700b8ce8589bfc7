import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import yaml from "js-yaml";
import { describe, expect, it } from "vitest";
import { type ApiObject, goDurationString, initObjects, renderObjects } from "./objects.js";
import { exampleCluster, objectId, readFixture } from "./testing.js";

const TESTDATA = join(import.meta.dirname, "testdata");
const CA = readFileSync(join(TESTDATA, "test-ca.crt"), "utf8");
const TOKEN = { id: "abcdef", secret: "0123456789abcdef", expires: new Date("2026-01-02T03:04:05Z") };
const NOW = new Date("2026-01-01T03:04:05Z");

const decode = (data: Record<string, string>) =>
  Object.fromEntries(
    Object.entries(data).map(([key, value]) => [key, Buffer.from(value, "base64").toString()]),
  );

function compare(actual: ApiObject[], expected: ApiObject[]): void {
  // The exact set, in kubeadm's order.
  expect(actual.map(objectId)).toEqual(expected.map(objectId));
  actual.forEach((object, index) => {
    const want = expected[index] as ApiObject;
    const label = objectId(object);
    switch (object.kind) {
      case "Secret": {
        expect(object.type, label).toBe(want.type);
        expect(decode(object.data as Record<string, string>), label).toEqual(want.stringData);
        break;
      }
      case "ConfigMap": {
        const data = object.data as Record<string, string>;
        const wanted = want.data as Record<string, string>;
        expect(Object.keys(data).sort(), label).toEqual(Object.keys(wanted).sort());
        for (const [key, text] of Object.entries(data)) {
          const parsed = yaml.load(text);
          const expectedValue = yaml.load(wanted[key] as string);
          // The kubelet key: the fixture holds the fields that matter; the rest is the template's.
          if (key === "kubelet") expect(parsed, `${label} ${key}`).toMatchObject(expectedValue as object);
          else expect(parsed, `${label} ${key}`).toEqual(expectedValue);
        }
        if (want.metadata.annotations) {
          const hash = createHash("sha256")
            .update(data.kubelet ?? "")
            .digest("hex");
          expect(object.metadata.annotations, label).toEqual({
            "kubeadm.kubernetes.io/component-config.hash": `sha256:${hash}`,
          });
        } else expect(object.metadata.annotations, label).toBeUndefined();
        break;
      }
      default:
        expect(object, label).toEqual(want);
    }
  });
}

describe("initObjects", () => {
  it.each([
    ["1.21", "v1.21.14"],
    ["1.30", "v1.30.4"],
    ["1.34", "v1.34.8"],
  ])("v%s: the objects of the hand-written fixture", (minor, version) => {
    compare(
      initObjects(exampleCluster(version), { token: TOKEN, caCert: CA, now: NOW }),
      readFixture(`init-objects-v${minor}.yaml`),
    );
  });

  it("v1.34 before v1.34.8: no kubeadm:apiserver-kubelet-client binding (the cert still has O)", () => {
    const names = initObjects(exampleCluster("v1.34.7"), { token: TOKEN, caCert: CA, now: NOW }).map(
      objectId,
    );
    const expected = readFixture("init-objects-v1.34.yaml")
      .map(objectId)
      .filter((name) => name !== "ClusterRoleBinding//kubeadm:apiserver-kubelet-client");
    expect(names).toEqual(expected);
  });

  it("the token expires 24h after now by default", () => {
    const objects = initObjects(exampleCluster("v1.30.4"), {
      token: { id: "abcdef", secret: "0123456789abcdef" },
      caCert: CA,
      now: new Date("2026-03-04T05:06:07.890Z"),
    });
    const secret = objects.find((object) => object.kind === "Secret") as ApiObject;
    expect(decode(secret.data as Record<string, string>).expiration).toBe("2026-03-05T05:06:07Z");
  });

  it("maps the cluster file's settings into the uploaded ClusterConfiguration", () => {
    const cluster = exampleCluster("v1.34.8");
    cluster.spec.kubernetes.controlPlaneEndpoint = "api.example.com:8443";
    cluster.spec.kubernetes.apiServer.extraArgs = [{ name: "audit-log-maxage", value: "7" }];
    cluster.spec.kubernetes.apiServer.certSANs = ["api.example.com"];
    cluster.spec.kubernetes.featureGates = { ControlPlaneKubeletLocalMode: false };
    cluster.spec.addons.kubeProxy.enabled = false;
    const objects = initObjects(cluster, { token: TOKEN, caCert: CA, now: NOW });
    const kubeadmConfig = objects.find((object) => object.metadata.name === "kubeadm-config") as ApiObject;
    const config = yaml.load((kubeadmConfig.data as Record<string, string>).ClusterConfiguration as string);
    expect(config).toMatchObject({
      apiServer: { certSANs: ["api.example.com"], extraArgs: [{ name: "audit-log-maxage", value: "7" }] },
      controlPlaneEndpoint: "api.example.com:8443",
      featureGates: { ControlPlaneKubeletLocalMode: false },
      proxy: { disabled: true },
    });
    const clusterInfo = objects.find((object) => object.metadata.name === "cluster-info") as ApiObject;
    const kubeconfig = yaml.load((clusterInfo.data as Record<string, string>).kubeconfig as string);
    expect(kubeconfig).toMatchObject({ clusters: [{ cluster: { server: "https://api.example.com:8443" } }] });
  });

  it("v1.30: extraArgs stay a map, later entries winning", () => {
    const cluster = exampleCluster("v1.30.4");
    cluster.spec.kubernetes.scheduler.extraArgs = [
      { name: "v", value: "2" },
      { name: "v", value: "4" },
    ];
    const objects = initObjects(cluster, { token: TOKEN, caCert: CA, now: NOW });
    const kubeadmConfig = objects.find((object) => object.metadata.name === "kubeadm-config") as ApiObject;
    const config = yaml.load((kubeadmConfig.data as Record<string, string>).ClusterConfiguration as string);
    expect(config).toMatchObject({ scheduler: { extraArgs: { v: "4" } } });
  });

  it("renders multi-document YAML that parses back to the objects", () => {
    const objects = initObjects(exampleCluster("v1.30.4"), { token: TOKEN, caCert: CA, now: NOW });
    expect(yaml.loadAll(renderObjects(objects))).toEqual(objects);
  });
});

describe("goDurationString", () => {
  it("prints as Go's time.Duration.String()", () => {
    expect(goDurationString(8760 * 3_600_000)).toBe("8760h0m0s");
    expect(goDurationString(90 * 60_000)).toBe("1h30m0s");
    expect(goDurationString(4 * 60_000)).toBe("4m0s");
    expect(goDurationString(30_000)).toBe("30s");
  });
});
