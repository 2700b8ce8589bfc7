import { defineConfig } from "vitest/config";

// Two projects: fast unit tests next to the code, and scenarios on real test hosts
// (ansible-free-tests/), which boot systemd-nspawn machines and so run one file at a time.
export default defineConfig({
  test: {
    reporters: ["default", "./vitest.summary.ts"],
    projects: [
      {
        test: {
          name: "unit",
          include: [
            "{cli,config,workflow,ui,hosts,facts,preflight,lab,phases,templates,certs,node,artifacts,api}/**/*.test.ts",
          ],
          clearMocks: true,
          restoreMocks: true,
        },
      },
      {
        test: {
          name: "scenarios",
          include: ["ansible-free-tests/**/*.test.ts"],
          fileParallelism: false,
          testTimeout: 180_000,
          hookTimeout: 600_000,
        },
      },
    ],
  },
});
