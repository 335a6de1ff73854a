//! Pausing the vCPUs: the pauser raises the gate and keeps kicking every
//! vCPU out of KVM_RUN; each vCPU thread, at its next instruction boundary,
//! saves its own state (it owns its vCPU descriptor) and parks until the
//! gate is lowered. The pauser gets every vCPU's state once all are
//! parked.
//!
//! "Instruction boundary" matters: after an I/O or MMIO exit, KVM finishes
//! the instruction only on the next KVM_RUN. A vCPU therefore parks only
//! after a KVM_RUN that was interrupted (immediate_exit or the kick
//! signal), never straight after handling an I/O exit.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::vcpu_state::VcpuState;

/// How often the pauser re-kicks vCPUs that have not parked yet (a kick
/// that lands just before a vCPU enters KVM_RUN is lost otherwise).
const KICK_INTERVAL: Duration = Duration::from_millis(1);

struct Inner {
    paused: bool,
    /// Bumped by every pause, so a vCPU parks at most once per pause.
    generation: u64,
    parked: usize,
    states: Vec<Option<Result<VcpuState, String>>>,
}

pub struct PauseGate {
    /// Read by every vCPU after every exit; the lock is only taken to park.
    requested: AtomicBool,
    inner: Mutex<Inner>,
    cv: Condvar,
}

#[derive(Debug, PartialEq, Eq)]
pub enum PauseError {
    AlreadyPaused,
    /// Some vCPU did not park in time (or the VM is stopping).
    NotParked { parked: usize, vcpus: usize },
}

impl std::fmt::Display for PauseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::AlreadyPaused => f.write_str("the VM is already paused"),
            Self::NotParked { parked, vcpus } => write!(f, "only {parked} of {vcpus} vCPUs stopped in time"),
        }
    }
}

impl PauseGate {
    pub fn new(vcpus: usize) -> Self {
        Self {
            requested: AtomicBool::new(false),
            inner: Mutex::new(Inner { paused: false, generation: 0, parked: 0, states: vec![None; vcpus] }),
            cv: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// vCPU side, cheap: is a pause in force?
    pub fn requested(&self) -> bool {
        self.requested.load(Ordering::SeqCst)
    }

    /// vCPU side: saves this vCPU's state with `save` and waits while the
    /// pause lasts. Returns at once (false) if no pause is in force; true
    /// once it has been parked and let go.
    pub fn park(&self, id: usize, save: impl FnOnce() -> Result<VcpuState, String>) -> bool {
        let generation = {
            let g = self.lock();
            if !g.paused {
                return false;
            }
            g.generation
        };
        let state = save();
        let mut g = self.lock();
        if !g.paused || g.generation != generation {
            return false; // the pause ended while we were saving
        }
        if let Some(slot) = g.states.get_mut(id) {
            *slot = Some(state);
        }
        g.parked += 1;
        self.cv.notify_all();
        while g.paused && g.generation == generation {
            g = self.cv.wait(g).unwrap_or_else(|e| e.into_inner());
        }
        g.parked -= 1;
        true
    }

    /// Pauser side: raises the gate and kicks (with `kick`) until every one
    /// of `vcpus` has parked, or `timeout` passes (then the gate is lowered
    /// again). `active` says how many vCPU threads are still running; when
    /// it falls below `vcpus` the VM is stopping and the pause fails.
    pub fn pause(&self, vcpus: usize, kick: &dyn Fn(), active: &dyn Fn() -> usize, timeout: Duration) -> Result<(), PauseError> {
        {
            let mut g = self.lock();
            if g.paused {
                return Err(PauseError::AlreadyPaused);
            }
            g.paused = true;
            g.generation += 1;
            g.states.iter_mut().for_each(|s| *s = None);
            self.requested.store(true, Ordering::SeqCst);
        }
        let deadline = Instant::now() + timeout;
        loop {
            kick();
            let g = self.lock();
            if g.parked == vcpus {
                return Ok(());
            }
            let parked = g.parked;
            if active() < vcpus || Instant::now() >= deadline {
                drop(g);
                self.resume();
                return Err(PauseError::NotParked { parked, vcpus });
            }
            let _ = self.cv.wait_timeout(g, KICK_INTERVAL).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// True while a pause is in force and every vCPU has parked.
    pub fn is_paused(&self) -> bool {
        self.lock().paused
    }

    /// The states the parked vCPUs saved, by vCPU id (only while paused).
    pub fn states(&self) -> Vec<Option<Result<VcpuState, String>>> {
        self.lock().states.clone()
    }

    /// Lowers the gate: parked vCPUs go back into the guest. Also called
    /// on the way out, so no vCPU thread stays parked while the VMM exits.
    pub fn resume(&self) {
        let mut g = self.lock();
        g.paused = false;
        self.requested.store(false, Ordering::SeqCst);
        self.cv.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;

    /// Stand-in vCPU threads: spin, and park whenever the gate asks.
    fn spawn_vcpus(gate: &Arc<PauseGate>, n: usize, stop: &Arc<AtomicBool>, runs: &Arc<AtomicUsize>) -> Vec<std::thread::JoinHandle<()>> {
        (0..n)
            .map(|id| {
                let (gate, stop, runs) = (gate.clone(), stop.clone(), runs.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::SeqCst) {
                        if gate.requested() {
                            gate.park(id, || Err(format!("vcpu{id}")));
                        }
                        runs.fetch_add(1, Ordering::SeqCst);
                        std::thread::yield_now();
                    }
                })
            })
            .collect()
    }

    #[test]
    fn pauses_collects_states_and_resumes() {
        let gate = Arc::new(PauseGate::new(2));
        let stop = Arc::new(AtomicBool::new(false));
        let runs = Arc::new(AtomicUsize::new(0));
        let threads = spawn_vcpus(&gate, 2, &stop, &runs);
        gate.pause(2, &|| {}, &|| 2, Duration::from_secs(5)).unwrap();
        assert!(gate.is_paused());
        let before = runs.load(Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(runs.load(Ordering::SeqCst), before, "nobody runs while paused");
        let states = gate.states();
        assert_eq!(states, vec![Some(Err("vcpu0".into())), Some(Err("vcpu1".into()))]);
        assert_eq!(gate.pause(2, &|| {}, &|| 2, Duration::from_secs(1)), Err(PauseError::AlreadyPaused));
        gate.resume();
        std::thread::sleep(Duration::from_millis(20));
        assert!(runs.load(Ordering::SeqCst) > before, "running again");
        // A second pause works the same way.
        gate.pause(2, &|| {}, &|| 2, Duration::from_secs(5)).unwrap();
        gate.resume();
        stop.store(true, Ordering::SeqCst);
        threads.into_iter().for_each(|t| t.join().unwrap());
    }

    #[test]
    fn a_vcpu_that_never_parks_times_out_and_the_gate_is_lowered() {
        let gate = Arc::new(PauseGate::new(2));
        let stop = Arc::new(AtomicBool::new(false));
        let runs = Arc::new(AtomicUsize::new(0));
        let threads = spawn_vcpus(&gate, 1, &stop, &runs);
        let err = gate.pause(2, &|| {}, &|| 2, Duration::from_millis(50)).unwrap_err();
        assert_eq!(err, PauseError::NotParked { parked: 1, vcpus: 2 });
        assert!(!gate.is_paused() && !gate.requested());
        stop.store(true, Ordering::SeqCst);
        threads.into_iter().for_each(|t| t.join().unwrap());
    }
}
