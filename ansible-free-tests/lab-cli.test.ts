// `kubeforge lab up|status|down` as a user runs it: real hosts, and a cluster file that the
// system OpenSSH client can use as written (strict host keys, the sudo user's password by file).
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import yaml from "js-yaml";
import { afterAll, describe, expect, it } from "vitest";
import { $ } from "zx";
import { kubeforge, testDir } from "../cli/testing.js";
import { labDown } from "../lab/testhosts.js";

const INSTANCE = ["--bridge", "kfbrc0", "--subnet", "198.18.8"];
const sh = $({ quiet: true, nothrow: true });

afterAll(async () => {
  await labDown({ bridge: "kfbrc0", subnet: "198.18.8" });
});

interface WrittenCluster {
  metadata: { name: string };
  spec: {
    ssh: { user: string; keyPath: string; knownHostsPath: string; sudo: { password: { file: string } } };
    kubernetes: { version: string };
    hosts: Array<{ name: string; address: string; role: string }>;
  };
}

describe("kubeforge lab", () => {
  it("boots hosts, writes a cluster file that works as written, reports status and tears down", async () => {
    const cwd = testDir();
    const up = await kubeforge(
      [
        "lab",
        "up",
        "--hosts",
        "2",
        ...INSTANCE,
        "--user",
        "sudo",
        "--cluster-file",
        "lab.yaml",
        "--kubernetes-version",
        "v1.34.1",
      ],
      { cwd },
    );
    expect(up.code, up.stderr).toBe(0);
    expect(up.stdout).toContain("h1\t198.18.8.11\nh2\t198.18.8.12\ncluster file: lab.yaml\n");

    const valid = await kubeforge(["config", "validate", "-f", "lab.yaml"], { cwd });
    expect(valid.stdout).toBe("lab.yaml is valid: 2 host(s), 1 control plane(s), Kubernetes v1.34.1\n");

    const cluster = yaml.load(readFileSync(join(cwd, "lab.yaml"), "utf8")) as WrittenCluster;
    expect(cluster.spec.hosts).toEqual([
      { name: "h1", address: "198.18.8.11", role: "control-plane" },
      { name: "h2", address: "198.18.8.12", role: "worker" },
    ]);
    const { user, keyPath, knownHostsPath, sudo } = cluster.spec.ssh;
    expect(user).toBe("kubeforge");
    expect(statSync(sudo.password.file).mode & 0o777).toBe(0o600);
    const password = readFileSync(sudo.password.file, "utf8").trim();

    for (const host of cluster.spec.hosts) {
      const ssh = [
        "-i",
        keyPath,
        "-o",
        `UserKnownHostsFile=${knownHostsPath}`,
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "BatchMode=yes",
        `${user}@${host.address}`,
      ];
      expect((await sh`ssh ${ssh} hostname`).stdout.trim()).toBe(host.name);
      expect((await sh`ssh ${ssh} sudo -n true`).exitCode).not.toBe(0);
      // One argument: the remote shell must see the empty prompt's quotes.
      const sudoWithPassword = "sudo -S -p '' id -u";
      const withPassword = await $({
        quiet: true,
        nothrow: true,
        input: `${password}\n`,
      })`ssh ${ssh} ${sudoWithPassword}`;
      expect(withPassword.stdout.trim()).toBe("0");
    }

    const status = await kubeforge(["lab", "status", ...INSTANCE], { cwd });
    expect(status.stdout).toBe("h1\t198.18.8.11\trunning\nh2\t198.18.8.12\trunning\n");

    const again = await kubeforge(["lab", "up", "--hosts", "1", ...INSTANCE, "--cluster-file", "lab.yaml"], {
      cwd,
    });
    expect(again.code).toBe(1);
    expect(again.stderr).toContain("instance kfbrc0 is already up: run lab down first");

    const down = await kubeforge(["lab", "down", ...INSTANCE], { cwd });
    expect(down.code, down.stderr).toBe(0);
    const after = await kubeforge(["lab", "status", ...INSTANCE], { cwd });
    expect(after.stdout).toBe("lab kfbrc0 is not up\n");
    expect((await sh`ip link show kfbrc0`).exitCode).not.toBe(0);
  });

  it("refuses bad input with exit 2 before booting anything", async () => {
    const cwd = testDir({ "cluster.yaml": "mine\n" });
    const badSubnet = await kubeforge(["lab", "up", "--bridge", "kfbrc0", "--subnet", "10.0.0"], { cwd });
    expect(badSubnet.code).toBe(2);
    expect(badSubnet.stderr).toContain("--subnet 10.0.0: give a /24 prefix inside 198.18.0.0/15");
    const foreignFile = await kubeforge(["lab", "up", ...INSTANCE, "--cluster-file", "cluster.yaml"], {
      cwd,
    });
    expect(foreignFile.code).toBe(2);
    expect(foreignFile.stderr).toContain("cluster.yaml exists and was not written by lab up");
    expect((await sh`ip link show kfbrc0`).exitCode).not.toBe(0);
  });
});
