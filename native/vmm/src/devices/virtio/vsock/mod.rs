//! virtio-vsock (virtio 1.2 §5.10), emulated in the VMM, bridged to Unix
//! stream sockets on the host as docs/agent-protocol.md §1 describes.
//!
//! - `packet`: the 44-byte packet header, parsing and validation.
//! - `sg`: scatter-gather between descriptor chains, guest memory and
//!   sockets (checked host addresses, no bounce buffer).
//! - `buffer`: the bounded byte ring holding guest bytes the Unix side
//!   would not take yet.
//! - `connection`: one stream: state, shutdown bookkeeping, credit.
//! - `muxer`: all streams of the device, the three queues, and the work
//!   (TX packets, RX delivery, host readiness, timeouts).
//! - `backend`: `VsockBridge`: the listening socket, the I/O thread
//!   (epoll), statistics.
//! - `sys`: thin libc wrappers (epoll, eventfd, non-blocking sockets).
//! - `device`: `Vsock`, the `VirtioDevice`.
//! - `persist`: `VsockState` for snapshots.
//! - `shutdown`: the VMM's own bridge client asking the guest agent to
//!   shut down (SIGTERM handling).
//!
//! Threads: QueueNotify runs on the vCPU thread that wrote it; host socket
//! readiness is handled by one I/O thread. Both lock the same `Muxer`
//! (briefly: every host descriptor is non-blocking) and both do the same
//! work through `Muxer::pump`, raising at most one interrupt per pump.
//!
//! Snapshots: host connections cannot travel. A restored, active device
//! has no streams and sends VIRTIO_VSOCK_EVENT_TRANSPORT_RESET on the event
//! queue, so the guest drops its sockets too.

mod backend;
mod buffer;
mod connection;
mod device;
mod muxer;
mod packet;
mod persist;
mod sg;
pub mod shutdown;
mod sys;

#[cfg(test)]
mod tests;

pub use backend::{VsockBridge, VsockStats};
pub use device::Vsock;
pub use persist::{VsockState, VSOCK_STATE_VERSION};

use std::time::Duration;

/// The guest's context ID (config space `guest_cid`).
pub const GUEST_CID: u64 = 3;
/// The host's well-known context ID.
pub const HOST_CID: u64 = 2;

/// Queue indices.
pub const RXQ: usize = 0;
pub const TXQ: usize = 1;
pub const EVQ: usize = 2;
/// Queue sizes offered (QueueNumMax).
pub const RX_QUEUE_SIZE: u16 = 256;
pub const TX_QUEUE_SIZE: u16 = 256;
pub const EV_QUEUE_SIZE: u16 = 16;

/// Receive buffer each stream advertises to the guest (buf_alloc), and so
/// the most guest bytes the VMM ever holds for one stream.
pub const BUF_ALLOC: u32 = 256 * 1024;
/// At most this many payload bytes in one packet we build.
pub const MAX_PKT_PAYLOAD: u32 = 64 * 1024;
/// Streams (in any state, including host connections still sending their
/// CONNECT line) per VM; beyond it new connections are refused.
pub const MAX_STREAMS: usize = 1024;

/// How long a host client has to send its CONNECT line, and the guest to
/// answer a host-initiated REQUEST.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest CONNECT line, newline included.
pub const MAX_CONNECT_LINE: usize = 32;

/// The guest agent's port (docs/agent-protocol.md §2).
pub const AGENT_PORT: u32 = 1978;

/// Packet types (§5.10.6).
pub const TYPE_STREAM: u16 = 1;

/// Operations (§5.10.6).
pub const OP_REQUEST: u16 = 1;
pub const OP_RESPONSE: u16 = 2;
pub const OP_RST: u16 = 3;
pub const OP_SHUTDOWN: u16 = 4;
pub const OP_RW: u16 = 5;
pub const OP_CREDIT_UPDATE: u16 = 6;
pub const OP_CREDIT_REQUEST: u16 = 7;

/// SHUTDOWN flags: the sender will receive / send no more.
pub const SHUTDOWN_RCV: u32 = 1;
pub const SHUTDOWN_SEND: u32 = 2;

/// Event queue event IDs (§5.10.6.5).
pub const EVENT_TRANSPORT_RESET: u32 = 0;
