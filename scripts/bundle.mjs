// Bundles the CLI into dist/bundle/ (one file per lazily loaded command): Node resolves and reads a
// few files instead of hundreds, which halves start-up. ssh2 stays external: its optional native
// crypto binding must be loaded from its own package.
import { rm } from "node:fs/promises";
import { build } from "esbuild";

// Chunk names carry content hashes: without a clean start, every build leaves the last one's behind.
await rm("dist/bundle", { recursive: true, force: true });

await build({
  entryPoints: { main: "cli/main.ts" },
  outdir: "dist/bundle",
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  sourcemap: true,
  external: ["ssh2", "cpu-features"],
  // Bundled CommonJS packages (commander, enquirer) call require().
  banner: {
    js: "import { createRequire as kubeforgeRequire } from 'node:module'; const require = kubeforgeRequire(import.meta.url);",
  },
  logLevel: "warning",
});
