//! Guest physical memory layout (docs/guest-contract.md, "Machine").
//!
//! ```text
//! 0x0000_0500  GDT (boot segments)        0x0000_0600  IDT (empty)
//! 0x0000_6000  TSS (zeroed, for TR)       0x0000_7000  zero page (boot_params)
//! 0x0000_8ff0  boot stack top             0x0000_9000  PML4, PDPT, 4 PDs
//! 0x0002_0000  kernel command line        0x0009_fc00  MP table (last KiB < 640K)
//! 0x0010_0000  first byte the kernel may load at (vmlinux: 16 MiB)
//!   ... RAM ...                           initrd: page-aligned at the top of
//!                                         RAM below the 32-bit hole
//! 0xc000_0000  MMIO hole start            0xd000_0000  virtio-mmio slots, 4 KiB each
//! 0xfec0_0000  IOAPIC                     0xfee0_0000  local APIC
//! 0xfeff_c000  KVM identity-map page      0xfeff_d000  KVM TSS (3 pages)
//! 0x1_0000_0000 RAM continues for guests larger than 3 GiB
//! ```

pub const GDT_ADDR: u64 = 0x500;
pub const IDT_ADDR: u64 = 0x600;
pub const TSS_ADDR: u64 = 0x6000;
pub const ZERO_PAGE_ADDR: u64 = 0x7000;
pub const BOOT_STACK_TOP: u64 = 0x8ff0;
pub const PML4_ADDR: u64 = 0x9000;
pub const PDPT_ADDR: u64 = 0xa000;
/// Four page directories (one per GiB), identity-mapping the low 4 GiB.
pub const PD_ADDR: u64 = 0xb000;
pub const IDENTITY_MAPPED_GIB: u64 = 4;
pub const CMDLINE_ADDR: u64 = 0x20000;
/// Linux/x86 COMMAND_LINE_SIZE, including the terminating NUL.
pub const CMDLINE_MAX: usize = 2048;

/// End of conventional RAM reported as usable below 1 MiB; the MP table
/// sits in the last KiB below 640 KiB, which Linux scans.
pub const MPTABLE_ADDR: u64 = 0x9fc00;
pub const EBDA_END: u64 = 0xa0000;
pub const HIMEM_START: u64 = 0x10_0000;

pub const MMIO_HOLE_START: u64 = 0xc000_0000;
pub const MMIO_HOLE_END: u64 = 0x1_0000_0000;

pub const VIRTIO_MMIO_BASE: u64 = 0xd000_0000;
pub const VIRTIO_MMIO_SLOT_SIZE: u64 = 0x1000;
/// First virtio-mmio IRQ; slot n uses VIRTIO_IRQ_BASE + n.
pub const VIRTIO_IRQ_BASE: u32 = 5;
/// IOAPIC pins available to devices (KVM's IOAPIC has 24).
pub const IOAPIC_PINS: u32 = 24;

pub const KVM_IDENTITY_MAP_ADDR: u64 = 0xfeff_c000;
pub const KVM_TSS_ADDR: u64 = 0xfeff_d000;
pub const IOAPIC_ADDR: u64 = 0xfec0_0000;
pub const LAPIC_ADDR: u64 = 0xfee0_0000;

pub const COM1_PORT: u16 = 0x3f8;
pub const COM1_IRQ: u32 = 4;
pub const COM2_PORT: u16 = 0x2f8;
pub const COM2_IRQ: u32 = 3;
pub const EXIT_PORT: u16 = 0xf4;
pub const MILESTONE_PORT: u16 = 0xf5;

/// Where slot `n` of the virtio-mmio window lives and which IRQ it raises,
/// or None when the IOAPIC has no pin left for it.
pub fn virtio_slot(n: usize) -> Option<(u64, u32)> {
    let irq = VIRTIO_IRQ_BASE.checked_add(u32::try_from(n).ok()?)?;
    (irq < IOAPIC_PINS).then(|| (VIRTIO_MMIO_BASE + n as u64 * VIRTIO_MMIO_SLOT_SIZE, irq))
}

/// End of RAM below the 32-bit hole (where the initrd goes).
pub fn low_ram_end(size: u64) -> u64 {
    size.min(MMIO_HOLE_START)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_structures_do_not_overlap() {
        let mut spans = [
            (GDT_ADDR, 0x100),
            (IDT_ADDR, 0x10),
            (TSS_ADDR, 0x68),
            (ZERO_PAGE_ADDR, 0x1000),
            (BOOT_STACK_TOP - 0x800, 0x800),
            (PML4_ADDR, 0x1000),
            (PDPT_ADDR, 0x1000),
            (PD_ADDR, IDENTITY_MAPPED_GIB * 0x1000),
            (CMDLINE_ADDR, CMDLINE_MAX as u64),
            (MPTABLE_ADDR, EBDA_END - MPTABLE_ADDR),
        ];
        spans.sort();
        for w in spans.windows(2) {
            assert!(w[0].0 + w[0].1 <= w[1].0, "{:#x?} overlaps {:#x?}", w[0], w[1]);
        }
        assert!(MPTABLE_ADDR + 0x400 <= HIMEM_START);
    }

    #[test]
    fn virtio_slots_and_ram_regions() {
        assert_eq!(virtio_slot(0), Some((0xd000_0000, 5)));
        assert_eq!(virtio_slot(2), Some((0xd000_2000, 7)));
        assert_eq!(virtio_slot(18), Some((0xd001_2000, 23)));
        assert_eq!(virtio_slot(19), None);
        assert_eq!(low_ram_end(4 << 30), 3 << 30);
    }
}
