//! Can a saved guest run on this host's CPU? The "skip" class of the
//! vmstate portability rules (spec api.md §5.2): CPUID describes the host,
//! so it is not translated. The guest's saved CPUID is given back
//! unchanged, and a restore is refused when the guest saw a feature this
//! host's KVM cannot offer (it would fault, or silently misbehave, on the
//! first instruction that uses it) or a different CPU vendor.
//!
//! Checked: the feature leaves 0x1, 0x7.0, 0x7.1, 0x8000_0001 and 0xD.1.
//! Bits that describe the VM rather than the CPU (the hypervisor bit, HTT,
//! which the VMM sets itself) or that KVM keeps current at run time
//! (OSXSAVE, OSPKE) are not compared.

use super::cpuid::Reg;
use crate::hv::kvm::kvm_cpuid_entry2;

/// One CPUID register of feature bits, with the bits' names (Linux's
/// /proc/cpuinfo spelling; "" = reserved or unnamed).
struct FeatureWord {
    leaf: u32,
    subleaf: u32,
    reg: Reg,
    names: &'static [&'static str; 32],
    /// Bits not compared (see the module comment).
    ignore: u32,
}

const LEAF1_EDX: [&str; 32] = [
    "fpu", "vme", "de", "pse", "tsc", "msr", "pae", "mce", "cx8", "apic", "", "sep", "mtrr", "pge", "mca", "cmov",
    "pat", "pse36", "pn", "clflush", "", "dts", "acpi", "mmx", "fxsr", "sse", "sse2", "ss", "ht", "tm", "ia64", "pbe",
];

const LEAF1_ECX: [&str; 32] = [
    "pni", "pclmulqdq", "dtes64", "monitor", "ds_cpl", "vmx", "smx", "est", "tm2", "ssse3", "cid", "sdbg", "fma",
    "cx16", "xtpr", "pdcm", "", "pcid", "dca", "sse4_1", "sse4_2", "x2apic", "movbe", "popcnt",
    "tsc_deadline_timer", "aes", "xsave", "osxsave", "avx", "f16c", "rdrand", "hypervisor",
];

const LEAF7_EBX: [&str; 32] = [
    "fsgsbase", "tsc_adjust", "sgx", "bmi1", "hle", "avx2", "fdp_excptn_only", "smep", "bmi2", "erms", "invpcid",
    "rtm", "cqm", "zero_fcs_fds", "mpx", "rdt_a", "avx512f", "avx512dq", "rdseed", "adx", "smap", "avx512ifma",
    "pcommit", "clflushopt", "clwb", "intel_pt", "avx512pf", "avx512er", "avx512cd", "sha_ni", "avx512bw",
    "avx512vl",
];

const LEAF7_ECX: [&str; 32] = [
    "prefetchwt1", "avx512vbmi", "umip", "pku", "ospke", "waitpkg", "avx512_vbmi2", "shstk", "gfni", "vaes",
    "vpclmulqdq", "avx512_vnni", "avx512_bitalg", "tme", "avx512_vpopcntdq", "", "la57", "", "", "", "", "",
    "rdpid", "keylocker", "bus_lock_detect", "cldemote", "", "movdiri", "movdir64b", "enqcmd", "sgx_lc", "pks",
];

const LEAF7_EDX: [&str; 32] = [
    "", "sgx_keys", "avx512_4vnniw", "avx512_4fmaps", "fsrm", "uintr", "", "", "avx512_vp2intersect",
    "srbds_ctrl", "md_clear", "rtm_always_abort", "", "tsx_force_abort", "serialize", "hybrid_cpu", "tsxldtrk",
    "", "pconfig", "arch_lbr", "ibt", "", "amx_bf16", "avx512_fp16", "amx_tile", "amx_int8", "spec_ctrl",
    "intel_stibp", "flush_l1d", "arch_capabilities", "core_capabilities", "spec_ctrl_ssbd",
];

const LEAF7_1_EAX: [&str; 32] = [
    "", "", "", "", "avx_vnni", "avx512_bf16", "", "cmpccxadd", "", "", "fzrm", "fsrs", "fsrc", "", "", "", "", "",
    "", "", "", "amx_fp16", "", "avx_ifma", "", "", "lam", "", "", "", "", "",
];

const EXT1_EDX: [&str; 32] = [
    "fpu", "vme", "de", "pse", "tsc", "msr", "pae", "mce", "cx8", "apic", "", "syscall", "mtrr", "pge", "mca",
    "cmov", "pat", "pse36", "", "mp", "nx", "", "mmxext", "mmx", "fxsr", "fxsr_opt", "pdpe1gb", "rdtscp", "", "lm",
    "3dnowext", "3dnow",
];

const EXT1_ECX: [&str; 32] = [
    "lahf_lm", "cmp_legacy", "svm", "extapic", "cr8_legacy", "abm", "sse4a", "misalignsse", "3dnowprefetch",
    "osvw", "ibs", "xop", "skinit", "wdt", "", "lwp", "fma4", "tce", "", "nodeid_msr", "", "tbm", "topoext",
    "perfctr_core", "perfctr_nb", "", "bpext", "ptsc", "perfctr_llc", "mwaitx", "", "",
];

const XSAVE1_EAX: [&str; 32] = [
    "xsaveopt", "xsavec", "xgetbv1", "xsaves", "xfd", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "",
    "", "", "", "", "", "", "", "", "", "", "", "",
];

const fn bit(n: u32) -> u32 {
    1 << n
}

const CHECKED: &[FeatureWord] = &[
    FeatureWord { leaf: 1, subleaf: 0, reg: Reg::Edx, names: &LEAF1_EDX, ignore: bit(28) },
    FeatureWord { leaf: 1, subleaf: 0, reg: Reg::Ecx, names: &LEAF1_ECX, ignore: bit(27) | bit(31) },
    FeatureWord { leaf: 7, subleaf: 0, reg: Reg::Ebx, names: &LEAF7_EBX, ignore: 0 },
    FeatureWord { leaf: 7, subleaf: 0, reg: Reg::Ecx, names: &LEAF7_ECX, ignore: bit(4) },
    FeatureWord { leaf: 7, subleaf: 0, reg: Reg::Edx, names: &LEAF7_EDX, ignore: 0 },
    FeatureWord { leaf: 7, subleaf: 1, reg: Reg::Eax, names: &LEAF7_1_EAX, ignore: 0 },
    FeatureWord { leaf: 0x8000_0001, subleaf: 0, reg: Reg::Edx, names: &EXT1_EDX, ignore: 0 },
    FeatureWord { leaf: 0x8000_0001, subleaf: 0, reg: Reg::Ecx, names: &EXT1_ECX, ignore: 0 },
    FeatureWord { leaf: 0xd, subleaf: 1, reg: Reg::Eax, names: &XSAVE1_EAX, ignore: 0 },
];

fn find(table: &[kvm_cpuid_entry2], leaf: u32, subleaf: u32) -> Option<&kvm_cpuid_entry2> {
    table.iter().find(|e| e.function == leaf && e.index == subleaf)
}

fn reg(e: &kvm_cpuid_entry2, r: Reg) -> u32 {
    match r {
        Reg::Eax => e.eax,
        Reg::Ebx => e.ebx,
        Reg::Ecx => e.ecx,
        Reg::Edx => e.edx,
    }
}

/// The vendor string of leaf 0 ("GenuineIntel", "AuthenticAMD", ...).
fn vendor(table: &[kvm_cpuid_entry2]) -> Option<String> {
    let e = find(table, 0, 0)?;
    let bytes: Vec<u8> = [e.ebx, e.edx, e.ecx].iter().flat_map(|r| r.to_le_bytes()).collect();
    Some(String::from_utf8_lossy(&bytes).trim_end_matches('\0').to_string())
}

/// The "skip" rule of spec §5.2: Err(message naming the missing features
/// by name where known, e.g. "avx2, bmi2") when a feature bit the guest saw
/// (saved CPUID leaves 0x1, 0x7.0, 0x7.1, 0x8000_0001, 0xD.1 if present) is
/// not in this host's KVM_GET_SUPPORTED_CPUID; also Err when the vendor
/// string differs.
pub fn check_compatible(saved: &[kvm_cpuid_entry2], supported: &[kvm_cpuid_entry2]) -> Result<(), String> {
    let (was, is) = (vendor(saved), vendor(supported));
    if was != is {
        let show = |v: Option<String>| v.unwrap_or_else(|| "none".into());
        return Err(format!("CPU vendor differs: the guest saw {}, this host is {}", show(was), show(is)));
    }
    let mut missing = Vec::new();
    for w in CHECKED {
        let Some(s) = find(saved, w.leaf, w.subleaf) else { continue };
        let here = find(supported, w.leaf, w.subleaf).map_or(0, |e| reg(e, w.reg));
        let lacking = reg(s, w.reg) & !here & !w.ignore;
        for b in (0..32).filter(|b| lacking & (1 << b) != 0) {
            missing.push(match w.names[b as usize] {
                "" => format!("cpuid {:#x}.{} {:?} bit {b}", w.leaf, w.subleaf, w.reg).to_lowercase(),
                name => name.to_string(),
            });
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!("CPU features the guest saw are missing on this host: {}", missing.join(", ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(function: u32, index: u32, eax: u32, ebx: u32, ecx: u32, edx: u32) -> kvm_cpuid_entry2 {
        kvm_cpuid_entry2 { function, index, flags: 0, eax, ebx, ecx, edx, padding: [0; 3] }
    }

    /// "GenuineIntel" in EBX, EDX, ECX order.
    fn intel() -> kvm_cpuid_entry2 {
        entry(0, 0, 0x1f, 0x756e_6547, 0x6c65_746e, 0x4965_6e69)
    }

    fn host() -> Vec<kvm_cpuid_entry2> {
        vec![
            intel(),
            entry(1, 0, 0x906ea, 0x0001_0800, 0x7ffa_3203, 0x078b_fbff),
            entry(7, 0, 0, 0x0000_0089, 0x0000_0004, 0), // fsgsbase bmi1 smep; umip
            entry(0x8000_0001, 0, 0, 0, 0x0000_0121, 0x2410_0800), // lm pdpe1gb nx syscall
            entry(0xd, 1, 0x7, 0, 0, 0),
        ]
    }

    #[test]
    fn the_same_cpuid_is_compatible() {
        assert_eq!(check_compatible(&host(), &host()), Ok(()));
        // Fewer features than the host is fine too.
        let mut less = host();
        less[2].ebx = 0;
        less.retain(|e| e.function != 0xd);
        assert_eq!(check_compatible(&less, &host()), Ok(()));
    }

    #[test]
    fn a_missing_feature_is_named() {
        let mut saved = host();
        saved[2].ebx |= (1 << 5) | (1 << 8); // avx2, bmi2
        let err = check_compatible(&saved, &host()).unwrap_err();
        assert!(err.ends_with(": avx2, bmi2"), "{err}");

        let mut saved = host();
        saved[3].edx |= 1 << 27; // rdtscp
        saved[1].ecx |= 1 << 16; // reserved: named by position
        let err = check_compatible(&saved, &host()).unwrap_err();
        assert!(err.contains("cpuid 0x1.0 ecx bit 16") && err.contains("rdtscp"), "{err}");

        // A leaf the host does not have at all: every bit of it is missing.
        let no_xsave: Vec<_> = host().into_iter().filter(|e| e.function != 0xd).collect();
        let err = check_compatible(&host(), &no_xsave).unwrap_err();
        assert!(err.ends_with(": xsaveopt, xsavec, xgetbv1"), "{err}");
    }

    #[test]
    fn bits_the_vmm_sets_are_not_compared() {
        let mut saved = host();
        saved[1].ecx |= (1 << 31) | (1 << 27); // hypervisor, osxsave
        saved[1].edx |= 1 << 28; // htt
        saved[2].ecx |= 1 << 4; // ospke
        assert_eq!(check_compatible(&saved, &host()), Ok(()));
    }

    #[test]
    fn another_vendor_is_refused() {
        let mut amd = host();
        // "AuthenticAMD"
        amd[0] = entry(0, 0, 0x10, 0x6874_7541, 0x444d_4163, 0x6974_6e65);
        let err = check_compatible(&host(), &amd).unwrap_err();
        assert!(err.contains("GenuineIntel") && err.contains("AuthenticAMD"), "{err}");
        assert!(check_compatible(&host()[1..], &host()).unwrap_err().contains("none"));
    }

    /// What the VMM gives a guest on this host is compatible with this host,
    /// with the kvm_pvm table applied or not (skipped without /dev/kvm).
    #[test]
    fn our_own_guest_cpuid_passes_on_this_host() {
        let Ok(kvm) = crate::hv::kvm::Kvm::open() else { return };
        let supported = kvm.supported_cpuid().unwrap();
        for pvm in [false, true] {
            for n in [1, 2] {
                let guest = crate::vcpu::cpuid_for(&supported, pvm, n - 1, n);
                assert_eq!(check_compatible(&guest, &supported), Ok(()), "pvm {pvm}, {n} vCPUs");
            }
        }
    }
}
