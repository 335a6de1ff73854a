//! Device model: port-I/O and MMIO devices sit on a `Bus` keyed by address
//! range; a vCPU exit is dispatched to the device owning the address.
//! Devices raise interrupts through an `Irq` handed to them by the builder.

pub mod ports;
pub mod serial;
pub mod virtio;

use std::sync::{Arc, Mutex};

/// A device reachable through port I/O or MMIO. `offset` is relative to the
/// base the device was inserted at; `data.len()` is the access width the
/// guest used (1, 2, 4 or 8 bytes). The guest controls every argument:
/// an access a device does not understand reads as zeroes / is ignored.
pub trait BusDevice: Send {
    fn read(&mut self, offset: u64, data: &mut [u8]);
    fn write(&mut self, offset: u64, data: &[u8]);
}

/// An interrupt line into the guest's interrupt controller (an irqfd on
/// KVM). `trigger` delivers one edge; devices call it after they publish
/// work the guest should look at.
pub trait Irq: Send + Sync {
    fn trigger(&self);
}

pub type SharedDevice = Arc<Mutex<dyn BusDevice>>;

struct Range {
    base: u64,
    len: u64,
    device: SharedDevice,
}

/// Address ranges → devices. Ranges never overlap (checked on insert).
#[derive(Default)]
pub struct Bus {
    ranges: Vec<Range>,
}

#[derive(Debug, PartialEq, Eq)]
pub struct Overlap {
    pub base: u64,
    pub len: u64,
}

impl Bus {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn insert(&mut self, base: u64, len: u64, device: SharedDevice) -> Result<(), Overlap> {
        let end = base.checked_add(len).ok_or(Overlap { base, len })?;
        if len == 0 || self.ranges.iter().any(|r| base < r.base + r.len && r.base < end) {
            return Err(Overlap { base, len });
        }
        self.ranges.push(Range { base, len, device });
        self.ranges.sort_by_key(|r| r.base);
        Ok(())
    }

    fn find(&self, addr: u64, width: usize) -> Option<(&Range, u64)> {
        let idx = self.ranges.partition_point(|r| r.base <= addr).checked_sub(1)?;
        let r = &self.ranges[idx];
        let offset = addr - r.base;
        (offset.checked_add(width as u64)? <= r.len).then_some((r, offset))
    }

    /// Dispatches a read; returns false (data left as all-ones, like an
    /// unclaimed bus) when no device owns the address.
    pub fn read(&self, addr: u64, data: &mut [u8]) -> bool {
        match self.find(addr, data.len()) {
            Some((r, offset)) => {
                lock(&r.device).read(offset, data);
                true
            }
            None => {
                data.fill(0xff);
                false
            }
        }
    }

    /// Dispatches a write; returns false when no device owns the address.
    pub fn write(&self, addr: u64, data: &[u8]) -> bool {
        match self.find(addr, data.len()) {
            Some((r, offset)) => {
                lock(&r.device).write(offset, data);
                true
            }
            None => false,
        }
    }
}

/// Locks a device, recovering from a poisoned lock: a device that panicked
/// mid-access must not take every later access down with it.
pub fn lock(device: &SharedDevice) -> std::sync::MutexGuard<'_, dyn BusDevice + 'static> {
    device.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Echo(u8);
    impl BusDevice for Echo {
        fn read(&mut self, offset: u64, data: &mut [u8]) {
            data.fill(self.0 + offset as u8);
        }
        fn write(&mut self, _offset: u64, data: &[u8]) {
            self.0 = data[0];
        }
    }

    #[test]
    fn dispatches_by_range_and_rejects_overlap() {
        let mut bus = Bus::new();
        bus.insert(0x3f8, 8, Arc::new(Mutex::new(Echo(1)))).unwrap();
        assert!(bus.insert(0x3fc, 8, Arc::new(Mutex::new(Echo(2)))).is_err());
        let mut b = [0u8; 1];
        assert!(bus.read(0x3fa, &mut b));
        assert_eq!(b[0], 3);
        assert!(!bus.read(0x400, &mut b));
        assert_eq!(b[0], 0xff);
        // An access straddling the end of a range is not claimed.
        let mut w = [0u8; 4];
        assert!(!bus.read(0x3fe, &mut w));
    }
}
