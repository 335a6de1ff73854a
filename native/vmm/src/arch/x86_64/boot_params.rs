//! The Linux x86 "zero page" (`struct boot_params`,
//! Documentation/arch/x86/zero-page.rst and boot.rst) for the 64-bit boot
//! protocol: the e820 memory map, the command line pointer, the initrd and
//! the few setup-header fields a boot loader must fill in.

use super::layout::*;

pub const ZERO_PAGE_SIZE: usize = 4096;

// Offsets inside struct boot_params.
const EXT_RAMDISK_IMAGE: usize = 0x0c0;
const EXT_RAMDISK_SIZE: usize = 0x0c4;
const EXT_CMD_LINE_PTR: usize = 0x0c8;
const E820_ENTRIES: usize = 0x1e8;
const BOOT_FLAG: usize = 0x1fe;
const HEADER: usize = 0x202;
const VERSION: usize = 0x206;
const TYPE_OF_LOADER: usize = 0x210;
const LOADFLAGS: usize = 0x211;
const RAMDISK_IMAGE: usize = 0x218;
const RAMDISK_SIZE: usize = 0x21c;
const CMD_LINE_PTR: usize = 0x228;
const CMDLINE_SIZE: usize = 0x238;
const E820_TABLE: usize = 0x2d0;
const E820_ENTRY_SIZE: usize = 20;
pub const E820_MAX_ENTRIES: usize = 128;

const BOOT_FLAG_MAGIC: u16 = 0xaa55;
const HEADER_MAGIC: u32 = 0x5372_6448; // "HdrS"
const PROTOCOL_VERSION: u16 = 0x020f; // 2.15
const LOADER_UNDEFINED: u8 = 0xff;
const LOADED_HIGH: u8 = 0x01;

pub const E820_RAM: u32 = 1;
pub const E820_RESERVED: u32 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct E820Entry {
    pub addr: u64,
    pub size: u64,
    pub kind: u32,
}

/// The guest's memory map for `mem_size` bytes of RAM (see layout.rs).
pub fn e820_map(mem_size: u64) -> Vec<E820Entry> {
    let ram = |addr, size| E820Entry { addr, size, kind: E820_RAM };
    let mut map = vec![
        ram(0, MPTABLE_ADDR),
        E820Entry { addr: MPTABLE_ADDR, size: EBDA_END - MPTABLE_ADDR, kind: E820_RESERVED },
    ];
    let low_end = low_ram_end(mem_size);
    if low_end > HIMEM_START {
        map.push(ram(HIMEM_START, low_end - HIMEM_START));
    }
    if mem_size > MMIO_HOLE_START {
        map.push(ram(MMIO_HOLE_END, mem_size - MMIO_HOLE_START));
    }
    map
}

#[derive(Debug, Clone)]
pub struct ZeroPage<'a> {
    pub e820: &'a [E820Entry],
    pub cmdline_addr: u64,
    /// Length of the command line without its NUL terminator.
    pub cmdline_len: usize,
    /// (guest address, size) of the initrd.
    pub initrd: Option<(u64, u64)>,
}

#[derive(Debug, PartialEq, Eq)]
pub struct TooManyE820Entries(pub usize);

fn put_u8(p: &mut [u8], off: usize, v: u8) {
    p[off] = v;
}
fn put_u16(p: &mut [u8], off: usize, v: u16) {
    p[off..off + 2].copy_from_slice(&v.to_le_bytes());
}
fn put_u32(p: &mut [u8], off: usize, v: u32) {
    p[off..off + 4].copy_from_slice(&v.to_le_bytes());
}
fn put_u64(p: &mut [u8], off: usize, v: u64) {
    p[off..off + 8].copy_from_slice(&v.to_le_bytes());
}

impl ZeroPage<'_> {
    pub fn build(&self) -> Result<[u8; ZERO_PAGE_SIZE], TooManyE820Entries> {
        if self.e820.len() > E820_MAX_ENTRIES {
            return Err(TooManyE820Entries(self.e820.len()));
        }
        let mut p = [0u8; ZERO_PAGE_SIZE];
        put_u16(&mut p, BOOT_FLAG, BOOT_FLAG_MAGIC);
        put_u32(&mut p, HEADER, HEADER_MAGIC);
        put_u16(&mut p, VERSION, PROTOCOL_VERSION);
        put_u8(&mut p, TYPE_OF_LOADER, LOADER_UNDEFINED);
        put_u8(&mut p, LOADFLAGS, LOADED_HIGH);
        put_u32(&mut p, CMD_LINE_PTR, self.cmdline_addr as u32);
        put_u32(&mut p, EXT_CMD_LINE_PTR, (self.cmdline_addr >> 32) as u32);
        put_u32(&mut p, CMDLINE_SIZE, self.cmdline_len as u32);
        if let Some((addr, size)) = self.initrd {
            put_u32(&mut p, RAMDISK_IMAGE, addr as u32);
            put_u32(&mut p, EXT_RAMDISK_IMAGE, (addr >> 32) as u32);
            put_u32(&mut p, RAMDISK_SIZE, size as u32);
            put_u32(&mut p, EXT_RAMDISK_SIZE, (size >> 32) as u32);
        }
        put_u8(&mut p, E820_ENTRIES, self.e820.len() as u8);
        for (i, e) in self.e820.iter().enumerate() {
            let off = E820_TABLE + i * E820_ENTRY_SIZE;
            put_u64(&mut p, off, e.addr);
            put_u64(&mut p, off + 8, e.size);
            put_u32(&mut p, off + 16, e.kind);
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u32_at(p: &[u8], off: usize) -> u32 {
        u32::from_le_bytes(p[off..off + 4].try_into().unwrap())
    }
    fn u64_at(p: &[u8], off: usize) -> u64 {
        u64::from_le_bytes(p[off..off + 8].try_into().unwrap())
    }

    #[test]
    fn e820_for_small_and_large_guests() {
        let small = e820_map(128 << 20);
        assert_eq!(small.len(), 3);
        assert_eq!(small[0], E820Entry { addr: 0, size: 0x9fc00, kind: E820_RAM });
        assert_eq!(small[1].kind, E820_RESERVED);
        assert_eq!(small[2], E820Entry { addr: 0x10_0000, size: (128 << 20) - 0x10_0000, kind: E820_RAM });
        let big = e820_map(6 << 30);
        assert_eq!(big[2].addr + big[2].size, 0xc000_0000);
        assert_eq!(big[3], E820Entry { addr: 1 << 32, size: 3 << 30, kind: E820_RAM });
        // No RAM entry ever overlaps the MMIO hole.
        for e in &big {
            assert!(e.addr + e.size <= MMIO_HOLE_START || e.addr >= MMIO_HOLE_END);
        }
    }

    #[test]
    fn zero_page_fields_land_at_their_offsets() {
        let map = e820_map(128 << 20);
        let zp = ZeroPage { e820: &map, cmdline_addr: CMDLINE_ADDR, cmdline_len: 42, initrd: Some((0x7f0_0000, 0x12345)) };
        let p = zp.build().unwrap();
        assert_eq!(&p[0x1fe..0x200], &[0x55, 0xaa]);
        assert_eq!(&p[0x202..0x206], b"HdrS");
        assert_eq!(u32_at(&p, 0x206) & 0xffff, 0x020f);
        assert_eq!(p[0x210], 0xff);
        assert_eq!(u32_at(&p, 0x228), CMDLINE_ADDR as u32);
        assert_eq!(u32_at(&p, 0x238), 42);
        assert_eq!(u32_at(&p, 0x218), 0x7f0_0000);
        assert_eq!(u32_at(&p, 0x21c), 0x12345);
        assert_eq!(p[0x1e8], 3);
        assert_eq!(u64_at(&p, 0x2d0 + 2 * 20), 0x10_0000);
        assert_eq!(u32_at(&p, 0x2d0 + 2 * 20 + 16), E820_RAM);
    }

    #[test]
    fn rejects_oversized_e820() {
        let map = vec![E820Entry { addr: 0, size: 1, kind: 1 }; 129];
        let zp = ZeroPage { e820: &map, cmdline_addr: 0, cmdline_len: 0, initrd: None };
        assert_eq!(zp.build().unwrap_err(), TooManyE820Entries(129));
    }
}
