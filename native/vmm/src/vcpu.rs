//! vCPU threads: boot-state setup, the KVM_RUN loop and its exit handling,
//! per-vCPU accounting (time inside vs outside KVM_RUN, exits by reason),
//! the kick that pulls a vCPU out of the guest, and the vCPU state save.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::arch::x86_64::{cpuid, paging, regs};
use crate::devices::Bus;
use crate::hv::kvm::{
    kvm_cpuid_entry2, kvm_fpu, kvm_lapic_state, kvm_mp_state, kvm_msr_entry, kvm_regs, kvm_sregs,
    kvm_vcpu_events, Kicker, VcpuExit, VcpuFd,
};
use crate::lifecycle::{Lifecycle, VmExit};
use crate::memory::GuestMemory;

/// Exit classes counted per vCPU; names are the report's `exits` keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum ExitKind {
    Io,
    Mmio,
    Hlt,
    Shutdown,
    Intr,
    InternalError,
    FailEntry,
    SystemEvent,
    Other,
}

pub const EXIT_KINDS: [(ExitKind, &str); 9] = [
    (ExitKind::Io, "io"),
    (ExitKind::Mmio, "mmio"),
    (ExitKind::Hlt, "hlt"),
    (ExitKind::Shutdown, "shutdown"),
    (ExitKind::Intr, "intr"),
    (ExitKind::InternalError, "internal_error"),
    (ExitKind::FailEntry, "fail_entry"),
    (ExitKind::SystemEvent, "system_event"),
    (ExitKind::Other, "other"),
];

/// Counters a vCPU thread publishes and the main thread reads at exit.
#[derive(Default)]
pub struct VcpuStats {
    pub in_run_ns: AtomicU64,
    pub outside_ns: AtomicU64,
    pub exits: [AtomicU64; 9],
    pub finished: AtomicBool,
}

/// Saved state of one vCPU (x86_64/KVM). Versioned for snapshot files.
#[allow(dead_code)] // written by the snapshot path (next)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VcpuState {
    pub version: u32,
    pub id: u32,
    pub regs: kvm_regs,
    pub sregs: kvm_sregs,
    pub fpu: kvm_fpu,
    pub msrs: Vec<kvm_msr_entry>,
    pub lapic: kvm_lapic_state,
    pub events: kvm_vcpu_events,
    pub mp_state: kvm_mp_state,
}

#[allow(dead_code)]
pub const VCPU_STATE_VERSION: u32 = 1;

pub struct Vcpu {
    fd: VcpuFd,
    pio: Arc<Bus>,
    mmio: Arc<Bus>,
    mem: Arc<GuestMemory>,
    lifecycle: Arc<Lifecycle>,
    stats: Arc<VcpuStats>,
}

impl Vcpu {
    pub fn new(fd: VcpuFd, pio: Arc<Bus>, mmio: Arc<Bus>, mem: Arc<GuestMemory>, lifecycle: Arc<Lifecycle>) -> Self {
        Self { fd, pio, mmio, mem, lifecycle, stats: Arc::new(VcpuStats::default()) }
    }

    /// CPUID, MSRs, FPU and LAPIC for every vCPU; registers for the boot
    /// vCPU (`entry` = kernel entry point). Other vCPUs wait for INIT/SIPI.
    pub fn configure(&self, cpuid: &[kvm_cpuid_entry2], entry: Option<u64>) -> io::Result<()> {
        self.fd.set_cpuid2(cpuid)?;
        self.fd.set_msrs(&regs::boot_msrs())?;
        self.fd.set_fpu(&regs::boot_fpu())?;
        let mut lapic = self.fd.get_lapic()?;
        regs::set_lint(&mut lapic);
        self.fd.set_lapic(&lapic)?;
        if let Some(entry) = entry {
            let sregs = regs::boot_sregs(self.fd.get_sregs()?);
            self.fd.set_sregs(&sregs)?;
            self.fd.set_regs(&regs::boot_regs(entry))?;
        }
        Ok(())
    }

    /// Reads the vCPU's complete state (the vCPU must not be running).
    #[allow(dead_code)] // the snapshot path (next) is the caller
    pub fn state(&self) -> io::Result<VcpuState> {
        let mut msrs = Vec::new();
        for idx in regs::STATE_MSRS {
            msrs.extend(self.fd.get_msrs(&[*idx])?);
        }
        Ok(VcpuState {
            version: VCPU_STATE_VERSION,
            id: self.fd.id(),
            regs: self.fd.get_regs()?,
            sregs: self.fd.get_sregs()?,
            fpu: self.fd.get_fpu()?,
            msrs,
            lapic: self.fd.get_lapic()?,
            events: self.fd.get_vcpu_events()?,
            mp_state: self.fd.get_mp_state()?,
        })
    }

    /// Starts the vCPU thread. The kick handler is installed first, so a
    /// kick can never hit a thread with the signal's default (fatal) action.
    pub fn start(self) -> io::Result<VcpuHandle> {
        install_kick_handler()?;
        let kicker = self.fd.kicker();
        let stats = self.stats.clone();
        let thread = std::thread::Builder::new()
            .name(format!("vcpu{}", self.fd.id()))
            .stack_size(256 * 1024)
            .spawn(move || self.run_loop())?;
        Ok(VcpuHandle { thread, kicker, stats })
    }

    fn run_loop(mut self) {
        let mut in_run: u64 = 0;
        let mut outside: u64 = 0;
        while !self.lifecycle.stopping() {
            let t0 = Instant::now();
            let result = self.fd.run();
            let t1 = Instant::now();
            in_run += (t1 - t0).as_nanos() as u64;
            let outcome = match result {
                Err(e) => Some(Fault::Exit(VmExit::error(
                    "VMM_VCPU_RUN",
                    format!("vCPU {}: KVM_RUN failed: {e}", self.fd.id()),
                ))),
                Ok(exit) => handle_exit(exit, &self.pio, &self.mmio, &self.stats),
            };
            let outcome = outcome.map(|o| match o {
                Fault::Exit(e) => e,
                Fault::Diagnose { code, what } => {
                    VmExit::error(code, format!("vCPU {}: {what}; {}", self.fd.id(), self.describe_rip()))
                }
            });
            if let Some(exit) = outcome {
                self.lifecycle.request_exit(exit);
            }
            if !self.lifecycle.stopping() {
                self.fd.clear_immediate_exit();
            }
            outside += t1.elapsed().as_nanos() as u64;
            self.stats.in_run_ns.store(in_run, Ordering::Relaxed);
            self.stats.outside_ns.store(outside, Ordering::Relaxed);
        }
        if std::env::var_os("STASIS_VMM_DEBUG").is_some() {
            eprintln!("stasis-vmm: vCPU {} stopped at {}", self.fd.id(), self.describe_rip());
        }
        self.stats.finished.store(true, Ordering::SeqCst);
    }

    /// "RIP 0x… (phys 0x…), code: 0f 0b …" for a dying guest.
    fn describe_rip(&self) -> String {
        let (r, s) = match (self.fd.get_regs(), self.fd.get_sregs()) {
            (Ok(r), Ok(s)) => (r, s),
            _ => return "registers unavailable".into(),
        };
        let long_mode = s.efer & (1 << 10) != 0;
        let linear = if long_mode { r.rip } else { s.cs.base.wrapping_add(r.rip) };
        let pregs = paging::PagingRegs { cr0: s.cr0, cr3: s.cr3, cr4: s.cr4, efer: s.efer };
        let read_u64 = |gpa: u64| self.mem.read_obj::<u64>(gpa).ok().map(u64::from_le);
        let mut code = Vec::new();
        let mut phys_at_rip = None;
        for i in 0..16u64 {
            let Some(pa) = paging::translate(pregs, linear.wrapping_add(i), &read_u64) else { break };
            if i == 0 {
                phys_at_rip = Some(pa);
            }
            match self.mem.read_obj::<u8>(pa) {
                Ok(b) => code.push(format!("{b:02x}")),
                Err(_) => break,
            }
        }
        let phys = phys_at_rip.map_or("unmapped".to_string(), |p| format!("{p:#x}"));
        format!(
            "RIP {:#x} (phys {phys}), CS {:#x}, CR0 {:#x}, CR3 {:#x}, code at RIP: [{}]",
            r.rip,
            s.cs.selector,
            s.cr0,
            s.cr3,
            if code.is_empty() { "unreadable".to_string() } else { code.join(" ") }
        )
    }
}

enum Fault {
    Exit(VmExit),
    /// A fatal guest exit whose message needs the registers and code bytes.
    Diagnose { code: &'static str, what: String },
}

fn internal_error_name(suberror: u32) -> &'static str {
    match suberror {
        1 => "emulation failure (an instruction the hypervisor cannot emulate)",
        2 => "simultaneous exception",
        3 => "exception during event delivery",
        4 => "unexpected exit reason",
        _ => "unknown suberror",
    }
}

/// Handles one exit; Some(..) when the VM must stop.
fn handle_exit(exit: VcpuExit<'_>, pio: &Bus, mmio: &Bus, stats: &VcpuStats) -> Option<Fault> {
    let count = |k: ExitKind| stats.exits[k as usize].fetch_add(1, Ordering::Relaxed);
    match exit {
        VcpuExit::IoIn { port, size, data } => {
            count(ExitKind::Io);
            for chunk in data.chunks_mut(size) {
                pio.read(port as u64, chunk);
            }
            None
        }
        VcpuExit::IoOut { port, size, data } => {
            count(ExitKind::Io);
            for chunk in data.chunks(size) {
                pio.write(port as u64, chunk);
            }
            None
        }
        VcpuExit::MmioRead { addr, data } => {
            count(ExitKind::Mmio);
            mmio.read(addr, data);
            None
        }
        VcpuExit::MmioWrite { addr, data } => {
            count(ExitKind::Mmio);
            mmio.write(addr, data);
            None
        }
        VcpuExit::Interrupted => {
            count(ExitKind::Intr);
            None
        }
        VcpuExit::Hlt => {
            count(ExitKind::Hlt);
            Some(Fault::Exit(VmExit::reset()))
        }
        VcpuExit::Shutdown => {
            count(ExitKind::Shutdown);
            Some(Fault::Exit(VmExit::reset()))
        }
        VcpuExit::SystemEvent { kind } => {
            count(ExitKind::SystemEvent);
            if kind == crate::hv::kvm::bindings::KVM_SYSTEM_EVENT_CRASH {
                Some(Fault::Diagnose { code: "VMM_GUEST_CRASH", what: "guest crashed (system event)".into() })
            } else {
                Some(Fault::Exit(VmExit::reset()))
            }
        }
        VcpuExit::InternalError { suberror, data } => {
            count(ExitKind::InternalError);
            let data: Vec<String> = data.iter().map(|d| format!("{d:#x}")).collect();
            Some(Fault::Diagnose {
                code: "VMM_GUEST_INTERNAL_ERROR",
                what: format!(
                    "KVM_EXIT_INTERNAL_ERROR, suberror {suberror} ({}), data [{}]",
                    internal_error_name(suberror),
                    data.join(", ")
                ),
            })
        }
        VcpuExit::FailEntry { reason, cpu } => {
            count(ExitKind::FailEntry);
            Some(Fault::Diagnose {
                code: "VMM_GUEST_FAIL_ENTRY",
                what: format!("KVM_EXIT_FAIL_ENTRY, hardware reason {reason:#x} on host CPU {cpu}"),
            })
        }
        VcpuExit::Other(reason) => {
            count(ExitKind::Other);
            Some(Fault::Diagnose { code: "VMM_VCPU_UNEXPECTED_EXIT", what: format!("unexpected KVM exit reason {reason}") })
        }
    }
}

/// A running vCPU thread.
pub struct VcpuHandle {
    thread: JoinHandle<()>,
    kicker: Kicker,
    stats: Arc<VcpuStats>,
}

impl VcpuHandle {
    /// Makes the vCPU leave KVM_RUN now and not re-enter it: set
    /// immediate_exit (covers a vCPU about to enter) and signal the thread
    /// (interrupts one already inside).
    pub fn kick(&self) {
        use std::os::unix::thread::JoinHandleExt;
        self.kicker.set_immediate_exit();
        if !self.stats.finished.load(Ordering::SeqCst) {
            // SAFETY: the thread has not been joined, so its pthread_t is valid.
            unsafe { libc::pthread_kill(self.thread.as_pthread_t(), kick_signal()) };
        }
    }

    pub fn finished(&self) -> bool {
        self.stats.finished.load(Ordering::SeqCst)
    }
}

/// The real-time signal used to kick vCPU threads out of KVM_RUN.
pub fn kick_signal() -> libc::c_int {
    libc::SIGRTMIN() + 1
}

extern "C" fn on_kick(_sig: libc::c_int) {}

/// Installs the (empty) kick handler without SA_RESTART, so KVM_RUN
/// returns EINTR when the signal arrives. Idempotent; `start` calls it.
pub fn install_kick_handler() -> io::Result<()> {
    // SAFETY: a zeroed sigaction with a valid handler and empty mask.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_kick as *const () as usize;
        libc::sigemptyset(&mut sa.sa_mask);
        if libc::sigaction(kick_signal(), &sa, std::ptr::null_mut()) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Sums the counters of all vCPUs: (ns in KVM_RUN, ns outside, exits).
pub fn total_stats(handles: &[VcpuHandle]) -> (u64, u64, [u64; 9]) {
    let mut exits = [0u64; 9];
    let (mut inside, mut outside) = (0, 0);
    for h in handles {
        inside += h.stats.in_run_ns.load(Ordering::Relaxed);
        outside += h.stats.outside_ns.load(Ordering::Relaxed);
        for (i, e) in h.stats.exits.iter().enumerate() {
            exits[i] += e.load(Ordering::Relaxed);
        }
    }
    (inside, outside, exits)
}

/// CPUID for vCPU `id` of `n` (wraps the arch filter with the backend).
pub fn cpuid_for(supported: &[kvm_cpuid_entry2], pvm: bool, id: u32, n: u32) -> Vec<kvm_cpuid_entry2> {
    cpuid::guest_cpuid(supported, cpuid::CpuidOptions { pvm, vcpu_id: id, nr_vcpus: n })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vcpu_state_serializes() {
        let st = VcpuState {
            version: VCPU_STATE_VERSION,
            id: 1,
            regs: regs::boot_regs(0x100_0000),
            sregs: regs::boot_sregs(kvm_sregs::default()),
            fpu: regs::boot_fpu(),
            msrs: regs::boot_msrs(),
            lapic: kvm_lapic_state::default(),
            events: kvm_vcpu_events::default(),
            mp_state: kvm_mp_state { mp_state: 0 },
        };
        let json = serde_json::to_string(&st).unwrap();
        let back: VcpuState = serde_json::from_str(&json).unwrap();
        assert_eq!(back, st);
    }

    #[test]
    fn exits_are_dispatched_and_counted() {
        use crate::devices::BusDevice;
        use std::sync::Mutex;
        struct Reg(u8);
        impl BusDevice for Reg {
            fn read(&mut self, _o: u64, d: &mut [u8]) {
                d.fill(self.0);
            }
            fn write(&mut self, _o: u64, d: &[u8]) {
                self.0 = d[0];
            }
        }
        let mut pio = Bus::new();
        pio.insert(0x80, 1, Arc::new(Mutex::new(Reg(0)))).unwrap();
        let mmio = Bus::new();
        let stats = VcpuStats::default();
        // A string OUT of three bytes: the last one sticks.
        assert!(handle_exit(VcpuExit::IoOut { port: 0x80, size: 1, data: &[1, 2, 3] }, &pio, &mmio, &stats).is_none());
        let mut buf = [0u8; 2];
        handle_exit(VcpuExit::IoIn { port: 0x80, size: 1, data: &mut buf }, &pio, &mmio, &stats);
        assert_eq!(buf, [3, 3]);
        let mut m = [0u8; 4];
        handle_exit(VcpuExit::MmioRead { addr: 0xd000_0000, data: &mut m }, &pio, &mmio, &stats);
        assert_eq!(m, [0xff; 4], "unclaimed MMIO reads as all-ones");
        assert!(matches!(
            handle_exit(VcpuExit::Shutdown, &pio, &mmio, &stats),
            Some(Fault::Exit(VmExit { reason: crate::lifecycle::ExitReason::Reset, status: 0, .. }))
        ));
        assert!(matches!(
            handle_exit(VcpuExit::InternalError { suberror: 1, data: vec![] }, &pio, &mmio, &stats),
            Some(Fault::Diagnose { code: "VMM_GUEST_INTERNAL_ERROR", .. })
        ));
        assert_eq!(stats.exits[ExitKind::Io as usize].load(Ordering::Relaxed), 2);
        assert_eq!(stats.exits[ExitKind::Mmio as usize].load(Ordering::Relaxed), 1);
        assert_eq!(stats.exits[ExitKind::InternalError as usize].load(Ordering::Relaxed), 1);
    }
}
