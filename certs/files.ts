// Writing the store: every file lands whole or not at all (temp file in the same directory with its
// final mode from the start, fsync, rename), so a crash never leaves half a key. A batch of writes
// (AtomicWriter) syncs each directory once at its end instead of after every rename.
import { randomBytes } from "node:crypto";
import { chmod, mkdir, open, readFile, rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

export const DIR_MODE = 0o700;
export const KEY_MODE = 0o600;
export const CERT_MODE = 0o644;
export const KUBECONFIG_MODE = 0o600;

/** Creates `dir` and its missing parents 0700, and makes `dir` itself 0700. */
export async function ensurePrivateDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: DIR_MODE });
  await chmod(dir, DIR_MODE);
}

export async function writeFileAtomic(file: string, content: string, mode: number): Promise<void> {
  await writeFileDurably(file, content, mode);
  await syncDir(dirname(file));
}

/** Temp file with its final mode, written and fsynced, then renamed over `file`; the directory is not synced. */
async function writeFileDurably(file: string, content: string, mode: number): Promise<void> {
  const dir = dirname(file);
  const temp = join(dir, `.${basename(file)}.${randomBytes(6).toString("hex")}.tmp`);
  const handle = await open(temp, "wx", mode);
  try {
    await handle.writeFile(content);
    // The mode given to open() is masked by the umask; set it exactly.
    await handle.chmod(mode);
    await handle.sync();
  } catch (error) {
    await handle.close();
    await rm(temp, { force: true });
    throw error;
  }
  await handle.close();
  try {
    await rename(temp, file);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}

async function syncDir(dir: string): Promise<void> {
  const dirHandle = await open(dir, "r");
  try {
    await dirHandle.sync();
  } finally {
    await dirHandle.close();
  }
}

/**
 * Many atomic writes as one batch: each file lands whole or not at all exactly as with
 * writeFileAtomic (temp file fsynced, then renamed), but each directory is created once and fsynced
 * once, by `flush`, rather than after every rename. Until `flush` returns, a crash may lose some of
 * the renames (the file is then absent or its old self, never partial); the store's checks name any
 * such leftover (a key without its certificate is generated again, a certificate without its key
 * or with another key is a problem with its renew fix).
 */
export class AtomicWriter {
  private readonly dirs = new Map<string, Promise<void>>();
  private readonly written = new Set<string>();

  /** `ensurePrivateDir` once per directory. */
  ensureDir(dir: string): Promise<void> {
    let made = this.dirs.get(dir);
    if (!made) {
      made = ensurePrivateDir(dir);
      this.dirs.set(dir, made);
    }
    return made;
  }

  /** Creates the file's directory (0700) if needed, then writes the file atomically. */
  async write(file: string, content: string, mode: number): Promise<void> {
    await this.ensureDir(dirname(file));
    await writeFileDurably(file, content, mode);
    this.written.add(dirname(file));
  }

  /** Makes every rename so far durable: one fsync per directory written to. */
  async flush(): Promise<void> {
    const dirs = [...this.written];
    this.written.clear();
    await Promise.all(dirs.map(syncDir));
  }
}

/** The file's text, or undefined when it does not exist. */
export async function readIfExists(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}
