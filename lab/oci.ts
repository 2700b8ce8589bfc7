// A single-layer OCI image layout written by hand, for images these machines cannot pull: the lab's
// busybox and the tests' stand-ins for the Kubernetes images. `ctr images import` takes the layout
// tarred up; the name comes from the index's annotations, as containerd reads it.
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, rename, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { gzipSync } from "node:zlib";

export interface OciImage {
  /** Full ref with a tag: `registry.k8s.io/pause:3.9`. */
  ref: string;
  /** The first layer, an uncompressed tar; stored gzipped. */
  layerTar: Buffer;
  /** More layers: tar files moved into the layout as they are (uncompressed), too large to hold in memory. */
  extraLayerFiles?: readonly string[];
  /** The image config's `config` (Env, Cmd, …). */
  runConfig?: Record<string, unknown>;
}

const PLATFORM = { architecture: "amd64", os: "linux" };

function sha256(data: Buffer | string): string {
  return createHash("sha256").update(data).digest("hex");
}

/** Writes the layout into `dir`; returns the entries to tar, in order (`tar -C dir -cf out …entries`). */
export async function writeOciLayout(dir: string, image: OciImage): Promise<string[]> {
  const blobs = join(dir, "blobs/sha256");
  await mkdir(blobs, { recursive: true });
  const names: string[] = [];
  const blob = async (data: Buffer | string) => {
    const digest = sha256(data);
    await writeFile(join(blobs, digest), data);
    names.push(`blobs/sha256/${digest}`);
    return { digest: `sha256:${digest}`, size: Buffer.byteLength(data) };
  };
  const layers = [
    {
      mediaType: "application/vnd.oci.image.layer.v1.tar+gzip",
      ...(await blob(gzipSync(image.layerTar, { level: 9 }))),
    },
  ];
  const diffIds = [`sha256:${sha256(image.layerTar)}`];
  for (const file of image.extraLayerFiles ?? []) {
    const hash = createHash("sha256");
    await pipeline(createReadStream(file), hash);
    const digest = hash.digest("hex");
    const { size } = await stat(file);
    await rename(file, join(blobs, digest));
    names.push(`blobs/sha256/${digest}`);
    layers.push({ mediaType: "application/vnd.oci.image.layer.v1.tar", digest: `sha256:${digest}`, size });
    diffIds.push(`sha256:${digest}`); // uncompressed: the diff id is the blob's digest
  }
  const config = await blob(
    JSON.stringify({
      ...PLATFORM,
      ...(image.runConfig && { config: image.runConfig }),
      rootfs: { type: "layers", diff_ids: diffIds },
    }),
  );
  const manifest = await blob(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: { mediaType: "application/vnd.oci.image.config.v1+json", ...config },
      layers,
    }),
  );
  await writeFile(join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  await writeFile(
    join(dir, "index.json"),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: "application/vnd.oci.image.manifest.v1+json",
          ...manifest,
          platform: PLATFORM,
          annotations: {
            "io.containerd.image.name": image.ref,
            "org.opencontainers.image.ref.name": image.ref.slice(image.ref.lastIndexOf(":") + 1),
          },
        },
      ],
    }),
  );
  return ["oci-layout", "index.json", ...names];
}
