import { execFileSync } from "node:child_process";
import { linkSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { open } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { testDir } from "../cli/testing.js";
import { readMember, readTarIndex, TarFormatError, TarWriter } from "./tar.js";

const MTIME = new Date("2025-01-02T03:04:05Z");

async function writeTar(path: string, fill: (tar: TarWriter) => Promise<void>): Promise<TarWriter> {
  const handle = await open(path, "w");
  try {
    const tar = new TarWriter(handle, MTIME);
    await fill(tar);
    await tar.finish();
    return tar;
  } finally {
    await handle.close();
  }
}

describe("TarWriter", () => {
  it("writes archives GNU tar lists and extracts byte for byte, with modes, sizes and long names", async () => {
    const dir = testDir();
    const source = join(dir, "big.bin");
    const big = Buffer.alloc(70_000, 7);
    big.write("end", big.length - 3);
    writeFileSync(source, big);
    const longName = `${"d".repeat(60)}/${"e".repeat(60)}/${"f".repeat(90)}.txt`;
    const archive = join(dir, "out.tar");
    await writeTar(archive, async (tar) => {
      await tar.addBuffer("manifest.json", Buffer.from("{}\n"));
      await tar.addFile("bin/linux-amd64/kubelet", source, big.length, { mode: 0o755 });
      await tar.addBuffer(longName, Buffer.from("long\n"));
      await tar.addBuffer("empty", Buffer.alloc(0));
    });

    const listing = execFileSync("tar", ["-tvf", archive, "--utc"], { encoding: "utf8" }).trim().split("\n");
    expect(listing).toHaveLength(4);
    expect(listing[0]).toMatch(/^-rw-r--r-- root\/root +3 2025-01-02 03:04 manifest\.json$/);
    expect(listing[1]).toMatch(/^-rwxr-xr-x root\/root +70000 2025-01-02 03:04 bin\/linux-amd64\/kubelet$/);
    expect(listing[2]).toContain(longName);
    expect(listing[3]).toMatch(/ 0 .* empty$/);

    const out = join(dir, "x");
    mkdirSync(out);
    execFileSync("tar", ["-xf", archive, "-C", out]);
    expect(readFileSync(join(out, "bin/linux-amd64/kubelet")).equals(big)).toBe(true);
    expect(readFileSync(join(out, longName), "utf8")).toBe("long\n");
  });

  it("records where each member's data is, which is what the reader finds", async () => {
    const dir = testDir();
    const archive = join(dir, "out.tar");
    const tar = await writeTar(archive, async (t) => {
      await t.addBuffer("a", Buffer.from("alpha"));
      await t.addBuffer("b/c", Buffer.from("x".repeat(513)));
    });
    expect(tar.entries).toEqual([
      { name: "a", offset: 512, size: 5 },
      { name: "b/c", offset: 1536, size: 513 },
    ]);
    expect(await readTarIndex(archive)).toEqual(tar.entries);
  });

  it("refuses a name that ustar cannot hold, saying how long it may be", async () => {
    const dir = testDir();
    await expect(
      writeTar(join(dir, "out.tar"), (tar) => tar.addBuffer("x".repeat(101), Buffer.from(""))),
    ).rejects.toThrow(/at most 100 bytes .* shorten it/);
  });

  it("stops with an interrupt when the signal is aborted, between writes", async () => {
    const dir = testDir();
    const handle = await open(join(dir, "out.tar"), "w");
    const controller = new AbortController();
    const tar = new TarWriter(handle, MTIME, controller.signal);
    await tar.addBuffer("a", Buffer.from("a"));
    controller.abort();
    await expect(tar.addBuffer("b", Buffer.from("b"))).rejects.toThrow("interrupted");
    await handle.close();
  });
});

describe("readTarIndex", () => {
  it("reads GNU tar's own archives: ./ prefixes, directories, GNU long names", async () => {
    const dir = testDir();
    const tree = join(dir, "tree");
    const deep = `${"n".repeat(120)}.json`;
    mkdirSync(join(tree, "blobs/sha256"), { recursive: true });
    writeFileSync(join(tree, "index.json"), '{"schemaVersion":2}');
    writeFileSync(join(tree, "blobs/sha256", deep), "deep");
    const archive = join(dir, "gnu.tar");
    execFileSync("tar", ["--format=gnu", "-C", tree, "-cf", archive, "."]);

    const entries = await readTarIndex(archive);
    expect(entries.map((e) => e.name).sort()).toEqual([`blobs/sha256/${deep}`, "index.json"]);
    const handle = await open(archive, "r");
    const index = entries.find((e) => e.name === "index.json");
    expect(index && (await readMember(handle, index)).toString()).toBe('{"schemaVersion":2}');
    await handle.close();
  });

  it("reads pax long names (GNU tar --format=posix)", async () => {
    const dir = testDir();
    const long = `${"p".repeat(150)}.txt`;
    writeFileSync(join(dir, long), "pax");
    const archive = join(dir, "pax.tar");
    execFileSync("tar", ["--format=posix", "-C", dir, "-cf", archive, long]);
    expect((await readTarIndex(archive)).map((e) => [e.name, e.size])).toEqual([[long, 3]]);
  });

  it("refuses links, or skips them with skipLinks (docker save before v25 links shared layers)", async () => {
    const dir = testDir();
    const tree = join(dir, "tree");
    mkdirSync(join(tree, "a"), { recursive: true });
    mkdirSync(join(tree, "b"));
    mkdirSync(join(tree, "c"));
    writeFileSync(join(tree, "a/layer.tar"), "layer");
    symlinkSync("../a/layer.tar", join(tree, "b/layer.tar"));
    linkSync(join(tree, "a/layer.tar"), join(tree, "c/layer.tar"));
    const archive = join(dir, "links.tar");
    execFileSync("tar", ["-C", tree, "-cf", archive, "a", "b", "c"]);

    await expect(readTarIndex(archive)).rejects.toThrow(
      new TarFormatError('member "b/layer.tar" is of tar type "2", not a file'),
    );
    const entries = await readTarIndex(archive, { skipLinks: true });
    expect(entries.map((e) => [e.name, e.size])).toEqual([["a/layer.tar", 5]]);
  });

  it("tells a file that is not a tar, and one cut short, from a good one", async () => {
    const dir = testDir();
    const notTar = join(dir, "not.tar");
    writeFileSync(notTar, Buffer.alloc(2048, 65));
    await expect(readTarIndex(notTar)).rejects.toThrow(new TarFormatError("not a tar archive"));

    const archive = join(dir, "good.tar");
    await writeTar(archive, (tar) => tar.addBuffer("data", Buffer.alloc(4000, 1)));
    const whole = readFileSync(archive);
    writeFileSync(archive, whole.subarray(0, 2000));
    await expect(readTarIndex(archive)).rejects.toThrow(
      /truncated: a member needs 4512 bytes, the file has 2000/,
    );
    writeFileSync(archive, whole.subarray(0, 300));
    await expect(readTarIndex(archive)).rejects.toThrow(/truncated: the file ends inside a tar header/);
  });
});
