//! The 8250/16550A UART the guest uses as ttyS0 (COM1) and ttyS1 (COM2).
//!
//! `uart.rs` is the register model, `output.rs` the host-side byte sink
//! that never blocks a vCPU for long, `persist.rs` the serialisable state.

mod output;
mod persist;
mod uart;

pub use output::FdOutput;
pub use persist::SerialState;
pub use uart::Serial;
