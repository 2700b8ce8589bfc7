// A small ustar writer and an index reader, in plain Node. Bundles are uncompressed tars so that a
// member is a byte range of the file: it can be hashed, streamed to a host or read by offset
// without unpacking anything. The writer streams every file; the reader seeks from header to header
// and never reads member data.
import { createReadStream } from "node:fs";
import { type FileHandle, open } from "node:fs/promises";
import { InterruptedError } from "../workflow/errors.js";

const BLOCK = 512;
const NAME_FIELD = 100;
const PREFIX_FIELD = 155;
/** Largest size the 11 octal digits of a classic header hold; beyond it GNU's base-256 form is used. */
const MAX_OCTAL_SIZE = 8 ** 11 - 1;

/** Not a tar, a damaged header, or a member cut off by the end of the file. */
export class TarFormatError extends Error {
  override name = "TarFormatError";
}

export interface TarEntry {
  /** Member path without a leading `./`. */
  name: string;
  /** Where the member's data starts in the file. */
  offset: number;
  size: number;
}

export interface MemberOptions {
  /** Permission bits; default 0644. */
  mode?: number;
}

/** Splits a path into ustar's name and prefix fields, or explains why it cannot be stored. */
function splitName(path: string): { name: string; prefix: string } {
  if (Buffer.byteLength(path) <= NAME_FIELD) return { name: path, prefix: "" };
  // The prefix holds the leading directories: cut at the last `/` that leaves a fitting name.
  for (let cut = path.indexOf("/"); cut !== -1; cut = path.indexOf("/", cut + 1)) {
    const prefix = path.slice(0, cut);
    const name = path.slice(cut + 1);
    if (Buffer.byteLength(prefix) <= PREFIX_FIELD && Buffer.byteLength(name) <= NAME_FIELD) {
      return { name, prefix };
    }
  }
  throw new TarFormatError(
    `cannot store ${JSON.stringify(path)} in a ustar archive: the file name must be at most ${NAME_FIELD} bytes and its directories at most ${PREFIX_FIELD}; shorten it`,
  );
}

function writeOctal(header: Buffer, offset: number, length: number, value: number): void {
  header.write(`${value.toString(8).padStart(length - 1, "0")}\0`, offset, length, "ascii");
}

function writeSize(header: Buffer, value: number): void {
  if (value <= MAX_OCTAL_SIZE) {
    writeOctal(header, 124, 12, value);
  } else {
    // GNU base-256: high bit set, then the value big-endian; GNU tar and libarchive read it.
    header.fill(0, 124, 136);
    header[124] = 0x80;
    header.writeBigUInt64BE(BigInt(value), 128);
  }
}

function header(path: string, size: number, mode: number, mtime: number): Buffer {
  const block = Buffer.alloc(BLOCK);
  const { name, prefix } = splitName(path);
  block.write(name, 0, NAME_FIELD, "utf8");
  writeOctal(block, 100, 8, mode);
  writeOctal(block, 108, 8, 0); // uid
  writeOctal(block, 116, 8, 0); // gid
  writeSize(block, size);
  writeOctal(block, 136, 12, mtime);
  block.fill(0x20, 148, 156); // the checksum is computed with its own field as spaces
  block.write("0", 156, 1, "ascii"); // a regular file: the only kind a bundle holds
  block.write("ustar\0", 257, 6, "ascii");
  block.write("00", 263, 2, "ascii");
  block.write("root", 265, 32, "ascii");
  block.write("root", 297, 32, "ascii");
  block.write(prefix, 345, PREFIX_FIELD, "utf8");
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, 8, "ascii");
  return block;
}

function padding(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

/**
 * Writes a tar to an open file, member by member, tracking where each member's data lands. Every
 * member gets the same mtime, so the same inputs give the same archive.
 */
export class TarWriter {
  private position = 0;
  readonly entries: TarEntry[] = [];

  constructor(
    private readonly file: FileHandle,
    private readonly mtime: Date,
    private readonly signal?: AbortSignal,
  ) {}

  async addBuffer(path: string, data: Buffer, options: MemberOptions = {}): Promise<void> {
    await this.addHeader(path, data.length, options);
    await this.write(data);
    await this.write(Buffer.alloc(padding(data.length)));
  }

  /** Streams `source` into the archive; it must still be `size` bytes long. */
  async addFile(path: string, source: string, size: number, options: MemberOptions = {}): Promise<void> {
    await this.addHeader(path, size, options);
    let copied = 0;
    for await (const chunk of createReadStream(source)) {
      copied += (chunk as Buffer).length;
      if (copied > size) break;
      await this.write(chunk as Buffer);
    }
    if (copied !== size)
      throw new Error(`${source} changed size while being packed (${size} → ${copied} bytes)`);
    await this.write(Buffer.alloc(padding(size)));
  }

  /** The end-of-archive marker: two zero blocks. */
  async finish(): Promise<void> {
    await this.write(Buffer.alloc(2 * BLOCK));
  }

  private async addHeader(path: string, size: number, options: MemberOptions): Promise<void> {
    await this.write(header(path, size, options.mode ?? 0o644, Math.floor(this.mtime.getTime() / 1000)));
    this.entries.push({ name: path, offset: this.position, size });
  }

  private async write(data: Buffer): Promise<void> {
    if (this.signal?.aborted) throw new InterruptedError({ cause: this.signal.reason });
    if (data.length === 0) return;
    await this.file.write(data, 0, data.length, this.position);
    this.position += data.length;
  }
}

function readString(block: Buffer, offset: number, length: number): string {
  const field = block.subarray(offset, offset + length);
  const end = field.indexOf(0);
  return field.subarray(0, end === -1 ? length : end).toString("utf8");
}

function readNumber(block: Buffer, offset: number, length: number): number {
  if ((block[offset] ?? 0) & 0x80) {
    let value = 0n;
    for (let i = offset + 1; i < offset + length; i++) value = (value << 8n) | BigInt(block[i] ?? 0);
    return Number(value);
  }
  const text = readString(block, offset, length).trim();
  if (!/^[0-7]*$/.test(text)) throw new TarFormatError(`bad number ${JSON.stringify(text)} in a tar header`);
  return text === "" ? 0 : Number.parseInt(text, 8);
}

/** Whether a block is a tar header: its checksum field holds the sum of its bytes. */
function checksumMatches(block: Buffer): boolean {
  const field = readString(block, 148, 8).trim();
  if (!/^[0-7]+$/.test(field)) return false;
  const stored = Number.parseInt(field, 8);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : (block[i] ?? 0);
  return sum === stored;
}

/** Values of a pax extended header (`<length> <key>=<value>\n` records). */
function parsePax(data: Buffer): Map<string, string> {
  const values = new Map<string, string>();
  let at = 0;
  while (at < data.length) {
    const space = data.indexOf(0x20, at);
    const length = Number.parseInt(data.subarray(at, space).toString("ascii"), 10);
    if (space === -1 || !(length > 0)) break;
    const record = data.subarray(space + 1, at + length - 1).toString("utf8");
    const equals = record.indexOf("=");
    if (equals > 0) values.set(record.slice(0, equals), record.slice(equals + 1));
    at += length;
  }
  return values;
}

/** A tar member's bytes, for small members (headers, JSON indexes). */
export async function readMember(
  file: FileHandle,
  entry: TarEntry,
  limit = 16 * 1024 * 1024,
): Promise<Buffer> {
  if (entry.size > limit)
    throw new TarFormatError(`${entry.name} is ${entry.size} bytes, more than expected`);
  const data = Buffer.alloc(entry.size);
  const { bytesRead } = await file.read(data, 0, entry.size, entry.offset);
  if (bytesRead !== entry.size) throw new TarFormatError(`${entry.name} is cut off by the end of the file`);
  return data;
}

export interface TarIndexOptions {
  /**
   * Skip hard and symbolic links instead of refusing them. For image archives only: `docker save`
   * before v25 links shared layers, and ctr resolves them. A bundle's own members are read by
   * offset, so there a link is an error.
   */
  skipLinks?: boolean;
}

/**
 * The regular-file members of a tar, in order, found by seeking over headers. Directories are
 * skipped; pax and GNU long names are understood (other tools write image archives); links (unless
 * `skipLinks`) and devices are refused, since nothing kubeforge packs needs them.
 */
export async function readTarIndex(path: string, options: TarIndexOptions = {}): Promise<TarEntry[]> {
  const file = await open(path, "r");
  try {
    const { size: fileSize } = await file.stat();
    const entries: TarEntry[] = [];
    const block = Buffer.alloc(BLOCK);
    let position = 0;
    // What a pax or GNU long-name header says about the member that follows it.
    let override: { path?: string; size?: number } = {};
    while (position + BLOCK <= fileSize) {
      await file.read(block, 0, BLOCK, position);
      if (block.every((byte) => byte === 0)) return entries; // end-of-archive marker
      if (!checksumMatches(block)) {
        throw new TarFormatError(
          position === 0 ? "not a tar archive" : `damaged tar header at byte ${position}`,
        );
      }
      const size = override.size ?? readNumber(block, 124, 12);
      const type = String.fromCharCode(block[156] ?? 0);
      const dataOffset = position + BLOCK;
      if (dataOffset + size > fileSize) {
        throw new TarFormatError(
          `truncated: a member needs ${dataOffset + size} bytes, the file has ${fileSize}`,
        );
      }
      const prefix = readString(block, 345, PREFIX_FIELD);
      const headerName = prefix
        ? `${prefix}/${readString(block, 0, NAME_FIELD)}`
        : readString(block, 0, NAME_FIELD);
      const name = (override.path ?? headerName).replace(/^\.\//, "");
      override = {};
      if (type === "x") {
        const pax = parsePax(await readMember(file, { name: "pax header", offset: dataOffset, size }));
        const paxSize = pax.get("size");
        override = { path: pax.get("path"), size: paxSize === undefined ? undefined : Number(paxSize) };
      } else if (type === "L") {
        const data = await readMember(file, { name: "long name", offset: dataOffset, size });
        override = { path: data.toString("utf8").replace(/\0+$/, "") };
      } else if (type === "0" || type === "\0" || type === "7") {
        entries.push({ name, offset: dataOffset, size });
      } else if (type !== "5" && type !== "g" && !(options.skipLinks && (type === "1" || type === "2"))) {
        throw new TarFormatError(
          `member ${JSON.stringify(name)} is of tar type ${JSON.stringify(type)}, not a file`,
        );
      }
      position = dataOffset + size + padding(size);
    }
    // Tools such as `tar -b1` end exactly after the marker; a file that stops mid-header does not.
    if (position !== fileSize) throw new TarFormatError(`truncated: the file ends inside a tar header`);
    if (position === 0) throw new TarFormatError("not a tar archive (empty file)");
    return entries;
  } finally {
    await file.close();
  }
}
