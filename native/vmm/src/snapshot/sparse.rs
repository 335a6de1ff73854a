//! Sparse files: finding the data in one (SEEK_DATA/SEEK_HOLE), copying
//! only that (a reflink when the filesystem can, copy_file_range
//! otherwise), and a cheap fingerprint to tell two disk images apart.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

/// The data extents `[start, end)` of a file of `len` bytes, in order.
/// A file system without SEEK_DATA support reports the whole file as data.
pub fn data_extents(fd: BorrowedFd<'_>, len: u64) -> io::Result<Vec<(u64, u64)>> {
    let raw = fd.as_raw_fd();
    let mut out = Vec::new();
    let mut pos = 0u64;
    while pos < len {
        let start = match seek(raw, pos, libc::SEEK_DATA) {
            Ok(s) => s,
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) => break, // only a hole is left
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) && pos == 0 => return Ok(vec![(0, len)]),
            Err(e) => return Err(e),
        };
        if start >= len {
            break;
        }
        let end = seek(raw, start, libc::SEEK_HOLE)?.min(len);
        out.push((start, end));
        pos = end;
    }
    Ok(out)
}

fn seek(fd: RawFd, offset: u64, whence: libc::c_int) -> io::Result<u64> {
    // SAFETY: lseek on a descriptor the caller keeps open.
    let r = unsafe { libc::lseek(fd, offset as libc::off_t, whence) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as u64)
    }
}

/// Copies `[start, end)` of `src` to the same offsets of `dst`, in the
/// kernel where it can (copy_file_range), through a buffer where not.
pub fn copy_range(src: &File, dst: &File, start: u64, end: u64) -> io::Result<()> {
    let mut off = start;
    while off < end {
        let mut in_off = off as libc::loff_t;
        let mut out_off = off as libc::loff_t;
        let want = ((end - off) as usize).min(1 << 30);
        // SAFETY: both descriptors are open; the offsets are ours.
        let n = unsafe { libc::copy_file_range(src.as_raw_fd(), &mut in_off, dst.as_raw_fd(), &mut out_off, want, 0) };
        if n > 0 {
            off += n as u64;
            continue;
        }
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "source ended inside a data extent"));
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EXDEV) | Some(libc::ENOSYS) | Some(libc::EINVAL) | Some(libc::EOPNOTSUPP) => {
                return copy_range_buffered(src, dst, off, end);
            }
            _ => return Err(e),
        }
    }
    Ok(())
}

fn copy_range_buffered(src: &File, dst: &File, start: u64, end: u64) -> io::Result<()> {
    let mut buf = vec![0u8; 1 << 20];
    let mut off = start;
    while off < end {
        let want = ((end - off) as usize).min(buf.len());
        let n = src.read_at(&mut buf[..want], off)?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "source ended inside a data extent"));
        }
        dst.write_all_at(&buf[..n], off)?;
        off += n as u64;
    }
    Ok(())
}

/// FICLONE: `dst` shares every block of `src` (btrfs, XFS with reflink).
const FICLONE: libc::c_ulong = 0x4004_9409;

/// Copies `src` to a new file `dst` (created 0600, must not exist): a
/// reflink when the filesystem supports it, else only the data extents,
/// so a sparse disk stays sparse. Returns the data bytes copied (0 for a
/// reflink). On failure `dst` is removed.
pub fn copy_sparse(src: &Path, dst: &Path) -> io::Result<u64> {
    let from = File::open(src)?;
    let len = from.metadata()?.len();
    let to = OpenOptions::new().write(true).create_new(true).mode(0o600).open(dst)?;
    let result = (|| {
        // SAFETY: ioctl(FICLONE) takes the source descriptor as its argument.
        if unsafe { libc::ioctl(to.as_raw_fd(), FICLONE as _, from.as_raw_fd()) } == 0 {
            return Ok(0);
        }
        to.set_len(len)?;
        let mut copied = 0;
        for (start, end) in data_extents(std::os::fd::AsFd::as_fd(&from), len)? {
            copy_range(&from, &to, start, end)?;
            copied += end - start;
        }
        Ok(copied)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(dst);
    }
    result
}

/// Bytes covered by a disk fingerprint.
pub const FINGERPRINT_BYTES: usize = 64 * 1024;

/// CRC-32 of the first 64 KiB of a file (fewer if it is shorter): for ext4
/// that covers the superblock with its UUID and creation time, so two
/// images built separately from the same tree still differ.
pub fn fingerprint(path: &Path) -> io::Result<u32> {
    let f = File::open(path)?;
    let mut buf = vec![0u8; FINGERPRINT_BYTES];
    let mut have = 0;
    while have < buf.len() {
        let n = f.read_at(&mut buf[have..], have as u64)?;
        if n == 0 {
            break;
        }
        have += n;
    }
    Ok(super::crc32::crc32(&buf[..have]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("stasis-sparse-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn copies_only_data_and_keeps_holes() {
        let dir = tmp("copy");
        let src = dir.join("src");
        let f = File::create(&src).unwrap();
        f.set_len(64 << 20).unwrap();
        f.write_all_at(b"head", 0).unwrap();
        f.write_all_at(&vec![7u8; 8192], 32 << 20).unwrap();
        f.write_all_at(b"tail", (64 << 20) - 4).unwrap();
        drop(f);
        let dst = dir.join("dst");
        let copied = copy_sparse(&src, &dst).unwrap();
        assert_eq!(std::fs::read(&src).unwrap(), std::fs::read(&dst).unwrap());
        // A reflink copies nothing; otherwise only the three data extents.
        assert!(copied < 1 << 20, "{copied}");
        use std::os::unix::fs::MetadataExt;
        assert!(std::fs::metadata(&dst).unwrap().blocks() * 512 < 4 << 20, "destination is sparse");
        assert!(copy_sparse(&src, &dst).is_err(), "an existing destination is refused");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn extents_of_a_sparse_file() {
        let dir = tmp("ext");
        let p = dir.join("f");
        let f = File::create(&p).unwrap();
        f.set_len(16 << 20).unwrap();
        assert!(data_extents(std::os::fd::AsFd::as_fd(&f), 16 << 20).unwrap().is_empty());
        f.write_all_at(&[1u8; 4096], 8 << 20).unwrap();
        let ext = data_extents(std::os::fd::AsFd::as_fd(&f), 16 << 20).unwrap();
        assert_eq!(ext.len(), 1);
        assert!(ext[0].0 <= 8 << 20 && ext[0].1 >= (8 << 20) + 4096, "{ext:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn fingerprints_differ_with_content() {
        let dir = tmp("fp");
        let (a, b) = (dir.join("a"), dir.join("b"));
        std::fs::write(&a, vec![1u8; 100_000]).unwrap();
        std::fs::write(&b, vec![1u8; 100_000]).unwrap();
        assert_eq!(fingerprint(&a).unwrap(), fingerprint(&b).unwrap());
        let f = OpenOptions::new().write(true).open(&b).unwrap();
        f.write_all_at(b"x", 1024).unwrap();
        assert_ne!(fingerprint(&a).unwrap(), fingerprint(&b).unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
