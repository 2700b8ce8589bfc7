// Where a scenario's PKI comes from. The proofs in pki.test.ts are written against this interface, so
// they run unchanged against kubeforge's generator (the built CLI) or against the openssl stand-in
// that was used while the generator was being written.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { ensureBuilt, kubeforgeCli, type ProcessRun, ROOT, run } from "./cli.js";
import { opensslGenerate, opensslUserKubeconfig } from "./openssl-pki.js";

export interface PkiSource {
  name: "kubeforge" | "kubeforge-lib" | "openssl";
  /** For test names and logs: which generator made the PKI under test. */
  label: string;
  /** Everything that must be ready before `generate` runs (building the CLI). */
  prepare(): Promise<void>;
  /** `kubeforge certs generate -f FILE` into `<stateDir>/<metadata.name>`; exit 0 done, 2 bad input. */
  generate(file: string, stateDir: string, cwd: string): Promise<ProcessRun>;
  /** `kubeforge kubeconfig user -f FILE --name NAME --group G…`: the kubeconfig on stdout. */
  userKubeconfig(
    file: string,
    stateDir: string,
    cwd: string,
    user: { name: string; groups: string[] },
  ): Promise<ProcessRun>;
}

/** kubeforge's own generator, through the built CLI exactly as a user runs it. */
export const kubeforgePki: PkiSource = {
  name: "kubeforge",
  label: "kubeforge certs generate (built CLI)",
  prepare: ensureBuilt,
  generate: (file, stateDir, cwd) =>
    kubeforgeCli(["--state-dir", stateDir, "certs", "generate", "-f", file], { cwd }),
  userKubeconfig: (file, stateDir, cwd, user) =>
    kubeforgeCli(
      [
        "--state-dir",
        stateDir,
        "kubeconfig",
        "user",
        "-f",
        file,
        "--name",
        user.name,
        ...user.groups.flatMap((group) => ["--group", group]),
      ],
      { cwd },
    ),
};

// kubeforge's generator called as a library from dist/ in a fresh `node` process, for trying the
// proofs on its output before the CLI commands exist. Bad input (PkiError, ConfigError, UsageError)
// is mapped to exit 2 here, as the CLI is to do; the messages are the library's own.
const LIB_SCRIPT = `
import { homedir } from "node:os";
import { join } from "node:path";
const [loadModule, pkiModule, what, file, stateDir, name, ...groups] = process.argv.slice(1);
const { loadClusterFile } = await import(loadModule);
const pki = await import(pkiModule);
try {
  const { cluster } = await loadClusterFile(file, { env: process.env, homeDir: homedir(), cwd: process.cwd() });
  const clusterDir = join(stateDir, cluster.metadata.name);
  if (what === "generate") {
    const result = await pki.ensurePki(cluster, clusterDir, { clusterFile: file });
    process.stdout.write(\`created \${result.created.length}, reused \${result.reused.length}\\n\`);
  } else {
    process.stdout.write(await pki.userKubeconfig(cluster, clusterDir, { name, groups, clusterFile: file }));
  }
} catch (error) {
  if (!["PkiError", "ConfigError", "UsageError"].includes(error?.name)) throw error;
  process.stderr.write(\`error: \${error.message}\\n\`);
  process.exitCode = 2;
}
`;

function libModule(): string {
  for (const candidate of ["dist/certs/pki.js", "dist/certs/store.js"]) {
    if (existsSync(join(ROOT, candidate))) return join(ROOT, candidate);
  }
  throw new Error("no dist/certs/pki.js or dist/certs/store.js: is the generator built?");
}

function libRun(cwd: string, args: string[]): Promise<ProcessRun> {
  const load = pathToFileURL(join(ROOT, "dist/config/load.js")).href;
  const pki = pathToFileURL(libModule()).href;
  return run(process.execPath, ["--input-type=module", "-e", LIB_SCRIPT, load, pki, ...args], { cwd });
}

export const kubeforgeLibPki: PkiSource = {
  name: "kubeforge-lib",
  label: "kubeforge's generator as a library (dist/certs ensurePki, userKubeconfig), not the CLI",
  prepare: ensureBuilt,
  generate: (file, stateDir, cwd) => libRun(cwd, ["generate", file, stateDir]),
  userKubeconfig: (file, stateDir, cwd, user) =>
    libRun(cwd, ["user", file, stateDir, user.name, ...user.groups]),
};

/** The stand-in: the same store layout made with the openssl CLI (support/openssl-pki.ts). */
export const opensslPki: PkiSource = {
  name: "openssl",
  label: "openssl stand-in (support/openssl-pki.ts), NOT kubeforge's generator",
  prepare: async () => {},
  generate: (file, stateDir, cwd) => opensslGenerate(file, stateDir, cwd),
  userKubeconfig: (file, stateDir, cwd, user) => opensslUserKubeconfig(file, stateDir, cwd, user),
};

/**
 * The PKI source named in the test file, unless `KUBEFORGE_TEST_PKI=kubeforge|kubeforge-lib|openssl`
 * overrides it for one run (to try another one without editing).
 */
export function pkiSource(chosen: PkiSource["name"]): PkiSource {
  const wanted = process.env.KUBEFORGE_TEST_PKI || chosen;
  if (wanted === "kubeforge") return kubeforgePki;
  if (wanted === "openssl") return opensslPki;
  if (wanted === "kubeforge-lib") return kubeforgeLibPki;
  throw new Error(`KUBEFORGE_TEST_PKI=${wanted}: give kubeforge, kubeforge-lib or openssl`);
}
