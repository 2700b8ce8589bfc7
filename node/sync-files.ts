// Makes a set of files on a node hold exactly the wanted content and mode: one read-only probe for
// all of them, then an atomic write for each that differs (a chmod when only the mode drifted).
// Init and join hand it certificates, kubeconfigs, manifests and kubelet files; a re-run writes nothing.
import { createHash } from "node:crypto";
import type { ClusterHost } from "../hosts/open.js";
import { shellQuote } from "../hosts/sudo.js";
import type { HostStep } from "../workflow/phase.js";

export interface WantedNodeFile {
  path: string;
  mode: number;
  content: string | Buffer;
  /** Mode of parent directories the write creates (kubeadm: 0700 for the manifests directory). */
  dirMode?: number;
}

interface PresentFile {
  mode: number;
  sha256: string;
}

/** Reads `mode sha256 path` per existing file; absent files are simply not listed. */
export async function presentFiles(
  host: ClusterHost,
  paths: readonly string[],
  signal: AbortSignal,
): Promise<Map<string, PresentFile>> {
  if (paths.length === 0) return new Map();
  const script = `for f in ${paths.map(shellQuote).join(" ")}; do [ -f "$f" ] && printf '%s %s %s\\n' "$(stat -c %a "$f")" "$(sha256sum < "$f" | cut -d' ' -f1)" "$f"; done; true`;
  const { stdout } = await host.host.exec(script, { sudo: host.sudo, signal, timeoutMs: 60_000 });
  const present = new Map<string, PresentFile>();
  for (const line of stdout.split("\n")) {
    const match = /^([0-7]+) ([0-9a-f]{64}) (.+)$/.exec(line);
    if (match?.[1] && match[2] && match[3])
      present.set(match[3], { mode: Number.parseInt(match[1], 8), sha256: match[2] });
  }
  return present;
}

export function sha256Of(content: string | Buffer): string {
  return createHash("sha256").update(content).digest("hex");
}

/**
 * Brings every file to its wanted content and mode through the step's dry-run gate. Descriptions
 * name the path and mode only: contents may be keys. Returns the paths that were (or, in a dry run,
 * would be) written or chmod'ed.
 */
export async function syncNodeFiles<D>(
  step: HostStep<D, ClusterHost>,
  files: readonly WantedNodeFile[],
): Promise<string[]> {
  const { host, signal } = step;
  const present = await presentFiles(
    host,
    files.map((file) => file.path),
    signal,
  );
  const changed: string[] = [];
  for (const file of files) {
    const found = present.get(file.path);
    const mode = `0${file.mode.toString(8)}`;
    if (found?.sha256 !== sha256Of(file.content)) {
      await step.change(`${found ? "update" : "write"} ${file.path} (mode ${mode})`, () =>
        host.host.writeFile(file.path, file.content, {
          sudo: host.sudo,
          signal,
          mode: file.mode,
          ...(file.dirMode !== undefined && { dirMode: file.dirMode }),
        }),
      );
    } else if (found.mode !== file.mode) {
      await step.change(`chmod ${mode} ${file.path} (was 0${found.mode.toString(8)})`, () =>
        host.host.exec(`chmod ${mode} ${shellQuote(file.path)}`, { sudo: host.sudo, signal }),
      );
    } else continue;
    changed.push(file.path);
  }
  return changed;
}
