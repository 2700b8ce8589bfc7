// Secrets by reference: resolved when first needed, each once, and handed to the redactor at once.
import { readFile } from "node:fs/promises";
import { ConfigError } from "../workflow/errors.js";
import type { Redactor } from "../workflow/redact.js";
import type { SecretReference } from "./schema.js";

export interface SecretSources {
  env: Readonly<Record<string, string | undefined>>;
  /** Asks on the terminal; undefined when there is none (then `prompt: true` is an error). */
  prompt?: (question: string) => Promise<string>;
  redactor: Redactor;
  /** The cluster file, for messages. */
  file: string;
}

/** Resolves secret references, asking or reading each distinct one only once. */
export class Secrets {
  #cache = new Map<string, Promise<string>>();

  constructor(private readonly sources: SecretSources) {}

  /** `what` describes the secret for a prompt; `path` locates the reference in the cluster file. */
  resolve(ref: SecretReference, what: string, path: string): Promise<string> {
    const key = JSON.stringify([ref.env, ref.file, ref.prompt && what]);
    let value = this.#cache.get(key);
    if (!value) {
      value = this.#read(ref, what, path).then((secret) => {
        this.sources.redactor.addSecret(secret);
        return secret;
      });
      this.#cache.set(key, value);
    }
    return value;
  }

  async #read(ref: SecretReference, what: string, path: string): Promise<string> {
    const fail = (message: string, cause?: unknown) =>
      new ConfigError([{ file: this.sources.file, line: undefined, path, message }], { cause });
    if (ref.env !== undefined) {
      const value = this.sources.env[ref.env];
      if (value === undefined || value === "")
        throw fail(`environment variable ${ref.env} is not set (it should hold the ${what})`);
      return value;
    }
    if (ref.file !== undefined) {
      try {
        return (await readFile(ref.file, "utf8")).replace(/\r?\n$/, "");
      } catch (error) {
        throw fail(
          `cannot read ${ref.file} (it should hold the ${what}): ${(error as Error).message}`,
          error,
        );
      }
    }
    if (!this.sources.prompt)
      throw fail(`asks for the ${what} on a terminal, but there is none; use {env: VAR} or {file: PATH}`);
    return this.sources.prompt(`${what}:`);
  }
}
