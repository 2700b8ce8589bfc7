// The read-only probes (facts, node state, reset's leftovers) print one `key=value` per line, a key
// repeated for lists; this reads that output once, the same way for all of them.

export interface ProbeOutput {
  /** The first value of `key`, or "" when absent. */
  one(key: string): string;
  /** Every value of `key`, in output order. */
  all(key: string): string[];
  has(key: string): boolean;
}

export function parseProbeOutput(output: string): ProbeOutput {
  const values = new Map<string, string[]>();
  for (const line of output.split("\n")) {
    const at = line.indexOf("=");
    if (at <= 0) continue;
    const key = line.slice(0, at);
    values.set(key, [...(values.get(key) ?? []), line.slice(at + 1)]);
  }
  const all = (key: string) => values.get(key) ?? [];
  return { all, one: (key) => all(key)[0] ?? "", has: (key) => values.has(key) };
}
