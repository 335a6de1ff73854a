//! `Block`: the virtio-blk device model.
//!
//! One request queue of `QUEUE_SIZE`. Offered features: VERSION_1,
//! RING_INDIRECT_DESC, RING_EVENT_IDX, SEG_MAX, FLUSH, and RO for a
//! read-only disk. Requests are served synchronously, in ring order, on the
//! thread that delivered the notification.

use std::io;
use std::path::Path;
use std::sync::Arc;

use super::disk::Disk;
use super::persist::{BlockState, BLOCK_STATE_VERSION};
use super::{request, F_FLUSH, F_RO, F_SEG_MAX, ID_BYTES};
use crate::devices::virtio::device::{DeviceError, VirtioDevice};
use crate::devices::virtio::interrupt::Interrupt;
use crate::devices::virtio::persist::{RestoreError, VirtioDeviceState};
use crate::devices::virtio::queue::{DescriptorChain, Queue};
use crate::devices::virtio::{
    read_config_bytes, F_RING_EVENT_IDX, F_RING_INDIRECT_DESC, F_VERSION_1, TYPE_BLOCK,
};
use crate::memory::GuestMemory;

/// Descriptors per request queue.
pub const QUEUE_SIZE: u16 = 256;

/// Config space bytes we expose: capacity (0..8), size_max (8..12),
/// seg_max (12..16) and the remaining struct virtio_blk_config fields up
/// to write_zeroes, all zero as their features are not offered.
const CONFIG_LEN: usize = 60;
const CONFIG_CAPACITY: usize = 0;
const CONFIG_SEG_MAX: usize = 12;

pub struct Block {
    disk: Disk,
    id: [u8; ID_BYTES],
    config: [u8; CONFIG_LEN],
    features: u64,
    acked_features: u64,
    queue_max_sizes: [u16; 1],
    active: Option<Active>,
    /// Reused for every popped chain, so steady-state requests allocate
    /// nothing.
    chain: DescriptorChain,
}

/// What the device holds between DRIVER_OK and reset.
struct Active {
    mem: Arc<GuestMemory>,
    interrupt: Arc<Interrupt>,
    queues: Vec<Queue>,
}

impl Block {
    /// A virtio-blk device over the file or block device at `path`.
    pub fn new(path: &Path, read_only: bool) -> io::Result<Block> {
        let disk = Disk::open(path, read_only)?;
        let id = disk.serial()?;
        let mut config = [0u8; CONFIG_LEN];
        config[CONFIG_CAPACITY..CONFIG_CAPACITY + 8]
            .copy_from_slice(&disk.capacity().to_le_bytes());
        // Data segments per request: the chain also carries header and status.
        let seg_max = u32::from(QUEUE_SIZE) - 2;
        config[CONFIG_SEG_MAX..CONFIG_SEG_MAX + 4].copy_from_slice(&seg_max.to_le_bytes());
        let mut features =
            F_VERSION_1 | F_RING_INDIRECT_DESC | F_RING_EVENT_IDX | F_SEG_MAX | F_FLUSH;
        if read_only {
            features |= F_RO;
        }
        Ok(Block {
            disk,
            id,
            config,
            features,
            acked_features: 0,
            queue_max_sizes: [QUEUE_SIZE],
            active: None,
            chain: DescriptorChain::default(),
        })
    }

    /// Capacity in 512-byte sectors.
    pub fn capacity(&self) -> u64 {
        self.disk.capacity()
    }

    pub fn read_only(&self) -> bool {
        self.disk.read_only()
    }

    /// The GET_ID answer (NUL-padded).
    pub fn id(&self) -> &[u8; ID_BYTES] {
        &self.id
    }
}

/// Serves every available request on `queue`, re-arming notifications when
/// the ring runs dry. Sets `completed` once anything was put in the used
/// ring.
fn drain(
    queue: &mut Queue,
    mem: &GuestMemory,
    disk: &Disk,
    id: &[u8; ID_BYTES],
    chain: &mut DescriptorChain,
    completed: &mut bool,
) -> Result<(), DeviceError> {
    loop {
        if !queue.pop_into(mem, chain)? {
            if queue.enable_notification(mem)? {
                continue;
            }
            return Ok(());
        }
        let used_len = request::execute(disk, id, mem, chain)?;
        queue.add_used(mem, chain.head, used_len)?;
        *completed = true;
    }
}

impl VirtioDevice for Block {
    fn device_type(&self) -> u32 {
        TYPE_BLOCK
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
        // Nothing writable: `writeback` needs VIRTIO_BLK_F_CONFIG_WCE.
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
        if queues.len() != self.queue_max_sizes.len() {
            return Err(DeviceError::QueueCount {
                expected: self.queue_max_sizes.len(),
                got: queues.len(),
            });
        }
        self.active = Some(Active {
            mem,
            interrupt,
            queues,
        });
        Ok(())
    }

    fn process_queue(&mut self, index: usize) -> Result<(), DeviceError> {
        let Some(active) = self.active.as_mut() else {
            return Ok(());
        };
        let Some(queue) = active.queues.get_mut(index) else {
            return Ok(());
        };
        if !queue.ready() {
            return Ok(());
        }
        let mem = &*active.mem;
        let mut completed = false;
        let drained = drain(
            queue,
            mem,
            &self.disk,
            &self.id,
            &mut self.chain,
            &mut completed,
        );
        // Requests completed before an error still get their interrupt.
        let notify = if completed {
            queue.needs_notification(mem)
        } else {
            Ok(false)
        };
        if let Ok(true) = notify {
            active.interrupt.signal_used_queue();
        }
        drained?;
        notify?;
        Ok(())
    }

    fn reset(&mut self) {
        self.active = None;
        self.acked_features = 0;
    }

    fn state(&self) -> VirtioDeviceState {
        let id_len = self.id.iter().position(|&b| b == 0).unwrap_or(ID_BYTES);
        VirtioDeviceState::Block(BlockState {
            version: BLOCK_STATE_VERSION,
            capacity: self.disk.capacity(),
            read_only: self.disk.read_only(),
            id: String::from_utf8_lossy(&self.id[..id_len]).into_owned(),
            acked_features: self.acked_features,
            activated: self.active.is_some(),
            queues: self
                .active
                .as_ref()
                .map_or_else(Vec::new, |a| a.queues.iter().map(Queue::state).collect()),
        })
    }

    fn restore(
        &mut self,
        state: &VirtioDeviceState,
        mem: Arc<GuestMemory>,
        interrupt: Arc<Interrupt>,
    ) -> Result<(), RestoreError> {
        #[allow(irrefutable_let_patterns)] // more device kinds will join the enum
        let VirtioDeviceState::Block(s) = state
        else {
            return Err(RestoreError::WrongDevice);
        };
        if s.version != BLOCK_STATE_VERSION {
            return Err(RestoreError::Version {
                what: "virtio-blk",
                found: s.version,
                supported: BLOCK_STATE_VERSION,
            });
        }
        if s.capacity != self.disk.capacity() || s.read_only != self.disk.read_only() {
            return Err(RestoreError::Mismatch(format!(
                "saved disk had {} sectors (read_only {}), this one {} (read_only {})",
                s.capacity,
                s.read_only,
                self.disk.capacity(),
                self.disk.read_only()
            )));
        }
        if s.acked_features & !self.features != 0 {
            return Err(RestoreError::Mismatch(format!(
                "acked features {:#x} not offered ({:#x})",
                s.acked_features, self.features
            )));
        }
        let mut id = [0u8; ID_BYTES];
        let n = s.id.len().min(ID_BYTES);
        id[..n].copy_from_slice(&s.id.as_bytes()[..n]);
        self.id = id;
        self.acked_features = s.acked_features;
        self.active = None;
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
                    "saved queues do not fit virtio-blk".into(),
                ));
            }
            self.activate(mem, queues, interrupt)
                .map_err(|e| RestoreError::Mismatch(e.to_string()))?;
        }
        Ok(())
    }
}
