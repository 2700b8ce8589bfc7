// Checks for the schema's custom string formats (config/schema.ts `Format`), registered once.
import { FormatRegistry } from "@sinclair/typebox";
import { isDnsName, parseCidrList, parseIp } from "./net.js";
import { Format } from "./schema.js";

const GO_DURATION = /^(\d+(\.\d+)?(h|m|s|ms|us|µs|ns))+$/;

function isEndpoint(text: string): boolean {
  const bracketed = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(text);
  if (bracketed) return parseIp(bracketed[1] ?? "")?.family === 6 && isPort(bracketed[2]);
  const [host = "", port, ...rest] = text.split(":");
  if (rest.length > 0) return parseIp(text)?.family === 6;
  return (parseIp(host) !== undefined || isDnsName(host)) && isPort(port);
}

function isPort(text: string | undefined): boolean {
  return text === undefined || (/^\d{1,5}$/.test(text) && Number(text) >= 1 && Number(text) <= 65535);
}

/** What each format accepts, and how a rejected value is described in an error. */
export const FORMATS: Record<string, { check: (text: string) => boolean; expected: string }> = {
  [Format.host]: {
    check: (t) => parseIp(t) !== undefined || isDnsName(t),
    expected: "an IP address or hostname",
  },
  [Format.ip]: { check: (t) => parseIp(t) !== undefined, expected: "an IP address" },
  [Format.endpoint]: { check: isEndpoint, expected: "a host or host:port" },
  [Format.san]: {
    check: (t) => parseIp(t) !== undefined || isDnsName(t.replace(/^\*\./, "")),
    expected: "an IP address or DNS name",
  },
  [Format.cidrs]: {
    check: (t) => parseCidrList(t) !== undefined,
    expected: "a CIDR such as 198.19.0.0/16 (or an IPv4 and an IPv6 CIDR separated by a comma)",
  },
  [Format.duration]: { check: (t) => GO_DURATION.test(t), expected: "a duration such as 8760h or 90m" },
};

for (const [name, { check }] of Object.entries(FORMATS)) FormatRegistry.Set(name, check);
