// Per-host fan-out: at most `limit` hosts at once, every started host runs to its end, and the
// caller gets every failure, not just the first (k0sctl's ParallelEach, with a window).

export interface FanOutResult<T> {
  failures: Map<string, unknown>;
  /** Items never started because the run was aborted. */
  cancelled: T[];
}

export async function fanOut<T extends { readonly name: string }>(
  items: readonly T[],
  limit: number,
  signal: AbortSignal,
  work: (item: T) => Promise<void>,
): Promise<FanOutResult<T>> {
  const failures = new Map<string, unknown>();
  const cancelled: T[] = [];
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      if (signal.aborted) {
        cancelled.push(item);
        continue;
      }
      try {
        await work(item);
      } catch (error) {
        failures.set(item.name, error);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, limit), items.length) }, worker));
  return { failures, cancelled };
}
