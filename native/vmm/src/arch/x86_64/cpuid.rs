//! The guest's CPUID: what KVM supports, with per-vCPU topology filled in,
//! the hypervisor bit set, and — only on the `kvm_pvm` backend — the
//! features its instruction emulator cannot execute taken out.
//!
//! The compat table (`PVM_HIDDEN`) is the one place to extend when a guest
//! dies on an instruction the emulator lacks (KVM_EXIT_INTERNAL_ERROR with
//! the faulting bytes): find the feature that advertises the instruction
//! and add a row, with the reason. Hardware KVM never sees this table.

use crate::hv::kvm::kvm_cpuid_entry2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reg {
    Eax,
    Ebx,
    Ecx,
    Edx,
}

/// One CPUID feature bit: leaf, sub-leaf, register, bit.
#[derive(Debug, Clone, Copy)]
pub struct Feature {
    pub leaf: u32,
    pub subleaf: u32,
    pub reg: Reg,
    pub bit: u8,
    pub name: &'static str,
}

const fn f(leaf: u32, subleaf: u32, reg: Reg, bit: u8, name: &'static str) -> Feature {
    Feature { leaf, subleaf, reg, bit, name }
}

/// Features hidden from guests on `kvm_pvm`.
///
/// Why each group is here (see /work/shared/design/kvm-here.md):
/// - XSAVE family: XSAVE/XRSTOR are not emulated; everything whose state
///   lives in the XSAVE area goes with it (AVX, AVX2, FMA, F16C, AVX-512,
///   AMX, MPX, PKU, CET, XSAVEOPT/XSAVEC/XSAVES). Leaf 0xD is dropped too.
/// - CX16 (CMPXCHG16B), POPCNT, FSGSBASE (RD/WR{FS,GS}BASE), RDPID,
///   INVPCID, PCID, RDRAND, RDSEED: instructions the emulator lacks; a
///   Linux guest executes them in ring 0 when advertised.
/// - SMAP, SMEP, UMIP: hidden in the experiment that booted Linux here.
/// - ARCH_CAPABILITIES: the guest then reads MSR 0x10a, which failed.
/// - KVM PV features that issue hypercalls (PV IPIs, sched_yield, unhalt).
///
/// Measured on this machine's kvm_pvm: KVM_SET_CPUID2 is only partly
/// honoured. The guest's CPUID result is ORed with a fixed subset of the
/// host's features (leaf 1 ECX 0x76d81203 — XSAVE, POPCNT, RDRAND, FMA, AVX
/// among them; leaf 7.0 EBX 0x219c03ab — FSGSBASE, SMEP, SMAP, RDSEED,
/// AVX2…; leaf 7.0 ECX 0x600; leaf 0xD.1 EAX 7), whatever the VMM sets. The
/// guest kernel therefore also clears these features from its own view when
/// it sees `stasis_pvm` on its command line (native/kernel/patches/0001);
/// this table still decides every leaf and bit kvm_pvm does honour (the KVM
/// paravirt leaf, ARCH_CAPABILITIES, ...), and is what hardware would need.
pub const PVM_HIDDEN: &[Feature] = &[
    // leaf 1 ECX
    f(1, 0, Reg::Ecx, 12, "FMA"),
    f(1, 0, Reg::Ecx, 13, "CX16"),
    f(1, 0, Reg::Ecx, 17, "PCID"),
    f(1, 0, Reg::Ecx, 23, "POPCNT"),
    f(1, 0, Reg::Ecx, 26, "XSAVE"),
    f(1, 0, Reg::Ecx, 27, "OSXSAVE"),
    f(1, 0, Reg::Ecx, 28, "AVX"),
    f(1, 0, Reg::Ecx, 29, "F16C"),
    f(1, 0, Reg::Ecx, 30, "RDRAND"),
    // leaf 7.0 EBX
    f(7, 0, Reg::Ebx, 0, "FSGSBASE"),
    f(7, 0, Reg::Ebx, 5, "AVX2"),
    f(7, 0, Reg::Ebx, 7, "SMEP"),
    f(7, 0, Reg::Ebx, 10, "INVPCID"),
    f(7, 0, Reg::Ebx, 14, "MPX"),
    f(7, 0, Reg::Ebx, 16, "AVX512F"),
    f(7, 0, Reg::Ebx, 17, "AVX512DQ"),
    f(7, 0, Reg::Ebx, 18, "RDSEED"),
    f(7, 0, Reg::Ebx, 20, "SMAP"),
    f(7, 0, Reg::Ebx, 21, "AVX512_IFMA"),
    f(7, 0, Reg::Ebx, 26, "AVX512PF"),
    f(7, 0, Reg::Ebx, 27, "AVX512ER"),
    f(7, 0, Reg::Ebx, 28, "AVX512CD"),
    f(7, 0, Reg::Ebx, 30, "AVX512BW"),
    f(7, 0, Reg::Ebx, 31, "AVX512VL"),
    // leaf 7.0 ECX
    f(7, 0, Reg::Ecx, 1, "AVX512_VBMI"),
    f(7, 0, Reg::Ecx, 2, "UMIP"),
    f(7, 0, Reg::Ecx, 3, "PKU"),
    f(7, 0, Reg::Ecx, 4, "OSPKE"),
    f(7, 0, Reg::Ecx, 6, "AVX512_VBMI2"),
    f(7, 0, Reg::Ecx, 7, "CET_SS"),
    f(7, 0, Reg::Ecx, 9, "VAES"),
    f(7, 0, Reg::Ecx, 10, "VPCLMULQDQ"),
    f(7, 0, Reg::Ecx, 11, "AVX512_VNNI"),
    f(7, 0, Reg::Ecx, 12, "AVX512_BITALG"),
    f(7, 0, Reg::Ecx, 14, "AVX512_VPOPCNTDQ"),
    f(7, 0, Reg::Ecx, 22, "RDPID"),
    // leaf 7.0 EDX
    f(7, 0, Reg::Edx, 2, "AVX512_4VNNIW"),
    f(7, 0, Reg::Edx, 3, "AVX512_4FMAPS"),
    f(7, 0, Reg::Edx, 8, "AVX512_VP2INTERSECT"),
    f(7, 0, Reg::Edx, 20, "CET_IBT"),
    f(7, 0, Reg::Edx, 22, "AMX_BF16"),
    f(7, 0, Reg::Edx, 23, "AVX512_FP16"),
    f(7, 0, Reg::Edx, 24, "AMX_TILE"),
    f(7, 0, Reg::Edx, 25, "AMX_INT8"),
    f(7, 0, Reg::Edx, 29, "ARCH_CAPABILITIES"),
    // leaf 7.1 EAX
    f(7, 1, Reg::Eax, 4, "AVX_VNNI"),
    f(7, 1, Reg::Eax, 5, "AVX512_BF16"),
    // KVM paravirt features (leaf 0x4000_0001 EAX) that work by hypercall:
    // on kvm_pvm a guest VMCALL for PV_SEND_IPI never completed (vCPU 1
    // stuck on it while bringing up the second CPU).
    f(0x4000_0001, 0, Reg::Eax, 7, "KVM_PV_UNHALT"),
    f(0x4000_0001, 0, Reg::Eax, 11, "KVM_PV_SEND_IPI"),
    f(0x4000_0001, 0, Reg::Eax, 13, "KVM_PV_SCHED_YIELD"),
];

/// Leaves dropped entirely on `kvm_pvm`: 0xD enumerates XSAVE state.
pub const PVM_DROPPED_LEAVES: &[u32] = &[0xd];

const LEAF1_ECX_HYPERVISOR: u32 = 1 << 31;
const LEAF1_EDX_HTT: u32 = 1 << 28;

#[derive(Debug, Clone, Copy)]
pub struct CpuidOptions {
    /// Apply the `kvm_pvm` compat table.
    pub pvm: bool,
    /// This vCPU's index, which is also its APIC id.
    pub vcpu_id: u32,
    pub nr_vcpus: u32,
}

fn reg_mut(e: &mut kvm_cpuid_entry2, r: Reg) -> &mut u32 {
    match r {
        Reg::Eax => &mut e.eax,
        Reg::Ebx => &mut e.ebx,
        Reg::Ecx => &mut e.ecx,
        Reg::Edx => &mut e.edx,
    }
}

/// Bits needed to number `n` items (ceil(log2 n)).
fn bits_for(n: u32) -> u32 {
    if n <= 1 {
        0
    } else {
        32 - (n - 1).leading_zeros()
    }
}

/// Builds one vCPU's CPUID from KVM_GET_SUPPORTED_CPUID.
pub fn guest_cpuid(supported: &[kvm_cpuid_entry2], opts: CpuidOptions) -> Vec<kvm_cpuid_entry2> {
    let n = opts.nr_vcpus.max(1);
    let apic_id = opts.vcpu_id;
    let mut out: Vec<kvm_cpuid_entry2> = supported
        .iter()
        .filter(|e| !(opts.pvm && PVM_DROPPED_LEAVES.contains(&e.function)))
        .copied()
        .collect();

    for e in out.iter_mut() {
        if opts.pvm {
            let (function, index) = (e.function, e.index);
            for h in PVM_HIDDEN.iter().filter(|h| h.leaf == function && h.subleaf == index) {
                *reg_mut(e, h.reg) &= !(1u32 << h.bit);
            }
        }
        match e.function {
            1 => {
                e.ecx |= LEAF1_ECX_HYPERVISOR;
                // EBX[31:24] initial APIC id, [23:16] logical processors.
                e.ebx = (e.ebx & 0x0000_ffff) | (apic_id << 24) | ((n & 0xff) << 16);
                if n > 1 {
                    e.edx |= LEAF1_EDX_HTT;
                } else {
                    e.edx &= !LEAF1_EDX_HTT;
                }
            }
            4 => {
                // Deterministic cache parameters: one package of n cores,
                // one thread each; only the last level is shared.
                let level = (e.eax >> 5) & 0x7;
                let sharing = if level >= 3 { n - 1 } else { 0 };
                e.eax = (e.eax & 0x3fff) | ((sharing & 0xfff) << 14) | (((n - 1) & 0x3f) << 26);
            }
            0x8000_0008 => {
                // AMD: ECX[15:12] APIC id bits per package, [7:0] cores - 1.
                e.ecx = (e.ecx & !0xf0ff) | (bits_for(n) << 12) | ((n - 1) & 0xff);
            }
            0x8000_001e => {
                // AMD extended APIC id / compute unit (one core each) / node 0.
                e.eax = apic_id;
                e.ebx = apic_id & 0xff;
                e.ecx = 0;
            }
            0xb | 0x1f => {
                // Extended topology: SMT level of 1 thread, core level of n.
                let (shift, count, kind) = match e.index {
                    0 => (0, 1, 1),
                    1 => (bits_for(n), n, 2),
                    _ => (0, 0, 0),
                };
                e.eax = shift;
                e.ebx = count;
                e.ecx = (kind << 8) | (e.index & 0xff);
                e.edx = apic_id;
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(function: u32, index: u32, eax: u32, ebx: u32, ecx: u32, edx: u32) -> kvm_cpuid_entry2 {
        kvm_cpuid_entry2 { function, index, flags: 0, eax, ebx, ecx, edx, padding: [0; 3] }
    }

    fn find(v: &[kvm_cpuid_entry2], function: u32, index: u32) -> Option<kvm_cpuid_entry2> {
        v.iter().copied().find(|e| e.function == function && e.index == index)
    }

    fn host() -> Vec<kvm_cpuid_entry2> {
        vec![
            entry(0, 0, 0x1f, 0x756e_6547, 0x6c65_746e, 0x4965_6e69),
            entry(1, 0, 0x906ea, 0x0001_0800, 0xffff_ffff & !(1 << 31), 0xffff_ffff),
            entry(4, 0, (1 << 5) | 0x21, 0, 0, 0),
            entry(4, 3, (3 << 5) | 0x63, 0, 0, 0),
            entry(7, 0, 0, 0xffff_ffff, 0xffff_ffff, 0xffff_ffff),
            entry(7, 1, 0xffff_ffff, 0, 0, 0),
            entry(0xb, 0, 0, 0, 0, 0),
            entry(0xb, 1, 0, 0, 0, 0),
            entry(0xd, 0, 7, 0x240, 0x340, 0),
            entry(0xd, 1, 0xf, 0, 0, 0),
            entry(0x4000_0000, 0, 0x4000_0001, 0x4b4d_564b, 0x564b_4d56, 0x4d),
        ]
    }

    #[test]
    fn hardware_kvm_keeps_every_feature() {
        let out = guest_cpuid(&host(), CpuidOptions { pvm: false, vcpu_id: 0, nr_vcpus: 1 });
        assert_eq!(out.len(), host().len());
        let l1 = find(&out, 1, 0).unwrap();
        assert_eq!(l1.ecx, 0xffff_ffff, "features untouched, hypervisor bit on");
        assert_eq!(find(&out, 7, 0).unwrap().ebx, 0xffff_ffff);
        assert!(find(&out, 0xd, 0).is_some());
    }

    #[test]
    fn pvm_hides_the_compat_table_and_xsave_leaf() {
        let out = guest_cpuid(&host(), CpuidOptions { pvm: true, vcpu_id: 0, nr_vcpus: 1 });
        let l1 = find(&out, 1, 0).unwrap();
        for bit in [12, 13, 17, 23, 26, 27, 28, 29, 30] {
            assert_eq!(l1.ecx & (1 << bit), 0, "leaf 1 ecx bit {bit}");
        }
        assert_ne!(l1.ecx & (1 << 31), 0, "hypervisor bit set");
        assert_ne!(l1.ecx & (1 << 0), 0, "SSE3 kept");
        assert_ne!(l1.ecx & (1 << 19), 0, "SSE4.1 kept");
        let l7 = find(&out, 7, 0).unwrap();
        for bit in [0, 5, 7, 10, 16, 18, 20, 31] {
            assert_eq!(l7.ebx & (1 << bit), 0, "leaf 7 ebx bit {bit}");
        }
        assert_ne!(l7.ebx & (1 << 3), 0, "BMI1 kept");
        assert_ne!(l7.ebx & (1 << 9), 0, "ERMS kept");
        assert_eq!(l7.ecx & ((1 << 2) | (1 << 22)), 0, "UMIP, RDPID");
        assert_eq!(l7.edx & (1 << 29), 0, "ARCH_CAPABILITIES");
        assert_eq!(find(&out, 7, 1).unwrap().eax & 0x30, 0);
        assert!(find(&out, 0xd, 0).is_none() && find(&out, 0xd, 1).is_none());
        assert!(find(&out, 0x4000_0000, 0).is_some(), "KVM signature kept");
    }

    #[test]
    fn topology_is_per_vcpu() {
        let opts = |id| CpuidOptions { pvm: true, vcpu_id: id, nr_vcpus: 2 };
        let a = guest_cpuid(&host(), opts(0));
        let b = guest_cpuid(&host(), opts(1));
        assert_eq!(find(&a, 1, 0).unwrap().ebx >> 24, 0);
        assert_eq!(find(&b, 1, 0).unwrap().ebx >> 24, 1);
        assert_eq!((find(&b, 1, 0).unwrap().ebx >> 16) & 0xff, 2);
        assert_eq!(find(&b, 1, 0).unwrap().ebx & 0xffff, 0x0800, "CLFLUSH size kept");
        assert_ne!(find(&b, 1, 0).unwrap().edx & LEAF1_EDX_HTT, 0);
        let b0 = find(&b, 0xb, 0).unwrap();
        let b1 = find(&b, 0xb, 1).unwrap();
        assert_eq!((b0.eax, b0.ebx, b0.ecx, b0.edx), (0, 1, 0x100, 1));
        assert_eq!((b1.eax, b1.ebx, b1.ecx, b1.edx), (1, 2, 0x201, 1));
        assert_eq!(find(&b, 4, 0).unwrap().eax >> 26, 1);
        assert_eq!((find(&b, 4, 0).unwrap().eax >> 14) & 0xfff, 0, "L1 private");
        assert_eq!((find(&b, 4, 3).unwrap().eax >> 14) & 0xfff, 1, "L3 shared");
        let ext = guest_cpuid(
            &[entry(0x8000_0008, 0, 0x3030, 0, 0x7003, 0), entry(0x8000_001e, 0, 9, 0x105, 0x301, 0)],
            opts(1),
        );
        let e8 = find(&ext, 0x8000_0008, 0).unwrap();
        assert_eq!(e8.ecx, 0x1001, "1 APIC id bit, 2 cores");
        let e1e = find(&ext, 0x8000_001e, 0).unwrap();
        assert_eq!((e1e.eax, e1e.ebx, e1e.ecx), (1, 1, 0));
        let single = guest_cpuid(&host(), opts(0).clone());
        assert_eq!(find(&single, 0xb, 1).unwrap().edx, 0);
    }

    #[test]
    fn one_vcpu_has_no_htt() {
        let out = guest_cpuid(&host(), CpuidOptions { pvm: false, vcpu_id: 0, nr_vcpus: 1 });
        assert_eq!(find(&out, 1, 0).unwrap().edx & LEAF1_EDX_HTT, 0);
        assert_eq!(bits_for(1), 0);
        assert_eq!(bits_for(2), 1);
        assert_eq!(bits_for(3), 2);
        assert_eq!(bits_for(4), 2);
    }
}
