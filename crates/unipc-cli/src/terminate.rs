//! Ending cleanly on SIGINT, SIGTERM and SIGHUP.
//!
//! A command that leaves something behind when killed (a socket file it
//! bound, a terminal in raw mode) calls [`install`] before it starts any
//! thread and registers what to undo with [`on_signal`]. The three signals
//! are then blocked in every thread and taken by one thread of ours with
//! `sigwait`, so the undo runs as ordinary code, never inside a signal
//! handler; the process then exits with 128 + the signal's number, as a
//! shell reports a death by that signal. Children started with
//! `std::process::Command` inherit the mask through exec: the library's
//! spawns (`LockGuard::spawn`, `SemaphoreSet::spawn_holding`, the pty's)
//! empty it in the child.

use std::sync::Mutex;

use nix::sys::signal::{SigSet, Signal};

type Undo = Box<dyn FnOnce() + Send>;

static UNDO: Mutex<Vec<Undo>> = Mutex::new(Vec::new());

/// Blocks SIGINT, SIGTERM and SIGHUP in this thread (and so in every thread
/// it starts from now on) and starts the thread that waits for them.
pub fn install() -> anyhow::Result<()> {
    let mut set = SigSet::empty();
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        set.add(signal);
    }
    set.thread_block()?;
    std::thread::Builder::new()
        .name("unipc-signals".into())
        .spawn(move || {
            let Ok(signal) = set.wait() else { return };
            let undo = std::mem::take(&mut *UNDO.lock().unwrap_or_else(|p| p.into_inner()));
            for step in undo.into_iter().rev() {
                step();
            }
            std::process::exit(128 + signal as i32);
        })?;
    Ok(())
}

/// Runs `undo` if the process is ended by one of the signals, after the
/// steps registered later.
pub fn on_signal(undo: impl FnOnce() + Send + 'static) {
    creating(|steps| steps.on_signal(undo));
}

/// The undo steps, held while something is being made.
pub struct Steps<'a>(&'a mut Vec<Undo>);

impl Steps<'_> {
    /// Runs `undo` if the process is ended by one of the signals.
    pub fn on_signal(&mut self, undo: impl FnOnce() + Send + 'static) {
        self.0.push(Box::new(undo));
    }
}

/// Runs `make` with the undo steps held: a signal that comes while it
/// runs is acted on only once `make` has registered how to undo what it
/// made, so nothing it creates can be left behind by a signal in between.
pub fn creating<T>(make: impl FnOnce(&mut Steps<'_>) -> T) -> T {
    let mut undo = UNDO.lock().unwrap_or_else(|p| p.into_inner());
    make(&mut Steps(&mut undo))
}

/// For a command that must finish what it holds before ending (the
/// bridge): blocks SIGINT, SIGTERM and SIGHUP and starts the thread that
/// waits for them. The first sets the flag returned, which the command
/// polls between steps; a second ends the process at once, with the
/// undo steps run, as [`install`]'s thread does.
pub fn stop_flag() -> anyhow::Result<&'static std::sync::atomic::AtomicBool> {
    use std::sync::atomic::{AtomicBool, Ordering};
    static STOP: AtomicBool = AtomicBool::new(false);
    let mut set = SigSet::empty();
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        set.add(signal);
    }
    set.thread_block()?;
    std::thread::Builder::new()
        .name("unipc-signals".into())
        .spawn(move || {
            let Ok(_) = set.wait() else { return };
            STOP.store(true, Ordering::SeqCst);
            let Ok(signal) = set.wait() else { return };
            let undo = std::mem::take(&mut *UNDO.lock().unwrap_or_else(|p| p.into_inner()));
            for step in undo.into_iter().rev() {
                step();
            }
            std::process::exit(128 + signal as i32);
        })?;
    Ok(&STOP)
}
