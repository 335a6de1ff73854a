/** File names in a vmstate bundle (docs/vmstate.md): the VMM's part plus what the runtime adds. */

/** vCPUs, interrupt controllers, clocks, devices; written by the VMM. */
export const STATE_FILE = "state.vmstate";
/** Guest RAM, sparse; mapped copy-on-write by every restore. */
export const MEMORY_FILE = "memory.img";
/** The VM's writable disk (the second `--disk`: the per-VM upper layer). */
export const UPPER_DISK_FILE = "disk-1.img";
/** The read-only root disk image, linked or copied in by the runtime. */
export const ROOTFS_FILE = "rootfs.img";
/** Inside a VM's run dir: where SIGUSR1 makes the VMM write a snapshot. */
export const SIGUSR1_SNAPSHOT_DIR = "sigusr1-snapshot";
