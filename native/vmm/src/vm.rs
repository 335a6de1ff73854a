//! An assembled VM (what the builder returns): the hypervisor handles,
//! guest memory, vCPUs not yet started, and the devices main needs to
//! reach. Also the VM-wide saved state (interrupt controllers, PIT, clock).

use std::io;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::devices::serial::{Serial, SerialState};
use crate::hv::kvm::bindings::{KVM_IRQCHIP_IOAPIC, KVM_IRQCHIP_PIC_MASTER, KVM_IRQCHIP_PIC_SLAVE};
use crate::hv::kvm::{kvm_clock_data, kvm_irqchip, kvm_pit_state2, Backend, Kvm, VmFd};
use crate::memory::GuestMemory;
use crate::vcpu::Vcpu;

#[allow(dead_code)] // memory/vm_fd/kvm are held for the VM's lifetime
pub struct Vm {
    // Field order is drop order: vCPUs and devices before the VM and /dev/kvm.
    pub vcpus: Vec<Vcpu>,
    pub serials: Vec<Arc<Mutex<Serial>>>,
    pub memory: Arc<GuestMemory>,
    pub vm_fd: VmFd,
    pub kvm: Kvm,
    pub cmdline: String,
    pub backend: Backend,
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

#[allow(dead_code)] // the snapshot path (next) is the caller
impl Vm {
    pub fn state(&self) -> io::Result<VmState> {
        Ok(VmState {
            version: VM_STATE_VERSION,
            pic_master: self.vm_fd.get_irqchip(KVM_IRQCHIP_PIC_MASTER)?,
            pic_slave: self.vm_fd.get_irqchip(KVM_IRQCHIP_PIC_SLAVE)?,
            ioapic: self.vm_fd.get_irqchip(KVM_IRQCHIP_IOAPIC)?,
            pit: self.vm_fd.get_pit2()?,
            clock: self.vm_fd.get_clock()?,
        })
    }

    pub fn devices_state(&self) -> DevicesState {
        DevicesState {
            version: 1,
            serials: self.serials.iter().map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).state()).collect(),
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
