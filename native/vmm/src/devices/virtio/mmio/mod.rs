//! The virtio-mmio transport, version 2 ("modern"; virtio 1.2 §4.2): a
//! 0x1000-byte register window per device, placed on the MMIO bus by the
//! builder and announced to the guest with `virtio_mmio.device=`.

mod persist;
pub mod regs;
mod transport;

pub use persist::MmioState;
pub use transport::{MmioTransport, WINDOW_SIZE};
