//! Snapshots of a running VM (docs/vmstate.md): stop the vCPUs at an
//! instruction boundary, read every piece of machine state, write RAM and
//! the writable disks beside it, then let the vCPUs go on or stay stopped
//! for the VMM to exit. The files are written under a temporary name and
//! renamed last, so an interrupted snapshot never looks like a finished one.
//!
//! - `format`: the state file (`Snapshot`, header, checksum).
//! - `memory_file`: guest RAM → sparse `memory.img`.
//! - `sparse`: data extents, sparse copies and reflinks, disk fingerprints.
//! - `restore`: building a VM from a snapshot directory.
//! - `crc32`: the state file's checksum.

pub mod crc32;
pub mod format;
pub mod memory_file;
pub mod restore;
pub mod sparse;

use std::fs::{DirBuilder, File, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::config::DiskConfig;
use crate::devices::serial::Serial;
use crate::devices::virtio::mmio::MmioTransport;
use crate::devices::virtio::vsock::VsockBridge;
use crate::hv::kvm::{Backend, VmFd};
use crate::memory::GuestMemory;
use crate::pause::PauseGate;
use crate::vcpu::VcpuHandle;
use crate::vcpu_state::VcpuState;
use crate::vm::Vm;
use format::{disk_file, DiskRecord, MachineInfo, SlotDevice, Snapshot, VirtioSlot, MEMORY_FILE, STATE_FILE};

/// How long the vCPUs get to reach an instruction boundary.
const PAUSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Host milliseconds spent in each step of one snapshot.
#[derive(Debug, Clone, Default)]
pub struct Timings {
    pub pause_ms: f64,
    pub state_ms: f64,
    pub memory_ms: f64,
    pub disks_ms: f64,
    pub write_ms: f64,
    pub paused_ms: f64,
    pub total_ms: f64,
}

#[derive(Debug, Clone)]
pub struct Outcome {
    pub dir: PathBuf,
    pub files: Vec<String>,
    pub memory_bytes: u64,
    pub timings: Timings,
}

impl Outcome {
    pub fn to_json(&self) -> Value {
        let t = &self.timings;
        json!({
            "dir": self.dir.display().to_string(),
            "files": self.files,
            "memoryBytes": self.memory_bytes,
            "timings": {
                "pauseMs": round2(t.pause_ms),
                "stateMs": round2(t.state_ms),
                "memoryMs": round2(t.memory_ms),
                "disksMs": round2(t.disks_ms),
                "writeMs": round2(t.write_ms),
                "pausedMs": round2(t.paused_ms),
                "totalMs": round2(t.total_ms),
            },
        })
    }
}

fn round2(ms: f64) -> f64 {
    (ms * 100.0).round() / 100.0
}

fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// Everything a snapshot reads, shared with the threads that ask for one
/// (control connections, the signal thread).
pub struct Snapshotter {
    vm_fd: Arc<VmFd>,
    memory: Arc<GuestMemory>,
    serials: Vec<Arc<Mutex<Serial>>>,
    virtio: Vec<(SlotDevice, Arc<Mutex<MmioTransport>>)>,
    disks: Vec<DiskConfig>,
    vsock: Option<Arc<VsockBridge>>,
    gate: Arc<PauseGate>,
    vcpus: Arc<Vec<VcpuHandle>>,
    cpus: u32,
    backend: Backend,
    cmdline: String,
    /// One snapshot or pause at a time.
    busy: Mutex<()>,
}

impl Snapshotter {
    pub fn new(vm: &Vm, vcpus: Arc<Vec<VcpuHandle>>) -> Self {
        Self {
            vm_fd: vm.vm_fd.clone(),
            memory: vm.memory.clone(),
            serials: vm.devices.serials.clone(),
            virtio: vm.devices.virtio.clone(),
            disks: vm.disks.clone(),
            vsock: vm.vsock.clone(),
            gate: vm.gate.clone(),
            cpus: vcpus.len() as u32,
            vcpus,
            backend: vm.backend,
            cmdline: vm.cmdline.clone(),
            busy: Mutex::new(()),
        }
    }

    fn stop_vcpus(&self) -> Result<(), String> {
        let kick = || self.vcpus.iter().filter(|h| !h.finished()).for_each(VcpuHandle::kick);
        let active = || self.vcpus.iter().filter(|h| !h.finished()).count();
        self.gate.pause(self.vcpus.len(), &kick, &active, PAUSE_TIMEOUT).map_err(|e| format!("could not stop the vCPUs: {e}"))
    }

    /// `pause` (control socket): every vCPU parked until `resume`.
    pub fn pause(&self) -> Result<(), String> {
        let _busy = self.busy.lock().unwrap_or_else(|e| e.into_inner());
        self.stop_vcpus()
    }

    pub fn is_paused(&self) -> bool {
        self.gate.is_paused()
    }

    pub fn resume(&self) {
        let _busy = self.busy.lock().unwrap_or_else(|e| e.into_inner());
        self.gate.resume();
    }

    /// Writes a snapshot to `dir` (absolute, must not exist). With
    /// `leave_running` false and success, the vCPUs stay stopped: the
    /// caller ends the VM. On failure nothing is left behind and the VM
    /// goes on as before.
    pub fn take(&self, dir: &Path, leave_running: bool) -> Result<Outcome, String> {
        let _busy = self.busy.lock().unwrap_or_else(|e| e.into_inner());
        let t0 = Instant::now();
        check_target(dir)?;
        let partial = partial_name(dir);
        if partial.exists() {
            // Left by a VMM that died mid-snapshot with our pid.
            std::fs::remove_dir_all(&partial).map_err(|e| format!("removing {}: {e}", partial.display()))?;
        }
        DirBuilder::new().mode(0o700).create(&partial).map_err(|e| format!("creating {}: {e}", partial.display()))?;

        let was_paused = self.gate.is_paused();
        if !was_paused {
            if let Err(e) = self.stop_vcpus() {
                let _ = std::fs::remove_dir_all(&partial);
                return Err(e);
            }
        }
        let paused_at = Instant::now();
        let mut timings = Timings { pause_ms: ms_since(t0), ..Timings::default() };
        if let Some(v) = &self.vsock {
            v.hold();
        }
        let written = self.write_parts(&partial, &mut timings);
        if let Some(v) = &self.vsock {
            v.release();
        }
        let (snap, memory_bytes, files) = match written {
            Ok(w) => w,
            Err(e) => {
                if !was_paused {
                    self.gate.resume();
                }
                let _ = std::fs::remove_dir_all(&partial);
                return Err(e);
            }
        };
        if leave_running && !was_paused {
            self.gate.resume();
        }
        timings.paused_ms = ms_since(paused_at) + timings.pause_ms;

        let t = Instant::now();
        let result = format::write(&partial.join(STATE_FILE), &snap)
            .map_err(|e| format!("writing {STATE_FILE}: {e}"))
            .and_then(|_| std::fs::rename(&partial, dir).map_err(|e| format!("renaming {} to {}: {e}", partial.display(), dir.display())));
        if let Err(e) = result {
            if !leave_running && !was_paused {
                self.gate.resume();
            }
            let _ = std::fs::remove_dir_all(&partial);
            return Err(e);
        }
        timings.write_ms = ms_since(t);
        timings.total_ms = ms_since(t0);
        if !leave_running {
            // Stopped for good: the VMM exits next.
            timings.paused_ms = timings.total_ms;
        }
        let mut files = files;
        files.insert(0, STATE_FILE.to_string());
        Ok(Outcome { dir: dir.to_path_buf(), files, memory_bytes, timings })
    }

    /// State, RAM and disks into `partial`; the vCPUs are stopped and the
    /// device I/O threads held.
    fn write_parts(&self, partial: &Path, timings: &mut Timings) -> Result<(Snapshot, u64, Vec<String>), String> {
        let t = Instant::now();
        let snap = self.read_state()?;
        timings.state_ms = ms_since(t);

        let t = Instant::now();
        let mem_file = create_new(&partial.join(MEMORY_FILE))?;
        let memory_bytes = memory_file::write_memory(&self.memory, &mem_file).map_err(|e| format!("writing {MEMORY_FILE}: {e}"))?;
        drop(mem_file);
        timings.memory_ms = ms_since(t);

        let t = Instant::now();
        let mut files = vec![MEMORY_FILE.to_string()];
        for (rec, disk) in snap.disks.iter().zip(&self.disks) {
            if let Some(name) = &rec.file {
                sparse::copy_sparse(&disk.path, &partial.join(name)).map_err(|e| format!("copying disk {}: {e}", disk.path.display()))?;
                files.push(name.clone());
            }
        }
        timings.disks_ms = ms_since(t);
        Ok((snap, memory_bytes, files))
    }

    fn read_state(&self) -> Result<Snapshot, String> {
        let mut vcpus: Vec<VcpuState> = Vec::new();
        for (id, st) in self.gate.states().into_iter().enumerate() {
            match st {
                Some(Ok(s)) => vcpus.push(s),
                Some(Err(e)) => return Err(format!("saving vCPU {id}: {e}")),
                None => return Err(format!("vCPU {id} saved no state")),
            }
        }
        let vm = crate::vm::save_vm_state(&self.vm_fd).map_err(|e| format!("saving the interrupt controllers and clock: {e}"))?;
        let serials = self.serials.iter().map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).state()).collect();
        let virtio = self
            .virtio
            .iter()
            .map(|(device, t)| VirtioSlot { device: device.clone(), mmio: t.lock().unwrap_or_else(|e| e.into_inner()).state() })
            .collect();
        let mut disks = Vec::new();
        for (index, d) in self.disks.iter().enumerate() {
            let size = std::fs::metadata(&d.path).map_err(|e| format!("disk {}: {e}", d.path.display()))?.len();
            let fingerprint = if d.read_only {
                Some(sparse::fingerprint(&d.path).map_err(|e| format!("disk {}: {e}", d.path.display()))?)
            } else {
                None
            };
            let file = (!d.read_only).then(|| disk_file(index));
            disks.push(DiskRecord { read_only: d.read_only, size, fingerprint, file });
        }
        let taken_at_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        Ok(Snapshot {
            machine: MachineInfo {
                vmm_version: env!("CARGO_PKG_VERSION").to_string(),
                backend: backend_name(self.backend).to_string(),
                cpus: self.cpus,
                memory_bytes: self.memory.size(),
                cmdline: self.cmdline.clone(),
                taken_at_ms,
            },
            vcpus,
            vm,
            serials,
            virtio,
            disks,
        })
    }
}

pub fn backend_name(b: Backend) -> &'static str {
    match b {
        Backend::Hardware => "hardware",
        Backend::Pvm => "pvm",
    }
}

fn create_new(path: &Path) -> Result<File, String> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("creating {}: {e}", path.display()))
}

/// `dir` must be absolute and free, in an existing directory.
fn check_target(dir: &Path) -> Result<(), String> {
    if !dir.is_absolute() {
        return Err(format!("snapshot directory {} is not absolute", dir.display()));
    }
    if dir.symlink_metadata().is_ok() {
        return Err(format!("{} already exists; a snapshot goes into a new directory", dir.display()));
    }
    match dir.parent() {
        Some(p) if p.is_dir() => Ok(()),
        _ => Err(format!("the parent of {} is not a directory", dir.display())),
    }
}

/// `<dir>.partial-<pid>`: where the files are written before the rename.
pub fn partial_name(dir: &Path) -> PathBuf {
    let mut name = dir.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(format!(".partial-{}", std::process::id()));
    dir.with_file_name(name)
}
