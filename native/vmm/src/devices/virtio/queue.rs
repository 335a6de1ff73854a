//! The split virtqueue (virtio 1.2 §2.7), device side.
//!
//! The guest owns the rings and may write anything into them at any time, so
//! nothing read from them is trusted: ring placement is checked when the
//! driver enables the queue, every descriptor index is checked against the
//! table it indexes, chains are bounded (a loop ends as an error, not a
//! hang), indirect tables are checked for size and placement, and all reads
//! and writes go through `GuestMemory`'s checked accessors. A bad chain is
//! reported as a `QueueError`; the device decides what that costs (virtio-blk
//! sets DEVICE_NEEDS_RESET through the transport).
//!
//! Supported ring features: VIRTIO_RING_F_INDIRECT_DESC (a table may end a
//! chain of direct descriptors, never nest) and VIRTIO_RING_F_EVENT_IDX
//! (used_event/avail_event notification suppression).

use std::fmt;
use std::sync::atomic::{fence, Ordering};

use serde::{Deserialize, Serialize};

use super::{F_RING_EVENT_IDX, F_RING_INDIRECT_DESC};
use crate::memory::{GuestMemory, OutOfBounds, Pod};

pub const DESC_F_NEXT: u16 = 1;
pub const DESC_F_WRITE: u16 = 2;
pub const DESC_F_INDIRECT: u16 = 4;
pub const AVAIL_F_NO_INTERRUPT: u16 = 1;

/// Largest queue size a split ring can have.
pub const MAX_QUEUE_SIZE: u16 = 32768;

const DESC_SIZE: u64 = 16;

/// One entry of a descriptor table, as the guest lays it out (little endian).
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct RawDescriptor {
    addr: u64,
    len: u32,
    flags: u16,
    next: u16,
}

// SAFETY: repr(C), four integer fields with no padding (8+4+2+2 = 16 bytes);
// every bit pattern is a valid value.
unsafe impl Pod for RawDescriptor {}

/// A buffer of a chain: guest address, length, and whether the device may
/// write it (VIRTQ_DESC_F_WRITE). The range is not yet checked against RAM;
/// users access it only through `GuestMemory`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Descriptor {
    pub addr: u64,
    pub len: u32,
    pub writable: bool,
}

/// A descriptor chain popped from the available ring, indirect tables
/// already flattened: device-readable buffers first, then device-writable.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DescriptorChain {
    /// Head index, to hand back in the used ring.
    pub head: u16,
    pub descriptors: Vec<Descriptor>,
}

impl DescriptorChain {
    pub fn readable_len(&self) -> u64 {
        self.descriptors
            .iter()
            .filter(|d| !d.writable)
            .map(|d| u64::from(d.len))
            .sum()
    }

    pub fn writable_len(&self) -> u64 {
        self.descriptors
            .iter()
            .filter(|d| d.writable)
            .map(|d| u64::from(d.len))
            .sum()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueError {
    /// Queue size zero, above the maximum, or not a power of two.
    InvalidSize { size: u16, max: u16 },
    /// A ring area not aligned as the split-ring format requires.
    Misaligned { area: &'static str, addr: u64 },
    /// A ring area or indirect table not entirely inside guest RAM.
    OutsideRam {
        area: &'static str,
        addr: u64,
        len: u64,
    },
    /// avail.idx moved more than a queue's worth past what we consumed.
    AvailIndexJump { next_avail: u16, avail_idx: u16 },
    /// A chain head or `next` field that is not an index into its table.
    IndexOutOfRange { index: u16, table_size: u16 },
    /// A chain longer than its table: a loop, or a driver bug.
    ChainTooLong,
    /// INDIRECT used without VIRTIO_RING_F_INDIRECT_DESC negotiated.
    IndirectNotNegotiated,
    /// INDIRECT together with NEXT, which the spec forbids.
    IndirectWithNext,
    /// An indirect table containing an INDIRECT descriptor.
    NestedIndirect,
    /// An indirect table whose length is zero, not a multiple of 16 or
    /// longer than the queue's maximum size in entries.
    BadIndirectLength(u32),
    /// A device-readable buffer after a device-writable one.
    ReadableAfterWritable,
    /// A used element for a head that is not in the table (device bug).
    BadUsedHead(u16),
    /// Ring access outside RAM after the queue was validated (cannot happen
    /// with fixed RAM, reported rather than assumed).
    Memory(OutOfBounds),
}

impl fmt::Display for QueueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidSize { size, max } => {
                write!(f, "queue size {size} is not a power of two in 1..={max}")
            }
            Self::Misaligned { area, addr } => write!(f, "{area} at {addr:#x} is misaligned"),
            Self::OutsideRam { area, addr, len } => {
                write!(f, "{area} at {addr:#x}+{len:#x} is outside guest RAM")
            }
            Self::AvailIndexJump {
                next_avail,
                avail_idx,
            } => {
                write!(
                    f,
                    "avail idx {avail_idx} is more than a queue ahead of {next_avail}"
                )
            }
            Self::IndexOutOfRange { index, table_size } => {
                write!(
                    f,
                    "descriptor index {index} outside a table of {table_size}"
                )
            }
            Self::ChainTooLong => write!(f, "descriptor chain longer than its table (loop?)"),
            Self::IndirectNotNegotiated => write!(f, "indirect descriptor not negotiated"),
            Self::IndirectWithNext => write!(f, "indirect descriptor with NEXT set"),
            Self::NestedIndirect => write!(f, "indirect descriptor inside an indirect table"),
            Self::BadIndirectLength(len) => write!(f, "indirect table length {len:#x} invalid"),
            Self::ReadableAfterWritable => {
                write!(f, "device-readable descriptor after a device-writable one")
            }
            Self::BadUsedHead(head) => write!(f, "used element for invalid head {head}"),
            Self::Memory(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for QueueError {}

impl From<OutOfBounds> for QueueError {
    fn from(e: OutOfBounds) -> Self {
        Self::Memory(e)
    }
}

/// One split virtqueue: the driver's configuration (size, ring addresses)
/// plus the device's progress through it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queue {
    max_size: u16,
    size: u16,
    ready: bool,
    desc_table: u64,
    avail_ring: u64,
    used_ring: u64,
    /// Next avail ring slot (free-running, mod 2^16) the device will read.
    next_avail: u16,
    /// Next used ring slot (free-running) the device will write; also the
    /// value last published in used.idx.
    next_used: u16,
    event_idx: bool,
    indirect: bool,
    /// used.idx at the last notification decision (EVENT_IDX); None forces
    /// the next decision to notify.
    signalled_used: Option<u16>,
}

impl Queue {
    /// A queue the driver has not configured yet; QueueNum defaults to the
    /// maximum. `max_size` must be a power of two in 1..=32768.
    pub fn new(max_size: u16) -> Self {
        debug_assert!(max_size.is_power_of_two() && max_size <= MAX_QUEUE_SIZE);
        Self {
            max_size,
            size: max_size,
            ready: false,
            desc_table: 0,
            avail_ring: 0,
            used_ring: 0,
            next_avail: 0,
            next_used: 0,
            event_idx: false,
            indirect: false,
            signalled_used: None,
        }
    }

    pub fn max_size(&self) -> u16 {
        self.max_size
    }
    pub fn size(&self) -> u16 {
        self.size
    }
    pub fn ready(&self) -> bool {
        self.ready
    }
    pub fn desc_table(&self) -> u64 {
        self.desc_table
    }
    pub fn avail_ring(&self) -> u64 {
        self.avail_ring
    }
    pub fn used_ring(&self) -> u64 {
        self.used_ring
    }
    pub fn next_avail(&self) -> u16 {
        self.next_avail
    }
    pub fn next_used(&self) -> u16 {
        self.next_used
    }
    pub fn event_idx(&self) -> bool {
        self.event_idx
    }

    // Configuration setters: ignored while the queue is enabled, as the
    // driver must not change a live queue.

    pub fn set_size(&mut self, size: u16) {
        if !self.ready {
            self.size = size;
        }
    }
    pub fn set_desc_table(&mut self, addr: u64) {
        if !self.ready {
            self.desc_table = addr;
        }
    }
    pub fn set_avail_ring(&mut self, addr: u64) {
        if !self.ready {
            self.avail_ring = addr;
        }
    }
    pub fn set_used_ring(&mut self, addr: u64) {
        if !self.ready {
            self.used_ring = addr;
        }
    }

    /// Applies the negotiated feature set (EVENT_IDX, INDIRECT_DESC).
    pub fn set_features(&mut self, features: u64) {
        self.event_idx = features & F_RING_EVENT_IDX != 0;
        self.indirect = features & F_RING_INDIRECT_DESC != 0;
    }

    /// Checks size and ring placement against guest RAM.
    pub fn validate(&self, mem: &GuestMemory) -> Result<(), QueueError> {
        let size = self.size;
        if size == 0 || size > self.max_size || !size.is_power_of_two() {
            return Err(QueueError::InvalidSize {
                size,
                max: self.max_size,
            });
        }
        let n = u64::from(size);
        // (area, address, alignment, length incl. the event-idx word)
        let areas = [
            ("descriptor table", self.desc_table, 16, DESC_SIZE * n),
            ("available ring", self.avail_ring, 2, 6 + 2 * n),
            ("used ring", self.used_ring, 4, 6 + 8 * n),
        ];
        for (area, addr, align, len) in areas {
            if addr % align != 0 {
                return Err(QueueError::Misaligned { area, addr });
            }
            if !mem.contains(addr, len) {
                return Err(QueueError::OutsideRam { area, addr, len });
            }
        }
        Ok(())
    }

    /// QueueReady = 1: validates, then enables. A queue that is ready is
    /// always a valid one.
    pub fn enable(&mut self, mem: &GuestMemory) -> Result<(), QueueError> {
        self.validate(mem)?;
        self.ready = true;
        Ok(())
    }

    /// QueueReady = 0.
    pub fn disable(&mut self) {
        self.ready = false;
    }

    /// Back to the state after construction (device reset).
    pub fn reset(&mut self) {
        *self = Self::new(self.max_size);
    }

    fn avail_slot_addr(&self, slot: u16) -> u64 {
        self.avail_ring + 4 + 2 * u64::from(slot & (self.size - 1))
    }
    fn used_event_addr(&self) -> u64 {
        self.avail_ring + 4 + 2 * u64::from(self.size)
    }
    fn used_elem_addr(&self, slot: u16) -> u64 {
        self.used_ring + 4 + 8 * u64::from(slot & (self.size - 1))
    }
    fn avail_event_addr(&self) -> u64 {
        self.used_ring + 4 + 8 * u64::from(self.size)
    }

    /// The driver's avail.idx.
    pub fn avail_idx(&self, mem: &GuestMemory) -> Result<u16, QueueError> {
        Ok(mem.read_u16(self.avail_ring + 2)?)
    }

    /// Pops the next available chain; `None` when the ring is empty or the
    /// queue is not enabled.
    pub fn pop(&mut self, mem: &GuestMemory) -> Result<Option<DescriptorChain>, QueueError> {
        let mut chain = DescriptorChain::default();
        Ok(self.pop_into(mem, &mut chain)?.then_some(chain))
    }

    /// Like `pop`, reusing `chain`'s allocation. Returns false when there is
    /// nothing to pop. On an error the slot is consumed all the same, so a
    /// bad chain is never retried.
    pub fn pop_into(
        &mut self,
        mem: &GuestMemory,
        chain: &mut DescriptorChain,
    ) -> Result<bool, QueueError> {
        if !self.ready {
            return Ok(false);
        }
        let avail_idx = self.avail_idx(mem)?;
        let pending = avail_idx.wrapping_sub(self.next_avail);
        if pending == 0 {
            return Ok(false);
        }
        if pending > self.size {
            return Err(QueueError::AvailIndexJump {
                next_avail: self.next_avail,
                avail_idx,
            });
        }
        let head = mem.read_u16(self.avail_slot_addr(self.next_avail))?;
        self.next_avail = self.next_avail.wrapping_add(1);
        chain.head = head;
        chain.descriptors.clear();
        self.walk(mem, head, chain)?;
        Ok(true)
    }

    fn read_descriptor(
        mem: &GuestMemory,
        table: u64,
        index: u16,
    ) -> Result<RawDescriptor, QueueError> {
        let raw: RawDescriptor = mem.read_obj(table + DESC_SIZE * u64::from(index))?;
        Ok(RawDescriptor {
            addr: u64::from_le(raw.addr),
            len: u32::from_le(raw.len),
            flags: u16::from_le(raw.flags),
            next: u16::from_le(raw.next),
        })
    }

    fn push(chain: &mut DescriptorChain, d: &RawDescriptor) -> Result<(), QueueError> {
        let writable = d.flags & DESC_F_WRITE != 0;
        if !writable && chain.descriptors.last().map_or(false, |p| p.writable) {
            return Err(QueueError::ReadableAfterWritable);
        }
        chain.descriptors.push(Descriptor {
            addr: d.addr,
            len: d.len,
            writable,
        });
        Ok(())
    }

    /// Follows a chain through the descriptor table, at most `size` steps,
    /// then at most one indirect table at its end.
    fn walk(
        &self,
        mem: &GuestMemory,
        head: u16,
        chain: &mut DescriptorChain,
    ) -> Result<(), QueueError> {
        if head >= self.size {
            return Err(QueueError::IndexOutOfRange {
                index: head,
                table_size: self.size,
            });
        }
        let mut index = head;
        for _ in 0..self.size {
            let d = Self::read_descriptor(mem, self.desc_table, index)?;
            if d.flags & DESC_F_INDIRECT != 0 {
                if !self.indirect {
                    return Err(QueueError::IndirectNotNegotiated);
                }
                if d.flags & DESC_F_NEXT != 0 {
                    return Err(QueueError::IndirectWithNext);
                }
                return self.walk_indirect(mem, d.addr, d.len, chain);
            }
            Self::push(chain, &d)?;
            if d.flags & DESC_F_NEXT == 0 {
                return Ok(());
            }
            if d.next >= self.size {
                return Err(QueueError::IndexOutOfRange {
                    index: d.next,
                    table_size: self.size,
                });
            }
            index = d.next;
        }
        Err(QueueError::ChainTooLong)
    }

    fn walk_indirect(
        &self,
        mem: &GuestMemory,
        table: u64,
        len: u32,
        chain: &mut DescriptorChain,
    ) -> Result<(), QueueError> {
        let entries = u64::from(len) / DESC_SIZE;
        if len == 0 || u64::from(len) % DESC_SIZE != 0 || entries > u64::from(self.max_size) {
            return Err(QueueError::BadIndirectLength(len));
        }
        if !mem.contains(table, u64::from(len)) {
            return Err(QueueError::OutsideRam {
                area: "indirect table",
                addr: table,
                len: u64::from(len),
            });
        }
        let entries = entries as u16; // <= max_size <= 32768
        let mut index = 0u16;
        for _ in 0..entries {
            let d = Self::read_descriptor(mem, table, index)?;
            if d.flags & DESC_F_INDIRECT != 0 {
                return Err(QueueError::NestedIndirect);
            }
            Self::push(chain, &d)?;
            if d.flags & DESC_F_NEXT == 0 {
                return Ok(());
            }
            if d.next >= entries {
                return Err(QueueError::IndexOutOfRange {
                    index: d.next,
                    table_size: entries,
                });
            }
            index = d.next;
        }
        Err(QueueError::ChainTooLong)
    }

    /// Publishes a used element: `len` is the number of bytes the device
    /// wrote into the chain's device-writable buffers.
    pub fn add_used(&mut self, mem: &GuestMemory, head: u16, len: u32) -> Result<(), QueueError> {
        if !self.ready || head >= self.size {
            return Err(QueueError::BadUsedHead(head));
        }
        let elem = self.used_elem_addr(self.next_used);
        let packed = u64::from(u32::from(head)) | (u64::from(len) << 32);
        mem.write_obj::<u64>(elem, packed.to_le())?;
        self.next_used = self.next_used.wrapping_add(1);
        // write_u16 fences (release) before storing: the element is visible
        // before the index that publishes it.
        mem.write_u16(self.used_ring + 2, self.next_used)?;
        Ok(())
    }

    /// Call when `pop` found the ring empty. Under EVENT_IDX, asks the
    /// driver to notify on its next buffer (avail_event), then re-checks the
    /// ring to close the race with a driver that added one meanwhile.
    /// Returns true when more buffers are available after all.
    /// Asks the driver to notify as soon as it makes one more buffer
    /// available, however many it already has (`enable_notification` only
    /// asks once the device has caught up). Returns the avail.idx now.
    pub fn notify_on_next_avail(&mut self, mem: &GuestMemory) -> Result<u16, QueueError> {
        let idx = self.avail_idx(mem)?;
        if self.ready && self.event_idx {
            mem.write_u16(self.avail_event_addr(), idx)?;
            fence(Ordering::SeqCst);
        }
        Ok(idx)
    }

    pub fn enable_notification(&mut self, mem: &GuestMemory) -> Result<bool, QueueError> {
        if !self.ready {
            return Ok(false);
        }
        if self.event_idx {
            mem.write_u16(self.avail_event_addr(), self.next_avail)?;
            fence(Ordering::SeqCst);
        }
        Ok(self.avail_idx(mem)? != self.next_avail)
    }

    /// Whether the driver wants an interrupt for the used elements added
    /// since the last call (used_event under EVENT_IDX, else the
    /// NO_INTERRUPT flag).
    pub fn needs_notification(&mut self, mem: &GuestMemory) -> Result<bool, QueueError> {
        if !self.ready {
            return Ok(false);
        }
        // The used.idx store must be visible before we read the driver's
        // suppression state, or both sides can decide not to act.
        fence(Ordering::SeqCst);
        let new = self.next_used;
        if self.event_idx {
            let used_event = mem.read_u16(self.used_event_addr())?;
            let old = self.signalled_used.replace(new);
            Ok(match old {
                // Notify if used_event lies in (old, new].
                Some(old) => new.wrapping_sub(used_event).wrapping_sub(1) < new.wrapping_sub(old),
                None => true,
            })
        } else {
            let flags = mem.read_u16(self.avail_ring)?;
            Ok(flags & AVAIL_F_NO_INTERRUPT == 0)
        }
    }

    pub fn state(&self) -> QueueState {
        QueueState {
            max_size: self.max_size,
            size: self.size,
            ready: self.ready,
            desc_table: self.desc_table,
            avail_ring: self.avail_ring,
            used_ring: self.used_ring,
            next_avail: self.next_avail,
            next_used: self.next_used,
            event_idx: self.event_idx,
            indirect: self.indirect,
            signalled_used: self.signalled_used,
        }
    }

    /// Rebuilds a queue from a snapshot, re-validating an enabled one against
    /// this guest's RAM.
    pub fn from_state(state: &QueueState, mem: &GuestMemory) -> Result<Self, QueueError> {
        let max = state.max_size;
        if max == 0 || !max.is_power_of_two() || max > MAX_QUEUE_SIZE {
            return Err(QueueError::InvalidSize {
                size: max,
                max: MAX_QUEUE_SIZE,
            });
        }
        let q = Self {
            max_size: max,
            size: state.size,
            ready: state.ready,
            desc_table: state.desc_table,
            avail_ring: state.avail_ring,
            used_ring: state.used_ring,
            next_avail: state.next_avail,
            next_used: state.next_used,
            event_idx: state.event_idx,
            indirect: state.indirect,
            signalled_used: state.signalled_used,
        };
        if q.ready {
            q.validate(mem)?;
        }
        Ok(q)
    }
}

/// Serialisable queue configuration and progress, for snapshots. Ring
/// contents live in guest memory and travel with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueState {
    pub max_size: u16,
    pub size: u16,
    pub ready: bool,
    pub desc_table: u64,
    pub avail_ring: u64,
    pub used_ring: u64,
    pub next_avail: u16,
    pub next_used: u16,
    pub event_idx: bool,
    pub indirect: bool,
    pub signalled_used: Option<u16>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::virtio::test_utils::SplitRing;

    fn setup(size: u16, features: u64) -> (GuestMemory, Queue, SplitRing) {
        let mem = GuestMemory::new(0x10_0000).unwrap();
        let ring = SplitRing::new(size, 0x1000, 0x4000, 0x6000);
        let mut q = Queue::new(256);
        q.set_size(size);
        q.set_desc_table(ring.desc);
        q.set_avail_ring(ring.avail);
        q.set_used_ring(ring.used);
        q.set_features(features);
        q.enable(&mem).unwrap();
        (mem, q, ring)
    }

    #[test]
    fn rejects_bad_sizes_and_placements() {
        let mem = GuestMemory::new(0x10000).unwrap();
        let mut q = Queue::new(256);
        q.set_desc_table(0x1000);
        q.set_avail_ring(0x3000);
        q.set_used_ring(0x4000);
        for size in [0u16, 3, 100, 512] {
            q.set_size(size);
            assert!(
                matches!(q.enable(&mem), Err(QueueError::InvalidSize { .. })),
                "{size}"
            );
            assert!(!q.ready());
        }
        q.set_size(256);
        q.set_desc_table(0x1008);
        assert!(matches!(q.enable(&mem), Err(QueueError::Misaligned { .. })));
        q.set_desc_table(0x1000);
        q.set_used_ring(0x4002);
        assert!(matches!(q.enable(&mem), Err(QueueError::Misaligned { .. })));
        q.set_used_ring(0xfc00); // 6 + 8*256 bytes do not fit below 0x10000
        assert!(matches!(q.enable(&mem), Err(QueueError::OutsideRam { .. })));
        q.set_used_ring(u64::MAX - 3);
        assert!(matches!(q.enable(&mem), Err(QueueError::OutsideRam { .. })));
        q.set_used_ring(0x4000);
        q.enable(&mem).unwrap();
        // A live queue ignores reconfiguration.
        q.set_size(2);
        assert_eq!(q.size(), 256);
    }

    #[test]
    fn pops_chains_in_order_and_wraps_indices() {
        let (mem, mut q, mut ring) = setup(4, 0);
        // Start just below the u16 wrap.
        let mut st = q.state();
        st.next_avail = 0xfffe;
        st.next_used = 0xfffe;
        q = Queue::from_state(&st, &mem).unwrap();
        ring.avail_idx = 0xfffe;
        ring.set_avail_idx(&mem);
        for i in 0..3u16 {
            let head = ring.add_chain(
                &mem,
                &[
                    (0x8000 + u64::from(i) * 0x100, 0x10, false),
                    (0x9000, 1, true),
                ],
            );
            ring.publish(&mem, head);
            let chain = q.pop(&mem).unwrap().unwrap();
            assert_eq!(chain.head, head);
            assert_eq!(chain.descriptors.len(), 2);
            assert_eq!(chain.readable_len(), 0x10);
            assert_eq!(chain.writable_len(), 1);
            q.add_used(&mem, head, 1).unwrap();
            ring.free_all();
        }
        assert!(q.pop(&mem).unwrap().is_none());
        assert_eq!(q.next_avail(), 1);
        assert_eq!(ring.used_idx(&mem), 1);
        let (id, len) = ring.used_elem(&mem, 0);
        assert_eq!((id, len), (0, 1));
    }

    #[test]
    fn rejects_out_of_range_head_next_and_index_jumps() {
        let (mem, mut q, mut ring) = setup(4, 0);
        ring.publish(&mem, 7);
        assert_eq!(
            q.pop(&mem),
            Err(QueueError::IndexOutOfRange {
                index: 7,
                table_size: 4
            })
        );
        ring.write_desc(&mem, 0, 0x8000, 16, DESC_F_NEXT, 9);
        ring.publish(&mem, 0);
        assert_eq!(
            q.pop(&mem),
            Err(QueueError::IndexOutOfRange {
                index: 9,
                table_size: 4
            })
        );
        ring.avail_idx = ring.avail_idx.wrapping_add(5);
        ring.set_avail_idx(&mem);
        assert!(matches!(
            q.pop(&mem),
            Err(QueueError::AvailIndexJump { .. })
        ));
    }

    #[test]
    fn stops_descriptor_loops() {
        let (mem, mut q, mut ring) = setup(8, 0);
        ring.write_desc(&mem, 0, 0x8000, 16, DESC_F_NEXT, 1);
        ring.write_desc(&mem, 1, 0x8000, 16, DESC_F_NEXT, 0);
        ring.publish(&mem, 0);
        assert_eq!(q.pop(&mem), Err(QueueError::ChainTooLong));
        // A self-loop.
        ring.write_desc(&mem, 2, 0x8000, 16, DESC_F_NEXT, 2);
        ring.publish(&mem, 2);
        assert_eq!(q.pop(&mem), Err(QueueError::ChainTooLong));
    }

    #[test]
    fn rejects_readable_after_writable() {
        let (mem, mut q, mut ring) = setup(8, 0);
        let head = ring.add_chain(&mem, &[(0x8000, 1, true), (0x8100, 16, false)]);
        ring.publish(&mem, head);
        assert_eq!(q.pop(&mem), Err(QueueError::ReadableAfterWritable));
    }

    #[test]
    fn indirect_tables_are_flattened_and_checked() {
        let (mem, mut q, mut ring) = setup(8, F_RING_INDIRECT_DESC);
        // A direct descriptor followed by a two-entry indirect table.
        let table = 0xa000;
        SplitRing::write_desc_at(&mem, table, 0, 0x8010, 8, DESC_F_NEXT, 1);
        SplitRing::write_desc_at(&mem, table, 1, 0x9000, 1, DESC_F_WRITE, 0);
        ring.write_desc(&mem, 0, 0x8000, 8, DESC_F_NEXT, 1);
        ring.write_desc(&mem, 1, table, 32, DESC_F_INDIRECT, 0);
        ring.publish(&mem, 0);
        let chain = q.pop(&mem).unwrap().unwrap();
        assert_eq!(
            chain.descriptors,
            vec![
                Descriptor {
                    addr: 0x8000,
                    len: 8,
                    writable: false
                },
                Descriptor {
                    addr: 0x8010,
                    len: 8,
                    writable: false
                },
                Descriptor {
                    addr: 0x9000,
                    len: 1,
                    writable: true
                },
            ]
        );

        let bad = [
            (
                table,
                24,
                DESC_F_INDIRECT,
                QueueError::BadIndirectLength(24),
            ),
            (table, 0, DESC_F_INDIRECT, QueueError::BadIndirectLength(0)),
            (
                table,
                16 * 300,
                DESC_F_INDIRECT,
                QueueError::BadIndirectLength(16 * 300),
            ),
            (
                table,
                32,
                DESC_F_INDIRECT | DESC_F_NEXT,
                QueueError::IndirectWithNext,
            ),
        ];
        for (addr, len, flags, err) in bad {
            ring.write_desc(&mem, 2, addr, len, flags, 3);
            ring.publish(&mem, 2);
            assert_eq!(q.pop(&mem), Err(err));
        }
        ring.write_desc(&mem, 2, 0xff_fff0, 32, DESC_F_INDIRECT, 0);
        ring.publish(&mem, 2);
        assert!(matches!(q.pop(&mem), Err(QueueError::OutsideRam { .. })));

        // Nested table, loop inside a table, next outside a table.
        SplitRing::write_desc_at(&mem, table, 0, table, 32, DESC_F_INDIRECT, 0);
        ring.write_desc(&mem, 2, table, 32, DESC_F_INDIRECT, 0);
        ring.publish(&mem, 2);
        assert_eq!(q.pop(&mem), Err(QueueError::NestedIndirect));
        SplitRing::write_desc_at(&mem, table, 0, 0x8000, 8, DESC_F_NEXT, 1);
        SplitRing::write_desc_at(&mem, table, 1, 0x8000, 8, DESC_F_NEXT, 0);
        ring.publish(&mem, 2);
        assert_eq!(q.pop(&mem), Err(QueueError::ChainTooLong));
        SplitRing::write_desc_at(&mem, table, 1, 0x8000, 8, DESC_F_NEXT, 2);
        ring.publish(&mem, 2);
        assert_eq!(
            q.pop(&mem),
            Err(QueueError::IndexOutOfRange {
                index: 2,
                table_size: 2
            })
        );
    }

    #[test]
    fn indirect_refused_unless_negotiated() {
        let (mem, mut q, mut ring) = setup(8, 0);
        ring.write_desc(&mem, 0, 0xa000, 32, DESC_F_INDIRECT, 0);
        ring.publish(&mem, 0);
        assert_eq!(q.pop(&mem), Err(QueueError::IndirectNotNegotiated));
    }

    #[test]
    fn event_idx_suppresses_and_requests_notifications() {
        let (mem, mut q, mut ring) = setup(8, F_RING_EVENT_IDX);
        let complete_one = |q: &mut Queue, ring: &mut SplitRing| {
            let head = ring.add_chain(&mem, &[(0x9000, 1, true)]);
            ring.publish(&mem, head);
            let c = q.pop(&mem).unwrap().unwrap();
            q.add_used(&mem, c.head, 1).unwrap();
            ring.free_all();
        };
        // First decision always notifies.
        complete_one(&mut q, &mut ring);
        assert!(q.needs_notification(&mem).unwrap());
        // used_event = 3: only crossing used idx 3 -> 4 notifies.
        ring.set_used_event(&mem, 3);
        complete_one(&mut q, &mut ring); // used idx 2
        assert!(!q.needs_notification(&mem).unwrap());
        complete_one(&mut q, &mut ring); // 3
        assert!(!q.needs_notification(&mem).unwrap());
        complete_one(&mut q, &mut ring); // 4
        assert!(q.needs_notification(&mem).unwrap());
        // Nothing new: no notification.
        assert!(!q.needs_notification(&mem).unwrap());

        // avail_event follows next_avail when the ring runs dry.
        assert!(!q.enable_notification(&mem).unwrap());
        assert_eq!(ring.avail_event(&mem), 4);
        let head = ring.add_chain(&mem, &[(0x9000, 1, true)]);
        ring.publish(&mem, head);
        assert!(q.enable_notification(&mem).unwrap());
    }

    #[test]
    fn no_interrupt_flag_is_honoured_without_event_idx() {
        let (mem, mut q, ring) = setup(8, 0);
        assert!(q.needs_notification(&mem).unwrap());
        mem.write_u16(ring.avail, AVAIL_F_NO_INTERRUPT).unwrap();
        assert!(!q.needs_notification(&mem).unwrap());
    }

    #[test]
    fn state_round_trips_and_is_revalidated() {
        let (mem, q, _ring) = setup(8, F_RING_EVENT_IDX);
        let st = q.state();
        let json = serde_json::to_string(&st).unwrap();
        let back: QueueState = serde_json::from_str(&json).unwrap();
        assert_eq!(Queue::from_state(&back, &mem).unwrap(), q);
        let small = GuestMemory::new(0x2000).unwrap();
        assert!(Queue::from_state(&back, &small).is_err());
        let mut odd = back.clone();
        odd.size = 6;
        assert!(Queue::from_state(&odd, &mem).is_err());
    }
}
