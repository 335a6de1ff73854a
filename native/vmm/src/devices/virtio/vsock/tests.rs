//! virtio-vsock behind the virtio-mmio transport, driven by a simulated
//! guest driver (rings in guest memory, register writes) against a real
//! bridge socket in a temp dir, with the I/O thread running.

use std::io::{Read, Write};
use std::net::Shutdown;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::packet::{Header, HEADER_LEN};
use super::*;
use crate::devices::virtio::mmio::{regs, MmioTransport};
use crate::devices::virtio::queue::{DESC_F_NEXT, DESC_F_WRITE};
use crate::devices::virtio::status::*;
use crate::devices::virtio::test_utils::{SplitRing, TestDriver};
use crate::devices::virtio::{
    VirtioDevice, VirtioDeviceState, F_RING_EVENT_IDX, F_RING_INDIRECT_DESC, F_VERSION_1,
};
use crate::devices::BusDevice;

const MEM_SIZE: u64 = 0x200_0000;
const RX_N: u16 = 64;
const TX_N: u16 = 64;
const EV_N: u16 = 4;
const RX_BUF: u64 = 0x10_0000;
const RX_STRIDE: u64 = 0x2000;
const RX_BUF_LEN: u32 = 4096 + HEADER_LEN as u32;
const TX_BUF: u64 = 0x40_0000;
const TX_STRIDE: u64 = 0x2_0000;
const EV_BUF: u64 = 0x9000;
const WAIT: Duration = Duration::from_secs(5);
/// What our simulated guest advertises per stream by default.
const GUEST_BUF_ALLOC: u32 = 256 * 1024;

fn temp_dir(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "stasis-vsock-{}-{}-{name}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A guest driver for one vsock device.
struct Guest {
    drv: TestDriver,
    rx: SplitRing,
    tx: SplitRing,
    ev: SplitRing,
    rx_seen: u16,
    tx_slot: u64,
    /// RX used entries with no packet (buffers the device refused).
    rx_refused: usize,
    bridge: Arc<VsockBridge>,
    dir: PathBuf,
}

/// The guest's side of one stream.
#[derive(Clone, Copy)]
struct GStream {
    gport: u32,
    hport: u32,
    buf_alloc: u32,
    /// Bytes the guest application consumed.
    fwd_cnt: u32,
    tx_cnt: u32,
    peer_buf_alloc: u32,
    peer_fwd_cnt: u32,
}

impl GStream {
    fn new(gport: u32, hport: u32) -> Self {
        Self {
            gport,
            hport,
            buf_alloc: GUEST_BUF_ALLOC,
            fwd_cnt: 0,
            tx_cnt: 0,
            peer_buf_alloc: 0,
            peer_fwd_cnt: 0,
        }
    }

    fn hdr(&self, op: u16) -> Header {
        Header {
            src_cid: GUEST_CID,
            dst_cid: HOST_CID,
            src_port: self.gport,
            dst_port: self.hport,
            kind: TYPE_STREAM,
            op,
            buf_alloc: self.buf_alloc,
            fwd_cnt: self.fwd_cnt,
            ..Header::default()
        }
    }

    fn credit(&self) -> u32 {
        self.peer_buf_alloc
            .saturating_sub(self.tx_cnt.wrapping_sub(self.peer_fwd_cnt))
    }

    fn learn(&mut self, h: &Header) {
        self.peer_buf_alloc = h.buf_alloc;
        self.peer_fwd_cnt = h.fwd_cnt;
    }

    /// True when `h` belongs to this stream (host → guest direction).
    fn owns(&self, h: &Header) -> bool {
        h.src_port == self.hport && h.dst_port == self.gport
    }
}

impl Guest {
    fn new(name: &str) -> Self {
        Self::with_timeout(name, CONNECT_TIMEOUT)
    }

    fn with_timeout(name: &str, timeout: Duration) -> Self {
        let dir = temp_dir(name);
        let bridge = VsockBridge::bind_with_timeout(&dir.join("v.sock"), timeout).unwrap();
        let mut g = Self::bare(bridge, dir);
        let f = g.drv.device_features();
        assert_eq!(f, F_VERSION_1 | F_RING_EVENT_IDX | F_RING_INDIRECT_DESC);
        assert!(g.drv.negotiate(f));
        g.setup_and_go();
        g
    }

    fn bare(bridge: Arc<VsockBridge>, dir: PathBuf) -> Self {
        let drv = TestDriver::new(MEM_SIZE, Box::new(bridge.device()));
        Self {
            drv,
            rx: SplitRing::new(RX_N, 0x1000, 0x2000, 0x3000),
            tx: SplitRing::new(TX_N, 0x4000, 0x5000, 0x6000),
            ev: SplitRing::new(EV_N, 0x7000, 0x7800, 0x7c00),
            rx_seen: 0,
            tx_slot: 0,
            rx_refused: 0,
            bridge,
            dir,
        }
    }

    fn setup_and_go(&mut self) {
        self.setup_with_rx(&[]);
    }

    /// Sets the queues up, posts every RX buffer (descriptors listed in
    /// `odd` as (index, addr, len) instead of the normal ones) and the
    /// event buffers, DRIVER_OK.
    fn setup_with_rx(&mut self, odd: &[(u16, u64, u32)]) {
        assert!(self.drv.setup_queue(RXQ as u32, &self.rx));
        assert!(self.drv.setup_queue(TXQ as u32, &self.tx));
        assert!(self.drv.setup_queue(EVQ as u32, &self.ev));
        for i in 0..EV_N {
            let mem = self.drv.mem.clone();
            self.ev
                .write_desc(&mem, i, EV_BUF + 8 * u64::from(i), 4, DESC_F_WRITE, 0);
            self.ev.publish(&mem, i);
        }
        for i in 0..RX_N {
            self.write_rx_desc(i);
            let mem = self.drv.mem.clone();
            if let Some(&(_, addr, len)) = odd.iter().find(|o| o.0 == i) {
                self.rx.write_desc(&mem, i, addr, len, DESC_F_WRITE, 0);
            }
            self.rx.publish(&mem, i);
        }
        self.drv.driver_ok();
        assert_eq!(
            self.drv.status(),
            ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK
        );
    }

    fn path(&self) -> PathBuf {
        self.dir.join("v.sock")
    }

    fn mem(&self) -> &crate::memory::GuestMemory {
        &self.drv.mem
    }

    fn write_rx_desc(&self, i: u16) {
        let addr = RX_BUF + RX_STRIDE * u64::from(i);
        self.rx
            .write_desc(&self.drv.mem, i, addr, RX_BUF_LEN, DESC_F_WRITE, 0);
    }

    /// Sends a raw chain on the TX queue and notifies.
    fn send_chain(&mut self, bufs: &[(u64, u32, bool)]) {
        let mem = self.drv.mem.clone();
        let head = self.tx.add_chain(&mem, bufs);
        self.tx.publish(&mem, head);
        self.drv.notify(TXQ as u32);
        self.tx.free_all();
    }

    /// Sends one packet as a single descriptor (or header + payload in two
    /// when `split`).
    fn send_packet(&mut self, h: &Header, payload: &[u8], split: bool) {
        assert!(payload.len() <= TX_STRIDE as usize - 0x100);
        let at = TX_BUF + TX_STRIDE * (self.tx_slot % u64::from(TX_N));
        self.tx_slot += 1;
        self.mem().write(at, &h.to_bytes()).unwrap();
        let data_at = at + 0x100;
        if split {
            self.mem().write(data_at, payload).unwrap();
            let mut bufs = vec![(at, HEADER_LEN as u32, false)];
            if !payload.is_empty() {
                bufs.push((data_at, payload.len() as u32, false));
            }
            self.send_chain(&bufs);
        } else {
            self.mem().write(at + HEADER_LEN as u64, payload).unwrap();
            self.send_chain(&[(at, (HEADER_LEN + payload.len()) as u32, false)]);
        }
        assert_eq!(
            self.tx.used_idx(self.mem()),
            self.tx.avail_idx,
            "TX chain not consumed"
        );
    }

    fn send(&mut self, h: &Header) {
        self.send_packet(h, &[], false);
    }

    fn send_rw(&mut self, s: &mut GStream, data: &[u8]) {
        let mut h = s.hdr(OP_RW);
        h.len = data.len() as u32;
        self.send_packet(&h, data, false);
        s.tx_cnt = s.tx_cnt.wrapping_add(data.len() as u32);
    }

    /// The next RX packet if one is there; reposts its buffer.
    fn try_recv(&mut self) -> Option<(Header, Vec<u8>)> {
        loop {
            let used = self.rx.used_idx(self.mem());
            if used == self.rx_seen {
                return None;
            }
            let (id, len) = self.rx.used_elem(self.mem(), self.rx_seen);
            self.rx_seen = self.rx_seen.wrapping_add(1);
            let id = id as u16;
            let at = RX_BUF + RX_STRIDE * u64::from(id);
            let packet = if len as usize >= HEADER_LEN {
                let mut raw = [0u8; HEADER_LEN];
                self.mem().read(at, &mut raw).unwrap();
                let h = Header::from_bytes(&raw);
                assert_eq!(len as usize, HEADER_LEN + h.len as usize, "used len");
                let mut payload = vec![0u8; h.len as usize];
                self.mem()
                    .read(at + HEADER_LEN as u64, &mut payload)
                    .unwrap();
                assert_eq!(
                    (h.src_cid, h.dst_cid, h.kind),
                    (HOST_CID, GUEST_CID, TYPE_STREAM)
                );
                assert_eq!(h.buf_alloc == 0, h.op == OP_RST, "credit on all but RST");
                Some((h, payload))
            } else {
                self.rx_refused += 1;
                None
            };
            self.write_rx_desc(id);
            let mem = self.drv.mem.clone();
            self.rx.publish(&mem, id);
            self.drv.notify(RXQ as u32);
            if packet.is_some() {
                return packet;
            }
        }
    }

    fn recv(&mut self) -> (Header, Vec<u8>) {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(p) = self.try_recv() {
                return p;
            }
            assert!(Instant::now() < deadline, "no RX packet");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn recv_op(&mut self, op: u16) -> (Header, Vec<u8>) {
        let (h, p) = self.recv();
        assert_eq!(h.op, op, "unexpected packet {h:?}");
        (h, p)
    }

    fn expect_quiet(&mut self, wait: Duration) {
        std::thread::sleep(wait);
        if let Some((h, _)) = self.try_recv() {
            panic!("unexpected packet {h:?}");
        }
    }

    /// Host-initiated: a client connects, the guest accepts; returns the
    /// client socket and the guest's view of the stream.
    fn host_connect(&mut self, port: u32) -> (UnixStream, GStream) {
        let mut host = UnixStream::connect(self.path()).unwrap();
        host.set_read_timeout(Some(WAIT)).unwrap();
        host.write_all(format!("CONNECT {port}\n").as_bytes())
            .unwrap();
        let (req, _) = self.recv_op(OP_REQUEST);
        assert_eq!(req.dst_port, port);
        assert!(req.src_port >= 1 << 30);
        assert_eq!((req.buf_alloc, req.fwd_cnt), (BUF_ALLOC, 0));
        let mut s = GStream::new(port, req.src_port);
        s.learn(&req);
        self.send(&s.hdr(OP_RESPONSE));
        assert_eq!(read_line(&mut host), format!("OK {}\n", req.src_port));
        (host, s)
    }

    fn muxer_streams(&self) -> usize {
        self.bridge.shared().lock().stream_count()
    }

    fn buffered(&self) -> usize {
        self.bridge.shared().lock().buffered_bytes()
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        self.bridge.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn read_line(s: &mut UnixStream) -> String {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    loop {
        match s.read(&mut b) {
            Ok(1) => {
                line.push(b[0]);
                if b[0] == b'\n' {
                    break;
                }
            }
            _ => break,
        }
    }
    String::from_utf8(line).unwrap()
}

fn read_exact_n(s: &mut UnixStream, n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    s.read_exact(&mut v).unwrap();
    v
}

/// The client sees its connection closed (EOF, or a reset when it had
/// sent bytes nobody read) with no reply bytes.
fn assert_closed_without_reply(s: &mut UnixStream) {
    let mut b = [0u8; 64];
    match s.read(&mut b) {
        Ok(0) | Err(_) => {}
        Ok(n) => panic!("got a reply: {:?}", String::from_utf8_lossy(&b[..n])),
    }
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 12) as u8)
        .collect()
}

#[test]
fn identity_features_and_config() {
    let dir = temp_dir("ident");
    let bridge = VsockBridge::bind(&dir.join("v.sock")).unwrap();
    let mut g = Guest::bare(bridge, dir);
    assert_eq!(g.drv.read(regs::DEVICE_ID), TYPE_VSOCK_ID);
    for (q, max) in [(0, RX_QUEUE_SIZE), (1, TX_QUEUE_SIZE), (2, EV_QUEUE_SIZE)] {
        g.drv.write(regs::QUEUE_SEL, q);
        assert_eq!(g.drv.read(regs::QUEUE_NUM_MAX), u32::from(max));
    }
    g.drv.write(regs::QUEUE_SEL, 3);
    assert_eq!(g.drv.read(regs::QUEUE_NUM_MAX), 0);
    assert_eq!(g.drv.read(regs::CONFIG), 3);
    assert_eq!(g.drv.read(regs::CONFIG + 4), 0);
    let mut b = [0xffu8; 8];
    g.drv.transport.read(regs::CONFIG, &mut b);
    assert_eq!(u64::from_le_bytes(b), GUEST_CID);
    // Config writes are ignored.
    g.drv.transport.write(regs::CONFIG, &[9, 9, 9, 9]);
    assert_eq!(g.drv.read(regs::CONFIG), 3);
    assert_eq!(
        g.drv.device_features(),
        F_VERSION_1 | F_RING_EVENT_IDX | F_RING_INDIRECT_DESC
    );
}

const TYPE_VSOCK_ID: u32 = crate::devices::virtio::TYPE_VSOCK;

#[test]
fn bind_replaces_stale_sockets_and_refuses_live_ones() {
    let dir = temp_dir("bind");
    let path = dir.join("v.sock");
    drop(UnixListener::bind(&path).unwrap()); // stale file, nobody listening
    let bridge = VsockBridge::bind(&path).unwrap();
    assert!(VsockBridge::bind(&path).is_err(), "in use");
    assert_eq!(bridge.path(), path.as_path());
    drop(bridge);
    assert!(!path.exists(), "removed at the end");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn host_connect_handshake_data_and_close() {
    let mut g = Guest::new("hostconn");
    let irqs_before = g.drv.irq.count();
    let (mut host, mut s) = g.host_connect(1978);
    assert!(g.drv.irq.count() > irqs_before, "guest was interrupted");
    assert_eq!(g.muxer_streams(), 1);

    // Host → guest.
    host.write_all(b"hello").unwrap();
    let (h, p) = g.recv_op(OP_RW);
    assert!(s.owns(&h));
    assert_eq!(p, b"hello");
    s.fwd_cnt += 5;
    // Guest → host, header and payload in one descriptor, then split.
    g.send_rw(&mut s, b"world");
    assert_eq!(read_exact_n(&mut host, 5), b"world");
    let mut h = s.hdr(OP_RW);
    h.len = 3;
    g.send_packet(&h, b"abc", true);
    assert_eq!(read_exact_n(&mut host, 3), b"abc");

    // CREDIT_REQUEST is answered with our fwd_cnt.
    g.send(&s.hdr(OP_CREDIT_REQUEST));
    let (h, _) = g.recv_op(OP_CREDIT_UPDATE);
    assert_eq!((h.buf_alloc, h.fwd_cnt), (BUF_ALLOC, 8));

    // Guest shuts its sending side: the host reads EOF after the data.
    g.send_rw(&mut s, b"bye");
    let mut sh = s.hdr(OP_SHUTDOWN);
    sh.flags = SHUTDOWN_SEND;
    g.send(&sh);
    let mut rest = Vec::new();
    host.read_to_end(&mut rest).unwrap();
    assert_eq!(rest, b"bye");
    // Host closes too: both directions are done, the stream ends with RST.
    host.shutdown(Shutdown::Write).unwrap();
    let (h, _) = g.recv_op(OP_RST);
    assert!(s.owns(&h));
    wait_until("stream removed", || g.muxer_streams() == 0);

    let st = g.bridge.stats();
    assert_eq!(st.streams, 1);
    assert_eq!(st.bytes_to_guest, 5);
    assert_eq!(st.bytes_to_host, 11);
    // The I/O thread's CPU time, read live from another thread.
    assert!(st.io_thread_ns > 0);
    assert!(g.bridge.stats().io_thread_ns >= st.io_thread_ns);
}

#[test]
fn host_shutdown_then_guest_close() {
    let mut g = Guest::new("hostfirst");
    let (host, s) = g.host_connect(7);
    // The client is done writing: the guest hears SHUTDOWN(send).
    host.shutdown(Shutdown::Write).unwrap();
    let (h, _) = g.recv_op(OP_SHUTDOWN);
    assert_eq!(h.flags, SHUTDOWN_SEND);
    assert!(s.owns(&h));
    // The guest closes (SHUTDOWN both): RST, and the client sees EOF.
    let mut sh = s.hdr(OP_SHUTDOWN);
    sh.flags = SHUTDOWN_SEND | SHUTDOWN_RCV;
    g.send(&sh);
    g.recv_op(OP_RST);
    let mut host = host;
    assert_closed_without_reply(&mut host);
    assert_eq!(g.muxer_streams(), 0);
}

#[test]
fn data_sent_right_after_the_connect_line_is_kept() {
    let mut g = Guest::new("pipelined");
    let mut host = UnixStream::connect(g.path()).unwrap();
    host.set_read_timeout(Some(WAIT)).unwrap();
    host.write_all(b"CONNECT 1978\nEARLY").unwrap();
    let (req, _) = g.recv_op(OP_REQUEST);
    let mut s = GStream::new(1978, req.src_port);
    s.learn(&req);
    g.send(&s.hdr(OP_RESPONSE));
    assert_eq!(read_line(&mut host), format!("OK {}\n", req.src_port));
    let (h, p) = g.recv_op(OP_RW);
    assert!(s.owns(&h));
    assert_eq!(p, b"EARLY");
}

#[test]
fn guest_refusal_closes_the_client_without_reply() {
    let mut g = Guest::new("refused");
    let mut host = UnixStream::connect(g.path()).unwrap();
    host.set_read_timeout(Some(WAIT)).unwrap();
    host.write_all(b"CONNECT 4242\n").unwrap();
    let (req, _) = g.recv_op(OP_REQUEST);
    let s = GStream::new(4242, req.src_port);
    g.send(&s.hdr(OP_RST));
    assert_closed_without_reply(&mut host);
    wait_until("stream removed", || g.muxer_streams() == 0);
    assert_eq!(g.bridge.stats().streams, 0);
    // Each connection gets its own host port.
    let mut host2 = UnixStream::connect(g.path()).unwrap();
    host2.write_all(b"CONNECT 4242\n").unwrap();
    let (req2, _) = g.recv_op(OP_REQUEST);
    assert_ne!(req2.src_port, req.src_port);
}

#[test]
fn malformed_connect_lines_are_closed() {
    let mut g = Guest::new("badline");
    for line in [
        &b"CONNECT\n"[..],
        b"CONNECT x\n",
        b"HELLO 1\n",
        b"CONNECT 99999999999\n",
        &[b'A'; 40],
    ] {
        let mut host = UnixStream::connect(g.path()).unwrap();
        host.set_read_timeout(Some(WAIT)).unwrap();
        host.write_all(line).unwrap();
        assert_closed_without_reply(&mut host);
    }
    g.expect_quiet(Duration::from_millis(50));
    wait_until("all closed", || g.muxer_streams() == 0);
}

#[test]
fn connect_timeouts() {
    let mut g = Guest::with_timeout("timeouts", Duration::from_millis(200));
    // No line at all.
    let mut silent = UnixStream::connect(g.path()).unwrap();
    silent.set_read_timeout(Some(WAIT)).unwrap();
    let t = Instant::now();
    assert_closed_without_reply(&mut silent);
    assert!(
        t.elapsed() >= Duration::from_millis(150),
        "{:?}",
        t.elapsed()
    );
    // A line, but the guest never answers: closed, and the guest gets RST.
    let mut host = UnixStream::connect(g.path()).unwrap();
    host.set_read_timeout(Some(WAIT)).unwrap();
    host.write_all(b"CONNECT 5\n").unwrap();
    let (req, _) = g.recv_op(OP_REQUEST);
    assert_closed_without_reply(&mut host);
    let (rst, _) = g.recv_op(OP_RST);
    assert_eq!((rst.src_port, rst.dst_port), (req.src_port, 5));
    // A late RESPONSE for it is answered with RST.
    let s = GStream::new(5, req.src_port);
    g.send(&s.hdr(OP_RESPONSE));
    g.recv_op(OP_RST);
    assert_eq!(g.muxer_streams(), 0);
}

#[test]
fn guest_initiated_connect() {
    let mut g = Guest::new("guestconn");
    let listener = UnixListener::bind(format!("{}_5000", g.path().display())).unwrap();
    let mut s = GStream::new(1050, 5000);
    g.send(&s.hdr(OP_REQUEST));
    let (resp, _) = g.recv_op(OP_RESPONSE);
    assert!(s.owns(&resp));
    assert_eq!((resp.buf_alloc, resp.fwd_cnt), (BUF_ALLOC, 0));
    s.learn(&resp);
    let (mut host, _) = listener.accept().unwrap();
    host.set_read_timeout(Some(WAIT)).unwrap();
    assert_eq!(g.bridge.stats().streams, 1);

    g.send_rw(&mut s, b"ping");
    assert_eq!(read_exact_n(&mut host, 4), b"ping");
    host.write_all(b"pong").unwrap();
    let (h, p) = g.recv_op(OP_RW);
    assert!(s.owns(&h));
    assert_eq!(p, b"pong");

    // Host closes: SHUTDOWN(send) to the guest; the guest closes: RST.
    drop(host);
    let (h, _) = g.recv_op(OP_SHUTDOWN);
    assert_eq!(h.flags, SHUTDOWN_SEND);
    let mut sh = s.hdr(OP_SHUTDOWN);
    sh.flags = SHUTDOWN_SEND | SHUTDOWN_RCV;
    g.send(&sh);
    g.recv_op(OP_RST);
    assert_eq!(g.muxer_streams(), 0);

    // Nobody listens on port 6000: RST.
    let s2 = GStream::new(1051, 6000);
    g.send(&s2.hdr(OP_REQUEST));
    let (h, _) = g.recv_op(OP_RST);
    assert!(s2.owns(&h));
    assert_eq!(g.muxer_streams(), 0);
}

#[test]
fn guest_writes_after_host_close_reset_the_stream() {
    let mut g = Guest::new("epipe");
    let (host, mut s) = g.host_connect(9);
    drop(host);
    let (h, _) = g.recv_op(OP_SHUTDOWN);
    assert_eq!(h.flags, SHUTDOWN_SEND);
    // The Unix side is gone for good: writing fails, the stream is reset.
    g.send_rw(&mut s, b"anyone?");
    g.recv_op(OP_RST);
    assert_eq!(g.muxer_streams(), 0);
    // RST for a stream that no longer exists is ignored.
    g.send(&s.hdr(OP_RST));
    g.expect_quiet(Duration::from_millis(30));
}

/// Guest → host: the guest honours our credit; the host reads slowly at
/// first, then not at all, then everything. What the VMM holds never
/// exceeds one stream's credit, and every byte arrives in order.
#[test]
fn guest_to_host_bulk_is_bounded_and_intact() {
    let mut g = Guest::new("g2h");
    let (host, mut s) = g.host_connect(1978);
    let total: usize = if cfg!(debug_assertions) {
        16 << 20
    } else {
        256 << 20
    };
    let reader = std::thread::spawn(move || {
        let mut host = host;
        let mut got = 0usize;
        let mut buf = vec![0u8; 1 << 16];
        let mut hash = 0u64;
        // Stall a little at first so the VMM has to buffer.
        std::thread::sleep(Duration::from_millis(100));
        while got < total {
            let n = host.read(&mut buf).unwrap();
            assert!(n > 0, "early EOF at {got}");
            for &b in &buf[..n] {
                hash = hash.wrapping_mul(1_000_003).wrapping_add(u64::from(b));
            }
            got += n;
        }
        hash
    });
    let chunk = pattern(64 * 1024, 7);
    let mut expect = 0u64;
    let mut sent = 0usize;
    let mut max_buffered = 0usize;
    while sent < total {
        while let Some((h, _)) = g.try_recv() {
            assert!(s.owns(&h) && h.op == OP_CREDIT_UPDATE, "{h:?}");
            s.learn(&h);
        }
        let credit = s.credit() as usize;
        if credit == 0 {
            std::thread::sleep(Duration::from_micros(200));
            continue;
        }
        let n = credit.min(chunk.len()).min(total - sent);
        let off = sent % 4096;
        let data = &chunk[off..off + n.min(chunk.len() - off)];
        for &b in data {
            expect = expect.wrapping_mul(1_000_003).wrapping_add(u64::from(b));
        }
        g.send_rw(&mut s, data);
        sent += data.len();
        max_buffered = max_buffered.max(g.buffered());
    }
    assert_eq!(reader.join().unwrap(), expect);
    assert!(max_buffered <= BUF_ALLOC as usize, "{max_buffered}");
    assert!(max_buffered > 0, "the stall made the VMM buffer");
    assert_eq!(g.bridge.stats().bytes_to_host, total as u64);
}

/// A guest that ignores the credit is reset; the VMM's buffer stays
/// bounded while the Unix peer does not read.
#[test]
fn guest_overrunning_credit_is_reset() {
    let mut g = Guest::new("overrun");
    let (host, mut s) = g.host_connect(1978);
    let chunk = pattern(60 * 1024, 1);
    let mut reset = false;
    for _ in 0..200 {
        g.send_rw(&mut s, &chunk);
        assert!(g.buffered() <= BUF_ALLOC as usize);
        let mut saw_rst = false;
        while let Some((h, _)) = g.try_recv() {
            saw_rst |= h.op == OP_RST;
        }
        if saw_rst {
            reset = true;
            break;
        }
    }
    assert!(reset, "never reset");
    assert_eq!(g.muxer_streams(), 0);
    assert_eq!(g.buffered(), 0);
    drop(host);
}

/// Host → guest: the VMM sends only what the guest's credit allows, stops
/// reading when RX buffers run out, and delivers every byte in order.
#[test]
fn host_to_guest_bulk_respects_credit_and_rx_buffers() {
    let mut g = Guest::new("h2g");
    let (host, mut s) = g.host_connect(1978);
    s.buf_alloc = 64 * 1024;
    // Tell the device our (smaller) buffer.
    g.send(&s.hdr(OP_CREDIT_UPDATE));
    let total: usize = 32 << 20;
    let data = pattern(total, 3);
    let writer = {
        let data = data.clone();
        let mut host = host.try_clone().unwrap();
        std::thread::spawn(move || {
            host.write_all(&data).unwrap();
            host.shutdown(Shutdown::Write).unwrap();
        })
    };
    let mut got: Vec<u8> = Vec::with_capacity(total);
    let mut in_flight = 0u32; // received, not yet "consumed" by the app
    let mut stalls = 0;
    loop {
        let (h, p) = g.recv();
        assert!(s.owns(&h), "{h:?}");
        match h.op {
            OP_RW => {
                got.extend_from_slice(&p);
                in_flight += p.len() as u32;
                assert!(in_flight <= s.buf_alloc, "credit exceeded: {in_flight}");
            }
            OP_SHUTDOWN => {
                assert_eq!(h.flags, SHUTDOWN_SEND);
                break;
            }
            // (May cross our CREDIT_UPDATE on the way.)
            OP_CREDIT_REQUEST => {}
            op => panic!("unexpected op {op}"),
        }
        // The app consumes only once the credit is all used: nothing but a
        // CREDIT_REQUEST may come meanwhile.
        if in_flight == s.buf_alloc {
            if stalls < 3 {
                stalls += 1;
                std::thread::sleep(Duration::from_millis(10));
                while let Some((h, _)) = g.try_recv() {
                    assert_eq!(h.op, OP_CREDIT_REQUEST, "sent beyond the credit");
                }
            }
            s.fwd_cnt = s.fwd_cnt.wrapping_add(in_flight);
            in_flight = 0;
            g.send(&s.hdr(OP_CREDIT_UPDATE));
        }
    }
    assert!(stalls > 0);
    writer.join().unwrap();
    assert_eq!(got.len(), total);
    assert!(got == data, "data corrupted");
    assert_eq!(g.bridge.stats().bytes_to_guest, total as u64);
    drop(host);
}

/// With RX buffers all used and not given back, the VMM stops reading the
/// socket; buffers posted later are filled.
#[test]
fn rx_exhaustion_pauses_host_reads() {
    let mut g = Guest::new("rxstall");
    let (host, mut s) = g.host_connect(1978);
    // Plenty of credit: only RX buffers limit the device.
    s.buf_alloc = 4 << 20;
    g.send(&s.hdr(OP_CREDIT_UPDATE));
    let total = 1 << 20; // four times what the RX ring holds
    let data = pattern(total, 9);
    let writer = {
        let data = data.clone();
        let mut host = host.try_clone().unwrap();
        std::thread::spawn(move || host.write_all(&data).unwrap())
    };
    // Do not recycle buffers: the device uses every one, then stops.
    let full = g.rx_seen.wrapping_add(RX_N);
    wait_until("RX ring used up", || g.rx.used_idx(g.mem()) == full);
    std::thread::sleep(Duration::from_millis(30));
    assert_eq!(g.rx.used_idx(g.mem()), full, "no more than posted");
    // Drain as a guest would: everything arrives, in order.
    let mut got = Vec::new();
    while got.len() < total {
        let (h, p) = g.recv();
        assert_eq!(h.op, OP_RW);
        got.extend_from_slice(&p);
    }
    writer.join().unwrap();
    assert!(got == data);
    drop(host);
}

#[test]
fn malformed_packets_do_not_hurt() {
    let mut g = Guest::new("malformed");
    let s = GStream::new(1060, 7000);
    let at = TX_BUF;
    // Shorter than a header.
    g.mem().write(at, &[0xff; 10]).unwrap();
    g.send_chain(&[(at, 10, false)]);
    // Only device-writable buffers.
    g.send_chain(&[(at, 64, true)]);
    // Outside RAM, and wrapping the address space.
    g.send_chain(&[(MEM_SIZE - 10, 100, false)]);
    g.send_chain(&[(u64::MAX - 10, 100, false)]);
    // Wrong CIDs: dropped silently.
    let mut h = s.hdr(OP_REQUEST);
    h.src_cid = 5;
    g.send(&h);
    let mut h = s.hdr(OP_REQUEST);
    h.dst_cid = 3;
    g.send(&h);
    g.expect_quiet(Duration::from_millis(30));
    // Wrong type, unknown op, payload on REQUEST, RW to nowhere: RST.
    for f in [
        &(|h: &mut Header| h.kind = 2) as &dyn Fn(&mut Header),
        &|h| h.op = 99,
        &|h| h.len = 4,
        &|h| h.op = OP_RW,
        &|h| h.op = OP_SHUTDOWN,
    ] {
        let mut h = s.hdr(OP_REQUEST);
        f(&mut h);
        let payload = vec![0u8; h.len as usize];
        g.send_packet(&h, &payload, false);
        let (r, _) = g.recv_op(OP_RST);
        assert!(s.owns(&r));
    }
    // RW claiming more payload than the chain carries: RST, and a live
    // stream with it is gone.
    let (_host, st) = g.host_connect(1978);
    let mut h = st.hdr(OP_RW);
    h.len = 100;
    g.send_packet(&h, &[1; 50], true);
    let (r, _) = g.recv_op(OP_RST);
    assert!(st.owns(&r));
    assert_eq!(g.muxer_streams(), 0);
    // A payload descriptor outside RAM on a live stream: RST.
    let (_host2, st2) = g.host_connect(1979);
    let mut h = st2.hdr(OP_RW);
    h.len = 100;
    g.mem().write(at, &h.to_bytes()).unwrap();
    g.send_chain(&[(at, HEADER_LEN as u32, false), (MEM_SIZE - 50, 100, false)]);
    g.recv_op(OP_RST);
    // Header split over descriptors in odd places still parses.
    let (_host3, st3) = g.host_connect(1980);
    let bytes = st3.hdr(OP_CREDIT_REQUEST).to_bytes();
    g.mem().write(at, &bytes[..5]).unwrap();
    g.mem().write(at + 0x1000, &bytes[5..]).unwrap();
    g.send_chain(&[(at, 5, false), (at + 0x1000, 39, false)]);
    g.recv_op(OP_CREDIT_UPDATE);
    // Indirect descriptors (negotiated) work.
    let table = 0x8000;
    let hdr = st3.hdr(OP_CREDIT_REQUEST).to_bytes();
    g.mem().write(at, &hdr).unwrap();
    SplitRing::write_desc_at(g.mem(), table, 0, at, 44, 0, 0);
    let mem = g.drv.mem.clone();
    assert_eq!(g.rx_refused, 0);
    g.tx.write_desc(
        &mem,
        0,
        table,
        16,
        crate::devices::virtio::queue::DESC_F_INDIRECT,
        0,
    );
    g.tx.publish(&mem, 0);
    g.drv.notify(TXQ as u32);
    g.recv_op(OP_CREDIT_UPDATE);
    assert_eq!(g.drv.status() & DEVICE_NEEDS_RESET, 0);

    // A descriptor loop breaks the queue: DEVICE_NEEDS_RESET, no panic.
    g.tx.write_desc(&mem, 0, at, 44, DESC_F_NEXT, 1);
    g.tx.write_desc(&mem, 1, at, 44, DESC_F_NEXT, 0);
    g.tx.publish(&mem, 0);
    g.drv.notify(TXQ as u32);
    assert_ne!(g.drv.status() & DEVICE_NEEDS_RESET, 0);
    // After a reset the device works again.
    g.drv.write(regs::STATUS, 0);
    assert_eq!(g.muxer_streams(), 0, "streams closed by the reset");
    g.tx = SplitRing::new(TX_N, 0x4000, 0x5000, 0x6000);
    g.rx = SplitRing::new(RX_N, 0x1000, 0x2000, 0x3000);
    g.ev = SplitRing::new(EV_N, 0x7000, 0x7800, 0x7c00);
    g.rx_seen = 0;
    for a in [0x1000u64, 0x2000, 0x3000, 0x4000, 0x5000, 0x6000, 0x7000] {
        g.mem().write(a, &[0u8; 0x1000]).unwrap();
    }
    assert!(g.drv.negotiate(F_VERSION_1));
    g.setup_and_go();
    let (_host4, _) = g.host_connect(1981);
}

#[test]
fn bad_rx_buffers_are_returned_unused() {
    let dir = temp_dir("badrx");
    let bridge = VsockBridge::bind(&dir.join("v.sock")).unwrap();
    let mut g = Guest::bare(bridge, dir);
    assert!(g.drv.negotiate(F_VERSION_1 | F_RING_EVENT_IDX));
    // Buffer 0 cannot hold a header, buffer 1 is outside RAM, buffer 2 is
    // a header split over two descriptors.
    g.setup_with_rx(&[(0, RX_BUF, 10), (1, MEM_SIZE - 20, RX_BUF_LEN)]);
    let (_host, _s) = g.host_connect(1978);
    assert_eq!(g.rx_refused, 2);
    assert_eq!(g.drv.status() & DEVICE_NEEDS_RESET, 0);
}

#[test]
fn flood_without_rx_buffers_is_bounded() {
    let dir = temp_dir("flood");
    let bridge = VsockBridge::bind(&dir.join("v.sock")).unwrap();
    let mut g = Guest::bare(bridge, dir);
    g.tx = SplitRing::new(128, 0x4000, 0x5000, 0x6000);
    assert!(g.drv.negotiate(F_VERSION_1));
    assert!(g.drv.setup_queue(RXQ as u32, &g.rx));
    assert!(g.drv.setup_queue(TXQ as u32, &g.tx));
    assert!(g.drv.setup_queue(EVQ as u32, &g.ev));
    g.drv.driver_ok();
    // No RX buffers posted; the guest sends RW to nowhere, each owed an RST.
    let s = GStream::new(1, 2);
    let mut h = s.hdr(OP_RW);
    h.len = 0;
    const SENT: u16 = 100;
    let mut consumed = 0;
    for _ in 0..SENT {
        let at = TX_BUF;
        g.mem().write(at, &h.to_bytes()).unwrap();
        let mem = g.drv.mem.clone();
        let head = g.tx.add_chain(&mem, &[(at, 44, false)]);
        g.tx.publish(&mem, head);
        g.drv.notify(TXQ as u32);
        consumed = g.tx.used_idx(g.mem());
    }
    // The device stopped taking TX once enough RSTs were waiting.
    assert!(consumed < SENT, "{consumed}");
    // Posting RX buffers lets everything through.
    for i in 0..RX_N {
        g.write_rx_desc(i);
        let mem = g.drv.mem.clone();
        g.rx.publish(&mem, i);
    }
    g.drv.notify(RXQ as u32);
    let mut rsts = 0;
    while rsts < SENT {
        g.recv_op(OP_RST);
        rsts += 1;
    }
    assert_eq!(g.tx.used_idx(g.mem()), SENT);
}

#[test]
fn snapshot_restore_resets_the_transport() {
    let mut g = Guest::new("snap");
    let (_host, _s) = g.host_connect(1978);
    let st = g.drv.transport.state();
    let json = serde_json::to_string(&st).unwrap();
    let back: crate::devices::virtio::mmio::MmioState = serde_json::from_str(&json).unwrap();
    let VirtioDeviceState::Vsock(vs) = &back.device else {
        panic!("not a vsock state");
    };
    assert_eq!(vs.version, VSOCK_STATE_VERSION);
    assert_eq!(vs.guest_cid, GUEST_CID);
    assert!(vs.activated);
    assert_eq!(vs.queues.len(), 3);

    // Restore into a fresh device on another bridge, same guest memory.
    let dir = temp_dir("snap2");
    let bridge2 = VsockBridge::bind(&dir.join("v.sock")).unwrap();
    let before = g.ev.used_idx(g.mem());
    let irq = Arc::new(crate::devices::virtio::test_utils::CountingIrq::default());
    let t = MmioTransport::restore(
        g.drv.mem.clone(),
        Box::new(bridge2.device()),
        irq.clone(),
        &back,
    )
    .unwrap();
    // Nothing is sent while the VMM still restores the interrupt
    // controllers; the reset goes out once it wakes the device.
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(g.ev.used_idx(g.mem()), before, "nothing sent before wake");
    bridge2.wake();
    wait_until("TRANSPORT_RESET", || {
        g.ev.used_idx(g.mem()) == before.wrapping_add(1)
    });
    let (id, len) = g.ev.used_elem(g.mem(), before);
    assert_eq!(len, 4);
    let ev = g.mem().read_obj::<u32>(EV_BUF + 8 * u64::from(id)).unwrap();
    assert_eq!(ev, EVENT_TRANSPORT_RESET);
    assert!(irq.count() > 0);
    assert_eq!(bridge2.shared().lock().stream_count(), 0);
    // The restored device's state is itself restorable.
    let again = t.state();
    assert!(matches!(again.device, VirtioDeviceState::Vsock(_)));

    // Wrong kind of state, or version: refused.
    let mut d = bridge2.device();
    let irq2 = Arc::new(crate::devices::virtio::interrupt::Interrupt::new(
        irq.clone(),
    ));
    let mut bad = vs.clone();
    bad.version = 99;
    assert!(d
        .restore(
            &VirtioDeviceState::Vsock(bad),
            g.drv.mem.clone(),
            irq2.clone()
        )
        .is_err());
    let mut bad = vs.clone();
    bad.acked_features |= 1 << 40;
    assert!(d
        .restore(&VirtioDeviceState::Vsock(bad), g.drv.mem.clone(), irq2)
        .is_err());
    drop(t);
    drop(bridge2);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn many_streams_share_the_device() {
    let mut g = Guest::new("many");
    let mut conns = Vec::new();
    for i in 0..20u32 {
        conns.push(g.host_connect(2000 + i));
    }
    assert_eq!(g.muxer_streams(), 20);
    for (i, (host, _)) in conns.iter_mut().enumerate() {
        host.write_all(format!("stream {i}").as_bytes()).unwrap();
    }
    let mut seen = std::collections::HashMap::new();
    while seen.len() < 20 {
        let (h, p) = g.recv_op(OP_RW);
        seen.entry(h.dst_port).or_insert_with(Vec::new).extend(p);
    }
    for i in 0..20u32 {
        assert_eq!(seen[&(2000 + i)], format!("stream {i}").as_bytes());
    }
    for (i, (host, s)) in conns.iter_mut().enumerate() {
        g.send_rw(s, format!("reply {i}").as_bytes());
        let want = format!("reply {i}");
        assert_eq!(read_exact_n(host, want.len()), want.as_bytes());
    }
    assert_eq!(g.bridge.stats().streams, 20);
}

#[test]
fn stream_limit_refuses_more() {
    let mut g = Guest::new("limit");
    let listener = UnixListener::bind(format!("{}_9", g.path().display())).unwrap();
    listener.set_nonblocking(true).unwrap();
    let mut accepted = Vec::new();
    for i in 0..MAX_STREAMS as u32 {
        let s = GStream::new(10_000 + i, 9);
        g.send(&s.hdr(OP_REQUEST));
        let (h, _) = g.recv_op(OP_RESPONSE);
        assert!(s.owns(&h));
        while let Ok((c, _)) = listener.accept() {
            accepted.push(c);
        }
    }
    assert_eq!(g.muxer_streams(), MAX_STREAMS);
    // The next guest connection and host client are refused.
    let s = GStream::new(20_000, 9);
    g.send(&s.hdr(OP_REQUEST));
    g.recv_op(OP_RST);
    let mut host = UnixStream::connect(g.path()).unwrap();
    host.set_read_timeout(Some(WAIT)).unwrap();
    let _ = host.write_all(b"CONNECT 1\n");
    assert_closed_without_reply(&mut host);
    let _ = Path::new("");
}

#[test]
fn host_connect_before_driver_ok_is_delivered_after() {
    let dir = temp_dir("early");
    let bridge = VsockBridge::bind(&dir.join("v.sock")).unwrap();
    let mut g = Guest::bare(bridge, dir);
    let mut host = UnixStream::connect(g.path()).unwrap();
    host.set_read_timeout(Some(WAIT)).unwrap();
    host.write_all(b"CONNECT 1978\n").unwrap();
    std::thread::sleep(Duration::from_millis(30));
    assert!(g
        .drv
        .negotiate(F_VERSION_1 | F_RING_EVENT_IDX | F_RING_INDIRECT_DESC));
    g.setup_and_go();
    let (req, _) = g.recv_op(OP_REQUEST);
    let mut s = GStream::new(1978, req.src_port);
    s.learn(&req);
    g.send(&s.hdr(OP_RESPONSE));
    assert_eq!(read_line(&mut host), format!("OK {}\n", req.src_port));
    g.send_rw(&mut s, b"late but fine");
    assert_eq!(read_exact_n(&mut host, 13), b"late but fine");
}

/// Snapshots the device and restores it behind a new bridge (dir `name`):
/// the same guest memory goes on, as in a restored VM, not yet woken.
/// Returns the event queue's used index from before the restore.
fn restore_on_a_new_bridge(g: &mut Guest, name: &str) -> u16 {
    let st = g.drv.transport.state();
    let dir = temp_dir(name);
    let bridge2 = VsockBridge::bind(&dir.join("v.sock")).unwrap();
    let before = g.ev.used_idx(g.mem());
    let t = MmioTransport::restore(g.drv.mem.clone(), Box::new(bridge2.device()), g.drv.irq.clone(), &st).unwrap();
    g.drv.transport = t;
    let old = std::mem::replace(&mut g.bridge, bridge2);
    old.stop();
    let _ = std::fs::remove_dir_all(std::mem::replace(&mut g.dir, dir));
    before
}

#[test]
fn after_a_restore_host_streams_wait_until_the_guest_has_handled_the_reset() {
    let mut g = Guest::new("resetack");
    let before = restore_on_a_new_bridge(&mut g, "resetack2");
    g.bridge.wake();
    wait_until("TRANSPORT_RESET", || g.ev.used_idx(g.mem()) == before.wrapping_add(1));
    let (id, _) = g.ev.used_elem(g.mem(), before);

    // A host client now: its REQUEST is held while the guest has not
    // given the event buffer back (it would reset the new stream too).
    let mut host = UnixStream::connect(g.path()).unwrap();
    host.set_read_timeout(Some(WAIT)).unwrap();
    host.write_all(b"CONNECT 1978\n").unwrap();
    g.expect_quiet(Duration::from_millis(100));
    // The guest handled the reset and reposts the buffer: the REQUEST comes.
    let mem = g.drv.mem.clone();
    g.ev.publish(&mem, id as u16);
    g.drv.notify(EVQ as u32);
    let (req, _) = g.recv_op(OP_REQUEST);
    assert_eq!(req.dst_port, 1978);
    let mut s = GStream::new(1978, req.src_port);
    s.learn(&req);
    g.send(&s.hdr(OP_RESPONSE));
    assert_eq!(read_line(&mut host), format!("OK {}\n", req.src_port));
}

#[test]
fn a_host_client_of_a_restored_vm_never_gets_ahead_of_the_reset() {
    // The client connects before the vCPUs run (wake), so its REQUEST and
    // the TRANSPORT_RESET are due in the same pump: the reset must go
    // first and the REQUEST wait for the guest to have handled it, or the
    // guest would reset the new stream on its side only.
    let mut g = Guest::new("resetrace");
    let before = restore_on_a_new_bridge(&mut g, "resetrace2");
    let mut host = UnixStream::connect(g.path()).unwrap();
    host.set_read_timeout(Some(WAIT)).unwrap();
    host.write_all(b"CONNECT 1978\n").unwrap();
    g.expect_quiet(Duration::from_millis(100));
    assert_eq!(g.ev.used_idx(g.mem()), before, "no reset before wake");
    g.bridge.wake();
    wait_until("TRANSPORT_RESET", || g.ev.used_idx(g.mem()) == before.wrapping_add(1));
    g.expect_quiet(Duration::from_millis(100));
    let (id, _) = g.ev.used_elem(g.mem(), before);
    let mem = g.drv.mem.clone();
    g.ev.publish(&mem, id as u16);
    g.drv.notify(EVQ as u32);
    let (req, _) = g.recv_op(OP_REQUEST);
    assert_eq!(req.dst_port, 1978);
}

#[test]
fn a_restore_keeps_allocating_host_ports_where_the_source_stopped() {
    let mut g = Guest::new("ports");
    let (_h1, s1) = g.host_connect(1978);
    let st = g.drv.transport.state();
    let VirtioDeviceState::Vsock(vs) = &st.device else { panic!("not vsock") };
    assert_eq!(vs.next_host_port, Some(s1.hport + 1));
    // A state from before the field existed reads as "start at the first port".
    let json = serde_json::to_string(vs).unwrap().replace(&format!(",\"next_host_port\":{}", s1.hport + 1), "");
    let old: VsockState = serde_json::from_str(&json).unwrap();
    assert_eq!(old.next_host_port, None);
}
