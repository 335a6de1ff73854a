//! virtio-blk behind the virtio-mmio transport, driven the way a guest
//! driver would: register writes for the handshake, rings in guest memory.

use std::sync::Arc;

use super::*;
use crate::devices::virtio::interrupt::{INT_CONFIG, INT_USED_RING};
use crate::devices::virtio::mmio::{regs, MmioState, MmioTransport};
use crate::devices::virtio::queue::{DESC_F_INDIRECT, DESC_F_NEXT, DESC_F_WRITE};
use crate::devices::virtio::status::*;
use crate::devices::virtio::test_utils::{CountingIrq, SplitRing, TempFile, TestDriver};
use crate::devices::virtio::{
    RestoreError, VirtioDevice, VirtioDeviceState, F_RING_EVENT_IDX, F_RING_INDIRECT_DESC,
    F_VERSION_1,
};
use crate::devices::BusDevice;

const MEM_SIZE: u64 = 0x40_0000;
const RING_SIZE: u16 = 16;
const HDR: u64 = 0x1_0000;
const STATUS_AT: u64 = 0x1_1000;
const DATA: u64 = 0x2_0000;
const TABLE: u64 = 0x8000;
const DISK_SECTORS: u64 = 64;

fn disk_pattern(sectors: u64) -> Vec<u8> {
    (0..sectors * SECTOR_SIZE)
        .map(|i| (i * 7 + i / 512) as u8)
        .collect()
}

struct Harness {
    drv: TestDriver,
    ring: SplitRing,
    disk: TempFile,
}

impl Harness {
    /// A disk of DISK_SECTORS, a driver that accepted `features`, queue 0
    /// set up, DRIVER_OK.
    fn with_features(read_only: bool, features: impl FnOnce(u64) -> u64) -> Self {
        let disk = TempFile::with_contents(&disk_pattern(DISK_SECTORS));
        let mut h = Self::bare(disk, read_only);
        let offered = h.drv.device_features();
        assert!(h.drv.negotiate(features(offered)));
        assert!(h.drv.setup_queue(0, &h.ring));
        h.drv.driver_ok();
        assert_eq!(
            h.drv.status(),
            ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK
        );
        h
    }

    fn new(read_only: bool) -> Self {
        Self::with_features(read_only, |offered| offered)
    }

    /// Transport and device only; no handshake yet.
    fn bare(disk: TempFile, read_only: bool) -> Self {
        let block = Block::new(disk.path(), read_only).unwrap();
        let drv = TestDriver::new(MEM_SIZE, Box::new(block));
        Self {
            drv,
            ring: SplitRing::new(RING_SIZE, 0x1000, 0x2000, 0x3000),
            disk,
        }
    }

    fn mem(&self) -> &crate::memory::GuestMemory {
        &self.drv.mem
    }

    fn write_header(&self, at: u64, kind: u32, sector: u64) {
        let mut h = [0u8; 16];
        h[0..4].copy_from_slice(&kind.to_le_bytes());
        h[8..16].copy_from_slice(&sector.to_le_bytes());
        self.mem().write(at, &h).unwrap();
    }

    /// Submits header + `data` buffers + status as a direct chain, notifies,
    /// and returns (status byte, used len).
    fn request(&mut self, kind: u32, sector: u64, data: &[(u64, u32, bool)]) -> (u8, u32) {
        self.write_header(HDR, kind, sector);
        self.mem().write(STATUS_AT, &[0xee]).unwrap();
        let mut bufs = vec![(HDR, 16, false)];
        bufs.extend_from_slice(data);
        bufs.push((STATUS_AT, 1, true));
        self.submit(&bufs)
    }

    fn submit(&mut self, bufs: &[(u64, u32, bool)]) -> (u8, u32) {
        let head = self.ring.add_chain(&self.drv.mem, bufs);
        self.ring.publish(&self.drv.mem, head);
        let before = self.ring.used_idx(self.mem());
        self.drv.notify(0);
        self.ring.free_all();
        let after = self.ring.used_idx(self.mem());
        assert_eq!(after, before.wrapping_add(1), "request was not completed");
        let (id, len) = self.ring.used_elem(self.mem(), before);
        assert_eq!(id, u32::from(head));
        let mut status = [0u8];
        self.mem().read(STATUS_AT, &mut status).unwrap();
        (status[0], len)
    }

    fn read_mem(&self, at: u64, len: usize) -> Vec<u8> {
        let mut v = vec![0u8; len];
        self.mem().read(at, &mut v).unwrap();
        v
    }

    fn needs_reset(&mut self) -> bool {
        self.drv.status() & DEVICE_NEEDS_RESET != 0
    }
}

#[test]
fn identity_and_config_registers() {
    let mut h = Harness::new(false);
    assert_eq!(h.drv.read(regs::MAGIC_VALUE), 0x7472_6976);
    assert_eq!(h.drv.read(regs::VERSION), 2);
    assert_eq!(h.drv.read(regs::DEVICE_ID), 2);
    assert_eq!(h.drv.read(regs::VENDOR_ID), regs::VENDOR);
    h.drv.write(regs::QUEUE_SEL, 0);
    assert_eq!(h.drv.read(regs::QUEUE_NUM_MAX), u32::from(QUEUE_SIZE));
    h.drv.write(regs::QUEUE_SEL, 1);
    assert_eq!(h.drv.read(regs::QUEUE_NUM_MAX), 0);
    assert_eq!(h.drv.read(regs::QUEUE_READY), 0);
    assert_eq!(h.drv.read(regs::CONFIG_GENERATION), 0);
    // capacity as two 32-bit reads, then byte-wise; seg_max.
    assert_eq!(h.drv.read(regs::CONFIG), DISK_SECTORS as u32);
    assert_eq!(h.drv.read(regs::CONFIG + 4), 0);
    assert_eq!(h.drv.read(regs::CONFIG + 12), u32::from(QUEUE_SIZE) - 2);
    let mut b = [0u8; 1];
    h.drv.transport.read(regs::CONFIG, &mut b);
    assert_eq!(b[0], DISK_SECTORS as u8);
    // Past the config struct and past the window's end: zeroes, no panic.
    assert_eq!(h.drv.read(regs::CONFIG + 0x200), 0);
    let mut big = [0xffu8; 8];
    h.drv.transport.read(u64::MAX - 3, &mut big);
    assert_eq!(big, [0; 8]);
    // Control registers need aligned 32-bit accesses.
    let mut w = [0xffu8; 2];
    h.drv.transport.read(regs::MAGIC_VALUE, &mut w);
    assert_eq!(w, [0, 0]);
    let mut u = [0xffu8; 4];
    h.drv.transport.read(regs::MAGIC_VALUE + 1, &mut u);
    assert_eq!(u, [0; 4]);
    h.drv.transport.write(regs::STATUS, &[0]); // 1-byte write: ignored, no reset
    assert_ne!(h.drv.status(), 0);
}

#[test]
fn feature_negotiation() {
    let disk = TempFile::with_contents(&disk_pattern(8));
    let mut h = Harness::bare(disk, false);
    let f = h.drv.device_features();
    assert_eq!(
        f,
        F_VERSION_1 | F_RING_INDIRECT_DESC | F_RING_EVENT_IDX | F_SEG_MAX | F_FLUSH
    );
    // A bit the device does not offer: FEATURES_OK refused.
    assert!(!h.drv.negotiate(f | F_RO));
    h.drv.write(regs::STATUS, 0);
    // No VIRTIO_F_VERSION_1: refused (no legacy interface).
    assert!(!h.drv.negotiate(F_FLUSH));
    h.drv.write(regs::STATUS, 0);
    assert!(h.drv.negotiate(F_VERSION_1 | F_FLUSH));
    // DriverFeatures is frozen once FEATURES_OK is set.
    h.drv.write(regs::DRIVER_FEATURES_SEL, 0);
    h.drv.write(regs::DRIVER_FEATURES, 0xffff_ffff);
    assert_eq!(
        h.drv.transport.state().driver_features,
        F_VERSION_1 | F_FLUSH
    );

    let ro = TempFile::with_contents(&disk_pattern(8));
    let mut h = Harness::bare(ro, true);
    assert_ne!(h.drv.device_features() & F_RO, 0);
}

#[test]
fn status_follows_the_handshake_order() {
    let disk = TempFile::with_contents(&disk_pattern(8));
    let mut h = Harness::bare(disk, false);
    // DRIVER without ACKNOWLEDGE, DRIVER_OK without FEATURES_OK: dropped.
    h.drv.write(regs::STATUS, DRIVER);
    assert_eq!(h.drv.status(), 0);
    h.drv.write(regs::STATUS, ACKNOWLEDGE | DRIVER | DRIVER_OK);
    assert_eq!(h.drv.status(), ACKNOWLEDGE | DRIVER);
    // The driver cannot set DEVICE_NEEDS_RESET, nor clear bits.
    h.drv
        .write(regs::STATUS, ACKNOWLEDGE | DRIVER | DEVICE_NEEDS_RESET);
    assert_eq!(h.drv.status(), ACKNOWLEDGE | DRIVER);
    h.drv.write(regs::STATUS, ACKNOWLEDGE);
    assert_eq!(h.drv.status(), ACKNOWLEDGE | DRIVER);
    // Queue registers are closed before FEATURES_OK.
    assert!(!h.drv.setup_queue(0, &h.ring));
    h.drv.write(regs::STATUS, ACKNOWLEDGE | DRIVER | FAILED);
    assert_eq!(h.drv.status(), ACKNOWLEDGE | DRIVER | FAILED);
    h.drv.write(regs::STATUS, 0);
    assert_eq!(h.drv.status(), 0);
}

#[test]
fn reset_clears_queues_and_interrupts() {
    let mut h = Harness::new(false);
    h.request(T_FLUSH, 0, &[]);
    assert_eq!(h.drv.read(regs::INTERRUPT_STATUS), INT_USED_RING);
    h.drv.write(regs::STATUS, 0);
    assert_eq!(h.drv.status(), 0);
    assert_eq!(h.drv.read(regs::INTERRUPT_STATUS), 0);
    assert_eq!(h.drv.read(regs::QUEUE_READY), 0);
    // A notify after reset reaches nothing.
    let head = h
        .ring
        .add_chain(&h.drv.mem, &[(HDR, 16, false), (STATUS_AT, 1, true)]);
    h.ring.publish(&h.drv.mem, head);
    h.drv.notify(0);
    assert_eq!(h.ring.used_idx(h.mem()), 1);
}

#[test]
fn notify_before_driver_ok_is_ignored() {
    let disk = TempFile::with_contents(&disk_pattern(8));
    let mut h = Harness::bare(disk, false);
    let f = h.drv.device_features();
    assert!(h.drv.negotiate(f));
    assert!(h.drv.setup_queue(0, &h.ring));
    h.write_header(HDR, T_FLUSH, 0);
    let head = h
        .ring
        .add_chain(&h.drv.mem, &[(HDR, 16, false), (STATUS_AT, 1, true)]);
    h.ring.publish(&h.drv.mem, head);
    h.drv.notify(0);
    assert_eq!(h.ring.used_idx(h.mem()), 0);
    h.drv.driver_ok();
    h.drv.notify(7); // no such queue
    assert_eq!(h.ring.used_idx(h.mem()), 0);
    h.drv.notify(0);
    assert_eq!(h.ring.used_idx(h.mem()), 1);
}

#[test]
fn bad_queue_setups_are_rejected() {
    let cases: [(&str, SplitRing); 6] = [
        (
            "size not a power of two",
            SplitRing::new(12, 0x1000, 0x2000, 0x3000),
        ),
        (
            "size above QueueNumMax",
            SplitRing::new(512, 0x1000, 0x3000, 0x4000),
        ),
        ("size zero", SplitRing::new(0, 0x1000, 0x2000, 0x3000)),
        (
            "descriptor table outside RAM",
            SplitRing::new(16, MEM_SIZE - 0x80, 0x2000, 0x3000),
        ),
        (
            "used ring outside RAM",
            SplitRing::new(16, 0x1000, 0x2000, 0xffff_ffff_0000),
        ),
        (
            "misaligned descriptor table",
            SplitRing::new(16, 0x1004, 0x2000, 0x3000),
        ),
    ];
    for (what, ring) in cases {
        let disk = TempFile::with_contents(&disk_pattern(8));
        let mut h = Harness::bare(disk, false);
        let f = h.drv.device_features();
        assert!(h.drv.negotiate(f));
        assert!(!h.drv.setup_queue(0, &ring), "{what}");
        assert!(h.needs_reset(), "{what}");
        // DRIVER_OK is refused while the device needs a reset.
        h.drv.driver_ok();
        assert_eq!(h.drv.status() & DRIVER_OK, 0, "{what}");
        // A reset recovers.
        h.drv.write(regs::STATUS, 0);
        let f = h.drv.device_features();
        assert!(h.drv.negotiate(f));
        assert!(h.drv.setup_queue(0, &h.ring), "{what}");
    }
}

#[test]
fn read_request() {
    let mut h = Harness::new(false);
    let (status, len) = h.request(T_IN, 3, &[(DATA, 1024, true)]);
    assert_eq!((status, len), (S_OK, 1025));
    assert_eq!(
        h.read_mem(DATA, 1024),
        disk_pattern(DISK_SECTORS)[3 * 512..5 * 512]
    );
    assert_eq!(h.drv.irq.count(), 1);
    assert_eq!(h.drv.read(regs::INTERRUPT_STATUS), INT_USED_RING);
    h.drv.write(regs::INTERRUPT_ACK, INT_USED_RING);
    assert_eq!(h.drv.read(regs::INTERRUPT_STATUS), 0);
}

#[test]
fn read_scattered_over_many_segments_and_split_header() {
    // Header split 5 + 11 bytes, 132 data segments of 128 bytes (more than
    // one preadv batch; 33 sectors), all in one indirect table.
    const SEGS: u64 = 132;
    const SEG: u64 = 128;
    let mut h = Harness::new(false);
    h.write_header(HDR, T_IN, 1);
    h.mem().write(STATUS_AT, &[0xee]).unwrap();
    let mut entries: Vec<(u64, u32, bool)> = vec![(HDR, 5, false), (HDR + 5, 11, false)];
    for i in 0..SEGS {
        // Reverse order in memory, to prove the stream order is followed.
        entries.push((DATA + (SEGS - 1 - i) * SEG, SEG as u32, true));
    }
    entries.push((STATUS_AT, 1, true));
    for (i, &(addr, len, writable)) in entries.iter().enumerate() {
        let last = i + 1 == entries.len();
        let flags = if writable { DESC_F_WRITE } else { 0 } | if last { 0 } else { DESC_F_NEXT };
        SplitRing::write_desc_at(h.mem(), TABLE, i as u16, addr, len, flags, i as u16 + 1);
    }
    h.ring.write_desc(
        h.mem(),
        0,
        TABLE,
        16 * entries.len() as u32,
        DESC_F_INDIRECT,
        0,
    );
    h.ring.publish(&h.drv.mem, 0);
    h.drv.notify(0);
    assert_eq!(h.ring.used_idx(h.mem()), 1);
    assert_eq!(h.ring.used_elem(h.mem(), 0), (0, (SEGS * SEG) as u32 + 1));
    assert_eq!(h.read_mem(STATUS_AT, 1), [S_OK]);
    let want = disk_pattern(DISK_SECTORS);
    for i in 0..SEGS {
        let got = h.read_mem(DATA + (SEGS - 1 - i) * SEG, SEG as usize);
        let at = (512 + i * SEG) as usize;
        assert_eq!(got, want[at..at + SEG as usize], "segment {i}");
    }
}

#[test]
fn write_request() {
    let mut h = Harness::new(false);
    let payload: Vec<u8> = (0..1024u32).map(|i| (i % 251) as u8).collect();
    h.mem().write(DATA, &payload[..512]).unwrap();
    h.mem().write(DATA + 0x1000, &payload[512..]).unwrap();
    let (status, len) = h.request(
        T_OUT,
        10,
        &[(DATA, 512, false), (DATA + 0x1000, 512, false)],
    );
    assert_eq!((status, len), (S_OK, 1));
    let mut want = disk_pattern(DISK_SECTORS);
    want[10 * 512..12 * 512].copy_from_slice(&payload);
    assert_eq!(h.disk.contents(), want);
}

#[test]
fn flush_get_id_and_unsupported() {
    let mut h = Harness::new(false);
    assert_eq!(h.request(T_FLUSH, 0, &[]), (S_OK, 1));
    h.mem().write(DATA, &[0xaa; 20]).unwrap();
    assert_eq!(h.request(T_GET_ID, 0, &[(DATA, 20, true)]), (S_OK, 21));
    let id = h.read_mem(DATA, 20);
    assert!(id.starts_with(b"stasis-"), "{id:?}");
    assert_eq!(id[19], 0);
    // Stable: the same file gives the same serial.
    let again = Block::new(h.disk.path(), true).unwrap();
    assert_eq!(&again.id()[..], &id[..]);
    // DISCARD (11) and anything unknown: UNSUPP.
    assert_eq!(h.request(11, 0, &[(DATA, 16, false)]), (S_UNSUPP, 1));
    assert_eq!(h.request(0xdead, 0, &[]), (S_UNSUPP, 1));
}

#[test]
fn write_to_read_only_disk_fails() {
    let mut h = Harness::new(true);
    h.mem().write(DATA, &[0x55; 512]).unwrap();
    assert_eq!(h.request(T_OUT, 0, &[(DATA, 512, false)]), (S_IOERR, 1));
    assert_eq!(h.disk.contents(), disk_pattern(DISK_SECTORS));
    // Reads and flushes still work.
    assert_eq!(h.request(T_IN, 0, &[(DATA, 512, true)]).0, S_OK);
    assert_eq!(h.request(T_FLUSH, 0, &[]).0, S_OK);
    assert!(!h.needs_reset());
}

#[test]
fn out_of_range_and_misshapen_transfers_fail() {
    let mut h = Harness::new(false);
    h.mem().write(DATA, &[0x77; 1024]).unwrap();
    let ioerr = [
        (T_IN, DISK_SECTORS, 512u32, true),     // starts at the end
        (T_IN, DISK_SECTORS - 1, 1024, true),   // runs past the end
        (T_OUT, DISK_SECTORS - 1, 1024, false), // likewise, writing
        (T_IN, u64::MAX / 256, 512, true),      // sector * 512 overflows
        (T_IN, u64::MAX, 512, true),
        (T_IN, 0, 100, true), // not whole sectors
        (T_OUT, 0, 513, false),
    ];
    for (kind, sector, len, writable) in ioerr {
        assert_eq!(
            h.request(kind, sector, &[(DATA, len, writable)]).0,
            S_IOERR,
            "{kind} {sector} {len}"
        );
    }
    assert_eq!(h.disk.contents(), disk_pattern(DISK_SECTORS));
    // The last sector itself is fine.
    assert_eq!(
        h.request(T_IN, DISK_SECTORS - 1, &[(DATA, 512, true)]).0,
        S_OK
    );
    assert!(!h.needs_reset());
}

#[test]
fn buffers_outside_ram_fail_the_request_only() {
    let mut h = Harness::new(false);
    // Data straddling the end of RAM, far outside it, and wrapping u64.
    for addr in [MEM_SIZE - 256, 0x1_0000_0000, u64::MAX - 100] {
        assert_eq!(
            h.request(T_IN, 0, &[(addr, 512, true)]).0,
            S_IOERR,
            "{addr:#x}"
        );
        assert_eq!(
            h.request(T_OUT, 0, &[(addr, 512, false)]).0,
            S_IOERR,
            "{addr:#x}"
        );
    }
    // A header outside RAM.
    h.mem().write(STATUS_AT, &[0xee]).unwrap();
    assert_eq!(
        h.submit(&[(MEM_SIZE, 16, false), (STATUS_AT, 1, true)]),
        (S_IOERR, 1)
    );
    // A header that is too short.
    h.write_header(HDR, T_FLUSH, 0);
    assert_eq!(
        h.submit(&[(HDR, 8, false), (STATUS_AT, 1, true)]),
        (S_IOERR, 1)
    );
    assert_eq!(h.disk.contents(), disk_pattern(DISK_SECTORS));
    assert!(!h.needs_reset());
    // Still serving.
    assert_eq!(h.request(T_IN, 0, &[(DATA, 512, true)]).0, S_OK);
}

/// Requests that leave the device unable to answer: DEVICE_NEEDS_RESET, a
/// config interrupt, later notifies ignored, and a reset brings it back.
fn assert_broken_then_recovers(h: &mut Harness) {
    assert!(h.needs_reset());
    assert_ne!(h.drv.read(regs::INTERRUPT_STATUS) & INT_CONFIG, 0);
    let used = h.ring.used_idx(h.mem());
    h.ring.free_all();
    let head = h
        .ring
        .add_chain(&h.drv.mem, &[(HDR, 16, false), (STATUS_AT, 1, true)]);
    h.ring.publish(&h.drv.mem, head);
    h.drv.notify(0);
    assert_eq!(h.ring.used_idx(h.mem()), used);

    h.drv.write(regs::STATUS, 0);
    assert_eq!(h.drv.status(), 0);
    h.mem().write(0x1000, &[0; 0x3000]).unwrap();
    h.ring = SplitRing::new(RING_SIZE, 0x1000, 0x2000, 0x3000);
    let f = h.drv.device_features();
    assert!(h.drv.negotiate(f));
    assert!(h.drv.setup_queue(0, &h.ring));
    h.drv.driver_ok();
    assert_eq!(h.request(T_IN, 0, &[(DATA, 512, true)]), (S_OK, 513));
}

#[test]
fn descriptor_index_out_of_range() {
    let mut h = Harness::new(false);
    h.ring.publish(&h.drv.mem, RING_SIZE + 3); // head outside the table
    h.drv.notify(0);
    assert_broken_then_recovers(&mut h);

    let mut h = Harness::new(false);
    h.write_header(HDR, T_FLUSH, 0);
    h.ring.write_desc(h.mem(), 0, HDR, 16, DESC_F_NEXT, 0xffff); // next outside
    h.ring.publish(&h.drv.mem, 0);
    h.drv.notify(0);
    assert_broken_then_recovers(&mut h);
}

#[test]
fn descriptor_loop() {
    let mut h = Harness::new(false);
    h.write_header(HDR, T_IN, 0);
    h.ring.write_desc(h.mem(), 0, HDR, 16, DESC_F_NEXT, 1);
    h.ring
        .write_desc(h.mem(), 1, DATA, 512, DESC_F_NEXT | DESC_F_WRITE, 2);
    h.ring
        .write_desc(h.mem(), 2, STATUS_AT, 1, DESC_F_NEXT | DESC_F_WRITE, 1);
    h.ring.publish(&h.drv.mem, 0);
    h.drv.notify(0);
    assert_broken_then_recovers(&mut h);
}

#[test]
fn chains_without_a_usable_status_byte() {
    // No writable descriptor at all.
    let mut h = Harness::new(false);
    h.write_header(HDR, T_FLUSH, 0);
    let head = h.ring.add_chain(&h.drv.mem, &[(HDR, 16, false)]);
    h.ring.publish(&h.drv.mem, head);
    h.drv.notify(0);
    assert_broken_then_recovers(&mut h);
    // Status byte outside RAM.
    let mut h = Harness::new(false);
    let head = h
        .ring
        .add_chain(&h.drv.mem, &[(HDR, 16, false), (MEM_SIZE, 1, true)]);
    h.ring.publish(&h.drv.mem, head);
    h.drv.notify(0);
    assert_broken_then_recovers(&mut h);
}

#[test]
fn avail_index_jump_needs_reset() {
    let mut h = Harness::new(false);
    h.ring.avail_idx = 100;
    h.ring.set_avail_idx(h.mem());
    h.drv.notify(0);
    assert_broken_then_recovers(&mut h);
}

#[test]
fn several_requests_one_notify_one_interrupt() {
    let mut h = Harness::new(false);
    for i in 0..3u64 {
        h.write_header(HDR + i * 0x20, T_IN, i);
        let head = h.ring.add_chain(
            &h.drv.mem,
            &[
                (HDR + i * 0x20, 16, false),
                (DATA + i * 0x200, 512, true),
                (STATUS_AT + i, 1, true),
            ],
        );
        h.ring.publish(&h.drv.mem, head);
    }
    h.drv.notify(0);
    assert_eq!(h.ring.used_idx(h.mem()), 3);
    assert_eq!(h.drv.irq.count(), 1);
    assert_eq!(
        h.read_mem(DATA, 3 * 512),
        disk_pattern(DISK_SECTORS)[..3 * 512]
    );
    assert_eq!(h.read_mem(STATUS_AT, 3), [S_OK; 3]);
}

#[test]
fn event_idx_suppresses_interrupts_until_used_event() {
    let mut h = Harness::new(false);
    // First completion always interrupts; then ask for one only at used idx 3.
    h.request(T_FLUSH, 0, &[]);
    assert_eq!(h.drv.irq.count(), 1);
    assert_eq!(h.ring.avail_event(h.mem()), 1);
    h.ring.set_used_event(h.mem(), 2);
    h.request(T_FLUSH, 0, &[]); // used idx 1 -> 2
    assert_eq!(h.drv.irq.count(), 1);
    h.request(T_FLUSH, 0, &[]); // 2 -> 3 crosses used_event
    assert_eq!(h.drv.irq.count(), 2);
    assert_eq!(h.ring.avail_event(h.mem()), 3);
}

#[test]
fn without_event_idx_every_batch_interrupts() {
    let mut h = Harness::with_features(false, |f| f & !(F_RING_EVENT_IDX | F_RING_INDIRECT_DESC));
    h.request(T_FLUSH, 0, &[]);
    h.request(T_FLUSH, 0, &[]);
    assert_eq!(h.drv.irq.count(), 2);
    // avail_event untouched.
    assert_eq!(h.ring.avail_event(h.mem()), 0);
    // Indirect tables are refused when not negotiated.
    h.ring.write_desc(h.mem(), 0, TABLE, 32, DESC_F_INDIRECT, 0);
    h.ring.publish(&h.drv.mem, 0);
    h.drv.notify(0);
    assert!(h.needs_reset());
}

#[test]
fn capacity_rounds_down_and_open_errors_surface() {
    let odd = TempFile::with_contents(&[1u8; 1000]);
    let b = Block::new(odd.path(), false).unwrap();
    assert_eq!(b.capacity(), 1);
    let mut cfg = [0u8; 8];
    b.read_config(0, &mut cfg);
    assert_eq!(u64::from_le_bytes(cfg), 1);
    let tiny = TempFile::with_contents(&[1u8; 100]);
    assert_eq!(Block::new(tiny.path(), true).unwrap().capacity(), 0);
    assert!(Block::new(std::path::Path::new("/nonexistent/stasis-disk"), true).is_err());
}

#[test]
fn snapshot_round_trip_continues_the_queue() {
    let mut h = Harness::new(false);
    assert_eq!(h.request(T_IN, 0, &[(DATA, 512, true)]).0, S_OK);
    assert_eq!(h.request(T_IN, 1, &[(DATA, 512, true)]).0, S_OK);
    let state = h.drv.transport.state();
    let json = serde_json::to_string(&state).unwrap();
    let back: MmioState = serde_json::from_str(&json).unwrap();
    assert_eq!(back, state);
    let VirtioDeviceState::Block(bs) = &back.device else {
        panic!("not a block state");
    };
    assert!(bs.activated);
    assert_eq!(bs.queues[0].next_avail, 2);
    assert_eq!(bs.queues[0].next_used, 2);

    // A new transport and device over the same memory and file.
    let irq = Arc::new(CountingIrq::default());
    let block = Block::new(h.disk.path(), false).unwrap();
    let restored =
        MmioTransport::restore(h.drv.mem.clone(), Box::new(block), irq.clone(), &back).unwrap();
    assert_eq!(restored.state(), state);
    h.drv.transport = restored;
    h.drv.irq = irq;
    assert_eq!(
        h.drv.status(),
        ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK
    );
    assert_eq!(h.request(T_IN, 2, &[(DATA, 512, true)]), (S_OK, 513));
    assert_eq!(
        h.read_mem(DATA, 512),
        disk_pattern(DISK_SECTORS)[1024..1536]
    );
    assert_eq!(h.ring.used_idx(h.mem()), 3);

    // Mismatches are refused, never half-applied.
    let mut bad = back.clone();
    bad.version = 99;
    let b = Block::new(h.disk.path(), false).unwrap();
    let err = MmioTransport::restore(
        h.drv.mem.clone(),
        Box::new(b),
        Arc::new(CountingIrq::default()),
        &bad,
    );
    assert!(matches!(err, Err(RestoreError::Version { .. })));
    let ro = Block::new(h.disk.path(), true).unwrap();
    let err = MmioTransport::restore(
        h.drv.mem.clone(),
        Box::new(ro),
        Arc::new(CountingIrq::default()),
        &back,
    );
    assert!(err.is_err());
    let other = TempFile::with_contents(&disk_pattern(8));
    let b = Block::new(other.path(), false).unwrap();
    let err = MmioTransport::restore(
        h.drv.mem.clone(),
        Box::new(b),
        Arc::new(CountingIrq::default()),
        &back,
    );
    assert!(matches!(err, Err(RestoreError::Mismatch(_))));
    let small = Arc::new(crate::memory::GuestMemory::new(0x2000).unwrap());
    let b = Block::new(h.disk.path(), false).unwrap();
    let err = MmioTransport::restore(small, Box::new(b), Arc::new(CountingIrq::default()), &back);
    assert!(matches!(err, Err(RestoreError::Queue(_))));
}

#[test]
fn snapshot_of_an_idle_device() {
    let disk = TempFile::with_contents(&disk_pattern(8));
    let h = Harness::bare(disk, false);
    let state = h.drv.transport.state();
    let VirtioDeviceState::Block(bs) = &state.device else {
        panic!("not a block state");
    };
    assert!(!bs.activated && bs.queues.is_empty());
    assert_eq!(bs.version, BLOCK_STATE_VERSION);
    let b = Block::new(h.disk.path(), false).unwrap();
    let t = MmioTransport::restore(
        h.drv.mem.clone(),
        Box::new(b),
        Arc::new(CountingIrq::default()),
        &state,
    )
    .unwrap();
    assert_eq!(t.state(), state);
}
