// The PKI under test: kubeforge's generator through the built CLI, exactly as a user runs it.
import { ensureBuilt, kubeforgeCli, type ProcessRun } from "./cli.js";

export interface PkiSource {
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
