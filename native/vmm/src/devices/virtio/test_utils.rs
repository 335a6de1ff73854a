//! Test helpers: a driver-side view of a split ring in guest memory, a
//! counting interrupt line, throwaway disk files, and a minimal "driver"
//! that programs an `MmioTransport` register by register.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::mmio::{regs, MmioTransport};
use super::queue::{DESC_F_NEXT, DESC_F_WRITE};
use super::VirtioDevice;
use crate::devices::{BusDevice, Irq};
use crate::memory::GuestMemory;

/// The driver's side of one split ring.
pub struct SplitRing {
    pub size: u16,
    pub desc: u64,
    pub avail: u64,
    pub used: u64,
    /// The driver's next avail.idx.
    pub avail_idx: u16,
    next_desc: u16,
}

impl SplitRing {
    pub fn new(size: u16, desc: u64, avail: u64, used: u64) -> Self {
        Self {
            size,
            desc,
            avail,
            used,
            avail_idx: 0,
            next_desc: 0,
        }
    }

    pub fn write_desc_at(
        mem: &GuestMemory,
        table: u64,
        index: u16,
        addr: u64,
        len: u32,
        flags: u16,
        next: u16,
    ) {
        let at = table + 16 * u64::from(index);
        mem.write_obj::<u64>(at, addr.to_le()).unwrap();
        mem.write_obj::<u32>(at + 8, len.to_le()).unwrap();
        mem.write_obj::<u16>(at + 12, flags.to_le()).unwrap();
        mem.write_obj::<u16>(at + 14, next.to_le()).unwrap();
    }

    pub fn write_desc(
        &self,
        mem: &GuestMemory,
        index: u16,
        addr: u64,
        len: u32,
        flags: u16,
        next: u16,
    ) {
        Self::write_desc_at(mem, self.desc, index, addr, len, flags, next);
    }

    /// Writes a chain of (addr, len, device-writable) buffers into
    /// consecutive free descriptors; returns its head.
    pub fn add_chain(&mut self, mem: &GuestMemory, bufs: &[(u64, u32, bool)]) -> u16 {
        let head = self.next_desc;
        for (i, &(addr, len, writable)) in bufs.iter().enumerate() {
            let index = (self.next_desc + i as u16) % self.size;
            let mut flags = if writable { DESC_F_WRITE } else { 0 };
            let next = (index + 1) % self.size;
            if i + 1 < bufs.len() {
                flags |= DESC_F_NEXT;
            }
            self.write_desc(mem, index, addr, len, flags, next);
        }
        self.next_desc = (self.next_desc + bufs.len() as u16) % self.size;
        head
    }

    /// Forgets descriptor allocation (all chains completed).
    pub fn free_all(&mut self) {
        self.next_desc = 0;
    }

    /// Puts `head` in the avail ring and bumps avail.idx.
    pub fn publish(&mut self, mem: &GuestMemory, head: u16) {
        let slot = u64::from(self.avail_idx % self.size);
        mem.write_u16(self.avail + 4 + 2 * slot, head).unwrap();
        self.avail_idx = self.avail_idx.wrapping_add(1);
        self.set_avail_idx(mem);
    }

    pub fn set_avail_idx(&self, mem: &GuestMemory) {
        mem.write_u16(self.avail + 2, self.avail_idx).unwrap();
    }

    pub fn used_idx(&self, mem: &GuestMemory) -> u16 {
        mem.read_u16(self.used + 2).unwrap()
    }

    /// (id, len) of used ring slot `slot`.
    pub fn used_elem(&self, mem: &GuestMemory, slot: u16) -> (u32, u32) {
        let at = self.used + 4 + 8 * u64::from(slot % self.size);
        (
            mem.read_obj::<u32>(at).unwrap(),
            mem.read_obj::<u32>(at + 4).unwrap(),
        )
    }

    pub fn set_used_event(&self, mem: &GuestMemory, value: u16) {
        mem.write_u16(self.avail + 4 + 2 * u64::from(self.size), value)
            .unwrap();
    }

    pub fn avail_event(&self, mem: &GuestMemory) -> u16 {
        mem.read_u16(self.used + 4 + 8 * u64::from(self.size))
            .unwrap()
    }
}

/// An interrupt line that counts edges.
#[derive(Default)]
pub struct CountingIrq(AtomicUsize);

impl CountingIrq {
    pub fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

impl Irq for CountingIrq {
    fn trigger(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A file under the temp dir, removed on drop.
pub struct TempFile(PathBuf);

impl TempFile {
    pub fn with_contents(contents: &[u8]) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "stasis-virtio-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        let path = std::env::temp_dir().join(name);
        std::fs::write(&path, contents).unwrap();
        Self(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn contents(&self) -> Vec<u8> {
        std::fs::read(&self.0).unwrap()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A guest driver reduced to register accesses on one transport.
pub struct TestDriver {
    pub mem: Arc<GuestMemory>,
    pub irq: Arc<CountingIrq>,
    pub transport: MmioTransport,
}

impl TestDriver {
    pub fn new(mem_size: u64, device: Box<dyn VirtioDevice + Send>) -> Self {
        let mem = Arc::new(GuestMemory::new(mem_size).unwrap());
        let irq = Arc::new(CountingIrq::default());
        let transport = MmioTransport::new(mem.clone(), device, irq.clone());
        Self {
            mem,
            irq,
            transport,
        }
    }

    pub fn read(&mut self, offset: u64) -> u32 {
        let mut b = [0u8; 4];
        self.transport.read(offset, &mut b);
        u32::from_le_bytes(b)
    }

    pub fn write(&mut self, offset: u64, value: u32) {
        self.transport.write(offset, &value.to_le_bytes());
    }

    pub fn status(&mut self) -> u32 {
        self.read(regs::STATUS)
    }

    pub fn device_features(&mut self) -> u64 {
        self.write(regs::DEVICE_FEATURES_SEL, 0);
        let lo = self.read(regs::DEVICE_FEATURES);
        self.write(regs::DEVICE_FEATURES_SEL, 1);
        let hi = self.read(regs::DEVICE_FEATURES);
        u64::from(lo) | (u64::from(hi) << 32)
    }

    /// ACKNOWLEDGE, DRIVER, accept `features`, FEATURES_OK; returns whether
    /// the device kept FEATURES_OK.
    pub fn negotiate(&mut self, features: u64) -> bool {
        use super::status::*;
        self.write(regs::STATUS, ACKNOWLEDGE);
        self.write(regs::STATUS, ACKNOWLEDGE | DRIVER);
        self.write(regs::DRIVER_FEATURES_SEL, 0);
        self.write(regs::DRIVER_FEATURES, features as u32);
        self.write(regs::DRIVER_FEATURES_SEL, 1);
        self.write(regs::DRIVER_FEATURES, (features >> 32) as u32);
        self.write(regs::STATUS, ACKNOWLEDGE | DRIVER | FEATURES_OK);
        self.status() & FEATURES_OK != 0
    }

    /// Programs queue `index` with `ring`'s layout and sets QueueReady;
    /// returns the QueueReady read back.
    pub fn setup_queue(&mut self, index: u32, ring: &SplitRing) -> bool {
        self.write(regs::QUEUE_SEL, index);
        self.write(regs::QUEUE_NUM, u32::from(ring.size));
        for (lo, addr) in [
            (regs::QUEUE_DESC_LOW, ring.desc),
            (regs::QUEUE_DRIVER_LOW, ring.avail),
            (regs::QUEUE_DEVICE_LOW, ring.used),
        ] {
            self.write(lo, addr as u32);
            self.write(lo + 4, (addr >> 32) as u32);
        }
        self.write(regs::QUEUE_READY, 1);
        self.read(regs::QUEUE_READY) == 1
    }

    pub fn driver_ok(&mut self) {
        let s = self.status();
        self.write(regs::STATUS, s | super::status::DRIVER_OK);
    }

    pub fn notify(&mut self, queue: u32) {
        self.write(regs::QUEUE_NOTIFY, queue);
    }
}
