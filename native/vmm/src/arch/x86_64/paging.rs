//! Guest virtual → physical translation by walking the guest's own page
//! tables, for diagnostics only (printing the code bytes at RIP when the
//! guest dies). Supports paging off, 4-level and 5-level long mode.

const CR0_PG: u64 = 1 << 31;
const CR4_PAE: u64 = 1 << 5;
const CR4_LA57: u64 = 1 << 12;
const EFER_LMA: u64 = 1 << 10;
const PRESENT: u64 = 1;
const PAGE_SIZE_BIT: u64 = 1 << 7;
const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;

#[derive(Debug, Clone, Copy)]
pub struct PagingRegs {
    pub cr0: u64,
    pub cr3: u64,
    pub cr4: u64,
    pub efer: u64,
}

/// Translates `vaddr`; `read_u64` reads guest physical memory. None when
/// the address is not mapped or the paging mode is not supported here.
pub fn translate(regs: PagingRegs, vaddr: u64, read_u64: &dyn Fn(u64) -> Option<u64>) -> Option<u64> {
    if regs.cr0 & CR0_PG == 0 {
        return Some(vaddr);
    }
    if regs.efer & EFER_LMA == 0 || regs.cr4 & CR4_PAE == 0 {
        return None; // 32-bit paging: never used by our boot path
    }
    let levels = if regs.cr4 & CR4_LA57 != 0 { 5 } else { 4 };
    let mut table = regs.cr3 & ADDR_MASK;
    for level in (1..=levels).rev() {
        let shift = 12 + 9 * (level - 1);
        let index = (vaddr >> shift) & 0x1ff;
        let entry = read_u64(table + index * 8)?;
        if entry & PRESENT == 0 {
            return None;
        }
        // 1 GiB (level 3) and 2 MiB (level 2) pages.
        if (level == 2 || level == 3) && entry & PAGE_SIZE_BIT != 0 {
            let page_mask = (1u64 << shift) - 1;
            return Some((entry & ADDR_MASK & !page_mask) | (vaddr & page_mask));
        }
        table = entry & ADDR_MASK;
    }
    Some(table | (vaddr & 0xfff))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn walks_4k_2m_and_identity() {
        let mut m: HashMap<u64, u64> = HashMap::new();
        let va: u64 = 0xffff_ffff_8100_0123;
        let (i4, i3, i2, i1) = ((va >> 39) & 0x1ff, (va >> 30) & 0x1ff, (va >> 21) & 0x1ff, (va >> 12) & 0x1ff);
        m.insert(0x1000 + i4 * 8, 0x2000 | 3);
        m.insert(0x2000 + i3 * 8, 0x3000 | 3);
        m.insert(0x3000 + i2 * 8, 0x4000 | 3);
        m.insert(0x4000 + i1 * 8, 0x123_4000 | 3);
        let read = |a: u64| m.get(&a).copied().or(Some(0));
        let regs = PagingRegs { cr0: CR0_PG | 1, cr3: 0x1000, cr4: CR4_PAE, efer: EFER_LMA | (1 << 8) };
        assert_eq!(translate(regs, va, &read), Some(0x123_4123));
        assert_eq!(translate(regs, 0x5000, &read), None, "not mapped");
        // A 2 MiB page.
        m.insert(0x3000 + i2 * 8, 0x0200_0000 | 0x83);
        let read = |a: u64| m.get(&a).copied().or(Some(0));
        assert_eq!(translate(regs, va, &read), Some(0x0200_0000 | (va & 0x1f_ffff)));
        // Paging off: physical = virtual.
        let off = PagingRegs { cr0: 1, ..regs };
        assert_eq!(translate(off, 0x1234, &read), Some(0x1234));
        // Unreadable table memory.
        assert_eq!(translate(regs, va, &|_| None), None);
    }
}
