// The hosts/ transport against real sshd (OpenSSH on Debian lab hosts): exec, sudo with a password,
// killing on timeout, atomic writes, known_hosts verification, retries, passphrase-protected keys.
import { execFileSync, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HostConnectError, HostKeyError } from "../hosts/host.js";
import { fingerprint, KnownHosts } from "../hosts/known-hosts.js";
import { SshHost, type SshHostOptions } from "../hosts/ssh.js";
import { type Lab, labDown, labUp } from "../lab/testhosts.js";
import { RemoteCommandError } from "../workflow/errors.js";
import { Redactor } from "../workflow/redact.js";

const LAB = { bridge: "kfbrh0", subnet: "198.18.6" };
let lab: Lab;
let work: string;
const open: SshHost[] = [];

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "kf-hosts-"));
  lab = await labUp(3, LAB);
});

afterAll(async () => {
  await Promise.allSettled(open.map((host) => host.close()));
  rmSync(work, { recursive: true, force: true });
  await labDown(LAB);
});

function address(index: number): string {
  const host = lab.hosts[index];
  if (!host) throw new Error(`lab has no host ${index}`);
  return host.address;
}

async function connect(index: number, options: Partial<SshHostOptions> = {}): Promise<SshHost> {
  const host = new SshHost({
    name: lab.hosts[index]?.name ?? `h${index + 1}`,
    address: address(index),
    user: "root",
    privateKey: { path: lab.keyPath },
    knownHosts: await KnownHosts.load([lab.knownHostsPath]),
    redactor: new Redactor(),
    ...options,
  });
  open.push(host);
  return host;
}

const asSudoUser = (redactor = new Redactor()) => ({
  user: lab.users.sudoUser,
  sudoPassword: lab.users.sudoPassword,
  redactor,
});

/** Host keys as the lab recorded them: type → base64 blob. */
function labHostKeys(index: number): Map<string, Buffer> {
  const keys = new Map<string, Buffer>();
  for (const line of readFileSync(lab.knownHostsPath, "utf8").split("\n")) {
    const [hosts, type, base64] = line.split(" ");
    if (type && base64 && hosts?.split(",").includes(address(index)))
      keys.set(type, Buffer.from(base64, "base64"));
  }
  return keys;
}

function knownHostsFile(content: string): string {
  const file = join(work, `known_hosts-${randomBytes(4).toString("hex")}`);
  writeFileSync(file, content);
  return file;
}

async function errorOf(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error("expected a rejection");
}

describe("exec", () => {
  it("runs commands with stdin and streams output lines while the command runs", async () => {
    const host = await connect(0);
    const seen: Array<{ line: string; at: number }> = [];
    const started = Date.now();
    const result = await host.exec("cat; for i in 1 2 3; do echo line$i; sleep 0.3; done; echo warn >&2", {
      stdin: "from stdin\n",
      onOutput: (line) => seen.push({ line, at: Date.now() - started }),
    });
    expect(result).toEqual({ exitCode: 0, stdout: "from stdin\nline1\nline2\nline3\n", stderr: "warn\n" });
    expect(seen.map((s) => s.line)).toEqual(["from stdin", "line1", "line2", "line3", "warn"]);
    // line1 arrived well before the command finished (≥ 0.9 s): streamed, not buffered.
    const end = Date.now() - started;
    expect(end - (seen[1]?.at ?? end)).toBeGreaterThan(500);
  });

  it("reports a failing command with the host, the command and its stderr", async () => {
    const host = await connect(0);
    const error = await errorOf(host.exec("ls /nonexistent"));
    expect(error).toBeInstanceOf(RemoteCommandError);
    expect(error.message).toBe(
      `h1 (${address(0)}:22): \`ls /nonexistent\` exited 2: ls: cannot access '/nonexistent': No such file or directory`,
    );
  });

  it("runs 20 commands at once over one connection, within OpenSSH's MaxSessions", async () => {
    const host = await connect(2);
    const started = Date.now();
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => host.exec(`sleep 1; echo ${i}`)));
    expect(results.map((r) => r.stdout)).toEqual(Array.from({ length: 20 }, (_, i) => `${i}\n`));
    expect(Date.now() - started).toBeGreaterThan(2900); // three waves of at most 8 channels
    const connections = await host.exec(`ss -Htn state established '( sport = :22 )' | wc -l`);
    expect(connections.stdout.trim()).toBe("1");
  });
});

describe("killing on timeout and abort", () => {
  it("kills a timed-out command and its children on the host", async () => {
    const host = await connect(0);
    const seconds = `${600 + Math.floor(Math.random() * 300)}.5`;
    const error = await errorOf(
      host.exec(`sleep ${seconds} & sleep ${seconds}; echo done`, { timeoutMs: 1000 }),
    );
    expect(error.message).toContain(
      "was killed: timed out after 1s (its process group was killed on the host)",
    );
    // `[s]leep`: the pattern must not match the command line of the shell running pgrep itself.
    const left = await host.exec(`pgrep -f '[s]leep ${seconds}'`, { allowFailure: true });
    expect(left).toEqual({ exitCode: 1, stdout: "", stderr: "" });
  });

  it("kills an aborted command run through sudo with a password", async () => {
    const host = await connect(1, asSudoUser());
    const root = await connect(1);
    const seconds = `${600 + Math.floor(Math.random() * 300)}.25`;
    const controller = new AbortController();
    const running = host.exec(`sleep ${seconds}`, { sudo: true, signal: controller.signal });
    // Abort only once the command itself runs, as root: `^sleep` matches the sleep process, not the
    // start wrapper whose argument list also holds the command while it waits to be told to go.
    let runningAsRoot = false;
    for (let i = 0; i < 50 && !runningAsRoot; i++) {
      const found = await root.exec(`pgrep -u root -f '^sleep ${seconds}$'`, { allowFailure: true });
      runningAsRoot = found.exitCode === 0;
      if (!runningAsRoot) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(runningAsRoot).toBe(true);
    controller.abort(new Error("interrupted"));
    const error = await errorOf(running);
    expect(error.message).toContain("was killed: aborted (its process group was killed on the host)");
    const left = await root.exec(`pgrep -f '[s]leep ${seconds}'`, { allowFailure: true });
    expect(left.exitCode).toBe(1);
  });
});

describe("sudo with a password", () => {
  it("runs as root with stdin, and the password shows up in no output, error or journal entry", async () => {
    const redactor = new Redactor();
    const host = await connect(1, asSudoUser(redactor));
    const lines: string[] = [];
    const onOutput = (line: string) => lines.push(line);
    expect((await host.exec("id -un")).stdout).toBe(`${lab.users.sudoUser}\n`);
    const result = await host.exec("id -un; cat", { sudo: true, stdin: "payload\n", onOutput });
    expect(result).toEqual({ exitCode: 0, stdout: "root\npayload\n", stderr: "" });
    const failed = await errorOf(host.exec("echo failing >&2; exit 5", { sudo: true, onOutput }));
    expect(failed.message).toBe(`h2 (${address(1)}:22): \`echo failing >&2; exit 5\` exited 5: failing`);

    const root = await connect(1);
    const journal = (await root.exec("journalctl --no-pager -o verbose")).stdout;
    expect(journal).toContain(`${lab.users.sudoUser} : PWD=`); // sudo did log our commands
    expect(journal).toContain("COMMAND=/usr/bin/setsid -w sh -c");
    const everything = [journal, result.stdout, result.stderr, failed.message, ...lines].join("\n");
    expect(everything).not.toContain(lab.users.sudoPassword);
  });

  it("fails clearly with a wrong password", async () => {
    const host = await connect(1, { ...asSudoUser(), sudoPassword: "not-the-password" });
    const error = await errorOf(host.exec("true", { sudo: true }));
    expect(error.message).toBe(
      `h2 (${address(1)}:22): \`true\` exited 1: sudo rejected the password for ${lab.users.sudoUser}`,
    );
  });

  it("writes a file atomically into a root-owned directory, mode 0600, owned by root", async () => {
    const host = await connect(1, asSudoUser());
    const content = randomBytes(100_000);
    const path = "/etc/kubernetes/pki/hosts-test/ca.key";
    await host.writeFile(path, content, { sudo: true, mode: 0o600, owner: "root", group: "root" });
    const root = await connect(1);
    const stat = await root.exec(`stat -c '%a %U %G' ${path} /etc/kubernetes/pki/hosts-test`);
    expect(stat.stdout).toBe("600 root root\n755 root root\n");
    const sum = await root.exec(`sha256sum < ${path}`);
    expect(sum.stdout.split(" ")[0]).toBe(createHash("sha256").update(content).digest("hex"));
    expect((await root.exec("ls -A /etc/kubernetes/pki/hosts-test")).stdout).toBe("ca.key\n");
    expect((await host.readFile(path, { sudo: true })).equals(content)).toBe(true);
    const denied = await errorOf(host.readFile(path));
    expect(denied.message).toContain("Permission denied");
  });
});

describe("host keys", () => {
  it("refuses an unknown host key, names --accept-new-host-keys and leaves known_hosts alone", async () => {
    const file = knownHostsFile("");
    const host = await connect(1, { knownHosts: await KnownHosts.load([file]) });
    const error = await errorOf(host.exec("true"));
    expect(error).toBeInstanceOf(HostKeyError);
    expect(error.message).toMatch(
      new RegExp(
        `^h2 \\(${address(1).replaceAll(".", "\\.")}:22\\): host key not known: .*--accept-new-host-keys`,
      ),
    );
    expect(error.message).toContain(fingerprint(labHostKeys(1).get("ssh-ed25519") as Buffer));
    expect(readFileSync(file, "utf8")).toBe("");
  });

  it("records a new key with acceptNewHostKeys, in a line OpenSSH then accepts strictly", async () => {
    const file = knownHostsFile("");
    const logs: string[] = [];
    const host = await connect(1, {
      knownHosts: await KnownHosts.load([file]),
      acceptNewHostKeys: true,
      log: (line) => logs.push(line),
    });
    expect((await host.exec("hostname")).stdout).toBe("h2\n");
    const recorded = readFileSync(file, "utf8");
    expect(recorded).toBe(
      `${address(1)} ssh-ed25519 ${labHostKeys(1).get("ssh-ed25519")?.toString("base64")}\n`,
    );
    expect(logs.join("\n")).toContain(`recorded new host key ssh-ed25519 SHA256:`);
    const ssh = execFileSync(
      "ssh",
      [
        ...[
          "-o",
          "StrictHostKeyChecking=yes",
          "-o",
          `UserKnownHostsFile=${file}`,
          "-o",
          "GlobalKnownHostsFile=/dev/null",
        ],
        ...[
          "-o",
          "BatchMode=yes",
          "-o",
          "IdentitiesOnly=yes",
          "-i",
          lab.keyPath,
          `root@${address(1)}`,
          "hostname",
        ],
      ],
      { encoding: "utf8" },
    );
    expect(ssh).toBe("h2\n");
  });

  it("refuses a changed key even with acceptNewHostKeys, showing both fingerprints and file:line", async () => {
    const fake = join(work, "fake_host_key");
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", fake]);
    const fakeLine = readFileSync(`${fake}.pub`, "utf8").split(" ").slice(0, 2).join(" ");
    const file = knownHostsFile(`# a comment\nsomething.else ${fakeLine}\n${address(1)} ${fakeLine}\n`);
    const before = readFileSync(file, "utf8");
    const host = await connect(1, { knownHosts: await KnownHosts.load([file]), acceptNewHostKeys: true });
    const error = await errorOf(host.exec("true"));
    expect(error).toBeInstanceOf(HostKeyError);
    expect((error as HostKeyError).reason).toBe("changed");
    const real = fingerprint(labHostKeys(1).get("ssh-ed25519") as Buffer);
    const old = fingerprint(Buffer.from(fakeLine.split(" ")[1] as string, "base64"));
    expect(error.message).toContain(`HOST KEY CHANGED: the host offered ssh-ed25519 key ${real}`);
    expect(error.message).toContain(`known_hosts has ${old} (${file}:3)`);
    expect(readFileSync(file, "utf8")).toBe(before);
  });

  it("connects to a host known only by its RSA key although the host prefers ed25519", async () => {
    const rsa = labHostKeys(1).get("ssh-rsa");
    expect(rsa).toBeDefined();
    const file = knownHostsFile(`${address(1)} ssh-rsa ${rsa?.toString("base64")}\n`);
    const host = await connect(1, { knownHosts: await KnownHosts.load([file]) });
    expect((await host.exec("hostname")).stdout).toBe("h2\n");
    expect(readFileSync(file, "utf8").split("\n").filter(Boolean)).toHaveLength(1);
  });
});

describe("connecting", () => {
  it("gives up on an unreachable host within the retry budget, after retrying", async () => {
    const logs: string[] = [];
    const host = new SshHost({
      name: "ghost",
      address: `${LAB.subnet}.99`,
      user: "root",
      privateKey: { path: lab.keyPath },
      knownHosts: await KnownHosts.load([lab.knownHostsPath]),
      redactor: new Redactor(),
      log: (line) => logs.push(line),
    });
    const started = Date.now();
    const error = await errorOf(host.exec("true"));
    const elapsed = Date.now() - started;
    expect(error).toBeInstanceOf(HostConnectError);
    expect(error.message).toMatch(
      new RegExp(`^ghost \\(${LAB.subnet.replaceAll(".", "\\.")}\\.99:22\\): gave up after \\d+ attempts`),
    );
    expect(logs.length).toBeGreaterThan(1);
    expect(elapsed).toBeLessThan(32_000);
    expect(elapsed).toBeGreaterThan(15_000);
  });

  it("does not retry a failed authentication", async () => {
    const other = join(work, "unknown_client_key");
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", other]);
    const host = await connect(2, { privateKey: { path: other } });
    const started = Date.now();
    const error = await errorOf(host.exec("true"));
    expect(error.message).toBe(
      `h3 (${address(2)}:22): authentication failed for user root (tried: private key)`,
    );
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it("authenticates through an ssh-agent given by its socket", async () => {
    const socket = join(work, "agent.sock");
    const agent = spawn("ssh-agent", ["-D", "-a", socket], { stdio: "ignore" });
    try {
      for (let i = 0; i < 50 && !existsSync(socket); i++) await new Promise((r) => setTimeout(r, 100));
      execFileSync("ssh-add", ["-q", lab.keyPath], { env: { ...process.env, SSH_AUTH_SOCK: socket } });
      const host = await connect(2, { privateKey: undefined, agentSocket: socket });
      expect((await host.exec("whoami")).stdout).toBe("root\n");
    } finally {
      agent.kill();
    }
  });

  it("authenticates with a password, also when the server asks through keyboard-interactive", async () => {
    const root = await connect(2);
    const user = lab.users.sudoUser;
    const password = lab.users.sudoPassword;
    // First match wins in sshd_config.d, and 00- sorts before the lab's own file.
    for (const config of ["PasswordAuthentication yes", "KbdInteractiveAuthentication yes"]) {
      await root.exec("cat > /etc/ssh/sshd_config.d/00-hosts-test.conf && systemctl reload ssh", {
        stdin: `${config}\n`,
      });
      const host = await connect(2, { user, privateKey: undefined, password });
      expect((await host.exec("whoami")).stdout).toBe(`${user}\n`);
      await host.close();
    }
    await root.exec("rm /etc/ssh/sshd_config.d/00-hosts-test.conf && systemctl reload ssh");
    const refused = await connect(2, { user, privateKey: undefined, password });
    expect((await errorOf(refused.exec("true"))).message).toBe(
      `h3 (${address(2)}:22): authentication failed for user ${user} (tried: password)`,
    );
  });

  it("authenticates with a passphrase-protected key, and says so when the passphrase is wrong", async () => {
    const passphrase = `pp-${randomBytes(8).toString("hex")}`;
    const key = join(work, "protected_key");
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", passphrase, "-f", key]);
    const root = await connect(2);
    await root.exec("cat >> /root/.ssh/authorized_keys", { stdin: readFileSync(`${key}.pub`) });

    const host = await connect(2, { privateKey: { path: key, passphrase } });
    expect((await host.exec("whoami")).stdout).toBe("root\n");

    const wrong = await connect(2, { privateKey: { path: key, passphrase: "wrong" } });
    const error = await errorOf(wrong.exec("true"));
    expect(error).toBeInstanceOf(HostConnectError);
    expect(error.message).toMatch(
      new RegExp(
        `^h3 \\(${address(2).replaceAll(".", "\\.")}:22\\): cannot use ${key}: .*\\(is the passphrase right\\?\\)$`,
      ),
    );
    expect(error.message).not.toContain(passphrase);
  });
});
