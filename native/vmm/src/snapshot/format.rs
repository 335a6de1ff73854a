//! `state.vmstate`: a 32-byte header (magic, format version, body length,
//! CRC-32 of the body) and a JSON body, the `Snapshot` below. The header
//! lets a restore refuse a truncated, garbled or newer file before it
//! builds anything (docs/vmstate.md, "State file").

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::crc32::crc32;
use crate::devices::serial::SerialState;
use crate::devices::virtio::mmio::MmioState;
use crate::vcpu_state::VcpuState;
use crate::vm::VmState;

pub const MAGIC: &[u8; 8] = b"STASISVM";
pub const FORMAT_VERSION: u32 = 1;
pub const HEADER_LEN: usize = 32;
/// A state file is a few hundred KiB; anything near this is not ours.
pub const MAX_BODY_LEN: u64 = 64 << 20;

pub const STATE_FILE: &str = "state.vmstate";
pub const MEMORY_FILE: &str = "memory.img";

pub fn disk_file(index: usize) -> String {
    format!("disk-{index}.img")
}

/// The whole machine at the moment of the snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub machine: MachineInfo,
    pub vcpus: Vec<VcpuState>,
    pub vm: VmState,
    pub serials: Vec<SerialState>,
    /// Virtio-mmio slots in slot order.
    pub virtio: Vec<VirtioSlot>,
    /// Every `--disk`, in order.
    pub disks: Vec<DiskRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachineInfo {
    /// The stasis-vmm version that wrote the file (diagnostic).
    pub vmm_version: String,
    /// "hardware" or "pvm": what ran the guest.
    pub backend: String,
    pub cpus: u32,
    /// Guest RAM in bytes (the length of `memory.img`).
    pub memory_bytes: u64,
    /// The kernel command line the guest booted with (diagnostic).
    pub cmdline: String,
    /// Milliseconds since the epoch when the vCPUs stopped.
    pub taken_at_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SlotDevice {
    /// `--disk` number `index`.
    Disk { index: usize },
    Vsock,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VirtioSlot {
    pub device: SlotDevice,
    pub mmio: MmioState,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskRecord {
    pub read_only: bool,
    pub size: u64,
    /// Read-only disks: `sparse::fingerprint` of the file the guest used.
    pub fingerprint: Option<u32>,
    /// Writable disks: the copy's file name in the snapshot directory.
    pub file: Option<String>,
}

/// Writes `snap` to `path` (header + body) and returns the file's size.
pub fn write(path: &Path, snap: &Snapshot) -> io::Result<u64> {
    let body = serde_json::to_vec(snap).map_err(io::Error::other)?;
    let mut header = [0u8; HEADER_LEN];
    header[..8].copy_from_slice(MAGIC);
    header[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    header[16..24].copy_from_slice(&(body.len() as u64).to_le_bytes());
    header[24..28].copy_from_slice(&crc32(&body).to_le_bytes());
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    f.write_all(&header)?;
    f.write_all(&body)?;
    Ok((HEADER_LEN + body.len()) as u64)
}

/// Why a state file was refused.
#[derive(Debug)]
pub enum ReadError {
    Io(io::Error),
    /// Not a state file, cut short, or damaged.
    Invalid(String),
    /// A format this build does not read.
    Version(u32),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Io(e) => write!(f, "cannot read it: {e}"),
            Self::Invalid(m) => f.write_str(m),
            Self::Version(v) => write!(
                f,
                "it is in format {v}; this stasis-vmm reads format {FORMAT_VERSION} (restore with the stasis version that wrote it)"
            ),
        }
    }
}

pub fn read(path: &Path) -> Result<Snapshot, ReadError> {
    let mut f = File::open(path).map_err(ReadError::Io)?;
    let len = f.metadata().map_err(ReadError::Io)?.len();
    let invalid = |m: &str| ReadError::Invalid(m.to_string());
    if len < HEADER_LEN as u64 {
        return Err(invalid("it is shorter than the state file header (truncated?)"));
    }
    let mut header = [0u8; HEADER_LEN];
    f.read_exact(&mut header).map_err(ReadError::Io)?;
    if &header[..8] != MAGIC {
        return Err(invalid("it is not a stasis state file (bad magic)"));
    }
    let version = u32::from_le_bytes(header[8..12].try_into().expect("4 bytes"));
    if version != FORMAT_VERSION {
        return Err(ReadError::Version(version));
    }
    let body_len = u64::from_le_bytes(header[16..24].try_into().expect("8 bytes"));
    if body_len > MAX_BODY_LEN || body_len != len - HEADER_LEN as u64 {
        return Err(ReadError::Invalid(format!(
            "its header announces {body_len} bytes of state but {} follow (truncated or damaged)",
            len - HEADER_LEN as u64
        )));
    }
    let mut body = Vec::with_capacity(body_len as usize);
    f.read_to_end(&mut body).map_err(ReadError::Io)?;
    let want = u32::from_le_bytes(header[24..28].try_into().expect("4 bytes"));
    if crc32(&body) != want {
        return Err(invalid("its checksum does not match (the file is damaged)"));
    }
    serde_json::from_slice(&body).map_err(|e| ReadError::Invalid(format!("its contents do not parse: {e}")))
}
