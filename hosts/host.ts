// The one transport interface the phases use. SshHost (ssh.ts) and LocalHost (local.ts) implement it
// on top of CommandHost (runner.ts), so command wrapping, sudo, timeouts and file writes behave the
// same on both.
import type { Readable } from "node:stream";

export type OutputStream = "stdout" | "stderr";

export interface ExecOptions {
  /** Data for the command's standard input, sent after sudo has authenticated. */
  stdin?: string | Buffer | Readable;
  /** Kill the command (its whole process group, on the host) when it runs longer than this. */
  timeoutMs?: number;
  /** Aborting kills the command on the host, as a timeout does. */
  signal?: AbortSignal;
  /** Run as root through sudo; a no-op for a root login. */
  sudo?: boolean;
  /**
   * The command line holds something that must not be shown: errors say `[sensitive command]` and
   * output is not streamed to `onOutput`. The command line is still visible on the host (ps, sudo's
   * log), so pass real secrets through `stdin`.
   */
  sensitive?: boolean;
  /** Called with each complete output line (without its newline), already redacted. */
  onOutput?: (line: string, stream: OutputStream) => void;
  /** Resolve with the exit code instead of throwing RemoteCommandError when it is not 0. */
  allowFailure?: boolean;
}

export interface ExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export interface FileOptions {
  sudo?: boolean;
  signal?: AbortSignal;
  timeoutMs?: number;
}

export interface WriteFileOptions extends FileOptions {
  /** Final permission bits, set before any content is written. Default 0o644. */
  mode?: number;
  /** Final owner and group (names or ids); default: whoever writes (root under sudo). */
  owner?: string;
  group?: string;
  /** Missing parent directories are created with this mode. Default 0o755. */
  dirMode?: number;
}

export interface Host {
  /** The name used in log prefixes and errors, e.g. `cp1 (198.18.0.11:22)`. */
  readonly label: string;
  /** The login user; sudo is skipped when it is root. */
  readonly user: string;
  exec(command: string, options?: ExecOptions): Promise<ExecResult>;
  readFile(path: string, options?: FileOptions): Promise<Buffer>;
  /** Writes atomically: a reader sees the old file or the new one, never a part. */
  writeFile(path: string, data: string | Buffer, options?: WriteFileOptions): Promise<void>;
  /** Copies a local file to the host, atomically, streaming it. */
  upload(localPath: string, remotePath: string, options?: WriteFileOptions): Promise<void>;
  /** Connects now rather than on the first command, so a connect phase can fail early. */
  connect(signal?: AbortSignal): Promise<void>;
  close(): Promise<void>;
  toString(): string;
}

/** Connecting failed; `retryable` says whether trying again later could help. */
export class HostConnectError extends Error {
  override name = "HostConnectError";
  constructor(
    readonly host: string,
    /** The message without the host prefix. */
    readonly reason: string,
    readonly retryable: boolean,
    options?: ErrorOptions,
  ) {
    super(`${host}: ${reason}`, options);
  }
}

/** The host's key is unknown, changed or revoked. Never retried. */
export class HostKeyError extends Error {
  override name = "HostKeyError";
  constructor(
    readonly host: string,
    readonly reason: "unknown" | "changed" | "revoked",
    message: string,
  ) {
    super(`${host}: ${message}`);
  }
}
