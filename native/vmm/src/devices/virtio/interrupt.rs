//! The InterruptStatus word a virtio-mmio device presents, shared between
//! the transport (which reads and acknowledges it on the guest's behalf) and
//! the device (which sets bits when it publishes used buffers). Atomic so a
//! device may later signal from an I/O thread without the transport lock.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use crate::devices::Irq;

/// InterruptStatus bit 0: a queue has new used buffers.
pub const INT_USED_RING: u32 = 1;
/// InterruptStatus bit 1: the configuration (or device status) changed.
pub const INT_CONFIG: u32 = 2;

pub struct Interrupt {
    status: AtomicU32,
    irq: Arc<dyn Irq>,
}

impl Interrupt {
    pub fn new(irq: Arc<dyn Irq>) -> Self {
        Self {
            status: AtomicU32::new(0),
            irq,
        }
    }

    /// Marks used-buffer work and raises the line.
    pub fn signal_used_queue(&self) {
        self.signal(INT_USED_RING);
    }

    /// Marks a configuration change (also used for DEVICE_NEEDS_RESET).
    pub fn signal_config_change(&self) {
        self.signal(INT_CONFIG);
    }

    fn signal(&self, bit: u32) {
        self.status.fetch_or(bit, Ordering::SeqCst);
        // Always raise the edge, even if the bit was already set: the guest
        // may have read the status already and be about to acknowledge it.
        self.irq.trigger();
    }

    pub fn status(&self) -> u32 {
        self.status.load(Ordering::SeqCst)
    }

    /// InterruptACK: clears the bits the driver handled.
    pub fn acknowledge(&self, bits: u32) {
        self.status.fetch_and(!bits, Ordering::SeqCst);
    }

    /// Overwrites the status (device reset, snapshot restore).
    pub fn set_status(&self, bits: u32) {
        self.status
            .store(bits & (INT_USED_RING | INT_CONFIG), Ordering::SeqCst);
    }
}
