//! Starting a command that must not outlive this process: the one
//! `pre_exec` hook the library installs for commands run under a hold
//! (`unipc semop -- CMD`, `unipc lock -- CMD`).
#![allow(unsafe_code)]

/// `command.spawn()` with a `pre_exec` hook that makes the child get
/// `SIGKILL` when this thread dies (`PR_SET_PDEATHSIG`), and refuses to
/// run it (`ESRCH`) when this process is already gone by the time the hook
/// runs: a command run while this process holds something for it (a
/// `SEM_UNDO` hold, which the kernel reverts at this process's exit; a
/// lock, which it releases) must not outlive the hold.
/// The child starts with no signal blocked, whatever this thread blocks
/// ([`unblock_all_signals`](super::proc::unblock_all_signals)).
pub(crate) fn spawn_dying_with_parent(
    command: &mut std::process::Command,
) -> std::io::Result<std::process::Child> {
    use std::os::unix::process::CommandExt;
    let parent = rustix::process::getpid();
    // SAFETY: `pre_exec` requires the hook to be safe to run in a forked
    // child of a possibly multi-threaded process:
    // - it calls only `prctl(PR_SET_PDEATHSIG)`, `getppid` and
    //   `sigprocmask`, direct system calls, all async-signal-safe;
    // - it allocates nothing, takes no lock, and reads only `parent`, a
    //   plain integer copied into the closure before the fork;
    // - its error, built from a raw errno, does not allocate.
    unsafe {
        command.pre_exec(move || {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))?;
            // The parent may have died before the prctl: then the signal
            // never comes, so do not run the command at all.
            if rustix::process::getppid() != Some(parent) {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            super::proc::unblock_all_signals()
        })
    };
    command.spawn()
}
