// kubeforge's record of what it installed on a node: each file's checksum with the size and mtime it
// had right after the write, and the packages it installed. It makes the no-op re-run cheap (a stat
// instead of hashing 100 MB binaries) but is never trusted over the host: a file whose size or
// mtime moved is hashed again, a lost or garbled record only costs hashing, and `--verify` always
// hashes.
import type { Host } from "../hosts/host.js";
import { shellQuote } from "../hosts/sudo.js";

export interface RecordedFile {
  path: string;
  sha256: string;
  size: number;
  /** Seconds since the epoch, as `stat -c %Y` prints it. */
  mtime: number;
}

export interface InstallRecord {
  kubernetesVersion: string;
  files: RecordedFile[];
  /** Packages kubeforge installed (reset --purge removes these and no others). */
  packages: Array<{ name: string; version: string }>;
}

export const EMPTY_RECORD: InstallRecord = { kubernetesVersion: "", files: [], packages: [] };

/** The record as the host has it; anything unreadable counts as no record (files get hashed). */
export function parseInstallRecord(text: string | undefined): InstallRecord {
  if (!text) return EMPTY_RECORD;
  try {
    const parsed = JSON.parse(text) as Partial<InstallRecord>;
    return {
      kubernetesVersion: typeof parsed.kubernetesVersion === "string" ? parsed.kubernetesVersion : "",
      files: Array.isArray(parsed.files) ? parsed.files.filter(isRecordedFile) : [],
      packages: Array.isArray(parsed.packages)
        ? parsed.packages.filter((p) => typeof p?.name === "string")
        : [],
    };
  } catch {
    return EMPTY_RECORD;
  }
}

function isRecordedFile(value: unknown): value is RecordedFile {
  const file = value as RecordedFile;
  return (
    typeof file?.path === "string" &&
    typeof file.sha256 === "string" &&
    typeof file.size === "number" &&
    typeof file.mtime === "number"
  );
}

export function serializeInstallRecord(record: InstallRecord): string {
  const sorted: InstallRecord = {
    kubernetesVersion: record.kubernetesVersion,
    files: [...record.files].sort((a, b) => a.path.localeCompare(b.path)),
    packages: [...record.packages].sort((a, b) => a.name.localeCompare(b.name)),
  };
  return `${JSON.stringify(sorted, null, 2)}\n`;
}

/** A file prepare wants on the node, with the content's checksum and mode. */
export interface WantedFile {
  path: string;
  sha256: string;
  mode: number;
}

export type FileStatus =
  | { path: string; status: "missing" | "differs" }
  /** Content as wanted; `size`/`mtime` are the file's now, for the record. */
  | { path: string; status: "same"; size: number; mtime: number };

/**
 * One script for many files: a file whose size and mtime match the record for the same checksum is
 * taken as is (unless `verify`); any other is hashed on the host. A wrong mode counts as differing.
 */
export function fileCheckScript(
  wanted: readonly WantedFile[],
  record: InstallRecord,
  options: { verify: boolean },
): string {
  const recorded = new Map(record.files.map((file) => [file.path, file]));
  const lines = wanted.map((file) => {
    const known = recorded.get(file.path);
    const trusted = !options.verify && known?.sha256 === file.sha256 ? `${known.size} ${known.mtime}` : "-";
    return `check ${shellQuote(file.path)} ${shellQuote(trusted)} ${file.sha256} ${file.mode.toString(8)}`;
  });
  return [
    "check() {",
    '  if [ ! -f "$1" ]; then echo "missing $1"; return; fi',
    '  now=$(stat -c "%s %Y" "$1"); mode=$(stat -c %a "$1")',
    '  if [ "$mode" != "$4" ]; then echo "differs $1"; return; fi',
    '  if [ "$2" = "$now" ]; then echo "same $1 $now"; return; fi',
    '  sum=$(sha256sum < "$1"); sum=${sum%% *}',
    '  if [ "$sum" = "$3" ]; then echo "same $1 $now"; else echo "differs $1"; fi',
    "}",
    ...lines,
  ].join("\n");
}

export function parseFileChecks(output: string): Map<string, FileStatus> {
  const statuses = new Map<string, FileStatus>();
  for (const line of output.split("\n")) {
    const [status, path, size, mtime] = line.split(" ");
    if (!path) continue;
    if (status === "same") statuses.set(path, { path, status, size: Number(size), mtime: Number(mtime) });
    else if (status === "missing" || status === "differs") statuses.set(path, { path, status });
  }
  return statuses;
}

export async function checkFiles(
  host: Host,
  wanted: readonly WantedFile[],
  record: InstallRecord,
  options: { verify: boolean; sudo: boolean; signal?: AbortSignal },
): Promise<Map<string, FileStatus>> {
  if (wanted.length === 0) return new Map();
  const { stdout } = await host.exec(fileCheckScript(wanted, record, options), {
    sudo: options.sudo,
    timeoutMs: 300_000,
    ...(options.signal && { signal: options.signal }),
  });
  return parseFileChecks(stdout);
}

/** Size and mtime of a file just written, for the record. */
export async function statForRecord(
  host: Host,
  path: string,
  options: { sudo: boolean; signal?: AbortSignal },
): Promise<{ size: number; mtime: number }> {
  const { stdout } = await host.exec(`stat -c "%s %Y" -- ${shellQuote(path)}`, {
    sudo: options.sudo,
    timeoutMs: 30_000,
    ...(options.signal && { signal: options.signal }),
  });
  const [size, mtime] = stdout.trim().split(" ").map(Number);
  return { size: size ?? 0, mtime: mtime ?? 0 };
}
