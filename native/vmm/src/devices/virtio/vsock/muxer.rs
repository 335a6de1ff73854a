//! `Muxer`: every stream of one vsock device, its three queues once the
//! driver activated it, and the work that connects them.
//!
//! One `Muxer` sits behind the device's mutex; the vCPU thread (on
//! QueueNotify) and the I/O thread (on socket readiness and timeouts)
//! both call into it and end with `pump`, which:
//! 1. consumes the TX queue: each guest packet is validated and acted upon
//!    (RW payloads go straight from guest memory to the Unix socket; what
//!    it will not take is kept, within the credit we advertised);
//! 2. fills the RX queue, in this order: RSTs for streams that no longer
//!    exist, control packets streams owe (REQUEST, RESPONSE, credit,
//!    SHUTDOWN), then data read from Unix sockets straight into RX buffers,
//!    only as much as the guest's credit allows;
//! 3. raises one interrupt if any queue wants one.
//! When the RX queue runs dry, sockets are simply not read until the guest
//! posts buffers (its notify calls `pump`). Host sockets are registered
//! edge-triggered; `readable`/`writable` remember readiness until a
//! syscall says EAGAIN.

use std::collections::{HashMap, VecDeque};
use std::ffi::OsString;
use std::os::fd::{OwnedFd, RawFd};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::backend::Counters;
use super::connection::{ctrl, Connection, Fault, State};
use super::packet::{Header, HEADER_LEN};
use super::sg::{self, IoVecs};
use super::sys;
use super::{
    EVENT_TRANSPORT_RESET, EVQ, MAX_CONNECT_LINE, MAX_PKT_PAYLOAD, MAX_STREAMS, OP_CREDIT_REQUEST,
    OP_CREDIT_UPDATE, OP_REQUEST, OP_RESPONSE, OP_RST, OP_RW, OP_SHUTDOWN, RXQ, SHUTDOWN_RCV,
    SHUTDOWN_SEND, TXQ,
};
use crate::devices::virtio::device::DeviceError;
use crate::devices::virtio::interrupt::Interrupt;
use crate::devices::virtio::queue::{DescriptorChain, Queue, QueueState};
use crate::memory::GuestMemory;

/// epoll tokens: the wake eventfd, the listener, then streams.
pub const WAKE_TOKEN: u64 = 0;
pub const LISTEN_TOKEN: u64 = 1;
const FIRST_STREAM_TOKEN: u64 = 2;

/// Stop taking TX packets while this many RSTs wait for RX buffers (a
/// guest that sends junk without posting RX buffers cannot make us queue
/// without bound).
const ORPHAN_TX_LIMIT: usize = 64;
/// How long host-initiated streams wait for the guest to finish handling
/// a TRANSPORT_RESET (see `check_reset_ack`). Linux always gives the event
/// buffer back, so this only bounds a guest that never does; it must not
/// be shorter than a slow guest's handling, or the REQUEST arrives first
/// and the guest resets that stream too without telling us (it thinks we
/// forgot it), leaving the host client waiting on a dead stream. Where
/// guest-kernel code is emulated and several VMs share the cores, the
/// handling can take seconds.
const RESET_ACK_TIMEOUT: Duration = Duration::from_secs(20);
/// RSTs beyond this are dropped (only reachable by a guest that never
/// posts RX buffers).
const ORPHAN_HARD_LIMIT: usize = ORPHAN_TX_LIMIT + 2 * MAX_STREAMS;
/// RX chains filled by one read from a socket.
const RX_BATCH: usize = 16;
/// Host ports for host-initiated streams count up from here.
const FIRST_HOST_PORT: u32 = 1 << 30;

/// What the device holds between DRIVER_OK and reset.
pub struct Active {
    pub mem: Arc<GuestMemory>,
    pub interrupt: Arc<Interrupt>,
    /// rx, tx, event.
    pub queues: Vec<Queue>,
    used: [bool; 3],
}

impl Active {
    pub fn new(mem: Arc<GuestMemory>, queues: Vec<Queue>, interrupt: Arc<Interrupt>) -> Self {
        Self {
            mem,
            interrupt,
            queues,
            used: [false; 3],
        }
    }
}

/// A stream's slot and the generation that names this occupant.
type Key = (usize, u32);

struct Slot {
    gen: u32,
    conn: Option<Connection>,
}

pub struct Muxer {
    active: Option<Active>,
    /// A queue error the transport has not heard about yet.
    broken: Option<DeviceError>,
    epoll: RawFd,
    /// The bridge socket; guest connections to port P go to `<path>_<P>`.
    path: PathBuf,
    timeout: Duration,
    counters: Arc<Counters>,

    slots: Vec<Slot>,
    free: Vec<usize>,
    count: usize,
    /// (host port, guest port) → slot, for streams the guest can address.
    ports: HashMap<(u32, u32), usize>,
    /// Streams owing control packets, in order of need.
    ctrl: VecDeque<Key>,
    /// Streams with readable sockets and credit, round robin.
    rx_wanted: VecDeque<Key>,
    /// RSTs not tied to a live stream.
    orphans: VecDeque<Header>,

    /// RX chains popped but not used yet: always the most recently popped
    /// ones, in ring order (so a snapshot can give them back).
    rx_held: VecDeque<DescriptorChain>,
    rx_batch: Vec<DescriptorChain>,
    rx_caps: Vec<u64>,
    chain_pool: Vec<DescriptorChain>,
    tx_chain: DescriptorChain,
    iov: IoVecs,

    next_host_port: u32,
    next_deadline: Option<Instant>,
    reset_event_pending: bool,
    /// The vCPUs run (`arm_reset`): the pending TRANSPORT_RESET may go out.
    reset_armed: bool,
    /// After a TRANSPORT_RESET: the event queue's avail.idx when it was
    /// sent, and until when to wait for the guest to post a new buffer.
    reset_ack: Option<(u16, Instant)>,
    rx_starved: bool,
}

impl Muxer {
    pub fn new(epoll: RawFd, path: PathBuf, timeout: Duration, counters: Arc<Counters>) -> Self {
        Self {
            active: None,
            broken: None,
            epoll,
            path,
            timeout,
            counters,
            slots: Vec::new(),
            free: Vec::new(),
            count: 0,
            ports: HashMap::new(),
            ctrl: VecDeque::new(),
            rx_wanted: VecDeque::new(),
            orphans: VecDeque::new(),
            rx_held: VecDeque::new(),
            rx_batch: Vec::with_capacity(RX_BATCH),
            rx_caps: Vec::with_capacity(RX_BATCH),
            chain_pool: Vec::new(),
            tx_chain: DescriptorChain::default(),
            iov: IoVecs::new(),
            next_host_port: FIRST_HOST_PORT,
            next_deadline: None,
            reset_event_pending: false,
            reset_armed: true,
            reset_ack: None,
            rx_starved: false,
        }
    }

    // ---------------------------------------------------------------
    // Device side
    // ---------------------------------------------------------------

    pub fn is_active(&self) -> bool {
        self.active.is_some()
    }

    pub fn broken(&self) -> Option<DeviceError> {
        self.broken.clone()
    }

    /// DRIVER_OK. Host connections made before it keep their queued
    /// REQUEST (still bound by their timeout).
    pub fn activate(&mut self, active: Active) {
        self.active = Some(active);
        self.broken = None;
        self.pump();
    }

    /// Like `activate` after a snapshot restore: no stream survived, and
    /// the guest is told so with TRANSPORT_RESET. Nothing is sent yet: the
    /// interrupt would be lost while the VMM is still writing the saved
    /// interrupt controllers. The VMM calls `VsockBridge::wake` once the
    /// vCPUs run, and the I/O thread's pump sends it.
    pub fn restore(&mut self, active: Active) {
        self.reset_event_pending = true;
        self.reset_armed = false;
        self.active = Some(active);
        self.broken = None;
    }

    /// The vCPUs of a restored VM run: its TRANSPORT_RESET may be sent
    /// (the next pump sends it before anything else).
    pub fn arm_reset(&mut self) {
        self.reset_armed = true;
    }

    /// Driver reset: queues gone, every stream the guest knew of closed.
    pub fn reset(&mut self) {
        self.active = None;
        self.broken = None;
        self.reset_event_pending = false;
        self.reset_ack = None;
        self.drop_guest_streams();
    }

    /// Queue states for a snapshot. RX chains popped but unused are given
    /// back (the restored device pops them again).
    pub fn queue_states(&self) -> Vec<QueueState> {
        let Some(a) = &self.active else {
            return Vec::new();
        };
        let mut states: Vec<QueueState> = a.queues.iter().map(Queue::state).collect();
        if let Some(rx) = states.get_mut(RXQ) {
            rx.next_avail = rx.next_avail.wrapping_sub(self.rx_held.len() as u16);
        }
        states
    }

    fn drop_guest_streams(&mut self) {
        for slot in 0..self.slots.len() {
            let gen = self.slots[slot].gen;
            let guest_side = self.slots[slot]
                .conn
                .as_ref()
                .is_some_and(|c| !matches!(c.state, State::ReadingLine { .. }));
            if guest_side {
                self.remove((slot, gen));
            }
        }
        self.ctrl.clear();
        self.rx_wanted.clear();
        self.orphans.clear();
        while let Some(c) = self.rx_held.pop_front() {
            self.chain_pool.push(c);
        }
        self.rx_starved = false;
        self.update_next_deadline();
    }

    // ---------------------------------------------------------------
    // Stream table
    // ---------------------------------------------------------------

    #[cfg(test)]
    pub fn stream_count(&self) -> usize {
        self.count
    }

    /// Guest bytes held for Unix sockets that would not take them yet.
    #[cfg(test)]
    pub fn buffered_bytes(&self) -> usize {
        self.slots
            .iter()
            .filter_map(|s| s.conn.as_ref())
            .map(|c| c.pending.len())
            .sum()
    }

    fn token(key: Key) -> u64 {
        (u64::from(key.1) << 32) | (key.0 as u64 + FIRST_STREAM_TOKEN)
    }

    fn key_of_token(&self, token: u64) -> Option<Key> {
        let slot = usize::try_from((token & 0xffff_ffff).checked_sub(FIRST_STREAM_TOKEN)?).ok()?;
        Some((slot, (token >> 32) as u32))
    }

    fn conn(&mut self, key: Key) -> Option<&mut Connection> {
        let slot = self.slots.get_mut(key.0)?;
        if slot.gen != key.1 {
            return None;
        }
        slot.conn.as_mut()
    }

    /// A stream together with the shared iovec scratch list.
    fn conn_iov(&mut self, key: Key) -> Option<(&mut Connection, &mut IoVecs)> {
        let slot = self.slots.get_mut(key.0)?;
        if slot.gen != key.1 {
            return None;
        }
        Some((slot.conn.as_mut()?, &mut self.iov))
    }

    fn lookup(&self, local: u32, peer: u32) -> Option<Key> {
        let &slot = self.ports.get(&(local, peer))?;
        Some((slot, self.slots[slot].gen))
    }

    /// Adds a stream and registers its socket; None when full or the
    /// socket cannot be watched (the connection is then closed).
    fn insert(&mut self, conn: Connection) -> Option<Key> {
        if self.count >= MAX_STREAMS {
            return None;
        }
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.slots.push(Slot { gen: 0, conn: None });
                self.slots.len() - 1
            }
        };
        let key = (slot, self.slots[slot].gen);
        let events = (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32;
        if sys::epoll_add(self.epoll, conn.fd(), events, Self::token(key)).is_err() {
            self.free.push(slot);
            return None;
        }
        self.slots[slot].conn = Some(conn);
        self.count += 1;
        Some(key)
    }

    /// Removes a stream and closes its socket (which leaves the epoll set).
    fn remove(&mut self, key: Key) -> Option<Connection> {
        let slot = self.slots.get_mut(key.0)?;
        if slot.gen != key.1 {
            return None;
        }
        let conn = slot.conn.take()?;
        slot.gen = slot.gen.wrapping_add(1);
        self.free.push(key.0);
        self.count -= 1;
        if self.ports.get(&(conn.local_port, conn.peer_port)) == Some(&key.0) {
            self.ports.remove(&(conn.local_port, conn.peer_port));
        }
        Some(conn)
    }

    /// Ends a stream; with `rst`, tells the guest (if it knew the stream).
    fn end(&mut self, key: Key, rst: bool) {
        if let Some(conn) = self.remove(key) {
            if rst && conn.guest_knows() {
                self.push_orphan(Header::to_guest(OP_RST, conn.local_port, conn.peer_port));
            }
        }
    }

    fn push_orphan(&mut self, h: Header) {
        if self.orphans.len() < ORPHAN_HARD_LIMIT {
            self.orphans.push_back(h);
        }
    }

    fn queue_ctrl(&mut self, key: Key, bit: u8) {
        let Some(c) = self.conn(key) else { return };
        c.ctrl |= bit;
        if !c.in_ctrl {
            c.in_ctrl = true;
            self.ctrl.push_back(key);
        }
    }

    /// Queues the stream for reading if its socket has data and the guest
    /// credit for it; asks for credit when that is all that is missing.
    fn want_rx(&mut self, key: Key) {
        let Some(c) = self.conn(key) else { return };
        if !c.host_to_guest_open() || !c.readable {
            return;
        }
        if c.peer_credit() == 0 {
            if !c.credit_requested {
                c.credit_requested = true;
                self.queue_ctrl(key, ctrl::CREDIT_REQUEST);
            }
            return;
        }
        if !c.in_rx {
            c.in_rx = true;
            self.rx_wanted.push_back(key);
        }
    }

    fn maybe_credit_update(&mut self, key: Key) {
        if self.conn(key).is_some_and(|c| c.wants_credit_update()) {
            self.queue_ctrl(key, ctrl::CREDIT_UPDATE);
        }
    }

    /// Moves a stream's shutdown along: SHUT_WR once the guest's data is
    /// out, the end once both directions are done.
    fn progress_close(&mut self, key: Key) {
        let Some(c) = self.conn(key) else { return };
        if c.shut_write_if_drained().is_err() {
            self.end(key, true);
            return;
        }
        if c.finished() {
            self.end(key, true);
        }
    }

    fn fault(&mut self, key: Key, _why: Fault) {
        self.end(key, true);
    }

    // ---------------------------------------------------------------
    // Host side (I/O thread)
    // ---------------------------------------------------------------

    /// A host client connected to the bridge; it has `timeout` to send its
    /// CONNECT line. Beyond MAX_STREAMS it is closed at once.
    pub fn accept_host(&mut self, fd: OwnedFd) {
        let deadline = Instant::now() + self.timeout;
        if let Some(key) = self.insert(Connection::host_client(fd, deadline)) {
            self.note_deadline(deadline);
            self.read_connect_line(key);
        }
    }

    /// Readiness reported by epoll for a stream socket.
    pub fn handle_event(&mut self, token: u64, events: u32) {
        let Some(key) = self.key_of_token(token) else {
            return;
        };
        let Some(c) = self.conn(key) else { return };
        let ev = events as i32;
        if ev & (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) != 0 {
            c.readable = true;
        }
        if ev & (libc::EPOLLOUT | libc::EPOLLHUP | libc::EPOLLERR) != 0 {
            c.writable = true;
        }
        let state = c.state;
        match state {
            State::ReadingLine { .. } => self.read_connect_line(key),
            State::Connecting { .. } => {}
            State::Established => {
                self.flush_stream(key);
                self.want_rx(key);
            }
        }
    }

    /// Peeks for a whole `CONNECT <port>\n` line and consumes exactly it,
    /// so bytes the client sends right after stay in the socket for the
    /// stream.
    fn read_connect_line(&mut self, key: Key) {
        let Some(c) = self.conn(key) else { return };
        let fd = c.fd();
        let mut buf = [0u8; MAX_CONNECT_LINE];
        let n = match sys::peek(fd, &mut buf) {
            Ok(0) => return self.end(key, false),
            Ok(n) => n,
            Err(e) if sys::would_block(&e) => {
                c.readable = false;
                return;
            }
            Err(_) => return self.end(key, false),
        };
        let Some(nl) = buf[..n].iter().position(|&b| b == b'\n') else {
            if n >= MAX_CONNECT_LINE {
                self.end(key, false);
            }
            return; // wait for the rest
        };
        let mut line = [0u8; MAX_CONNECT_LINE];
        match sys::recv(fd, &mut line[..nl + 1]) {
            Ok(got) if got == nl + 1 => {}
            _ => return self.end(key, false),
        }
        match parse_connect_line(&line[..nl]) {
            Some(port) => self.start_host_connect(key, port),
            None => self.end(key, false),
        }
    }

    fn start_host_connect(&mut self, key: Key, guest_port: u32) {
        let local = self.alloc_host_port(guest_port);
        let deadline = Instant::now() + self.timeout;
        let Some(c) = self.conn(key) else { return };
        c.state = State::Connecting { deadline };
        c.local_port = local;
        c.peer_port = guest_port;
        self.ports.insert((local, guest_port), key.0);
        self.queue_ctrl(key, ctrl::REQUEST);
        self.update_next_deadline();
    }

    /// The next host-side port a host client's stream gets. A snapshot
    /// keeps it: the restored guest may still hold sockets (reset, not yet
    /// closed by their owner) for the ports used before, and would answer
    /// a REQUEST reusing one with RST.
    pub fn next_host_port(&self) -> u32 {
        self.next_host_port
    }

    pub fn set_next_host_port(&mut self, port: u32) {
        self.next_host_port = if port < FIRST_HOST_PORT || port == u32::MAX { FIRST_HOST_PORT } else { port };
    }

    fn alloc_host_port(&mut self, guest_port: u32) -> u32 {
        loop {
            let p = self.next_host_port;
            self.next_host_port = if p >= u32::MAX - 1 {
                FIRST_HOST_PORT
            } else {
                p + 1
            };
            if !self.ports.contains_key(&(p, guest_port)) {
                return p;
            }
        }
    }

    fn flush_stream(&mut self, key: Key) {
        let result = match self.conn_iov(key) {
            Some((c, iov)) if !c.pending.is_empty() => c.flush(iov),
            _ => Ok(0),
        };
        match result {
            Ok(0) => {}
            Ok(n) => {
                self.counters.to_host.fetch_add(n, Ordering::Relaxed);
                self.maybe_credit_update(key);
                self.progress_close(key);
            }
            Err(e) => self.fault(key, e),
        }
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.next_deadline
    }

    fn note_deadline(&mut self, d: Instant) {
        if self.next_deadline.is_none_or(|n| d < n) {
            self.next_deadline = Some(d);
        }
    }

    fn update_next_deadline(&mut self) {
        let streams = self.slots.iter().filter_map(|s| s.conn.as_ref()?.deadline()).min();
        self.next_deadline = match (streams, self.reset_ack.map(|(_, d)| d)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }

    /// Closes host clients that did not send their line in time and
    /// host-initiated streams the guest did not answer in time (no reply
    /// to the client; an RST to the guest if it saw the REQUEST).
    pub fn check_deadlines(&mut self, now: Instant) {
        if self.next_deadline.is_none_or(|d| now < d) {
            return;
        }
        for slot in 0..self.slots.len() {
            let gen = self.slots[slot].gen;
            let expired = self.slots[slot]
                .conn
                .as_ref()
                .and_then(Connection::deadline)
                .is_some_and(|d| d <= now);
            if expired {
                self.end((slot, gen), true);
            }
        }
        self.update_next_deadline();
    }

    // ---------------------------------------------------------------
    // The work
    // ---------------------------------------------------------------

    /// QueueNotify for queue `index` (any queue: all work is done).
    pub fn process_queue(&mut self, _index: usize) -> Result<(), DeviceError> {
        self.pump();
        match &self.broken {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    /// Does all work there is, then raises at most one interrupt.
    pub fn pump(&mut self) {
        if self.broken.is_some() {
            return;
        }
        let Some(mut a) = self.active.take() else {
            return;
        };
        let mem = a.mem.clone();
        let mut result = self.pump_active(&mut a, &mem);
        let notified = notify_guest(&mut a, &mem);
        if result.is_ok() {
            result = notified;
        }
        self.active = Some(a);
        if let Err(e) = result {
            self.broken = Some(e);
        }
    }

    fn pump_active(&mut self, a: &mut Active, mem: &GuestMemory) -> Result<(), DeviceError> {
        // The reset goes first: a REQUEST delivered before it would be reset
        // by the guest along with the streams it had, on its side only.
        if self.reset_event_pending && self.reset_armed {
            self.send_reset_event(a, mem)?;
        }
        self.check_reset_ack(a, mem)?;
        loop {
            let tx_throttled = self.process_tx(a, mem)?;
            let orphans_before = self.orphans.len();
            self.process_rx(a, mem)?;
            if !tx_throttled || self.orphans.len() >= orphans_before {
                break;
            }
        }
        Ok(())
    }

    /// Control packets (a host client's REQUEST) wait while the guest has a
    /// TRANSPORT_RESET still to get or still to finish handling.
    fn ctrl_blocked(&self) -> bool {
        self.reset_event_pending || self.reset_ack.is_some()
    }

    /// Consumes the TX queue. Returns true when it stopped because too
    /// many RSTs wait for RX buffers.
    fn process_tx(&mut self, a: &mut Active, mem: &GuestMemory) -> Result<bool, DeviceError> {
        let mut chain = std::mem::take(&mut self.tx_chain);
        let result = loop {
            if self.orphans.len() >= ORPHAN_TX_LIMIT {
                break Ok(true);
            }
            let q = &mut a.queues[TXQ];
            match q.pop_into(mem, &mut chain) {
                Ok(true) => {}
                Ok(false) => match q.enable_notification(mem) {
                    Ok(true) => continue,
                    Ok(false) => break Ok(false),
                    Err(e) => break Err(e.into()),
                },
                Err(e) => break Err(e.into()),
            }
            self.tx_packet(mem, &chain);
            if let Err(e) = a.queues[TXQ].add_used(mem, chain.head, 0) {
                break Err(e.into());
            }
            a.used[TXQ] = true;
        };
        self.tx_chain = chain;
        result
    }

    /// One packet from the guest.
    fn tx_packet(&mut self, mem: &GuestMemory, chain: &DescriptorChain) {
        let (readable, _) = sg::split(chain);
        let avail = sg::total_len(readable);
        if avail < HEADER_LEN as u64 {
            return;
        }
        let mut raw = [0u8; HEADER_LEN];
        if sg::read_bytes(mem, readable, 0, &mut raw).is_err() {
            return;
        }
        let hdr = Header::from_bytes(&raw);
        let known = self.lookup(hdr.dst_port, hdr.src_port);
        if let Err(why) = hdr.validate_from_guest(avail - HEADER_LEN as u64) {
            if why.answer_with_rst() && hdr.op != OP_RST {
                match known {
                    Some(key) => self.end(key, true),
                    None => self.push_orphan(hdr.rst_reply()),
                }
            }
            return;
        }
        match known {
            Some(key) => self.stream_packet(key, &hdr, mem, readable),
            None => match hdr.op {
                OP_REQUEST => self.guest_connect(&hdr),
                OP_RST => {}
                _ => self.push_orphan(hdr.rst_reply()),
            },
        }
    }

    /// A guest connection to host port P: connect to `<path>_<P>`.
    fn guest_connect(&mut self, hdr: &Header) {
        if self.count >= MAX_STREAMS {
            return self.push_orphan(hdr.rst_reply());
        }
        let mut path = OsString::from(self.path.as_os_str());
        path.push(format!("_{}", hdr.dst_port));
        let Ok(fd) = sys::connect_unix(&path) else {
            return self.push_orphan(hdr.rst_reply());
        };
        let mut conn = Connection::guest_initiated(fd, hdr.dst_port, hdr.src_port);
        conn.update_peer_credit(hdr.buf_alloc, hdr.fwd_cnt);
        let Some(key) = self.insert(conn) else {
            return self.push_orphan(hdr.rst_reply());
        };
        self.ports.insert((hdr.dst_port, hdr.src_port), key.0);
        self.counters.streams.fetch_add(1, Ordering::Relaxed);
        self.queue_ctrl(key, ctrl::RESPONSE);
    }

    /// A packet for a stream we know.
    fn stream_packet(
        &mut self,
        key: Key,
        hdr: &Header,
        mem: &GuestMemory,
        readable: &[crate::devices::virtio::queue::Descriptor],
    ) {
        let Some(c) = self.conn(key) else { return };
        c.update_peer_credit(hdr.buf_alloc, hdr.fwd_cnt);
        let state = c.state;
        match (state, hdr.op) {
            (_, OP_RST) => return self.end(key, false),
            (State::Connecting { .. }, OP_RESPONSE) if c.request_sent => {
                let mut line = [0u8; 24];
                let n = format_ok_line(&mut line, c.local_port);
                match sys::send(c.fd(), &line[..n]) {
                    Ok(sent) if sent == n => {}
                    _ => return self.end(key, true),
                }
                c.state = State::Established;
                c.readable = true;
                self.counters.streams.fetch_add(1, Ordering::Relaxed);
                self.update_next_deadline();
            }
            (State::Established, OP_RW) => {
                if c.guest_send_shut {
                    return self.end(key, true);
                }
                let Some((c, iov)) = self.conn_iov(key) else {
                    return;
                };
                match c.take_payload(mem, readable, HEADER_LEN as u64, hdr.len, iov) {
                    Ok(n) => {
                        self.counters.to_host.fetch_add(n, Ordering::Relaxed);
                    }
                    Err(e) => return self.fault(key, e),
                }
                self.maybe_credit_update(key);
            }
            (State::Established, OP_SHUTDOWN) => {
                if hdr.flags & SHUTDOWN_RCV != 0 {
                    c.guest_rcv_shut = true;
                }
                if hdr.flags & SHUTDOWN_SEND != 0 {
                    c.guest_send_shut = true;
                }
                self.progress_close(key);
            }
            (State::Established, OP_CREDIT_UPDATE) => {}
            (State::Established, OP_CREDIT_REQUEST) => self.queue_ctrl(key, ctrl::CREDIT_UPDATE),
            // REQUEST/RESPONSE on a live stream, or anything but RESPONSE
            // while connecting: a protocol error.
            _ => return self.end(key, true),
        }
        self.want_rx(key);
    }

    /// Fills the RX queue: orphan RSTs, owed control packets, then data.
    fn process_rx(&mut self, a: &mut Active, mem: &GuestMemory) -> Result<(), DeviceError> {
        loop {
            if !self.orphans.is_empty() {
                let Some(chain) = self.take_rx_chain(a, mem)? else {
                    return Ok(());
                };
                if let Some(h) = self.orphans.pop_front() {
                    self.deliver(a, mem, chain, &h, 0)?;
                }
                continue;
            }
            if let Some(&key) = self.ctrl.front().filter(|_| !self.ctrl_blocked()) {
                let owes = match self.conn(key) {
                    Some(c) if c.ctrl != 0 => true,
                    Some(c) => {
                        c.in_ctrl = false;
                        false
                    }
                    None => false,
                };
                if !owes {
                    self.ctrl.pop_front();
                    continue;
                }
                let Some(chain) = self.take_rx_chain(a, mem)? else {
                    return Ok(());
                };
                let Some(c) = self.conn(key) else {
                    self.rx_held.push_front(chain);
                    continue;
                };
                let h = c.next_ctrl_packet();
                if c.ctrl == 0 {
                    c.in_ctrl = false;
                    self.ctrl.pop_front();
                }
                match h {
                    Some(h) => self.deliver(a, mem, chain, &h, 0)?,
                    None => self.rx_held.push_front(chain),
                }
                self.want_rx(key);
                continue;
            }
            if let Some(key) = self.rx_wanted.pop_front() {
                let ready = match self.conn(key) {
                    Some(c) => {
                        c.in_rx = false;
                        c.host_to_guest_open() && c.readable && c.peer_credit() > 0
                    }
                    None => false,
                };
                if !ready {
                    continue;
                }
                self.read_stream(a, mem, key)?;
                if self.rx_starved {
                    // Out of RX buffers: keep this stream first in line.
                    if let Some(c) = self.conn(key) {
                        if !c.in_rx && c.readable && c.host_to_guest_open() {
                            c.in_rx = true;
                            self.rx_wanted.push_front(key);
                        }
                    }
                    return Ok(());
                }
                self.want_rx(key);
                continue;
            }
            return Ok(());
        }
    }

    /// The next usable RX chain: held ones first, else popped from the
    /// ring (re-arming the notification when it is empty). Chains that
    /// cannot take a header or lie outside RAM are returned unused.
    fn take_rx_chain(
        &mut self,
        a: &mut Active,
        mem: &GuestMemory,
    ) -> Result<Option<DescriptorChain>, DeviceError> {
        if let Some(c) = self.rx_held.pop_front() {
            return Ok(Some(c));
        }
        let mut chain = self.chain_pool.pop().unwrap_or_default();
        let q = &mut a.queues[RXQ];
        loop {
            let popped = match q.pop_into(mem, &mut chain) {
                Ok(p) => p,
                Err(e) => {
                    self.chain_pool.push(chain);
                    return Err(e.into());
                }
            };
            if !popped {
                match q.enable_notification(mem) {
                    Ok(true) => continue,
                    Ok(false) => {
                        self.chain_pool.push(chain);
                        self.rx_starved = true;
                        return Ok(None);
                    }
                    Err(e) => {
                        self.chain_pool.push(chain);
                        return Err(e.into());
                    }
                }
            }
            let (_, writable) = sg::split(&chain);
            if sg::total_len(writable) >= HEADER_LEN as u64 && sg::all_in_ram(mem, writable) {
                self.rx_starved = false;
                return Ok(Some(chain));
            }
            if let Err(e) = q.add_used(mem, chain.head, 0) {
                self.chain_pool.push(chain);
                return Err(e.into());
            }
            a.used[RXQ] = true;
        }
    }

    /// Writes `h` (whose payload, `payload` bytes, is already in place)
    /// into `chain` and hands it to the guest.
    fn deliver(
        &mut self,
        a: &mut Active,
        mem: &GuestMemory,
        chain: DescriptorChain,
        h: &Header,
        payload: u32,
    ) -> Result<(), DeviceError> {
        let (_, writable) = sg::split(&chain);
        let mut used = HEADER_LEN as u32 + payload;
        if sg::write_bytes(mem, writable, 0, &h.to_bytes()).is_err() {
            used = 0; // cannot happen: the chain was checked when taken
        }
        let r = a.queues[RXQ].add_used(mem, chain.head, used);
        a.used[RXQ] = true;
        self.chain_pool.push(chain);
        r.map_err(DeviceError::from)
    }

    /// Reads one batch from a stream's socket straight into up to RX_BATCH
    /// RX chains, no more than the guest's credit.
    fn read_stream(
        &mut self,
        a: &mut Active,
        mem: &GuestMemory,
        key: Key,
    ) -> Result<(), DeviceError> {
        let Some(c) = self.conn(key) else {
            return Ok(());
        };
        let budget = u64::from(c.peer_credit());
        let fd = c.fd();
        let mut iov = std::mem::take(&mut self.iov);
        iov.clear();
        let mut planned = 0u64;
        let mut outcome = Ok(());
        while planned < budget && self.rx_batch.len() < RX_BATCH && !iov.is_full() {
            let chain = match self.take_rx_chain(a, mem) {
                Ok(Some(c)) => c,
                Ok(None) => break,
                Err(e) => {
                    outcome = Err(e);
                    break;
                }
            };
            let (_, writable) = sg::split(&chain);
            let room = (sg::total_len(writable) - HEADER_LEN as u64)
                .min(u64::from(MAX_PKT_PAYLOAD))
                .min(budget - planned);
            // Cannot fail: the chain was checked to lie in RAM.
            let added = iov
                .push_guest(mem, writable, HEADER_LEN as u64, room)
                .unwrap_or(0);
            if added == 0 {
                self.rx_held.push_front(chain);
                break;
            }
            planned += added;
            self.rx_caps.push(added);
            self.rx_batch.push(chain);
        }
        let read = if self.rx_batch.is_empty() {
            None
        } else {
            // SAFETY: every iovec was checked to lie in guest RAM, which
            // outlives the call.
            Some(unsafe { sys::recv_iov(fd, iov.as_slice()) })
        };
        self.iov = iov;
        let mut got = match read {
            None => 0,
            Some(Ok(0)) => {
                self.give_back_batch(0);
                self.host_eof(key);
                return outcome;
            }
            Some(Ok(n)) => n as u64,
            Some(Err(e)) => {
                self.give_back_batch(0);
                if sys::would_block(&e) {
                    if let Some(c) = self.conn(key) {
                        c.readable = false;
                    }
                } else {
                    self.fault(key, Fault::Io);
                }
                return outcome;
            }
        };
        if got < planned {
            // The socket is drained for now; the next edge says when not.
            if let Some(c) = self.conn(key) {
                c.readable = false;
            }
        }
        // Chains fill in order, so the unused ones are a tail of the batch;
        // they go back to the front of `rx_held`, keeping ring order.
        let mut n_used = 0;
        let mut left = got;
        for &cap in &self.rx_caps {
            if left == 0 {
                break;
            }
            left -= cap.min(left);
            n_used += 1;
        }
        self.give_back_batch(n_used);
        let mut chains = std::mem::take(&mut self.rx_batch);
        for (i, chain) in chains.drain(..).enumerate() {
            let take = self.rx_caps.get(i).copied().unwrap_or(0).min(got);
            got -= take;
            let take32 = take as u32; // <= MAX_PKT_PAYLOAD
            let Some(c) = self.conn(key) else {
                self.chain_pool.push(chain);
                continue;
            };
            c.sent_to_guest(take32);
            let mut h = c.header(OP_RW);
            h.len = take32;
            self.counters.to_guest.fetch_add(take, Ordering::Relaxed);
            if let Err(e) = self.deliver(a, mem, chain, &h, take32) {
                outcome = outcome.and(Err(e));
            }
        }
        self.rx_batch = chains;
        self.rx_caps.clear();
        outcome
    }

    /// Returns the batch's chains from index `from` on to the front of
    /// `rx_held`, in order. A batch takes every held chain before popping
    /// new ones, so this keeps `rx_held` in ring order.
    fn give_back_batch(&mut self, from: usize) {
        while self.rx_batch.len() > from {
            if let Some(c) = self.rx_batch.pop() {
                self.rx_held.push_front(c);
            }
        }
        if from == 0 {
            self.rx_caps.clear();
        }
    }

    /// The Unix side reached end of file: SHUTDOWN (send) to the guest, or
    /// the end of the stream when the guest is done too.
    fn host_eof(&mut self, key: Key) {
        let Some(c) = self.conn(key) else { return };
        c.host_eof = true;
        c.readable = false;
        if c.finished() {
            return self.end(key, true);
        }
        self.queue_ctrl(key, ctrl::SHUTDOWN);
        self.progress_close(key);
    }

    /// The guest handles TRANSPORT_RESET in a work item that resets every
    /// socket it has, and gives the event buffer back only afterwards. A
    /// stream set up before that would be reset too, so control packets
    /// (a host client's REQUEST) wait until the buffer is back, or for
    /// RESET_ACK_TIMEOUT at most.
    fn check_reset_ack(&mut self, a: &mut Active, mem: &GuestMemory) -> Result<(), DeviceError> {
        if let Some((idx, deadline)) = self.reset_ack {
            if a.queues[EVQ].avail_idx(mem)? != idx || Instant::now() >= deadline {
                self.reset_ack = None;
                self.update_next_deadline();
            }
        }
        Ok(())
    }

    fn send_reset_event(&mut self, a: &mut Active, mem: &GuestMemory) -> Result<(), DeviceError> {
        let mut chain = std::mem::take(&mut self.tx_chain);
        let q = &mut a.queues[EVQ];
        let result = loop {
            match q.pop_into(mem, &mut chain) {
                Ok(true) => {}
                Ok(false) => match q.enable_notification(mem) {
                    Ok(true) => continue,
                    Ok(false) => break Ok(()),
                    Err(e) => break Err(e.into()),
                },
                Err(e) => break Err(e.into()),
            }
            let (_, writable) = sg::split(&chain);
            let event = EVENT_TRANSPORT_RESET.to_le_bytes();
            if sg::write_bytes(mem, writable, 0, &event).is_ok() {
                if let Err(e) = q.add_used(mem, chain.head, event.len() as u32) {
                    break Err(e.into());
                }
                a.used[EVQ] = true;
                self.reset_event_pending = false;
                // The guest gives the buffer back once it has handled the
                // reset: have it tell us (it would not, with buffers to spare).
                match q.notify_on_next_avail(mem) {
                    Ok(idx) => {
                        let deadline = Instant::now() + RESET_ACK_TIMEOUT;
                        self.reset_ack = Some((idx, deadline));
                        self.note_deadline(deadline);
                    }
                    Err(e) => break Err(e.into()),
                }
                break Ok(());
            }
            if let Err(e) = q.add_used(mem, chain.head, 0) {
                break Err(e.into());
            }
            a.used[EVQ] = true;
        };
        self.tx_chain = chain;
        result
    }
}

/// One interrupt for all queues that got used buffers and want to hear.
fn notify_guest(a: &mut Active, mem: &GuestMemory) -> Result<(), DeviceError> {
    let mut signal = false;
    let mut result = Ok(());
    for i in 0..a.used.len() {
        if std::mem::take(&mut a.used[i]) {
            match a.queues[i].needs_notification(mem) {
                Ok(n) => signal |= n,
                Err(e) => result = Err(e.into()),
            }
        }
    }
    if signal {
        a.interrupt.signal_used_queue();
    }
    result
}

/// `CONNECT <port>` (without the newline): decimal, no sign, no spaces,
/// fits a u32 and is not VMADDR_PORT_ANY.
pub fn parse_connect_line(line: &[u8]) -> Option<u32> {
    let digits = line.strip_prefix(b"CONNECT ")?;
    if digits.is_empty() || digits.len() > 10 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let port: u64 = digits
        .iter()
        .fold(0u64, |acc, &d| acc * 10 + u64::from(d - b'0'));
    u32::try_from(port).ok().filter(|&p| p != u32::MAX)
}

/// `OK <port>\n` into `buf`; returns its length.
fn format_ok_line(buf: &mut [u8; 24], port: u32) -> usize {
    let mut digits = [0u8; 10];
    let mut n = 0;
    let mut v = port;
    loop {
        digits[n] = b'0' + (v % 10) as u8;
        n += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    buf[..3].copy_from_slice(b"OK ");
    for i in 0..n {
        buf[3 + i] = digits[n - 1 - i];
    }
    buf[3 + n] = b'\n';
    4 + n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_lines() {
        assert_eq!(parse_connect_line(b"CONNECT 1978"), Some(1978));
        assert_eq!(parse_connect_line(b"CONNECT 0"), Some(0));
        assert_eq!(
            parse_connect_line(b"CONNECT 4294967294"),
            Some(u32::MAX - 1)
        );
        for bad in [
            &b"CONNECT 4294967295"[..],
            b"CONNECT 4294967296",
            b"CONNECT 99999999999",
            b"CONNECT ",
            b"CONNECT -1",
            b"CONNECT +1",
            b"CONNECT 1 ",
            b"CONNECT 1\r",
            b"connect 1",
            b"CONNECT  1",
            b"",
        ] {
            assert_eq!(parse_connect_line(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn ok_lines() {
        let mut b = [0u8; 24];
        let n = format_ok_line(&mut b, 1 << 30);
        assert_eq!(&b[..n], b"OK 1073741824\n");
        let n = format_ok_line(&mut b, 0);
        assert_eq!(&b[..n], b"OK 0\n");
        let n = format_ok_line(&mut b, u32::MAX);
        assert_eq!(&b[..n], b"OK 4294967295\n");
    }
}
