//! The VMM's figures (`Stats`) and the one place that computes them
//! (`StatsSource::collect`): the final `stats` report event and the control
//! socket's live `{"cmd":"stats"}` reply are both built here, so they carry
//! the same fields in the same units.
//!
//! Everything is readable while the VM runs: vCPU threads publish their
//! times under a seqlock (`VcpuStats::times`, the KVM_RUN or exit handling
//! in progress included) and the vsock I/O thread's CPU time is read from
//! its thread CPU clock (`VsockBridge::stats`).

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::devices::virtio::vsock::VsockBridge;
use crate::report::ms;
use crate::vcpu::{self, VcpuStats, EXIT_KINDS};

/// The figures, times in ms (to 0.1 ms), sizes in KiB.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    pub wall_ms: f64,
    pub in_kvm_run_ms: f64,
    /// `setupMs` + `exitHandlingMs`.
    pub outside_kvm_run_ms: f64,
    /// VMM start until the first vCPU could enter the guest.
    pub setup_ms: f64,
    /// Time vCPU threads spent outside KVM_RUN handling exits.
    pub exit_handling_ms: f64,
    pub exits: BTreeMap<String, u64>,
    pub rss_kib: u64,
    pub rss_anon_kib: u64,
    pub rss_file_kib: u64,
    pub rss_shmem_kib: u64,
    pub vcpus: u32,
    /// vsock streams established (host- and guest-initiated), zero
    /// without `--vsock`.
    pub vsock_streams: u64,
    /// vsock payload bytes delivered into guest RX buffers / to host
    /// Unix sockets.
    pub vsock_bytes_to_guest: u64,
    pub vsock_bytes_to_host: u64,
    /// CPU time of the vsock I/O thread: host-side vsock work outside
    /// KVM_RUN that `exitHandlingMs` (vCPU threads) does not include.
    pub vsock_io_thread_ms: f64,
}

impl Stats {
    /// The figures as a JSON object with one more member (`"event"` for
    /// the report, `"ok"` for the control reply).
    pub fn to_json_with(&self, key: &str, value: Value) -> Value {
        let mut obj = match serde_json::to_value(self) {
            Ok(Value::Object(o)) => o,
            _ => Map::new(),
        };
        obj.insert(key.to_string(), value);
        Value::Object(obj)
    }
}

/// Where the figures come from; shared by the main thread (final event)
/// and the control socket (live reply).
pub struct StatsSource {
    start: Instant,
    vcpus: u32,
    vcpu_stats: Vec<Arc<VcpuStats>>,
    vsock: Option<Arc<VsockBridge>>,
    /// Set once setup is over; until then setup is still running.
    setup_ns: OnceLock<u64>,
}

impl StatsSource {
    pub fn new(start: Instant, vcpus: u32, vcpu_stats: Vec<Arc<VcpuStats>>, vsock: Option<Arc<VsockBridge>>) -> Self {
        Self { start, vcpus, vcpu_stats, vsock, setup_ns: OnceLock::new() }
    }

    /// Marks the end of setup (the vCPUs may enter the guest now).
    pub fn setup_done(&self) {
        let _ = self.setup_ns.set(self.start.elapsed().as_nanos() as u64);
    }

    /// The figures as of now.
    pub fn collect(&self) -> Stats {
        let (inside, outside, exits) = vcpu::total_stats(&self.vcpu_stats);
        let vs = self.vsock.as_deref().map(VsockBridge::stats).unwrap_or_default();
        let (rss, anon, file, shmem) = rss_kib();
        let wall_ns = self.start.elapsed().as_nanos() as u64;
        let setup_ns = self.setup_ns.get().copied().unwrap_or(wall_ns);
        let exits: BTreeMap<String, u64> = EXIT_KINDS
            .iter()
            .map(|(k, name)| (name.to_string(), exits[*k as usize]))
            .filter(|(_, n)| *n > 0)
            .collect();
        Stats {
            wall_ms: ms(wall_ns),
            in_kvm_run_ms: ms(inside),
            outside_kvm_run_ms: ms(setup_ns + outside),
            setup_ms: ms(setup_ns),
            exit_handling_ms: ms(outside),
            exits,
            rss_kib: rss,
            rss_anon_kib: anon,
            rss_file_kib: file,
            rss_shmem_kib: shmem,
            vcpus: self.vcpus,
            vsock_streams: vs.streams,
            vsock_bytes_to_guest: vs.bytes_to_guest,
            vsock_bytes_to_host: vs.bytes_to_host,
            vsock_io_thread_ms: ms(vs.io_thread_ns),
        }
    }
}

/// Resident memory from /proc/self/status: (VmRSS, RssAnon, RssFile,
/// RssShmem) in KiB; zeroes where a line is missing.
pub fn rss_kib() -> (u64, u64, u64, u64) {
    let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    parse_rss(&text)
}

fn parse_rss(text: &str) -> (u64, u64, u64, u64) {
    let get = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (get("VmRSS:"), get("RssAnon:"), get("RssFile:"), get("RssShmem:"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_status() {
        let t = "Name:\tx\nVmRSS:\t  12345 kB\nRssAnon:\t 100 kB\nRssFile:\t 5 kB\nRssShmem:\t 12240 kB\n";
        assert_eq!(parse_rss(t), (12345, 100, 5, 12240));
        assert_eq!(parse_rss(""), (0, 0, 0, 0));
        assert!(rss_kib().0 > 0);
    }

    #[test]
    fn collects_live_figures() {
        let dir = std::env::temp_dir().join(format!("stasis-stats-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bridge = VsockBridge::bind(&dir.join("v.sock")).unwrap();
        let v = Arc::new(VcpuStats::default());
        v.exits[0].store(3, std::sync::atomic::Ordering::Relaxed);
        let src = StatsSource::new(Instant::now(), 2, vec![v.clone(), Arc::new(VcpuStats::default())], Some(bridge));
        std::thread::sleep(std::time::Duration::from_millis(5));
        let during = src.collect();
        assert_eq!(during.setup_ms, during.wall_ms, "still in setup");
        src.setup_done();
        std::thread::sleep(std::time::Duration::from_millis(5));
        let s = src.collect();
        assert!(s.wall_ms > s.setup_ms && s.setup_ms >= 5.0, "{s:?}");
        assert_eq!(s.outside_kvm_run_ms, s.setup_ms + s.exit_handling_ms);
        assert_eq!(s.exits, [("io".to_string(), 3)].into_iter().collect());
        assert_eq!((s.vcpus, s.vsock_streams), (2, 0));
        assert!(s.rss_kib > 0);
        let j = s.to_json_with("ok", Value::Bool(true));
        assert_eq!(j["ok"], true);
        assert_eq!(j["vcpus"], 2);
        drop(src);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
