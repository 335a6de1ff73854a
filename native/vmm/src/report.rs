//! The report descriptor (`--report-fd`): JSON-lines events for the
//! runtime — milestones as they happen, then `exit`, `error` when there is
//! one, and `stats` last, just before the process exits. A reader that went
//! away is not an error: events are best effort, the exit status is not.
//!
//! Error codes used in `error` events (and on stderr):
//! - `VMM_KVM_UNAVAILABLE`: /dev/kvm missing, or lacking a capability;
//! - `VMM_KERNEL_INVALID`, `VMM_INITRD_INVALID`, `VMM_DISK_INVALID`: inputs;
//! - `VMM_SETUP`: building the VM failed (memory, devices, vCPU setup);
//! - `VMM_GUEST_INTERNAL_ERROR`, `VMM_GUEST_FAIL_ENTRY`, `VMM_GUEST_CRASH`:
//!   the guest died in a way the hypervisor could not handle;
//! - `VMM_VCPU_RUN`, `VMM_VCPU_UNEXPECTED_EXIT`: the vCPU loop failed.

use std::fs::File;
use std::io::Write;
use std::os::fd::FromRawFd;
use std::sync::Mutex;
use std::time::Instant;

use serde_json::json;

use crate::lifecycle::VmExit;
use crate::stats::Stats;

pub struct Report {
    out: Mutex<Option<File>>,
    start: Instant,
}

/// Validates `fd` is open (F_GETFD) before taking it over.
pub fn fd_is_open(fd: i32) -> bool {
    // SAFETY: F_GETFD only inspects the descriptor table.
    unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
}

impl Report {
    /// `fd` must be an open descriptor this process may own from now on.
    pub fn new(fd: Option<i32>, start: Instant) -> Self {
        // SAFETY: the caller checked the descriptor is open and hands it over.
        let file = fd.map(|fd| unsafe { File::from_raw_fd(fd) });
        if let Some(f) = &file {
            // Do not leak the report pipe into anything we might spawn.
            // SAFETY: setting FD_CLOEXEC on our descriptor.
            unsafe { libc::fcntl(std::os::fd::AsRawFd::as_raw_fd(f), libc::F_SETFD, libc::FD_CLOEXEC) };
        }
        Self { out: Mutex::new(file), start }
    }

    pub fn elapsed_ms(&self) -> f64 {
        ms(self.start.elapsed().as_nanos() as u64)
    }

    fn emit(&self, v: serde_json::Value) {
        let mut guard = self.out.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = guard.as_mut() {
            let mut line = v.to_string();
            line.push('\n');
            if f.write_all(line.as_bytes()).is_err() {
                *guard = None; // reader gone: stop reporting
            }
        }
    }

    pub fn milestone(&self, id: u8) {
        self.emit(json!({"event": "milestone", "id": id, "ms": round1(self.elapsed_ms())}));
    }

    pub fn exit(&self, exit: &VmExit) {
        if let Some((code, message)) = &exit.error {
            self.error(code, message);
        }
        self.emit(json!({"event": "exit", "reason": exit.reason.as_str(), "status": exit.status}));
    }

    /// A restored VM's vCPUs are running (`ms` after the VMM started).
    pub fn restored(&self) {
        self.emit(json!({"event": "restored", "ms": round1(self.elapsed_ms())}));
    }

    /// The outcome of a snapshot the VMM took on its own (SIGUSR1).
    pub fn snapshot(&self, outcome: Result<serde_json::Value, String>) {
        let mut v = match outcome {
            Ok(v) => v,
            Err(e) => json!({"error": e, "code": "SNAPSHOT_DUMP_FAILED"}),
        };
        v["ok"] = json!(v.get("error").is_none());
        v["event"] = json!("snapshot");
        self.emit(v);
    }

    pub fn error(&self, code: &str, message: &str) {
        self.emit(json!({"event": "error", "code": code, "message": message}));
    }

    pub fn stats(&self, stats: &Stats) {
        self.emit(stats.to_json_with("event", json!("stats")));
    }
}

/// Nanoseconds as milliseconds, to 0.1 ms.
pub fn ms(ns: u64) -> f64 {
    round1(ns as f64 / 1e6)
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::fd::IntoRawFd;

    #[test]
    fn writes_json_lines() {
        let mut fds = [0; 2];
        // SAFETY: valid array for pipe.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        assert!(fd_is_open(fds[1]));
        let r = Report::new(Some(fds[1]), Instant::now());
        r.milestone(1);
        r.exit(&VmExit::error("VMM_X", "bad".into()));
        r.stats(&Stats {
            wall_ms: 1.0,
            in_kvm_run_ms: 0.5,
            outside_kvm_run_ms: 0.25,
            setup_ms: 0.1,
            exit_handling_ms: 0.15,
            exits: [("io".to_string(), 3)].into_iter().collect(),
            rss_kib: 1,
            rss_anon_kib: 1,
            rss_file_kib: 0,
            rss_shmem_kib: 0,
            vcpus: 1,
            vsock_streams: 2,
            vsock_bytes_to_guest: 10,
            vsock_bytes_to_host: 20,
            vsock_io_thread_ms: 1.5,
        });
        drop(r);
        // SAFETY: the read end is ours.
        let mut f = unsafe { File::from_raw_fd(fds[0]) };
        let mut s = String::new();
        f.read_to_string(&mut s).unwrap();
        let lines: Vec<serde_json::Value> = s.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines[0]["event"], "milestone");
        assert_eq!(lines[0]["id"], 1);
        assert_eq!(lines[1]["code"], "VMM_X");
        assert_eq!(lines[2]["reason"], "error");
        assert_eq!(lines[2]["status"], 1);
        assert_eq!(lines[3]["event"], "stats");
        assert_eq!(lines[3]["inKvmRunMs"], 0.5);
        assert_eq!(lines[3]["exits"]["io"], 3);
        assert_eq!(lines[3]["vsockStreams"], 2);
        assert_eq!(lines[3]["vsockBytesToGuest"], 10);
        assert_eq!(lines[3]["vsockBytesToHost"], 20);
        assert_eq!(lines[3]["vsockIoThreadMs"], 1.5);
        let _ = f.into_raw_fd();
        // SAFETY: closing the read end we took back.
        unsafe { libc::close(fds[0]) };
    }

    #[test]
    fn a_closed_descriptor_is_detected() {
        assert!(!fd_is_open(987_654));
    }
}
