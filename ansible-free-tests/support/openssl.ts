// Certificates made with the openssl CLI, for what kubeforge must refuse: a CA and client
// certificates that are not the cluster's (etcd and the API server stand-in must reject them).
import { chmod, mkdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { $ } from "zx";
import type { ClusterFile } from "../../config/schema.js";

type Algorithm = ClusterFile["spec"]["kubernetes"]["encryptionAlgorithm"];

const run = $({ quiet: true });

function algorithmArgs(algorithm: Algorithm): string[] {
  if (algorithm === "ECDSA-P256") return ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
  return ["-newkey", `rsa:${algorithm.slice("RSA-".length)}`];
}

function subject(cn: string, o: string[] = []): string {
  const escaped = (value: string) => value.replace(/[\\/,+=]/g, (c) => `\\${c}`);
  return [...o.map((org) => `/O=${escaped(org)}`), `/CN=${escaped(cn)}`].join("");
}

function extensionsConfig(spec: {
  isCa?: boolean;
  usages?: string[];
  dns?: string[];
  ips?: string[];
}): string {
  const sans = [...(spec.dns ?? []).map((d) => `DNS:${d}`), ...(spec.ips ?? []).map((ip) => `IP:${ip}`)];
  return [
    "[req]",
    "distinguished_name = dn",
    "[dn]",
    "[ext]",
    spec.isCa ? "basicConstraints = critical,CA:TRUE" : "basicConstraints = critical,CA:FALSE",
    spec.isCa
      ? "keyUsage = critical,digitalSignature,keyEncipherment,keyCertSign"
      : "keyUsage = critical,digitalSignature,keyEncipherment",
    ...(spec.usages?.length ? [`extendedKeyUsage = ${spec.usages.join(",")}`] : []),
    ...(sans.length ? [`subjectAltName = ${sans.join(",")}`] : []),
    "",
  ].join("\n");
}

/**
 * One certificate and its new key with one `openssl req`: self-signed for a CA, else signed by
 * `ca` (`<ca>.crt`/`<ca>.key`). Keys 0600, certificates 0644.
 */
export async function opensslCert(options: {
  cert: string;
  key: string;
  ca?: { cert: string; key: string };
  cn: string;
  o?: string[];
  isCa?: boolean;
  usages?: Array<"serverAuth" | "clientAuth">;
  dns?: string[];
  ips?: string[];
  days: number;
  algorithm?: Algorithm;
  scratch: string;
}): Promise<void> {
  await mkdir(dirname(options.cert), { recursive: true, mode: 0o700 });
  await mkdir(dirname(options.key), { recursive: true, mode: 0o700 });
  const config = join(options.scratch, `${Math.random().toString(36).slice(2)}.cnf`);
  await writeFile(config, extensionsConfig(options));
  const signer = options.ca ? ["-CA", options.ca.cert, "-CAkey", options.ca.key] : [];
  await run`openssl req -x509 -new ${algorithmArgs(options.algorithm ?? "RSA-2048")} -noenc -keyout ${options.key} -out ${options.cert} -subj ${subject(options.cn, options.o)} ${signer} -days ${options.days} -config ${config} -extensions ext`;
  await chmod(options.key, 0o600);
  await chmod(options.cert, 0o644);
}
