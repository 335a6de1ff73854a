//! `MmioTransport`: the register file a virtio driver programs, in front of
//! one `VirtioDevice`.
//!
//! Handshake rules enforced here (virtio 1.2 §3.1, §4.2.3):
//! - Status bits are only ever added, in order (ACKNOWLEDGE → DRIVER →
//!   FEATURES_OK → DRIVER_OK); a write that clears bits is ignored, writing
//!   0 resets the device. DEVICE_NEEDS_RESET is the device's bit: the driver
//!   cannot set or clear it except by reset.
//! - DriverFeatures is writable between DRIVER and FEATURES_OK. FEATURES_OK
//!   sticks only if the accepted set is a subset of what the device offers
//!   and includes VIRTIO_F_VERSION_1 (this transport has no legacy mode).
//! - Queue registers are writable between FEATURES_OK and DRIVER_OK, while
//!   the selected queue is not ready. QueueReady = 1 validates the queue
//!   (size a power of two ≤ QueueNumMax, rings aligned and inside RAM); a
//!   bad queue stays not ready and the device reports DEVICE_NEEDS_RESET.
//! - DRIVER_OK activates the device. QueueNotify reaches it only while it
//!   is active and not in DEVICE_NEEDS_RESET; an error from the device sets
//!   DEVICE_NEEDS_RESET and raises a configuration-change interrupt.
//! - Control registers take aligned 32-bit accesses only; anything else
//!   reads as zero and is ignored on write.

use std::fmt;
use std::sync::Arc;

use super::persist::{MmioState, MMIO_STATE_VERSION};
use super::regs::*;
use crate::devices::virtio::interrupt::Interrupt;
use crate::devices::virtio::persist::RestoreError;
use crate::devices::virtio::queue::Queue;
use crate::devices::virtio::status::*;
use crate::devices::virtio::{VirtioDevice, F_VERSION_1};
use crate::devices::{BusDevice, Irq};
use crate::memory::GuestMemory;

/// Size of one device's MMIO window.
pub const WINDOW_SIZE: u64 = 0x1000;

pub struct MmioTransport {
    mem: Arc<GuestMemory>,
    device: Box<dyn VirtioDevice + Send>,
    interrupt: Arc<Interrupt>,
    status: u32,
    device_features_sel: u32,
    driver_features_sel: u32,
    driver_features: u64,
    queue_sel: u32,
    /// The driver's queue configuration as written through the registers;
    /// copies go to the device on DRIVER_OK.
    queues: Vec<Queue>,
    config_generation: u32,
    activated: bool,
}

impl MmioTransport {
    pub fn new(
        mem: Arc<GuestMemory>,
        device: Box<dyn VirtioDevice + Send>,
        irq: Arc<dyn Irq>,
    ) -> Self {
        let queues = device
            .queue_max_sizes()
            .iter()
            .map(|&max| Queue::new(max))
            .collect();
        Self {
            mem,
            device,
            interrupt: Arc::new(Interrupt::new(irq)),
            status: 0,
            device_features_sel: 0,
            driver_features_sel: 0,
            driver_features: 0,
            queue_sel: 0,
            queues,
            config_generation: 0,
            activated: false,
        }
    }

    /// The device's virtio type ID.
    pub fn device_type(&self) -> u32 {
        self.device.device_type()
    }

    /// Transport registers plus the device's own state, for a snapshot.
    pub fn state(&self) -> MmioState {
        MmioState {
            version: MMIO_STATE_VERSION,
            status: self.status,
            device_features_sel: self.device_features_sel,
            driver_features_sel: self.driver_features_sel,
            driver_features: self.driver_features,
            queue_sel: self.queue_sel,
            queues: self.queues.iter().map(Queue::state).collect(),
            interrupt_status: self.interrupt.status(),
            config_generation: self.config_generation,
            activated: self.activated,
            device: self.device.state(),
        }
    }

    /// Rebuilds a transport from a snapshot around a freshly constructed
    /// `device` (same type and backing as when saved). The interrupt status
    /// is restored but not re-raised: the irqchip state carries any pending
    /// edge.
    pub fn restore(
        mem: Arc<GuestMemory>,
        device: Box<dyn VirtioDevice + Send>,
        irq: Arc<dyn Irq>,
        state: &MmioState,
    ) -> Result<Self, RestoreError> {
        if state.version != MMIO_STATE_VERSION {
            return Err(RestoreError::Version {
                what: "virtio-mmio",
                found: state.version,
                supported: MMIO_STATE_VERSION,
            });
        }
        let mut t = Self::new(mem, device, irq);
        let max_sizes = t.device.queue_max_sizes();
        let saved_max: Vec<u16> = state.queues.iter().map(|q| q.max_size).collect();
        if saved_max != max_sizes {
            return Err(RestoreError::Mismatch(format!(
                "queue maximum sizes {saved_max:?}, device has {max_sizes:?}"
            )));
        }
        if state.driver_features & !t.device.features() != 0 {
            return Err(RestoreError::Mismatch(format!(
                "driver features {:#x} not offered by the device ({:#x})",
                state.driver_features,
                t.device.features()
            )));
        }
        t.queues = state
            .queues
            .iter()
            .map(|q| Queue::from_state(q, &t.mem))
            .collect::<Result<_, _>>()?;
        t.status = state.status;
        t.device_features_sel = state.device_features_sel;
        t.driver_features_sel = state.driver_features_sel;
        t.driver_features = state.driver_features;
        t.queue_sel = state.queue_sel;
        t.config_generation = state.config_generation;
        if t.status & FEATURES_OK != 0 {
            t.device.ack_features(t.driver_features);
        }
        t.device
            .restore(&state.device, t.mem.clone(), t.interrupt.clone())?;
        t.activated = state.activated;
        t.interrupt.set_status(state.interrupt_status);
        Ok(t)
    }

    fn selected_queue(&self) -> Option<&Queue> {
        self.queues.get(self.queue_sel as usize)
    }

    fn read_reg(&self, offset: u64) -> u32 {
        match offset {
            MAGIC_VALUE => MAGIC,
            VERSION => MMIO_VERSION,
            DEVICE_ID => self.device.device_type(),
            VENDOR_ID => VENDOR,
            DEVICE_FEATURES => match self.device_features_sel {
                0 => self.device.features() as u32,
                1 => (self.device.features() >> 32) as u32,
                _ => 0,
            },
            QUEUE_NUM_MAX => self.selected_queue().map_or(0, |q| u32::from(q.max_size())),
            QUEUE_READY => self.selected_queue().map_or(0, |q| u32::from(q.ready())),
            INTERRUPT_STATUS => self.interrupt.status(),
            STATUS => self.status,
            // No shared memory regions: length and base read as all ones.
            SHM_LEN_LOW | SHM_LEN_HIGH | SHM_BASE_LOW | SHM_BASE_HIGH => u32::MAX,
            CONFIG_GENERATION => self.config_generation,
            // Write-only registers and holes read as zero.
            _ => 0,
        }
    }

    fn write_reg(&mut self, offset: u64, value: u32) {
        match offset {
            DEVICE_FEATURES_SEL => self.device_features_sel = value,
            DRIVER_FEATURES_SEL => self.driver_features_sel = value,
            DRIVER_FEATURES => self.write_driver_features(value),
            QUEUE_SEL => self.queue_sel = value,
            QUEUE_NUM => {
                // A size that does not fit u16 becomes 0, which enable() rejects.
                let size = u16::try_from(value).unwrap_or(0);
                self.configure_queue(|q| q.set_size(size));
            }
            QUEUE_READY => self.write_queue_ready(value),
            QUEUE_NOTIFY => self.notify(value),
            INTERRUPT_ACK => self.interrupt.acknowledge(value),
            STATUS => self.write_status(value),
            QUEUE_DESC_LOW => {
                self.configure_queue(|q| q.set_desc_table(low(q.desc_table(), value)))
            }
            QUEUE_DESC_HIGH => {
                self.configure_queue(|q| q.set_desc_table(high(q.desc_table(), value)))
            }
            QUEUE_DRIVER_LOW => {
                self.configure_queue(|q| q.set_avail_ring(low(q.avail_ring(), value)))
            }
            QUEUE_DRIVER_HIGH => {
                self.configure_queue(|q| q.set_avail_ring(high(q.avail_ring(), value)))
            }
            QUEUE_DEVICE_LOW => {
                self.configure_queue(|q| q.set_used_ring(low(q.used_ring(), value)))
            }
            QUEUE_DEVICE_HIGH => {
                self.configure_queue(|q| q.set_used_ring(high(q.used_ring(), value)))
            }
            // Read-only registers, QueueReset (VIRTIO_F_RING_RESET is not
            // offered), SHMSel (no regions) and holes: ignored.
            _ => {}
        }
    }

    fn write_driver_features(&mut self, value: u32) {
        if self.status & DRIVER == 0 || self.status & FEATURES_OK != 0 {
            return;
        }
        match self.driver_features_sel {
            0 => self.driver_features = (self.driver_features & !0xffff_ffff) | u64::from(value),
            1 => {
                self.driver_features =
                    (self.driver_features & 0xffff_ffff) | (u64::from(value) << 32)
            }
            _ => {}
        }
    }

    /// Queue registers are only live between FEATURES_OK and DRIVER_OK.
    fn queue_config_open(&self) -> bool {
        self.status & (FEATURES_OK | DRIVER_OK | FAILED | DEVICE_NEEDS_RESET) == FEATURES_OK
    }

    fn configure_queue(&mut self, f: impl FnOnce(&mut Queue)) {
        if !self.queue_config_open() {
            return;
        }
        // Queue setters themselves ignore changes to a ready queue.
        if let Some(q) = self.queues.get_mut(self.queue_sel as usize) {
            f(q);
        }
    }

    fn write_queue_ready(&mut self, value: u32) {
        if !self.queue_config_open() {
            return;
        }
        let index = self.queue_sel as usize;
        let Some(q) = self.queues.get_mut(index) else {
            return;
        };
        if value == 0 {
            q.disable();
            return;
        }
        if let Err(e) = q.enable(&self.mem) {
            self.set_needs_reset(&format_args!("queue {index}: {e}"));
        }
    }

    fn write_status(&mut self, value: u32) {
        if value == 0 {
            self.reset();
            return;
        }
        let needs_reset = self.status & DEVICE_NEEDS_RESET;
        let current = self.status & !DEVICE_NEEDS_RESET;
        let requested = value & !DEVICE_NEEDS_RESET;
        if requested & current != current {
            // Clearing a bit takes a reset.
            return;
        }
        let added = requested & !current;
        let mut next = current;
        if added & ACKNOWLEDGE != 0 {
            next |= ACKNOWLEDGE;
        }
        if added & DRIVER != 0 && next & ACKNOWLEDGE != 0 {
            next |= DRIVER;
        }
        if added & FEATURES_OK != 0 && next & DRIVER != 0 && self.accept_features() {
            next |= FEATURES_OK;
        }
        if added & FAILED != 0 {
            next |= FAILED;
        }
        self.status = next | needs_reset;
        if added & DRIVER_OK != 0 && next & FEATURES_OK != 0 && needs_reset == 0 && self.activate()
        {
            self.status |= DRIVER_OK;
        }
    }

    /// FEATURES_OK: checks and commits the driver's feature choice.
    fn accept_features(&mut self) -> bool {
        let offered = self.device.features();
        let accepted = self.driver_features;
        if accepted & !offered != 0 || accepted & F_VERSION_1 == 0 {
            return false;
        }
        self.device.ack_features(accepted);
        for q in &mut self.queues {
            q.set_features(accepted);
        }
        true
    }

    fn activate(&mut self) -> bool {
        let queues = self.queues.clone();
        match self
            .device
            .activate(self.mem.clone(), queues, self.interrupt.clone())
        {
            Ok(()) => {
                self.activated = true;
                true
            }
            Err(e) => {
                self.set_needs_reset(&e);
                false
            }
        }
    }

    fn notify(&mut self, value: u32) {
        if !self.activated || self.status & DEVICE_NEEDS_RESET != 0 {
            return;
        }
        let index = value as usize;
        if index >= self.queues.len() {
            return;
        }
        if let Err(e) = self.device.process_queue(index) {
            self.set_needs_reset(&e);
        }
    }

    /// The device cannot go on until the driver resets it.
    fn set_needs_reset(&mut self, why: &dyn fmt::Display) {
        if self.status & DEVICE_NEEDS_RESET != 0 {
            return;
        }
        // Once per reset cycle, so a hostile guest cannot flood the log.
        eprintln!(
            "stasis-vmm: virtio device type {}: {why}; device needs reset",
            self.device.device_type()
        );
        self.status |= DEVICE_NEEDS_RESET;
        if self.status & DRIVER_OK != 0 {
            self.interrupt.signal_config_change();
        }
    }

    fn reset(&mut self) {
        self.device.reset();
        self.activated = false;
        self.status = 0;
        self.device_features_sel = 0;
        self.driver_features_sel = 0;
        self.driver_features = 0;
        self.queue_sel = 0;
        for q in &mut self.queues {
            q.reset();
        }
        self.interrupt.set_status(0);
    }
}

fn low(old: u64, value: u32) -> u64 {
    (old & !0xffff_ffff) | u64::from(value)
}

fn high(old: u64, value: u32) -> u64 {
    (old & 0xffff_ffff) | (u64::from(value) << 32)
}

impl BusDevice for MmioTransport {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        if offset >= CONFIG {
            self.device.read_config(offset - CONFIG, data);
            return;
        }
        if data.len() != 4 || offset % 4 != 0 {
            data.fill(0);
            return;
        }
        data.copy_from_slice(&self.read_reg(offset).to_le_bytes());
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        if offset >= CONFIG {
            self.device.write_config(offset - CONFIG, data);
            return;
        }
        let Ok(bytes) = <[u8; 4]>::try_from(data) else {
            return;
        };
        if offset % 4 != 0 {
            return;
        }
        self.write_reg(offset, u32::from_le_bytes(bytes));
    }
}
