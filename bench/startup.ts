// Start-up cost: `kubeforge --version` against a bare `node -e 0`, interleaved so machine noise
// hits both alike. Goal: ≤ 1.5×. Run: npm run build && node dist/bench/startup.js [runs]
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const runs = Number(process.argv[2] ?? 30);
const bin = fileURLToPath(new URL("../../bin/kubeforge.js", import.meta.url));
const commands: Record<string, string[]> = { kubeforge: [bin, "--version"], node: ["-e", "0"] };

function timeOnce(args: string[]): number {
  const started = process.hrtime.bigint();
  const result = spawnSync(process.execPath, args, { stdio: ["ignore", "pipe", "inherit"] });
  if (result.status !== 0) throw new Error(`${args.join(" ")} exited ${result.status}`);
  return Number(process.hrtime.bigint() - started) / 1e6;
}

const samples: Record<string, number[]> = { kubeforge: [], node: [] };
for (const args of Object.values(commands)) timeOnce(args); // warm the page cache
for (let i = 0; i < runs; i++) {
  for (const [name, args] of Object.entries(commands)) samples[name]?.push(timeOnce(args));
}
const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
};
const kubeforge = median(samples.kubeforge ?? []);
const node = median(samples.node ?? []);
const ratio = kubeforge / node;
console.log(`startup, median of ${runs} interleaved runs (${process.version}):`);
console.log(`  kubeforge --version  ${kubeforge.toFixed(1)} ms`);
console.log(`  node -e 0            ${node.toFixed(1)} ms`);
console.log(`  ratio                ${ratio.toFixed(2)}x (goal <= 1.5x: ${ratio <= 1.5 ? "met" : "MISSED"})`);
