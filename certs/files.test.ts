// Atomic writes, one at a time and as a batch that syncs each directory once.
import { mkdtemp, readdir, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { AtomicWriter, CERT_MODE, KEY_MODE } from "./files.js";

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "kubeforge-files-"));
});
afterEach(() => rm(root, { recursive: true, force: true }));

const mode = async (path: string) => (await stat(path)).mode & 0o777;

describe("AtomicWriter", () => {
  it("creates missing directories 0700 once and writes every file with its exact mode", async () => {
    const writer = new AtomicWriter();
    const files = ["a/pki/ca.key", "a/pki/ca.crt", "a/pki/etcd/ca.key", "a/nodes/cp1/pki/apiserver.crt"];
    await Promise.all(
      files.map((f) => writer.write(join(root, f), `${f}\n`, f.endsWith(".key") ? KEY_MODE : CERT_MODE)),
    );
    await writer.flush();
    for (const f of files) {
      expect(await readFile(join(root, f), "utf8")).toBe(`${f}\n`);
      expect([f, await mode(join(root, f))]).toEqual([f, f.endsWith(".key") ? 0o600 : 0o644]);
    }
    for (const d of ["a", "a/pki", "a/pki/etcd", "a/nodes", "a/nodes/cp1", "a/nodes/cp1/pki"]) {
      expect([d, await mode(join(root, d))]).toEqual([d, 0o700]);
    }
    // No temp file is left behind.
    expect((await readdir(join(root, "a/pki"))).sort()).toEqual(["ca.crt", "ca.key", "etcd"]);
  });

  it("replaces an existing file whole, and leaves no temp file when a write fails", async () => {
    const writer = new AtomicWriter();
    const file = join(root, "x/ca.crt");
    await writer.write(file, "old\n", CERT_MODE);
    await writer.write(file, "new\n", CERT_MODE);
    expect(await readFile(file, "utf8")).toBe("new\n");
    // A directory where the file should be: the rename fails, the temp file is removed.
    await writer.write(join(root, "x/dir/keep"), "", CERT_MODE);
    await expect(writer.write(join(root, "x/dir"), "nope", CERT_MODE)).rejects.toThrow();
    await writer.flush();
    expect((await readdir(join(root, "x"))).sort()).toEqual(["ca.crt", "dir"]);
  });
});
