//! virtio-blk (virtio 1.2 §5.2) backed by a host file or block device.
//!
//! - `device`: `Block`, the `VirtioDevice` (features, config space, queue).
//! - `request`: one request, parsed from a descriptor chain and executed.
//! - `disk`: the host file and vectored I/O straight into guest memory.
//! - `persist`: `BlockState` for snapshots.

mod device;
mod disk;
mod persist;
mod request;

#[cfg(test)]
mod tests;

pub use device::{Block, QUEUE_SIZE};
pub use persist::{BlockState, BLOCK_STATE_VERSION};

/// Sectors are 512 bytes on the wire whatever the backing's block size.
pub const SECTOR_SIZE: u64 = 512;
/// GET_ID answers with up to this many bytes.
pub const ID_BYTES: usize = 20;

/// Device feature bits (§5.2.3), as masks.
pub const F_SEG_MAX: u64 = 1 << 2;
pub const F_RO: u64 = 1 << 5;
pub const F_FLUSH: u64 = 1 << 9;

/// Request types (§5.2.6).
pub const T_IN: u32 = 0;
pub const T_OUT: u32 = 1;
pub const T_FLUSH: u32 = 4;
pub const T_GET_ID: u32 = 8;

/// Request status values.
pub const S_OK: u8 = 0;
pub const S_IOERR: u8 = 1;
pub const S_UNSUPP: u8 = 2;
