//! Where a UART's transmitted bytes go: one of the VMM's own descriptors
//! (stdout or stderr), written unbuffered, byte for byte as the guest sent
//! them. A vCPU thread does the write, so it must never block for long:
//!
//! - if the descriptor is not writable within `STALL_TIMEOUT`, the output
//!   counts as stalled and bytes are dropped until it becomes writable
//!   again (checked without waiting);
//! - if the reader is gone (EPIPE — SIGPIPE is ignored process-wide) or the
//!   descriptor fails otherwise, every later byte is dropped.

use std::io;
use std::os::fd::RawFd;

const STALL_TIMEOUT_MS: i32 = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SinkState {
    Open,
    Stalled,
    Closed,
}

/// A non-owning, non-blocking-ish writer for a descriptor that outlives it
/// (the process's stdout/stderr).
pub struct FdOutput {
    fd: RawFd,
    state: SinkState,
    dropped: u64,
}

impl FdOutput {
    pub fn new(fd: RawFd) -> Self {
        Self { fd, state: SinkState::Open, dropped: 0 }
    }

    /// Bytes thrown away because the reader stalled or went away.
    #[cfg(test)]
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    fn writable(&self, timeout_ms: i32) -> bool {
        let mut p = libc::pollfd { fd: self.fd, events: libc::POLLOUT, revents: 0 };
        loop {
            // SAFETY: one valid pollfd.
            let r = unsafe { libc::poll(&mut p, 1, timeout_ms) };
            if r < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return r > 0 && p.revents & libc::POLLOUT != 0;
        }
    }

    fn write_some(&mut self, buf: &[u8]) -> usize {
        let mut done = 0;
        while done < buf.len() && self.state != SinkState::Closed {
            let timeout = if self.state == SinkState::Stalled { 0 } else { STALL_TIMEOUT_MS };
            if !self.writable(timeout) {
                self.state = SinkState::Stalled;
                break;
            }
            let rest = &buf[done..];
            // SAFETY: writing from a valid slice to a descriptor.
            let n = unsafe { libc::write(self.fd, rest.as_ptr().cast(), rest.len()) };
            if n >= 0 {
                done += n as usize;
                self.state = SinkState::Open;
                continue;
            }
            match io::Error::last_os_error().raw_os_error() {
                Some(libc::EINTR) | Some(libc::EAGAIN) => continue,
                _ => self.state = SinkState::Closed,
            }
        }
        done
    }
}

impl io::Write for FdOutput {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let done = self.write_some(buf);
        self.dropped += (buf.len() - done) as u64;
        // Dropped bytes are reported as written: the guest must not stall.
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn pipe() -> (RawFd, RawFd) {
        let mut fds = [0; 2];
        // SAFETY: valid array for pipe2.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        (fds[0], fds[1])
    }

    #[test]
    fn writes_then_drops_when_the_reader_is_gone() {
        // SAFETY: ignoring SIGPIPE, as main() does.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
        let (r, w) = pipe();
        let mut out = FdOutput::new(w);
        out.write_all(b"hi").unwrap();
        let mut buf = [0u8; 2];
        // SAFETY: reading into a valid buffer.
        assert_eq!(unsafe { libc::read(r, buf.as_mut_ptr().cast(), 2) }, 2);
        assert_eq!(&buf, b"hi");
        // SAFETY: closing our own descriptor.
        unsafe { libc::close(r) };
        out.write_all(b"lost").unwrap();
        assert_eq!(out.dropped(), 4);
        assert_eq!(out.state, SinkState::Closed);
        // SAFETY: closing our own descriptor.
        unsafe { libc::close(w) };
    }

    #[test]
    fn a_full_pipe_stalls_instead_of_blocking() {
        let (r, w) = pipe();
        let mut out = FdOutput::new(w);
        let chunk = vec![b'x'; 4096];
        let start = std::time::Instant::now();
        // Fill the 64 KiB pipe and then some; nobody reads.
        for _ in 0..40 {
            out.write_all(&chunk).unwrap();
        }
        assert!(out.dropped() > 0);
        assert!(start.elapsed() < std::time::Duration::from_secs(5));
        // SAFETY: closing our own descriptors.
        unsafe {
            libc::close(r);
            libc::close(w);
        }
    }
}
