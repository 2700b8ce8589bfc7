// OpenSSH known_hosts files: parse, match a host, check its key, record a new one (sshd(8) "SSH_KNOWN_HOSTS
// FILE FORMAT"). Supported: plain names and addresses, `[host]:port`, comma lists, `*`/`?` wildcards,
// `!` negation, hashed `|1|salt|hmac` names, and the `@revoked` marker. `@cert-authority` lines are
// ignored: ssh2 does not accept host certificates, so a host known only through a CA counts as unknown.
import { createHash, createHmac, randomBytes } from "node:crypto";
import { appendFile, mkdir, readFile } from "node:fs/promises";
import { dirname } from "node:path";

export interface KnownHostEntry {
  file: string;
  /** 1-based line number, as `ssh-keygen -F` reports it. */
  line: number;
  marker: "revoked" | "cert-authority" | undefined;
  /** The host field as written: a pattern list, or one hashed name. */
  hosts: string;
  keyType: string;
  key: Buffer;
}

export type HostKeyCheck =
  | { status: "known"; entry: KnownHostEntry }
  | { status: "revoked"; entry: KnownHostEntry }
  /** `entries` hold keys of the same type for this host, none of them the offered one. */
  | { status: "changed"; entries: KnownHostEntry[] }
  | { status: "unknown" };

/** The name OpenSSH looks up: the bare host for port 22, `[host]:port` otherwise. */
export function knownHostsName(host: string, port: number): string {
  const lower = host.toLowerCase();
  return port === 22 ? lower : `[${lower}]:${port}`;
}

/** OpenSSH's fingerprint format, as `ssh-keygen -l` prints it. */
export function fingerprint(key: Buffer): string {
  return `SHA256:${createHash("sha256").update(key).digest("base64").replace(/=+$/, "")}`;
}

/** The algorithm name at the start of an SSH public key blob (`ssh-ed25519`, `ssh-rsa`, …). */
export function keyTypeOf(key: Buffer): string {
  if (key.length < 4) return "";
  const length = key.readUInt32BE(0);
  return key.subarray(4, 4 + length).toString("latin1");
}

export function parseKnownHosts(text: string, file: string): KnownHostEntry[] {
  const entries: KnownHostEntry[] = [];
  text.split("\n").forEach((raw, index) => {
    const fields = raw.trim().split(/\s+/);
    if (fields[0] === "" || fields[0]?.startsWith("#")) return;
    let marker: KnownHostEntry["marker"];
    if (fields[0] === "@revoked") marker = "revoked";
    else if (fields[0] === "@cert-authority") marker = "cert-authority";
    else if (fields[0]?.startsWith("@")) return; // unknown marker: OpenSSH skips the line too
    const [hosts, keyType, base64] = marker ? fields.slice(1) : fields;
    if (!hosts || !keyType || !base64) return;
    const key = Buffer.from(base64, "base64");
    // A blob whose embedded type disagrees with the type field is malformed; OpenSSH ignores it.
    if (keyTypeOf(key) !== keyType) return;
    entries.push({ file, line: index + 1, marker, hosts, keyType, key });
  });
  return entries;
}

export function hashedName(name: string, salt: Buffer = randomBytes(20)): string {
  const hmac = createHmac("sha1", salt).update(name).digest("base64");
  return `|1|${salt.toString("base64")}|${hmac}`;
}

/** OpenSSH's match_pattern: `*` any run, `?` one character; case-insensitive. */
function globMatch(pattern: string, name: string): boolean {
  const source = pattern
    .toLowerCase()
    .replace(/[.+^${}()|[\]\\]/g, "\\$&")
    .replace(/\*/g, ".*")
    .replace(/\?/g, ".");
  return new RegExp(`^${source}$`, "s").test(name);
}

/** Whether an entry's host field names `name` (a `knownHostsName` result). */
export function entryMatches(entry: KnownHostEntry, name: string): boolean {
  if (entry.hosts.startsWith("|1|")) {
    const [, , salt, hash] = entry.hosts.split("|");
    if (!salt || !hash) return false;
    return hashedName(name, Buffer.from(salt, "base64")) === entry.hosts;
  }
  let matched = false;
  for (const pattern of entry.hosts.split(",")) {
    if (pattern.startsWith("!")) {
      if (globMatch(pattern.slice(1), name)) return false;
    } else if (globMatch(pattern, name)) {
      matched = true;
    }
  }
  return matched;
}

export function checkHostKey(entries: readonly KnownHostEntry[], name: string, key: Buffer): HostKeyCheck {
  const matching = entries.filter((entry) => entryMatches(entry, name));
  const revoked = matching.find((entry) => entry.marker === "revoked" && entry.key.equals(key));
  if (revoked) return { status: "revoked", entry: revoked };
  const plain = matching.filter((entry) => entry.marker === undefined);
  const known = plain.find((entry) => entry.key.equals(key));
  if (known) return { status: "known", entry: known };
  const type = keyTypeOf(key);
  const sameType = plain.filter((entry) => entry.keyType === type);
  return sameType.length > 0 ? { status: "changed", entries: sameType } : { status: "unknown" };
}

// Host key algorithms per key type, in ssh2's preference order.
const ALGORITHMS: ReadonlyArray<readonly [string, readonly string[]]> = [
  ["ssh-ed25519", ["ssh-ed25519"]],
  ["ecdsa-sha2-nistp256", ["ecdsa-sha2-nistp256"]],
  ["ecdsa-sha2-nistp384", ["ecdsa-sha2-nistp384"]],
  ["ecdsa-sha2-nistp521", ["ecdsa-sha2-nistp521"]],
  ["ssh-rsa", ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"]],
];

/**
 * The host key algorithms to offer for `name`: only those of the key types known for it, so a host
 * known by its RSA key is not mistaken for a changed one because it would prefer ed25519. Undefined
 * when nothing usable is known (offer the defaults).
 */
export function hostKeyAlgorithms(entries: readonly KnownHostEntry[], name: string): string[] | undefined {
  const types = new Set(
    entries.filter((entry) => entry.marker === undefined && entryMatches(entry, name)).map((e) => e.keyType),
  );
  const algorithms = ALGORITHMS.filter(([type]) => types.has(type)).flatMap(([, names]) => names);
  return algorithms.length > 0 ? algorithms : undefined;
}

/** A known_hosts line for `name`, hashed when asked. */
export function knownHostsLine(name: string, key: Buffer, hashed: boolean): string {
  return `${hashed ? hashedName(name) : name} ${keyTypeOf(key)} ${key.toString("base64")}`;
}

/** The known_hosts files of a run, read once; new keys are appended to the first one. */
export class KnownHosts {
  private constructor(
    readonly files: readonly string[],
    private entries: KnownHostEntry[],
  ) {}

  static async load(files: readonly string[]): Promise<KnownHosts> {
    if (files.length === 0) throw new Error("no known_hosts file given");
    const entries: KnownHostEntry[] = [];
    for (const file of files) entries.push(...parseKnownHosts(await readIfExists(file), file));
    return new KnownHosts(files, entries);
  }

  check(name: string, key: Buffer): HostKeyCheck {
    return checkHostKey(this.entries, name, key);
  }

  algorithms(name: string): string[] | undefined {
    return hostKeyAlgorithms(this.entries, name);
  }

  /** Appends `name key` to the first file (TOFU), hashed if that file already uses hashed names. */
  async add(name: string, key: Buffer): Promise<KnownHostEntry> {
    const file = this.files[0] as string;
    const text = await readIfExists(file);
    const hashed = parseKnownHosts(text, file).some((entry) => entry.hosts.startsWith("|1|"));
    const line = knownHostsLine(name, key, hashed);
    await mkdir(dirname(file), { recursive: true, mode: 0o700 });
    // One append of one whole line, so parallel connections cannot interleave their lines.
    await appendFile(file, `${text === "" || text.endsWith("\n") ? "" : "\n"}${line}\n`, { mode: 0o600 });
    const lineNumber = (await readFile(file, "utf8")).split("\n").indexOf(line) + 1;
    const entry = parseKnownHosts(line, file)[0] as KnownHostEntry;
    const added = { ...entry, line: lineNumber };
    this.entries.push(added);
    return added;
  }
}

async function readIfExists(file: string): Promise<string> {
  try {
    return await readFile(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return "";
    throw error;
  }
}
