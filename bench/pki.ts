// The whole local PKI into an empty store: kubeforge against cfssl (Debian's golang-cfssl) making the
// same set, RSA-2048 and ECDSA-P256, median and spread of N interleaved runs each.
// Goals: kubeforge ≤ 0.6× cfssl at RSA-2048, ≤ 0.5× at ECDSA-P256.
//
//   npm run build && node dist/bench/pki.js [--rsa-runs 20] [--ecdsa-runs 10] [--kubeforge auto|cli|lib]
//   (needs `apt-get install -y golang-cfssl openssl`)
//
// The set, for a cluster file with 3 control planes (v1.30: admin.conf and super-admin.conf), is 24
// distinct key pairs written as 36 keys: 3 CAs (ca, front-proxy-ca, etcd/ca), sa.key/sa.pub, per node
// apiserver, etcd/server, etcd/peer and kubelet.conf's client cert, once per cluster (copied to each
// node) apiserver-kubelet-client, front-proxy-client, apiserver-etcd-client, etcd/healthcheck-client
// and the controller-manager's and scheduler's client certs, plus admin and super-admin; 11 kubeconfig
// files in all. Both sides make the same set: cfssl also signs a shared identity once and copies it.
//
// kubeforge: one fresh process per run, either the built CLI (`kubeforge certs generate -f FILE`) or,
// before that command exists, `node -e` importing dist/ and calling ensurePki(cluster, clusterDir).
// `auto` takes the CLI when `kubeforge certs generate --help` works. Start-up counts in both.
//
// cfssl: one bash script per run (umask 077, `set -e`) doing what a user of cfssl does, one process
// pair per certificate, sequentially:
//   - `cfssl gencert -initca CSR.json | cfssljson -bare pki/ca` for each of the 3 CAs;
//   - `cfssl genkey sa.json | cfssljson -bare pki/sa` then `openssl pkey -pubout` for sa.pub;
//   - `cfssl gencert -ca CA.pem -ca-key CA-key.pem -config config.json -profile server|client|peer
//     CSR.json | cfssljson -bare OUT` for each of the 20 distinct leaves and kubeconfig client certs,
//     with CSR JSONs carrying kubeadm's CN, O and SANs per node (made once per algorithm, not timed),
//     and `cp` of the shared ones to the other nodes;
//   - each kubeconfig written by a here-document with `$(base64 -w0 …)` of the CA, cert and key.
// The time to the last certificate (before the kubeconfig files) is taken inside the script with
// bash's $EPOCHREALTIME and shown as its own row; the goal is against the whole script.
//
// Every run is checked: 24 distinct private keys of the asked algorithm (files and kubeconfigs'
// client keys) and 11 kubeconfig files on each side.
import { spawn } from "node:child_process";
import { createPrivateKey } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

type Algorithm = "RSA-2048" | "ECDSA-P256";
type KubeforgeMode = "cli" | "lib";

const { values } = parseArgs({
  options: {
    "rsa-runs": { type: "string", default: "20" },
    "ecdsa-runs": { type: "string", default: "10" },
    kubeforge: { type: "string", default: "auto" },
  },
});
const RUNS: Record<Algorithm, number> = {
  "RSA-2048": Number(values["rsa-runs"]),
  "ECDSA-P256": Number(values["ecdsa-runs"]),
};
const GOALS: Record<Algorithm, number> = { "RSA-2048": 0.6, "ECDSA-P256": 0.5 };
const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const BIN = join(ROOT, "bin", "kubeforge.js");
const HOSTS = [
  { name: "cp1", address: "198.18.0.11" },
  { name: "cp2", address: "198.18.0.12" },
  { name: "cp3", address: "198.18.0.13" },
];
const CLUSTER = "bench";
const KEY_PAIRS = 24;
const KUBECONFIGS = 11;

// ---------------------------------------------------------------------------------------------
// Processes and measurement

interface Sample {
  wallMs: number;
  /** user + sys CPU of the run's whole process tree (the child and everything it waited for). */
  cpuMs: number;
  stdout: string;
}

/**
 * user + sys of this process's waited-for children, from /proc/self/stat (cutime + cstime, in
 * USER_HZ = 100 ticks): the difference around one run is that run's process tree alone, whatever
 * else the machine is doing.
 */
function childrenCpuMs(): number {
  const stat = readFileSync("/proc/self/stat", "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" "); // fields[0] is field 3, state
  return (Number(fields[13]) + Number(fields[14])) * 10;
}

function timed(command: string, args: string[], env: Record<string, string> = {}): Promise<Sample> {
  return new Promise((resolve, reject) => {
    const cpu0 = childrenCpuMs();
    const started = process.hrtime.bigint();
    const child = spawn(command, args, {
      stdio: ["ignore", "pipe", "pipe"],
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: tmpdir(), ...env },
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.once("error", reject);
    child.once("close", (code) => {
      const wallMs = Number(process.hrtime.bigint() - started) / 1e6;
      const cpuMs = childrenCpuMs() - cpu0;
      if (code !== 0) reject(new Error(`${command} ${args.join(" ")} exited ${code}:\n${stdout}${stderr}`));
      else resolve({ wallMs, cpuMs, stdout });
    });
  });
}

const quantile = (sorted: number[], q: number) => {
  if (sorted.length === 0) return Number.NaN;
  const at = (sorted.length - 1) * q;
  const low = Math.floor(at);
  const high = Math.ceil(at);
  return (sorted[low] ?? 0) + ((sorted[high] ?? 0) - (sorted[low] ?? 0)) * (at - low);
};

function stats(values: number[]) {
  const sorted = [...values].sort((a, b) => a - b);
  return {
    median: quantile(sorted, 0.5),
    p25: quantile(sorted, 0.25),
    p75: quantile(sorted, 0.75),
    min: sorted[0] ?? Number.NaN,
    max: sorted.at(-1) ?? Number.NaN,
  };
}

const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

// ---------------------------------------------------------------------------------------------
// The cluster file and what kubeforge is timed with

function clusterYaml(algorithm: Algorithm): string {
  return [
    "apiVersion: kubeforge.dev/v1alpha1",
    "kind: Cluster",
    `metadata: {name: ${CLUSTER}}`,
    "spec:",
    "  ssh: {user: root, knownHostsPath: ./known_hosts}",
    `  kubernetes: {version: v1.30.4, encryptionAlgorithm: ${algorithm}}`,
    "  hosts:",
    ...HOSTS.map((h) => `    - {name: ${h.name}, address: ${h.address}, role: control-plane}`),
    "",
  ].join("\n");
}

async function cliHasCertsGenerate(): Promise<boolean> {
  // An unknown command with --help prints the program's help and exits 0: look for the command's own.
  try {
    const help = await timed(process.execPath, [BIN, "certs", "generate", "--help"]);
    return help.stdout.includes("kubeforge certs generate");
  } catch {
    return false;
  }
}

/** dist/certs/pki.js as agreed; dist/certs/store.js is where ensurePki lives while certs/ is written. */
async function ensurePkiModule(): Promise<string | undefined> {
  for (const candidate of ["dist/certs/pki.js", "dist/certs/store.js"]) {
    const path = join(ROOT, candidate);
    if (!existsSync(path)) continue;
    const module = (await import(pathToFileURL(path).href)) as { ensurePki?: unknown };
    if (typeof module.ensurePki === "function") return path;
  }
  return undefined;
}

const LIB_SCRIPT = `
import { homedir } from "node:os";
import { join } from "node:path";
const [file, stateDir, loadModule, pkiModule] = process.argv.slice(1);
const { loadClusterFile } = await import(loadModule);
const { ensurePki } = await import(pkiModule);
if (process.env.KF_BENCH_IMPORT_ONLY) process.exit(0);
const { cluster } = await loadClusterFile(file, { env: process.env, homeDir: homedir(), cwd: process.cwd() });
const result = await ensurePki(cluster, join(stateDir, cluster.metadata.name));
process.stdout.write(JSON.stringify({ created: result.created.length, reused: result.reused.length }));
`;

function kubeforgeRun(
  mode: KubeforgeMode,
  file: string,
  stateDir: string,
  pkiModule: string | undefined,
  startupOnly = false,
) {
  if (mode === "cli" && startupOnly) return timed(process.execPath, [BIN, "certs", "generate", "--help"]);
  if (mode === "cli")
    return timed(process.execPath, [BIN, "--state-dir", stateDir, "certs", "generate", "-f", file]);
  const load = pathToFileURL(join(ROOT, "dist/config/load.js")).href;
  const pki = pathToFileURL(pkiModule ?? "").href;
  return timed(
    process.execPath,
    ["--input-type=module", "-e", LIB_SCRIPT, file, stateDir, load, pki],
    startupOnly ? { KF_BENCH_IMPORT_ONLY: "1" } : {},
  );
}

// ---------------------------------------------------------------------------------------------
// cfssl: CSR JSONs with kubeadm's identities, and the script

interface CfsslCert {
  out: string;
  csr: string;
  ca?: string;
  profile?: "server" | "client" | "peer";
}

interface CfsslKubeconfig {
  cert: string;
  path: string;
  user: string;
  server: string;
}

async function cfsslInputs(dir: string, algorithm: Algorithm): Promise<string> {
  const key = algorithm === "ECDSA-P256" ? { algo: "ecdsa", size: 256 } : { algo: "rsa", size: 2048 };
  const csrs = new Map<string, object>();
  const csr = (name: string, cn: string, o: string[] = [], hosts: string[] = [], ca = false) => {
    csrs.set(name, {
      CN: cn,
      ...(hosts.length ? { hosts } : {}),
      key,
      ...(o.length ? { names: o.map((org) => ({ O: org })) } : {}),
      ...(ca ? { ca: { expiry: "87600h" } } : {}),
    });
    return join(dir, `${name}.json`);
  };
  const config = {
    signing: {
      default: { expiry: "8760h" },
      profiles: {
        server: { usages: ["signing", "key encipherment", "server auth"], expiry: "8760h" },
        client: { usages: ["signing", "key encipherment", "client auth"], expiry: "8760h" },
        peer: { usages: ["signing", "key encipherment", "server auth", "client auth"], expiry: "8760h" },
      },
    },
  };
  const cas: CfsslCert[] = [
    { out: "pki/ca", csr: csr("ca", "kubernetes", [], ["kubernetes"], true) },
    { out: "pki/front-proxy-ca", csr: csr("front-proxy-ca", "front-proxy-ca", [], ["front-proxy-ca"], true) },
    { out: "pki/etcd/ca", csr: csr("etcd-ca", "etcd-ca", [], ["etcd-ca"], true) },
  ];
  const saCsr = csr("sa", "sa");
  const leaves: CfsslCert[] = [];
  const kubeconfigs: CfsslKubeconfig[] = [];
  const endpoint = `https://${CLUSTER}-api:6443`;
  const client = (name: string, cn: string, o: string[], out: string, path: string, server: string) => {
    leaves.push({ out, csr: csr(name, cn, o), ca: "pki/ca", profile: "client" });
    kubeconfigs.push({ cert: out, path, user: cn, server });
  };
  client(
    "admin",
    "kubernetes-admin",
    ["kubeadm:cluster-admins"],
    "kubeconfigs/admin",
    "kubeconfigs/admin.conf",
    endpoint,
  );
  client(
    "super-admin",
    "kubernetes-super-admin",
    ["system:masters"],
    "kubeconfigs/super-admin",
    "kubeconfigs/super-admin.conf",
    endpoint,
  );
  // Identities that do not depend on the node are signed once and copied, as kubeforge does.
  const copies: { from: string; to: string }[] = [];
  const first = `nodes/${HOSTS[0]?.name}`;
  HOSTS.forEach((host, index) => {
    const n = `nodes/${host.name}`;
    const apiserverHosts = [
      host.name,
      "kubernetes",
      "kubernetes.default",
      "kubernetes.default.svc",
      "kubernetes.default.svc.cluster.local",
      `${CLUSTER}-api`,
      "198.19.128.1",
      host.address,
    ];
    const etcdHosts = [host.name, "localhost", host.address, "127.0.0.1", "::1"];
    const shared = (leaf: CfsslCert) => {
      if (index === 0) leaves.push(leaf);
      else copies.push({ from: leaf.out.replace(n, first), to: leaf.out });
    };
    leaves.push(
      {
        out: `${n}/pki/apiserver`,
        csr: csr(`${host.name}-apiserver`, "kube-apiserver", [], apiserverHosts),
        ca: "pki/ca",
        profile: "server",
      },
      {
        out: `${n}/pki/etcd/server`,
        csr: csr(`${host.name}-etcd-server`, host.name, [], etcdHosts),
        ca: "pki/etcd/ca",
        profile: "peer",
      },
      {
        out: `${n}/pki/etcd/peer`,
        csr: csr(`${host.name}-etcd-peer`, host.name, [], etcdHosts),
        ca: "pki/etcd/ca",
        profile: "peer",
      },
    );
    shared({
      out: `${n}/pki/apiserver-kubelet-client`,
      csr: csr("apiserver-kubelet-client", "kube-apiserver-kubelet-client", ["kubeadm:cluster-admins"]),
      ca: "pki/ca",
      profile: "client",
    });
    shared({
      out: `${n}/pki/front-proxy-client`,
      csr: csr("front-proxy-client", "front-proxy-client"),
      ca: "pki/front-proxy-ca",
      profile: "client",
    });
    shared({
      out: `${n}/pki/apiserver-etcd-client`,
      csr: csr("apiserver-etcd-client", "kube-apiserver-etcd-client"),
      ca: "pki/etcd/ca",
      profile: "client",
    });
    shared({
      out: `${n}/pki/etcd/healthcheck-client`,
      csr: csr("etcd-healthcheck-client", "kube-etcd-healthcheck-client"),
      ca: "pki/etcd/ca",
      profile: "client",
    });
    const local = `https://${host.address}:6443`;
    const sharedClient = (name: string, cn: string) => {
      const cert = `${first}/${name}-client`;
      if (index === 0) leaves.push({ out: cert, csr: csr(name, cn), ca: "pki/ca", profile: "client" });
      kubeconfigs.push({ cert, path: `${n}/${name}.conf`, user: cn, server: local });
    };
    sharedClient("controller-manager", "system:kube-controller-manager");
    sharedClient("scheduler", "system:kube-scheduler");
    client(
      `${host.name}-kubelet`,
      `system:node:${host.name}`,
      ["system:nodes"],
      `${n}/kubelet-client`,
      `${n}/kubelet.conf`,
      endpoint,
    );
  });
  await writeFile(join(dir, "config.json"), JSON.stringify(config));
  for (const [name, body] of csrs) await writeFile(join(dir, `${name}.json`), JSON.stringify(body));

  const dirs = new Set([...cas, ...leaves].map((c) => c.out.split("/").slice(0, -1).join("/")));
  const lines = [
    "#!/bin/bash",
    "# One run of cfssl: the whole set into the empty directory $1.",
    "set -euo pipefail",
    "umask 077",
    'cd "$1"',
    `mkdir -p ${[...dirs].join(" ")}`,
    ...cas.map((c) => `cfssl gencert -initca ${c.csr} 2>/dev/null | cfssljson -bare ${c.out}`),
    `cfssl genkey ${saCsr} 2>/dev/null | cfssljson -bare pki/sa`,
    "openssl pkey -in pki/sa-key.pem -pubout -out pki/sa.pub",
    ...leaves.map(
      (c) =>
        `cfssl gencert -ca ${c.ca}.pem -ca-key ${c.ca}-key.pem -config ${join(dir, "config.json")} -profile ${c.profile} ${c.csr} 2>/dev/null | cfssljson -bare ${c.out}`,
    ),
    ...copies.flatMap((c) => [`cp ${c.from}.pem ${c.to}.pem`, `cp ${c.from}-key.pem ${c.to}-key.pem`]),
    'echo "certs_done=$EPOCHREALTIME"',
    "CA=$(base64 -w0 pki/ca.pem)",
    ...kubeconfigs.flatMap((k) => [
      `cat > ${k.path} <<EOF`,
      "apiVersion: v1",
      "kind: Config",
      "clusters:",
      "- cluster:",
      "    certificate-authority-data: $CA",
      `    server: ${k.server}`,
      "  name: kubernetes",
      "contexts:",
      "- context:",
      "    cluster: kubernetes",
      `    user: ${k.user}`,
      `  name: ${k.user}@kubernetes`,
      `current-context: ${k.user}@kubernetes`,
      "preferences: {}",
      "users:",
      `- name: ${k.user}`,
      "  user:",
      `    client-certificate-data: $(base64 -w0 ${k.cert}.pem)`,
      `    client-key-data: $(base64 -w0 ${k.cert}-key.pem)`,
      "EOF",
    ]),
    "",
  ];
  const script = join(dir, "cfssl-pki.sh");
  await writeFile(script, lines.join("\n"), { mode: 0o755 });
  return script;
}

// ---------------------------------------------------------------------------------------------
// Checking what each side wrote

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name));
}

/** Distinct private keys (key files and kubeconfigs' client-key-data) and kubeconfig files under `dir`. */
function census(dir: string): { keys: string[]; kubeconfigs: number } {
  const keys = new Set<string>();
  let kubeconfigs = 0;
  for (const file of filesUnder(dir)) {
    if (file.includes("/logs/")) continue;
    const text = readFileSync(file, "utf8");
    if (file.endsWith(".conf")) {
      kubeconfigs++;
      const data = /client-key-data: (\S+)/.exec(text)?.[1];
      if (data)
        keys.add(
          createPrivateKey(Buffer.from(data, "base64").toString())
            .export({ type: "pkcs8", format: "pem" })
            .toString(),
        );
    } else if (text.includes("PRIVATE KEY-----")) {
      keys.add(createPrivateKey(text).export({ type: "pkcs8", format: "pem" }).toString());
    }
  }
  return { keys: [...keys], kubeconfigs };
}

function check(side: "kubeforge" | "cfssl", dir: string, algorithm: Algorithm): void {
  const { keys, kubeconfigs } = census(dir);
  const want = algorithm === "ECDSA-P256" ? "ec" : "rsa";
  const types = keys.map((pem) => createPrivateKey(pem).asymmetricKeyType);
  const wrong = types.filter((t) => t !== want);
  if (keys.length !== KEY_PAIRS || kubeconfigs !== KUBECONFIGS || wrong.length > 0) {
    const listing = filesUnder(dir)
      .map((f) => relative(dir, f))
      .sort()
      .join("\n  ");
    throw new Error(
      `${side} (${algorithm}) wrote ${keys.length} distinct private keys (want ${KEY_PAIRS}, types ${[...new Set(types)].join(",")}, want ${want}) and ${kubeconfigs} kubeconfigs (want ${KUBECONFIGS}):\n  ${listing}`,
    );
  }
}

// ---------------------------------------------------------------------------------------------

async function bench(algorithm: Algorithm, mode: KubeforgeMode | undefined, pkiModule: string | undefined) {
  const runs = RUNS[algorithm];
  const work = await mkdtemp(join(tmpdir(), "kf-bench-pki-"));
  try {
    const file = join(work, "cluster.yaml");
    await writeFile(file, clusterYaml(algorithm));
    await mkdir(join(work, "csr"));
    const script = await cfsslInputs(join(work, "csr"), algorithm);
    const kfState = join(work, "kubeforge-state");
    const cfOut = join(work, "cfssl-out");

    const kubeforgeOnce = async () => {
      await rm(kfState, { recursive: true, force: true });
      if (!mode) throw new Error("no kubeforge side");
      const sample = await kubeforgeRun(mode, file, kfState, pkiModule);
      check("kubeforge", join(kfState, CLUSTER), algorithm);
      return sample;
    };
    const cfsslOnce = async () => {
      await rm(cfOut, { recursive: true, force: true });
      await mkdir(cfOut);
      const started = Date.now() / 1000;
      const sample = await timed("bash", [script, cfOut]);
      check("cfssl", cfOut, algorithm);
      const certsDone = Number(/certs_done=([\d.]+)/.exec(sample.stdout)?.[1]);
      // $EPOCHREALTIME is wall-clock seconds; the spawn started at ≈ `started`.
      return { ...sample, certsMs: (certsDone - started) * 1000 };
    };

    // One untimed run each (page cache, CSR files), then interleaved runs, alternating who goes first.
    if (mode) await kubeforgeOnce();
    await cfsslOnce();
    const kf: Sample[] = [];
    const cf: Array<Sample & { certsMs: number }> = [];
    for (let i = 0; i < runs; i++) {
      if (i % 2 === 0) {
        if (mode) kf.push(await kubeforgeOnce());
        cf.push(await cfsslOnce());
      } else {
        cf.push(await cfsslOnce());
        if (mode) kf.push(await kubeforgeOnce());
      }
      process.stderr.write(".");
    }
    process.stderr.write("\n");

    const row = (name: string, walls: number[], cpus: number[]) => {
      const w = stats(walls);
      const c = stats(cpus);
      return `  ${name.padEnd(34)} median ${s(w.median)}  (IQR ${s(w.p25)}–${s(w.p75)}, min ${s(w.min)}, max ${s(w.max)})${cpus.length ? `  CPU ${s(c.median)}` : ""}`;
    };
    console.log(`${algorithm}, ${runs} interleaved runs each:`);
    if (mode) {
      console.log(
        row(
          mode === "cli" ? "kubeforge certs generate" : "kubeforge ensurePki (node -e)",
          kf.map((x) => x.wallMs),
          kf.map((x) => x.cpuMs),
        ),
      );
    }
    console.log(
      row(
        "cfssl script, whole set",
        cf.map((x) => x.wallMs),
        cf.map((x) => x.cpuMs),
      ),
    );
    console.log(
      row(
        "cfssl script, to the last cert",
        cf.map((x) => x.certsMs),
        [],
      ),
    );
    if (mode) {
      const ratio = stats(kf.map((x) => x.wallMs)).median / stats(cf.map((x) => x.wallMs)).median;
      const strict = stats(kf.map((x) => x.wallMs)).median / stats(cf.map((x) => x.certsMs)).median;
      const goal = GOALS[algorithm];
      console.log(
        `  ratio kubeforge / cfssl            ${ratio.toFixed(2)}x (goal <= ${goal}x: ${ratio <= goal ? "met" : "MISSED"}); against cfssl to its last cert: ${strict.toFixed(2)}x`,
      );
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const requested = values.kubeforge;
  if (!["auto", "cli", "lib"].includes(requested))
    throw new Error(`--kubeforge ${requested}: auto, cli or lib`);
  const pkiModule = await ensurePkiModule();
  let mode: KubeforgeMode | undefined;
  if (requested === "cli" || (requested === "auto" && (await cliHasCertsGenerate()))) mode = "cli";
  else if (pkiModule) mode = "lib";
  if (requested === "lib" && !pkiModule)
    throw new Error("--kubeforge lib: no dist/certs module exports ensurePki");

  console.log(
    `Local PKI into an empty store: 3 control planes, v1.30 (${KEY_PAIRS} key pairs, ${KUBECONFIGS} kubeconfigs), ${process.version}, cfssl ${(await timed("cfssl", ["version"])).stdout.split("\n")[0]?.trim()}`,
  );
  if (mode === "cli")
    console.log("kubeforge side: `node bin/kubeforge.js certs generate -f FILE` (the built CLI)");
  else if (mode === "lib")
    console.log(
      `kubeforge side: \`node -e\` calling ensurePki() from ${relative(ROOT, pkiModule ?? "")} (no \`certs generate\` in the CLI yet)`,
    );
  else
    console.log(
      "kubeforge side: PENDING (no `certs generate` in the CLI, no ensurePki in dist/certs/): cfssl only",
    );
  const load = () =>
    loadavg()
      .map((l) => l.toFixed(2))
      .join(" ");
  console.log(
    `load average before: ${load()}${(loadavg()[0] ?? 0) > 1 ? " (the machine is busy: expect noise)" : ""}`,
  );
  if (mode) {
    // The part of every kubeforge run that is not PKI work: node, and loading the code.
    const startup: number[] = [];
    for (let i = 0; i < 7; i++) startup.push((await kubeforgeRun(mode, "", "", pkiModule, true)).wallMs);
    const what = mode === "cli" ? "`kubeforge certs generate --help`" : "node -e with the imports only";
    console.log(`kubeforge start-up share (${what}): median ${s(stats(startup).median)} of 7`);
  }
  for (const algorithm of ["RSA-2048", "ECDSA-P256"] as const) await bench(algorithm, mode, pkiModule);
  console.log(`load average after: ${load()}`);
}

await main();
