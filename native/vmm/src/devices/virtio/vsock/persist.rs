//! Snapshot state of a virtio-vsock device.
//!
//! Host connections (Unix sockets) cannot be carried across a snapshot:
//! only the device's own state travels. On restore every stream is gone,
//! and an active device sends VIRTIO_VSOCK_EVENT_TRANSPORT_RESET on its
//! event queue so the guest resets its sockets too; host clients
//! reconnect through the bridge.

use serde::{Deserialize, Serialize};

use crate::devices::virtio::queue::QueueState;

pub const VSOCK_STATE_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VsockState {
    pub version: u32,
    /// The config space (always 3 today; checked on restore).
    pub guest_cid: u64,
    /// Features the driver accepted.
    pub acked_features: u64,
    /// True between DRIVER_OK and reset.
    pub activated: bool,
    /// rx, tx, event queues (with their ring indices) when `activated`.
    pub queues: Vec<QueueState>,
    /// The host-side port the next host client's stream gets (absent in
    /// states written before it was kept: the first port then).
    #[serde(default)]
    pub next_host_port: Option<u32>,
}
