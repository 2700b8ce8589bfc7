// From the cluster file to one SSH connection per host: each host's settings are spec.ssh with the
// host's overrides on top; secrets are resolved by reference; known_hosts files are read once.
import { access } from "node:fs/promises";
import { join } from "node:path";
import type { ClusterFile, HostSpec } from "../config/schema.js";
import type { Secrets } from "../config/secrets.js";
import type { Redactor } from "../workflow/redact.js";
import type { Host } from "./host.js";
import { KnownHosts } from "./known-hosts.js";
import { type PrivateKeyOptions, SshHost } from "./ssh.js";

/** A host of the cluster file with its connection; `name` makes it a fan-out target. */
export interface ClusterHost {
  readonly name: string;
  readonly spec: HostSpec;
  readonly host: Host;
  /** Whether privileged commands go through sudo (a non-root login whose sudo is not disabled). */
  readonly sudo: boolean;
}

export interface OpenOptions {
  secrets: Secrets;
  redactor: Redactor;
  homeDir: string;
  /** SSH_AUTH_SOCK, passed in by the CLI. */
  agentSocket: string | undefined;
  acceptNewHostKeys: boolean;
  /** Retries and newly recorded host keys; messages start with the host's label. */
  log: (message: string) => void;
}

// What OpenSSH tries when no key is named.
const DEFAULT_KEYS = ["id_ed25519", "id_ecdsa", "id_rsa"];

async function firstExisting(paths: string[]): Promise<string | undefined> {
  for (const path of paths) {
    if (
      await access(path).then(
        () => true,
        () => false,
      )
    )
      return path;
  }
  return undefined;
}

/** Opens (lazily: the connect phase dials) a connection object for every host of the file. */
export async function openClusterHosts(cluster: ClusterFile, options: OpenOptions): Promise<ClusterHost[]> {
  const knownHostsFiles = new Map<string, Promise<KnownHosts>>();
  const knownHosts = (path: string) => {
    let loaded = knownHostsFiles.get(path);
    if (!loaded) {
      loaded = KnownHosts.load([path]);
      knownHostsFiles.set(path, loaded);
    }
    return loaded;
  };
  return Promise.all(
    cluster.spec.hosts.map(async (spec, index) => {
      const ssh = { ...cluster.spec.ssh, ...spec.ssh, sudo: { ...cluster.spec.ssh.sudo, ...spec.ssh?.sudo } };
      // Secrets live where they were written: the host's override or the shared block.
      const where = (field: string) =>
        spec.ssh?.[field as keyof typeof spec.ssh] !== undefined
          ? `spec.hosts[${index}].ssh.${field}`
          : `spec.ssh.${field}`;
      const sudo = ssh.user !== "root" && ssh.sudo.enabled !== false;
      const keyPath =
        ssh.keyPath ??
        (options.agentSocket
          ? undefined
          : await firstExisting(DEFAULT_KEYS.map((k) => join(options.homeDir, ".ssh", k))));
      const privateKey: PrivateKeyOptions | undefined = keyPath
        ? {
            path: keyPath,
            ...(ssh.passphrase && {
              passphrase: await options.secrets.resolve(
                ssh.passphrase,
                `passphrase of ${keyPath}`,
                where("passphrase"),
              ),
            }),
          }
        : undefined;
      const password = ssh.password
        ? await options.secrets.resolve(
            ssh.password,
            `SSH password of ${ssh.user}@${spec.address}`,
            where("password"),
          )
        : undefined;
      const sudoPassword =
        sudo && ssh.sudo.password
          ? await options.secrets.resolve(
              ssh.sudo.password,
              `sudo password of ${ssh.user}`,
              `${where("sudo")}.password`,
            )
          : undefined;
      const host = new SshHost({
        name: spec.name,
        address: spec.address,
        port: spec.port ?? cluster.spec.ssh.port,
        user: ssh.user,
        knownHosts: await knownHosts(ssh.knownHostsPath),
        acceptNewHostKeys: options.acceptNewHostKeys,
        redactor: options.redactor,
        log: options.log,
        ...(privateKey && { privateKey }),
        ...(options.agentSocket && { agentSocket: options.agentSocket }),
        ...(password && { password }),
        ...(sudoPassword && { sudoPassword }),
      });
      return { name: spec.name, spec, host, sudo };
    }),
  );
}
