//! The virtio-vsock packet header (struct virtio_vsock_hdr, 44 bytes,
//! packed, little endian) and the checks a packet from the guest must
//! pass before anything acts on it.

use super::{
    GUEST_CID, HOST_CID, OP_CREDIT_REQUEST, OP_CREDIT_UPDATE, OP_REQUEST, OP_RESPONSE, OP_RST,
    OP_RW, OP_SHUTDOWN, TYPE_STREAM,
};

pub const HEADER_LEN: usize = 44;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Header {
    pub src_cid: u64,
    pub dst_cid: u64,
    pub src_port: u32,
    pub dst_port: u32,
    pub len: u32,
    pub kind: u16,
    pub op: u16,
    pub flags: u32,
    pub buf_alloc: u32,
    pub fwd_cnt: u32,
}

/// Why a packet from the guest is not acted upon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalid {
    /// src_cid is not the guest's, or dst_cid not the host's: dropped
    /// without an answer (there is nobody sensible to answer).
    Cid,
    /// Not a stream packet: answered with RST.
    Type,
    /// An operation this device does not know: answered with RST.
    Op,
    /// `len` larger than the chain carries, or payload on a packet that
    /// must have none: answered with RST.
    Len,
}

impl Invalid {
    /// Whether the sender gets an RST (never in answer to an RST).
    pub fn answer_with_rst(self) -> bool {
        matches!(self, Invalid::Type | Invalid::Op | Invalid::Len)
    }
}

fn u16_at(b: &[u8; HEADER_LEN], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8; HEADER_LEN], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8; HEADER_LEN], at: usize) -> u64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(v)
}

impl Header {
    pub fn from_bytes(b: &[u8; HEADER_LEN]) -> Self {
        Self {
            src_cid: u64_at(b, 0),
            dst_cid: u64_at(b, 8),
            src_port: u32_at(b, 16),
            dst_port: u32_at(b, 20),
            len: u32_at(b, 24),
            kind: u16_at(b, 28),
            op: u16_at(b, 30),
            flags: u32_at(b, 32),
            buf_alloc: u32_at(b, 36),
            fwd_cnt: u32_at(b, 40),
        }
    }

    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..8].copy_from_slice(&self.src_cid.to_le_bytes());
        b[8..16].copy_from_slice(&self.dst_cid.to_le_bytes());
        b[16..20].copy_from_slice(&self.src_port.to_le_bytes());
        b[20..24].copy_from_slice(&self.dst_port.to_le_bytes());
        b[24..28].copy_from_slice(&self.len.to_le_bytes());
        b[28..30].copy_from_slice(&self.kind.to_le_bytes());
        b[30..32].copy_from_slice(&self.op.to_le_bytes());
        b[32..36].copy_from_slice(&self.flags.to_le_bytes());
        b[36..40].copy_from_slice(&self.buf_alloc.to_le_bytes());
        b[40..44].copy_from_slice(&self.fwd_cnt.to_le_bytes());
        b
    }

    /// A host → guest packet on the stream (host `local`, guest `peer`).
    pub fn to_guest(op: u16, local: u32, peer: u32) -> Self {
        Self {
            src_cid: HOST_CID,
            dst_cid: GUEST_CID,
            src_port: local,
            dst_port: peer,
            kind: TYPE_STREAM,
            op,
            ..Self::default()
        }
    }

    /// The RST answering `self` (a guest packet): ports swapped, no credit.
    pub fn rst_reply(&self) -> Self {
        Self::to_guest(OP_RST, self.dst_port, self.src_port)
    }

    /// Checks a packet from the guest whose chain holds `payload_avail`
    /// readable bytes after the header.
    pub fn validate_from_guest(&self, payload_avail: u64) -> Result<(), Invalid> {
        if self.src_cid != GUEST_CID || self.dst_cid != HOST_CID {
            return Err(Invalid::Cid);
        }
        if self.kind != TYPE_STREAM {
            return Err(Invalid::Type);
        }
        match self.op {
            OP_RW => {
                if u64::from(self.len) > payload_avail {
                    return Err(Invalid::Len);
                }
            }
            OP_REQUEST | OP_RESPONSE | OP_RST | OP_SHUTDOWN | OP_CREDIT_UPDATE
            | OP_CREDIT_REQUEST => {
                if self.len != 0 {
                    return Err(Invalid::Len);
                }
            }
            _ => return Err(Invalid::Op),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Header {
        Header {
            src_cid: GUEST_CID,
            dst_cid: HOST_CID,
            src_port: 0x1234_5678,
            dst_port: 1978,
            len: 10,
            kind: TYPE_STREAM,
            op: OP_RW,
            flags: 0,
            buf_alloc: 0x40000,
            fwd_cnt: 0xdead_beef,
        }
    }

    #[test]
    fn header_layout_round_trips() {
        let h = sample();
        let b = h.to_bytes();
        // Field offsets of struct virtio_vsock_hdr.
        assert_eq!(&b[0..8], &3u64.to_le_bytes());
        assert_eq!(&b[8..16], &2u64.to_le_bytes());
        assert_eq!(&b[16..20], &0x1234_5678u32.to_le_bytes());
        assert_eq!(&b[20..24], &1978u32.to_le_bytes());
        assert_eq!(&b[24..28], &10u32.to_le_bytes());
        assert_eq!(&b[28..30], &1u16.to_le_bytes());
        assert_eq!(&b[30..32], &5u16.to_le_bytes());
        assert_eq!(&b[36..40], &0x40000u32.to_le_bytes());
        assert_eq!(&b[40..44], &0xdead_beefu32.to_le_bytes());
        assert_eq!(Header::from_bytes(&b), h);
    }

    #[test]
    fn validation() {
        let h = sample();
        assert_eq!(h.validate_from_guest(10), Ok(()));
        assert_eq!(h.validate_from_guest(100), Ok(()));
        assert_eq!(h.validate_from_guest(9), Err(Invalid::Len));
        let bad = |f: &dyn Fn(&mut Header)| {
            let mut x = sample();
            f(&mut x);
            x.validate_from_guest(1 << 20)
        };
        assert_eq!(bad(&|h| h.src_cid = 2), Err(Invalid::Cid));
        assert_eq!(bad(&|h| h.src_cid = u64::MAX), Err(Invalid::Cid));
        assert_eq!(bad(&|h| h.dst_cid = 3), Err(Invalid::Cid));
        assert_eq!(bad(&|h| h.kind = 2), Err(Invalid::Type));
        assert_eq!(bad(&|h| h.op = 0), Err(Invalid::Op));
        assert_eq!(bad(&|h| h.op = 8), Err(Invalid::Op));
        assert_eq!(bad(&|h| h.op = OP_REQUEST), Err(Invalid::Len));
        assert_eq!(
            bad(&|h| {
                h.op = OP_SHUTDOWN;
                h.len = 0
            }),
            Ok(())
        );
        assert!(Invalid::Type.answer_with_rst());
        assert!(!Invalid::Cid.answer_with_rst());
    }

    #[test]
    fn rst_reply_swaps_ports() {
        let r = sample().rst_reply();
        assert_eq!((r.src_cid, r.dst_cid), (HOST_CID, GUEST_CID));
        assert_eq!((r.src_port, r.dst_port), (1978, 0x1234_5678));
        assert_eq!(
            (r.op, r.kind, r.len, r.buf_alloc),
            (OP_RST, TYPE_STREAM, 0, 0)
        );
    }
}
