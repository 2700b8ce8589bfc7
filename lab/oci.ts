// A single-layer OCI image layout written by hand, for images these machines cannot pull: the lab's
// busybox and the tests' stand-ins for the Kubernetes images. `ctr images import` takes the layout
// tarred up; the name comes from the index's annotations, as containerd reads it.
import { createHash } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { gzipSync } from "node:zlib";

export interface OciImage {
  /** Full ref with a tag: `registry.k8s.io/pause:3.9`. */
  ref: string;
  /** The one layer, an uncompressed tar. */
  layerTar: Buffer;
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
  const layer = await blob(gzipSync(image.layerTar, { level: 9 }));
  const config = await blob(
    JSON.stringify({
      ...PLATFORM,
      ...(image.runConfig && { config: image.runConfig }),
      rootfs: { type: "layers", diff_ids: [`sha256:${sha256(image.layerTar)}`] },
    }),
  );
  const manifest = await blob(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: { mediaType: "application/vnd.oci.image.config.v1+json", ...config },
      layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", ...layer }],
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
