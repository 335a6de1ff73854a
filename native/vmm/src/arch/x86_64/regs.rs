//! Boot-time CPU state for the 64-bit Linux boot protocol: long mode with
//! paging on, a flat GDT (`__BOOT_CS` = 0x10, `__BOOT_DS` = 0x18), the low
//! 4 GiB identity-mapped with 2 MiB pages, RIP at the kernel entry and RSI
//! pointing at the zero page. Pure builders here; the vCPU applies them.

use super::layout::*;
use crate::hv::kvm::{kvm_fpu, kvm_lapic_state, kvm_msr_entry, kvm_regs, kvm_segment, kvm_sregs};
use crate::memory::{GuestMemory, OutOfBounds};

pub const BOOT_CS: u16 = 0x10;
pub const BOOT_DS: u16 = 0x18;
pub const BOOT_TSS: u16 = 0x20;

const CR0_PE: u64 = 1;
const CR0_ET: u64 = 1 << 4;
const CR0_PG: u64 = 1 << 31;
const CR4_PAE: u64 = 1 << 5;
const EFER_LME: u64 = 1 << 8;
const EFER_LMA: u64 = 1 << 10;

const PTE_PRESENT: u64 = 1;
const PTE_RW: u64 = 1 << 1;
const PTE_PS: u64 = 1 << 7;

/// Encodes a legacy GDT descriptor. `flags` holds the access byte in bits
/// 0..8 and the G/DB/L/AVL nibble in bits 12..16.
pub const fn gdt_entry(flags: u16, base: u32, limit: u32) -> u64 {
    let base = base as u64;
    let limit = limit as u64;
    let flags = flags as u64;
    ((base & 0xff00_0000) << 32)
        | ((flags & 0xf0ff) << 40)
        | ((limit & 0x000f_0000) << 32)
        | ((base & 0x00ff_ffff) << 16)
        | (limit & 0xffff)
}

/// The boot GDT: two nulls, 64-bit code, flat data, a 16-byte TSS.
pub fn gdt() -> [u64; 6] {
    [
        0,
        0,
        gdt_entry(0xa09b, 0, 0xfffff),                   // 0x10: code, L=1, G=1
        gdt_entry(0xc093, 0, 0xfffff),                   // 0x18: data, DB=1, G=1
        gdt_entry(0x008b, TSS_ADDR as u32, 0x67),        // 0x20: busy 64-bit TSS
        0,                                               //       (base bits 63..32)
    ]
}

/// Decodes a descriptor into the form KVM_SET_SREGS wants.
pub fn segment(entry: u64, selector: u16) -> kvm_segment {
    let base = ((entry >> 16) & 0x00ff_ffff) | ((entry >> 32) & 0xff00_0000);
    let raw_limit = ((entry & 0xffff) | ((entry >> 32) & 0x000f_0000)) as u32;
    let g = ((entry >> 55) & 1) as u8;
    let present = ((entry >> 47) & 1) as u8;
    kvm_segment {
        base,
        limit: if g == 1 { (raw_limit << 12) | 0xfff } else { raw_limit },
        selector,
        type_: ((entry >> 40) & 0xf) as u8,
        present,
        dpl: ((entry >> 45) & 3) as u8,
        db: ((entry >> 54) & 1) as u8,
        s: ((entry >> 44) & 1) as u8,
        l: ((entry >> 53) & 1) as u8,
        g,
        avl: ((entry >> 52) & 1) as u8,
        unusable: (present == 0) as u8,
        padding: 0,
    }
}

/// The identity map: PML4 → one PDPT → four PDs of 2 MiB pages (4 GiB).
/// Returned as the bytes to place at `PML4_ADDR` (PML4, PDPT, PDs in a row).
pub fn page_tables() -> Vec<u8> {
    let pages = 2 + IDENTITY_MAPPED_GIB as usize;
    let mut t = vec![0u64; pages * 512];
    t[0] = PDPT_ADDR | PTE_PRESENT | PTE_RW;
    for g in 0..IDENTITY_MAPPED_GIB as usize {
        t[512 + g] = (PD_ADDR + g as u64 * 0x1000) | PTE_PRESENT | PTE_RW;
        for j in 0..512 {
            let phys = ((g * 512 + j) as u64) << 21;
            t[1024 + g * 512 + j] = phys | PTE_PRESENT | PTE_RW | PTE_PS;
        }
    }
    t.iter().flat_map(|e| e.to_le_bytes()).collect()
}

/// Writes the GDT, an empty IDT, the TSS and the page tables.
pub fn write_boot_tables(mem: &GuestMemory) -> Result<(), OutOfBounds> {
    let g: Vec<u8> = gdt().iter().flat_map(|e| e.to_le_bytes()).collect();
    mem.write(GDT_ADDR, &g)?;
    mem.write(IDT_ADDR, &[0u8; 8])?;
    mem.write(TSS_ADDR, &[0u8; 0x68])?;
    mem.write(PML4_ADDR, &page_tables())
}

/// Long-mode special registers, starting from what KVM reported.
pub fn boot_sregs(mut s: kvm_sregs) -> kvm_sregs {
    let g = gdt();
    s.gdt.base = GDT_ADDR;
    s.gdt.limit = (std::mem::size_of_val(&g) - 1) as u16;
    s.idt.base = IDT_ADDR;
    s.idt.limit = 7;
    s.cs = segment(g[2], BOOT_CS);
    let data = segment(g[3], BOOT_DS);
    s.ds = data;
    s.es = data;
    s.fs = data;
    s.gs = data;
    s.ss = data;
    s.tr = segment(g[4], BOOT_TSS);
    s.cr3 = PML4_ADDR;
    s.cr4 |= CR4_PAE;
    s.cr0 = CR0_PE | CR0_ET | CR0_PG;
    s.efer |= EFER_LME | EFER_LMA;
    s
}

pub fn boot_regs(entry: u64) -> kvm_regs {
    kvm_regs {
        rip: entry,
        rsi: ZERO_PAGE_ADDR,
        rsp: BOOT_STACK_TOP,
        rbp: BOOT_STACK_TOP,
        rflags: 0x2,
        ..Default::default()
    }
}

pub fn boot_fpu() -> kvm_fpu {
    kvm_fpu { fcw: 0x37f, mxcsr: 0x1f80, ..Default::default() }
}

pub const MSR_IA32_TSC: u32 = 0x10;
pub const MSR_IA32_SYSENTER_CS: u32 = 0x174;
pub const MSR_IA32_SYSENTER_ESP: u32 = 0x175;
pub const MSR_IA32_SYSENTER_EIP: u32 = 0x176;
pub const MSR_IA32_MISC_ENABLE: u32 = 0x1a0;
pub const MSR_IA32_PAT: u32 = 0x277;
pub const MSR_MTRR_DEF_TYPE: u32 = 0x2ff;
pub const MSR_IA32_TSC_DEADLINE: u32 = 0x6e0;
pub const MSR_STAR: u32 = 0xc000_0081;
pub const MSR_LSTAR: u32 = 0xc000_0082;
pub const MSR_CSTAR: u32 = 0xc000_0083;
pub const MSR_SYSCALL_MASK: u32 = 0xc000_0084;
pub const MSR_KERNEL_GS_BASE: u32 = 0xc000_0102;
pub const MSR_KVM_WALL_CLOCK_NEW: u32 = 0x4b56_4d00;
pub const MSR_KVM_SYSTEM_TIME_NEW: u32 = 0x4b56_4d01;
pub const MSR_KVM_ASYNC_PF_EN: u32 = 0x4b56_4d02;
pub const MSR_KVM_STEAL_TIME: u32 = 0x4b56_4d03;
pub const MSR_KVM_PV_EOI_EN: u32 = 0x4b56_4d04;

/// MSRs initialised at boot (everything else keeps KVM's reset value).
pub fn boot_msrs() -> Vec<kvm_msr_entry> {
    let m = |index, data| kvm_msr_entry { index, reserved: 0, data };
    vec![
        m(MSR_IA32_SYSENTER_CS, 0),
        m(MSR_IA32_SYSENTER_ESP, 0),
        m(MSR_IA32_SYSENTER_EIP, 0),
        m(MSR_STAR, 0),
        m(MSR_CSTAR, 0),
        m(MSR_KERNEL_GS_BASE, 0),
        m(MSR_SYSCALL_MASK, 0),
        m(MSR_LSTAR, 0),
        m(MSR_IA32_MISC_ENABLE, 1), // fast strings
    ]
}

pub const MSR_TSC_AUX: u32 = 0xc000_0103;
/// Variable-range MTRRs: base/mask pairs 0x200..0x20f (KVM offers 8 pairs).
pub const MSR_MTRR_PHYS_BASE0: u32 = 0x200;
pub const MSR_MTRR_FIX_64K_00000: u32 = 0x250;
pub const MSR_MTRR_FIX_16K_80000: u32 = 0x258;
pub const MSR_MTRR_FIX_16K_A0000: u32 = 0x259;
/// Fixed-range 4K MTRRs: 0x268..0x26f.
pub const MSR_MTRR_FIX_4K_C0000: u32 = 0x268;

/// MSRs a vCPU state save reads besides KVM_GET_MSR_INDEX_LIST (those KVM
/// cannot read for the vCPU are skipped). KVM's list leaves out the MTRRs
/// and TSC_AUX, which a guest sets and reads back; the others are here so
/// that a KVM with a short list still gets the essentials.
pub const STATE_MSRS: &[u32] = &[
    MSR_IA32_TSC,
    MSR_IA32_SYSENTER_CS,
    MSR_IA32_SYSENTER_ESP,
    MSR_IA32_SYSENTER_EIP,
    MSR_IA32_MISC_ENABLE,
    MSR_IA32_PAT,
    MSR_MTRR_DEF_TYPE,
    MSR_IA32_TSC_DEADLINE,
    MSR_STAR,
    MSR_LSTAR,
    MSR_CSTAR,
    MSR_SYSCALL_MASK,
    MSR_KERNEL_GS_BASE,
    MSR_KVM_WALL_CLOCK_NEW,
    MSR_KVM_SYSTEM_TIME_NEW,
    MSR_KVM_ASYNC_PF_EN,
    MSR_KVM_STEAL_TIME,
    MSR_KVM_PV_EOI_EN,
    MSR_TSC_AUX,
    MSR_MTRR_PHYS_BASE0,
    MSR_MTRR_PHYS_BASE0 + 1,
    MSR_MTRR_PHYS_BASE0 + 2,
    MSR_MTRR_PHYS_BASE0 + 3,
    MSR_MTRR_PHYS_BASE0 + 4,
    MSR_MTRR_PHYS_BASE0 + 5,
    MSR_MTRR_PHYS_BASE0 + 6,
    MSR_MTRR_PHYS_BASE0 + 7,
    MSR_MTRR_PHYS_BASE0 + 8,
    MSR_MTRR_PHYS_BASE0 + 9,
    MSR_MTRR_PHYS_BASE0 + 10,
    MSR_MTRR_PHYS_BASE0 + 11,
    MSR_MTRR_PHYS_BASE0 + 12,
    MSR_MTRR_PHYS_BASE0 + 13,
    MSR_MTRR_PHYS_BASE0 + 14,
    MSR_MTRR_PHYS_BASE0 + 15,
    MSR_MTRR_FIX_64K_00000,
    MSR_MTRR_FIX_16K_80000,
    MSR_MTRR_FIX_16K_A0000,
    MSR_MTRR_FIX_4K_C0000,
    MSR_MTRR_FIX_4K_C0000 + 1,
    MSR_MTRR_FIX_4K_C0000 + 2,
    MSR_MTRR_FIX_4K_C0000 + 3,
    MSR_MTRR_FIX_4K_C0000 + 4,
    MSR_MTRR_FIX_4K_C0000 + 5,
    MSR_MTRR_FIX_4K_C0000 + 6,
    MSR_MTRR_FIX_4K_C0000 + 7,
];

const APIC_LVT0: usize = 0x350;
const APIC_LVT1: usize = 0x360;
const APIC_MODE_NMI: u32 = 0x4;
const APIC_MODE_EXTINT: u32 = 0x7;

fn set_delivery_mode(lapic: &mut kvm_lapic_state, reg: usize, mode: u32) {
    let mut b = [0u8; 4];
    b.copy_from_slice(&lapic.regs[reg..reg + 4]);
    let v = (u32::from_le_bytes(b) & !0x700) | (mode << 8);
    lapic.regs[reg..reg + 4].copy_from_slice(&v.to_le_bytes());
}

/// LINT0 = ExtINT (the PIC, virtual-wire mode), LINT1 = NMI, as the MP
/// table's local interrupt entries say.
pub fn set_lint(lapic: &mut kvm_lapic_state) {
    set_delivery_mode(lapic, APIC_LVT0, APIC_MODE_EXTINT);
    set_delivery_mode(lapic, APIC_LVT1, APIC_MODE_NMI);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gdt_descriptors_decode_as_linux_expects() {
        let g = gdt();
        assert_eq!(g[2], 0x00af_9b00_0000_ffff);
        assert_eq!(g[3], 0x00cf_9300_0000_ffff);
        let cs = segment(g[2], BOOT_CS);
        assert_eq!((cs.type_, cs.s, cs.l, cs.db, cs.g, cs.present), (0xb, 1, 1, 0, 1, 1));
        assert_eq!(cs.limit, 0xffff_ffff);
        let ds = segment(g[3], BOOT_DS);
        assert_eq!((ds.type_, ds.db, ds.l), (3, 1, 0));
        let tr = segment(g[4], BOOT_TSS);
        assert_eq!((tr.base, tr.limit, tr.type_, tr.s, tr.g), (TSS_ADDR, 0x67, 0xb, 0, 0));
        assert_eq!(segment(0, 0).unusable, 1);
    }

    #[test]
    fn identity_map_covers_low_4gib() {
        let t = page_tables();
        let e = |i: usize| u64::from_le_bytes(t[i * 8..i * 8 + 8].try_into().unwrap());
        assert_eq!(e(0), PDPT_ADDR | 3);
        assert_eq!(e(512 + 3), (PD_ADDR + 0x3000) | 3);
        assert_eq!(e(1024), 0x83);
        assert_eq!(e(1024 + 8), (16 << 20) | 0x83);
        assert_eq!(e(1024 + 4 * 512 - 1), (0xffe0_0000) | 0x83);
    }

    #[test]
    fn sregs_enter_long_mode() {
        let s = boot_sregs(kvm_sregs::default());
        assert_eq!(s.cr0 & 0x8000_0001, 0x8000_0001);
        assert_eq!(s.efer & 0x500, 0x500);
        assert_eq!(s.cr4 & 0x20, 0x20);
        assert_eq!(s.cs.selector, 0x10);
        assert_eq!(s.ss.selector, 0x18);
        let r = boot_regs(0x100_0000);
        assert_eq!((r.rip, r.rsi, r.rflags), (0x100_0000, ZERO_PAGE_ADDR, 2));
    }

    #[test]
    fn lint_pins_get_extint_and_nmi() {
        let mut l = kvm_lapic_state::default();
        l.regs[0x350..0x354].copy_from_slice(&0x0001_0700u32.to_le_bytes());
        set_lint(&mut l);
        assert_eq!(u32::from_le_bytes(l.regs[0x350..0x354].try_into().unwrap()), 0x0001_0700);
        assert_eq!(u32::from_le_bytes(l.regs[0x360..0x364].try_into().unwrap()), 0x400);
    }
}
