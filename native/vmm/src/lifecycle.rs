//! How the VM ends: the first party to ask (the guest's exit port, a guest
//! reset, a fatal vCPU error, the control socket, a signal) records why,
//! every vCPU stops entering the guest, and the main thread wakes up to
//! report and exit.
//!
//! The main thread's wait also serves `detach` requests (control socket):
//! the parent-death signal is a per-thread setting made on the main
//! thread, so only the main thread can clear it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitReason {
    /// The guest wrote its command's status to the exit port.
    Guest,
    /// The guest reset or powered off (triple fault, reboot, halt).
    Reset,
    /// A `shutdown` request (control socket, SIGTERM/SIGINT).
    Shutdown,
    /// A snapshot was written and the VM was not to go on (handoff).
    Snapshot,
    /// The VMM or the vCPU failed.
    Error,
}

impl ExitReason {
    pub fn as_str(self) -> &'static str {
        match self {
            ExitReason::Guest => "guest",
            ExitReason::Reset => "reset",
            ExitReason::Shutdown => "shutdown",
            ExitReason::Snapshot => "snapshot",
            ExitReason::Error => "error",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmExit {
    pub reason: ExitReason,
    /// The VMM's process exit status.
    pub status: i32,
    /// For `Error`: a stable code (VMM_…) and a message.
    pub error: Option<(&'static str, String)>,
}

impl VmExit {
    pub fn guest(status: u8) -> Self {
        Self { reason: ExitReason::Guest, status: status as i32, error: None }
    }
    pub fn reset() -> Self {
        Self { reason: ExitReason::Reset, status: 0, error: None }
    }
    pub fn shutdown() -> Self {
        Self { reason: ExitReason::Shutdown, status: 0, error: None }
    }
    pub fn snapshot() -> Self {
        Self { reason: ExitReason::Snapshot, status: 0, error: None }
    }
    pub fn error(code: &'static str, message: String) -> Self {
        Self { reason: ExitReason::Error, status: 1, error: Some((code, message)) }
    }
}

#[derive(Default)]
struct State {
    exit: Option<VmExit>,
    detach_requested: bool,
    detached: bool,
}

#[derive(Default)]
pub struct Lifecycle {
    stopping: AtomicBool,
    state: Mutex<State>,
    wake: Condvar,
}

impl Lifecycle {
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the VM to stop; only the first request decides how it ends.
    pub fn request_exit(&self, exit: VmExit) {
        let mut st = self.lock();
        if st.exit.is_none() {
            st.exit = Some(exit);
        }
        self.stopping.store(true, Ordering::SeqCst);
        self.wake.notify_all();
    }

    pub fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Blocks until an exit has been requested and returns it (tests; the
    /// VMM's main thread uses `wait_serving`).
    #[cfg(test)]
    pub fn wait(&self) -> VmExit {
        self.wait_serving(|| {})
    }

    /// Like `wait`, and runs `detach` (on this thread) once when a
    /// `request_detach` arrives first.
    pub fn wait_serving(&self, mut detach: impl FnMut()) -> VmExit {
        let mut st = self.lock();
        loop {
            if let Some(exit) = st.exit.clone() {
                return exit;
            }
            if st.detach_requested && !st.detached {
                detach();
                st.detached = true;
                self.wake.notify_all();
                continue;
            }
            st = self.wake.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Asks the waiting thread to detach and waits (up to `timeout`) until
    /// it has; true once detached. False if the VM is stopping or nobody
    /// served the request in time.
    pub fn request_detach(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut st = self.lock();
        st.detach_requested = true;
        self.wake.notify_all();
        loop {
            if st.detached {
                return true;
            }
            if st.exit.is_some() {
                return false;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            st = self.wake.wait_timeout(st, left).unwrap_or_else(|e| e.into_inner()).0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn first_request_wins_and_wakes_the_waiter() {
        let l = Arc::new(Lifecycle::new());
        assert!(!l.stopping());
        let l2 = l.clone();
        let t = std::thread::spawn(move || l2.wait());
        l.request_exit(VmExit::guest(3));
        l.request_exit(VmExit::shutdown());
        assert!(l.stopping());
        assert_eq!(t.join().unwrap(), VmExit::guest(3));
        assert_eq!(l.wait().reason.as_str(), "guest");
    }

    #[test]
    fn detach_is_served_by_the_waiting_thread() {
        let l = Arc::new(Lifecycle::new());
        // Nobody serving yet: the request times out.
        assert!(!l.request_detach(Duration::from_millis(20)));
        let l2 = l.clone();
        let t = std::thread::spawn(move || {
            let mut served = Vec::new();
            let exit = l2.wait_serving(|| served.push(std::thread::current().id()));
            (exit, served)
        });
        assert!(l.request_detach(Duration::from_secs(5)));
        assert!(l.request_detach(Duration::from_secs(5)), "already detached");
        l.request_exit(VmExit::shutdown());
        let (exit, served) = t.join().unwrap();
        assert_eq!(exit, VmExit::shutdown());
        assert_eq!(served.len(), 1, "served once, on the waiting thread");
        assert_ne!(served[0], std::thread::current().id());
    }
}
