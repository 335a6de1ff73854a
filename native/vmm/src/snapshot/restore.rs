//! Building a VM from a snapshot directory (`--restore`, docs/vmstate.md):
//! check the state file and everything the restore was given against it,
//! map `memory.img` copy-on-write, put every vCPU, the in-kernel devices
//! and our own devices back as they were. No guest memory is read here;
//! the guest pulls its pages in as it touches them.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use super::format::{self, DiskRecord, Snapshot, MEMORY_FILE, STATE_FILE};
use super::{backend_name, sparse};
use crate::arch::x86_64::cpu_compat;
use crate::builder::{attach_devices, create_vm, cut_mmio_hole, open_kvm, setup, BuildError, Hooks};
use crate::config::{Config, DiskConfig};
use crate::hv::kvm::Backend;
use crate::memory::GuestMemory;
use crate::pause::PauseGate;
use crate::vcpu::{Vcpu, VcpuShared};
use crate::vm::Vm;

fn invalid(message: impl Into<String>) -> BuildError {
    BuildError::new("VMM_RESTORE_INVALID", message)
}

fn incompatible(message: impl Into<String>) -> BuildError {
    BuildError::new("VMM_RESTORE_INCOMPATIBLE", message)
}

fn disk_mismatch(message: impl Into<String>) -> BuildError {
    BuildError::new("VMM_RESTORE_DISK_MISMATCH", message)
}

pub fn restore(cfg: &Config, dir: &Path, hooks: &Hooks) -> Result<Vm, BuildError> {
    let state_path = dir.join(STATE_FILE);
    let snap = format::read(&state_path).map_err(|e| invalid(format!("{}: {e}", state_path.display())))?;
    check_machine(&snap)?;
    check_disks(&cfg.disks, &snap.disks)?;

    let kvm = open_kvm(snap.machine.cpus).map_err(|e| match e.code {
        "VMM_SETUP" => incompatible(e.message),
        _ => e,
    })?;
    let backend = kvm.backend();
    if snap.machine.backend == backend_name(Backend::Hardware) && backend == Backend::Pvm {
        return Err(incompatible(
            "the snapshot was taken on hardware KVM and this host's KVM is kvm_pvm, which cannot run that guest's CPU features",
        ));
    }
    let supported = kvm.supported_cpuid().map_err(setup("KVM_GET_SUPPORTED_CPUID"))?;
    for v in &snap.vcpus {
        cpu_compat::check_compatible(&v.cpuid, &supported)
            .map_err(|m| incompatible(format!("this host's CPU lacks what the guest was using: {m}")))?;
    }

    let mem_path = dir.join(MEMORY_FILE);
    let mem_file = File::open(&mem_path).map_err(|e| invalid(format!("{}: {e}", mem_path.display())))?;
    let memory = GuestMemory::from_file_private(mem_file, snap.machine.memory_bytes)
        .map_err(|e| invalid(format!("{}: {e}", mem_path.display())))?;
    let memory = Arc::new(cut_mmio_hole(memory).map_err(setup("guest memory"))?);
    let vm_fd = create_vm(&kvm, &memory)?;

    let mut fds = Vec::new();
    for st in &snap.vcpus {
        let fd = vm_fd.create_vcpu(st.id).map_err(setup("KVM_CREATE_VCPU"))?;
        crate::vcpu_state::restore(&fd, st)
            .map_err(|e| incompatible(format!("vCPU {}: KVM refused the saved state: {e}", st.id)))?;
        fds.push((fd, st.cpuid.clone()));
    }
    let devices = attach_devices(&cfg.disks, hooks, &vm_fd, &memory, Some(&snap))?;
    // Last before the vCPUs run: the IOAPIC re-delivers what was pending
    // into restored LAPICs, and kvmclock starts from its saved value.
    crate::vm::restore_vm_state(&vm_fd, &snap.vm)
        .map_err(|e| incompatible(format!("KVM refused the saved interrupt controllers or clock: {e}")))?;
    let shared = VcpuShared { lifecycle: hooks.lifecycle.clone(), gate: Arc::new(PauseGate::new(fds.len())) };
    let msrs = Arc::new(crate::vcpu_state::msrs_to_save(&kvm).map_err(setup("KVM_GET_MSR_INDEX_LIST"))?);
    let vcpus = fds
        .into_iter()
        .map(|(fd, cpuid)| Vcpu::new(fd, devices.pio.clone(), devices.mmio.clone(), memory.clone(), &shared, cpuid, msrs.clone()))
        .collect();
    Ok(Vm {
        vcpus,
        devices,
        memory,
        vm_fd: Arc::new(vm_fd),
        kvm,
        cmdline: snap.machine.cmdline.clone(),
        backend,
        disks: cfg.disks.clone(),
        vsock: hooks.vsock.clone(),
        gate: shared.gate,
    })
}

/// The state file agrees with itself.
fn check_machine(snap: &Snapshot) -> Result<(), BuildError> {
    let m = &snap.machine;
    if m.cpus == 0 || m.cpus as usize != snap.vcpus.len() {
        return Err(invalid(format!("the state file has {} vCPU states for {} vCPUs", snap.vcpus.len(), m.cpus)));
    }
    let ids: Vec<u32> = snap.vcpus.iter().map(|v| v.id).collect();
    if ids != (0..m.cpus).collect::<Vec<_>>() {
        return Err(invalid(format!("the state file's vCPU ids are {ids:?}")));
    }
    let min = crate::config::MIN_MEMORY_MIB << 20;
    let max = crate::config::MAX_MEMORY_MIB << 20;
    if m.memory_bytes % 4096 != 0 || !(min..=max).contains(&m.memory_bytes) {
        return Err(invalid(format!("the state file gives {} bytes of RAM", m.memory_bytes)));
    }
    if snap.virtio.iter().filter(|s| s.device == format::SlotDevice::Vsock).count() > 1 {
        return Err(invalid("the state file has more than one vsock device"));
    }
    Ok(())
}

/// The `--disk` list is the one the snapshot was taken with: same count,
/// same read-only flags and sizes, and read-only disks with the same
/// content (a different root image would corrupt the guest's page cache).
fn check_disks(given: &[DiskConfig], saved: &[DiskRecord]) -> Result<(), BuildError> {
    if given.len() != saved.len() {
        return Err(disk_mismatch(format!("the snapshot had {} disks, this restore passes {}", saved.len(), given.len())));
    }
    for (n, (g, s)) in given.iter().zip(saved).enumerate() {
        let what = |m: String| disk_mismatch(format!("disk {n} ({}): {m}", g.path.display()));
        if g.read_only != s.read_only {
            let mode = |ro: bool| if ro { "read-only" } else { "writable" };
            return Err(what(format!("is {}, the snapshot's was {}", mode(g.read_only), mode(s.read_only))));
        }
        let size = std::fs::metadata(&g.path).map_err(|e| what(e.to_string()))?.len();
        if size != s.size {
            return Err(what(format!("is {size} bytes, the snapshot's was {}", s.size)));
        }
        if let Some(want) = s.fingerprint {
            let have = sparse::fingerprint(&g.path).map_err(|e| what(e.to_string()))?;
            if have != want {
                return Err(what("is not the image the snapshot was taken on (its first 64 KiB differ)".into()));
            }
        }
    }
    Ok(())
}
