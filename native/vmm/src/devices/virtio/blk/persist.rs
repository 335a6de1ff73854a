//! Snapshot state of a virtio-blk device. The disk contents are not here:
//! the backing file travels beside the snapshot (or is shared read-only),
//! and `capacity`/`read_only` check that the restore got the same one.

use serde::{Deserialize, Serialize};

use crate::devices::virtio::queue::QueueState;

pub const BLOCK_STATE_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockState {
    pub version: u32,
    /// Capacity in 512-byte sectors (the config space derives from it).
    pub capacity: u64,
    pub read_only: bool,
    /// The GET_ID serial the guest has seen; kept across restore so the
    /// guest's /dev/disk/by-id names stay put on another host.
    pub id: String,
    /// Features the driver accepted.
    pub acked_features: u64,
    /// True between DRIVER_OK and reset.
    pub activated: bool,
    /// Live queues (with their ring indices) when `activated`.
    pub queues: Vec<QueueState>,
}
