import { describe, expect, it } from "vitest";
import { commentOutSwap } from "./prepare.js";

describe("prepare: swap", () => {
  it("comments out active swap entries in fstab and nothing else", () => {
    const fstab = [
      "# <file system> <mount point> <type> <options> <dump> <pass>",
      "UUID=1 / ext4 errors=remount-ro 0 1",
      "/swapfile none swap sw 0 0",
      "# /dev/sdb1 none swap sw 0 0",
      "UUID=2\tnone\tswap\tsw\t0\t0",
      "",
    ].join("\n");
    expect(commentOutSwap(fstab).split("\n")).toEqual([
      "# <file system> <mount point> <type> <options> <dump> <pass>",
      "UUID=1 / ext4 errors=remount-ro 0 1",
      "# swap off for the kubelet (kubeforge): /swapfile none swap sw 0 0",
      "# /dev/sdb1 none swap sw 0 0",
      "# swap off for the kubelet (kubeforge): UUID=2\tnone\tswap\tsw\t0\t0",
      "",
    ]);
    expect(commentOutSwap(commentOutSwap(fstab))).toBe(commentOutSwap(fstab));
  });
});
