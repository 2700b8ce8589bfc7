// LocalHost: the Host interface for the workstation itself, through child_process. It shares
// CommandHost with SshHost, so it runs the same wrapper: sudo with the same prompt handling (give a
// sudoPassword when not root and sudo asks for one), setsid, and kill-the-group on timeout or abort.
import { spawn } from "node:child_process";
import { userInfo } from "node:os";
import { CommandHost, type CommandHostOptions, type RawProcess } from "./runner.js";

export interface LocalHostOptions extends CommandHostOptions {
  /** Shown in errors and log prefixes. Default `localhost`. */
  label?: string;
}

export class LocalHost extends CommandHost {
  readonly label: string;
  readonly user: string;

  constructor(options: LocalHostOptions) {
    super(options);
    this.label = options.label ?? "localhost";
    this.user = userInfo().username;
  }

  protected async start(command: string): Promise<RawProcess> {
    const child = spawn("/bin/sh", ["-c", command], { stdio: "pipe" });
    const exit = new Promise<{ code: number | null; signal: string | null }>((resolve, reject) => {
      child.once("error", reject);
      child.once("close", (code, signal) => resolve({ code, signal: signal?.replace(/^SIG/, "") ?? null }));
    });
    return {
      stdin: child.stdin,
      stdout: child.stdout,
      stderr: child.stderr,
      exit,
      close: () => {
        child.stdin.destroy();
        child.stdout.destroy();
        child.stderr.destroy();
      },
    };
  }

  async connect(): Promise<void> {}

  async close(): Promise<void> {}
}
