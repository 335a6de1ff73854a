//! `VsockBridge`: the host side of the device. It owns the listening Unix
//! socket (`--vsock <path>`), the I/O thread that waits on it and on every
//! stream socket (epoll, edge-triggered for streams), and the counters
//! behind the `stats` figures (live or final). The device (`Vsock`) and the
//! I/O thread share one `Muxer` behind a mutex.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::device::Vsock;
use super::muxer::{Muxer, LISTEN_TOKEN, WAKE_TOKEN};
use super::sys;
use super::CONNECT_TIMEOUT;

/// Events taken from epoll per wakeup.
const EVENT_BATCH: usize = 64;
/// New connections accepted per wakeup (the listener is level-triggered,
/// so more are taken on the next round).
const ACCEPT_BATCH: usize = 64;

/// Figures for the `stats` event and the control socket's `stats`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct VsockStats {
    /// Streams established (both directions of initiation).
    pub streams: u64,
    pub bytes_to_guest: u64,
    pub bytes_to_host: u64,
    /// CPU time of the I/O thread.
    pub io_thread_ns: u64,
}

#[derive(Default)]
pub struct Counters {
    pub streams: AtomicU64,
    pub to_guest: AtomicU64,
    pub to_host: AtomicU64,
    /// The I/O thread's CPU clock id (-1 until known).
    io_clock: AtomicI64,
    /// Its CPU time when it ended; `io_done` says it did.
    io_final_ns: AtomicU64,
    io_done: AtomicBool,
}

pub(super) struct Shared {
    muxer: Mutex<Muxer>,
    epoll: OwnedFd,
    wake: OwnedFd,
    stop: AtomicBool,
    /// While true the I/O thread does not touch the muxer (and so neither
    /// guest memory nor the queues): a snapshot is reading them.
    held: Mutex<bool>,
    held_cv: Condvar,
    pub counters: Arc<Counters>,
}

impl Shared {
    /// Locks the muxer, recovering from poisoning (a panic elsewhere must
    /// not take the device down with it).
    pub fn lock(&self) -> MutexGuard<'_, Muxer> {
        self.muxer.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub struct VsockBridge {
    shared: Arc<Shared>,
    path: PathBuf,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl VsockBridge {
    /// Binds `path` (replacing a stale socket nobody listens on; an error
    /// if one is live) and starts the I/O thread.
    pub fn bind(path: &Path) -> io::Result<Arc<Self>> {
        Self::bind_with_timeout(path, CONNECT_TIMEOUT)
    }

    /// `bind` with another CONNECT/RESPONSE timeout (tests).
    pub fn bind_with_timeout(path: &Path, timeout: Duration) -> io::Result<Arc<Self>> {
        if path.exists() {
            if UnixStream::connect(path).is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!(
                        "vsock socket {} is in use by another process",
                        path.display()
                    ),
                ));
            }
            std::fs::remove_file(path)?;
        }
        let listener = UnixListener::bind(path)?;
        let started = Self::start(listener, path, timeout);
        if started.is_err() {
            let _ = std::fs::remove_file(path);
        }
        started
    }

    fn start(listener: UnixListener, path: &Path, timeout: Duration) -> io::Result<Arc<Self>> {
        listener.set_nonblocking(true)?;
        let epoll = sys::epoll_create()?;
        let wake = sys::eventfd()?;
        sys::epoll_add(
            epoll.as_raw_fd(),
            wake.as_raw_fd(),
            libc::EPOLLIN as u32,
            WAKE_TOKEN,
        )?;
        sys::epoll_add(
            epoll.as_raw_fd(),
            listener.as_raw_fd(),
            libc::EPOLLIN as u32,
            LISTEN_TOKEN,
        )?;
        let counters = Arc::new(Counters {
            io_clock: AtomicI64::new(-1),
            ..Counters::default()
        });
        let muxer = Muxer::new(
            epoll.as_raw_fd(),
            path.to_path_buf(),
            timeout,
            counters.clone(),
        );
        let shared = Arc::new(Shared {
            muxer: Mutex::new(muxer),
            epoll,
            wake,
            stop: AtomicBool::new(false),
            held: Mutex::new(false),
            held_cv: Condvar::new(),
            counters,
        });
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("vsock-io".into())
            .stack_size(256 * 1024)
            .spawn(move || io_loop(&thread_shared, &listener))?;
        Ok(Arc::new(Self {
            shared,
            path: path.to_path_buf(),
            thread: Mutex::new(Some(thread)),
        }))
    }

    /// The virtio device for this bridge (one per bridge).
    pub fn device(&self) -> Vsock {
        Vsock::new(self.shared.clone())
    }

    #[cfg(test)]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The figures as of now: callable from any thread at any time (the
    /// control socket's live `stats` reads them while the VM runs).
    pub fn stats(&self) -> VsockStats {
        let c = &self.shared.counters;
        let final_ns = || c.io_done.load(Ordering::SeqCst).then(|| c.io_final_ns.load(Ordering::SeqCst));
        let io_thread_ns = final_ns().unwrap_or_else(|| match c.io_clock.load(Ordering::SeqCst) {
            -1 => 0,
            // The thread's CPU clock, read from here: exact to the ns, the
            // time it is running right now included. Should the thread end
            // between the two loads, the read fails and the figure it
            // stored on its way out is there.
            id => match sys::cpu_clock_ns(id as libc::clockid_t) {
                0 => final_ns().unwrap_or(0),
                ns => ns,
            },
        });
        VsockStats {
            streams: c.streams.load(Ordering::Relaxed),
            bytes_to_guest: c.to_guest.load(Ordering::Relaxed),
            bytes_to_host: c.to_host.load(Ordering::Relaxed),
            io_thread_ns,
        }
    }

    /// Stops the I/O thread from touching the device until `release`:
    /// returns once any work it had in progress is done. Host sockets keep
    /// their data meanwhile; nothing is lost, only delayed.
    pub fn hold(&self) {
        *self.shared.held.lock().unwrap_or_else(|e| e.into_inner()) = true;
        // The I/O thread holds the muxer lock while it works: taking it
        // once waits for that work to finish.
        drop(self.shared.lock());
    }

    pub fn release(&self) {
        *self.shared.held.lock().unwrap_or_else(|e| e.into_inner()) = false;
        self.shared.held_cv.notify_all();
    }

    /// Makes the I/O thread do all pending work now (a restored device's
    /// TRANSPORT_RESET, once the vCPUs run).
    pub fn wake(&self) {
        self.shared.lock().arm_reset();
        sys::eventfd_signal(self.shared.wake.as_raw_fd());
    }

    /// Removes the socket file (the VMM is exiting).
    pub fn cleanup(&self) {
        let _ = std::fs::remove_file(&self.path);
    }

    /// Stops and joins the I/O thread.
    pub fn stop(&self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        sys::eventfd_signal(self.shared.wake.as_raw_fd());
        self.release();
        let handle = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(h) = handle {
            let _ = h.join();
        }
    }

    #[cfg(test)]
    pub(super) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }
}

impl Drop for VsockBridge {
    fn drop(&mut self) {
        self.stop();
        self.cleanup();
    }
}

fn io_loop(shared: &Shared, listener: &UnixListener) {
    if let Some(id) = sys::current_thread_cpu_clock() {
        shared.counters.io_clock.store(id as i64, Ordering::SeqCst);
    }
    let mut events = [libc::epoll_event { events: 0, u64: 0 }; EVENT_BATCH];
    let mut timeout_ms = -1;
    let mut backoff = false;
    while !shared.stop.load(Ordering::SeqCst) {
        if std::mem::take(&mut backoff) {
            // accept() failed for want of descriptors: the listener stays
            // readable, so do not spin on it.
            std::thread::sleep(Duration::from_millis(20));
        }
        let n = match sys::epoll_wait(shared.epoll.as_raw_fd(), &mut events, timeout_ms) {
            Ok(n) => n,
            Err(_) => {
                std::thread::sleep(Duration::from_millis(10));
                0
            }
        };
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        // `held` is checked with the muxer locked, so once `hold` has
        // taken the lock after setting it, no new work starts.
        let mut m = loop {
            let m = shared.lock();
            if shared.stop.load(Ordering::SeqCst) || !*shared.held.lock().unwrap_or_else(|e| e.into_inner()) {
                break m;
            }
            drop(m);
            let mut held = shared.held.lock().unwrap_or_else(|e| e.into_inner());
            while *held && !shared.stop.load(Ordering::SeqCst) {
                held = shared.held_cv.wait(held).unwrap_or_else(|e| e.into_inner());
            }
        };
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        for ev in &events[..n] {
            let (token, bits) = (ev.u64, ev.events);
            match token {
                WAKE_TOKEN => sys::eventfd_drain(shared.wake.as_raw_fd()),
                LISTEN_TOKEN => backoff = accept_all(listener, &mut m),
                _ => m.handle_event(token, bits),
            }
        }
        let now = Instant::now();
        m.check_deadlines(now);
        m.pump();
        timeout_ms = match m.next_deadline() {
            None => -1,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                // Round up so a wakeup is never just before the deadline.
                (left.as_micros().div_ceil(1000)).min(i32::MAX as u128) as i32
            }
        };
    }
    if let Some(id) = sys::current_thread_cpu_clock() {
        shared
            .counters
            .io_final_ns
            .store(sys::cpu_clock_ns(id), Ordering::SeqCst);
        shared.counters.io_done.store(true, Ordering::SeqCst);
    }
}

/// Accepts waiting host clients; returns true when accept failed for a
/// reason other than "none left" (back off).
fn accept_all(listener: &UnixListener, m: &mut Muxer) -> bool {
    for _ in 0..ACCEPT_BATCH {
        match listener.accept() {
            Ok((stream, _)) => {
                if stream.set_nonblocking(true).is_ok() {
                    m.accept_host(OwnedFd::from(stream));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => {}
            Err(_) => return true,
        }
    }
    false
}
