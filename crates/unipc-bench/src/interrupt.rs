//! An interrupted run cleans up after itself.
//!
//! Most of what a link creates is gone once the peer has joined (names are
//! unlinked, the scratch directory removed), but a System V queue lives
//! until removed, and a peer blocked in a receive would outlive its parent.
//! So the run blocks SIGINT, SIGTERM and SIGHUP in every thread and waits
//! for them on one thread of its own, which kills the peer, removes what is
//! registered here, and exits with 128 + the signal's number.

use std::path::PathBuf;
use std::sync::{Mutex, Once};

use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
use nix::unistd::Pid;

#[derive(Default)]
struct Pending {
    peer: Option<u32>,
    sysv_queues: Vec<i32>,
    scratch: Option<PathBuf>,
}

static PENDING: Mutex<Pending> = Mutex::new(Pending {
    peer: None,
    sysv_queues: Vec::new(),
    scratch: None,
});

fn signals() -> SigSet {
    let mut set = SigSet::empty();
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        set.add(signal);
    }
    set
}

/// Starts watching; call before the run starts any thread, so that every
/// thread inherits the blocked mask. Idempotent.
pub fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let set = signals();
        if set.thread_block().is_err() {
            return;
        }
        std::thread::spawn(move || {
            let Ok(signal) = set.wait() else { return };
            let pending = PENDING.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(pid) = pending.peer {
                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
            }
            for &id in &pending.sysv_queues {
                if let Ok(queue) = unipc::message::sysv_mq::Queue::open_id(id) {
                    let _ = queue.remove();
                }
            }
            if let Some(dir) = &pending.scratch {
                let _ = std::fs::remove_dir_all(dir);
            }
            eprintln!(
                "unipc bench: interrupted by {signal}; the peer and the run's objects are gone"
            );
            std::process::exit(128 + signal as i32);
        });
    });
}

/// In a peer process: undoes the mask inherited from the parent.
pub fn unblock_in_peer() {
    let _ = nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_UNBLOCK, Some(&signals()), None);
}

fn with(update: impl FnOnce(&mut Pending)) {
    update(&mut PENDING.lock().unwrap_or_else(|e| e.into_inner()));
}

/// Registers the running peer, its scratch directory and its System V
/// queues; `None`/empty clears them.
pub fn track(peer: Option<u32>, scratch: Option<PathBuf>, sysv_queues: Vec<i32>) {
    with(|p| {
        *p = Pending {
            peer,
            scratch,
            sysv_queues,
        }
    });
}
