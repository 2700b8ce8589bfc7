// Secrets never reach a log line, a progress line, a JSON event or an error message: every sink
// passes text through one Redactor, which knows the secret values resolved for this run (sudo and
// SSH passwords, key passphrases) and recognises the shapes of the cluster's own secrets.

const MASK = "[REDACTED]";

const SHAPES: ReadonlyArray<readonly [RegExp, string]> = [
  // PEM private keys of any kind (RSA, EC, PKCS#8, OpenSSH).
  [
    /-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----[\s\S]*?(?:-----END \1PRIVATE KEY-----|$)/g,
    `${MASK} private key`,
  ],
  // Bootstrap tokens `abcdef.0123456789abcdef`: the id is public (kubeadm prints it), the secret is not.
  [/\b([a-z0-9]{6})\.[a-z0-9]{16}\b/g, `$1.${MASK}`],
  // kubeadm's --certificate-key (32 bytes, hex).
  [/(certificate[-_]?key["']?\s*[:= ]\s*["']?)[0-9a-f]{64}\b/gi, `$1${MASK}`],
  // `--password=x`, `PASSWORD=x` and JSON `"password": "x"`. A bare `password: x` is left alone:
  // that is also how a YAML path precedes its message.
  [
    /(\b(?:password|passphrase|passwd|secret|token)=|"(?:password|passphrase|passwd|secret|token)"\s*:\s*")(?!\[REDACTED)[^\s"',;}]+/gi,
    `$1${MASK}`,
  ],
];

export class Redactor {
  #secrets: string[] = [];

  /** Registers a secret value resolved for this run; every later `redact` hides it. */
  addSecret(value: string): void {
    if (value === "" || this.#secrets.includes(value)) return;
    // Longest first, so a secret that contains another is hidden whole.
    this.#secrets = [...this.#secrets, value].sort((a, b) => b.length - a.length);
  }

  redact(text: string): string {
    let out = text;
    for (const secret of this.#secrets) out = out.split(secret).join(MASK);
    for (const [shape, replacement] of SHAPES) out = out.replace(shape, replacement);
    return out;
  }

  /** Redacts every string inside a JSON-like value (events, error details). */
  redactDeep<T>(value: T): T {
    if (typeof value === "string") return this.redact(value) as T;
    if (Array.isArray(value)) return value.map((item) => this.redactDeep(item)) as T;
    if (value !== null && typeof value === "object") {
      return Object.fromEntries(
        Object.entries(value).map(([key, item]) => [key, this.redactDeep(item)]),
      ) as T;
    }
    return value;
  }
}
