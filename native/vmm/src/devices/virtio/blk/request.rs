//! One virtio-blk request, read from a descriptor chain and carried out.
//!
//! The chain is treated as two byte streams, as virtio 1.x requires (no
//! assumption about how the driver split it into descriptors): the
//! device-readable stream holds the 16-byte header (type, reserved, sector)
//! followed, for OUT, by the data; the device-writable stream holds, for IN
//! and GET_ID, the data, and always ends with the one-byte status.
//!
//! Failures the driver can be told about become a status byte: IOERR for a
//! short header, a buffer outside RAM, a length that is not whole sectors,
//! a range past the end of the disk, a write to a read-only disk or a host
//! I/O error; UNSUPP for an unknown type. Only a chain with no usable status
//! byte is an error for the caller (the queue can no longer be trusted).

use super::disk::Disk;
use super::{ID_BYTES, SECTOR_SIZE, S_IOERR, S_OK, S_UNSUPP, T_FLUSH, T_GET_ID, T_IN, T_OUT};
use crate::devices::virtio::device::DeviceError;
use crate::devices::virtio::queue::{Descriptor, DescriptorChain};
use crate::memory::GuestMemory;

const HEADER_LEN: u64 = 16;

/// Carries out the request in `chain` and writes its status byte. Returns
/// the used length: every device-writable byte up to and including the
/// status, which comes last.
pub(super) fn execute(
    disk: &Disk,
    id: &[u8; ID_BYTES],
    mem: &GuestMemory,
    chain: &DescriptorChain,
) -> Result<u32, DeviceError> {
    let descs = &chain.descriptors;
    // The queue guarantees readable descriptors come first.
    let split = descs.iter().position(|d| d.writable).unwrap_or(descs.len());
    let (readable, writable) = descs.split_at(split);

    let status_desc = writable
        .iter()
        .rev()
        .find(|d| d.len > 0)
        .ok_or(DeviceError::Malformed("no device-writable status byte"))?;
    let status_gpa = status_desc
        .addr
        .checked_add(u64::from(status_desc.len) - 1)
        .filter(|&gpa| mem.contains(gpa, 1))
        .ok_or(DeviceError::Malformed("status byte outside guest RAM"))?;

    let readable_len = total_len(readable);
    let writable_len = total_len(writable);
    // Every buffer is checked whole before any I/O, so a request either
    // touches only guest RAM or does nothing; it also keeps the address
    // arithmetic in `segments` from overflowing.
    let in_ram = descs.iter().all(|d| mem.contains(d.addr, u64::from(d.len)));
    let status = if in_ram {
        let req = Streams {
            readable,
            readable_len,
            writable,
            data_in_len: writable_len - 1,
        };
        run(disk, id, mem, &req)
    } else {
        S_IOERR
    };
    mem.write(status_gpa, &[status])
        .map_err(|_| DeviceError::Malformed("status byte outside guest RAM"))?;
    Ok(u32::try_from(writable_len).unwrap_or(u32::MAX))
}

struct Streams<'a> {
    readable: &'a [Descriptor],
    readable_len: u64,
    writable: &'a [Descriptor],
    /// Device-writable bytes before the status byte.
    data_in_len: u64,
}

fn total_len(descs: &[Descriptor]) -> u64 {
    descs.iter().map(|d| u64::from(d.len)).sum()
}

/// The guest pieces, as (gpa, len), of bytes `[start, start+len)` of the
/// stream formed by `descs`. Every descriptor must already be known to lie
/// inside RAM.
fn segments(descs: &[Descriptor], start: u64, len: u64) -> impl Iterator<Item = (u64, u64)> + '_ {
    let end = start + len;
    let mut pos = 0u64;
    descs.iter().filter_map(move |d| {
        let d_start = pos;
        let d_end = pos + u64::from(d.len);
        pos = d_end;
        let s = start.max(d_start);
        let e = end.min(d_end);
        (s < e).then(|| (d.addr + (s - d_start), e - s))
    })
}

fn run(disk: &Disk, id: &[u8; ID_BYTES], mem: &GuestMemory, req: &Streams<'_>) -> u8 {
    if req.readable_len < HEADER_LEN {
        return S_IOERR;
    }
    let mut header = [0u8; HEADER_LEN as usize];
    let mut filled = 0;
    for (gpa, len) in segments(req.readable, 0, HEADER_LEN) {
        let len = len as usize; // <= 16
        if mem.read(gpa, &mut header[filled..filled + len]).is_err() {
            return S_IOERR;
        }
        filled += len;
    }
    let kind = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    let mut sector = [0u8; 8];
    sector.copy_from_slice(&header[8..16]);
    let sector = u64::from_le_bytes(sector);

    let result = match kind {
        T_IN => {
            let len = req.data_in_len;
            match disk_offset(disk, sector, len) {
                Some(offset) => disk.read_into(mem, segments(req.writable, 0, len), offset),
                None => return S_IOERR,
            }
        }
        T_OUT => {
            if disk.read_only() {
                return S_IOERR;
            }
            let len = req.readable_len - HEADER_LEN;
            match disk_offset(disk, sector, len) {
                Some(offset) => {
                    disk.write_from(mem, segments(req.readable, HEADER_LEN, len), offset)
                }
                None => return S_IOERR,
            }
        }
        T_FLUSH => disk.flush(),
        T_GET_ID => {
            let len = req.data_in_len.min(ID_BYTES as u64);
            let mut done = 0;
            for (gpa, n) in segments(req.writable, 0, len) {
                let n = n as usize; // <= 20
                if mem.write(gpa, &id[done..done + n]).is_err() {
                    return S_IOERR;
                }
                done += n;
            }
            Ok(())
        }
        _ => return S_UNSUPP,
    };
    match result {
        Ok(()) => S_OK,
        Err(_) => S_IOERR,
    }
}

/// Byte offset of a transfer of `len` bytes at `sector`, if it is whole
/// sectors and ends inside the disk.
fn disk_offset(disk: &Disk, sector: u64, len: u64) -> Option<u64> {
    if len % SECTOR_SIZE != 0 {
        return None;
    }
    let offset = sector.checked_mul(SECTOR_SIZE)?;
    let end = offset.checked_add(len)?;
    (end <= disk.capacity() * SECTOR_SIZE).then_some(offset)
}
