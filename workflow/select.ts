// Which phases a run executes: `phase <path>` selects, `--skip-phases` skips; a name covers the
// phase and everything under it; skip beats select; unknown names are errors (kubeadm's runner).
import { UsageError } from "./errors.js";
import type { FlatPhase, Target } from "./phase.js";

export interface Selection {
  /** Paths whose own body runs. */
  readonly runs: ReadonlySet<string>;
  /** Paths skipped by --skip-phases (reported as skipped). */
  readonly skipped: ReadonlySet<string>;
}

function covers(name: string, path: string): boolean {
  return path === name || path.startsWith(`${name}/`);
}

export function selectPhases<D, H extends Target>(
  flat: readonly FlatPhase<D, H>[],
  select: readonly string[],
  skip: readonly string[],
): Selection {
  const known = flat.map(({ path }) => path);
  const unknown = [...select, ...skip].filter((name) => !known.includes(name));
  if (unknown.length > 0) {
    throw new UsageError(
      `unknown phase ${unknown.map((n) => `"${n}"`).join(", ")}; phases are: ${known.join(", ")}`,
    );
  }
  const required = flat.filter(({ phase }) => phase.prerequisite).map(({ path }) => path);
  const unskippable = skip.filter((name) => required.some((path) => covers(name, path)));
  if (unskippable.length > 0) {
    throw new UsageError(
      `phase ${unskippable.map((n) => `"${n}"`).join(", ")} cannot be skipped: the other phases stand on it`,
    );
  }
  const runs = new Set<string>();
  const skipped = new Set<string>();
  for (const { path } of flat) {
    if (skip.some((name) => covers(name, path))) skipped.add(path);
    else if (select.length === 0 || select.some((name) => covers(name, path))) runs.add(path);
  }
  if (runs.size > 0) for (const path of required) runs.add(path);
  return { runs, skipped };
}

/** A parent phase is entered when it or any phase below it runs or is reported as skipped. */
export function isVisited(selection: Selection, path: string): boolean {
  const below = (set: ReadonlySet<string>) => [...set].some((p) => covers(path, p));
  return below(selection.runs) || below(selection.skipped);
}
