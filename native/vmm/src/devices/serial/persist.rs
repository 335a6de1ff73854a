//! Saved state of one UART: every register plus the receive FIFO and the
//! interrupt line, so a restored guest sees exactly the device it left.

use serde::{Deserialize, Serialize};

pub const SERIAL_STATE_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SerialState {
    pub version: u32,
    pub ier: u8,
    pub lcr: u8,
    pub mcr: u8,
    pub scr: u8,
    pub dll: u8,
    pub dlm: u8,
    pub fifo_enabled: bool,
    pub thre_pending: bool,
    pub line: bool,
    pub rx: Vec<u8>,
}
