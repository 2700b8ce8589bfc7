// `kubeforge bundle create|inspect|verify`: offline bundles, made from a directory and checked
// before any host is touched.
import { stat } from "node:fs/promises";
import { resolve } from "node:path";
import type { Command } from "commander";
import { type Bundle, createBundle, openBundle } from "../artifacts/bundle.js";
import { type BundleTarget, missingFromBundle } from "../artifacts/completeness.js";
import type { BundleFile } from "../artifacts/manifest.js";
import { loadClusterFile } from "../config/load.js";
import { BundleError, UsageError } from "../workflow/errors.js";
import { EVENT_VERSION } from "../workflow/events.js";
import { FILE_FLAGS, FILE_HELP } from "./config-command.js";
import { bundleCacheDir, type CliContext } from "./program.js";

const PLATFORM = /^linux-[a-z0-9_]+$/;
const DISTRO = /^[a-z][a-z0-9]*-[0-9][0-9.]*-([a-z0-9_]+)$/;

function formatSize(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
}

function list(value: string, previous: string[]): string[] {
  return [
    ...previous,
    ...value
      .split(",")
      .map((item) => item.trim())
      .filter(Boolean),
  ];
}

/** What the bundle holds, grouped: for `inspect` and the summary of `create`. */
function describe(bundlePath: string, files: readonly BundleFile[], version: string, size: number) {
  const distinct = (values: Array<string | undefined>) =>
    [...new Set(values.filter((v) => v !== undefined))].sort();
  return {
    bundle: bundlePath,
    kubernetesVersion: version,
    size,
    platforms: distinct(files.map((f) => f.platform)),
    distros: distinct(files.map((f) => f.distro)),
    images: distinct(files.flatMap((f) => f.images ?? [])),
    packages: files.flatMap((f) => (f.package ? [{ ...f.package, distro: f.distro }] : [])),
    files: files.map(({ path, kind, size: bytes }) => ({ path, kind, size: bytes })),
  };
}

function formatDescription(summary: ReturnType<typeof describe>): string {
  const section = (title: string, lines: string[]) =>
    lines.length > 0 ? [`${title}:`, ...lines.map((line) => `  ${line}`)] : [`${title}: none`];
  const byKind = (kind: string) => summary.files.filter((file) => file.kind === kind);
  const fileLines = (kind: string) => byKind(kind).map((file) => `${file.path}  ${formatSize(file.size)}`);
  return [
    `${summary.bundle}: Kubernetes ${summary.kubernetesVersion}, ${summary.files.length} files, ${formatSize(summary.size)}`,
    `platforms: ${summary.platforms.join(", ") || "none"}`,
    `distros: ${summary.distros.join(", ") || "none"}`,
    ...section("binaries", [...fileLines("binary"), ...fileLines("cni")]),
    ...section("images", summary.images),
    ...section(
      "packages",
      summary.packages.map((p) => `${p.name} ${p.version} ${p.arch} (${p.distro})`),
    ),
    ...section("manifests", fileLines("manifest")),
  ].join("\n");
}

/**
 * The hosts `verify` checks completeness for: each --distro (its platform follows from its arch)
 * and each --platform not covered by a distro; linux-amd64 when neither is given.
 */
function targetsFrom(platforms: string[], distros: string[], roles: BundleTarget["roles"]): BundleTarget[] {
  for (const platform of platforms) {
    if (!PLATFORM.test(platform))
      throw new UsageError(`--platform ${platform}: expected <os>-<arch>, e.g. linux-amd64`);
  }
  const targets: BundleTarget[] = distros.map((distro) => {
    const arch = DISTRO.exec(distro)?.[1];
    if (!arch)
      throw new UsageError(`--distro ${distro}: expected <id>-<version>-<arch>, e.g. debian-12-amd64`);
    return { platform: `linux-${arch}`, distro, roles };
  });
  const wanted = platforms.length === 0 && distros.length === 0 ? ["linux-amd64"] : platforms;
  for (const platform of wanted) {
    if (!targets.some((target) => target.platform === platform)) targets.push({ platform, roles });
  }
  return targets;
}

export function addBundleCommands(program: Command, context: CliContext): void {
  const { io } = context;
  const json = (type: string, body: object): void => {
    io.stdout.write(`${JSON.stringify({ v: EVENT_VERSION, type, ...body })}\n`);
  };
  const cacheDir = () => bundleCacheDir(context);
  const open = (file: string, verify: boolean): Promise<Bundle> =>
    openBundle(resolve(io.cwd, file), { cacheDir: cacheDir(), verify, signal: io.signal });

  const bundle = program
    .command("bundle")
    .description("Offline bundles: binaries, images and OS packages in one file");

  bundle
    .command("create")
    .description("Pack a directory (layout in the README) into one bundle file, atomically")
    .requiredOption("--from-dir <dir>", "the directory to pack")
    // -o here is the file, as `tar -f`/`gcc -o`: after a command name global options are the command's.
    .requiredOption("-o, --out <file>", "the bundle file to write")
    .option(
      "--kubernetes-version <version>",
      "e.g. v1.30.4 (default: the directory's kubernetes-version file)",
    )
    .action(async (options: { fromDir: string; out: string; kubernetesVersion?: string }) => {
      const out = resolve(io.cwd, options.out);
      const created = await createBundle(resolve(io.cwd, options.fromDir), out, {
        kubernetesVersion: options.kubernetesVersion,
        signal: io.signal,
      });
      const summary = describe(out, created.manifest.files, created.manifest.kubernetesVersion, created.size);
      if (context.output === "json") return json("bundle.created", summary);
      io.stdout.write(
        `wrote ${out}: Kubernetes ${summary.kubernetesVersion}, ${summary.files.length} files, ${summary.images.length} images, ${formatSize(created.size)}\n`,
      );
    });

  bundle
    .command("inspect <file>")
    .description("Show what a bundle holds: version, platforms, distros, images, packages, sizes")
    .action(async (file: string) => {
      const opened = await open(file, false);
      const { manifest } = opened;
      const { size } = await stat(opened.path);
      const summary = describe(opened.path, manifest.files, manifest.kubernetesVersion, size);
      if (context.output === "json") return json("bundle.inspect", summary);
      io.stdout.write(`${formatDescription(summary)}\n`);
    });

  bundle
    .command("verify <file>")
    .description("Re-hash every member; with -f, also check the bundle has everything the cluster needs")
    .option(FILE_FLAGS, `${FILE_HELP}: also check completeness for it`)
    .option(
      "--platform <os-arch>",
      "hosts' platform, e.g. linux-arm64; repeatable (default linux-amd64)",
      list,
      [],
    )
    .option(
      "--distro <id-version-arch>",
      "hosts' distro, e.g. debian-12-amd64, to check OS packages; repeatable",
      list,
      [],
    )
    .action(async (file: string, options: { file?: string; platform: string[]; distro: string[] }) => {
      // Completeness depends on the cluster's version and roles; without -f the flags would be ignored.
      if (!options.file && (options.platform.length > 0 || options.distro.length > 0)) {
        throw new UsageError(
          "--platform/--distro check completeness for a cluster file: add -f cluster.yaml",
        );
      }
      const opened = await open(file, true);
      let targets: BundleTarget[] = [];
      if (options.file) {
        const { cluster } = await loadClusterFile(options.file, {
          env: io.env,
          homeDir: io.homeDir,
          cwd: io.cwd,
        });
        const roles = [...new Set(cluster.spec.hosts.map((host) => host.role))];
        targets = targetsFrom(options.platform, options.distro, roles);
        const missing = missingFromBundle(opened.manifest, cluster, targets);
        if (missing.length > 0) {
          throw new BundleError(
            opened.path,
            missing.map((line) => ({ member: "", problem: `lacks ${line}` })),
          );
        }
      }
      if (context.output === "json") {
        return json("bundle.verified", { bundle: opened.path, files: opened.manifest.files.length, targets });
      }
      const checked = options.file
        ? `; complete for ${options.file} on ${targets.map((t) => t.distro ?? t.platform).join(", ")}` +
          (targets.some((t) => t.distro) ? "" : " (OS packages not checked: pass --distro)")
        : "";
      io.stdout.write(`${opened.path}: ${opened.manifest.files.length} checksums OK${checked}\n`);
    });
}
