// The file check script runs here in a real sh with real sha256sum and stat, on files in a temp dir.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, mkdtempSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  EMPTY_RECORD,
  fileCheckScript,
  type InstallRecord,
  parseFileChecks,
  parseInstallRecord,
  serializeInstallRecord,
  type WantedFile,
} from "./install-record.js";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "kf-record-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const sha = (text: string) => createHash("sha256").update(text).digest("hex");

function check(wanted: WantedFile[], record: InstallRecord, verify = false) {
  return parseFileChecks(
    execFileSync("sh", ["-c", fileCheckScript(wanted, record, { verify })], { encoding: "utf8" }),
  );
}

function place(name: string, content: string, mode = 0o755): WantedFile {
  const path = join(dir, name);
  writeFileSync(path, content);
  chmodSync(path, mode);
  return { path, sha256: sha(content), mode: 0o755 };
}

function recorded(file: WantedFile): InstallRecord {
  const stat = statSync(file.path);
  return {
    ...EMPTY_RECORD,
    files: [
      { path: file.path, sha256: file.sha256, size: stat.size, mtime: Math.floor(stat.mtimeMs / 1000) },
    ],
  };
}

describe("install record file checks", () => {
  it("hashes files it has no record of: same content is same, other content differs, absent is missing", () => {
    const good = place("kubelet", "real kubelet");
    const bad = { ...place("kubectl", "tampered"), sha256: sha("real kubectl") };
    const missing = { path: join(dir, "crictl"), sha256: sha("x"), mode: 0o755 };
    const statuses = check([good, bad, missing], EMPTY_RECORD);
    expect(statuses.get(good.path)).toMatchObject({ status: "same", size: 12 });
    expect(statuses.get(bad.path)).toEqual({ path: bad.path, status: "differs" });
    expect(statuses.get(missing.path)).toEqual({ path: missing.path, status: "missing" });
  });

  it("trusts a recorded size and mtime without hashing, unless verify; a moved mtime means hashing again", () => {
    const file = place("kubelet", "real kubelet");
    const record = recorded(file);
    // Altered with size and mtime kept: only hashing can tell.
    const { mtime } = statSync(file.path);
    writeFileSync(file.path, "fake kubelet");
    utimesSync(file.path, mtime, mtime);
    expect(check([file], record).get(file.path)?.status).toBe("same");
    expect(check([file], record, true).get(file.path)?.status).toBe("differs");
    utimesSync(file.path, mtime, new Date(mtime.getTime() + 5000));
    expect(check([file], record).get(file.path)?.status).toBe("differs");
  });

  it("does not trust a record made for other content, and counts a wrong mode as differing", () => {
    const file = place("kubelet", "real kubelet");
    const stale: InstallRecord = {
      ...recorded(file),
      files: recorded(file).files.map((f) => ({ ...f, sha256: sha("old") })),
    };
    expect(check([file], stale).get(file.path)?.status).toBe("same"); // hashed, and the content is right
    chmodSync(file.path, 0o644);
    expect(check([file], recorded(file)).get(file.path)?.status).toBe("differs");
  });

  it("reads its own serialization back, and treats a garbled record as none", () => {
    const record: InstallRecord = {
      kubernetesVersion: "v1.30.4",
      files: [{ path: "/usr/bin/kubelet", sha256: sha("k"), size: 1, mtime: 2 }],
      packages: [{ name: "containerd", version: "1.6.20~ds1-1+deb12u3" }],
    };
    expect(parseInstallRecord(serializeInstallRecord(record))).toEqual(record);
    expect(parseInstallRecord("{not json")).toEqual(EMPTY_RECORD);
    expect(parseInstallRecord(undefined)).toEqual(EMPTY_RECORD);
    expect(parseInstallRecord('{"files":[{"path":"/x"}]}').files).toEqual([]);
  });
});
