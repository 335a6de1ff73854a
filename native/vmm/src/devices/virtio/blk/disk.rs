//! The host side of a virtio-blk device: a file or block device, and
//! vectored reads and writes between it and guest memory with no bounce
//! buffer (preadv/pwritev on host addresses of the guest's buffers).

use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::ptr;

use super::{ID_BYTES, SECTOR_SIZE};
use crate::memory::GuestMemory;

/// iovecs handed to one preadv/pwritev call (well under IOV_MAX).
const IOV_BATCH: usize = 64;

pub struct Disk {
    file: File,
    read_only: bool,
    /// Size in 512-byte sectors; a trailing partial sector is not exposed.
    capacity: u64,
}

#[derive(Clone, Copy)]
enum Direction {
    /// File → guest memory.
    Read,
    /// Guest memory → file.
    Write,
}

impl Disk {
    /// Opens `path` O_RDONLY when `read_only`, else O_RDWR.
    pub fn open(path: &Path, read_only: bool) -> io::Result<Self> {
        let file = OpenOptions::new().read(true).write(!read_only).open(path)?;
        // Seeking to the end works for regular files and block devices alike.
        let size = (&file).seek(SeekFrom::End(0))?;
        Ok(Self {
            file,
            read_only,
            capacity: size / SECTOR_SIZE,
        })
    }

    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    pub fn read_only(&self) -> bool {
        self.read_only
    }

    /// A serial number that stays the same for the same backing file:
    /// "stasis-" and 12 hex digits of a hash of its device and inode.
    pub fn serial(&self) -> io::Result<[u8; ID_BYTES]> {
        let meta = self.file.metadata()?;
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325; // FNV-1a offset basis
        for byte in meta
            .dev()
            .to_le_bytes()
            .into_iter()
            .chain(meta.ino().to_le_bytes())
        {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        let text = format!("stasis-{:012x}", hash & 0xffff_ffff_ffff);
        let mut id = [0u8; ID_BYTES];
        id[..text.len()].copy_from_slice(text.as_bytes());
        Ok(id)
    }

    /// Reads the file from byte `offset` into the guest `segments`
    /// ((gpa, len) pairs, each inside RAM), in order.
    pub fn read_into(
        &self,
        mem: &GuestMemory,
        segments: impl Iterator<Item = (u64, u64)>,
        offset: u64,
    ) -> io::Result<()> {
        self.transfer(mem, segments, offset, Direction::Read)
    }

    /// Writes the guest `segments` to the file from byte `offset`.
    pub fn write_from(
        &self,
        mem: &GuestMemory,
        segments: impl Iterator<Item = (u64, u64)>,
        offset: u64,
    ) -> io::Result<()> {
        if self.read_only {
            return Err(io::Error::from(io::ErrorKind::PermissionDenied));
        }
        self.transfer(mem, segments, offset, Direction::Write)
    }

    /// FLUSH: data (not necessarily metadata) reaches stable storage.
    pub fn flush(&self) -> io::Result<()> {
        if self.read_only {
            return Ok(());
        }
        self.file.sync_data()
    }

    fn transfer(
        &self,
        mem: &GuestMemory,
        segments: impl Iterator<Item = (u64, u64)>,
        mut offset: u64,
        dir: Direction,
    ) -> io::Result<()> {
        let empty = libc::iovec {
            iov_base: ptr::null_mut(),
            iov_len: 0,
        };
        let mut iov = [empty; IOV_BATCH];
        let mut segments = segments.filter(|&(_, len)| len > 0).peekable();
        while segments.peek().is_some() {
            let mut count = 0;
            while count < IOV_BATCH {
                let Some((gpa, len)) = segments.next() else {
                    break;
                };
                let len = usize::try_from(len).map_err(|_| io::ErrorKind::InvalidInput)?;
                let base = mem
                    .host_address(gpa, len)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
                iov[count] = libc::iovec {
                    iov_base: base.cast(),
                    iov_len: len,
                };
                count += 1;
            }
            offset = self.transfer_batch(&mut iov[..count], offset, dir)?;
        }
        Ok(())
    }

    /// Moves every byte described by `iov`, retrying short transfers and
    /// EINTR; returns the file offset after the batch.
    fn transfer_batch(
        &self,
        iov: &mut [libc::iovec],
        mut offset: u64,
        dir: Direction,
    ) -> io::Result<u64> {
        let fd = self.file.as_raw_fd();
        let mut first = 0;
        while first < iov.len() {
            let pos = libc::off_t::try_from(offset).map_err(|_| io::ErrorKind::InvalidInput)?;
            let rest = &iov[first..];
            // rest.len() <= IOV_BATCH, so the count fits a c_int.
            let count = rest.len() as libc::c_int;
            // SAFETY: every iovec points at a range that host_address()
            // checked lies inside the guest mapping, which outlives this
            // call; the kernel reads or writes only those ranges.
            let done = unsafe {
                match dir {
                    Direction::Read => libc::preadv(fd, rest.as_ptr(), count, pos),
                    Direction::Write => libc::pwritev(fd, rest.as_ptr(), count, pos),
                }
            };
            if done < 0 {
                let err = io::Error::last_os_error();
                if err.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(err);
            }
            if done == 0 {
                // The file shrank under us (read) or the device is full (write).
                return Err(match dir {
                    Direction::Read => io::ErrorKind::UnexpectedEof.into(),
                    Direction::Write => io::ErrorKind::WriteZero.into(),
                });
            }
            let mut done = done as usize;
            offset += done as u64;
            while done > 0 {
                let v = &mut iov[first];
                if done >= v.iov_len {
                    done -= v.iov_len;
                    first += 1;
                } else {
                    // SAFETY: done < iov_len, so the new base stays inside
                    // the same checked guest range.
                    v.iov_base = unsafe { v.iov_base.cast::<u8>().add(done) }.cast();
                    v.iov_len -= done;
                    done = 0;
                }
            }
        }
        Ok(offset)
    }
}
