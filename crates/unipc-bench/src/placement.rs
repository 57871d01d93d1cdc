//! CPU placement: which CPUs the two processes run on.

use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::unistd::Pid;

/// The CPUs this process may run on, in order.
pub fn allowed_cpus() -> Vec<usize> {
    match sched_getaffinity(Pid::from_raw(0)) {
        Ok(set) => (0..CpuSet::count())
            .filter(|&cpu| set.is_set(cpu).unwrap_or(false))
            .collect(),
        Err(_) => (0..std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1))
            .collect(),
    }
}

/// Pins the calling thread to `cpu`; returns the mask it had, to restore.
pub fn pin_current_thread(cpu: usize) -> nix::Result<CpuSet> {
    let before = sched_getaffinity(Pid::from_raw(0))?;
    let mut set = CpuSet::new();
    set.set(cpu)?;
    sched_setaffinity(Pid::from_raw(0), &set)?;
    Ok(before)
}

/// Restores a mask returned by [`pin_current_thread`].
pub fn restore(mask: &CpuSet) {
    // Failing to widen the mask again only narrows where later work runs.
    let _ = sched_setaffinity(Pid::from_raw(0), mask);
}
