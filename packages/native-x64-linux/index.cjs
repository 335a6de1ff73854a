"use strict";
// Absolute paths of everything this package ships. The files under bin/
// are built by tools/setup (tools/build-native) and are not in git.
const path = require("node:path");

const bin = (name) => path.join(__dirname, "bin", name);

module.exports = {
  /** stasis-vmm, the VM monitor */
  binary: bin("stasis-vmm"),
  /** uncompressed guest kernel (vmlinux) */
  kernel: bin("vmlinux"),
  /** static guest /init */
  init: bin("stasis-init"),
  /** static guest agent, started by /init as /stasis-agent (docs/agent-protocol.md) */
  agent: bin("stasis-agent"),
  /** tiny busybox base rootfs, booted when no image is given */
  baseRootfs: bin("base-rootfs.tar.gz"),
  /** mke2fs and mksquashfs wrappers with their libraries */
  mke2fs: bin("mke2fs"),
  mksquashfs: bin("mksquashfs"),
};
