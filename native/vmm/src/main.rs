//! stasis-vmm: boots one Linux guest on KVM. See native/vmm/README.md and
//! docs/guest-contract.md (the contract this binary implements).

mod arch;
mod builder;
mod config;
mod control;
mod devices;
mod hv;
mod lifecycle;
mod memory;
mod pause;
mod report;
mod snapshot;
mod stats;
mod vcpu;
mod vcpu_state;
mod vm;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crate::builder::Hooks;
use crate::config::Parsed;
use crate::control::{ControlServer, StatusInfo};
use crate::devices::virtio::vsock::{shutdown::request_agent_shutdown, VsockBridge};
use crate::hv::kvm::Backend;
use crate::lifecycle::{Lifecycle, VmExit};
use crate::report::Report;
use crate::snapshot::Snapshotter;
use crate::stats::StatsSource;
use crate::vcpu::{Vcpu, VcpuHandle};

/// How long main waits for kicked vCPU threads before exiting anyway.
const VCPU_STOP_GRACE: Duration = Duration::from_millis(500);
/// How long the guest agent has to accept a graceful `shutdown` after
/// SIGTERM/SIGINT before the VMM stops at once.
const GRACEFUL_STOP_TIMEOUT: Duration = Duration::from_secs(3);

fn main() {
    let start = Instant::now();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cfg = match config::parse(&args, &|k| std::env::var(k).ok()) {
        Ok(Parsed::Run(cfg)) => cfg,
        Ok(Parsed::Help) => {
            println!("{}", config::USAGE);
            std::process::exit(0);
        }
        Err(e) => {
            eprintln!("stasis-vmm: {e}\n{}", config::USAGE);
            std::process::exit(2);
        }
    };
    if let Some(fd) = cfg.report_fd {
        if fd <= 2 || !report::fd_is_open(fd) {
            eprintln!("stasis-vmm: --report-fd {fd} is not an open descriptor other than 0-2");
            std::process::exit(2);
        }
    }
    tie_to_parent();
    std::process::exit(run(cfg, start));
}

/// With STASIS_PDEATHSIG=1 (set by the runtime unless the caller opts out)
/// the VMM is killed when the process that spawned it goes away, so a VM
/// never outlives a crashed or killed owner.
fn tie_to_parent() {
    if std::env::var("STASIS_PDEATHSIG").as_deref() != Ok("1") {
        return;
    }
    // SAFETY: getppid/prctl have no memory-safety preconditions.
    let parent = unsafe { libc::getppid() };
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) };
    // The parent may have died between fork and prctl; then nobody will signal us.
    if unsafe { libc::getppid() } != parent {
        std::process::exit(1);
    }
}

/// `detach` (control socket): undoes `tie_to_parent`. PR_SET_PDEATHSIG is
/// a per-thread setting, so this runs on the main thread, which set it
/// (Lifecycle::wait_serving calls it there).
fn clear_parent_death_signal() {
    // SAFETY: prctl has no memory-safety preconditions.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, 0 as libc::c_ulong, 0, 0, 0) };
}

fn run(cfg: config::Config, start: Instant) -> i32 {
    // SIGPIPE ignored: a vanished reader shows up as EPIPE, handled per sink.
    // SAFETY: setting a signal disposition.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    let lifecycle = Arc::new(Lifecycle::new());
    let report = Arc::new(Report::new(cfg.report_fd, start));
    let snapshots: Arc<OnceLock<Arc<Snapshotter>>> = Arc::new(OnceLock::new());
    let on_usr1 = SnapshotOnSignal { path: cfg.snapshot_path.clone(), snapshots: snapshots.clone(), report: report.clone() };
    if let Err(e) = watch_signals(lifecycle.clone(), cfg.vsock.clone(), on_usr1) {
        return fail(&report, start, cfg.cpus, "VMM_SETUP", &format!("signal setup: {e}"));
    }
    if let Err(e) = vcpu::install_kick_handler() {
        return fail(&report, start, cfg.cpus, "VMM_SETUP", &format!("signal setup: {e}"));
    }

    // Bound after the signal mask is set, so its I/O thread inherits it.
    let vsock = match &cfg.vsock {
        Some(path) => match VsockBridge::bind(path) {
            Ok(b) => Some(b),
            Err(e) => return fail(&report, start, cfg.cpus, "VMM_SETUP", &format!("vsock socket {}: {e}", path.display())),
        },
        None => None,
    };
    let cleanup_vsock = || {
        if let Some(v) = &vsock {
            v.cleanup();
        }
    };

    let hooks =
        Hooks { lifecycle: lifecycle.clone(), report: report.clone(), com1_fd: 2, com2_fd: 1, vsock: vsock.clone() };
    let built = match &cfg.restore {
        Some(dir) => snapshot::restore::restore(&cfg, dir, &hooks),
        None => builder::build(&cfg, &hooks),
    };
    let mut vm = match built {
        Ok(vm) => vm,
        Err(e) => {
            cleanup_vsock();
            return fail(&report, start, cfg.cpus, e.code, &e.message);
        }
    };
    if vm.backend == Backend::Pvm && std::env::var_os("STASIS_VMM_DEBUG").is_some() {
        eprintln!("stasis-vmm: kvm_pvm backend; cmdline: {}", vm.cmdline);
    }

    // The one source of the `stats` figures: live on the control socket,
    // final in the report.
    let stats = Arc::new(StatsSource::new(
        start,
        vm.vcpus.len() as u32,
        vm.vcpus.iter().map(Vcpu::stats).collect(),
        vsock.clone(),
    ));
    let control = match &cfg.control {
        Some(path) => {
            let info = StatusInfo {
                vcpus: vm.vcpus.len() as u32,
                memory_mib: vm.memory.size() >> 20,
                start,
                stats: stats.clone(),
                snapshots: snapshots.clone(),
            };
            match ControlServer::start(path, info, lifecycle.clone()) {
                Ok(c) => Some(c),
                Err(e) => {
                    cleanup_vsock();
                    return fail(&report, start, cfg.cpus, "VMM_SETUP", &format!("control socket {}: {e}", path.display()));
                }
            }
        }
        None => None,
    };

    stats.setup_done();
    let mut handles: Vec<VcpuHandle> = Vec::new();
    for vcpu in vm.vcpus.drain(..) {
        match vcpu.start() {
            Ok(h) => handles.push(h),
            Err(e) => {
                lifecycle.request_exit(VmExit::error("VMM_SETUP", format!("starting a vCPU thread: {e}")));
                break;
            }
        }
    }

    let handles = Arc::new(handles);
    let _ = snapshots.set(Arc::new(Snapshotter::new(&vm, handles.clone())));
    if cfg.restore.is_some() {
        report.restored();
        if let Some(v) = &vsock {
            v.wake();
        }
    }

    let exit = lifecycle.wait_serving(clear_parent_death_signal);
    // Parked vCPUs (a pause, or a snapshot that ends the VM) must wake to stop.
    vm.gate.resume();
    stop_vcpus(&handles);
    if let Some((_, message)) = &exit.error {
        eprintln!("stasis-vmm: error: {message}");
    }
    report.exit(&exit);
    report.stats(&stats.collect());
    if let Some(c) = &control {
        c.cleanup();
    }
    cleanup_vsock();
    // Serial output is written unbuffered; holding each UART's lock makes
    // sure no vCPU is mid-write when the process goes away.
    let _guards: Vec<_> = vm.devices.serials.iter().map(|s| s.lock().unwrap_or_else(|e| e.into_inner())).collect();
    exit.status
}

/// A failure before any vCPU ran: error, exit and stats events, status 1.
fn fail(report: &Report, start: Instant, vcpus: u32, code: &'static str, message: &str) -> i32 {
    eprintln!("stasis-vmm: error: {message}");
    let exit = VmExit::error(code, message.to_string());
    report.exit(&exit);
    let stats = StatsSource::new(start, vcpus, Vec::new(), None);
    stats.setup_done();
    report.stats(&stats.collect());
    exit.status
}

fn stop_vcpus(handles: &[VcpuHandle]) {
    let deadline = Instant::now() + VCPU_STOP_GRACE;
    loop {
        for h in handles.iter().filter(|h| !h.finished()) {
            h.kick();
        }
        if handles.iter().all(|h| h.finished()) || Instant::now() >= deadline {
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// SIGUSR1: a snapshot to `--snapshot-path`, the VM left running; the
/// outcome goes to the report. Ignored without a path or before the vCPUs run.
struct SnapshotOnSignal {
    path: Option<PathBuf>,
    snapshots: Arc<OnceLock<Arc<Snapshotter>>>,
    report: Arc<Report>,
}

impl SnapshotOnSignal {
    fn fire(&self) {
        let (Some(path), Some(snapshots)) = (self.path.clone(), self.snapshots.get().cloned()) else { return };
        let report = self.report.clone();
        // Off the signal thread, so SIGTERM stays served meanwhile.
        let _ = std::thread::Builder::new().name("sigusr1-snapshot".into()).stack_size(256 * 1024).spawn(move || {
            report.snapshot(snapshots.take(&path, true).map(|o| o.to_json()));
        });
    }
}

/// SIGTERM, SIGINT and SIGUSR1 are blocked in every thread (threads
/// inherit the mask) and taken synchronously by one thread. Without a
/// vsock bridge SIGTERM/SIGINT mean `shutdown`. With one, the first asks
/// the guest agent to shut down (the guest command gets SIGTERM and the
/// guest ends the VM itself); if the agent has not accepted within
/// GRACEFUL_STOP_TIMEOUT, or on a second signal, the VMM stops at once.
fn watch_signals(lifecycle: Arc<Lifecycle>, vsock: Option<PathBuf>, on_usr1: SnapshotOnSignal) -> std::io::Result<()> {
    // SAFETY: building a signal set and blocking it for this thread (and so
    // for every thread spawned after this).
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGUSR1);
        let rc = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        if rc != 0 {
            return Err(std::io::Error::from_raw_os_error(rc));
        }
        set
    };
    std::thread::Builder::new().name("signals".into()).stack_size(64 * 1024).spawn(move || {
        let mut graceful = vsock;
        loop {
            let mut sig: libc::c_int = 0;
            // SAFETY: waiting on a valid, blocked signal set.
            if unsafe { libc::sigwait(&set, &mut sig) } != 0 {
                continue;
            }
            if sig == libc::SIGUSR1 {
                on_usr1.fire();
                continue;
            }
            match graceful.take() {
                Some(path) => ask_guest_to_stop(path, lifecycle.clone()),
                None => lifecycle.request_exit(VmExit::shutdown()),
            }
        }
    })?;
    Ok(())
}

/// From a helper thread: the agent's `shutdown` over our own bridge; any
/// failure or timeout means `shutdown` at once. On success nothing more
/// happens here: the guest ends the VM through the exit port.
fn ask_guest_to_stop(bridge: PathBuf, lifecycle: Arc<Lifecycle>) {
    let l = lifecycle.clone();
    let spawned = std::thread::Builder::new().name("graceful-stop".into()).stack_size(128 * 1024).spawn(move || {
        if let Err(e) = request_agent_shutdown(&bridge, GRACEFUL_STOP_TIMEOUT) {
            if std::env::var_os("STASIS_VMM_DEBUG").is_some() {
                eprintln!("stasis-vmm: graceful stop through the agent failed ({e}); stopping now");
            }
            l.request_exit(VmExit::shutdown());
        }
    });
    if spawned.is_err() {
        lifecycle.request_exit(VmExit::shutdown());
    }
}
