//! Assembles a VM from a `Config`. This is the only place that knows the
//! order: memory → VM (irqchip, PIT, TSS) → vCPUs → kernel → initrd →
//! devices on the PIO and MMIO buses → command line → boot tables (MP
//! table, GDT/page tables, zero page) → vCPU registers.

use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::arch::x86_64::boot_params::{e820_map, ZeroPage};
use crate::arch::x86_64::layout::*;
use crate::arch::x86_64::{loader, mptable, regs};
use crate::config::{Config, DiskConfig};
use crate::devices::ports::{ExitPort, I8042, MilestonePort, Sink};
use crate::devices::serial::{FdOutput, Serial};
use crate::devices::virtio::blk::Block;
use crate::devices::virtio::mmio::{MmioTransport, WINDOW_SIZE};
use crate::devices::virtio::vsock::VsockBridge;
use crate::devices::virtio::VirtioDevice;
use crate::devices::{Bus, Irq, SharedDevice};
use crate::hv::kvm::bindings::{
    KVM_CAP_IMMEDIATE_EXIT, KVM_CAP_IRQCHIP, KVM_CAP_IRQFD, KVM_CAP_MAX_VCPUS, KVM_CAP_PIT2, KVM_CAP_USER_MEMORY,
};
use crate::hv::kvm::{Backend, Kvm, VmFd};
use crate::lifecycle::{Lifecycle, VmExit};
use crate::memory::GuestMemory;
use crate::pause::PauseGate;
use crate::report::Report;
use crate::snapshot::format::{SlotDevice, Snapshot};
use crate::vcpu::{cpuid_for, Vcpu, VcpuShared};
use crate::vm::Vm;

/// Timer frequency of our guest kernel (native/kernel/config: HZ_100);
/// `lpj=` is TSC cycles per jiffy so the guest skips delay calibration.
pub const GUEST_HZ: u64 = 100;

#[derive(Debug)]
pub struct BuildError {
    pub code: &'static str,
    pub message: String,
}

impl BuildError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }
}

pub fn setup<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> BuildError + '_ {
    move |e| BuildError::new("VMM_SETUP", format!("{what}: {e}"))
}

/// Everything a VM needs from outside besides its config.
pub struct Hooks {
    pub lifecycle: Arc<Lifecycle>,
    pub report: Arc<Report>,
    /// Descriptors for COM1 (ttyS0) and COM2 (ttyS1) output.
    pub com1_fd: i32,
    pub com2_fd: i32,
    /// The vsock bridge (`--vsock`), already listening; its device goes in
    /// the virtio-mmio slot after the disks.
    pub vsock: Option<Arc<VsockBridge>>,
}

/// /dev/kvm with the capabilities we rely on, checked for `cpus` vCPUs.
pub fn open_kvm(cpus: u32) -> Result<Kvm, BuildError> {
    let kvm = Kvm::open().map_err(|e| BuildError::new("VMM_KVM_UNAVAILABLE", format!("cannot open /dev/kvm: {e}")))?;
    for (cap, name) in [
        (KVM_CAP_IRQCHIP, "IRQCHIP"),
        (KVM_CAP_PIT2, "PIT2"),
        (KVM_CAP_IRQFD, "IRQFD"),
        (KVM_CAP_IMMEDIATE_EXIT, "IMMEDIATE_EXIT"),
        (KVM_CAP_USER_MEMORY, "USER_MEMORY"),
    ] {
        if kvm.check_extension(cap) <= 0 {
            return Err(BuildError::new("VMM_KVM_UNAVAILABLE", format!("KVM lacks KVM_CAP_{name}")));
        }
    }
    let max_vcpus = match kvm.check_extension(KVM_CAP_MAX_VCPUS) {
        n if n > 0 => n as usize,
        _ => kvm.recommended_vcpus(),
    };
    if cpus as usize > max_vcpus {
        return Err(BuildError::new("VMM_SETUP", format!("{cpus} vCPUs exceed what KVM allows here ({max_vcpus})")));
    }
    Ok(kvm)
}

/// A VM with `memory` as its RAM, the in-kernel irqchip and PIT.
pub fn create_vm(kvm: &Kvm, memory: &GuestMemory) -> Result<VmFd, BuildError> {
    let vm_fd = kvm.create_vm().map_err(setup("KVM_CREATE_VM"))?;
    for (slot, (gpa, host, len)) in memory.regions().into_iter().enumerate() {
        // SAFETY: the mapping lives in `memory`, which the Vm keeps for as
        // long as the VM exists.
        unsafe { vm_fd.set_user_memory_region(slot as u32, gpa, len, host) }
            .map_err(setup("KVM_SET_USER_MEMORY_REGION"))?;
    }
    vm_fd.set_tss_addr(KVM_TSS_ADDR).map_err(setup("KVM_SET_TSS_ADDR"))?;
    vm_fd.set_identity_map_addr(KVM_IDENTITY_MAP_ADDR).map_err(setup("KVM_SET_IDENTITY_MAP_ADDR"))?;
    vm_fd.create_irqchip().map_err(setup("KVM_CREATE_IRQCHIP"))?;
    vm_fd.create_pit2().map_err(setup("KVM_CREATE_PIT2"))?;
    Ok(vm_fd)
}

/// Guest RAM of `bytes` with the 32-bit MMIO hole cut out of the map.
pub fn cut_mmio_hole(memory: GuestMemory) -> std::io::Result<GuestMemory> {
    memory.cut_hole(MMIO_HOLE_START, MMIO_HOLE_END)
}

/// The devices of a VM: the buses the vCPUs dispatch on, and the parts a
/// snapshot reads.
pub struct Devices {
    pub pio: Arc<Bus>,
    pub mmio: Arc<Bus>,
    pub serials: Vec<Arc<Mutex<Serial>>>,
    /// Virtio-mmio slots in order (disks, then vsock).
    pub virtio: Vec<(SlotDevice, Arc<Mutex<MmioTransport>>)>,
    /// `virtio_mmio.device=` arguments announcing the slots (boot only).
    pub virtio_args: Vec<String>,
}

/// Every device of the machine on its bus. With `saved` (a restore) each
/// device takes the state it had; otherwise it starts fresh.
pub fn attach_devices(
    disks: &[DiskConfig],
    hooks: &Hooks,
    vm_fd: &VmFd,
    memory: &Arc<GuestMemory>,
    saved: Option<&Snapshot>,
) -> Result<Devices, BuildError> {
    let mut pio = Bus::new();
    let mut mmio = Bus::new();
    let mut serials = Vec::new();
    for (n, (port, irq, fd)) in [(COM1_PORT, COM1_IRQ, hooks.com1_fd), (COM2_PORT, COM2_IRQ, hooks.com2_fd)].into_iter().enumerate() {
        let irq: Arc<dyn Irq> = Arc::new(vm_fd.irqfd(irq).map_err(setup("KVM_IRQFD"))?);
        let mut serial = Serial::new(irq, Box::new(FdOutput::new(fd)));
        if let Some(snap) = saved {
            let st = snap.serials.get(n).ok_or_else(|| restore_invalid(format!("no state for serial port {n}")))?;
            serial.restore(st).map_err(restore_invalid)?;
        }
        let serial = Arc::new(Mutex::new(serial));
        insert(&mut pio, port as u64, 8, serial.clone())?;
        serials.push(serial);
    }
    let lifecycle = hooks.lifecycle.clone();
    insert(&mut pio, EXIT_PORT as u64, 1, Arc::new(Mutex::new(ExitPort::new(Arc::new(move |status| {
        lifecycle.request_exit(VmExit::guest(status))
    })))))?;
    let report = hooks.report.clone();
    insert(&mut pio, MILESTONE_PORT as u64, 1, Arc::new(Mutex::new(MilestonePort::new(Arc::new(move |id| {
        report.milestone(id)
    })))))?;
    let lifecycle = hooks.lifecycle.clone();
    insert(&mut pio, 0x60, 5, Arc::new(Mutex::new(I8042::new(Arc::new(move || lifecycle.request_exit(VmExit::reset()))))))?;
    // Legacy ports Linux touches while booting; answered so it never waits.
    insert(&mut pio, 0x70, 2, Arc::new(Mutex::new(Sink::new(0))))?; // CMOS/RTC: no RTC
    insert(&mut pio, 0x80, 1, Arc::new(Mutex::new(Sink::new(0))))?; // POST / io delay
    insert(&mut pio, 0x87, 1, Arc::new(Mutex::new(Sink::new(0))))?; // DMA page register
    insert(&mut pio, 0xed, 1, Arc::new(Mutex::new(Sink::new(0))))?; // alternative io delay

    let mut slots: Vec<(SlotDevice, Box<dyn VirtioDevice + Send>)> = Vec::new();
    for (index, disk) in disks.iter().enumerate() {
        let block = Block::new(&disk.path, disk.read_only)
            .map_err(|e| BuildError::new("VMM_DISK_INVALID", format!("{}: {e}", disk.path.display())))?;
        slots.push((SlotDevice::Disk { index }, Box::new(block)));
    }
    if let Some(bridge) = &hooks.vsock {
        slots.push((SlotDevice::Vsock, Box::new(bridge.device())));
    }
    if let Some(snap) = saved {
        let want: Vec<&SlotDevice> = snap.virtio.iter().map(|s| &s.device).collect();
        let have: Vec<&SlotDevice> = slots.iter().map(|(d, _)| d).collect();
        if want != have {
            return Err(BuildError::new(
                "VMM_RESTORE_DISK_MISMATCH",
                format!("the snapshot's virtio devices are {want:?}, this restore has {have:?} (pass the same --disk list, and --vsock if the source had it)"),
            ));
        }
    }
    let mut virtio = Vec::new();
    let mut virtio_args = Vec::new();
    for (n, (kind, device)) in slots.into_iter().enumerate() {
        let (addr, irq) = virtio_slot(n)
            .ok_or_else(|| BuildError::new("VMM_DISK_INVALID", format!("too many virtio devices ({})", n + 1)))?;
        let irqfd: Arc<dyn Irq> = Arc::new(vm_fd.irqfd(irq).map_err(setup("KVM_IRQFD"))?);
        let transport = match saved {
            Some(snap) => MmioTransport::restore(memory.clone(), device, irqfd, &snap.virtio[n].mmio)
                .map_err(|e| restore_invalid(format!("virtio slot {n} ({kind:?}): {e}")))?,
            None => MmioTransport::new(memory.clone(), device, irqfd),
        };
        let transport = Arc::new(Mutex::new(transport));
        insert(&mut mmio, addr, WINDOW_SIZE.min(VIRTIO_MMIO_SLOT_SIZE), transport.clone())?;
        virtio_args.push(format!("virtio_mmio.device=4K@{addr:#x}:{irq}"));
        virtio.push((kind, transport));
    }
    Ok(Devices { pio: Arc::new(pio), mmio: Arc::new(mmio), serials, virtio, virtio_args })
}

fn restore_invalid(message: impl Into<String>) -> BuildError {
    BuildError::new("VMM_RESTORE_INVALID", message)
}

pub fn build(cfg: &Config, hooks: &Hooks) -> Result<Vm, BuildError> {
    let kernel_path = cfg.kernel.as_ref().ok_or_else(|| BuildError::new("VMM_KERNEL_INVALID", "no kernel given"))?;
    let debug = std::env::var_os("STASIS_VMM_DEBUG").is_some();
    let t0 = std::time::Instant::now();
    let phase = |name: &str| {
        if debug {
            eprintln!("stasis-vmm: setup {name}: {:.2} ms", t0.elapsed().as_secs_f64() * 1e3);
        }
    };
    let kvm = open_kvm(cfg.cpus)?;
    let backend = kvm.backend();
    phase("kvm open");

    // Guest memory, with the 32-bit MMIO hole cut out of the physical map.
    let mem_size = cfg.memory_mib << 20;
    let memory = Arc::new(
        GuestMemory::with_hole(mem_size, MMIO_HOLE_START, MMIO_HOLE_END).map_err(setup("allocating guest memory"))?,
    );
    let vm_fd = create_vm(&kvm, &memory)?;

    phase("vm + memory");
    let vcpu_fds = (0..cfg.cpus)
        .map(|id| vm_fd.create_vcpu(id))
        .collect::<io::Result<Vec<_>>>()
        .map_err(setup("KVM_CREATE_VCPU"))?;

    phase("vcpus created");
    // Kernel and initrd.
    let low_end = low_ram_end(mem_size);
    let kernel_file = File::open(kernel_path)
        .map_err(|e| BuildError::new("VMM_KERNEL_INVALID", format!("cannot open kernel {}: {e}", kernel_path.display())))?;
    let kernel = loader::load(&kernel_file, &memory, low_end)
        .map_err(|e| BuildError::new("VMM_KERNEL_INVALID", format!("{}: {e}", kernel_path.display())))?;
    drop(kernel_file);
    let initrd = match &cfg.initrd {
        Some(path) => Some(load_initrd(path, &memory, kernel.end(), low_end)?),
        None => None,
    };

    phase("kernel + initrd loaded");
    let devices = attach_devices(&cfg.disks, hooks, &vm_fd, &memory, None)?;
    let virtio_slots = devices.virtio.len();

    // Kernel command line.
    let tsc_khz = vcpu_fds.first().and_then(|v| v.tsc_khz());
    let cmdline = kernel_cmdline(tsc_khz, &devices.virtio_args, backend == Backend::Pvm, cfg.append.as_deref());
    if cmdline.len() >= CMDLINE_MAX {
        return Err(BuildError::new(
            "VMM_SETUP",
            format!("kernel command line is {} bytes; the limit is {}", cmdline.len(), CMDLINE_MAX - 1),
        ));
    }
    let mut c = cmdline.clone().into_bytes();
    c.push(0);
    memory.write(CMDLINE_ADDR, &c).map_err(setup("writing the command line"))?;

    // Boot tables.
    let irqs: Vec<u32> = (0..virtio_slots).filter_map(virtio_slot).map(|(_, irq)| irq).collect();
    let mp = mptable::build(MPTABLE_ADDR, cfg.cpus, &irqs).map_err(setup("MP table"))?;
    memory.write(MPTABLE_ADDR, &mp).map_err(setup("writing the MP table"))?;
    regs::write_boot_tables(&memory).map_err(setup("writing page tables"))?;
    let e820 = e820_map(mem_size);
    let zero_page = ZeroPage { e820: &e820, cmdline_addr: CMDLINE_ADDR, cmdline_len: cmdline.len(), initrd }
        .build()
        .map_err(|e| BuildError::new("VMM_SETUP", format!("{} e820 entries", e.0)))?;
    memory.write(ZERO_PAGE_ADDR, &zero_page).map_err(setup("writing the zero page"))?;

    phase("devices + boot tables");
    // vCPUs.
    let supported = kvm.supported_cpuid().map_err(setup("KVM_GET_SUPPORTED_CPUID"))?;
    let shared = VcpuShared { lifecycle: hooks.lifecycle.clone(), gate: Arc::new(PauseGate::new(cfg.cpus as usize)) };
    let mut vcpus = Vec::new();
    let msrs = Arc::new(crate::vcpu_state::msrs_to_save(&kvm).map_err(setup("KVM_GET_MSR_INDEX_LIST"))?);
    for fd in vcpu_fds {
        let id = fd.id();
        let cpuid = cpuid_for(&supported, backend == Backend::Pvm, id, cfg.cpus);
        if debug && id == 0 && backend == Backend::Pvm {
            let names: Vec<&str> = crate::arch::x86_64::cpuid::PVM_HIDDEN.iter().map(|f| f.name).collect();
            eprintln!("stasis-vmm: kvm_pvm: hiding {}", names.join(" "));
        }
        if debug {
            for e in cpuid.iter().filter(|e| [1, 7, 0xd].contains(&e.function)) {
                eprintln!("stasis-vmm: cpuid {:#x}.{} {:08x} {:08x} {:08x} {:08x}", e.function, e.index, e.eax, e.ebx, e.ecx, e.edx);
            }
        }
        let vcpu = Vcpu::new(fd, devices.pio.clone(), devices.mmio.clone(), memory.clone(), &shared, cpuid, msrs.clone());
        vcpu.configure((id == 0).then_some(kernel.entry))
            .map_err(|e| BuildError::new("VMM_SETUP", format!("configuring vCPU {id}: {e}")))?;
        vcpus.push(vcpu);
    }

    phase("vcpus configured");
    Ok(Vm {
        vcpus,
        devices,
        memory,
        vm_fd: Arc::new(vm_fd),
        kvm,
        cmdline,
        backend,
        disks: cfg.disks.clone(),
        vsock: hooks.vsock.clone(),
        gate: shared.gate,
    })
}

fn insert(bus: &mut Bus, base: u64, len: u64, dev: SharedDevice) -> Result<(), BuildError> {
    bus.insert(base, len, dev)
        .map_err(|o| BuildError::new("VMM_SETUP", format!("device range {:#x}+{:#x} overlaps another", o.base, o.len)))
}

/// Loads the initrd page-aligned at the top of low RAM, above the kernel.
fn load_initrd(path: &Path, memory: &GuestMemory, kernel_end: u64, low_end: u64) -> Result<(u64, u64), BuildError> {
    let bad = |m: String| BuildError::new("VMM_INITRD_INVALID", format!("{}: {m}", path.display()));
    let file = File::open(path).map_err(|e| bad(format!("cannot open: {e}")))?;
    let size = file.metadata().map_err(|e| bad(e.to_string()))?.len();
    let addr = initrd_address(size, kernel_end, low_end)
        .ok_or_else(|| bad(format!("{size} bytes do not fit in guest RAM above the kernel (raise --memory)")))?;
    memory.read_from_file(addr, &file, 0, size as usize).map_err(|e| bad(e.to_string()))?;
    Ok((addr, size))
}

/// Where an initrd of `size` bytes goes: page-aligned, ending at or below
/// `low_end`, starting at or above `kernel_end`.
pub fn initrd_address(size: u64, kernel_end: u64, low_end: u64) -> Option<u64> {
    if size == 0 {
        return None;
    }
    let addr = low_end.checked_sub(size)? & !0xfff;
    (addr >= kernel_end).then_some(addr)
}

/// The kernel command line of docs/guest-contract.md.
pub fn kernel_cmdline(tsc_khz: Option<u32>, virtio: &[String], pvm: bool, append: Option<&str>) -> String {
    // clocksource=kvm-clock: a restore puts kvmclock back exactly, but not
    // always the TSC (kvm_pvm lets the guest read the host's), so a guest
    // timed by the raw TSC could see its clock jump or run backwards.
    let mut parts: Vec<String> = [
        "console=ttyS0",
        "8250.nr_uarts=2",
        "reboot=t",
        "panic=-1",
        "quiet",
        "loglevel=3",
        "pci=off",
        "clocksource=kvm-clock",
    ]
        .iter()
        .map(|s| s.to_string())
        .collect();
    if let Some(khz) = tsc_khz {
        parts.push(format!("lpj={}", khz as u64 * 1000 / GUEST_HZ));
    }
    parts.extend(virtio.iter().cloned());
    parts.push("rdinit=/init".into());
    if pvm {
        // Also makes the guest kernel clear, in its own feature view, the
        // CPUID bits kvm_pvm forces on (native/kernel/patches/0001).
        parts.push("stasis_pvm".into());
    }
    if let Some(a) = append.map(str::trim).filter(|a| !a.is_empty()) {
        parts.push(a.to_string());
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_follows_the_contract() {
        let virtio = vec!["virtio_mmio.device=4K@0xd0000000:5".to_string()];
        assert_eq!(
            kernel_cmdline(Some(2_000_000), &virtio, true, Some(" init_debug ")),
            "console=ttyS0 8250.nr_uarts=2 reboot=t panic=-1 quiet loglevel=3 pci=off clocksource=kvm-clock lpj=20000000 \
             virtio_mmio.device=4K@0xd0000000:5 rdinit=/init stasis_pvm init_debug"
        );
        assert_eq!(
            kernel_cmdline(None, &[], false, None),
            "console=ttyS0 8250.nr_uarts=2 reboot=t panic=-1 quiet loglevel=3 pci=off clocksource=kvm-clock rdinit=/init"
        );
    }

    /// A minimal ELF "kernel": one PT_LOAD of `code` at 16 MiB, entry there.
    fn tiny_kernel(code: &[u8]) -> Vec<u8> {
        let len = code.len() as u64;
        let mut f = crate::arch::x86_64::loader::tests::image(&[(1, 0x1000, 0x100_0000, len, len)], 0x100_0000);
        f[0x1000..0x1000 + code.len()].copy_from_slice(code);
        f
    }

    /// Boots a few instructions on the real /dev/kvm (skipped without it):
    /// milestone 1, a byte to COM2, exit status 42 — and saves the VM and
    /// vCPU state before running, checking it serializes.
    #[test]
    fn boots_a_tiny_guest_on_kvm() {
        if Kvm::open().is_err() {
            eprintln!("no usable /dev/kvm; skipped");
            return;
        }
        let code = [
            0xb0, 0x01, 0xe6, 0xf5, // mov al,1; out 0xf5,al   (milestone 1)
            0x66, 0xba, 0xf8, 0x02, // mov dx,0x2f8
            0xb0, b'K', 0xee, //       mov al,'K'; out dx,al  (COM2)
            0xb0, 0x2a, 0xe6, 0xf4, // mov al,42; out 0xf4,al (exit port)
            0xf4, //                   hlt
        ];
        let dir = std::env::temp_dir().join(format!("stasis-boot-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let kernel = dir.join("vmlinux");
        std::fs::write(&kernel, tiny_kernel(&code)).unwrap();
        let pipe = || {
            let mut fds = [0; 2];
            // SAFETY: valid array for pipe2.
            assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
            fds
        };
        let (com2, rep) = (pipe(), pipe());
        let cfg = Config {
            kernel: Some(kernel),
            restore: None,
            snapshot_path: None,
            initrd: None,
            memory_mib: 64,
            cpus: 1,
            disks: vec![],
            append: None,
            control: None,
            report_fd: None,
            vsock: None,
        };
        let lifecycle = Arc::new(Lifecycle::new());
        let report = Arc::new(Report::new(Some(rep[1]), std::time::Instant::now()));
        let hooks = Hooks { lifecycle: lifecycle.clone(), report: report.clone(), com1_fd: com2[1], com2_fd: com2[1], vsock: None };
        let mut vm = build(&cfg, &hooks).unwrap();
        assert!(vm.cmdline.starts_with("console=ttyS0 8250.nr_uarts=2"));

        let vm_state = serde_json::to_string(&vm.state().unwrap()).unwrap();
        assert!(vm_state.contains("\"pit\""));
        let fd = vm.vcpus[0].fd();
        let cpuid = fd.get_cpuid2().unwrap();
        let msrs = crate::vcpu_state::msrs_to_save(&vm.kvm).unwrap();
        let vcpu_state = crate::vcpu_state::save(fd, &cpuid, &msrs).unwrap();
        assert_eq!(vcpu_state.regs.rip, 0x100_0000);
        assert_eq!(vcpu_state.regs.rsi, ZERO_PAGE_ADDR);
        assert_eq!(vcpu_state.sregs.cs.selector, 0x10);
        assert!(vcpu_state.msrs.iter().any(|m| m.index == 0xc000_0082), "LSTAR saved");
        let json = serde_json::to_string(&vcpu_state).unwrap();
        assert_eq!(serde_json::from_str::<crate::vcpu_state::VcpuState>(&json).unwrap(), vcpu_state);
        let dev_json = serde_json::to_string(&vm.devices_state()).unwrap();
        assert!(dev_json.contains("serials"));

        let handle = vm.vcpus.remove(0).start().unwrap();
        let exit = lifecycle.wait();
        assert_eq!(exit, VmExit::guest(42));
        handle.kick();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !handle.finished() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert!(handle.finished());
        let mut b = [0u8; 1];
        // SAFETY: reading one byte from our pipe.
        assert_eq!(unsafe { libc::read(com2[0], b.as_mut_ptr().cast(), 1) }, 1);
        assert_eq!(&b, b"K");
        drop(hooks);
        drop(report);
        let mut buf = [0u8; 256];
        // SAFETY: reading from our pipe; the write end was closed with the report.
        let n = unsafe { libc::read(rep[0], buf.as_mut_ptr().cast(), buf.len()) };
        let line = String::from_utf8_lossy(&buf[..n.max(0) as usize]).to_string();
        assert!(line.contains("\"milestone\"") && line.contains("\"id\":1"), "{line}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn initrd_goes_high_and_never_over_the_kernel() {
        let mib = 1 << 20;
        assert_eq!(initrd_address(0x1800, 16 * mib, 128 * mib), Some(128 * mib - 0x2000));
        assert_eq!(initrd_address(100 * mib, 30 * mib, 128 * mib), None);
        assert_eq!(initrd_address(200 * mib, 0, 128 * mib), None);
        assert_eq!(initrd_address(0, 0, 128 * mib), None);
    }
}
