//! Writes guest RAM to a snapshot's `memory.img`, sparse: only pages that
//! hold data take space, so a 256 MiB guest that touched 100 MiB writes
//! about 100 MiB, and a restore maps the file without reading it.
//!
//! Where the data is depends on the backing (`memory::Backing`):
//! - a booted VM's memfd: its allocated extents (SEEK_DATA), minus pages
//!   that are all zeroes (freed memory the kernel zeroed stays a hole);
//! - a restored VM's private mapping of an older `memory.img`: that file's
//!   extents, then every page the guest has written since, which the
//!   kernel's page map shows as anonymous (copied on write) pages.
//!
//! The vCPUs and the devices' I/O threads must be stopped: the bytes are
//! read straight from the mapping.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;

use super::sparse::{copy_range, data_extents};
use crate::memory::{Backing, GuestMemory};

const PAGE: u64 = 4096;
/// Page-map entries read at once (8 bytes each).
const PAGEMAP_BATCH: usize = 32 * 1024;
/// /proc/self/pagemap bits (Documentation/admin-guide/mm/pagemap.rst).
const PM_PRESENT: u64 = 1 << 63;
const PM_SWAPPED: u64 = 1 << 62;
const PM_FILE_OR_SHARED: u64 = 1 << 61;

/// Writes RAM into `out` (sized to the RAM); returns the data bytes written.
pub fn write_memory(mem: &GuestMemory, out: &File) -> io::Result<u64> {
    out.set_len(mem.size())?;
    match mem.backing() {
        Backing::Memfd => write_allocated(mem, out),
        Backing::PrivateFile => write_private(mem, out),
    }
}

fn write_allocated(mem: &GuestMemory, out: &File) -> io::Result<u64> {
    let mut written = 0;
    for (start, end) in data_extents(mem.backing_file(), mem.size())? {
        let mut run: Option<u64> = None;
        let mut page = start & !(PAGE - 1);
        while page < end {
            let nonzero = !page_is_zero(mem, page);
            match (run, nonzero) {
                (None, true) => run = Some(page),
                (Some(s), false) => {
                    written += write_from_ram(mem, out, s, page)?;
                    run = None;
                }
                _ => {}
            }
            page += PAGE;
        }
        if let Some(s) = run {
            written += write_from_ram(mem, out, s, end.min(mem.size()))?;
        }
    }
    Ok(written)
}

fn write_private(mem: &GuestMemory, out: &File) -> io::Result<u64> {
    // The older snapshot's data, copied in the kernel (or shared, on a
    // filesystem with reflinks), then the pages written since over it.
    let base = File::from(mem.backing_file().try_clone_to_owned()?);
    let mut written = 0;
    for (start, end) in data_extents(mem.backing_file(), mem.size())? {
        copy_range(&base, out, start, end)?;
        written += end - start;
    }
    let pagemap = File::open("/proc/self/pagemap")?;
    let pages = (mem.size() / PAGE) as usize;
    let first = mem.ram_base() as u64 / PAGE;
    let mut entries = vec![0u8; PAGEMAP_BATCH * 8];
    let mut run: Option<u64> = None;
    let mut i = 0usize;
    while i < pages {
        let n = (pages - i).min(PAGEMAP_BATCH);
        let buf = &mut entries[..n * 8];
        pagemap.read_exact_at(buf, (first + i as u64) * 8)?;
        for (k, e) in buf.chunks_exact(8).enumerate() {
            let e = u64::from_le_bytes(e.try_into().expect("8-byte chunk"));
            let private = (e & PM_PRESENT != 0 && e & PM_FILE_OR_SHARED == 0) || e & PM_SWAPPED != 0;
            let offset = (i + k) as u64 * PAGE;
            match (run, private) {
                (None, true) => run = Some(offset),
                (Some(s), false) => {
                    written += write_from_ram(mem, out, s, offset)?;
                    run = None;
                }
                _ => {}
            }
        }
        i += n;
    }
    if let Some(s) = run {
        written += write_from_ram(mem, out, s, mem.size())?;
    }
    Ok(written)
}

fn page_is_zero(mem: &GuestMemory, offset: u64) -> bool {
    // SAFETY: offset is a page inside the mapping (callers iterate below
    // size); the guest is stopped, so the bytes do not change under us.
    let words = unsafe { std::slice::from_raw_parts(mem.ram_base().add(offset as usize).cast::<u64>(), (PAGE / 8) as usize) };
    words.iter().all(|&w| w == 0)
}

/// pwrite of RAM offsets `[start, end)` to the same offsets of `out`.
fn write_from_ram(mem: &GuestMemory, out: &File, start: u64, end: u64) -> io::Result<u64> {
    let mut off = start;
    while off < end {
        let len = ((end - off) as usize).min(1 << 30);
        // SAFETY: [off, off+len) lies inside the mapping (end <= size).
        let n = unsafe {
            libc::pwrite(out.as_raw_fd(), mem.ram_base().add(off as usize).cast(), len, off as libc::off_t)
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::WriteZero, "short write of guest memory"));
        }
        off += n as u64;
    }
    Ok(end - start)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn dir(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("stasis-memfile-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn booted_ram_is_written_sparse_without_zero_pages() {
        let d = dir("memfd");
        let mem = GuestMemory::new(32 << 20).unwrap();
        mem.write(0x1000, b"low").unwrap();
        mem.write((20 << 20) + 5, b"high").unwrap();
        // Touched but zero: stays a hole.
        mem.write(8 << 20, &[0u8; 4096]).unwrap();
        let out = File::create(d.join("memory.img")).unwrap();
        let n = write_memory(&mem, &out).unwrap();
        assert_eq!(n, 2 * PAGE);
        let bytes = std::fs::read(d.join("memory.img")).unwrap();
        assert_eq!(bytes.len(), 32 << 20);
        assert_eq!(&bytes[0x1000..0x1003], b"low");
        assert_eq!(&bytes[(20 << 20) + 5..(20 << 20) + 9], b"high");
        assert!(out.metadata().unwrap().blocks() * 512 <= 64 * 1024, "sparse");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn restored_ram_is_the_old_file_plus_the_pages_written_since() {
        let d = dir("private");
        // A first snapshot: two pages of data.
        let first = GuestMemory::new(16 << 20).unwrap();
        first.write(0, b"kept").unwrap();
        first.write(4 << 20, b"changed later").unwrap();
        let f1 = File::create(d.join("one.img")).unwrap();
        write_memory(&first, &f1).unwrap();
        drop(f1);

        // Restore from it, write two pages (one over old data, one new).
        let restored = GuestMemory::from_file_private(File::open(d.join("one.img")).unwrap(), 16 << 20).unwrap();
        assert_eq!(restored.backing(), Backing::PrivateFile);
        let mut b = [0u8; 4];
        restored.read(0, &mut b).unwrap();
        assert_eq!(&b, b"kept");
        restored.write(4 << 20, b"CHANGED").unwrap();
        restored.write(9 << 20, b"new page").unwrap();
        let f2 = File::create(d.join("two.img")).unwrap();
        write_memory(&restored, &f2).unwrap();

        let two = std::fs::read(d.join("two.img")).unwrap();
        assert_eq!(&two[0..4], b"kept");
        assert_eq!(&two[4 << 20..(4 << 20) + 13], b"CHANGED later");
        assert_eq!(&two[9 << 20..(9 << 20) + 8], b"new page");
        // The first file was never written through the private mapping.
        let one = std::fs::read(d.join("one.img")).unwrap();
        assert_eq!(&one[4 << 20..(4 << 20) + 13], b"changed later");
        assert_eq!(&one[9 << 20..(9 << 20) + 8], &[0u8; 8]);
        std::fs::remove_dir_all(&d).unwrap();
    }
}
