//! Guest RAM: one memfd mapped MAP_SHARED into this process and registered
//! with the hypervisor, or, for a restored VM, a snapshot's memory file
//! mapped MAP_PRIVATE (lazily and copy-on-write: a page is read when the
//! guest first touches it, and only pages it writes become private). A
//! file-backed mapping is what lets a snapshot find the pages that hold
//! data without walking the guest. Every access from device code goes
//! through the checked helpers here: the guest chooses the addresses, so
//! none is trusted.

use std::fmt;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
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
/// What backs guest RAM; the snapshot writer finds the data differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backing {
    /// A memfd shared with the mapping: its allocated pages are the data.
    Memfd,
    /// A snapshot's memory file mapped MAP_PRIVATE: the file's data plus
    /// the pages the guest has written since (anonymous copies).
    PrivateFile,
}

pub struct GuestMemory {
    base: *mut u8,
    size: u64,
    fd: OwnedFd,
    backing: Backing,
    /// An optional guest-physical gap `[start, end)` that is not RAM (the
    /// x86 32-bit MMIO hole): RAM offsets at and above `start` appear at
    /// guest physical addresses shifted up by `end - start`.
    hole: Option<(u64, u64)>,
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
        Self::map(fd, size, Backing::Memfd)
    }

    /// Guest RAM of `size` bytes from a snapshot's memory file, mapped
    /// MAP_PRIVATE: nothing is read up front, and the file is never
    /// written. The file must be exactly `size` bytes long.
    pub fn from_file_private(file: File, size: u64) -> io::Result<Self> {
        let len = file.metadata()?.len();
        if len != size {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("memory file is {len} bytes, the snapshot's RAM is {size}"),
            ));
        }
        Self::map(OwnedFd::from(file), size, Backing::PrivateFile)
    }

    fn map(fd: OwnedFd, size: u64, backing: Backing) -> io::Result<Self> {
        let share = match backing {
            Backing::Memfd => libc::MAP_SHARED,
            Backing::PrivateFile => libc::MAP_PRIVATE,
        };
        // SAFETY: mapping a descriptor we own with a length it has.
        let base = unsafe {
            libc::mmap(
                ptr::null_mut(),
                size as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                share | libc::MAP_NORESERVE,
                fd.as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Self { base: base.cast(), size, fd, backing, hole: None })
    }

    /// RAM size in bytes (the memory file's length).
    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn backing(&self) -> Backing {
        self.backing
    }

    /// The memfd or memory file behind RAM (read-only use: the snapshot
    /// writer looks for data extents in it).
    pub fn backing_file(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.fd.as_fd()
    }

    /// Host address of RAM offset 0; RAM offset `o` is at `ram_base() + o`.
    pub fn ram_base(&self) -> *mut u8 {
        self.base
    }


    /// Like `new`, but guest physical addresses skip the gap
    /// `[hole_start, hole_end)` once RAM reaches it: RAM offset `o` is at
    /// GPA `o` below `hole_start` and at `o + (hole_end - hole_start)` above.
    pub fn with_hole(size: u64, hole_start: u64, hole_end: u64) -> io::Result<Self> {
        Self::new(size)?.cut_hole(hole_start, hole_end)
    }

    /// Applies the guest-physical gap of `with_hole` to any RAM.
    pub fn cut_hole(mut self, hole_start: u64, hole_end: u64) -> io::Result<Self> {
        if hole_end < hole_start {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "memory hole ends before it starts"));
        }
        if self.size > hole_start {
            self.hole = Some((hole_start, hole_end));
        }
        Ok(self)
    }

    /// Guest-physical regions backed by RAM: (gpa, host address, length).
    /// This is what the hypervisor's memory slots are made of.
    pub fn regions(&self) -> Vec<(u64, *mut u8, u64)> {
        match self.hole {
            None => vec![(0, self.base, self.size)],
            // SAFETY: start < size when a hole is set, so the offset is inside the mapping.
            Some((start, end)) => vec![(0, self.base, start), (end, unsafe { self.base.add(start as usize) }, self.size - start)],
        }
    }

    /// RAM offset of guest physical `gpa` for an access of `len` bytes, if
    /// the whole access is RAM (never straddling the hole).
    fn offset_of(&self, gpa: u64, len: u64) -> Option<u64> {
        let end = gpa.checked_add(len)?;
        let off = match self.hole {
            Some((start, hole_end)) if gpa >= start => {
                if gpa < hole_end {
                    return None;
                }
                gpa - (hole_end - start)
            }
            Some((start, _)) if end > start => return None,
            _ => gpa,
        };
        (off.checked_add(len)? <= self.size).then_some(off)
    }

    /// Copies `len` bytes of `file` at `file_offset` into guest RAM at
    /// `gpa` (kernel and initrd loading).
    ///
    /// The file is mapped and written into the memfd with pwrite rather
    /// than read into the guest mapping: shmem then allocates the pages
    /// without first zero-filling them on a fault, which makes loading a
    /// kernel about twice as fast.
    pub fn read_from_file(&self, gpa: u64, file: &File, file_offset: u64, len: usize) -> io::Result<()> {
        if self.backing != Backing::Memfd {
            // pwrite would go to the snapshot's file, not to this VM's RAM.
            return Err(io::Error::new(io::ErrorKind::Unsupported, "loading a file into restored RAM"));
        }
        let invalid = |e: OutOfBounds| io::Error::new(io::ErrorKind::InvalidInput, e);
        let ram_offset = self.offset_of(gpa, len as u64).ok_or(OutOfBounds { gpa, len: len as u64 }).map_err(invalid)?;
        if len == 0 {
            return Ok(());
        }
        let file_len = file.metadata()?.len();
        if file_offset.checked_add(len as u64).is_none_or(|end| end > file_len) {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "file shorter than the requested range"));
        }
        let page = 4096u64;
        let map_start = file_offset & !(page - 1);
        let lead = (file_offset - map_start) as usize;
        let map_len = lead + len;
        // SAFETY: a private read-only mapping of a range inside the file.
        let src = unsafe {
            libc::mmap(
                ptr::null_mut(),
                map_len,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_POPULATE,
                file.as_raw_fd(),
                map_start as libc::off_t,
            )
        };
        if src == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let mut done = 0usize;
        let result = loop {
            if done == len {
                break Ok(());
            }
            // SAFETY: src+lead+done .. src+map_len is inside the mapping.
            let n = unsafe {
                libc::pwrite(
                    self.fd.as_raw_fd(),
                    src.cast::<u8>().add(lead + done).cast(),
                    len - done,
                    (ram_offset + done as u64) as libc::off_t,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                break Err(e);
            }
            if n == 0 {
                break Err(io::Error::new(io::ErrorKind::WriteZero, "short write into guest memory"));
            }
            done += n as usize;
        };
        // SAFETY: unmapping exactly what was mapped above.
        unsafe { libc::munmap(src, map_len) };
        result
    }


    /// Returns a host pointer to `[gpa, gpa+len)` if the whole range is RAM.
    fn range(&self, gpa: u64, len: usize) -> Result<*mut u8, OutOfBounds> {
        let len64 = len as u64;
        match self.offset_of(gpa, len64) {
            // SAFETY: offset + len <= size, so the offset is inside the mapping.
            Some(off) => Ok(unsafe { self.base.add(off as usize) }),
            None => Err(OutOfBounds { gpa, len: len64 }),
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
        self.offset_of(gpa, len).is_some()
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

    #[test]
    fn hole_shifts_high_ram_and_is_not_ram() {
        let mem = GuestMemory::with_hole(0x4000, 0x2000, 0x8000).unwrap();
        assert!(mem.contains(0, 0x2000));
        assert!(!mem.contains(0x1fff, 2), "straddles the hole start");
        assert!(!mem.contains(0x2000, 1));
        assert!(!mem.contains(0x7fff, 1));
        assert!(mem.contains(0x8000, 0x2000));
        assert!(!mem.contains(0x8000, 0x2001));
        mem.write(0x8000, b"hi").unwrap();
        let mut b = [0u8; 2];
        mem.read(0x8000, &mut b).unwrap();
        assert_eq!(&b, b"hi");
        let r = mem.regions();
        assert_eq!((r[0].0, r[0].2, r[1].0, r[1].2), (0, 0x2000, 0x8000, 0x2000));
        // A guest smaller than the hole start has no hole at all.
        assert_eq!(GuestMemory::with_hole(0x1000, 0x2000, 0x8000).unwrap().regions().len(), 1);
    }

    #[test]
    fn loads_file_bytes_into_ram() {
        let path = std::env::temp_dir().join(format!("stasis-mem-test-{}", std::process::id()));
        std::fs::write(&path, b"0123456789").unwrap();
        let f = File::open(&path).unwrap();
        let mem = GuestMemory::new(0x1000).unwrap();
        mem.read_from_file(0x10, &f, 2, 5).unwrap();
        let mut b = [0u8; 5];
        mem.read(0x10, &mut b).unwrap();
        assert_eq!(&b, b"23456");
        assert!(mem.read_from_file(0xffe, &f, 0, 5).is_err());
        assert!(mem.read_from_file(0, &f, 8, 5).is_err(), "short file");
        std::fs::remove_file(&path).unwrap();
    }
}
