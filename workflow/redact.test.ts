import { generateKeyPairSync } from "node:crypto";
import { describe, expect, it } from "vitest";
import { Redactor } from "./redact.js";

describe("Redactor", () => {
  it("hides every registered secret value, also inside longer text", () => {
    const redactor = new Redactor();
    redactor.addSecret("hunter2");
    redactor.addSecret("hunter2-and-more");
    expect(redactor.redact("sudo got hunter2-and-more, then hunter2")).toBe(
      "sudo got [REDACTED], then [REDACTED]",
    );
  });

  it("hides bootstrap token secrets but keeps the public token id", () => {
    const redactor = new Redactor();
    expect(redactor.redact("kubeadm join --token abcdef.0123456789abcdef api:6443")).toBe(
      "kubeadm join --token abcdef.[REDACTED] api:6443",
    );
  });

  it("hides PEM private keys of every kind, whole", () => {
    const redactor = new Redactor();
    const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const pem = privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    const sec1 = privateKey.export({ type: "sec1", format: "pem" }).toString();
    const out = redactor.redact(`key:\n${pem}and\n${sec1}end`);
    expect(out).toBe("key:\n[REDACTED] private key\nand\n[REDACTED] private key\nend");
  });

  it("hides --certificate-key values and password=/JSON password forms", () => {
    const redactor = new Redactor();
    const hex = "a".repeat(64);
    expect(redactor.redact(`--certificate-key ${hex}`)).toBe("--certificate-key [REDACTED]");
    expect(redactor.redact("PASSWORD=s3cret next")).toBe("PASSWORD=[REDACTED] next");
    expect(redactor.redact('{"password": "s3cret"}')).toBe('{"password": "[REDACTED]"}');
  });

  it("leaves YAML paths in messages readable", () => {
    const redactor = new Redactor();
    const message = "cluster.yaml:5 spec.ssh.sudo.password: needs exactly one of env, file or prompt";
    expect(redactor.redact(message)).toBe(message);
  });

  it("redacts every string of an event, keeping its shape", () => {
    const redactor = new Redactor();
    redactor.addSecret("pw-123");
    const event = { type: "log", phase: "p", message: "typed pw-123", nested: { list: ["pw-123", 4] } };
    expect(redactor.redactDeep(event)).toEqual({
      type: "log",
      phase: "p",
      message: "typed [REDACTED]",
      nested: { list: ["[REDACTED]", 4] },
    });
  });
});
