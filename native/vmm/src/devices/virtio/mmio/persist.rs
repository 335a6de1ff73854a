//! Snapshot state of a virtio-mmio transport and the device behind it.

use serde::{Deserialize, Serialize};

use crate::devices::virtio::persist::VirtioDeviceState;
use crate::devices::virtio::queue::QueueState;

pub const MMIO_STATE_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MmioState {
    pub version: u32,
    /// Device status register, DEVICE_NEEDS_RESET included.
    pub status: u32,
    pub device_features_sel: u32,
    pub driver_features_sel: u32,
    /// The features the driver accepted (negotiated once FEATURES_OK).
    pub driver_features: u64,
    pub queue_sel: u32,
    /// Queue configuration as the driver wrote it; the live progress
    /// indices of an active device are in `device`.
    pub queues: Vec<QueueState>,
    pub interrupt_status: u32,
    pub config_generation: u32,
    pub activated: bool,
    pub device: VirtioDeviceState,
}
