//! What a virtio device is to its transport.
//!
//! The transport owns the register window and the driver handshake; the
//! device owns its config space, its queues once activated, and the work.
//! Lifecycle: `features` → `ack_features` (on FEATURES_OK) → `activate`
//! (on DRIVER_OK, with the queues the driver set up) → `process_queue` (on
//! each QueueNotify) → `reset` (on Status = 0). `state`/`restore` carry a
//! device across a snapshot.

use std::fmt;
use std::sync::Arc;

use super::interrupt::Interrupt;
use super::persist::{RestoreError, VirtioDeviceState};
use super::queue::{Queue, QueueError};
use crate::memory::GuestMemory;

pub trait VirtioDevice: Send {
    /// virtio device type (2 = block, ...).
    fn device_type(&self) -> u32;

    /// Feature bits offered; must include VIRTIO_F_VERSION_1.
    fn features(&self) -> u64;

    /// The feature subset the driver accepted (already checked to be a
    /// subset of `features()`).
    fn ack_features(&mut self, features: u64);

    /// Device config space access; `offset` is relative to the start of the
    /// config space. Out-of-range bytes read as zero, writes are ignored.
    fn read_config(&self, offset: u64, data: &mut [u8]);
    fn write_config(&mut self, offset: u64, data: &[u8]);

    /// Maximum size of each queue; the length is the number of queues.
    fn queue_max_sizes(&self) -> &[u16];

    /// DRIVER_OK: the device takes its queues (one per `queue_max_sizes`
    /// entry; enabled ones already validated against `mem`) and starts.
    fn activate(
        &mut self,
        mem: Arc<GuestMemory>,
        queues: Vec<Queue>,
        interrupt: Arc<Interrupt>,
    ) -> Result<(), DeviceError>;

    /// QueueNotify for queue `index`: process what the driver made
    /// available. An error means the device can no longer trust the queue;
    /// the transport then sets DEVICE_NEEDS_RESET.
    fn process_queue(&mut self, index: usize) -> Result<(), DeviceError>;

    /// Status = 0: drop queues and memory, back to the pre-activation state.
    fn reset(&mut self);

    /// Everything needed to continue this device elsewhere.
    fn state(&self) -> VirtioDeviceState;

    /// The inverse of `state`, on a freshly constructed device; re-activates
    /// it with the saved queues if it was active.
    fn restore(
        &mut self,
        state: &VirtioDeviceState,
        mem: Arc<GuestMemory>,
        interrupt: Arc<Interrupt>,
    ) -> Result<(), RestoreError>;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceError {
    /// The guest broke a queue (bad chain, bad index...).
    Queue(QueueError),
    /// A request the device cannot even answer (for example, no place to
    /// write a status byte).
    Malformed(&'static str),
    /// activate() was given the wrong number of queues.
    QueueCount { expected: usize, got: usize },
}

impl fmt::Display for DeviceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Queue(e) => write!(f, "virtqueue: {e}"),
            Self::Malformed(what) => write!(f, "malformed request: {what}"),
            Self::QueueCount { expected, got } => {
                write!(f, "expected {expected} queues, got {got}")
            }
        }
    }
}

impl std::error::Error for DeviceError {}

impl From<QueueError> for DeviceError {
    fn from(e: QueueError) -> Self {
        Self::Queue(e)
    }
}
