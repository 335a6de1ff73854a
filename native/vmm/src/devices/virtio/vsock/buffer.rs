//! `ByteRing`: a fixed-capacity FIFO of bytes, for guest bytes the Unix
//! side would not take yet. Its capacity is the credit the stream
//! advertised, so it can never need to grow; the storage is allocated on
//! first use and kept for the stream's life (no allocation per packet).

use super::sg::{self, IoVecs};
use crate::devices::virtio::queue::Descriptor;
use crate::memory::{GuestMemory, OutOfBounds};

pub struct ByteRing {
    buf: Vec<u8>,
    cap: usize,
    head: usize,
    len: usize,
}

impl ByteRing {
    pub fn new(cap: usize) -> Self {
        Self {
            buf: Vec::new(),
            cap,
            head: 0,
            len: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn free(&self) -> usize {
        self.cap - self.len
    }

    /// Bytes of storage held (0 until first used).
    #[cfg(test)]
    pub fn allocated(&self) -> usize {
        self.buf.len()
    }

    /// The free space as (start, len) pieces of `buf`, in order.
    fn tail_pieces(&self, n: usize) -> [(usize, usize); 2] {
        let tail = (self.head + self.len) % self.cap.max(1);
        let first = n.min(self.cap - tail);
        [(tail, first), (0, n - first)]
    }

    /// Appends bytes `[start, start+n)` of the guest stream `descs`. The
    /// caller checks `n <= free()`. On a memory error nothing is appended.
    pub fn push_guest(
        &mut self,
        mem: &GuestMemory,
        descs: &[Descriptor],
        start: u64,
        n: usize,
    ) -> Result<(), OutOfBounds> {
        debug_assert!(n <= self.free());
        if n == 0 {
            return Ok(());
        }
        if self.buf.is_empty() {
            self.buf = vec![0; self.cap];
        }
        let mut at = start;
        for (off, len) in self.tail_pieces(n) {
            sg::read_bytes(mem, descs, at, &mut self.buf[off..off + len])?;
            at += len as u64;
        }
        self.len += n;
        Ok(())
    }

    /// Appends `data` (at most `free()` bytes of it); returns how many.
    #[cfg(test)]
    pub fn push(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.free());
        if n == 0 {
            return 0;
        }
        if self.buf.is_empty() {
            self.buf = vec![0; self.cap];
        }
        let mut done = 0;
        for (off, len) in self.tail_pieces(n) {
            self.buf[off..off + len].copy_from_slice(&data[done..done + len]);
            done += len;
        }
        self.len += n;
        n
    }

    /// Points `iov` at the queued bytes, oldest first (at most two pieces).
    /// The iovecs are valid until the ring is next modified.
    pub fn fill_iovecs(&mut self, iov: &mut IoVecs) {
        iov.clear();
        if self.len == 0 {
            return;
        }
        let first = self.len.min(self.cap - self.head);
        let base = self.buf.as_mut_ptr();
        // SAFETY: head + first <= cap = buf.len(), and first..len wraps to
        // the start of buf; both ranges are inside the allocation.
        unsafe {
            iov.push_raw(base.add(self.head), first);
            iov.push_raw(base, self.len - first);
        }
    }

    /// Drops the `n` oldest bytes (written out).
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.len);
        self.head = (self.head + n) % self.cap.max(1);
        self.len -= n;
        if self.len == 0 {
            self.head = 0;
        }
    }

    /// The queued bytes, for tests.
    #[cfg(test)]
    pub fn contents(&self) -> Vec<u8> {
        (0..self.len)
            .map(|i| self.buf[(self.head + i) % self.cap])
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_and_never_exceeds_capacity() {
        let mut r = ByteRing::new(8);
        assert_eq!(r.allocated(), 0);
        assert_eq!(r.push(b"abcdef"), 6);
        r.consume(4);
        assert_eq!(r.push(b"ghijklmnop"), 6, "only the free space");
        assert_eq!(r.contents(), b"efghijkl");
        assert_eq!(r.free(), 0);
        let mut iov = IoVecs::new();
        r.fill_iovecs(&mut iov);
        assert_eq!(iov.as_slice().len(), 2);
        assert_eq!(iov.bytes(), 8);
        r.consume(5);
        assert_eq!(r.contents(), b"jkl");
        r.consume(100);
        assert!(r.is_empty());
        assert_eq!(r.allocated(), 8);
    }

    #[test]
    fn takes_bytes_from_guest_chains() {
        let mem = GuestMemory::new(0x10000).unwrap();
        mem.write(0x100, b"0123").unwrap();
        mem.write(0x200, b"4567").unwrap();
        let descs = [
            Descriptor {
                addr: 0x100,
                len: 4,
                writable: false,
            },
            Descriptor {
                addr: 0x200,
                len: 4,
                writable: false,
            },
        ];
        let mut r = ByteRing::new(6);
        r.push(b"xx");
        r.consume(2);
        r.push_guest(&mem, &descs, 2, 5).unwrap();
        assert_eq!(r.contents(), b"23456");
        r.push_guest(&mem, &descs, 7, 1).unwrap();
        assert_eq!(r.contents(), b"234567");
        // Past the chain: nothing appended.
        let mut r2 = ByteRing::new(6);
        assert!(r2.push_guest(&mem, &descs, 6, 3).is_err());
        assert!(r2.is_empty());
    }
}
