//! vmlinux (ELF64, x86-64) loader for the 64-bit Linux boot protocol.
//!
//! The kernel file is input we validate completely before touching guest
//! memory: header identity, program-header table bounds, every PT_LOAD
//! segment inside the file and inside low RAM (above the boot structures,
//! below the MMIO hole), segments not overlapping, and the entry point
//! inside a loaded segment. Any violation is a `LoadError`, never a panic.
//! The entry is `e_entry`, which for an x86 vmlinux is a physical address.

use std::fmt;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use super::layout::HIMEM_START;
use crate::memory::GuestMemory;

const EHDR_SIZE: usize = 64;
const PHDR_SIZE: usize = 56;
/// Far more than any kernel has; bounds the header read.
const MAX_PHDRS: usize = 64;

const ELFCLASS64: u8 = 2;
const ELFDATA2LSB: u8 = 1;
const EV_CURRENT: u8 = 1;
const ET_EXEC: u16 = 2;
const EM_X86_64: u16 = 62;
const PT_LOAD: u32 = 1;

#[derive(Debug)]
pub enum LoadError {
    Io(io::Error),
    TooSmall,
    NotElf,
    Unsupported(&'static str),
    BadProgramHeaders(String),
    BadSegment(String),
    NoLoadableSegments,
    EntryOutsideSegments(u64),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Io(e) => write!(f, "cannot read kernel: {e}"),
            LoadError::TooSmall => write!(f, "kernel file is too small to be an ELF image"),
            LoadError::NotElf => write!(f, "kernel is not an ELF file (need an uncompressed vmlinux)"),
            LoadError::Unsupported(what) => write!(f, "unsupported kernel ELF: {what}"),
            LoadError::BadProgramHeaders(m) => write!(f, "bad kernel program headers: {m}"),
            LoadError::BadSegment(m) => write!(f, "bad kernel segment: {m}"),
            LoadError::NoLoadableSegments => write!(f, "kernel has no loadable segments"),
            LoadError::EntryOutsideSegments(e) => write!(f, "kernel entry point {e:#x} is outside its loaded segments"),
        }
    }
}

impl std::error::Error for LoadError {}

impl From<io::Error> for LoadError {
    fn from(e: io::Error) -> Self {
        LoadError::Io(e)
    }
}

/// One PT_LOAD segment to copy: file bytes, then zeroes up to `mem_size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub file_offset: u64,
    pub file_size: u64,
    pub paddr: u64,
    pub mem_size: u64,
}

/// A validated kernel image, ready to load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelPlan {
    pub entry: u64,
    pub segments: Vec<Segment>,
}

impl KernelPlan {
    /// First guest physical byte after the kernel image.
    pub fn end(&self) -> u64 {
        self.segments.iter().map(|s| s.paddr + s.mem_size).max().unwrap_or(0)
    }
}

fn u16_at(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}
fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}
fn u64_at(b: &[u8], o: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[o..o + 8]);
    u64::from_le_bytes(a)
}

/// Checks the ELF header; returns (entry, phoff, phnum).
pub fn parse_header(ehdr: &[u8], file_len: u64) -> Result<(u64, u64, usize), LoadError> {
    if ehdr.len() < EHDR_SIZE || file_len < EHDR_SIZE as u64 {
        return Err(LoadError::TooSmall);
    }
    if &ehdr[0..4] != b"\x7fELF" {
        return Err(LoadError::NotElf);
    }
    if ehdr[4] != ELFCLASS64 {
        return Err(LoadError::Unsupported("not a 64-bit ELF"));
    }
    if ehdr[5] != ELFDATA2LSB {
        return Err(LoadError::Unsupported("not little-endian"));
    }
    if ehdr[6] != EV_CURRENT || u32_at(ehdr, 20) != EV_CURRENT as u32 {
        return Err(LoadError::Unsupported("unknown ELF version"));
    }
    if u16_at(ehdr, 16) != ET_EXEC {
        return Err(LoadError::Unsupported("not an executable (ET_EXEC)"));
    }
    if u16_at(ehdr, 18) != EM_X86_64 {
        return Err(LoadError::Unsupported("not an x86-64 image"));
    }
    let entry = u64_at(ehdr, 24);
    let phoff = u64_at(ehdr, 32);
    let phentsize = u16_at(ehdr, 54) as usize;
    let phnum = u16_at(ehdr, 56) as usize;
    if phentsize != PHDR_SIZE {
        return Err(LoadError::BadProgramHeaders(format!("entry size {phentsize}, expected {PHDR_SIZE}")));
    }
    if phnum == 0 || phnum > MAX_PHDRS {
        return Err(LoadError::BadProgramHeaders(format!("{phnum} program headers")));
    }
    let table_end = phoff.checked_add((phnum * PHDR_SIZE) as u64);
    if table_end.is_none_or(|end| end > file_len) {
        return Err(LoadError::BadProgramHeaders("table extends past the end of the file".into()));
    }
    Ok((entry, phoff, phnum))
}

/// Validates the program headers against the file and guest RAM
/// (`ram_end`: first byte past the RAM the kernel may occupy).
pub fn plan(entry: u64, phdrs: &[u8], file_len: u64, ram_end: u64) -> Result<KernelPlan, LoadError> {
    let mut segments: Vec<Segment> = Vec::new();
    for (i, ph) in phdrs.chunks_exact(PHDR_SIZE).enumerate() {
        if u32_at(ph, 0) != PT_LOAD {
            continue;
        }
        let s = Segment {
            file_offset: u64_at(ph, 8),
            paddr: u64_at(ph, 24),
            file_size: u64_at(ph, 32),
            mem_size: u64_at(ph, 40),
        };
        if s.mem_size == 0 {
            continue;
        }
        if s.file_size > s.mem_size {
            return Err(LoadError::BadSegment(format!("segment {i}: file size exceeds memory size")));
        }
        if s.file_offset.checked_add(s.file_size).is_none_or(|end| end > file_len) {
            return Err(LoadError::BadSegment(format!("segment {i}: extends past the end of the file")));
        }
        let end = s.paddr.checked_add(s.mem_size);
        if s.paddr < HIMEM_START || end.is_none_or(|end| end > ram_end) {
            return Err(LoadError::BadSegment(format!(
                "segment {i} at {:#x}+{:#x} is outside guest RAM [{HIMEM_START:#x}, {ram_end:#x}) (too little --memory?)",
                s.paddr, s.mem_size
            )));
        }
        if let Some(o) = segments.iter().find(|o| s.paddr < o.paddr + o.mem_size && o.paddr < s.paddr + s.mem_size) {
            return Err(LoadError::BadSegment(format!("segment {i} overlaps the segment at {:#x}", o.paddr)));
        }
        segments.push(s);
    }
    if segments.is_empty() {
        return Err(LoadError::NoLoadableSegments);
    }
    if !segments.iter().any(|s| entry >= s.paddr && entry < s.paddr + s.mem_size) {
        return Err(LoadError::EntryOutsideSegments(entry));
    }
    Ok(KernelPlan { entry, segments })
}

/// Validates `file` and copies its segments into guest RAM below `ram_end`.
pub fn load(file: &File, mem: &GuestMemory, ram_end: u64) -> Result<KernelPlan, LoadError> {
    let file_len = file.metadata()?.len();
    let mut ehdr = [0u8; EHDR_SIZE];
    if file_len < EHDR_SIZE as u64 {
        return Err(LoadError::TooSmall);
    }
    file.read_exact_at(&mut ehdr, 0)?;
    let (entry, phoff, phnum) = parse_header(&ehdr, file_len)?;
    let mut phdrs = vec![0u8; phnum * PHDR_SIZE];
    file.read_exact_at(&mut phdrs, phoff)?;
    let plan = plan(entry, &phdrs, file_len, ram_end)?;
    for s in &plan.segments {
        // Guest RAM is a fresh memfd, so the bss part (mem_size beyond
        // file_size) is already zero and is left untouched (not faulted in).
        mem.read_from_file(s.paddr, file, s.file_offset, s.file_size as usize)?;
    }
    Ok(plan)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    const RAM: u64 = 128 << 20;

    /// A minimal valid vmlinux-like image: one PT_LOAD at 16 MiB.
    pub(crate) fn image(segs: &[(u32, u64, u64, u64, u64)], entry: u64) -> Vec<u8> {
        let phoff = 64u64;
        let mut f = vec![0u8; 64];
        f[0..4].copy_from_slice(b"\x7fELF");
        f[4] = 2;
        f[5] = 1;
        f[6] = 1;
        f[16..18].copy_from_slice(&2u16.to_le_bytes());
        f[18..20].copy_from_slice(&62u16.to_le_bytes());
        f[20..24].copy_from_slice(&1u32.to_le_bytes());
        f[24..32].copy_from_slice(&entry.to_le_bytes());
        f[32..40].copy_from_slice(&phoff.to_le_bytes());
        f[52..54].copy_from_slice(&64u16.to_le_bytes());
        f[54..56].copy_from_slice(&56u16.to_le_bytes());
        f[56..58].copy_from_slice(&(segs.len() as u16).to_le_bytes());
        for (ty, off, paddr, filesz, memsz) in segs {
            let mut ph = vec![0u8; 56];
            ph[0..4].copy_from_slice(&ty.to_le_bytes());
            ph[8..16].copy_from_slice(&off.to_le_bytes());
            ph[16..24].copy_from_slice(&0xffff_ffff_8000_0000u64.wrapping_add(*paddr).to_le_bytes());
            ph[24..32].copy_from_slice(&paddr.to_le_bytes());
            ph[32..40].copy_from_slice(&filesz.to_le_bytes());
            ph[40..48].copy_from_slice(&memsz.to_le_bytes());
            f.extend_from_slice(&ph);
        }
        f.resize(0x2000, 0xcc);
        f
    }

    fn check(f: &[u8]) -> Result<KernelPlan, LoadError> {
        let (entry, phoff, phnum) = parse_header(f, f.len() as u64)?;
        let start = phoff as usize;
        plan(entry, &f[start..start + phnum * PHDR_SIZE], f.len() as u64, RAM)
    }

    #[test]
    fn accepts_a_good_image() {
        let f = image(&[(1, 0x1000, 0x100_0000, 0x1000, 0x3000), (4, 0, 0, 0, 0)], 0x100_0000);
        let p = check(&f).unwrap();
        assert_eq!(p.entry, 0x100_0000);
        assert_eq!(p.segments.len(), 1);
        assert_eq!(p.end(), 0x100_3000);
    }

    #[test]
    fn rejects_bad_headers() {
        let good = image(&[(1, 0x1000, 0x100_0000, 0x1000, 0x1000)], 0x100_0000);
        assert!(matches!(parse_header(&good[..10], 10), Err(LoadError::TooSmall)));
        let mut f = good.clone();
        f[0] = b'M';
        assert!(matches!(check(&f), Err(LoadError::NotElf)));
        let mut f = good.clone();
        f[4] = 1;
        assert!(matches!(check(&f), Err(LoadError::Unsupported(_))));
        let mut f = good.clone();
        f[18] = 3; // EM_386
        assert!(matches!(check(&f), Err(LoadError::Unsupported(_))));
        let mut f = good.clone();
        f[16] = 3; // ET_DYN
        assert!(matches!(check(&f), Err(LoadError::Unsupported(_))));
        let mut f = good.clone();
        f[54] = 32;
        assert!(matches!(check(&f), Err(LoadError::BadProgramHeaders(_))));
        let mut f = good.clone();
        f[32..40].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(check(&f), Err(LoadError::BadProgramHeaders(_))), "phoff overflow");
        let mut f = good.clone();
        f[56..58].copy_from_slice(&0u16.to_le_bytes());
        assert!(matches!(check(&f), Err(LoadError::BadProgramHeaders(_))));
        let mut f = good;
        f[56..58].copy_from_slice(&1000u16.to_le_bytes());
        assert!(matches!(check(&f), Err(LoadError::BadProgramHeaders(_))));
    }

    #[test]
    fn rejects_bad_segments() {
        let bad = |segs: &[(u32, u64, u64, u64, u64)], entry| check(&image(segs, entry));
        // file bytes past the end of the file
        assert!(matches!(bad(&[(1, 0x1000, 0x100_0000, 0x10_0000, 0x10_0000)], 0x100_0000), Err(LoadError::BadSegment(_))));
        // offset + size overflows
        assert!(matches!(bad(&[(1, u64::MAX, 0x100_0000, 2, 2)], 0x100_0000), Err(LoadError::BadSegment(_))));
        // filesz > memsz
        assert!(matches!(bad(&[(1, 0x1000, 0x100_0000, 0x100, 0x10)], 0x100_0000), Err(LoadError::BadSegment(_))));
        // beyond RAM, and paddr + memsz overflowing
        assert!(matches!(bad(&[(1, 0x1000, RAM - 0x10, 0x100, 0x100)], RAM - 0x10), Err(LoadError::BadSegment(_))));
        assert!(matches!(bad(&[(1, 0x1000, u64::MAX - 1, 0, 0x10)], 0x100_0000), Err(LoadError::BadSegment(_))));
        // below 1 MiB, over the boot structures
        assert!(matches!(bad(&[(1, 0x1000, 0x7000, 0x100, 0x100)], 0x7000), Err(LoadError::BadSegment(_))));
        // overlapping segments
        assert!(matches!(
            bad(&[(1, 0x1000, 0x100_0000, 0x100, 0x2000), (1, 0x1000, 0x100_1000, 0x100, 0x100)], 0x100_0000),
            Err(LoadError::BadSegment(_))
        ));
        // no PT_LOAD at all, and an entry outside the image
        assert!(matches!(bad(&[(4, 0, 0, 0, 0)], 0), Err(LoadError::NoLoadableSegments)));
        assert!(matches!(bad(&[(1, 0x1000, 0x100_0000, 0x100, 0x100)], 0x200_0000), Err(LoadError::EntryOutsideSegments(_))));
    }

    #[test]
    fn loads_segments_into_memory() {
        let f = image(&[(1, 0x1000, 0x100_0000, 0x10, 0x3000)], 0x100_0000);
        let path = std::env::temp_dir().join(format!("stasis-elf-test-{}", std::process::id()));
        std::fs::write(&path, &f).unwrap();
        let mem = GuestMemory::new(RAM).unwrap();
        let p = load(&File::open(&path).unwrap(), &mem, RAM).unwrap();
        assert_eq!(p.entry, 0x100_0000);
        let mut b = [0u8; 0x11];
        mem.read(0x100_0000, &mut b).unwrap();
        assert_eq!(&b[..0x10], &[0xcc; 0x10]);
        assert_eq!(b[0x10], 0, "bss stays zero");
        std::fs::write(&path, b"not an elf at all, but long enough to have a header.............").unwrap();
        assert!(matches!(load(&File::open(&path).unwrap(), &mem, RAM), Err(LoadError::NotElf)));
        std::fs::write(&path, b"tiny").unwrap();
        assert!(matches!(load(&File::open(&path).unwrap(), &mem, RAM), Err(LoadError::TooSmall)));
        std::fs::remove_file(&path).unwrap();
    }
}
