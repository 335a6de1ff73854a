//! The snapshot state of any virtio device, as one tagged union so the
//! transport can carry it without knowing the device type. Each variant is
//! the device's own versioned `*State` (in its folder's persist.rs).

use std::fmt;

use serde::{Deserialize, Serialize};

use super::blk::BlockState;
use super::queue::QueueError;
use super::vsock::VsockState;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum VirtioDeviceState {
    Block(BlockState),
    Vsock(VsockState),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestoreError {
    /// The state was written by a version this build does not read.
    Version {
        what: &'static str,
        found: u32,
        supported: u32,
    },
    /// The state is for another kind of device.
    WrongDevice,
    /// The state does not fit the device or VM it is restored into.
    Mismatch(String),
    /// A saved queue is invalid for this guest memory.
    Queue(QueueError),
}

impl fmt::Display for RestoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Version {
                what,
                found,
                supported,
            } => {
                write!(
                    f,
                    "{what} state version {found} (this build reads {supported})"
                )
            }
            Self::WrongDevice => write!(f, "state belongs to a different device type"),
            Self::Mismatch(m) => write!(f, "state does not match: {m}"),
            Self::Queue(e) => write!(f, "saved queue: {e}"),
        }
    }
}

impl std::error::Error for RestoreError {}

impl From<QueueError> for RestoreError {
    fn from(e: QueueError) -> Self {
        Self::Queue(e)
    }
}
