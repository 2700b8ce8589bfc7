import { describe, expect, it } from "vitest";
import {
  buildKubeconfig,
  currentCredentials,
  type Kubeconfig,
  mergeKubeconfig,
  parseKubeconfig,
  serializeKubeconfig,
} from "./kubeconfigs.js";

const admin = (server: string) =>
  buildKubeconfig({
    clusterName: "kubernetes",
    server,
    caPem: `CA for ${server}\n`,
    userName: "kubernetes-admin",
    certPem: `cert for ${server}\n`,
    keyPem: `key for ${server}\n`,
  });

const existing: Kubeconfig = parseKubeconfig(`
apiVersion: v1
kind: Config
clusters:
- name: work
  cluster: {server: https://work.example.com, insecure-skip-tls-verify: true}
users:
- name: me
  user: {token: abc}
contexts:
- name: work
  context: {cluster: work, user: me, namespace: team}
current-context: work
preferences: {colors: true}
`);

describe("buildKubeconfig", () => {
  it("has one cluster, one user and the context <user>@<cluster>, certificates embedded", () => {
    const config = admin("https://demo-api:6443");
    expect(config.contexts).toEqual([
      { context: { cluster: "kubernetes", user: "kubernetes-admin" }, name: "kubernetes-admin@kubernetes" },
    ]);
    expect(currentCredentials(parseKubeconfig(serializeKubeconfig(config)))).toEqual({
      server: "https://demo-api:6443",
      caPem: "CA for https://demo-api:6443\n",
      certPem: "cert for https://demo-api:6443\n",
      keyPem: "key for https://demo-api:6443\n",
    });
  });

  it("serializes as kubectl does: list items flush with their key, base64 on one line", () => {
    const text = serializeKubeconfig(admin("https://demo-api:6443"));
    expect(text).toContain("\nclusters:\n- cluster:\n");
    expect(text).toMatch(/\n {4}certificate-authority-data: [A-Za-z0-9+/=]+\n/);
  });
});

describe("mergeKubeconfig", () => {
  it("adds a cluster under kubeforge-<name> names and keeps everything else", () => {
    const { config, context } = mergeKubeconfig(existing, admin("https://demo-api:6443"), {
      name: "demo",
      useContext: false,
    });
    expect(context).toBe("kubeforge-demo-admin@kubeforge-demo");
    expect(config.clusters.map((c) => c.name)).toEqual(["work", "kubeforge-demo"]);
    expect(config.users.map((u) => u.name)).toEqual(["me", "kubeforge-demo-admin"]);
    expect(config.contexts.at(-1)).toEqual({
      name: "kubeforge-demo-admin@kubeforge-demo",
      context: { cluster: "kubeforge-demo", user: "kubeforge-demo-admin" },
    });
    expect(config.clusters[0]).toEqual(existing.clusters[0]);
    expect(config.contexts[0]).toEqual(existing.contexts[0]);
    expect(config["current-context"]).toBe("work");
    expect(config.preferences).toEqual({ colors: true });
  });

  it("keeps two clusters apart, switches context only when asked, and re-merges in place", () => {
    const demo = mergeKubeconfig(existing, admin("https://demo-api:6443"), {
      name: "demo",
      useContext: false,
    });
    const both = mergeKubeconfig(demo.config, admin("https://prod-api:6443"), {
      name: "prod",
      useContext: true,
    });
    expect(both.config.clusters.map((c) => c.name)).toEqual(["work", "kubeforge-demo", "kubeforge-prod"]);
    expect(both.config["current-context"]).toBe("kubeforge-prod-admin@kubeforge-prod");
    expect(currentCredentials(both.config).server).toBe("https://prod-api:6443");

    const again = mergeKubeconfig(both.config, admin("https://demo-api:7443"), {
      name: "demo",
      useContext: true,
    });
    expect(again.config.clusters.map((c) => c.name)).toEqual(["work", "kubeforge-prod", "kubeforge-demo"]);
    expect(again.config.users).toHaveLength(3);
    expect(again.config.contexts).toHaveLength(3);
    expect(currentCredentials(again.config)).toMatchObject({
      server: "https://demo-api:7443",
      certPem: "cert for https://demo-api:7443\n",
    });
  });

  it("starts from nothing when there is no kubeconfig yet", () => {
    const { config } = mergeKubeconfig(undefined, admin("https://demo-api:6443"), {
      name: "demo",
      useContext: false,
    });
    expect(config["current-context"]).toBe("");
    expect(parseKubeconfig(serializeKubeconfig(config))).toEqual(config);
    expect(parseKubeconfig("")).toMatchObject({ clusters: [], users: [], contexts: [] });
  });

  it("refuses an admin kubeconfig without a complete current context", () => {
    const broken = { ...admin("https://demo-api:6443"), "current-context": "nope" };
    expect(() => mergeKubeconfig(existing, broken, { name: "demo", useContext: false })).toThrow(
      "no complete current context",
    );
  });
});
