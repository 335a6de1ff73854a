//! How the VM ends: the first party to ask (the guest's exit port, a guest
//! reset, a fatal vCPU error, the control socket, a signal) records why,
//! every vCPU stops entering the guest, and the main thread wakes up to
//! report and exit.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitReason {
    /// The guest wrote its command's status to the exit port.
    Guest,
    /// The guest reset or powered off (triple fault, reboot, halt).
    Reset,
    /// A `shutdown` request (control socket, SIGTERM/SIGINT).
    Shutdown,
    /// The VMM or the vCPU failed.
    Error,
}

impl ExitReason {
    pub fn as_str(self) -> &'static str {
        match self {
            ExitReason::Guest => "guest",
            ExitReason::Reset => "reset",
            ExitReason::Shutdown => "shutdown",
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
    pub fn error(code: &'static str, message: String) -> Self {
        Self { reason: ExitReason::Error, status: 1, error: Some((code, message)) }
    }
}

#[derive(Default)]
pub struct Lifecycle {
    stopping: AtomicBool,
    exit: Mutex<Option<VmExit>>,
    wake: Condvar,
}

impl Lifecycle {
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the VM to stop; only the first request decides how it ends.
    pub fn request_exit(&self, exit: VmExit) {
        let mut slot = self.exit.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            *slot = Some(exit);
        }
        self.stopping.store(true, Ordering::SeqCst);
        self.wake.notify_all();
    }

    pub fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Blocks until an exit has been requested and returns it.
    pub fn wait(&self) -> VmExit {
        let mut slot = self.exit.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(exit) = slot.clone() {
                return exit;
            }
            slot = self.wake.wait(slot).unwrap_or_else(|e| e.into_inner());
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
}
