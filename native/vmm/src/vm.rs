//! An assembled VM (what the builder returns): the hypervisor handles,
//! guest memory, vCPUs not yet started, and the devices main needs to
//! reach. Also the VM-wide saved state (interrupt controllers, PIT, clock).

use std::io;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::builder::Devices;
use crate::config::DiskConfig;
use crate::devices::serial::SerialState;
use crate::devices::virtio::vsock::VsockBridge;
use crate::pause::PauseGate;
use crate::hv::kvm::bindings::{KVM_IRQCHIP_IOAPIC, KVM_IRQCHIP_PIC_MASTER, KVM_IRQCHIP_PIC_SLAVE};
use crate::hv::kvm::{kvm_clock_data, kvm_irqchip, kvm_pit_state2, Backend, Kvm, VmFd};
use crate::memory::GuestMemory;
use crate::vcpu::Vcpu;

#[allow(dead_code)] // kvm is held for the VM's lifetime
pub struct Vm {
    // Field order is drop order: vCPUs and devices before the VM and /dev/kvm.
    pub vcpus: Vec<Vcpu>,
    pub devices: Devices,
    pub memory: Arc<GuestMemory>,
    pub vm_fd: Arc<VmFd>,
    pub kvm: Kvm,
    pub cmdline: String,
    pub backend: Backend,
    /// The `--disk` list, in order (a snapshot copies the writable ones).
    pub disks: Vec<DiskConfig>,
    pub vsock: Option<Arc<VsockBridge>>,
    /// Parks the vCPUs for a snapshot or a `pause`.
    pub gate: Arc<PauseGate>,
}

/// Saved state of the in-kernel devices of a KVM x86 VM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmState {
    pub version: u32,
    pub pic_master: kvm_irqchip,
    pub pic_slave: kvm_irqchip,
    pub ioapic: kvm_irqchip,
    pub pit: kvm_pit_state2,
    /// kvmclock as KVM_GET_CLOCK returned it; only `clock` is restored.
    pub clock: kvm_clock_data,
}

pub const VM_STATE_VERSION: u32 = 1;

/// Reads the interrupt controllers, the PIT and kvmclock (vCPUs stopped,
/// so the clock read is the moment the guest stopped seeing time pass).
pub fn save_vm_state(vm_fd: &VmFd) -> io::Result<VmState> {
    let get = |what: &str, r: io::Result<kvm_irqchip>| r.map_err(|e| context(what, e));
    Ok(VmState {
        version: VM_STATE_VERSION,
        pic_master: get("KVM_GET_IRQCHIP (PIC master)", vm_fd.get_irqchip(KVM_IRQCHIP_PIC_MASTER))?,
        pic_slave: get("KVM_GET_IRQCHIP (PIC slave)", vm_fd.get_irqchip(KVM_IRQCHIP_PIC_SLAVE))?,
        ioapic: get("KVM_GET_IRQCHIP (IOAPIC)", vm_fd.get_irqchip(KVM_IRQCHIP_IOAPIC))?,
        pit: vm_fd.get_pit2().map_err(|e| context("KVM_GET_PIT2", e))?,
        clock: vm_fd.get_clock().map_err(|e| context("KVM_GET_CLOCK", e))?,
    })
}

/// Writes `st` into a VM created with KVM_CREATE_IRQCHIP and
/// KVM_CREATE_PIT2: PIC master and slave, IOAPIC, PIT, then kvmclock.
///
/// Call it after every vCPU was restored (`vcpu_state::restore`) and right
/// before they run: the IOAPIC re-delivers its pending interrupts to LAPICs
/// that then already hold their saved state, and kvmclock starts counting
/// from its saved value as late as possible. The clock is set with flags 0
/// (not KVM_CLOCK_REALTIME), so the guest's monotonic time goes on from
/// where it stopped instead of jumping by the time the state sat on disk.
pub fn restore_vm_state(vm_fd: &VmFd, st: &VmState) -> io::Result<()> {
    if st.version != VM_STATE_VERSION {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("VM state version {} (this VMM reads {VM_STATE_VERSION})", st.version),
        ));
    }
    for (chip, id, name) in [
        (&st.pic_master, KVM_IRQCHIP_PIC_MASTER, "PIC master"),
        (&st.pic_slave, KVM_IRQCHIP_PIC_SLAVE, "PIC slave"),
        (&st.ioapic, KVM_IRQCHIP_IOAPIC, "IOAPIC"),
    ] {
        if chip.chip_id != id {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("VM state: the {name} entry holds irqchip {}", chip.chip_id),
            ));
        }
        vm_fd.set_irqchip(chip).map_err(|e| context(&format!("KVM_SET_IRQCHIP ({name})"), e))?;
    }
    vm_fd.set_pit2(&st.pit).map_err(|e| context("KVM_SET_PIT2", e))?;
    let clock = kvm_clock_data { clock: st.clock.clock, ..Default::default() };
    vm_fd.set_clock(&clock).map_err(|e| context("KVM_SET_CLOCK", e))?;
    Ok(())
}

fn context(what: &str, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// Saved state of the devices the VMM itself emulates (virtio devices will
/// join here with their own `*State`).
#[allow(dead_code)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DevicesState {
    pub version: u32,
    pub serials: Vec<SerialState>,
}

#[allow(dead_code)] // tests read these
impl Vm {
    pub fn state(&self) -> io::Result<VmState> {
        save_vm_state(&self.vm_fd)
    }

    pub fn devices_state(&self) -> DevicesState {
        DevicesState {
            version: 1,
            serials: self.devices.serials.iter().map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).state()).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_state_serializes() {
        let st = VmState {
            version: VM_STATE_VERSION,
            pic_master: kvm_irqchip::default(),
            pic_slave: kvm_irqchip { chip_id: 1, ..Default::default() },
            ioapic: kvm_irqchip { chip_id: 2, ..Default::default() },
            pit: kvm_pit_state2::default(),
            clock: kvm_clock_data { clock: 123, ..Default::default() },
        };
        let json = serde_json::to_string(&st).unwrap();
        assert_eq!(serde_json::from_str::<VmState>(&json).unwrap(), st);
    }
}
