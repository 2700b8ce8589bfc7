// Offline bundles: one uncompressed tar whose first member is `manifest.json`. `createBundle` packs
// a source directory (layout.ts) atomically; `openBundle` checks a bundle before anything uses it
// and hands out members as streams read straight from the bundle file, by offset.
import { createHash, randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, open, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { BundleError, type BundleProblem, InterruptedError } from "../workflow/errors.js";
import { planBundle } from "./layout.js";
import {
  BUNDLE_API_VERSION,
  type BundleFile,
  type BundleManifest,
  MANIFEST_MEMBER,
  parseManifest,
} from "./manifest.js";
import { readMember, readTarIndex, TarFormatError, TarWriter } from "./tar.js";

const RECREATE = "re-create it with `kubeforge bundle create`";
const COPY_AGAIN = `the file was damaged or cut short after it was made: copy it again, or ${RECREATE}`;

export interface Bundle {
  path: string;
  manifest: BundleManifest;
  /** A member's bytes, streamed from the bundle file. */
  open(path: string): Readable;
  file(path: string): BundleFile;
}

export interface OpenBundleOptions {
  /** Where verification stamps are kept, so an unchanged bundle is hashed once. */
  cacheDir: string;
  /** Re-hash every member even if this exact file was verified before. */
  verify?: boolean;
  signal?: AbortSignal;
}

/** sha256 of a byte range of a file (a member of a bundle, or a whole source file), streamed. */
async function hashRange(path: string, start: number, size: number, signal?: AbortSignal): Promise<string> {
  const hash = createHash("sha256");
  try {
    if (size > 0) await pipeline(createReadStream(path, { start, end: start + size - 1 }), hash, { signal });
    else hash.end();
  } catch (error) {
    throw signal?.aborted ? new InterruptedError({ cause: error }) : error;
  }
  return hash.digest("hex");
}

/** Executables keep their execute bits on the way through. */
function modeOf(file: Pick<BundleFile, "kind">): number {
  return file.kind === "binary" || file.kind === "cni" ? 0o755 : 0o644;
}

export interface CreatedBundle {
  manifest: BundleManifest;
  /** Size of the bundle file in bytes. */
  size: number;
}

/**
 * Packs `fromDir` into `outFile`. The bundle is written to a temp file next to `outFile` and renamed
 * into place only when complete: a failure or an interrupt leaves no half-written bundle.
 */
export async function createBundle(
  fromDir: string,
  outFile: string,
  options: { kubernetesVersion?: string; signal?: AbortSignal; now?: Date } = {},
): Promise<CreatedBundle> {
  const { signal } = options;
  const plan = await planBundle(fromDir, options);
  const created = options.now ?? new Date();
  // Hashed before writing, because the manifest that holds the hashes comes first in the tar.
  const files: BundleFile[] = [];
  for (const { source, entry } of plan.files) {
    files.push({ ...entry, sha256: await hashRange(source, 0, entry.size, signal) });
  }
  const manifest: BundleManifest = {
    apiVersion: BUNDLE_API_VERSION,
    kind: "Bundle",
    kubernetesVersion: plan.kubernetesVersion,
    created: created.toISOString(),
    files,
  };
  const temp = join(dirname(outFile), `.${basename(outFile)}.${randomBytes(4).toString("hex")}.partial`);
  const handle = await open(temp, "wx", 0o644);
  try {
    const tar = new TarWriter(handle, created, signal);
    await tar.addBuffer(MANIFEST_MEMBER, Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`));
    for (const [index, { source }] of plan.files.entries()) {
      const file = files[index] as BundleFile;
      await tar.addFile(file.path, source, file.size, { mode: modeOf(file) });
    }
    await tar.finish();
    await handle.sync();
    await handle.close();
    await rename(temp, outFile);
  } catch (error) {
    await handle.close().catch(() => undefined);
    await rm(temp, { force: true });
    throw signal?.aborted && !(error instanceof InterruptedError)
      ? new InterruptedError({ cause: error })
      : error;
  }
  return { manifest, size: (await stat(outFile)).size };
}

/**
 * The key of a verification stamp: this exact file (device, inode, size, mtime) with this exact
 * manifest. Any copy, edit or touch changes it, and the bundle is hashed again.
 */
function stampKey(
  info: { dev: number; ino: number; size: number; mtimeMs: number },
  manifestText: Buffer,
): string {
  return createHash("sha256")
    .update(`${info.dev}:${info.ino}:${info.size}:${info.mtimeMs}\n`)
    .update(manifestText)
    .digest("hex");
}

/**
 * Opens a bundle: reads its index and manifest, checks that every manifest entry is there with its
 * size, and re-hashes every member unless a stamp in `cacheDir` says this exact file was verified.
 * Any problem is a BundleError (exit 2) naming the bundle, the member and the fix.
 */
export async function openBundle(path: string, options: OpenBundleOptions): Promise<Bundle> {
  const info = await stat(path).catch((error: NodeJS.ErrnoException) => {
    throw new BundleError(path, [
      {
        member: "",
        problem: error.code === "ENOENT" ? "does not exist" : `cannot be read (${error.message})`,
      },
    ]);
  });
  const entries = await readTarIndex(path).catch((error: unknown) => {
    if (!(error instanceof TarFormatError)) throw error;
    throw new BundleError(path, [{ member: "", problem: error.message, fix: COPY_AGAIN }], { cause: error });
  });
  const first = entries[0];
  if (first?.name !== MANIFEST_MEMBER) {
    throw new BundleError(path, [
      {
        member: MANIFEST_MEMBER,
        problem: "is not the first member: this is not a kubeforge bundle",
        fix: RECREATE,
      },
    ]);
  }
  const handle = await open(path, "r");
  const manifestText = await readMember(handle, first).finally(() => handle.close());
  const manifest = parseManifest(manifestText.toString("utf8"), path);

  const byName = new Map(entries.map((entry) => [entry.name, entry]));
  const problems: BundleProblem[] = [];
  for (const file of manifest.files) {
    const entry = byName.get(file.path);
    if (!entry)
      problems.push({ member: file.path, problem: "is listed in the manifest but missing", fix: COPY_AGAIN });
    else if (entry.size !== file.size) {
      problems.push({
        member: file.path,
        problem: `is ${entry.size} bytes, the manifest says ${file.size}`,
        fix: COPY_AGAIN,
      });
    }
  }
  if (problems.length > 0) throw new BundleError(path, problems);

  const stamp = join(options.cacheDir, "verified-bundles", stampKey(info, manifestText));
  const verifiedBefore =
    !options.verify && (await readFile(stamp, "utf8").catch(() => undefined)) !== undefined;
  if (!verifiedBefore) {
    for (const file of manifest.files) {
      const entry = byName.get(file.path);
      if (!entry) continue; // checked above
      const actual = await hashRange(path, entry.offset, entry.size, options.signal);
      if (actual !== file.sha256) {
        problems.push({
          member: file.path,
          problem: `checksum mismatch: sha256 ${actual}, the manifest says ${file.sha256}`,
          fix: COPY_AGAIN,
        });
      }
    }
    if (problems.length > 0) throw new BundleError(path, problems);
    await mkdir(dirname(stamp), { recursive: true, mode: 0o700 });
    await writeFile(stamp, `${path}\n`);
  }

  const files = new Map(manifest.files.map((file) => [file.path, file]));
  const fileOf = (member: string): BundleFile => {
    const file = files.get(member);
    if (!file) throw new BundleError(path, [{ member, problem: "is not in this bundle" }]);
    return file;
  };
  return {
    path,
    manifest,
    file: fileOf,
    open(member) {
      const file = fileOf(member);
      const entry = byName.get(member);
      if (!entry || file.size === 0) return Readable.from([]);
      return createReadStream(path, { start: entry.offset, end: entry.offset + entry.size - 1 });
    },
  };
}
