//! x86_64 machine: guest physical layout, CPUID (and whether a saved one
//! can run here), boot registers, the MP table, the Linux zero page and the
//! vmlinux loader.

pub mod boot_params;
pub mod cpu_compat;
pub mod cpuid;
pub mod layout;
pub mod loader;
pub mod mptable;
pub mod paging;
pub mod regs;
