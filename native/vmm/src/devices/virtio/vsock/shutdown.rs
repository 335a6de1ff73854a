//! The VMM as a client of its own bridge: on SIGTERM/SIGINT it asks the
//! guest agent to shut down (docs/agent-protocol.md §2: `R
//! {"op":"shutdown"}`, answered by `X`), so the guest command gets
//! SIGTERM and the VM ends on its own. Every step shares one deadline.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use super::AGENT_PORT;

/// Largest frame payload the agent may send.
const MAX_FRAME: usize = 65536;

struct Deadline(Instant);

impl Deadline {
    /// Time left, or a timeout error once it is spent.
    fn left(&self) -> io::Result<Duration> {
        let left = self.0.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "timed out"));
        }
        Ok(left)
    }
}

fn read_some(s: &mut UnixStream, d: &Deadline, buf: &mut [u8]) -> io::Result<usize> {
    s.set_read_timeout(Some(d.left()?))?;
    match s.read(buf) {
        Ok(0) => Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed",
        )),
        Ok(n) => Ok(n),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
            Err(io::Error::new(io::ErrorKind::TimedOut, "timed out"))
        }
        Err(e) => Err(e),
    }
}

/// Reads until `have` holds at least `n` bytes.
fn fill(s: &mut UnixStream, d: &Deadline, have: &mut Vec<u8>, n: usize) -> io::Result<()> {
    let mut chunk = [0u8; 4096];
    while have.len() < n {
        let got = read_some(s, d, &mut chunk)?;
        have.extend_from_slice(&chunk[..got]);
    }
    Ok(())
}

/// Connects to the bridge at `bridge`, opens the agent's port and sends
/// the `shutdown` request; Ok once the agent answered `X`.
pub fn request_agent_shutdown(bridge: &Path, within: Duration) -> io::Result<()> {
    let d = Deadline(Instant::now() + within);
    let mut s = UnixStream::connect(bridge)?;
    s.set_write_timeout(Some(d.left()?))?;
    s.write_all(format!("CONNECT {AGENT_PORT}\n").as_bytes())?;

    // "OK <port>\n", then frames.
    let mut have = Vec::new();
    let nl = loop {
        if let Some(i) = have.iter().position(|&b| b == b'\n') {
            break i;
        }
        if have.len() > 32 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "bad bridge reply",
            ));
        }
        let mut chunk = [0u8; 64];
        let got = read_some(&mut s, &d, &mut chunk)?;
        have.extend_from_slice(&chunk[..got]);
    };
    if !have.starts_with(b"OK ") {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "bad bridge reply",
        ));
    }
    have.drain(..=nl);

    let payload = br#"{"op":"shutdown"}"#;
    let mut frame = vec![b'R'];
    frame.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    frame.extend_from_slice(payload);
    s.set_write_timeout(Some(d.left()?))?;
    s.write_all(&frame)?;

    loop {
        fill(&mut s, &d, &mut have, 5)?;
        let kind = have[0];
        let len = u32::from_le_bytes([have[1], have[2], have[3], have[4]]) as usize;
        if len > MAX_FRAME {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "oversized frame",
            ));
        }
        fill(&mut s, &d, &mut have, 5 + len)?;
        match kind {
            b'X' => return Ok(()),
            b'A' | b'O' | b'E' => {
                have.drain(..5 + len);
            }
            b'F' => {
                let msg = String::from_utf8_lossy(&have[5..5 + len]).into_owned();
                return Err(io::Error::other(format!("agent refused: {msg}")));
            }
            _ => return Err(io::Error::new(io::ErrorKind::InvalidData, "unknown frame")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufRead;
    use std::os::unix::net::UnixListener;

    fn temp_socket(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "stasis-vsock-shutdown-{}-{name}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("bridge.sock")
    }

    /// A fake bridge + agent: answers OK, checks the request, replies with
    /// `frames`.
    fn fake_agent(path: &Path, frames: Vec<u8>) -> std::thread::JoinHandle<Vec<u8>> {
        let l = UnixListener::bind(path).unwrap();
        std::thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            let mut r = std::io::BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            assert_eq!(line, "CONNECT 1978\n");
            (&s).write_all(b"OK 1073741824\n").unwrap();
            let mut hdr = [0u8; 5];
            r.read_exact(&mut hdr).unwrap();
            assert_eq!(hdr[0], b'R');
            let mut body = vec![0u8; u32::from_le_bytes([hdr[1], hdr[2], hdr[3], hdr[4]]) as usize];
            r.read_exact(&mut body).unwrap();
            (&s).write_all(&frames).unwrap();
            body
        })
    }

    fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![kind];
        f.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn asks_the_agent_and_waits_for_x() {
        let path = temp_socket("ok");
        let mut frames = frame(b'A', b"{}");
        frames.extend(frame(b'X', br#"{"code":0}"#));
        let agent = fake_agent(&path, frames);
        request_agent_shutdown(&path, Duration::from_secs(3)).unwrap();
        assert_eq!(agent.join().unwrap(), br#"{"op":"shutdown"}"#);
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn failures_and_timeouts_are_errors() {
        let path = temp_socket("fail");
        // No bridge at all.
        assert!(request_agent_shutdown(&path, Duration::from_secs(1)).is_err());
        // The agent answers F.
        let agent = fake_agent(&path, frame(b'F', br#"{"error":"X"}"#));
        assert!(request_agent_shutdown(&path, Duration::from_secs(3)).is_err());
        agent.join().unwrap();
        std::fs::remove_file(&path).unwrap();
        // A bridge that never answers: the deadline holds.
        let _l = UnixListener::bind(&path).unwrap();
        let t = Instant::now();
        assert!(request_agent_shutdown(&path, Duration::from_millis(300)).is_err());
        assert!(t.elapsed() < Duration::from_secs(2));
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }
}
