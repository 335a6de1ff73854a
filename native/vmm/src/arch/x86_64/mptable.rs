//! The Intel MultiProcessor table (MP spec 1.4): how a guest without ACPI
//! learns its CPUs, its IOAPIC and the ISA interrupt wiring. Placed in the
//! last KiB below 640 KiB, one of the areas Linux scans for `_MP_`.

use super::layout::{IOAPIC_ADDR, LAPIC_ADDR};

const SPEC_REV: u8 = 4;
const APIC_VERSION: u8 = 0x14;
const IOAPIC_VERSION: u8 = 0x11;
const CPU_ENABLED: u8 = 1;
const CPU_BOOTSTRAP: u8 = 2;
const CPU_SIGNATURE: u32 = 0x600; // family 6
const CPU_FEATURES: u32 = (1 << 0) | (1 << 9); // FPU, APIC

const ENTRY_PROCESSOR: u8 = 0;
const ENTRY_BUS: u8 = 1;
const ENTRY_IOAPIC: u8 = 2;
const ENTRY_IO_INTERRUPT: u8 = 3;
const ENTRY_LOCAL_INTERRUPT: u8 = 4;

const INT_VECTORED: u8 = 0;
const INT_NMI: u8 = 1;
const INT_EXTINT: u8 = 3;

const FLOATING_LEN: usize = 16;
const HEADER_LEN: usize = 44;
const PROCESSOR_LEN: usize = 20;

/// Room the table may use (from the floating pointer to 640 KiB).
pub const MAX_SIZE: usize = 0x400;

#[derive(Debug, PartialEq, Eq)]
pub enum MpTableError {
    TooManyCpus(u32),
    TooLarge(usize),
}

impl std::fmt::Display for MpTableError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MpTableError::TooManyCpus(n) => write!(f, "{n} vCPUs do not fit in an MP table"),
            MpTableError::TooLarge(n) => write!(f, "MP table of {n} bytes exceeds {MAX_SIZE}"),
        }
    }
}

fn checksum(bytes: &[u8]) -> u8 {
    0u8.wrapping_sub(bytes.iter().fold(0u8, |a, b| a.wrapping_add(*b)))
}

/// Builds the floating pointer followed by the configuration table, to be
/// written at guest physical `addr`. `irqs` lists every interrupt line in
/// use above the ISA range too (virtio slots); ISA IRQs 0..16 are always
/// described. CPUs have APIC ids 0..cpus; the IOAPIC takes id `cpus`.
pub fn build(addr: u64, cpus: u32, irqs: &[u32]) -> Result<Vec<u8>, MpTableError> {
    if cpus == 0 || cpus >= 0xff {
        return Err(MpTableError::TooManyCpus(cpus));
    }
    let ioapic_id = cpus as u8;
    let mut entries: Vec<u8> = Vec::new();
    let mut count: u16 = 0;

    for id in 0..cpus {
        let mut e = [0u8; PROCESSOR_LEN];
        e[0] = ENTRY_PROCESSOR;
        e[1] = id as u8;
        e[2] = APIC_VERSION;
        e[3] = CPU_ENABLED | if id == 0 { CPU_BOOTSTRAP } else { 0 };
        e[4..8].copy_from_slice(&CPU_SIGNATURE.to_le_bytes());
        e[8..12].copy_from_slice(&CPU_FEATURES.to_le_bytes());
        entries.extend_from_slice(&e);
        count += 1;
    }

    entries.extend_from_slice(&[ENTRY_BUS, 0, b'I', b'S', b'A', b' ', b' ', b' ']);
    count += 1;

    let mut ioapic = [ENTRY_IOAPIC, ioapic_id, IOAPIC_VERSION, 1, 0, 0, 0, 0];
    ioapic[4..8].copy_from_slice(&(IOAPIC_ADDR as u32).to_le_bytes());
    entries.extend_from_slice(&ioapic);
    count += 1;

    // ISA IRQ n → IOAPIC pin n (KVM's default GSI routing), conforming
    // polarity/trigger (edge, active high). IRQ 2 is the PIC cascade.
    let top = irqs.iter().copied().map(|i| i + 1).max().unwrap_or(0).max(16);
    for irq in (0..top).filter(|i| *i != 2) {
        if irq >= 16 && !irqs.contains(&irq) {
            continue;
        }
        entries.extend_from_slice(&[ENTRY_IO_INTERRUPT, INT_VECTORED, 0, 0, 0, irq as u8, ioapic_id, irq as u8]);
        count += 1;
    }

    // Local interrupts on every APIC: LINT0 = ExtINT, LINT1 = NMI.
    entries.extend_from_slice(&[ENTRY_LOCAL_INTERRUPT, INT_EXTINT, 0, 0, 0, 0, 0xff, 0]);
    entries.extend_from_slice(&[ENTRY_LOCAL_INTERRUPT, INT_NMI, 0, 0, 0, 0, 0xff, 1]);
    count += 2;

    let table_len = HEADER_LEN + entries.len();
    let total = FLOATING_LEN + table_len;
    if total > MAX_SIZE {
        return Err(MpTableError::TooLarge(total));
    }

    let table_addr = addr + FLOATING_LEN as u64;
    let mut fp = [0u8; FLOATING_LEN];
    fp[0..4].copy_from_slice(b"_MP_");
    fp[4..8].copy_from_slice(&(table_addr as u32).to_le_bytes());
    fp[8] = 1; // length in 16-byte units
    fp[9] = SPEC_REV;
    fp[10] = checksum(&fp);

    let mut hdr = [0u8; HEADER_LEN];
    hdr[0..4].copy_from_slice(b"PCMP");
    hdr[4..6].copy_from_slice(&(table_len as u16).to_le_bytes());
    hdr[6] = SPEC_REV;
    hdr[8..16].copy_from_slice(b"STASIS  ");
    hdr[16..28].copy_from_slice(b"MICROVM     ");
    hdr[34..36].copy_from_slice(&count.to_le_bytes());
    hdr[36..40].copy_from_slice(&(LAPIC_ADDR as u32).to_le_bytes());

    let mut table = Vec::with_capacity(total);
    table.extend_from_slice(&fp);
    table.extend_from_slice(&hdr);
    table.extend_from_slice(&entries);
    table[FLOATING_LEN + 7] = checksum(&table[FLOATING_LEN..]);
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(b: &[u8]) -> u8 {
        b.iter().fold(0u8, |a, x| a.wrapping_add(*x))
    }

    #[test]
    fn checksums_and_counts_are_right() {
        for cpus in [1, 2, 8] {
            let t = build(0x9fc00, cpus, &[5, 6, 7]).unwrap();
            assert_eq!(&t[0..4], b"_MP_");
            assert_eq!(sum(&t[0..16]), 0, "floating pointer checksum");
            assert_eq!(u32::from_le_bytes(t[4..8].try_into().unwrap()), 0x9fc10);
            let table = &t[16..];
            assert_eq!(&table[0..4], b"PCMP");
            let len = u16::from_le_bytes(table[4..6].try_into().unwrap()) as usize;
            assert_eq!(len, table.len());
            assert_eq!(sum(table), 0, "config table checksum");
            let count = u16::from_le_bytes(table[34..36].try_into().unwrap()) as u32;
            // cpus + bus + ioapic + 15 ISA IRQs + 2 local
            assert_eq!(count, cpus + 1 + 1 + 15 + 2);
            assert_eq!(table[44 + 3], CPU_ENABLED | CPU_BOOTSTRAP);
        }
    }

    #[test]
    fn irqs_above_isa_get_entries_and_limits_hold() {
        let t = build(0x9fc00, 2, &[5, 20]).unwrap();
        let table = &t[16..];
        let count = u16::from_le_bytes(table[34..36].try_into().unwrap()) as u32;
        assert_eq!(count, 2 + 2 + 15 + 1 + 2);
        assert!(table.windows(8).any(|w| w == [3, 0, 0, 0, 0, 20, 2, 20]));
        assert!(!table.windows(8).any(|w| w == [3, 0, 0, 0, 0, 19, 2, 19]));
        assert_eq!(build(0, 0, &[]), Err(MpTableError::TooManyCpus(0)));
        assert!(matches!(build(0, 60, &[]), Err(MpTableError::TooLarge(_))));
    }
}
