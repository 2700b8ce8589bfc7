// SshHost: the Host interface over one ssh2 connection per host, opened on first use and kept for the
// run (and opened again after it drops, e.g. when the host rebooted). Commands run on exec channels,
// at most `maxChannels` at a time: OpenSSH's MaxSessions defaults to 10 per connection, and two more
// are kept for the kill commands of timed-out or aborted commands.
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import ssh2, {
  type AnyAuthMethod,
  type Client,
  type ClientChannel,
  type ConnectConfig,
  type KexAlgorithm,
  type KeyboardInteractiveAuthMethod,
  type ParsedKey,
  type ServerHostKeyAlgorithm,
} from "ssh2";
import { HostConnectError, HostKeyError } from "./host.js";
import { fingerprint, type KnownHosts, keyTypeOf, knownHostsName } from "./known-hosts.js";
import { Limiter } from "./limiter.js";
import { CommandHost, type CommandHostOptions, type Lane, type RawExit, type RawProcess } from "./runner.js";

// ssh2 is CommonJS: Node only gives its default export to ESM importers.
const { Client: SshClient, utils } = ssh2;

export interface PrivateKeyOptions {
  /** The key file; `data` is used instead when given. */
  path?: string;
  data?: string | Buffer;
  /** The passphrase value itself (resolving it from a file, an env variable or a prompt is config's job). */
  passphrase?: string;
}

export interface SshHostOptions extends CommandHostOptions {
  /** The host's name in the cluster file, used in labels. */
  name: string;
  address: string;
  port?: number;
  user: string;
  privateKey?: PrivateKeyOptions;
  /** Path of an ssh-agent socket (the caller passes SSH_AUTH_SOCK; hosts/ never reads the environment). */
  agentSocket?: string;
  password?: string;
  knownHosts: KnownHosts;
  /** Record the key of a host that has no entry yet (TOFU). A changed key is refused regardless. */
  acceptNewHostKeys?: boolean;
  /** Total time for connecting, retries included; only transient errors are retried. Default 30 s. */
  connectBudgetMs?: number;
  /** Limit for one connection attempt, handshake included. Default 10 s. */
  attemptTimeoutMs?: number;
  /** Concurrent command channels. Default 8. */
  maxChannels?: number;
  /** Told about retries and newly recorded host keys. */
  log?: (message: string) => void;
}

// Key exchanges in order of preference: curve25519 is the fastest and what OpenSSH prefers.
const KEX: KexAlgorithm[] = [
  "curve25519-sha256",
  "curve25519-sha256@libssh.org",
  "ecdh-sha2-nistp256",
  "ecdh-sha2-nistp384",
  "ecdh-sha2-nistp521",
  "diffie-hellman-group-exchange-sha256",
  "diffie-hellman-group14-sha256",
  "diffie-hellman-group16-sha512",
  "diffie-hellman-group18-sha512",
];

// Socket errors that a host that is booting, rebooting or briefly overloaded produces.
const TRANSIENT = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "EHOSTDOWN",
  "ENETUNREACH",
  "EPIPE",
  "EAI_AGAIN",
]);

const CONTROL_CHANNELS = 2;
const KEEPALIVE_MS = 15_000;

export class SshHost extends CommandHost {
  readonly label: string;
  readonly user: string;
  readonly #options: SshHostOptions;
  readonly #port: number;
  readonly #channels: Limiter;
  readonly #controlChannels = new Limiter(CONTROL_CHANNELS);
  #client: Promise<Client> | undefined;
  /** Aborts a connection attempt still running when the host is closed. */
  #closing = new AbortController();
  #key: Promise<ParsedKey | undefined> | undefined;

  constructor(options: SshHostOptions) {
    super(options);
    this.#options = options;
    this.#port = options.port ?? 22;
    this.user = options.user;
    this.label = `${options.name} (${options.address}:${this.#port})`;
    this.#channels = new Limiter(options.maxChannels ?? 8);
    if (options.password) options.redactor.addSecret(options.password);
    if (options.privateKey?.passphrase) options.redactor.addSecret(options.privateKey.passphrase);
  }

  /** Connects now instead of on the first command (the connect phase uses this to fail early). */
  async connect(signal?: AbortSignal): Promise<void> {
    await this.#connection(signal);
  }

  async close(): Promise<void> {
    const pending = this.#client;
    this.#client = undefined;
    this.#closing.abort(new Error(`${this.label}: closed`));
    this.#closing = new AbortController();
    const client = await pending?.catch(() => undefined);
    if (!client) return;
    await new Promise<void>((resolve) => {
      client.once("close", () => resolve());
      client.end();
    });
  }

  protected async start(command: string, lane: Lane, signal?: AbortSignal): Promise<RawProcess> {
    const client = await this.#connection(signal);
    const release = await (lane === "control" ? this.#controlChannels : this.#channels).acquire(signal);
    let channel: ClientChannel;
    try {
      channel = await new Promise<ClientChannel>((resolve, reject) => {
        client.exec(command, (error, opened) => (error ? reject(error) : resolve(opened)));
      });
    } catch (error) {
      release();
      throw new HostConnectError(this.label, `could not open a channel: ${(error as Error).message}`, false, {
        cause: error,
      });
    }
    const exit = new Promise<RawExit>((resolve) => {
      let result: RawExit = { code: null, signal: null };
      channel.on("exit", (code: number | null, exitSignal?: string) => {
        result = { code, signal: exitSignal ?? null };
      });
      channel.once("close", () => {
        release();
        resolve(result);
      });
    });
    return { stdin: channel, stdout: channel, stderr: channel.stderr, exit, close: () => channel.close() };
  }

  /**
   * The shared connection. One caller's signal must not abort what the others wait for, so it only
   * stops that caller's wait; close() stops the attempt itself.
   */
  #connection(signal?: AbortSignal): Promise<Client> {
    if (!this.#client) {
      const connecting = this.#connectWithRetries(this.#closing.signal);
      this.#client = connecting;
      connecting.then(
        (client) =>
          client.once("close", () => {
            if (this.#client === connecting) this.#client = undefined;
          }),
        () => {
          if (this.#client === connecting) this.#client = undefined;
        },
      );
    }
    return signal ? untilAborted(this.#client, signal) : this.#client;
  }

  async #connectWithRetries(signal?: AbortSignal): Promise<Client> {
    const budget = this.#options.connectBudgetMs ?? 30_000;
    const deadline = Date.now() + budget;
    let delay = 500;
    // The last attempt is cut short by the budget; the reason seen most often says more.
    const reasons = new Map<string, number>();
    for (let attempt = 1; ; attempt++) {
      signal?.throwIfAborted();
      const remaining = deadline - Date.now();
      try {
        return await this.#attempt(Math.min(this.#options.attemptTimeoutMs ?? 10_000, remaining), signal);
      } catch (error) {
        if (!(error instanceof HostConnectError) || !error.retryable) throw error;
        reasons.set(error.reason, (reasons.get(error.reason) ?? 0) + 1);
        const left = deadline - Date.now();
        if (left <= delay) {
          const reason = [...reasons].sort((a, b) => b[1] - a[1])[0]?.[0] ?? error.reason;
          throw new HostConnectError(
            this.label,
            `gave up after ${attempt} attempts in ${Math.round((budget - left) / 1000)}s: ${reason}`,
            false,
            { cause: error },
          );
        }
        this.#options.log?.(`${this.label}: ${error.reason}; retrying in ${delay / 1000}s`);
        await sleep(delay, undefined, { signal });
        delay = Math.min(delay * 2, 5_000);
      }
    }
  }

  async #attempt(timeoutMs: number, signal?: AbortSignal): Promise<Client> {
    const options = this.#options;
    const name = knownHostsName(options.address, this.#port);
    const key = await this.#privateKey();
    let refused: HostKeyError | undefined;
    let newKey: Buffer | undefined;
    const verify = (offered: Buffer): boolean => {
      const check = options.knownHosts.check(name, offered);
      const offeredText = `${keyTypeOf(offered)} key ${fingerprint(offered)}`;
      if (check.status === "known") return true;
      if (check.status === "revoked") {
        refused = new HostKeyError(
          this.label,
          "revoked",
          `the host offered ${offeredText}, which ${check.entry.file}:${check.entry.line} marks as @revoked`,
        );
        return false;
      }
      if (check.status === "changed") {
        const known = check.entries.map((e) => `${fingerprint(e.key)} (${e.file}:${e.line})`).join(", ");
        refused = new HostKeyError(
          this.label,
          "changed",
          `HOST KEY CHANGED: the host offered ${offeredText}, but known_hosts has ${known}. ` +
            "Someone could be intercepting the connection, or the host was reinstalled. If the change " +
            `is expected, remove the old key (ssh-keygen -R '${name}' -f ${check.entries[0]?.file}) and connect again.`,
        );
        return false;
      }
      if (!options.acceptNewHostKeys) {
        refused = new HostKeyError(
          this.label,
          "unknown",
          `host key not known: ${options.knownHosts.files.join(", ")} has no entry for ${name} ` +
            `(the host offered ${offeredText}). Check the fingerprint and add it to known_hosts, ` +
            "or run with --accept-new-host-keys to record it on first connection.",
        );
        return false;
      }
      newKey = offered;
      return true;
    };

    const hostKeyAlgorithms = options.knownHosts.algorithms(name) as ServerHostKeyAlgorithm[] | undefined;
    const config: ConnectConfig = {
      host: options.address,
      port: this.#port,
      username: options.user,
      readyTimeout: Math.max(timeoutMs, 1),
      keepaliveInterval: KEEPALIVE_MS,
      keepaliveCountMax: 3,
      hostVerifier: verify,
      algorithms: { kex: KEX, ...(hostKeyAlgorithms && { serverHostKey: hostKeyAlgorithms }) },
      authHandler: authMethods(options, key),
    };

    const client = new SshClient();
    return new Promise<Client>((resolve, reject) => {
      let recording: Promise<void> = Promise.resolve();
      let settled = false;
      const onAbort = () => settle(signal?.reason);
      signal?.addEventListener("abort", onAbort, { once: true });
      const settle = (error?: unknown) => {
        if (settled) return;
        settled = true;
        signal?.removeEventListener("abort", onAbort);
        client.removeAllListeners("error");
        client.on("error", () => {}); // later errors end the connection; 'close' resets it
        if (error === undefined) resolve(client);
        else {
          client.destroy();
          reject(error);
        }
      };
      // The verifier runs before the server has proved it owns the key; 'handshake' comes after the
      // proof, so a new key is recorded only then.
      client.once("handshake", () => {
        if (newKey) recording = this.#record(name, newKey);
      });
      client.once("ready", () => recording.then(() => settle(), settle));
      client.once("error", (error: Error & { level?: string; code?: string }) =>
        settle(refused ?? this.#classify(error, timeoutMs)),
      );
      client.once("close", () =>
        settle(refused ?? new HostConnectError(this.label, "connection closed during the handshake", true)),
      );
      try {
        client.connect(config);
      } catch (error) {
        settle(new HostConnectError(this.label, (error as Error).message, false, { cause: error }));
      }
    });
  }

  async #record(name: string, key: Buffer): Promise<void> {
    const entry = await this.#options.knownHosts.add(name, key);
    this.#options.log?.(
      `${this.label}: recorded new host key ${keyTypeOf(key)} ${fingerprint(key)} in ${entry.file}:${entry.line}`,
    );
  }

  #classify(error: Error & { level?: string; code?: string }, timeoutMs: number): HostConnectError {
    const message = this.redactor.redact(error.message);
    if (error.level === "client-authentication") {
      const methods = [
        this.#options.privateKey && "private key",
        this.#options.agentSocket && "ssh-agent",
        this.#options.password !== undefined && "password",
      ].filter(Boolean);
      return new HostConnectError(
        this.label,
        `authentication failed for user ${this.#options.user} (tried: ${methods.join(", ") || "none"})`,
        false,
        { cause: error },
      );
    }
    if (error.level === "client-timeout") {
      return new HostConnectError(this.label, `no SSH handshake within ${timeoutMs / 1000}s`, true, {
        cause: error,
      });
    }
    if (error.level === "handshake" && /host key/i.test(message)) {
      return new HostConnectError(
        this.label,
        `${message}: the host does not offer a key of the types known_hosts has for it`,
        false,
        { cause: error },
      );
    }
    const retryable = error.code !== undefined && TRANSIENT.has(error.code);
    return new HostConnectError(this.label, message, retryable, { cause: error });
  }

  /** The key, decrypted once up front so a bad key or passphrase fails clearly and is not retried. */
  #privateKey(): Promise<ParsedKey | undefined> {
    this.#key ??= (async () => {
      const options = this.#options.privateKey;
      if (!options) return undefined;
      const where = options.path ?? "the private key";
      let data = options.data;
      if (data === undefined && options.path) {
        data = await readFile(options.path).catch((error: Error) => {
          throw new HostConnectError(this.label, `cannot read ${where}: ${error.message}`, false, {
            cause: error,
          });
        });
      }
      if (data === undefined)
        throw new HostConnectError(this.label, "privateKey needs a path or data", false);
      const parsed = parseKeyOnce(data, options.passphrase);
      if (parsed instanceof Error) {
        const hint = options.passphrase === undefined ? "" : " (is the passphrase right?)";
        throw new HostConnectError(this.label, `cannot use ${where}: ${parsed.message}${hint}`, false);
      }
      return parsed;
    })();
    return this.#key;
  }
}

// Decrypting a passphrase-protected key (bcrypt KDF) costs ~0.4 s of CPU: once per key, not once
// per host and attempt. Keyed by a digest, so neither the key nor the passphrase is kept as text.
const parsedKeys = new Map<string, ParsedKey | Error>();

function parseKeyOnce(data: Buffer | string, passphrase: string | undefined): ParsedKey | Error {
  const id = createHash("sha256")
    .update(data)
    .update("\0")
    .update(passphrase ?? "")
    .digest("hex");
  const cached = parsedKeys.get(id);
  if (cached) return cached;
  const result = utils.parseKey(data, passphrase);
  // A file may hold several keys; ssh2 signs with the first, as OpenSSH does.
  const parsed = Array.isArray(result) ? (result[0] ?? new Error("no key in the file")) : result;
  parsedKeys.set(id, parsed);
  return parsed;
}

/** Auth methods in OpenSSH's order: agent, key, then password (keyboard-interactive too: servers
 * with PasswordAuthentication off often still ask for the password that way). */
function authMethods(options: SshHostOptions, key: ParsedKey | undefined): AnyAuthMethod[] {
  const username = options.user;
  const password = options.password;
  return [
    ...(options.agentSocket ? [{ type: "agent" as const, username, agent: options.agentSocket }] : []),
    ...(key ? [{ type: "publickey" as const, username, key }] : []),
    ...(password === undefined
      ? []
      : [
          { type: "password" as const, username, password },
          {
            type: "keyboard-interactive" as const,
            username,
            prompt: (...[, , , prompts, finish]: Parameters<KeyboardInteractiveAuthMethod["prompt"]>) =>
              finish(prompts.map(() => password)),
          },
        ]),
  ];
}

/** `promise`, or a rejection with the signal's reason if it aborts first. */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}
