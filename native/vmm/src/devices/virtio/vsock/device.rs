//! `Vsock`: the virtio-vsock `VirtioDevice`. Queues: rx = 0, tx = 1,
//! event = 2. Config space: `guest_cid` (le64) = 3. Offered features:
//! VERSION_1, RING_INDIRECT_DESC, RING_EVENT_IDX (stream sockets are
//! implied; SEQPACKET is not offered).

use std::sync::Arc;

use super::backend::Shared;
use super::muxer::Active;
use super::persist::{VsockState, VSOCK_STATE_VERSION};
use super::{EV_QUEUE_SIZE, GUEST_CID, RX_QUEUE_SIZE, TX_QUEUE_SIZE};
use crate::devices::virtio::device::{DeviceError, VirtioDevice};
use crate::devices::virtio::interrupt::Interrupt;
use crate::devices::virtio::persist::{RestoreError, VirtioDeviceState};
use crate::devices::virtio::queue::Queue;
use crate::devices::virtio::{
    read_config_bytes, F_RING_EVENT_IDX, F_RING_INDIRECT_DESC, F_VERSION_1, TYPE_VSOCK,
};
use crate::memory::GuestMemory;

pub struct Vsock {
    shared: Arc<Shared>,
    config: [u8; 8],
    features: u64,
    acked_features: u64,
    queue_max_sizes: [u16; 3],
}

impl Vsock {
    pub(super) fn new(shared: Arc<Shared>) -> Self {
        Self {
            shared,
            config: GUEST_CID.to_le_bytes(),
            features: F_VERSION_1 | F_RING_INDIRECT_DESC | F_RING_EVENT_IDX,
            acked_features: 0,
            queue_max_sizes: [RX_QUEUE_SIZE, TX_QUEUE_SIZE, EV_QUEUE_SIZE],
        }
    }

    fn check_queues(&self, queues: &[Queue]) -> Result<(), DeviceError> {
        if queues.len() != self.queue_max_sizes.len() {
            return Err(DeviceError::QueueCount {
                expected: self.queue_max_sizes.len(),
                got: queues.len(),
            });
        }
        Ok(())
    }
}

impl VirtioDevice for Vsock {
    fn device_type(&self) -> u32 {
        TYPE_VSOCK
    }

    fn features(&self) -> u64 {
        self.features
    }

    fn ack_features(&mut self, features: u64) {
        self.acked_features = features & self.features;
    }

    fn read_config(&self, offset: u64, data: &mut [u8]) {
        read_config_bytes(&self.config, offset, data);
    }

    fn write_config(&mut self, _offset: u64, _data: &[u8]) {
        // guest_cid is read-only.
    }

    fn queue_max_sizes(&self) -> &[u16] {
        &self.queue_max_sizes
    }

    fn activate(
        &mut self,
        mem: Arc<GuestMemory>,
        queues: Vec<Queue>,
        interrupt: Arc<Interrupt>,
    ) -> Result<(), DeviceError> {
        self.check_queues(&queues)?;
        self.shared
            .lock()
            .activate(Active::new(mem, queues, interrupt));
        Ok(())
    }

    fn process_queue(&mut self, index: usize) -> Result<(), DeviceError> {
        let mut m = self.shared.lock();
        if !m.is_active() || index >= self.queue_max_sizes.len() {
            return Ok(());
        }
        if let Some(e) = m.broken() {
            return Err(e);
        }
        m.process_queue(index)
    }

    fn reset(&mut self) {
        self.shared.lock().reset();
        self.acked_features = 0;
    }

    fn state(&self) -> VirtioDeviceState {
        let m = self.shared.lock();
        VirtioDeviceState::Vsock(VsockState {
            version: VSOCK_STATE_VERSION,
            guest_cid: GUEST_CID,
            acked_features: self.acked_features,
            activated: m.is_active(),
            queues: m.queue_states(),
            next_host_port: Some(m.next_host_port()),
        })
    }

    fn restore(
        &mut self,
        state: &VirtioDeviceState,
        mem: Arc<GuestMemory>,
        interrupt: Arc<Interrupt>,
    ) -> Result<(), RestoreError> {
        let VirtioDeviceState::Vsock(s) = state else {
            return Err(RestoreError::WrongDevice);
        };
        if s.version != VSOCK_STATE_VERSION {
            return Err(RestoreError::Version {
                what: "virtio-vsock",
                found: s.version,
                supported: VSOCK_STATE_VERSION,
            });
        }
        if s.guest_cid != GUEST_CID {
            return Err(RestoreError::Mismatch(format!(
                "saved guest CID {}, this device has {GUEST_CID}",
                s.guest_cid
            )));
        }
        if s.acked_features & !self.features != 0 {
            return Err(RestoreError::Mismatch(format!(
                "acked features {:#x} not offered ({:#x})",
                s.acked_features, self.features
            )));
        }
        self.acked_features = s.acked_features;
        let mut m = self.shared.lock();
        m.reset();
        if let Some(port) = s.next_host_port {
            m.set_next_host_port(port);
        }
        if s.activated {
            let queues = s
                .queues
                .iter()
                .map(|q| Queue::from_state(q, &mem))
                .collect::<Result<Vec<_>, _>>()?;
            if queues
                .iter()
                .map(Queue::max_size)
                .ne(self.queue_max_sizes.iter().copied())
            {
                return Err(RestoreError::Mismatch(
                    "saved queues do not fit virtio-vsock".into(),
                ));
            }
            m.restore(Active::new(mem, queues, interrupt));
        }
        Ok(())
    }
}
