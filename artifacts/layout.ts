// The source directory of `kubeforge bundle create --from-dir DIR`: which file becomes which member,
// and what each one is. Image names are read from the archives themselves, package names from
// Debian's file name convention; nothing is guessed from an image archive's file name.
//
//   kubernetes-version                    `v1.30.4` (or --kubernetes-version)
//   bin/<os>-<arch>/                      kubelet, kubectl, optional crictl and kubeadm; nothing else
//   cni/<os>-<arch>/                      CNI plugins (bridge, host-local, loopback, portmap, …)
//   images/*.tar                          OCI image layouts or `docker save` archives, uncompressed
//   packages/<distro>-<release>-<arch>/   *.deb, named <name>_<version>_<arch>.deb
//   manifests/                            any files, kept as they are
import { open, readdir, readFile, stat } from "node:fs/promises";
import { join, posix, relative, sep } from "node:path";
import { describeSupportedVersions, parseSupportedVersion } from "../config/versions.js";
import { BundleError, type BundleProblem } from "../workflow/errors.js";
import { BUNDLE_BINARIES, type BundleFile } from "./manifest.js";
import { readMember, readTarIndex, TarFormatError } from "./tar.js";

export const VERSION_FILE = "kubernetes-version";
const TOP_LEVEL = new Set(["bin", "cni", "images", "packages", "manifests", VERSION_FILE]);
const PLATFORM = /^[a-z0-9]+-[a-z0-9_]+$/;
const DISTRO = /^[a-z][a-z0-9]*-[0-9][0-9.]*-[a-z0-9_]+$/;
/** Debian's pool name: `<name>_<version>_<arch>.deb`, the epoch's `:` written `%3a` or left out. */
const DEB_NAME = /^([a-z0-9][a-z0-9+.-]+)_([^_]+)_([a-z0-9-]+)\.deb$/;

/** A member to be: its manifest entry without the checksum, and the file it comes from. */
export interface PlannedFile {
  source: string;
  entry: Omit<BundleFile, "sha256">;
}

export interface BundlePlan {
  kubernetesVersion: string;
  files: PlannedFile[];
}

/** Regular files directly in `dir` (following symlinks), sorted; a subdirectory is a problem. */
async function filesIn(dir: string, problems: BundleProblem[], fromDir: string): Promise<string[]> {
  const names = (await readdir(dir)).sort();
  const files: string[] = [];
  for (const name of names) {
    const path = join(dir, name);
    if ((await stat(path)).isFile()) files.push(path);
    else
      problems.push({ member: relative(fromDir, path), problem: "is not a regular file", fix: "remove it" });
  }
  return files;
}

/** Every regular file under `dir`, recursively, sorted. */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true });
  const files: string[] = [];
  for (const entry of entries.sort()) {
    const path = join(dir, entry);
    if ((await stat(path)).isFile()) files.push(path);
  }
  return files;
}

/** `bin/linux-amd64`-style subdirectories of a section, each named by its platform or distro. */
async function sections(
  dir: string,
  pattern: RegExp,
  example: string,
  problems: BundleProblem[],
  fromDir: string,
): Promise<Array<{ name: string; path: string }>> {
  const found: Array<{ name: string; path: string }> = [];
  for (const name of (await readdir(dir)).sort()) {
    const path = join(dir, name);
    if (!(await stat(path)).isDirectory() || !pattern.test(name)) {
      problems.push({
        member: relative(fromDir, path),
        problem: `is not a directory named like ${example}`,
        fix: `move its files into a directory such as ${relative(fromDir, join(dir, example))}`,
      });
    } else {
      found.push({ name, path });
    }
  }
  return found;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

async function resolveVersion(fromDir: string, flag: string | undefined, problems: BundleProblem[]) {
  const fileText = (await exists(join(fromDir, VERSION_FILE)))
    ? (await readFile(join(fromDir, VERSION_FILE), "utf8")).trim()
    : undefined;
  if (flag && fileText && flag !== fileText) {
    problems.push({
      member: VERSION_FILE,
      problem: `says ${fileText}, but --kubernetes-version says ${flag}`,
      fix: "make them agree, or drop one",
    });
  }
  const version = flag ?? fileText;
  if (!version) {
    problems.push({
      member: VERSION_FILE,
      problem: "is missing, and no --kubernetes-version was given",
      fix: `write the version (e.g. v1.30.4) to ${VERSION_FILE} or pass --kubernetes-version`,
    });
  } else if (!parseSupportedVersion(version)) {
    problems.push({
      member: flag ? "" : VERSION_FILE,
      problem: `${JSON.stringify(version)} is not a supported Kubernetes version (supported: ${describeSupportedVersions()})`,
    });
  }
  return version ?? "";
}

/** A ref names a registry or path and a tag or digest: `registry.k8s.io/pause:3.9`. */
function isFullRef(name: string): boolean {
  return name.includes("/") && /[:@][^/]+$/.test(name);
}

/**
 * The image refs an archive holds: OCI `index.json` (annotations io.containerd.image.name, or
 * org.opencontainers.image.ref.name when that is a full ref) and docker's `manifest.json` RepoTags.
 */
export async function imageNamesIn(archive: string): Promise<string[]> {
  const entries = await readTarIndex(archive, { skipLinks: true });
  const file = await open(archive, "r");
  try {
    const json = async (name: string): Promise<unknown> => {
      const entry = entries.find((e) => e.name === name);
      return entry ? JSON.parse((await readMember(file, entry)).toString("utf8")) : undefined;
    };
    const names = new Set<string>();
    const index = (await json("index.json")) as
      | { manifests?: Array<{ annotations?: Record<string, string> }> }
      | undefined;
    for (const manifest of index?.manifests ?? []) {
      const annotations = manifest.annotations ?? {};
      const refName = annotations["org.opencontainers.image.ref.name"];
      const name =
        annotations["io.containerd.image.name"] ?? (refName && isFullRef(refName) ? refName : undefined);
      if (name) names.add(name);
    }
    const dockerManifest = (await json("manifest.json")) as Array<{ RepoTags?: string[] }> | undefined;
    for (const image of Array.isArray(dockerManifest) ? dockerManifest : []) {
      for (const tag of image.RepoTags ?? []) names.add(tag);
    }
    return [...names].sort();
  } finally {
    await file.close();
  }
}

async function planImages(dir: string, problems: BundleProblem[], fromDir: string): Promise<PlannedFile[]> {
  const planned: PlannedFile[] = [];
  for (const source of await filesIn(dir, problems, fromDir)) {
    const member = relative(fromDir, source).split(sep).join("/");
    if (!source.endsWith(".tar")) {
      problems.push({
        member,
        problem: "is not an uncompressed .tar image archive",
        fix: "decompress it (e.g. gunzip) and name it *.tar, or remove it",
      });
      continue;
    }
    try {
      const images = await imageNamesIn(source);
      if (images.length === 0) {
        problems.push({
          member,
          problem: "names no image",
          fix: "export it with its name (`ctr images export`, `skopeo copy … oci-archive:FILE:REF`, `docker save REF`)",
        });
        continue;
      }
      planned.push({
        source,
        entry: { path: member, size: (await stat(source)).size, kind: "image", images },
      });
    } catch (error) {
      if (!(error instanceof TarFormatError || error instanceof SyntaxError)) throw error;
      problems.push({ member, problem: `is not a readable image archive: ${error.message}` });
    }
  }
  return planned;
}

async function planPackages(dir: string, problems: BundleProblem[], fromDir: string): Promise<PlannedFile[]> {
  const planned: PlannedFile[] = [];
  for (const distro of await sections(dir, DISTRO, "debian-12-amd64", problems, fromDir)) {
    for (const source of await filesIn(distro.path, problems, fromDir)) {
      const member = relative(fromDir, source).split(sep).join("/");
      const match = DEB_NAME.exec(posix.basename(member));
      if (!match) {
        problems.push({
          member,
          problem: "is not named <name>_<version>_<arch>.deb",
          fix: "rename it as Debian's pool does (dpkg-deb --field FILE Package Version Architecture)",
        });
        continue;
      }
      const [, name = "", version = "", arch = ""] = match;
      planned.push({
        source,
        entry: {
          path: member,
          size: (await stat(source)).size,
          kind: "package",
          distro: distro.name,
          package: { name, version: version.replace(/%3a/gi, ":"), arch },
        },
      });
    }
  }
  return planned;
}

async function planPlatformFiles(
  dir: string,
  kind: "binary" | "cni",
  problems: BundleProblem[],
  fromDir: string,
): Promise<PlannedFile[]> {
  const planned: PlannedFile[] = [];
  for (const platform of await sections(dir, PLATFORM, "linux-amd64", problems, fromDir)) {
    for (const source of await filesIn(platform.path, problems, fromDir)) {
      const path = relative(fromDir, source).split(sep).join("/");
      if (kind === "binary" && !BUNDLE_BINARIES.includes(posix.basename(path))) {
        problems.push({
          member: path,
          problem: `is not ${BUNDLE_BINARIES.slice(0, -1).join(", ")} or ${BUNDLE_BINARIES.at(-1)}, the only binaries bin/ may hold: prepare installs them to /usr/bin, over any file dpkg owns there`,
          fix: "remove it; OS tools such as runc or containerd go in packages/<distro>/ as .debs",
        });
        continue;
      }
      planned.push({
        source,
        entry: { path, size: (await stat(source)).size, kind, platform: platform.name },
      });
    }
  }
  return planned;
}

/**
 * Reads `fromDir` into the list of members to pack. Every problem (unknown entries, badly named
 * files, archives without image names, no version) is reported at once as a BundleError.
 */
export async function planBundle(
  fromDir: string,
  options: { kubernetesVersion?: string },
): Promise<BundlePlan> {
  const problems: BundleProblem[] = [];
  const topLevel = await readdir(fromDir).catch((error: NodeJS.ErrnoException) => {
    throw new BundleError(fromDir, [
      { member: "", problem: `cannot be read (${error.code ?? error.message})` },
    ]);
  });
  const unknown = topLevel.filter((name) => !TOP_LEVEL.has(name)).sort();
  if (unknown.length > 0) {
    problems.push({
      member: "",
      problem: `has unknown entries: ${unknown.join(", ")}`,
      fix: `move or remove them; a bundle directory holds only ${[...TOP_LEVEL].join(", ")}`,
    });
  }
  const kubernetesVersion = await resolveVersion(fromDir, options.kubernetesVersion, problems);
  const section = (name: string) => (topLevel.includes(name) ? join(fromDir, name) : undefined);
  const files: PlannedFile[] = [];
  const bin = section("bin");
  const cni = section("cni");
  const images = section("images");
  const packages = section("packages");
  const manifests = section("manifests");
  if (bin) files.push(...(await planPlatformFiles(bin, "binary", problems, fromDir)));
  if (cni) files.push(...(await planPlatformFiles(cni, "cni", problems, fromDir)));
  if (images) files.push(...(await planImages(images, problems, fromDir)));
  if (packages) files.push(...(await planPackages(packages, problems, fromDir)));
  if (manifests) {
    for (const source of await filesUnder(manifests)) {
      const path = relative(fromDir, source).split(sep).join("/");
      files.push({ source, entry: { path, size: (await stat(source)).size, kind: "manifest" } });
    }
  }
  if (problems.length > 0) throw new BundleError(fromDir, problems);
  return { kubernetesVersion, files };
}
