// Everything the CLI takes from the process, gathered in cli/main.ts and passed down, so commands
// run in-process under test with their own streams, environment and signal.

export interface Output {
  write(text: string): unknown;
  readonly isTTY?: boolean;
}

export interface CliIo {
  env: Readonly<Record<string, string | undefined>>;
  cwd: string;
  homeDir: string;
  stdout: Output;
  stderr: Output;
  /** Aborted on Ctrl-C / SIGTERM. */
  signal: AbortSignal;
  version: string;
  /** Asks for a secret on the terminal, not echoed; absent without a terminal. */
  promptSecret?: (question: string) => Promise<string>;
  /** Asks a yes/no question on the terminal (default no); absent without a terminal. */
  confirm?: (question: string) => Promise<boolean>;
}
