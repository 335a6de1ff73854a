//! Raw KVM ABI for x86_64, transcribed by hand from `linux/kvm.h` and
//! `asm/kvm.h`: ioctl request numbers and the `repr(C)` structures they
//! carry. Nothing else in the crate spells an ioctl number or a kernel
//! structure layout; the safe wrappers beside this file are the only users.
//!
//! Structures that become part of saved VM state derive serde; their large
//! byte arrays go through `big_array` so they serialize as plain sequences.

#![allow(non_camel_case_types, dead_code)]

use serde::{Deserialize, Serialize};

// ---- ioctl request encoding (asm-generic/ioctl.h) -------------------------

const IOC_NONE: u64 = 0;
const IOC_WRITE: u64 = 1;
const IOC_READ: u64 = 2;
const KVMIO: u64 = 0xAE;

const fn ioc(dir: u64, nr: u64, size: usize) -> u64 {
    (dir << 30) | ((size as u64) << 16) | (KVMIO << 8) | nr
}
const fn io(nr: u64) -> u64 {
    ioc(IOC_NONE, nr, 0)
}
const fn ior<T>(nr: u64) -> u64 {
    ioc(IOC_READ, nr, std::mem::size_of::<T>())
}
const fn iow<T>(nr: u64) -> u64 {
    ioc(IOC_WRITE, nr, std::mem::size_of::<T>())
}
const fn iowr<T>(nr: u64) -> u64 {
    ioc(IOC_READ | IOC_WRITE, nr, std::mem::size_of::<T>())
}

// /dev/kvm
pub const KVM_GET_API_VERSION: u64 = io(0x00);
pub const KVM_CREATE_VM: u64 = io(0x01);
pub const KVM_GET_MSR_INDEX_LIST: u64 = iowr::<kvm_msr_list>(0x02);
pub const KVM_CHECK_EXTENSION: u64 = io(0x03);
pub const KVM_GET_VCPU_MMAP_SIZE: u64 = io(0x04);
pub const KVM_GET_SUPPORTED_CPUID: u64 = iowr::<kvm_cpuid2>(0x05);

// VM fd
pub const KVM_CREATE_VCPU: u64 = io(0x41);
pub const KVM_SET_USER_MEMORY_REGION: u64 = iow::<kvm_userspace_memory_region>(0x46);
pub const KVM_SET_TSS_ADDR: u64 = io(0x47);
pub const KVM_SET_IDENTITY_MAP_ADDR: u64 = iow::<u64>(0x48);
pub const KVM_CREATE_IRQCHIP: u64 = io(0x60);
pub const KVM_GET_IRQCHIP: u64 = iowr::<kvm_irqchip>(0x62);
pub const KVM_SET_IRQCHIP: u64 = ior::<kvm_irqchip>(0x63);
pub const KVM_IRQFD: u64 = iow::<kvm_irqfd>(0x76);
pub const KVM_CREATE_PIT2: u64 = iow::<kvm_pit_config>(0x77);
pub const KVM_SET_CLOCK: u64 = iow::<kvm_clock_data>(0x7b);
pub const KVM_GET_CLOCK: u64 = ior::<kvm_clock_data>(0x7c);
pub const KVM_GET_PIT2: u64 = ior::<kvm_pit_state2>(0x9f);
pub const KVM_SET_PIT2: u64 = iow::<kvm_pit_state2>(0xa0);

// vCPU fd
pub const KVM_RUN: u64 = io(0x80);
pub const KVM_GET_REGS: u64 = ior::<kvm_regs>(0x81);
pub const KVM_SET_REGS: u64 = iow::<kvm_regs>(0x82);
pub const KVM_GET_SREGS: u64 = ior::<kvm_sregs>(0x83);
pub const KVM_SET_SREGS: u64 = iow::<kvm_sregs>(0x84);
pub const KVM_GET_MSRS: u64 = iowr::<kvm_msrs>(0x88);
pub const KVM_SET_MSRS: u64 = iow::<kvm_msrs>(0x89);
pub const KVM_GET_FPU: u64 = ior::<kvm_fpu>(0x8c);
pub const KVM_SET_FPU: u64 = iow::<kvm_fpu>(0x8d);
pub const KVM_GET_LAPIC: u64 = ior::<kvm_lapic_state>(0x8e);
pub const KVM_SET_LAPIC: u64 = iow::<kvm_lapic_state>(0x8f);
pub const KVM_SET_CPUID2: u64 = iow::<kvm_cpuid2>(0x90);
pub const KVM_GET_MP_STATE: u64 = ior::<kvm_mp_state>(0x98);
pub const KVM_SET_MP_STATE: u64 = iow::<kvm_mp_state>(0x99);
pub const KVM_GET_VCPU_EVENTS: u64 = ior::<kvm_vcpu_events>(0x9f);
pub const KVM_SET_VCPU_EVENTS: u64 = iow::<kvm_vcpu_events>(0xa0);
pub const KVM_SET_TSC_KHZ: u64 = io(0xa2);
pub const KVM_GET_TSC_KHZ: u64 = io(0xa3);
pub const KVM_GET_CPUID2: u64 = iowr::<kvm_cpuid2>(0x91);
pub const KVM_GET_DEBUGREGS: u64 = ior::<kvm_debugregs>(0xa1);
pub const KVM_SET_DEBUGREGS: u64 = iow::<kvm_debugregs>(0xa2);
pub const KVM_GET_XSAVE: u64 = ior::<kvm_xsave>(0xa4);
pub const KVM_SET_XSAVE: u64 = iow::<kvm_xsave>(0xa5);
pub const KVM_GET_XCRS: u64 = ior::<kvm_xcrs>(0xa6);
pub const KVM_SET_XCRS: u64 = iow::<kvm_xcrs>(0xa7);
pub const KVM_KVMCLOCK_CTRL: u64 = io(0xad);

// Capabilities (KVM_CHECK_EXTENSION arguments).
pub const KVM_CAP_IRQCHIP: u64 = 0;
pub const KVM_CAP_USER_MEMORY: u64 = 3;
pub const KVM_CAP_SET_TSS_ADDR: u64 = 4;
pub const KVM_CAP_EXT_CPUID: u64 = 7;
pub const KVM_CAP_NR_VCPUS: u64 = 9;
pub const KVM_CAP_MP_STATE: u64 = 14;
pub const KVM_CAP_ADJUST_CLOCK: u64 = 39;
pub const KVM_CAP_VCPU_EVENTS: u64 = 41;
pub const KVM_CAP_DEBUGREGS: u64 = 50;
pub const KVM_CAP_XSAVE: u64 = 55;
pub const KVM_CAP_XCRS: u64 = 56;
pub const KVM_CAP_TSC_CONTROL: u64 = 60;
pub const KVM_CAP_KVMCLOCK_CTRL: u64 = 76;
pub const KVM_CAP_IRQFD: u64 = 32;
pub const KVM_CAP_PIT2: u64 = 33;
pub const KVM_CAP_MAX_VCPUS: u64 = 66;
pub const KVM_CAP_GET_TSC_KHZ: u64 = 61;
pub const KVM_CAP_IMMEDIATE_EXIT: u64 = 136;

pub const KVM_API_VERSION: i32 = 12;

// Exit reasons (kvm_run.exit_reason).
pub const KVM_EXIT_UNKNOWN: u32 = 0;
pub const KVM_EXIT_EXCEPTION: u32 = 1;
pub const KVM_EXIT_IO: u32 = 2;
pub const KVM_EXIT_HYPERCALL: u32 = 3;
pub const KVM_EXIT_DEBUG: u32 = 4;
pub const KVM_EXIT_HLT: u32 = 5;
pub const KVM_EXIT_MMIO: u32 = 6;
pub const KVM_EXIT_IRQ_WINDOW_OPEN: u32 = 7;
pub const KVM_EXIT_SHUTDOWN: u32 = 8;
pub const KVM_EXIT_FAIL_ENTRY: u32 = 9;
pub const KVM_EXIT_INTR: u32 = 10;
pub const KVM_EXIT_INTERNAL_ERROR: u32 = 17;
pub const KVM_EXIT_SYSTEM_EVENT: u32 = 24;

pub const KVM_EXIT_IO_IN: u8 = 0;
pub const KVM_EXIT_IO_OUT: u8 = 1;

pub const KVM_SYSTEM_EVENT_SHUTDOWN: u32 = 1;
pub const KVM_SYSTEM_EVENT_RESET: u32 = 2;
pub const KVM_SYSTEM_EVENT_CRASH: u32 = 3;

pub const KVM_IRQCHIP_PIC_MASTER: u32 = 0;
pub const KVM_IRQCHIP_PIC_SLAVE: u32 = 1;
pub const KVM_IRQCHIP_IOAPIC: u32 = 2;

pub const KVM_PIT_SPEAKER_DUMMY: u32 = 1;

pub const KVM_MP_STATE_RUNNABLE: u32 = 0;
pub const KVM_MP_STATE_UNINITIALIZED: u32 = 1;
pub const KVM_MP_STATE_INIT_RECEIVED: u32 = 2;
pub const KVM_MP_STATE_HALTED: u32 = 3;
pub const KVM_MP_STATE_SIPI_RECEIVED: u32 = 4;

// kvm_vcpu_events.flags: which optional fields KVM_SET_VCPU_EVENTS applies.
pub const KVM_VCPUEVENT_VALID_NMI_PENDING: u32 = 0x01;
pub const KVM_VCPUEVENT_VALID_SIPI_VECTOR: u32 = 0x02;
pub const KVM_VCPUEVENT_VALID_SHADOW: u32 = 0x04;
pub const KVM_VCPUEVENT_VALID_SMM: u32 = 0x08;
pub const KVM_VCPUEVENT_VALID_PAYLOAD: u32 = 0x10;
pub const KVM_VCPUEVENT_VALID_TRIPLE_FAULT: u32 = 0x20;

// kvm_clock_data.flags (KVM_GET_CLOCK reports them; KVM_SET_CLOCK with
// KVM_CLOCK_REALTIME would advance the clock by the wall time elapsed).
pub const KVM_CLOCK_TSC_STABLE: u32 = 0x02;
pub const KVM_CLOCK_REALTIME: u32 = 0x04;
pub const KVM_CLOCK_HOST_TSC: u32 = 0x08;

pub const KVM_MAX_CPUID_ENTRIES: usize = 256;
pub const KVM_CPUID_FLAG_SIGNIFCANT_INDEX: u32 = 1;

// ---- structures -----------------------------------------------------------

#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct kvm_regs {
    pub rax: u64,
    pub rbx: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub rsp: u64,
    pub rbp: u64,
    pub r8: u64,
    pub r9: u64,
    pub r10: u64,
    pub r11: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
    pub rip: u64,
    pub rflags: u64,
}

#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct kvm_segment {
    pub base: u64,
    pub limit: u32,
    pub selector: u16,
    pub type_: u8,
    pub present: u8,
    pub dpl: u8,
    pub db: u8,
    pub s: u8,
    pub l: u8,
    pub g: u8,
    pub avl: u8,
    pub unusable: u8,
    pub padding: u8,
}

#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct kvm_dtable {
    pub base: u64,
    pub limit: u16,
    pub padding: [u16; 3],
}

#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct kvm_sregs {
    pub cs: kvm_segment,
    pub ds: kvm_segment,
    pub es: kvm_segment,
    pub fs: kvm_segment,
    pub gs: kvm_segment,
    pub ss: kvm_segment,
    pub tr: kvm_segment,
    pub ldt: kvm_segment,
    pub gdt: kvm_dtable,
    pub idt: kvm_dtable,
    pub cr0: u64,
    pub cr2: u64,
    pub cr3: u64,
    pub cr4: u64,
    pub cr8: u64,
    pub efer: u64,
    pub apic_base: u64,
    pub interrupt_bitmap: [u64; 4],
}

#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct kvm_fpu {
    pub fpr: [[u8; 16]; 8],
    pub fcw: u16,
    pub fsw: u16,
    pub ftwx: u8,
    pub pad1: u8,
    pub last_opcode: u16,
    pub last_ip: u64,
    pub last_dp: u64,
    pub xmm: [[u8; 16]; 16],
    pub mxcsr: u32,
    pub pad2: u32,
}

#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct kvm_msr_entry {
    pub index: u32,
    pub reserved: u32,
    pub data: u64,
}

/// Header of `struct kvm_msrs`; `nmsrs` entries follow it in memory.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct kvm_msrs {
    pub nmsrs: u32,
    pub pad: u32,
}

/// Header of `struct kvm_msr_list`; `nmsrs` u32 indices follow it.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct kvm_msr_list {
    pub nmsrs: u32,
}

#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct kvm_cpuid_entry2 {
    pub function: u32,
    pub index: u32,
    pub flags: u32,
    pub eax: u32,
    pub ebx: u32,
    pub ecx: u32,
    pub edx: u32,
    pub padding: [u32; 3],
}

/// Header of `struct kvm_cpuid2`; `nent` entries follow it.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct kvm_cpuid2 {
    pub nent: u32,
    pub padding: u32,
}

pub const KVM_APIC_REG_SIZE: usize = 0x400;

#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct kvm_lapic_state {
    #[serde(with = "big_array")]
    pub regs: [u8; KVM_APIC_REG_SIZE],
}

impl Default for kvm_lapic_state {
    fn default() -> Self {
        Self { regs: [0; KVM_APIC_REG_SIZE] }
    }
}

impl std::fmt::Debug for kvm_lapic_state {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("kvm_lapic_state { .. }")
    }
}

/// `struct kvm_xsave`: the guest's FPU/SSE/AVX... state in the (standard,
/// non-compacted) XSAVE layout of this host. 4096 bytes: KVM_GET_XSAVE2
/// is only needed for dynamically enabled features (AMX), which we never
/// request for a guest.
pub const KVM_XSAVE_WORDS: usize = 1024;

#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct kvm_xsave {
    #[serde(with = "big_array")]
    pub region: [u32; KVM_XSAVE_WORDS],
}

impl Default for kvm_xsave {
    fn default() -> Self {
        Self { region: [0; KVM_XSAVE_WORDS] }
    }
}

impl std::fmt::Debug for kvm_xsave {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // MXCSR (byte 24) and XSTATE_BV (byte 512) say the most in one line.
        write!(f, "kvm_xsave {{ mxcsr: {:#x}, xstate_bv: {:#x} .. }}", self.region[6], self.region[128])
    }
}

pub const KVM_MAX_XCRS: usize = 16;

#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct kvm_xcr {
    pub xcr: u32,
    pub reserved: u32,
    pub value: u64,
}

#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct kvm_xcrs {
    pub nr_xcrs: u32,
    pub flags: u32,
    pub xcrs: [kvm_xcr; KVM_MAX_XCRS],
    pub padding: [u64; 16],
}

#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct kvm_debugregs {
    pub db: [u64; 4],
    pub dr6: u64,
    pub dr7: u64,
    pub flags: u64,
    pub reserved: [u64; 9],
}

/// `struct kvm_irqchip`: which chip, then a 512-byte union holding either
/// `kvm_pic_state` or `kvm_ioapic_state`. Kept as raw bytes: the state is
/// only ever handed back to the same kernel interface.
#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct kvm_irqchip {
    pub chip_id: u32,
    pub pad: u32,
    #[serde(with = "big_array")]
    pub chip: [u8; 512],
}

impl Default for kvm_irqchip {
    fn default() -> Self {
        Self { chip_id: 0, pad: 0, chip: [0; 512] }
    }
}

impl std::fmt::Debug for kvm_irqchip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "kvm_irqchip {{ chip_id: {} .. }}", self.chip_id)
    }
}

#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct kvm_pit_channel_state {
    pub count: u32,
    pub latched_count: u16,
    pub count_latched: u8,
    pub status_latched: u8,
    pub status: u8,
    pub read_state: u8,
    pub write_state: u8,
    pub write_latch: u8,
    pub rw_mode: u8,
    pub mode: u8,
    pub bcd: u8,
    pub gate: u8,
    pub count_load_time: i64,
}

#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct kvm_pit_state2 {
    pub channels: [kvm_pit_channel_state; 3],
    pub flags: u32,
    pub reserved: [u32; 9],
}

#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct kvm_pit_config {
    pub flags: u32,
    pub pad: [u32; 15],
}

#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct kvm_clock_data {
    pub clock: u64,
    pub flags: u32,
    pub pad0: u32,
    pub realtime: u64,
    pub host_tsc: u64,
    pub pad: [u32; 4],
}

#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct kvm_userspace_memory_region {
    pub slot: u32,
    pub flags: u32,
    pub guest_phys_addr: u64,
    pub memory_size: u64,
    pub userspace_addr: u64,
}

#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct kvm_irqfd {
    pub fd: u32,
    pub gsi: u32,
    pub flags: u32,
    pub resamplefd: u32,
    pub pad: [u8; 16],
}

#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct kvm_mp_state {
    pub mp_state: u32,
}

#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct kvm_vcpu_events_exception {
    pub injected: u8,
    pub nr: u8,
    pub has_error_code: u8,
    pub pending: u8,
    pub error_code: u32,
}

#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct kvm_vcpu_events_interrupt {
    pub injected: u8,
    pub nr: u8,
    pub soft: u8,
    pub shadow: u8,
}

#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct kvm_vcpu_events_nmi {
    pub injected: u8,
    pub pending: u8,
    pub masked: u8,
    pub pad: u8,
}

#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct kvm_vcpu_events_smi {
    pub smm: u8,
    pub pending: u8,
    pub smm_inside_nmi: u8,
    pub latched_init: u8,
}

#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct kvm_vcpu_events {
    pub exception: kvm_vcpu_events_exception,
    pub interrupt: kvm_vcpu_events_interrupt,
    pub nmi: kvm_vcpu_events_nmi,
    pub sipi_vector: u32,
    pub flags: u32,
    pub smi: kvm_vcpu_events_smi,
    pub triple_fault_pending: u8,
    pub reserved: [u8; 26],
    pub exception_has_payload: u8,
    pub exception_payload: u64,
}

// ---- struct kvm_run (the mmap'ed vCPU communication page) ------------------

/// The fixed head of `struct kvm_run`; the exit-specific union starts at
/// `KVM_RUN_EXIT_UNION` and is decoded field by field by the vCPU wrapper.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct kvm_run_head {
    pub request_interrupt_window: u8,
    pub immediate_exit: u8,
    pub padding1: [u8; 6],
    pub exit_reason: u32,
    pub ready_for_interrupt_injection: u8,
    pub if_flag: u8,
    pub flags: u16,
    pub cr8: u64,
    pub apic_base: u64,
}

pub const KVM_RUN_EXIT_UNION: usize = 32;

/// `kvm_run.io`
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct kvm_run_io {
    pub direction: u8,
    pub size: u8,
    pub port: u16,
    pub count: u32,
    pub data_offset: u64,
}

/// `kvm_run.mmio`
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct kvm_run_mmio {
    pub phys_addr: u64,
    pub data: [u8; 8],
    pub len: u32,
    pub is_write: u8,
}

/// `kvm_run.internal`
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct kvm_run_internal {
    pub suberror: u32,
    pub ndata: u32,
    pub data: [u64; 16],
}

/// `kvm_run.fail_entry`
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct kvm_run_fail_entry {
    pub hardware_entry_failure_reason: u64,
    pub cpu: u32,
}

/// `kvm_run.system_event`
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct kvm_run_system_event {
    pub type_: u32,
    pub ndata: u32,
    pub data: [u64; 16],
}

/// Serializes fixed-size arrays longer than serde's built-in 32 as a plain
/// sequence of numbers.
pub mod big_array {
    use serde::de::{Error, SeqAccess, Visitor};
    use serde::{Deserializer, Serializer};
    use std::fmt;
    use std::marker::PhantomData;

    pub fn serialize<S: Serializer, T: serde::Serialize, const N: usize>(
        a: &[T; N],
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(a.iter())
    }

    pub fn deserialize<'de, D, T, const N: usize>(d: D) -> Result<[T; N], D::Error>
    where
        D: Deserializer<'de>,
        T: serde::Deserialize<'de> + Copy + Default,
    {
        struct V<T, const N: usize>(PhantomData<T>);
        impl<'de, T: serde::Deserialize<'de> + Copy + Default, const N: usize> Visitor<'de> for V<T, N> {
            type Value = [T; N];
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a sequence of {N} elements")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = [T::default(); N];
                for (i, slot) in out.iter_mut().enumerate() {
                    *slot = seq.next_element()?.ok_or_else(|| A::Error::invalid_length(i, &self))?;
                }
                if seq.next_element::<T>()?.is_some() {
                    return Err(A::Error::invalid_length(N + 1, &self));
                }
                Ok(out)
            }
        }
        d.deserialize_seq(V::<T, N>(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::size_of;

    /// Sizes and request numbers as printed by a C program built against
    /// this machine's linux/kvm.h: a transcription error fails here.
    #[test]
    fn layouts_match_the_kernel_headers() {
        assert_eq!(size_of::<kvm_regs>(), 144);
        assert_eq!(size_of::<kvm_segment>(), 24);
        assert_eq!(size_of::<kvm_sregs>(), 312);
        assert_eq!(size_of::<kvm_fpu>(), 416);
        assert_eq!(size_of::<kvm_msr_entry>(), 16);
        assert_eq!(size_of::<kvm_cpuid_entry2>(), 40);
        assert_eq!(size_of::<kvm_lapic_state>(), 1024);
        assert_eq!(size_of::<kvm_irqchip>(), 520);
        assert_eq!(size_of::<kvm_pit_state2>(), 112);
        assert_eq!(size_of::<kvm_clock_data>(), 48);
        assert_eq!(size_of::<kvm_userspace_memory_region>(), 32);
        assert_eq!(size_of::<kvm_irqfd>(), 32);
        assert_eq!(size_of::<kvm_pit_config>(), 64);
        assert_eq!(size_of::<kvm_vcpu_events>(), 64);
        assert_eq!(size_of::<kvm_xsave>(), 4096);
        assert_eq!(size_of::<kvm_xcr>(), 16);
        assert_eq!(size_of::<kvm_xcrs>(), 392);
        assert_eq!(size_of::<kvm_debugregs>(), 128);
        assert_eq!(size_of::<kvm_msr_list>(), 4);
        assert_eq!(std::mem::offset_of!(kvm_xcrs, xcrs), 8);
        assert_eq!(std::mem::offset_of!(kvm_debugregs, flags), 48);
        assert_eq!(size_of::<kvm_run_head>(), KVM_RUN_EXIT_UNION);
    }

    #[test]
    fn request_numbers_match_the_kernel_headers() {
        assert_eq!(KVM_GET_SUPPORTED_CPUID, 0xc008ae05);
        assert_eq!(KVM_SET_USER_MEMORY_REGION, 0x4020ae46);
        assert_eq!(KVM_SET_IDENTITY_MAP_ADDR, 0x4008ae48);
        assert_eq!(KVM_GET_IRQCHIP, 0xc208ae62);
        assert_eq!(KVM_SET_IRQCHIP, 0x8208ae63);
        assert_eq!(KVM_CREATE_PIT2, 0x4040ae77);
        assert_eq!(KVM_GET_PIT2, 0x8070ae9f);
        assert_eq!(KVM_SET_PIT2, 0x4070aea0);
        assert_eq!(KVM_GET_CLOCK, 0x8030ae7c);
        assert_eq!(KVM_SET_CLOCK, 0x4030ae7b);
        assert_eq!(KVM_IRQFD, 0x4020ae76);
        assert_eq!(KVM_RUN, 0xae80);
        assert_eq!(KVM_GET_REGS, 0x8090ae81);
        assert_eq!(KVM_SET_SREGS, 0x4138ae84);
        assert_eq!(KVM_GET_FPU, 0x81a0ae8c);
        assert_eq!(KVM_GET_MSRS, 0xc008ae88);
        assert_eq!(KVM_SET_MSRS, 0x4008ae89);
        assert_eq!(KVM_SET_CPUID2, 0x4008ae90);
        assert_eq!(KVM_GET_LAPIC, 0x8400ae8e);
        assert_eq!(KVM_GET_VCPU_EVENTS, 0x8040ae9f);
        assert_eq!(KVM_GET_MP_STATE, 0x8004ae98);
        assert_eq!(KVM_GET_MSR_INDEX_LIST, 0xc004ae02);
        assert_eq!(KVM_GET_TSC_KHZ, 0xaea3);
        assert_eq!(KVM_SET_TSC_KHZ, 0xaea2);
        assert_eq!(KVM_GET_XSAVE, 0x9000aea4);
        assert_eq!(KVM_SET_XSAVE, 0x5000aea5);
        assert_eq!(KVM_GET_XCRS, 0x8188aea6);
        assert_eq!(KVM_SET_XCRS, 0x4188aea7);
        assert_eq!(KVM_GET_DEBUGREGS, 0x8080aea1);
        assert_eq!(KVM_SET_DEBUGREGS, 0x4080aea2);
        assert_eq!(KVM_SET_VCPU_EVENTS, 0x4040aea0);
        assert_eq!(KVM_SET_MP_STATE, 0x4004ae99);
        assert_eq!(KVM_SET_LAPIC, 0x4400ae8f);
        assert_eq!(KVM_SET_REGS, 0x4090ae82);
        assert_eq!(KVM_SET_FPU, 0x41a0ae8d);
        assert_eq!(KVM_GET_CPUID2, 0xc008ae91);
        assert_eq!(KVM_KVMCLOCK_CTRL, 0xaead);
    }

    #[test]
    fn big_arrays_round_trip_through_json() {
        let mut l = kvm_lapic_state::default();
        l.regs[0x20] = 7;
        let s = serde_json::to_string(&l).unwrap();
        let back: kvm_lapic_state = serde_json::from_str(&s).unwrap();
        assert!(back == l);
        assert!(serde_json::from_str::<kvm_lapic_state>("{\"regs\":[1,2]}").is_err());

        let mut x = kvm_xsave::default();
        x.region[6] = 0x1f80;
        x.region[1023] = u32::MAX;
        let s = serde_json::to_string(&x).unwrap();
        assert!(serde_json::from_str::<kvm_xsave>(&s).unwrap() == x);
        let xcr0 = kvm_xcr { xcr: 0, reserved: 0, value: 7 };
        let xcrs = kvm_xcrs { nr_xcrs: 1, xcrs: [xcr0; KVM_MAX_XCRS], ..Default::default() };
        let s = serde_json::to_string(&xcrs).unwrap();
        assert_eq!(serde_json::from_str::<kvm_xcrs>(&s).unwrap(), xcrs);
    }
}
