//! Guest RAM: one memfd mapped MAP_SHARED into this process and registered
//! with the hypervisor. A file-backed mapping (rather than anonymous memory)
//! is what later lets a snapshot write the memory file without copying
//! through the guest, and a restore map it MAP_PRIVATE, lazily and
//! copy-on-write. Every access from device code goes through the checked
//! helpers here: the guest chooses the addresses, so none is trusted.

use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr;

/// A guest physical address range that does not lie inside guest RAM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutOfBounds {
    pub gpa: u64,
    pub len: u64,
}

impl fmt::Display for OutOfBounds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "guest range {:#x}+{:#x} is outside guest RAM", self.gpa, self.len)
    }
}

impl std::error::Error for OutOfBounds {}

/// Guest RAM starting at guest physical address 0, contiguous.
///
/// x86 guests larger than the 32-bit MMIO hole are split by the arch layout
/// into two KVM slots that both point into this one mapping; that split is
/// the builder's business, not this type's.
pub struct GuestMemory {
    base: *mut u8,
    size: u64,
    fd: OwnedFd,
}

// The mapping lives as long as the GuestMemory; raw-pointer accesses are
// bounds-checked and use unaligned volatile-free copies, which is what the
// guest itself does concurrently on other vCPUs anyway.
unsafe impl Send for GuestMemory {}
unsafe impl Sync for GuestMemory {}

impl GuestMemory {
    /// Creates `size` bytes of zeroed guest RAM backed by a memfd.
    pub fn new(size: u64) -> io::Result<Self> {
        let name = b"stasis-guest-ram\0";
        // SAFETY: name is NUL-terminated; flags are valid for memfd_create.
        let raw = unsafe { libc::memfd_create(name.as_ptr().cast(), libc::MFD_CLOEXEC) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: raw is a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: plain ftruncate on our own descriptor.
        if unsafe { libc::ftruncate(fd.as_raw_fd(), size as libc::off_t) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Self::map(fd, size)
    }

    fn map(fd: OwnedFd, size: u64) -> io::Result<Self> {
        // SAFETY: mapping a descriptor we own with a length it has.
        let base = unsafe {
            libc::mmap(
                ptr::null_mut(),
                size as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_NORESERVE,
                fd.as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Self { base: base.cast(), size, fd })
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Host address of guest physical address 0 (for hypervisor slot setup).
    pub fn host_base(&self) -> *mut u8 {
        self.base
    }

    /// The memfd behind guest RAM (for snapshotting).
    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Returns a host pointer to `[gpa, gpa+len)` if the whole range is RAM.
    fn range(&self, gpa: u64, len: usize) -> Result<*mut u8, OutOfBounds> {
        let len64 = len as u64;
        match gpa.checked_add(len64) {
            Some(end) if end <= self.size => {
                // SAFETY: gpa + len <= size, so the offset is inside the mapping.
                Ok(unsafe { self.base.add(gpa as usize) })
            }
            _ => Err(OutOfBounds { gpa, len: len64 }),
        }
    }

    /// Host address of `[gpa, gpa+len)`, checked like every other accessor,
    /// for handing a guest buffer straight to a syscall (preadv/pwritev into
    /// a virtio buffer, no bounce copy). The pointer stays valid for `len`
    /// bytes while `self` lives; the guest may change the bytes at any time,
    /// so never turn it into a Rust reference.
    pub fn host_address(&self, gpa: u64, len: usize) -> Result<*mut u8, OutOfBounds> {
        self.range(gpa, len)
    }

    /// True when `[gpa, gpa+len)` lies entirely in guest RAM.
    pub fn contains(&self, gpa: u64, len: u64) -> bool {
        gpa.checked_add(len).map_or(false, |end| end <= self.size)
    }

    pub fn read(&self, gpa: u64, buf: &mut [u8]) -> Result<(), OutOfBounds> {
        let src = self.range(gpa, buf.len())?;
        // SAFETY: range() checked src..src+len is inside the mapping.
        unsafe { ptr::copy_nonoverlapping(src, buf.as_mut_ptr(), buf.len()) };
        Ok(())
    }

    pub fn write(&self, gpa: u64, buf: &[u8]) -> Result<(), OutOfBounds> {
        let dst = self.range(gpa, buf.len())?;
        // SAFETY: range() checked dst..dst+len is inside the mapping.
        unsafe { ptr::copy_nonoverlapping(buf.as_ptr(), dst, buf.len()) };
        Ok(())
    }

    /// Reads a plain-old-data value (a virtio descriptor, a ring index...).
    pub fn read_obj<T: Pod>(&self, gpa: u64) -> Result<T, OutOfBounds> {
        let src = self.range(gpa, std::mem::size_of::<T>())?;
        // SAFETY: in bounds; T is Pod so any bit pattern is valid; unaligned read.
        Ok(unsafe { ptr::read_unaligned(src.cast::<T>()) })
    }

    pub fn write_obj<T: Pod>(&self, gpa: u64, val: T) -> Result<(), OutOfBounds> {
        let dst = self.range(gpa, std::mem::size_of::<T>())?;
        // SAFETY: in bounds; unaligned write of a Pod value.
        unsafe { ptr::write_unaligned(dst.cast::<T>(), val) };
        Ok(())
    }

    /// Reads a little-endian u16/u32/u64 with acquire ordering semantics the
    /// virtio rings need (a compiler fence after the load).
    pub fn read_u16(&self, gpa: u64) -> Result<u16, OutOfBounds> {
        let v = u16::from_le(self.read_obj::<u16>(gpa)?);
        std::sync::atomic::fence(std::sync::atomic::Ordering::Acquire);
        Ok(v)
    }

    /// Writes a little-endian u16 after a release fence (used-ring publishing).
    pub fn write_u16(&self, gpa: u64, val: u16) -> Result<(), OutOfBounds> {
        std::sync::atomic::fence(std::sync::atomic::Ordering::Release);
        self.write_obj::<u16>(gpa, val.to_le())
    }
}

impl Drop for GuestMemory {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly what map() mapped.
        unsafe { libc::munmap(self.base.cast(), self.size as usize) };
    }
}

/// Types that may be copied to and from guest memory byte for byte.
///
/// # Safety
/// Implementors must be `repr(C)` (or primitive) with no padding-sensitive
/// invariants: every bit pattern must be a valid value.
pub unsafe trait Pod: Copy + 'static {}

unsafe impl Pod for u8 {}
unsafe impl Pod for u16 {}
unsafe impl Pod for u32 {}
unsafe impl Pod for u64 {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_writes_inside_ram() {
        let mem = GuestMemory::new(0x10000).unwrap();
        mem.write(0x100, b"hello").unwrap();
        let mut buf = [0u8; 5];
        mem.read(0x100, &mut buf).unwrap();
        assert_eq!(&buf, b"hello");
        mem.write_obj::<u32>(0xfffc, 0xdead_beef).unwrap();
        assert_eq!(mem.read_obj::<u32>(0xfffc).unwrap(), 0xdead_beef);
    }

    #[test]
    fn rejects_ranges_past_the_end_and_overflowing() {
        let mem = GuestMemory::new(0x10000).unwrap();
        assert!(mem.write(0xfffe, &[0; 4]).is_err());
        assert!(mem.read_obj::<u64>(u64::MAX - 3).is_err());
        assert!(!mem.contains(u64::MAX, 2));
        assert!(mem.contains(0, 0x10000));
    }
}
