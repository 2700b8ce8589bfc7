import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { writeOciLayout } from "./oci.js";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "kf-oci-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const sha = (data: Buffer) => createHash("sha256").update(data).digest("hex");

describe("hand-made OCI layouts", () => {
  it("addresses every blob by its digest, gzips the first layer and moves extra layers in uncompressed", async () => {
    const first = Buffer.from("first layer tar");
    const extra = join(dir, "extra.tar");
    writeFileSync(extra, "a large uncompressed layer tar");
    const layout = join(dir, "image");
    const entries = await writeOciLayout(layout, {
      ref: "registry.k8s.io/pause:3.9",
      layerTar: first,
      extraLayerFiles: [extra],
    });
    expect(entries.slice(0, 2)).toEqual(["oci-layout", "index.json"]);
    for (const entry of entries.slice(2))
      expect(`blobs/sha256/${sha(readFileSync(join(layout, entry)))}`).toBe(entry);
    const blob = (digest: string) =>
      readFileSync(join(layout, "blobs/sha256", digest.replace("sha256:", "")));
    const index = JSON.parse(readFileSync(join(layout, "index.json"), "utf8"));
    expect(index.manifests[0].annotations).toEqual({
      "io.containerd.image.name": "registry.k8s.io/pause:3.9",
      "org.opencontainers.image.ref.name": "3.9",
    });
    const manifest = JSON.parse(blob(index.manifests[0].digest).toString());
    const config = JSON.parse(blob(manifest.config.digest).toString());
    const [gzipped, plain] = manifest.layers;
    expect(gunzipSync(blob(gzipped.digest)).equals(first)).toBe(true);
    expect(plain.mediaType).toBe("application/vnd.oci.image.layer.v1.tar");
    expect(plain.size).toBe(statSync(join(layout, "blobs/sha256", plain.digest.replace("sha256:", ""))).size);
    expect(config.rootfs.diff_ids).toEqual([`sha256:${sha(first)}`, plain.digest]);
  });
});
