//! The control socket (`--control <path>`): a Unix stream socket speaking
//! JSON lines, one request object per line, one reply per request.
//!
//! `{"cmd":"status"}`   → `{"ok":true,"state":"running","pid":…,"vcpus":…,"memoryMib":…,"uptimeMs":…}`
//! `{"cmd":"stats"}`    → `{"ok":true,"wallMs":…,"inKvmRunMs":…,"outsideKvmRunMs":…,
//!                        "setupMs":…,"exitHandlingMs":…,"exits":{…},"rssKib":…,…,
//!                        "vsockStreams":…,"vsockBytesToGuest":…,"vsockBytesToHost":…,
//!                        "vsockIoThreadMs":…,"vcpus":…}`: the final `stats`
//!                        report event's figures (same fields and units, built
//!                        by `StatsSource::collect`), as of now
//! `{"cmd":"shutdown"}` → `{"ok":true}`, then the VM stops (reason `shutdown`)
//! `{"cmd":"detach"}`   → `{"ok":true}` once the VMM's parent-death signal is
//!                        cleared (it then outlives the process that started it)
//! `{"cmd":"pause"}`    → `{"ok":true}` once every vCPU has stopped
//! `{"cmd":"resume"}`   → `{"ok":true}`; the vCPUs go on
//! `{"cmd":"snapshot","dir":"/abs/new","leaveRunning":bool}` (default true)
//!                      → `{"ok":true,"dir":…,"files":[…],"memoryBytes":…,"timings":{…}}`
//!                        (docs/vmstate.md); with leaveRunning false the VM
//!                        then stops (exit reason `snapshot`). A failure is
//!                        `{"ok":false,"code":"SNAPSHOT_DUMP_FAILED","error":…}`
//!                        and the VM goes on.
//! anything else        → `{"ok":false,"error":"…"}`; the connection stays up.
//!
//! The socket file is removed when the VMM exits (`ControlServer::cleanup`).

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::lifecycle::{Lifecycle, VmExit};
use crate::snapshot::Snapshotter;
use crate::stats::StatsSource;

/// Longest request line accepted; longer lines get an error reply.
const MAX_LINE: usize = 64 * 1024;
/// How long `detach` waits for the main thread to clear the signal.
const DETACH_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Clone)]
pub struct StatusInfo {
    pub vcpus: u32,
    pub memory_mib: u64,
    pub start: Instant,
    /// Answers `stats`.
    pub stats: Arc<StatsSource>,
    /// Serves pause/resume/snapshot once the vCPUs run.
    pub snapshots: Arc<OnceLock<Arc<Snapshotter>>>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Request {
    Status,
    Stats,
    Shutdown,
    Detach,
    Pause,
    Resume,
    Snapshot { dir: PathBuf, leave_running: bool },
}

/// Parses one request line.
pub fn parse_request(line: &str) -> Result<Request, String> {
    let v: Value = serde_json::from_str(line).map_err(|e| format!("malformed JSON: {e}"))?;
    let obj = v.as_object().ok_or("request must be a JSON object")?;
    match obj.get("cmd") {
        Some(Value::String(c)) if c == "status" => Ok(Request::Status),
        Some(Value::String(c)) if c == "stats" => Ok(Request::Stats),
        Some(Value::String(c)) if c == "shutdown" => Ok(Request::Shutdown),
        Some(Value::String(c)) if c == "detach" => Ok(Request::Detach),
        Some(Value::String(c)) if c == "pause" => Ok(Request::Pause),
        Some(Value::String(c)) if c == "resume" => Ok(Request::Resume),
        Some(Value::String(c)) if c == "snapshot" => {
            let dir = match obj.get("dir") {
                Some(Value::String(d)) if d.starts_with('/') && !d.contains('\0') => PathBuf::from(d),
                Some(_) => return Err("\"dir\" must be an absolute path".into()),
                None => return Err("snapshot needs \"dir\"".into()),
            };
            let leave_running = match obj.get("leaveRunning") {
                None => true,
                Some(Value::Bool(b)) => *b,
                Some(_) => return Err("\"leaveRunning\" must be true or false".into()),
            };
            Ok(Request::Snapshot { dir, leave_running })
        }
        Some(Value::String(c)) => Err(format!("unknown cmd {c:?}")),
        Some(_) => Err("\"cmd\" must be a string".into()),
        None => Err("missing \"cmd\"".into()),
    }
}

fn reply(req: &Result<Request, String>, info: &StatusInfo) -> Value {
    match req {
        Ok(Request::Status) => json!({
            "ok": true,
            "state": if info.snapshots.get().is_some_and(|s| s.is_paused()) { "paused" } else { "running" },
            "pid": std::process::id(),
            "vcpus": info.vcpus,
            "memoryMib": info.memory_mib,
            "uptimeMs": info.start.elapsed().as_millis() as u64,
        }),
        Ok(Request::Stats) => info.stats.collect().to_json_with("ok", json!(true)),
        Ok(Request::Shutdown) | Ok(Request::Detach) => json!({"ok": true}),
        Ok(Request::Pause) | Ok(Request::Resume) | Ok(Request::Snapshot { .. }) => {
            unreachable!("answered by serve_vm_request")
        }
        Err(e) => json!({"ok": false, "error": e}),
    }
}

/// pause/resume/snapshot: the answer, and whether the VM must now end.
fn serve_vm_request(req: &Request, info: &StatusInfo) -> (Value, bool) {
    let Some(snapshots) = info.snapshots.get() else {
        return (json!({"ok": false, "error": "the VM is not running yet"}), false);
    };
    match req {
        Request::Pause => match snapshots.pause() {
            Ok(()) => (json!({"ok": true}), false),
            Err(e) => (json!({"ok": false, "error": e}), false),
        },
        Request::Resume => {
            snapshots.resume();
            (json!({"ok": true}), false)
        }
        Request::Snapshot { dir, leave_running } => match snapshots.take(dir, *leave_running) {
            Ok(outcome) => {
                let mut v = outcome.to_json();
                v["ok"] = json!(true);
                (v, !leave_running)
            }
            Err(e) => (json!({"ok": false, "code": "SNAPSHOT_DUMP_FAILED", "error": e}), false),
        },
        _ => unreachable!("only VM requests come here"),
    }
}

pub struct ControlServer {
    path: PathBuf,
}

impl ControlServer {
    /// Binds the socket (replacing a stale one nobody listens on) and
    /// serves it from a background thread.
    pub fn start(path: &Path, info: StatusInfo, lifecycle: Arc<Lifecycle>) -> std::io::Result<Self> {
        if path.exists() {
            if UnixStream::connect(path).is_ok() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::AddrInUse,
                    format!("control socket {} is in use by another process", path.display()),
                ));
            }
            std::fs::remove_file(path)?;
        }
        let listener = UnixListener::bind(path)?;
        std::thread::Builder::new().name("control".into()).stack_size(128 * 1024).spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let info = info.clone();
                let lifecycle = lifecycle.clone();
                let _ = std::thread::Builder::new()
                    .name("control-conn".into())
                    .stack_size(128 * 1024)
                    .spawn(move || serve(conn, &info, &lifecycle));
            }
        })?;
        Ok(Self { path: path.to_path_buf() })
    }

    pub fn cleanup(&self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Reads one line of at most MAX_LINE bytes; Ok(None) at end of stream.
/// An over-long line is consumed and reported as Err.
fn read_line(r: &mut impl BufRead) -> std::io::Result<Option<Result<String, String>>> {
    let mut buf = Vec::new();
    let n = r.by_ref().take(MAX_LINE as u64 + 1).read_until(b'\n', &mut buf)?;
    if n == 0 {
        return Ok(None);
    }
    if buf.last() != Some(&b'\n') && buf.len() > MAX_LINE {
        // Skip the rest of the long line.
        loop {
            let mut rest = Vec::new();
            let m = r.by_ref().take(MAX_LINE as u64).read_until(b'\n', &mut rest)?;
            if m == 0 || rest.last() == Some(&b'\n') {
                break;
            }
        }
        return Ok(Some(Err(format!("request longer than {MAX_LINE} bytes"))));
    }
    Ok(Some(String::from_utf8(buf).map_err(|_| "request is not UTF-8".to_string())))
}

fn serve(conn: UnixStream, info: &StatusInfo, lifecycle: &Lifecycle) {
    let Ok(mut writer) = conn.try_clone() else { return };
    let mut reader = BufReader::new(conn);
    while let Ok(Some(line)) = read_line(&mut reader) {
        let mut req = match line {
            Ok(l) if l.trim().is_empty() => continue,
            Ok(l) => parse_request(l.trim()),
            Err(e) => Err(e),
        };
        if req == Ok(Request::Detach) && !lifecycle.request_detach(DETACH_TIMEOUT) {
            req = Err("could not clear the parent-death signal (VM stopping?)".into());
        }
        let (answer, end) = match &req {
            Ok(r @ (Request::Pause | Request::Resume | Request::Snapshot { .. })) => serve_vm_request(r, info),
            _ => (reply(&req, info), false),
        };
        let mut out = answer.to_string();
        out.push('\n');
        let written = writer.write_all(out.as_bytes());
        if end {
            // The snapshot is complete whether or not the asker still listens.
            lifecycle.request_exit(VmExit::snapshot());
            return;
        }
        if written.is_err() {
            return;
        }
        if req == Ok(Request::Shutdown) {
            lifecycle.request_exit(VmExit::shutdown());
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_requests() {
        assert_eq!(parse_request(r#"{"cmd":"status"}"#), Ok(Request::Status));
        assert_eq!(parse_request(r#"{"cmd":"stats"}"#), Ok(Request::Stats));
        assert_eq!(parse_request(r#"{"cmd":"shutdown","extra":1}"#), Ok(Request::Shutdown));
        assert_eq!(parse_request(r#"{"cmd":"detach"}"#), Ok(Request::Detach));
        assert_eq!(parse_request(r#"{"cmd":"pause"}"#), Ok(Request::Pause));
        assert_eq!(parse_request(r#"{"cmd":"resume"}"#), Ok(Request::Resume));
        assert_eq!(
            parse_request(r#"{"cmd":"snapshot","dir":"/s/a"}"#),
            Ok(Request::Snapshot { dir: "/s/a".into(), leave_running: true })
        );
        assert_eq!(
            parse_request(r#"{"cmd":"snapshot","dir":"/s/a","leaveRunning":false}"#),
            Ok(Request::Snapshot { dir: "/s/a".into(), leave_running: false })
        );
        for bad in [
            r#"{"cmd":"snapshot"}"#,
            r#"{"cmd":"snapshot","dir":"rel/a"}"#,
            r#"{"cmd":"snapshot","dir":7}"#,
            r#"{"cmd":"snapshot","dir":"/a","leaveRunning":"no"}"#,
        ] {
            assert!(parse_request(bad).is_err(), "{bad}");
        }
        for bad in ["", "{", "[]", "42", r#"{"cmd":7}"#, r#"{"c":"status"}"#, r#"{"cmd":"reboot"}"#, r#"{"cmd":"Stats"}"#, "\u{0}"] {
            assert!(parse_request(bad).is_err(), "{bad:?}");
        }
    }

    fn info(vcpus: u32) -> StatusInfo {
        let start = Instant::now();
        let vcpu_stats = (0..vcpus).map(|_| Arc::new(crate::vcpu::VcpuStats::default())).collect();
        StatusInfo {
            vcpus,
            memory_mib: 128,
            start,
            stats: Arc::new(StatsSource::new(start, vcpus, vcpu_stats, None)),
            snapshots: Arc::new(OnceLock::new()),
        }
    }

    #[test]
    fn stats_reply_has_the_report_fields() {
        let info = info(2);
        info.stats.setup_done();
        let r = reply(&Ok(Request::Stats), &info);
        let obj = r.as_object().unwrap();
        let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        keys.sort_unstable();
        let mut want = vec![
            "ok",
            "wallMs",
            "inKvmRunMs",
            "outsideKvmRunMs",
            "setupMs",
            "exitHandlingMs",
            "exits",
            "rssKib",
            "rssAnonKib",
            "rssFileKib",
            "rssShmemKib",
            "vcpus",
            "vsockStreams",
            "vsockBytesToGuest",
            "vsockBytesToHost",
            "vsockIoThreadMs",
        ];
        want.sort_unstable();
        assert_eq!(keys, want);
        assert_eq!(r["ok"], true);
        assert_eq!(r["vcpus"], 2);
        assert!(r["exits"].is_object());
        assert!(r["rssKib"].as_u64().unwrap() > 0);
        for k in ["wallMs", "inKvmRunMs", "outsideKvmRunMs", "setupMs", "exitHandlingMs", "vsockIoThreadMs"] {
            assert!(r[k].is_f64(), "{k}");
        }
        // The same figures (and names) as the report's final event.
        let mut event = info.stats.collect().to_json_with("event", json!("stats"));
        let e = event.as_object_mut().unwrap();
        e.remove("event");
        e.insert("ok".into(), json!(true));
        let mut ek: Vec<&str> = e.keys().map(String::as_str).collect();
        ek.sort_unstable();
        assert_eq!(ek, keys);
    }

    #[test]
    fn serves_a_socket_and_survives_garbage() {
        let dir = std::env::temp_dir().join(format!("stasis-ctl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ctl.sock");
        // A stale socket file from a dead VMM is replaced.
        drop(UnixListener::bind(&path).unwrap());
        let lifecycle = Arc::new(Lifecycle::new());
        let info = info(2);
        let server = ControlServer::start(&path, info.clone(), lifecycle.clone()).unwrap();
        assert!(ControlServer::start(&path, info, lifecycle.clone()).is_err(), "in use");

        let mut s = UnixStream::connect(&path).unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut ask = |req: &[u8]| {
            s.write_all(req).unwrap();
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            serde_json::from_str::<Value>(&line).unwrap()
        };
        assert_eq!(ask(b"not json\n")["ok"], false);
        assert_eq!(ask(b"\xff\xfe\n")["ok"], false);
        let mut long = vec![b'x'; MAX_LINE + 10];
        long.push(b'\n');
        assert_eq!(ask(&long)["ok"], false);
        let st = ask(b"{\"cmd\":\"status\"}\n");
        assert_eq!((st["ok"].clone(), st["vcpus"].clone(), st["memoryMib"].clone()), (json!(true), json!(2), json!(128)));
        assert_eq!(st["state"], "running");
        // Before the vCPUs run there is nothing to pause or snapshot.
        assert_eq!(ask(b"{\"cmd\":\"pause\"}\n")["ok"], false);
        assert_eq!(ask(b"{\"cmd\":\"snapshot\",\"dir\":\"/nowhere/x\"}\n")["ok"], false);
        let stats = ask(b"{\"cmd\":\"stats\"}\n");
        assert_eq!((stats["ok"].clone(), stats["vcpus"].clone()), (json!(true), json!(2)));
        assert!(stats["wallMs"].is_f64() && stats["vsockIoThreadMs"].is_f64());
        assert!(!lifecycle.stopping());
        // detach is answered once the waiting (main) thread served it.
        let waiter = {
            let l = lifecycle.clone();
            std::thread::spawn(move || {
                let mut n = 0;
                let exit = l.wait_serving(|| n += 1);
                (exit, n)
            })
        };
        assert_eq!(ask(b"{\"cmd\":\"detach\"}\n"), json!({"ok": true}));
        assert_eq!(ask(b"\n{\"cmd\":\"shutdown\"}\n")["ok"], true);
        assert_eq!(waiter.join().unwrap(), (VmExit::shutdown(), 1));
        assert_eq!(lifecycle.wait(), VmExit::shutdown());
        server.cleanup();
        assert!(!path.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
