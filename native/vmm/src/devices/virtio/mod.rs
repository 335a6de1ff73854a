//! virtio devices over the virtio-mmio (version 2) transport.
//!
//! - `queue`: the split virtqueue, with every guest-supplied index, address
//!   and length checked before use.
//! - `mmio`: the register window a driver talks to (`MmioTransport`, a
//!   `BusDevice`); it negotiates features, collects queue setup and hands
//!   the device its queues on DRIVER_OK.
//! - `blk`: virtio-blk backed by a host file.
//! - `vsock`: virtio-vsock bridged to host Unix sockets (its own I/O
//!   thread; see its module docs).
//! - `device`: the `VirtioDevice` trait every device implements.
//! - `interrupt`: the InterruptStatus word shared by transport and device.
//! - `persist`: the tagged union of every device's `*State`.
//!
//! Notifications are handled synchronously on the vCPU thread that wrote
//! QueueNotify. Only vsock has a thread of its own (host socket readiness).

// Nothing outside this module calls into it (or uses its re-exports) until
// the VMM builder wires the devices up; remove this once it does.
#![allow(dead_code, unused_imports)]

pub mod blk;
pub mod device;
pub mod interrupt;
pub mod mmio;
pub mod persist;
pub mod queue;
pub mod vsock;

#[cfg(test)]
pub(crate) mod test_utils;

pub use device::{DeviceError, VirtioDevice};
pub use interrupt::Interrupt;
pub use persist::{RestoreError, VirtioDeviceState};
pub use queue::Queue;

/// Device type IDs (virtio 1.2 §5).
pub const TYPE_BLOCK: u32 = 2;
pub const TYPE_VSOCK: u32 = 19;

/// Device-independent feature bits (virtio 1.2 §6), as masks.
pub const F_RING_INDIRECT_DESC: u64 = 1 << 28;
pub const F_RING_EVENT_IDX: u64 = 1 << 29;
pub const F_VERSION_1: u64 = 1 << 32;

/// Device status bits (virtio 1.2 §2.1).
pub mod status {
    pub const ACKNOWLEDGE: u32 = 1;
    pub const DRIVER: u32 = 2;
    pub const DRIVER_OK: u32 = 4;
    pub const FEATURES_OK: u32 = 8;
    pub const DEVICE_NEEDS_RESET: u32 = 0x40;
    pub const FAILED: u32 = 0x80;
}

/// Copies `data.len()` bytes of a device's config space starting at
/// `offset`; bytes past the end of `config` read as zero.
pub fn read_config_bytes(config: &[u8], offset: u64, data: &mut [u8]) {
    data.fill(0);
    let Ok(start) = usize::try_from(offset) else {
        return;
    };
    if start >= config.len() {
        return;
    }
    let n = data.len().min(config.len() - start);
    data[..n].copy_from_slice(&config[start..start + n]);
}
