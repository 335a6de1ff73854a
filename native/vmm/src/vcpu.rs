//! vCPU threads: boot-state setup, the KVM_RUN loop and its exit handling,
//! per-vCPU accounting (time inside vs outside KVM_RUN, exits by reason),
//! and the kick that pulls a vCPU out of the guest. Saving and restoring a
//! vCPU's state is `vcpu_state`.

use std::io;
use std::sync::atomic::{fence, AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use crate::arch::x86_64::{cpuid, paging, regs};
use crate::devices::Bus;
use crate::hv::kvm::{kvm_cpuid_entry2, Kicker, VcpuExit, VcpuFd};
use crate::lifecycle::{Lifecycle, VmExit};
use crate::memory::GuestMemory;
use crate::pause::PauseGate;

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

/// What a vCPU thread is doing, as published in `VcpuStats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
enum Phase {
    /// Not started, or stopped.
    Idle = 0,
    /// Inside KVM_RUN since `since_ns`.
    InRun = 1,
    /// Outside KVM_RUN (handling an exit) since `since_ns`.
    Outside = 2,
}

/// Counters a vCPU thread publishes; any thread may read them while it
/// runs (`VcpuStats::times`: the control socket's live `stats`) or after.
/// The times and the phase in progress are one unit, written by the vCPU
/// thread alone under a sequence counter (a seqlock), so a reader never
/// pairs a total with a phase start it already includes.
pub struct VcpuStats {
    /// Odd while the vCPU thread is updating the fields below.
    seq: AtomicU64,
    /// Completed time inside / outside KVM_RUN.
    in_run_ns: AtomicU64,
    outside_ns: AtomicU64,
    phase: AtomicU64,
    /// When the phase in progress began, in ns after `epoch`.
    since_ns: AtomicU64,
    epoch: Instant,
    pub exits: [AtomicU64; 9],
    pub finished: AtomicBool,
}

impl Default for VcpuStats {
    fn default() -> Self {
        Self {
            seq: AtomicU64::new(0),
            in_run_ns: AtomicU64::new(0),
            outside_ns: AtomicU64::new(0),
            phase: AtomicU64::new(Phase::Idle as u64),
            since_ns: AtomicU64::new(0),
            epoch: Instant::now(),
            exits: Default::default(),
            finished: AtomicBool::new(false),
        }
    }
}

impl VcpuStats {
    /// Publishes the completed totals and the phase that began at `at`.
    /// Only the vCPU thread writes (one writer).
    fn publish(&self, in_run_ns: u64, outside_ns: u64, phase: Phase, at: Instant) {
        let seq = self.seq.load(Ordering::Relaxed);
        self.seq.store(seq.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        self.in_run_ns.store(in_run_ns, Ordering::Relaxed);
        self.outside_ns.store(outside_ns, Ordering::Relaxed);
        self.phase.store(phase as u64, Ordering::Relaxed);
        self.since_ns.store(at.saturating_duration_since(self.epoch).as_nanos() as u64, Ordering::Relaxed);
        self.seq.store(seq.wrapping_add(2), Ordering::Release);
    }

    /// (ns inside KVM_RUN, ns outside) up to now, the phase in progress
    /// included.
    pub fn times(&self) -> (u64, u64) {
        loop {
            let seq = self.seq.load(Ordering::Acquire);
            if seq % 2 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let in_run = self.in_run_ns.load(Ordering::Relaxed);
            let outside = self.outside_ns.load(Ordering::Relaxed);
            let phase = self.phase.load(Ordering::Relaxed);
            let since = self.since_ns.load(Ordering::Relaxed);
            fence(Ordering::Acquire);
            if self.seq.load(Ordering::Relaxed) != seq {
                continue;
            }
            // Read after a consistent snapshot, so never before `since`.
            let running = (self.epoch.elapsed().as_nanos() as u64).saturating_sub(since);
            return match phase {
                p if p == Phase::InRun as u64 => (in_run + running, outside),
                p if p == Phase::Outside as u64 => (in_run, outside + running),
                _ => (in_run, outside),
            };
        }
    }
}

pub struct Vcpu {
    fd: VcpuFd,
    pio: Arc<Bus>,
    mmio: Arc<Bus>,
    mem: Arc<GuestMemory>,
    lifecycle: Arc<Lifecycle>,
    gate: Arc<PauseGate>,
    /// The CPUID this vCPU was given (saved with its state).
    cpuid: Vec<kvm_cpuid_entry2>,
    /// The MSRs a state save reads.
    msrs: Arc<Vec<u32>>,
    stats: Arc<VcpuStats>,
}

/// What every vCPU of a VM shares besides its buses and memory.
#[derive(Clone)]
pub struct VcpuShared {
    pub lifecycle: Arc<Lifecycle>,
    pub gate: Arc<PauseGate>,
}

impl Vcpu {
    pub fn new(
        fd: VcpuFd,
        pio: Arc<Bus>,
        mmio: Arc<Bus>,
        mem: Arc<GuestMemory>,
        shared: &VcpuShared,
        cpuid: Vec<kvm_cpuid_entry2>,
        msrs: Arc<Vec<u32>>,
    ) -> Self {
        let VcpuShared { lifecycle, gate } = shared.clone();
        Self { fd, pio, mmio, mem, lifecycle, gate, cpuid, msrs, stats: Arc::new(VcpuStats::default()) }
    }

    /// The counters this vCPU's thread will publish (readable live).
    pub fn stats(&self) -> Arc<VcpuStats> {
        self.stats.clone()
    }

    /// CPUID, MSRs, FPU and LAPIC for every vCPU; registers for the boot
    /// vCPU (`entry` = kernel entry point). Other vCPUs wait for INIT/SIPI.
    pub fn configure(&self, entry: Option<u64>) -> io::Result<()> {
        self.fd.set_cpuid2(&self.cpuid)?;
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

    /// The KVM vCPU, for reading or writing its state (`vcpu_state`) while
    /// it is not running (tests; the VMM saves from the vCPU thread).
    #[cfg(test)]
    pub fn fd(&self) -> &VcpuFd {
        &self.fd
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
        // Everything between two KVM_RUNs (exit handling) is "outside".
        let mut outside: u64 = 0;
        let mut last_exit: Option<Instant> = None;
        // False right after an I/O or MMIO exit: KVM completes that
        // instruction only on the next KVM_RUN, so the vCPU may not park.
        let mut at_boundary = true;
        while !self.lifecycle.stopping() {
            if at_boundary && self.gate.requested() {
                let now = Instant::now();
                if let Some(t) = last_exit {
                    outside += (now - t).as_nanos() as u64;
                }
                // Parked time is neither in nor outside KVM_RUN.
                self.stats.publish(in_run, outside, Phase::Idle, now);
                let id = self.fd.id() as usize;
                let parked = self.gate.park(id, || {
                    crate::vcpu_state::save(&self.fd, &self.cpuid, &self.msrs).map_err(|e| format!("vCPU {id}: {e}"))
                });
                if parked {
                    // Tells the guest it was stopped by the host, so its
                    // watchdogs do not take the gap for a lockup.
                    let _ = self.fd.kvmclock_ctrl();
                }
                last_exit = Some(Instant::now());
                if !self.lifecycle.stopping() && !self.gate.requested() {
                    self.fd.clear_immediate_exit();
                }
                continue;
            }
            let t0 = Instant::now();
            if let Some(t) = last_exit {
                outside += (t0 - t).as_nanos() as u64;
            }
            self.stats.publish(in_run, outside, Phase::InRun, t0);
            let result = self.fd.run();
            let t1 = Instant::now();
            in_run += (t1 - t0).as_nanos() as u64;
            self.stats.publish(in_run, outside, Phase::Outside, t1);
            last_exit = Some(t1);
            at_boundary = matches!(result, Ok(VcpuExit::Interrupted));
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
            // A kick for a pause must stay armed until the vCPU has parked.
            if !self.lifecycle.stopping() && !self.gate.requested() {
                self.fd.clear_immediate_exit();
            }
        }
        let end = Instant::now();
        if let Some(t) = last_exit {
            outside += (end - t).as_nanos() as u64;
        }
        self.stats.publish(in_run, outside, Phase::Idle, end);
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

/// Sums the counters of all vCPUs, live: (ns in KVM_RUN, ns outside, exits).
pub fn total_stats(stats: &[Arc<VcpuStats>]) -> (u64, u64, [u64; 9]) {
    let mut exits = [0u64; 9];
    let (mut inside, mut outside) = (0, 0);
    for s in stats {
        let (i, o) = s.times();
        inside += i;
        outside += o;
        for (n, e) in s.exits.iter().enumerate() {
            exits[n] += e.load(Ordering::Relaxed);
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

    #[test]
    fn live_times_include_the_phase_in_progress() {
        let ms = |n: u64| n * 1_000_000;
        let s = Arc::new(VcpuStats::default());
        assert_eq!(s.times(), (0, 0));
        s.publish(ms(5), ms(1), Phase::InRun, Instant::now());
        std::thread::sleep(std::time::Duration::from_millis(20));
        let (i, o) = s.times();
        assert!(i >= ms(25) && o == ms(1), "{i} {o}");
        s.publish(ms(5), ms(1), Phase::Outside, Instant::now());
        std::thread::sleep(std::time::Duration::from_millis(20));
        let (i, o) = s.times();
        assert!(i == ms(5) && o >= ms(21), "{i} {o}");
        s.publish(ms(7), ms(3), Phase::Idle, Instant::now());
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert_eq!(s.times(), (ms(7), ms(3)));
        assert_eq!(total_stats(&[s.clone(), s]).0, ms(14));
    }

    #[test]
    fn live_times_are_never_torn() {
        // The writer keeps in + out = 1e9; a reader must never see a mix.
        let s = Arc::new(VcpuStats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let writer = {
            let (s, stop) = (s.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut k: u64 = 0;
                while !stop.load(Ordering::Relaxed) {
                    k = (k + 7919) % 1_000_000_000;
                    s.publish(k, 1_000_000_000 - k, Phase::Idle, Instant::now());
                }
            })
        };
        for _ in 0..200_000 {
            let (i, o) = s.times();
            assert!(i + o == 1_000_000_000 || (i, o) == (0, 0), "{i} {o}");
        }
        stop.store(true, Ordering::Relaxed);
        writer.join().unwrap();
    }
}
