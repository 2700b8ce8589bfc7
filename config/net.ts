// IP and CIDR arithmetic for validation: parse, contain, overlap. IPv4 and IPv6 alike, as BigInt.
import { isIP } from "node:net";

export interface Cidr {
  family: 4 | 6;
  /** First address of the network. */
  network: bigint;
  prefix: number;
  text: string;
}

export function parseIp(text: string): { family: 4 | 6; value: bigint } | undefined {
  const family = isIP(text);
  if (family === 4) {
    const value = text.split(".").reduce((sum, octet) => (sum << 8n) + BigInt(Number(octet)), 0n);
    return { family, value };
  }
  if (family === 6) return { family, value: ipv6ToBigInt(text) };
  return undefined;
}

function ipv6ToBigInt(text: string): bigint {
  let address = text.split("%")[0] ?? text;
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(address);
  if (dotted?.[1]) {
    const v4 = parseIp(dotted[1])?.value ?? 0n;
    address = `${address.slice(0, -dotted[1].length)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const [head = "", tail] = address.split("::");
  const headGroups = head ? head.split(":") : [];
  const tailGroups = tail ? tail.split(":") : [];
  const zeros = tail === undefined ? [] : Array(8 - headGroups.length - tailGroups.length).fill("0");
  return [...headGroups, ...zeros, ...tailGroups].reduce(
    (sum, group) => (sum << 16n) + BigInt(`0x${group}`),
    0n,
  );
}

function bits(family: 4 | 6): number {
  return family === 4 ? 32 : 128;
}

export function parseCidr(text: string): Cidr | undefined {
  const [addressText, prefixText, ...rest] = text.split("/");
  if (rest.length > 0 || !addressText || !prefixText || !/^\d{1,3}$/.test(prefixText)) return undefined;
  const address = parseIp(addressText);
  const prefix = Number(prefixText);
  if (!address || prefix > bits(address.family)) return undefined;
  const hostBits = BigInt(bits(address.family) - prefix);
  const network = (address.value >> hostBits) << hostBits;
  return { family: address.family, network, prefix, text };
}

/** `a` or `a,b` with one CIDR per IP family (kubeadm's dual-stack form). */
export function parseCidrList(text: string): Cidr[] | undefined {
  const parts = text.split(",").map((part) => part.trim());
  const cidrs = parts.map(parseCidr);
  if (cidrs.some((cidr) => cidr === undefined) || cidrs.length > 2) return undefined;
  const parsed = cidrs as Cidr[];
  if (parsed.length === 2 && parsed[0]?.family === parsed[1]?.family) return undefined;
  return parsed;
}

export function cidrSize(cidr: Cidr): bigint {
  return 1n << BigInt(bits(cidr.family) - cidr.prefix);
}

export function cidrContains(cidr: Cidr, ip: { family: 4 | 6; value: bigint }): boolean {
  return cidr.family === ip.family && ip.value >= cidr.network && ip.value < cidr.network + cidrSize(cidr);
}

export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  if (a.family !== b.family) return false;
  return a.network < b.network + cidrSize(b) && b.network < a.network + cidrSize(a);
}

const DNS_NAME =
  /^(?=.{1,253}$)([a-zA-Z0-9]([-a-zA-Z0-9]{0,61}[a-zA-Z0-9])?)(\.[a-zA-Z0-9]([-a-zA-Z0-9]{0,61}[a-zA-Z0-9])?)*\.?$/;

export function isDnsName(text: string): boolean {
  // An all-numeric dotted name would be a mistyped IP, not a hostname.
  return DNS_NAME.test(text) && !/^[\d.]+$/.test(text);
}
