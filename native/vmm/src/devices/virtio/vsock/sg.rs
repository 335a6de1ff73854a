//! Scatter-gather over descriptor chains. A chain's readable (or
//! writable) descriptors are treated as one byte stream, as virtio 1.x
//! requires: nothing assumes how the driver split a packet. Every guest
//! range goes through `GuestMemory`'s checks before it is touched or handed
//! to a syscall.

use crate::devices::virtio::queue::{Descriptor, DescriptorChain};
use crate::memory::{GuestMemory, OutOfBounds};

/// iovecs per vectored syscall (well under IOV_MAX).
pub const IOV_MAX: usize = 64;

/// The readable and writable descriptors of a chain (the queue guarantees
/// readable ones come first).
pub fn split(chain: &DescriptorChain) -> (&[Descriptor], &[Descriptor]) {
    let descs = &chain.descriptors;
    let at = descs.iter().position(|d| d.writable).unwrap_or(descs.len());
    descs.split_at(at)
}

pub fn total_len(descs: &[Descriptor]) -> u64 {
    descs.iter().map(|d| u64::from(d.len)).sum()
}

/// True when every descriptor lies entirely inside guest RAM.
pub fn all_in_ram(mem: &GuestMemory, descs: &[Descriptor]) -> bool {
    descs.iter().all(|d| mem.contains(d.addr, u64::from(d.len)))
}

/// The guest pieces, as (gpa, len), of bytes `[start, start+len)` of the
/// stream formed by `descs`. An address that would overflow comes out as
/// u64::MAX, which no memory check accepts.
pub fn segments(
    descs: &[Descriptor],
    start: u64,
    len: u64,
) -> impl Iterator<Item = (u64, u64)> + '_ {
    let end = start.saturating_add(len);
    let mut pos = 0u64;
    descs.iter().filter_map(move |d| {
        let d_start = pos;
        let d_end = pos + u64::from(d.len);
        pos = d_end;
        let s = start.max(d_start);
        let e = end.min(d_end);
        (s < e).then(|| (d.addr.checked_add(s - d_start).unwrap_or(u64::MAX), e - s))
    })
}

fn short(start: u64, len: usize) -> OutOfBounds {
    OutOfBounds {
        gpa: start,
        len: len as u64,
    }
}

/// Copies bytes `[start, start+out.len())` of the stream into `out`.
pub fn read_bytes(
    mem: &GuestMemory,
    descs: &[Descriptor],
    start: u64,
    out: &mut [u8],
) -> Result<(), OutOfBounds> {
    let mut done = 0usize;
    for (gpa, n) in segments(descs, start, out.len() as u64) {
        let n = n as usize; // <= out.len()
        mem.read(gpa, &mut out[done..done + n])?;
        done += n;
    }
    if done != out.len() {
        return Err(short(start, out.len()));
    }
    Ok(())
}

/// Copies `data` into bytes `[start, start+data.len())` of the stream.
pub fn write_bytes(
    mem: &GuestMemory,
    descs: &[Descriptor],
    start: u64,
    data: &[u8],
) -> Result<(), OutOfBounds> {
    let mut done = 0usize;
    for (gpa, n) in segments(descs, start, data.len() as u64) {
        let n = n as usize; // <= data.len()
        mem.write(gpa, &data[done..done + n])?;
        done += n;
    }
    if done != data.len() {
        return Err(short(start, data.len()));
    }
    Ok(())
}

/// Fixed-capacity iovec list pointing into guest memory (or, for the
/// byte ring, into our own buffer).
pub struct IoVecs {
    iov: [libc::iovec; IOV_MAX],
    count: usize,
    bytes: u64,
}

// SAFETY: the pointers are scratch values, filled and used within one
// call by whoever holds the list (behind the device mutex); they are never
// dereferenced by this type and never outlive the memory they point into.
unsafe impl Send for IoVecs {}

impl Default for IoVecs {
    fn default() -> Self {
        Self::new()
    }
}

impl IoVecs {
    pub fn new() -> Self {
        Self {
            iov: [libc::iovec {
                iov_base: std::ptr::null_mut(),
                iov_len: 0,
            }; IOV_MAX],
            count: 0,
            bytes: 0,
        }
    }

    pub fn clear(&mut self) {
        self.count = 0;
        self.bytes = 0;
    }

    pub fn as_slice(&self) -> &[libc::iovec] {
        &self.iov[..self.count]
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub fn is_full(&self) -> bool {
        self.count == IOV_MAX
    }

    /// Appends a raw host range.
    pub fn push_raw(&mut self, base: *mut u8, len: usize) -> bool {
        if len == 0 {
            return true;
        }
        if self.is_full() {
            return false;
        }
        self.iov[self.count] = libc::iovec {
            iov_base: base.cast(),
            iov_len: len,
        };
        self.count += 1;
        self.bytes += len as u64;
        true
    }

    /// Appends bytes `[start, start+len)` of the stream of `descs`, checked
    /// against guest RAM. Stops early when the list is full; returns the
    /// number of bytes added.
    pub fn push_guest(
        &mut self,
        mem: &GuestMemory,
        descs: &[Descriptor],
        start: u64,
        len: u64,
    ) -> Result<u64, OutOfBounds> {
        let mut added = 0u64;
        for (gpa, n) in segments(descs, start, len) {
            if self.is_full() {
                break;
            }
            let n_usize = usize::try_from(n).map_err(|_| OutOfBounds { gpa, len: n })?;
            let base = mem.host_address(gpa, n_usize)?;
            self.push_raw(base, n_usize);
            added += n;
        }
        Ok(added)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(addr: u64, len: u32, writable: bool) -> Descriptor {
        Descriptor {
            addr,
            len,
            writable,
        }
    }

    #[test]
    fn streams_span_descriptors() {
        let mem = GuestMemory::new(0x10000).unwrap();
        let descs = [d(0x100, 3, true), d(0x200, 0, true), d(0x300, 5, true)];
        write_bytes(&mem, &descs, 1, b"abcdef").unwrap();
        let mut out = [0u8; 8];
        read_bytes(&mem, &descs, 0, &mut out).unwrap();
        assert_eq!(&out[1..7], b"abcdef");
        assert!(
            write_bytes(&mem, &descs, 4, b"xxxxx").is_err(),
            "past the end"
        );
        let segs: Vec<_> = segments(&descs, 2, 3).collect();
        assert_eq!(segs, vec![(0x102, 1), (0x300, 2)]);
    }

    #[test]
    fn bad_addresses_are_refused() {
        let mem = GuestMemory::new(0x10000).unwrap();
        let wrap = [d(u64::MAX - 1, 16, false)];
        let mut out = [0u8; 16];
        assert!(read_bytes(&mem, &wrap, 4, &mut out[..4]).is_err());
        let mut iov = IoVecs::new();
        assert!(iov.push_guest(&mem, &wrap, 4, 4).is_err());
        let outside = [d(0xfff0, 32, false)];
        assert!(iov.push_guest(&mem, &outside, 0, 32).is_err());
        assert!(!all_in_ram(&mem, &outside));
        let ok = [d(0x1000, 32, false)];
        assert_eq!(iov.push_guest(&mem, &ok, 8, 100).unwrap(), 24);
        assert_eq!(iov.as_slice().len(), 1);
        assert_eq!(iov.bytes(), 24);
    }
}
