// Atomic file writes built only on Host.exec, so SSH and local hosts share them. One remote script
// creates a temp file next to the target (same filesystem, so the final `mv` is an atomic rename),
// gives it its final owner and mode before any byte is written, receives the content on stdin,
// checks its SHA-256 against the local one and only then renames it into place. On any failure, a
// kill included, the temp file is removed and the target is left as it was.
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { posix } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { Host, WriteFileOptions } from "./host.js";
import { shellQuote } from "./sudo.js";

/** Exit code of the write script when the received content does not match its checksum. */
export const CHECKSUM_MISMATCH_EXIT = 3;

export function sha256(data: Buffer): string {
  return createHash("sha256").update(data).digest("hex");
}

export async function writeFileAtomic(
  host: Pick<Host, "exec">,
  path: string,
  data: Buffer,
  options: WriteFileOptions = {},
): Promise<void> {
  await host.exec(atomicWriteScript(path, sha256(data), options), { ...execOptions(options), stdin: data });
}

export async function uploadFile(
  host: Pick<Host, "exec">,
  localPath: string,
  remotePath: string,
  options: WriteFileOptions = {},
): Promise<void> {
  // Hash first, then stream: a file larger than memory is never held whole.
  const hash = createHash("sha256");
  await pipeline(createReadStream(localPath), hash);
  await writeStreamAtomic(host, remotePath, createReadStream(localPath), hash.digest("hex"), options);
}

/** Writes a stream whose SHA-256 is known beforehand (a bundle member), atomically. */
export async function writeStreamAtomic(
  host: Pick<Host, "exec">,
  remotePath: string,
  stdin: Readable,
  expectedSha256: string,
  options: WriteFileOptions = {},
): Promise<void> {
  try {
    await host.exec(atomicWriteScript(remotePath, expectedSha256, options), {
      ...execOptions(options),
      stdin,
    });
  } finally {
    stdin.destroy(); // the command may have failed before reading it all
  }
}

function execOptions(options: WriteFileOptions) {
  return { sudo: options.sudo, signal: options.signal, timeoutMs: options.timeoutMs };
}

/**
 * The shell script that writes its stdin to `path` atomically, if the content hashes to
 * `expectedSha256`. Exported so tests can feed it content that does not match.
 */
export function atomicWriteScript(path: string, expectedSha256: string, options: WriteFileOptions): string {
  if (!posix.isAbsolute(path)) throw new Error(`not an absolute path: ${path}`);
  const target = posix.normalize(path);
  const dir = posix.dirname(target);
  const mode = octal(options.mode ?? 0o644);
  const dirMode = octal(options.dirMode ?? 0o755);
  const owner = (options.owner ?? "") + (options.group ? `:${options.group}` : "");
  // Every missing ancestor gets dirMode (mkdir -p would give the intermediate ones the umask's);
  // `|| [ -d ]` tolerates a concurrent writer creating the same directory.
  const parents = ancestors(dir)
    .map(
      (d) =>
        `[ -d ${shellQuote(d)} ] || mkdir -m ${dirMode} -- ${shellQuote(d)} 2>/dev/null || [ -d ${shellQuote(d)} ]`,
    )
    .join("\n");
  return [
    "set -e",
    parents,
    `tmp=$(mktemp ${shellQuote(`${dir === "/" ? "" : dir}/.${posix.basename(target)}.kubeforge-XXXXXXXX`)})`,
    `trap 'rm -f "$tmp"' EXIT`,
    `trap 'exit 143' HUP INT TERM`,
    // When the workstation dies mid-write, the closed connection makes any output a SIGPIPE, which
    // would end the shell without its EXIT trap and leave the temp file: ignored, writes just fail.
    `trap '' PIPE`,
    owner ? `chown -- ${shellQuote(owner)} "$tmp"` : "",
    `chmod ${mode} "$tmp"`,
    `cat > "$tmp"`,
    `sync -- "$tmp"`,
    `sum=$(sha256sum < "$tmp")`,
    `sum=\${sum%% *}`,
    `if [ "$sum" != ${expectedSha256} ]; then`,
    `  echo "checksum mismatch: expected ${expectedSha256}, received $sum" >&2 || :; exit ${CHECKSUM_MISMATCH_EXIT}`,
    "fi",
    // -T: never move into the target if it happens to be a directory.
    `mv -fT -- "$tmp" ${shellQuote(target)}`,
    "trap - EXIT",
  ]
    .filter((line) => line !== "")
    .join("\n");
}

function ancestors(dir: string): string[] {
  const parts = dir.split("/").filter(Boolean);
  return parts.map((_, i) => `/${parts.slice(0, i + 1).join("/")}`);
}

function octal(mode: number): string {
  return mode.toString(8).padStart(4, "0");
}
