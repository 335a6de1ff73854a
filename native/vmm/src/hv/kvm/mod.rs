//! Thin safe wrappers over the KVM ioctls in `bindings`. Each wrapper owns
//! its file descriptor; every `unsafe` block is one ioctl or one access to
//! the mmap'ed `kvm_run` page with the size the kernel told us.

pub mod bindings;

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

pub use bindings::{
    kvm_clock_data, kvm_cpuid_entry2, kvm_debugregs, kvm_fpu, kvm_irqchip, kvm_lapic_state, kvm_mp_state,
    kvm_msr_entry, kvm_pit_state2, kvm_regs, kvm_segment, kvm_sregs, kvm_vcpu_events, kvm_xcrs, kvm_xsave,
};
use bindings::*;

fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

// SAFETY (all helpers): `fd` is a descriptor we own and `req` is a KVM
// request whose argument type matches what is passed.
unsafe fn ioctl_val(fd: RawFd, req: u64, arg: libc::c_ulong) -> io::Result<libc::c_int> {
    cvt(libc::ioctl(fd, req as libc::c_ulong, arg))
}
unsafe fn ioctl_ptr<T>(fd: RawFd, req: u64, arg: *const T) -> io::Result<libc::c_int> {
    cvt(libc::ioctl(fd, req as libc::c_ulong, arg))
}
unsafe fn ioctl_mut<T>(fd: RawFd, req: u64, arg: *mut T) -> io::Result<libc::c_int> {
    cvt(libc::ioctl(fd, req as libc::c_ulong, arg))
}

/// Which KVM implementation is behind /dev/kvm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Hardware-assisted KVM (kvm_intel / kvm_amd).
    Hardware,
    /// The `kvm_pvm` shadow-paging backend: ring-0 guest code is emulated
    /// and some instructions are missing (see the CPUID compat table).
    Pvm,
}

impl Backend {
    pub fn detect() -> Self {
        Self::detect_in(Path::new("/sys/module"))
    }

    fn detect_in(sys_module: &Path) -> Self {
        if sys_module.join("kvm_pvm").exists() {
            Backend::Pvm
        } else {
            Backend::Hardware
        }
    }
}

/// Header + entries buffer for the variable-length ioctls (cpuid2, msrs).
/// Backed by u64s so the header and the entries are suitably aligned.
struct FlexBuf<H, E> {
    words: Vec<u64>,
    _p: std::marker::PhantomData<(H, E)>,
}

impl<H: Copy + Default, E: Copy> FlexBuf<H, E> {
    fn new(n: usize) -> Self {
        let bytes = std::mem::size_of::<H>() + n * std::mem::size_of::<E>();
        Self { words: vec![0u64; bytes.div_ceil(8)], _p: std::marker::PhantomData }
    }
    fn head(&mut self) -> *mut H {
        self.words.as_mut_ptr().cast()
    }
    fn entries(&mut self) -> *mut E {
        // SAFETY: the buffer was sized for the header plus the entries.
        unsafe { self.words.as_mut_ptr().cast::<u8>().add(std::mem::size_of::<H>()).cast() }
    }
}

/// An open /dev/kvm.
pub struct Kvm {
    fd: File,
    backend: Backend,
}

impl Kvm {
    pub fn open() -> io::Result<Self> {
        let fd = std::fs::OpenOptions::new().read(true).write(true).open("/dev/kvm")?;
        let kvm = Self { fd, backend: Backend::detect() };
        // SAFETY: argument-less ioctl.
        let version = unsafe { ioctl_val(kvm.fd.as_raw_fd(), KVM_GET_API_VERSION, 0)? };
        if version != KVM_API_VERSION {
            return Err(io::Error::other(format!("unsupported KVM API version {version}")));
        }
        Ok(kvm)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// KVM_CHECK_EXTENSION; 0 means "not supported".
    pub fn check_extension(&self, cap: u64) -> i32 {
        // SAFETY: argument is a plain integer.
        unsafe { ioctl_val(self.fd.as_raw_fd(), KVM_CHECK_EXTENSION, cap as libc::c_ulong) }.unwrap_or(0)
    }

    /// The number of vCPUs KVM recommends (KVM_CAP_NR_VCPUS), at least 1.
    pub fn recommended_vcpus(&self) -> usize {
        self.check_extension(KVM_CAP_NR_VCPUS).max(1) as usize
    }

    pub fn supported_cpuid(&self) -> io::Result<Vec<kvm_cpuid_entry2>> {
        let mut buf = FlexBuf::<kvm_cpuid2, kvm_cpuid_entry2>::new(KVM_MAX_CPUID_ENTRIES);
        // SAFETY: head points into a buffer with room for KVM_MAX_CPUID_ENTRIES.
        unsafe { (*buf.head()).nent = KVM_MAX_CPUID_ENTRIES as u32 };
        // SAFETY: kernel writes at most nent entries into the buffer.
        unsafe { ioctl_mut(self.fd.as_raw_fd(), KVM_GET_SUPPORTED_CPUID, buf.head())? };
        // SAFETY: the kernel updated nent to the number of valid entries.
        let n = unsafe { (*buf.head()).nent as usize }.min(KVM_MAX_CPUID_ENTRIES);
        // SAFETY: entries() has n initialised entries.
        Ok(unsafe { std::slice::from_raw_parts(buf.entries(), n) }.to_vec())
    }

    /// KVM_GET_MSR_INDEX_LIST: the MSRs this KVM saves and restores for a
    /// vCPU (its `msrs_to_save` and emulated MSRs).
    pub fn msr_index_list(&self) -> io::Result<Vec<u32>> {
        let mut room = 512usize;
        loop {
            let mut buf = FlexBuf::<kvm_msr_list, u32>::new(room);
            // SAFETY: head points into a buffer with room for `room` indices.
            unsafe { (*buf.head()).nmsrs = room as u32 };
            // SAFETY: the kernel writes at most nmsrs indices after the header.
            let r = unsafe { ioctl_mut(self.fd.as_raw_fd(), KVM_GET_MSR_INDEX_LIST, buf.head()) };
            // SAFETY: the kernel set nmsrs to the list's length (also on E2BIG).
            let n = unsafe { (*buf.head()).nmsrs } as usize;
            match r {
                Ok(_) => {
                    // SAFETY: entries() has min(n, room) initialised indices.
                    return Ok(unsafe { std::slice::from_raw_parts(buf.entries(), n.min(room)) }.to_vec());
                }
                Err(e) if e.raw_os_error() == Some(libc::E2BIG) && n > room => room = n,
                Err(e) => return Err(e),
            }
        }
    }

    fn vcpu_mmap_size(&self) -> io::Result<usize> {
        // SAFETY: argument-less ioctl.
        Ok(unsafe { ioctl_val(self.fd.as_raw_fd(), KVM_GET_VCPU_MMAP_SIZE, 0)? } as usize)
    }

    pub fn create_vm(&self) -> io::Result<VmFd> {
        // SAFETY: type 0 = default VM.
        let raw = unsafe { ioctl_val(self.fd.as_raw_fd(), KVM_CREATE_VM, 0)? };
        // SAFETY: fresh descriptor returned by the kernel.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        Ok(VmFd { fd, run_size: self.vcpu_mmap_size()? })
    }
}

/// A KVM virtual machine.
pub struct VmFd {
    fd: OwnedFd,
    run_size: usize,
}

impl VmFd {
    fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Maps `size` bytes at host address `host` to guest physical `gpa`.
    ///
    /// # Safety
    /// `host..host+size` must stay mapped for as long as the VM lives.
    pub unsafe fn set_user_memory_region(&self, slot: u32, gpa: u64, size: u64, host: *mut u8) -> io::Result<()> {
        let r = kvm_userspace_memory_region {
            slot,
            flags: 0,
            guest_phys_addr: gpa,
            memory_size: size,
            userspace_addr: host as u64,
        };
        ioctl_ptr(self.raw(), KVM_SET_USER_MEMORY_REGION, &r).map(drop)
    }

    pub fn set_tss_addr(&self, addr: u64) -> io::Result<()> {
        // SAFETY: plain integer argument.
        unsafe { ioctl_val(self.raw(), KVM_SET_TSS_ADDR, addr as libc::c_ulong).map(drop) }
    }

    pub fn set_identity_map_addr(&self, addr: u64) -> io::Result<()> {
        // SAFETY: pointer to a u64, as the request declares.
        unsafe { ioctl_ptr(self.raw(), KVM_SET_IDENTITY_MAP_ADDR, &addr).map(drop) }
    }

    pub fn create_irqchip(&self) -> io::Result<()> {
        // SAFETY: argument-less ioctl.
        unsafe { ioctl_val(self.raw(), KVM_CREATE_IRQCHIP, 0).map(drop) }
    }

    pub fn create_pit2(&self) -> io::Result<()> {
        let cfg = kvm_pit_config { flags: KVM_PIT_SPEAKER_DUMMY, pad: [0; 15] };
        // SAFETY: pointer to a kvm_pit_config.
        unsafe { ioctl_ptr(self.raw(), KVM_CREATE_PIT2, &cfg).map(drop) }
    }

    /// Connects `eventfd` to interrupt line `gsi`: each write to the eventfd
    /// is one edge on that line, delivered entirely in the kernel.
    pub fn register_irqfd(&self, eventfd: RawFd, gsi: u32) -> io::Result<()> {
        let r = kvm_irqfd { fd: eventfd as u32, gsi, ..Default::default() };
        // SAFETY: pointer to a kvm_irqfd.
        unsafe { ioctl_ptr(self.raw(), KVM_IRQFD, &r).map(drop) }
    }

    /// A fresh eventfd wired to `gsi` as an `Irq` for devices.
    pub fn irqfd(&self, gsi: u32) -> io::Result<IrqFd> {
        // SAFETY: plain eventfd creation.
        let raw = cvt(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) })?;
        // SAFETY: fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        self.register_irqfd(fd.as_raw_fd(), gsi)?;
        Ok(IrqFd { fd })
    }

    pub fn get_irqchip(&self, chip_id: u32) -> io::Result<kvm_irqchip> {
        let mut c = kvm_irqchip { chip_id, ..Default::default() };
        // SAFETY: pointer to a kvm_irqchip.
        unsafe { ioctl_mut(self.raw(), KVM_GET_IRQCHIP, &mut c)? };
        Ok(c)
    }

    /// Writes one interrupt controller; `c.chip_id` says which.
    pub fn set_irqchip(&self, c: &kvm_irqchip) -> io::Result<()> {
        // SAFETY: pointer to a kvm_irqchip (the kernel declares this
        // request _IOR but only reads the structure).
        unsafe { ioctl_ptr(self.raw(), KVM_SET_IRQCHIP, c).map(drop) }
    }

    pub fn get_pit2(&self) -> io::Result<kvm_pit_state2> {
        let mut p = kvm_pit_state2::default();
        // SAFETY: pointer to a kvm_pit_state2.
        unsafe { ioctl_mut(self.raw(), KVM_GET_PIT2, &mut p)? };
        Ok(p)
    }

    pub fn set_pit2(&self, p: &kvm_pit_state2) -> io::Result<()> {
        // SAFETY: pointer to a kvm_pit_state2.
        unsafe { ioctl_ptr(self.raw(), KVM_SET_PIT2, p).map(drop) }
    }

    /// The VM's kvmclock (ns), as the guest would read it now.
    pub fn get_clock(&self) -> io::Result<kvm_clock_data> {
        let mut c = kvm_clock_data::default();
        // SAFETY: pointer to a kvm_clock_data.
        unsafe { ioctl_mut(self.raw(), KVM_GET_CLOCK, &mut c)? };
        Ok(c)
    }

    /// Sets the VM's kvmclock. With `flags` 0 the clock reads `clock` now
    /// and runs on from there; KVM_CLOCK_REALTIME would add the wall time
    /// elapsed since `realtime`.
    pub fn set_clock(&self, c: &kvm_clock_data) -> io::Result<()> {
        // SAFETY: pointer to a kvm_clock_data.
        unsafe { ioctl_ptr(self.raw(), KVM_SET_CLOCK, c).map(drop) }
    }

    pub fn create_vcpu(&self, id: u32) -> io::Result<VcpuFd> {
        // SAFETY: integer vCPU id.
        let raw = unsafe { ioctl_val(self.raw(), KVM_CREATE_VCPU, id as libc::c_ulong)? };
        // SAFETY: fresh descriptor returned by the kernel.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: mapping the vCPU's run page with the size KVM reported.
        let run = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                self.run_size,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if run == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let page = Arc::new(RunPage { ptr: run.cast(), size: self.run_size });
        Ok(VcpuFd { fd, run: page.ptr, run_size: page.size, page, id })
    }
}

/// An interrupt line backed by an irqfd: `trigger` is one 8-byte write.
pub struct IrqFd {
    fd: OwnedFd,
}

impl crate::devices::Irq for IrqFd {
    fn trigger(&self) {
        let one: u64 = 1;
        // SAFETY: writing 8 bytes from a u64 to our eventfd. It can only
        // fail with EAGAIN if the counter would overflow, in which case an
        // interrupt is pending anyway.
        unsafe { libc::write(self.fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }
}

/// What a vCPU exit asks of the VMM. Data buffers point into the run page.
pub enum VcpuExit<'a> {
    /// `data` holds `data.len() / size` accesses of `size` bytes (string I/O).
    IoIn { port: u16, size: usize, data: &'a mut [u8] },
    IoOut { port: u16, size: usize, data: &'a [u8] },
    MmioRead { addr: u64, data: &'a mut [u8] },
    MmioWrite { addr: u64, data: &'a [u8] },
    Hlt,
    Shutdown,
    /// KVM_RUN returned EINTR (a kick) or KVM_EXIT_INTR.
    Interrupted,
    FailEntry { reason: u64, cpu: u32 },
    InternalError { suberror: u32, data: Vec<u64> },
    SystemEvent { kind: u32 },
    Other(u32),
}

/// Number of string-I/O repetitions we will serve per exit; KVM never asks
/// for more than fits in the run page, but we do not rely on that.
const MAX_IO_BYTES: usize = 4096;

/// A KVM vCPU and its mmap'ed run page.
pub struct VcpuFd {
    fd: OwnedFd,
    run: *mut u8,
    run_size: usize,
    page: Arc<RunPage>,
    id: u32,
}

// The run page is only dereferenced by the owning thread, except for the
// immediate_exit byte, which is accessed atomically through `Kicker`.
unsafe impl Send for VcpuFd {}

/// The mmap'ed `kvm_run` page; unmapped when the vCPU and every kicker are gone.
struct RunPage {
    ptr: *mut u8,
    size: usize,
}

// Shared only for the atomic immediate_exit byte.
unsafe impl Send for RunPage {}
unsafe impl Sync for RunPage {}

impl RunPage {
    fn immediate_exit(&self) -> &AtomicU8 {
        // SAFETY: offset 1 of the mapped page is immediate_exit; AtomicU8
        // has the layout of u8 and the page outlives the reference.
        unsafe { &*(self.ptr.add(1) as *const AtomicU8) }
    }
}

impl Drop for RunPage {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly the run page mapped in create_vcpu.
        unsafe { libc::munmap(self.ptr.cast(), self.size) };
    }
}

/// Lets another thread make a vCPU leave KVM_RUN (with a signal) and stay out.
#[derive(Clone)]
pub struct Kicker {
    page: Arc<RunPage>,
}

impl Kicker {
    pub fn set_immediate_exit(&self) {
        self.page.immediate_exit().store(1, Ordering::SeqCst);
    }
}

impl VcpuFd {
    fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    pub fn id(&self) -> u32 {
        self.id
    }

    pub fn kicker(&self) -> Kicker {
        Kicker { page: self.page.clone() }
    }

    fn head(&self) -> kvm_run_head {
        // SAFETY: the run page is at least as large as its head.
        unsafe { std::ptr::read_volatile(self.run.cast::<kvm_run_head>()) }
    }

    fn union<T: Copy>(&self) -> T {
        debug_assert!(KVM_RUN_EXIT_UNION + std::mem::size_of::<T>() <= self.run_size);
        // SAFETY: every exit-union member fits in the 256-byte union.
        unsafe { std::ptr::read_volatile(self.run.add(KVM_RUN_EXIT_UNION).cast::<T>()) }
    }

    /// Enters the guest until the next exit that needs the VMM.
    pub fn run(&mut self) -> io::Result<VcpuExit<'_>> {
        // SAFETY: argument-less ioctl on our vCPU fd.
        if let Err(e) = unsafe { ioctl_val(self.raw(), KVM_RUN, 0) } {
            return match e.raw_os_error() {
                Some(libc::EINTR) | Some(libc::EAGAIN) => Ok(VcpuExit::Interrupted),
                _ => Err(e),
            };
        }
        let reason = self.head().exit_reason;
        Ok(match reason {
            KVM_EXIT_IO => {
                let io: kvm_run_io = self.union();
                let len = io.size as usize * io.count as usize;
                let off = io.data_offset as usize;
                if len > MAX_IO_BYTES || off.checked_add(len).is_none_or(|end| end > self.run_size) {
                    return Ok(VcpuExit::Other(reason));
                }
                // SAFETY: off..off+len was checked to lie inside the run page.
                let data = unsafe { std::slice::from_raw_parts_mut(self.run.add(off), len) };
                let size = io.size as usize;
                if size == 0 {
                    return Ok(VcpuExit::Other(reason));
                }
                if io.direction == KVM_EXIT_IO_OUT {
                    VcpuExit::IoOut { port: io.port, size, data }
                } else {
                    VcpuExit::IoIn { port: io.port, size, data }
                }
            }
            KVM_EXIT_MMIO => {
                let m: kvm_run_mmio = self.union();
                let len = (m.len as usize).min(8);
                // SAFETY: mmio.data is the 8 bytes at union offset 8.
                let data = unsafe { std::slice::from_raw_parts_mut(self.run.add(KVM_RUN_EXIT_UNION + 8), len) };
                if m.is_write != 0 {
                    VcpuExit::MmioWrite { addr: m.phys_addr, data }
                } else {
                    VcpuExit::MmioRead { addr: m.phys_addr, data }
                }
            }
            KVM_EXIT_HLT => VcpuExit::Hlt,
            KVM_EXIT_SHUTDOWN => VcpuExit::Shutdown,
            KVM_EXIT_INTR => VcpuExit::Interrupted,
            KVM_EXIT_FAIL_ENTRY => {
                let f: kvm_run_fail_entry = self.union();
                VcpuExit::FailEntry { reason: f.hardware_entry_failure_reason, cpu: f.cpu }
            }
            KVM_EXIT_INTERNAL_ERROR => {
                let i: kvm_run_internal = self.union();
                let n = (i.ndata as usize).min(i.data.len());
                VcpuExit::InternalError { suberror: i.suberror, data: i.data[..n].to_vec() }
            }
            KVM_EXIT_SYSTEM_EVENT => {
                let s: kvm_run_system_event = self.union();
                VcpuExit::SystemEvent { kind: s.type_ }
            }
            other => VcpuExit::Other(other),
        })
    }

    /// Clears a pending immediate_exit request (after a kick was handled).
    pub fn clear_immediate_exit(&self) {
        self.page.immediate_exit().store(0, Ordering::SeqCst);
    }

    pub fn set_cpuid2(&self, entries: &[kvm_cpuid_entry2]) -> io::Result<()> {
        let mut buf = FlexBuf::<kvm_cpuid2, kvm_cpuid_entry2>::new(entries.len());
        // SAFETY: buffer sized for entries.len() entries.
        unsafe {
            (*buf.head()).nent = entries.len() as u32;
            std::ptr::copy_nonoverlapping(entries.as_ptr(), buf.entries(), entries.len());
            ioctl_mut(self.raw(), KVM_SET_CPUID2, buf.head()).map(drop)
        }
    }

    /// KVM_GET_CPUID2: the CPUID table this vCPU was given (with the bits
    /// KVM keeps current at run time, e.g. OSXSAVE, filled in).
    #[allow(dead_code)] // for a caller that did not keep the table it set
    pub fn get_cpuid2(&self) -> io::Result<Vec<kvm_cpuid_entry2>> {
        let mut buf = FlexBuf::<kvm_cpuid2, kvm_cpuid_entry2>::new(KVM_MAX_CPUID_ENTRIES);
        // SAFETY: head points into a buffer with room for KVM_MAX_CPUID_ENTRIES.
        unsafe { (*buf.head()).nent = KVM_MAX_CPUID_ENTRIES as u32 };
        // SAFETY: the kernel writes at most nent entries into the buffer.
        unsafe { ioctl_mut(self.raw(), KVM_GET_CPUID2, buf.head())? };
        // SAFETY: the kernel updated nent to the number of valid entries.
        let n = unsafe { (*buf.head()).nent as usize }.min(KVM_MAX_CPUID_ENTRIES);
        // SAFETY: entries() has n initialised entries.
        Ok(unsafe { std::slice::from_raw_parts(buf.entries(), n) }.to_vec())
    }

    pub fn get_regs(&self) -> io::Result<kvm_regs> {
        let mut r = kvm_regs::default();
        // SAFETY: pointer to a kvm_regs.
        unsafe { ioctl_mut(self.raw(), KVM_GET_REGS, &mut r)? };
        Ok(r)
    }

    pub fn set_regs(&self, r: &kvm_regs) -> io::Result<()> {
        // SAFETY: pointer to a kvm_regs.
        unsafe { ioctl_ptr(self.raw(), KVM_SET_REGS, r).map(drop) }
    }

    pub fn get_sregs(&self) -> io::Result<kvm_sregs> {
        let mut s = kvm_sregs::default();
        // SAFETY: pointer to a kvm_sregs.
        unsafe { ioctl_mut(self.raw(), KVM_GET_SREGS, &mut s)? };
        Ok(s)
    }

    pub fn set_sregs(&self, s: &kvm_sregs) -> io::Result<()> {
        // SAFETY: pointer to a kvm_sregs.
        unsafe { ioctl_ptr(self.raw(), KVM_SET_SREGS, s).map(drop) }
    }

    pub fn get_fpu(&self) -> io::Result<kvm_fpu> {
        let mut f = kvm_fpu::default();
        // SAFETY: pointer to a kvm_fpu.
        unsafe { ioctl_mut(self.raw(), KVM_GET_FPU, &mut f)? };
        Ok(f)
    }

    pub fn set_fpu(&self, f: &kvm_fpu) -> io::Result<()> {
        // SAFETY: pointer to a kvm_fpu.
        unsafe { ioctl_ptr(self.raw(), KVM_SET_FPU, f).map(drop) }
    }

    /// The whole FPU/SSE/AVX state (KVM_CAP_XSAVE), in XSAVE layout.
    pub fn get_xsave(&self) -> io::Result<kvm_xsave> {
        let mut x = kvm_xsave::default();
        // SAFETY: pointer to a 4096-byte kvm_xsave, the size the request declares.
        unsafe { ioctl_mut(self.raw(), KVM_GET_XSAVE, &mut x)? };
        Ok(x)
    }

    pub fn set_xsave(&self, x: &kvm_xsave) -> io::Result<()> {
        // SAFETY: pointer to a kvm_xsave.
        unsafe { ioctl_ptr(self.raw(), KVM_SET_XSAVE, x).map(drop) }
    }

    /// The extended control registers (XCR0) (KVM_CAP_XCRS). `nr_xcrs` is
    /// 0 when the host has no XSAVE.
    pub fn get_xcrs(&self) -> io::Result<kvm_xcrs> {
        let mut x = kvm_xcrs::default();
        // SAFETY: pointer to a kvm_xcrs.
        unsafe { ioctl_mut(self.raw(), KVM_GET_XCRS, &mut x)? };
        Ok(x)
    }

    pub fn set_xcrs(&self, x: &kvm_xcrs) -> io::Result<()> {
        // SAFETY: pointer to a kvm_xcrs.
        unsafe { ioctl_ptr(self.raw(), KVM_SET_XCRS, x).map(drop) }
    }

    /// DR0-3, DR6, DR7 (KVM_CAP_DEBUGREGS).
    pub fn get_debugregs(&self) -> io::Result<kvm_debugregs> {
        let mut d = kvm_debugregs::default();
        // SAFETY: pointer to a kvm_debugregs.
        unsafe { ioctl_mut(self.raw(), KVM_GET_DEBUGREGS, &mut d)? };
        Ok(d)
    }

    pub fn set_debugregs(&self, d: &kvm_debugregs) -> io::Result<()> {
        // SAFETY: pointer to a kvm_debugregs.
        unsafe { ioctl_ptr(self.raw(), KVM_SET_DEBUGREGS, d).map(drop) }
    }

    /// Reads the given MSRs; returns the prefix KVM could read (it stops at
    /// the first MSR it does not know).
    pub fn get_msrs(&self, indices: &[u32]) -> io::Result<Vec<kvm_msr_entry>> {
        let mut buf = FlexBuf::<kvm_msrs, kvm_msr_entry>::new(indices.len());
        // SAFETY: buffer sized for indices.len() entries.
        let n = unsafe {
            (*buf.head()).nmsrs = indices.len() as u32;
            for (i, idx) in indices.iter().enumerate() {
                *buf.entries().add(i) = kvm_msr_entry { index: *idx, reserved: 0, data: 0 };
            }
            ioctl_mut(self.raw(), KVM_GET_MSRS, buf.head())? as usize
        };
        let n = n.min(indices.len());
        // SAFETY: the first n entries are initialised.
        Ok(unsafe { std::slice::from_raw_parts(buf.entries(), n) }.to_vec())
    }

    /// Writes MSRs; fails unless KVM accepted every one of them.
    pub fn set_msrs(&self, msrs: &[kvm_msr_entry]) -> io::Result<()> {
        let mut buf = FlexBuf::<kvm_msrs, kvm_msr_entry>::new(msrs.len());
        // SAFETY: buffer sized for msrs.len() entries.
        let n = unsafe {
            (*buf.head()).nmsrs = msrs.len() as u32;
            std::ptr::copy_nonoverlapping(msrs.as_ptr(), buf.entries(), msrs.len());
            ioctl_mut(self.raw(), KVM_SET_MSRS, buf.head())? as usize
        };
        if n != msrs.len() {
            let (bad, value) = msrs.get(n).map_or((0, 0), |m| (m.index, m.data));
            return Err(io::Error::other(format!("KVM_SET_MSRS rejected MSR {bad:#x} (value {value:#x})")));
        }
        Ok(())
    }

    pub fn get_lapic(&self) -> io::Result<kvm_lapic_state> {
        let mut l = kvm_lapic_state::default();
        // SAFETY: pointer to a kvm_lapic_state.
        unsafe { ioctl_mut(self.raw(), KVM_GET_LAPIC, &mut l)? };
        Ok(l)
    }

    pub fn set_lapic(&self, l: &kvm_lapic_state) -> io::Result<()> {
        // SAFETY: pointer to a kvm_lapic_state.
        unsafe { ioctl_ptr(self.raw(), KVM_SET_LAPIC, l).map(drop) }
    }

    /// Pending and injected exceptions, interrupts and NMIs, the interrupt
    /// shadow, SMM and the SIPI vector.
    pub fn get_vcpu_events(&self) -> io::Result<kvm_vcpu_events> {
        let mut e = kvm_vcpu_events::default();
        // SAFETY: pointer to a kvm_vcpu_events.
        unsafe { ioctl_mut(self.raw(), KVM_GET_VCPU_EVENTS, &mut e)? };
        Ok(e)
    }

    /// Writes them back; `e.flags` says which optional fields apply
    /// (KVM_VCPUEVENT_VALID_*).
    pub fn set_vcpu_events(&self, e: &kvm_vcpu_events) -> io::Result<()> {
        // SAFETY: pointer to a kvm_vcpu_events.
        unsafe { ioctl_ptr(self.raw(), KVM_SET_VCPU_EVENTS, e).map(drop) }
    }

    pub fn get_mp_state(&self) -> io::Result<kvm_mp_state> {
        let mut m = kvm_mp_state::default();
        // SAFETY: pointer to a kvm_mp_state.
        unsafe { ioctl_mut(self.raw(), KVM_GET_MP_STATE, &mut m)? };
        Ok(m)
    }

    pub fn set_mp_state(&self, m: &kvm_mp_state) -> io::Result<()> {
        // SAFETY: pointer to a kvm_mp_state.
        unsafe { ioctl_ptr(self.raw(), KVM_SET_MP_STATE, m).map(drop) }
    }

    /// KVM_SET_TSC_KHZ: the guest TSC frequency. Without TSC scaling KVM
    /// only accepts (about) the host's frequency.
    pub fn set_tsc_khz(&self, khz: u32) -> io::Result<()> {
        // SAFETY: plain integer argument.
        unsafe { ioctl_val(self.raw(), KVM_SET_TSC_KHZ, khz as libc::c_ulong).map(drop) }
    }

    /// KVM_KVMCLOCK_CTRL: tells a guest using kvmclock that it was paused
    /// (so its soft-lockup watchdog does not fire). Call while the vCPU is
    /// out of KVM_RUN. Ok(false) when the guest has no kvmclock (EINVAL)
    /// or the capability is missing.
    pub fn kvmclock_ctrl(&self) -> io::Result<bool> {
        // SAFETY: argument-less ioctl.
        match unsafe { ioctl_val(self.raw(), KVM_KVMCLOCK_CTRL, 0) } {
            Ok(_) => Ok(true),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENOTTY)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Guest TSC frequency in kHz, if KVM can tell.
    pub fn tsc_khz(&self) -> Option<u32> {
        // SAFETY: argument-less ioctl.
        match unsafe { ioctl_val(self.raw(), KVM_GET_TSC_KHZ, 0) } {
            Ok(khz) if khz > 0 => Some(khz as u32),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_pvm_by_module_directory() {
        let dir = std::env::temp_dir().join(format!("stasis-hv-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(Backend::detect_in(&dir), Backend::Hardware);
        std::fs::create_dir_all(dir.join("kvm_pvm")).unwrap();
        assert_eq!(Backend::detect_in(&dir), Backend::Pvm);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
