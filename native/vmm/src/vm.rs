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
#[allow(dead_code)] // written by the snapshot path (next)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmState {
    pub version: u32,
    pub pic_master: kvm_irqchip,
    pub pic_slave: kvm_irqchip,
    pub ioapic: kvm_irqchip,
    pub pit: kvm_pit_state2,
    pub clock: kvm_clock_data,
}

#[allow(dead_code)]
pub const VM_STATE_VERSION: u32 = 1;

/// Saved state of the devices the VMM itself emulates (virtio devices will
/// join here with their own `*State`).
#[allow(dead_code)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DevicesState {
    pub version: u32,
    pub serials: Vec<SerialState>,
}

/// Reads the in-kernel devices' state (the vCPUs must be stopped).
pub fn vm_state(vm_fd: &VmFd) -> io::Result<VmState> {
    Ok(VmState {
        version: VM_STATE_VERSION,
        pic_master: vm_fd.get_irqchip(KVM_IRQCHIP_PIC_MASTER)?,
        pic_slave: vm_fd.get_irqchip(KVM_IRQCHIP_PIC_SLAVE)?,
        ioapic: vm_fd.get_irqchip(KVM_IRQCHIP_IOAPIC)?,
        pit: vm_fd.get_pit2()?,
        clock: vm_fd.get_clock()?,
    })
}

#[allow(dead_code)] // tests read these
impl Vm {
    pub fn state(&self) -> io::Result<VmState> {
        vm_state(&self.vm_fd)
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
