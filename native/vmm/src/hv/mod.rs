//! Hypervisor backends. Only KVM exists today; the rest of the crate talks
//! to it through `hv::kvm::{Kvm, VmFd, VcpuFd}` and the plain state types,
//! so a second backend (HVF on macOS) slots in beside it.

pub mod kvm;
