// DER, the part X.509 certificates use: writing the few types a certificate is made of, and reading
// TLVs back. Small on purpose: certificates are built directly as bytes (no schema library to load
// and run at start-up), and what is read has already been accepted by Node's X509Certificate.

// ---------------------------------------------------------------------------------------------
// Writing

function lengthBytes(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length]);
  const bytes: number[] = [];
  for (let rest = length; rest > 0; rest = Math.floor(rest / 256)) bytes.unshift(rest & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** One TLV with a single-byte tag. */
export function tlv(tag: number, content: Buffer): Buffer {
  return Buffer.concat([Buffer.from([tag]), lengthBytes(content.length), content]);
}

export const sequence = (...items: Buffer[]): Buffer => tlv(0x30, Buffer.concat(items));

/** SET OF in DER order: the encodings sorted as octet strings (X.690 11.6, Go's asn1 does the same). */
export const setOf = (...items: Buffer[]): Buffer =>
  tlv(0x31, Buffer.concat([...items].sort(Buffer.compare)));

/** [n] EXPLICIT, constructed. */
export const explicit = (n: number, content: Buffer): Buffer => tlv(0xa0 | n, content);

export const boolean = (value: boolean): Buffer => tlv(0x01, Buffer.from([value ? 0xff : 0x00]));

export const NULL = Buffer.from([0x05, 0x00]);

/** A non-negative INTEGER from its big-endian magnitude, in the minimal encoding DER requires. */
export function unsignedInteger(magnitude: Buffer): Buffer {
  let start = 0;
  while (start < magnitude.length - 1 && magnitude[start] === 0) start++;
  const bytes = magnitude.subarray(start);
  const padded = (bytes[0] ?? 0) & 0x80 ? Buffer.concat([Buffer.from([0]), bytes]) : bytes;
  return tlv(0x02, padded.length ? padded : Buffer.from([0]));
}

export const smallInteger = (value: number): Buffer => unsignedInteger(Buffer.from([value]));

const oidCache = new Map<string, Buffer>();

export function objectIdentifier(dotted: string): Buffer {
  const cached = oidCache.get(dotted);
  if (cached) return cached;
  const encoded = encodeObjectIdentifier(dotted);
  oidCache.set(dotted, encoded);
  return encoded;
}

function encodeObjectIdentifier(dotted: string): Buffer {
  const arcs = dotted.split(".").map(Number);
  const [first = 0, second = 0, ...rest] = arcs;
  const bytes: number[] = [];
  for (const arc of [first * 40 + second, ...rest]) {
    const chunk: number[] = [arc & 0x7f];
    for (let value = Math.floor(arc / 128); value > 0; value = Math.floor(value / 128)) {
      chunk.unshift((value & 0x7f) | 0x80);
    }
    bytes.push(...chunk);
  }
  return tlv(0x06, Buffer.from(bytes));
}

export const octetString = (content: Buffer): Buffer => tlv(0x04, content);

export const bitString = (content: Buffer, unusedBits = 0): Buffer =>
  tlv(0x03, Buffer.concat([Buffer.from([unusedBits]), content]));

/** PrintableString's alphabet (X.680 41.4), as Go's asn1 and @peculiar/x509 test it. */
export const isPrintableString = (text: string): boolean => /^[A-Za-z0-9 '()+,\-./:=?]*$/.test(text);

/** A directory string as Go writes one: PrintableString when it can be, else UTF8String. */
export const directoryString = (text: string): Buffer =>
  tlv(isPrintableString(text) ? 0x13 : 0x0c, Buffer.from(text, "utf8"));

export const ia5String = (text: string): Buffer => tlv(0x16, Buffer.from(text, "ascii"));

/** RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050; whole seconds, Z. */
export function time(date: Date): Buffer {
  const iso = date.toISOString(); // YYYY-MM-DDTHH:MM:SS.sssZ
  const digits = `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
  const year = date.getUTCFullYear();
  return year >= 1950 && year < 2050
    ? tlv(0x17, Buffer.from(digits.slice(2), "ascii"))
    : tlv(0x18, Buffer.from(digits, "ascii"));
}

// ---------------------------------------------------------------------------------------------
// Reading

export interface Element {
  tag: number;
  /** The whole TLV. */
  raw: Buffer;
  /** The value. */
  content: Buffer;
}

/** The TLV at `offset`; throws on a truncated or indefinite-length encoding. */
export function readElement(buffer: Buffer, offset = 0): Element {
  const tag = buffer[offset];
  let length = buffer[offset + 1];
  if (tag === undefined || length === undefined) throw new Error("DER: truncated");
  if ((tag & 0x1f) === 0x1f) throw new Error("DER: multi-byte tags are not supported");
  let header = 2;
  if (length & 0x80) {
    const count = length & 0x7f;
    if (count === 0 || count > 4) throw new Error("DER: unsupported length");
    length = 0;
    for (let i = 0; i < count; i++) {
      const byte = buffer[offset + 2 + i];
      if (byte === undefined) throw new Error("DER: truncated");
      length = length * 256 + byte;
    }
    header += count;
  }
  const end = offset + header + length;
  if (end > buffer.length) throw new Error("DER: truncated");
  return { tag, raw: buffer.subarray(offset, end), content: buffer.subarray(offset + header, end) };
}

/** The elements inside a constructed element's value. */
export function childrenOf(element: Element): Element[] {
  const children: Element[] = [];
  for (let offset = 0; offset < element.content.length; ) {
    const child = readElement(element.content, offset);
    children.push(child);
    offset += child.raw.length;
  }
  return children;
}

export function readObjectIdentifier(element: Element): string {
  if (element.tag !== 0x06) throw new Error("DER: not an OBJECT IDENTIFIER");
  const arcs: number[] = [];
  let value = 0;
  for (const byte of element.content) {
    value = value * 128 + (byte & 0x7f);
    if (byte & 0x80) continue;
    if (arcs.length === 0)
      arcs.push(value < 80 ? Math.floor(value / 40) : 2, value < 80 ? value % 40 : value - 80);
    else arcs.push(value);
    value = 0;
  }
  return arcs.join(".");
}

/** UTCTime or GeneralizedTime (whole seconds, Z, as RFC 5280 requires). */
export function readTime(element: Element): Date {
  const text = element.content.toString("ascii");
  const match =
    element.tag === 0x17
      ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text)
      : /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(?:\.\d+)?Z$/.exec(text);
  if (!match) throw new Error(`DER: unsupported time ${JSON.stringify(text)}`);
  const [, y = "", mo = "", d = "", h = "", mi = "", s = ""] = match;
  const year = element.tag === 0x17 ? (Number(y) < 50 ? 2000 : 1900) + Number(y) : Number(y);
  return new Date(Date.UTC(year, Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s)));
}

/** The text of a directory string (PrintableString, UTF8String, IA5String, T61String, BMPString). */
export function readString(element: Element): string {
  switch (element.tag) {
    case 0x1e: // BMPString: UCS-2, big-endian
      return Buffer.from(element.content).swap16().toString("utf16le");
    case 0x14: // T61String: Latin-1 in practice
      return element.content.toString("latin1");
    default:
      return element.content.toString("utf8");
  }
}
