//! One stream: its host socket, where it is in its life, what each side has
//! shut, which control packets it owes the guest, and credit both ways
//! (virtio 1.2 §5.10.6.3).
//!
//! Guest → host: we advertise `BUF_ALLOC` and report `fwd_cnt`, the bytes
//! delivered to the Unix socket. Bytes the socket would not take yet wait
//! in `pending`, whose capacity is that same credit: a guest that sends
//! beyond it breaks the protocol and its stream is reset.
//!
//! Host → guest: the guest advertises `peer_buf_alloc` and `peer_fwd_cnt`
//! in every packet; we may have at most `peer_buf_alloc` bytes in flight
//! (`tx_cnt - peer_fwd_cnt`), so we read from the Unix socket only that
//! much. Counters are free-running u32s, as on the wire.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::Instant;

use super::buffer::ByteRing;
use super::packet::Header;
use super::sg::IoVecs;
use super::sys;
use super::{
    BUF_ALLOC, OP_CREDIT_REQUEST, OP_CREDIT_UPDATE, OP_REQUEST, OP_RESPONSE, OP_SHUTDOWN,
    SHUTDOWN_SEND,
};
use crate::devices::virtio::queue::Descriptor;
use crate::memory::GuestMemory;

/// Send a CREDIT_UPDATE once the guest believes we have less than this
/// much room (and we have more)...
pub const CREDIT_UPDATE_THRESHOLD: u32 = BUF_ALLOC / 2;
/// ... and at least this much more, unless everything was delivered (so a
/// slow reader freeing a little at a time does not cost a packet each).
pub const CREDIT_UPDATE_MIN: u32 = 32 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// A host client we accepted; its CONNECT line has not arrived yet.
    ReadingLine { deadline: Instant },
    /// Host-initiated: REQUEST queued or sent, RESPONSE not yet seen.
    Connecting { deadline: Instant },
    /// Bytes flow.
    Established,
}

/// Control packets a stream owes the guest (bits of `Connection::ctrl`),
/// sent in this order.
pub mod ctrl {
    pub const REQUEST: u8 = 1;
    pub const RESPONSE: u8 = 2;
    pub const CREDIT_UPDATE: u8 = 4;
    pub const CREDIT_REQUEST: u8 = 8;
    pub const SHUTDOWN: u8 = 16;
}

/// Why a stream has to end with an RST.
#[derive(Debug)]
pub enum Fault {
    /// The Unix socket failed (peer gone, ...).
    Io,
    /// A guest buffer outside RAM.
    Memory,
    /// The guest sent more than the credit we gave it.
    Overflow,
}

pub struct Connection {
    fd: OwnedFd,
    pub state: State,
    /// Host-side port (ours) and guest-side port.
    pub local_port: u32,
    pub peer_port: u32,
    /// Edge-triggered readiness as last seen; cleared on EAGAIN.
    pub readable: bool,
    pub writable: bool,
    /// Host-initiated: the REQUEST reached the RX queue.
    pub request_sent: bool,

    // Guest → host.
    /// Payload bytes received from the guest.
    pub rx_cnt: u32,
    /// Of those, bytes written to the Unix socket.
    pub fwd_cnt: u32,
    /// The fwd_cnt the guest last heard from us.
    pub last_sent_fwd_cnt: u32,
    pub pending: ByteRing,

    // Host → guest.
    pub peer_buf_alloc: u32,
    pub peer_fwd_cnt: u32,
    /// Payload bytes sent to the guest.
    pub tx_cnt: u32,
    /// A CREDIT_REQUEST went out for the current stall.
    pub credit_requested: bool,

    // Shutdown.
    /// The guest will send no more (SHUTDOWN SEND).
    pub guest_send_shut: bool,
    /// The guest will receive no more (SHUTDOWN RCV).
    pub guest_rcv_shut: bool,
    /// The Unix side reached end of file.
    pub host_eof: bool,
    /// shutdown(SHUT_WR) was done on the Unix socket.
    pub wr_shut: bool,

    /// Owed control packets (`ctrl` bits) and list membership flags.
    pub ctrl: u8,
    pub in_ctrl: bool,
    pub in_rx: bool,
}

impl Connection {
    fn new(fd: OwnedFd, state: State, local_port: u32, peer_port: u32) -> Self {
        Self {
            fd,
            state,
            local_port,
            peer_port,
            readable: true,
            writable: true,
            request_sent: false,
            rx_cnt: 0,
            fwd_cnt: 0,
            last_sent_fwd_cnt: 0,
            pending: ByteRing::new(BUF_ALLOC as usize),
            peer_buf_alloc: 0,
            peer_fwd_cnt: 0,
            tx_cnt: 0,
            credit_requested: false,
            guest_send_shut: false,
            guest_rcv_shut: false,
            host_eof: false,
            wr_shut: false,
            ctrl: 0,
            in_ctrl: false,
            in_rx: false,
        }
    }

    /// A host client that has yet to send its CONNECT line.
    pub fn host_client(fd: OwnedFd, deadline: Instant) -> Self {
        Self::new(fd, State::ReadingLine { deadline }, 0, 0)
    }

    /// A guest-initiated stream, connected on the host side.
    pub fn guest_initiated(fd: OwnedFd, local_port: u32, peer_port: u32) -> Self {
        Self::new(fd, State::Established, local_port, peer_port)
    }

    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    pub fn deadline(&self) -> Option<Instant> {
        match self.state {
            State::ReadingLine { deadline } | State::Connecting { deadline } => Some(deadline),
            State::Established => None,
        }
    }

    /// Whether the guest has heard of this stream (and so must hear of its
    /// end).
    pub fn guest_knows(&self) -> bool {
        match self.state {
            State::ReadingLine { .. } => false,
            State::Connecting { .. } => self.request_sent,
            State::Established => true,
        }
    }

    // ---- credit ----

    /// Every guest packet carries its receive buffer and progress.
    pub fn update_peer_credit(&mut self, buf_alloc: u32, fwd_cnt: u32) {
        self.peer_buf_alloc = buf_alloc;
        self.peer_fwd_cnt = fwd_cnt;
        if self.peer_credit() > 0 {
            // A CREDIT_REQUEST not sent yet is moot now.
            self.credit_requested = false;
            self.ctrl &= !ctrl::CREDIT_REQUEST;
        }
    }

    /// Bytes we may still send the guest. A guest reporting a fwd_cnt
    /// ahead of what we sent, or a buffer smaller than what is in flight,
    /// gets nothing.
    pub fn peer_credit(&self) -> u32 {
        let in_flight = self.tx_cnt.wrapping_sub(self.peer_fwd_cnt);
        self.peer_buf_alloc.saturating_sub(in_flight)
    }

    /// Free space in our buffer as the guest last heard it.
    pub fn guest_view_of_free(&self) -> u32 {
        BUF_ALLOC.saturating_sub(self.rx_cnt.wrapping_sub(self.last_sent_fwd_cnt))
    }

    /// Whether telling the guest our fwd_cnt is worth a packet now.
    pub fn wants_credit_update(&self) -> bool {
        let unreported = self.fwd_cnt.wrapping_sub(self.last_sent_fwd_cnt);
        unreported != 0
            && self.guest_view_of_free() < CREDIT_UPDATE_THRESHOLD
            && (unreported >= CREDIT_UPDATE_MIN || self.pending.is_empty())
    }

    /// A packet to the guest on this stream, carrying our credit.
    pub fn header(&mut self, op: u16) -> Header {
        let mut h = Header::to_guest(op, self.local_port, self.peer_port);
        h.buf_alloc = BUF_ALLOC;
        h.fwd_cnt = self.fwd_cnt;
        self.last_sent_fwd_cnt = self.fwd_cnt;
        h
    }

    /// Takes the next owed control packet, if any.
    pub fn next_ctrl_packet(&mut self) -> Option<Header> {
        let order = [
            (ctrl::REQUEST, OP_REQUEST),
            (ctrl::RESPONSE, OP_RESPONSE),
            (ctrl::CREDIT_UPDATE, OP_CREDIT_UPDATE),
            (ctrl::CREDIT_REQUEST, OP_CREDIT_REQUEST),
            (ctrl::SHUTDOWN, OP_SHUTDOWN),
        ];
        let &(bit, op) = order.iter().find(|(bit, _)| self.ctrl & bit != 0)?;
        self.ctrl &= !bit;
        if bit == ctrl::REQUEST {
            self.request_sent = true;
        }
        let mut h = self.header(op);
        if op == OP_SHUTDOWN {
            h.flags = SHUTDOWN_SEND;
        }
        Some(h)
    }

    // ---- host → guest ----

    /// Whether the Unix side should be read into RX buffers now (credit
    /// permitting).
    pub fn host_to_guest_open(&self) -> bool {
        self.state == State::Established
            && !self.host_eof
            && !self.guest_rcv_shut
            && self.ctrl & ctrl::RESPONSE == 0
    }

    pub fn sent_to_guest(&mut self, n: u32) {
        self.tx_cnt = self.tx_cnt.wrapping_add(n);
    }

    // ---- guest → host ----

    /// Takes an RW payload, bytes `[start, start+len)` of the guest stream
    /// `descs`: writes what the socket accepts now, keeps the rest in
    /// `pending`. Returns the bytes delivered to the socket.
    pub fn take_payload(
        &mut self,
        mem: &GuestMemory,
        descs: &[Descriptor],
        start: u64,
        len: u32,
        iov: &mut IoVecs,
    ) -> Result<u64, Fault> {
        let total = u64::from(len);
        let mut written = 0u64;
        if self.pending.is_empty() {
            while self.writable && written < total {
                iov.clear();
                let added = iov
                    .push_guest(mem, descs, start + written, total - written)
                    .map_err(|_| Fault::Memory)?;
                if added == 0 {
                    return Err(Fault::Memory);
                }
                // SAFETY: push_guest checked every iovec lies in guest RAM,
                // which outlives the call.
                match unsafe { sys::send_iov(self.fd(), iov.as_slice()) } {
                    Ok(n) => {
                        written += n as u64;
                        if (n as u64) < added {
                            self.writable = false;
                        }
                    }
                    Err(e) if sys::would_block(&e) => self.writable = false,
                    Err(_) => return Err(Fault::Io),
                }
            }
        }
        let rest = (total - written) as usize; // <= u32::MAX
        if rest > self.pending.free() {
            return Err(Fault::Overflow);
        }
        self.pending
            .push_guest(mem, descs, start + written, rest)
            .map_err(|_| Fault::Memory)?;
        self.rx_cnt = self.rx_cnt.wrapping_add(len);
        self.fwd_cnt = self.fwd_cnt.wrapping_add(written as u32);
        Ok(written)
    }

    /// Writes `pending` out while the socket takes it; returns the bytes
    /// delivered.
    pub fn flush(&mut self, iov: &mut IoVecs) -> Result<u64, Fault> {
        let mut total = 0u64;
        while self.writable && !self.pending.is_empty() {
            self.pending.fill_iovecs(iov);
            // SAFETY: the iovecs point into `pending`, unchanged during the call.
            match unsafe { sys::send_iov(self.fd(), iov.as_slice()) } {
                Ok(n) => {
                    if (n as u64) < iov.bytes() {
                        self.writable = false;
                    }
                    self.pending.consume(n);
                    self.fwd_cnt = self.fwd_cnt.wrapping_add(n as u32);
                    total += n as u64;
                }
                Err(e) if sys::would_block(&e) => self.writable = false,
                Err(_) => return Err(Fault::Io),
            }
        }
        Ok(total)
    }

    /// After SHUTDOWN SEND from the guest and once `pending` is out, the
    /// Unix peer gets end of file.
    pub fn shut_write_if_drained(&mut self) -> Result<(), Fault> {
        if self.guest_send_shut && !self.wr_shut && self.pending.is_empty() {
            sys::shutdown_write(self.fd()).map_err(|_| Fault::Io)?;
            self.wr_shut = true;
        }
        Ok(())
    }

    /// Both directions are finished: the stream ends (RST, close).
    pub fn finished(&self) -> bool {
        self.state == State::Established && self.wr_shut && (self.host_eof || self.guest_rcv_shut)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;

    fn conn() -> (Connection, UnixStream) {
        let (a, b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        (Connection::guest_initiated(a.into(), 1978, 5000), b)
    }

    #[test]
    fn credit_towards_the_guest() {
        let (mut c, _peer) = conn();
        assert_eq!(c.peer_credit(), 0, "nothing advertised yet");
        c.update_peer_credit(1000, 0);
        assert_eq!(c.peer_credit(), 1000);
        c.sent_to_guest(600);
        assert_eq!(c.peer_credit(), 400);
        c.sent_to_guest(400);
        assert_eq!(c.peer_credit(), 0);
        c.update_peer_credit(1000, 700);
        assert_eq!(c.peer_credit(), 700);
        // The guest shrinks its buffer below what is in flight.
        c.update_peer_credit(100, 700);
        assert_eq!(c.peer_credit(), 0);
        // A fwd_cnt ahead of what we sent is nonsense: no credit.
        c.update_peer_credit(1000, 5000);
        assert_eq!(c.peer_credit(), 0);
        // Counters wrap.
        c.tx_cnt = 10;
        c.update_peer_credit(1000, u32::MAX - 9);
        assert_eq!(c.peer_credit(), 980);
    }

    #[test]
    fn credit_updates_towards_the_guest() {
        let (mut c, _peer) = conn();
        assert_eq!(c.guest_view_of_free(), BUF_ALLOC);
        assert!(!c.wants_credit_update());
        c.rx_cnt = BUF_ALLOC / 2 + 1;
        c.fwd_cnt = BUF_ALLOC / 2 + 1;
        assert!(c.wants_credit_update());
        let h = c.header(OP_CREDIT_UPDATE);
        assert_eq!((h.buf_alloc, h.fwd_cnt), (BUF_ALLOC, BUF_ALLOC / 2 + 1));
        assert_eq!(c.guest_view_of_free(), BUF_ALLOC);
        assert!(!c.wants_credit_update());
        // A little delivered while more waits: not yet; all delivered: yes.
        c.pending.push(&[0; 100]);
        c.last_sent_fwd_cnt = 0;
        c.rx_cnt = BUF_ALLOC;
        c.fwd_cnt = 1000;
        assert!(!c.wants_credit_update(), "1000 bytes freed, more pending");
        c.fwd_cnt += 40_000;
        assert!(c.wants_credit_update());
        c.header(OP_CREDIT_UPDATE);
        c.fwd_cnt += 10;
        c.pending.consume(100);
        assert!(c.wants_credit_update(), "everything delivered");
        // Wrapping counters.
        c.rx_cnt = 5;
        c.last_sent_fwd_cnt = u32::MAX - 10;
        c.fwd_cnt = c.last_sent_fwd_cnt;
        assert_eq!(c.guest_view_of_free(), BUF_ALLOC - 16);
    }

    #[test]
    fn control_packets_in_order() {
        let (mut c, _peer) = conn();
        c.ctrl = ctrl::SHUTDOWN | ctrl::CREDIT_UPDATE | ctrl::RESPONSE;
        let ops: Vec<(u16, u32)> = std::iter::from_fn(|| c.next_ctrl_packet())
            .map(|h| (h.op, h.flags))
            .collect();
        assert_eq!(
            ops,
            vec![
                (OP_RESPONSE, 0),
                (OP_CREDIT_UPDATE, 0),
                (OP_SHUTDOWN, SHUTDOWN_SEND)
            ]
        );
        assert_eq!(c.ctrl, 0);
    }

    #[test]
    fn payload_beyond_credit_is_refused() {
        let mem = GuestMemory::new(0x100_0000).unwrap();
        let (mut c, peer) = conn();
        let mut iov = IoVecs::new();
        let descs = [Descriptor {
            addr: 0x1000,
            len: 0x80_0000,
            writable: false,
        }];
        // Nobody reads `peer`: the socket fills, the rest is buffered up to
        // the credit, and more than that is an overflow.
        let mut offered = 0u64;
        let err = loop {
            match c.take_payload(&mem, &descs, 0, 0x1_0000, &mut iov) {
                Ok(_) => offered += 0x1_0000,
                Err(e) => break e,
            }
            assert!(offered < 0x80_0000, "never refused");
        };
        assert!(matches!(err, Fault::Overflow));
        assert!(c.pending.len() <= BUF_ALLOC as usize);
        assert!(c.pending.len() > 0);
        assert_eq!(c.rx_cnt as u64, offered);
        assert_eq!(c.rx_cnt.wrapping_sub(c.fwd_cnt) as usize, c.pending.len());
        drop(peer);
    }
}
