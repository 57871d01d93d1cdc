//! The peer process: the bench re-executes its own binary with
//! [`PEER_ARG`], and the peer joins the link and follows the parent's jobs
//! read line by line from stdin, answering `ok` or `error ...` on stdout.
//!
//! # Safety
//! The peer adopts the descriptors its parent left open for it, by the
//! numbers given on its command line (`OwnedFd::from_raw_fd`).
#![allow(unsafe_code)]

use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use unipc::facility::{self, Facility, LinkOptions, Ticket};

use crate::raw::RawWire;
use crate::workload::{follow, Implementation, Job, LinkWire, Wire};

/// The first argument that turns the binary into a bench peer.
pub const PEER_ARG: &str = "__bench-peer";

/// The parent's process id, as the peer must find it after arming its
/// death signal.
pub(crate) const PARENT_ENV: &str = "UNIPC_BENCH_PARENT";

/// A running peer and the pipes that steer it.
pub struct Peer {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Peer {
    /// Starts the peer for `facility` with `ticket`, pinned to `cpu`.
    pub fn spawn(
        facility: &Facility,
        ticket: Ticket,
        options: &LinkOptions,
        cpu: Option<usize>,
    ) -> std::io::Result<Peer> {
        let exe = std::env::current_exe()?;
        let mut command = Command::new(exe);
        command
            .arg(PEER_ARG)
            .arg(facility.name)
            .arg(&ticket.address)
            .arg(options.max_message_size.to_string());
        command.arg(cpu.map(|c| c.to_string()).unwrap_or_else(|| "-".into()));
        for fd in &ticket.fds {
            // The bench's process spawns no other children while it starts
            // a peer, so clearing close-on-exec here hands these to the peer
            // alone; the parent closes its copies right after the spawn.
            rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::empty())?;
            command.arg(fd.as_raw_fd().to_string());
        }
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        command.env(PARENT_ENV, std::process::id().to_string());
        let mut child = command.spawn()?;
        drop(ticket);
        let stdin = child.stdin.take().expect("stdin is piped");
        let stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
        Ok(Peer {
            child,
            stdin,
            stdout,
        })
    }

    /// Reads the peer's next status line: `Ok(())` for `ok`.
    pub fn status(&mut self) -> Result<(), String> {
        let mut line = String::new();
        match self.stdout.read_line(&mut line) {
            Ok(0) => Err("the peer exited".to_owned()),
            Ok(_) if line.trim() == "ok" => Ok(()),
            Ok(_) => Err(line.trim().trim_start_matches("error ").to_owned()),
            Err(e) => Err(format!("reading the peer's status: {e}")),
        }
    }

    /// Tells the peer to run `job`.
    pub fn start(&mut self, job: &Job) -> Result<(), String> {
        writeln!(self.stdin, "{}", job.encode())
            .map_err(|e| format!("the peer stopped listening: {e}"))
    }

    /// The peer's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the peer has exited (it is reaped then).
    pub fn exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    /// Ends the peer and reaps it.
    pub fn finish(mut self) {
        let _ = writeln!(self.stdin, "quit");
        drop(self.stdin);
        let _ = self.child.wait();
    }

    /// Kills the peer (on a failure that leaves it stuck).
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The peer of a bench section with its own protocol (copy-or-map,
/// hand-off): this binary again in `role`, steered by lines on its stdin,
/// answering lines on its stdout (`error ...` for a failure).
pub(crate) struct SectionPeer {
    pub(crate) child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    role: &'static str,
}

impl SectionPeer {
    /// Starts `role` with `args`, then the numbers of `fds`, which it
    /// inherits: the bench starts no other child meanwhile, and the flags
    /// are put back after the spawn.
    pub(crate) fn spawn(
        role: &'static str,
        args: &[String],
        fds: &[&OwnedFd],
    ) -> std::io::Result<SectionPeer> {
        let mut command = Command::new(std::env::current_exe()?);
        command.arg(PEER_ARG).arg(role).args(args);
        for fd in fds {
            rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::empty())?;
            command.arg(fd.as_raw_fd().to_string());
        }
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .env(PARENT_ENV, std::process::id().to_string());
        let spawned = command.spawn();
        for fd in fds {
            rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::CLOEXEC)?;
        }
        let mut child = spawned?;
        let stdin = child.stdin.take().expect("stdin is piped");
        let stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
        Ok(SectionPeer {
            child,
            stdin,
            stdout,
            role,
        })
    }

    /// The peer's next line; its `error ...` line as an error.
    pub(crate) fn line(&mut self) -> Result<String, String> {
        let mut line = String::new();
        match self.stdout.read_line(&mut line) {
            Ok(0) => Err(format!("the {} peer exited", self.role)),
            Ok(_) => match line.trim().strip_prefix("error ") {
                Some(e) => Err(format!("{} peer: {e}", self.role)),
                None => Ok(line.trim().to_owned()),
            },
            Err(e) => Err(format!("reading the {} peer: {e}", self.role)),
        }
    }

    /// Sends the peer one line.
    pub(crate) fn tell(&mut self, line: &str) -> Result<(), String> {
        writeln!(self.stdin, "{line}").map_err(|e| format!("the {} peer left: {e}", self.role))
    }

    /// Reads the next line, which must be `want`.
    pub(crate) fn expect(&mut self, want: &str) -> Result<(), String> {
        let line = self.line()?;
        if line == want {
            Ok(())
        } else {
            Err(format!(
                "{} peer said {line:?}, expected {want:?}",
                self.role
            ))
        }
    }
}

/// Adopts a descriptor its parent left open for this peer, named by its
/// number on the command line.
pub(crate) fn adopt_passed(number: &String) -> Result<OwnedFd, String> {
    let raw: RawFd = number
        .parse()
        .map_err(|_| format!("bad descriptor {number:?}"))?;
    rustix::io::fcntl_getfd(
        // SAFETY: only probes whether `raw` is open; a closed number
        // yields EBADF, which is reported.
        unsafe { std::os::fd::BorrowedFd::borrow_raw(raw) },
    )
    .map_err(|e| format!("descriptor {raw} was not passed: {e}"))?;
    // SAFETY: the parent left `raw` open without close-on-exec for this
    // process alone and named it once (the caller adopts each number once);
    // nothing else here owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// The peer's main: `args` are the arguments after [`PEER_ARG`]. Returns
/// the process exit code.
pub fn peer_main(args: &[String]) -> i32 {
    if args.first().map(String::as_str) == Some(crate::interrupt::REAPER_ROLE) {
        return crate::interrupt::reaper_main();
    }
    let mut stdout = std::io::stdout();
    let result = match args.split_first() {
        Some((role, rest)) if role == crate::copymap::ROLE => run_copymap_peer(rest, &mut stdout),
        Some((role, rest)) if role == crate::handoff::ROLE => run_handoff_peer(rest, &mut stdout),
        _ => run_peer(args, &mut stdout),
    };
    match result {
        Ok(()) => 0,
        Err(message) => {
            let _ = writeln!(stdout, "error {message}");
            let _ = stdout.flush();
            1
        }
    }
}

fn run_copymap_peer(args: &[String], out: &mut impl Write) -> Result<(), String> {
    crate::interrupt::unblock_in_peer();
    let _ = rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL));
    check_parent()?;
    crate::copymap::peer_main(args, out)
}

fn run_handoff_peer(args: &[String], out: &mut impl Write) -> Result<(), String> {
    crate::interrupt::unblock_in_peer();
    let _ = rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL));
    check_parent()?;
    crate::handoff::peer_main(args, out)
}

/// A parent that died before the death signal was armed would never send
/// it: then this process has been re-parented, and must not join.
fn check_parent() -> Result<(), String> {
    if let Ok(parent) = std::env::var(PARENT_ENV) {
        let now = rustix::process::Pid::as_raw(rustix::process::getppid());
        if parent != now.to_string() {
            return Err(format!("the parent {parent} is gone"));
        }
    }
    Ok(())
}

fn run_peer(args: &[String], out: &mut impl Write) -> Result<(), String> {
    crate::interrupt::unblock_in_peer();
    // A parent killed outright cannot stop us; the kernel can. Without
    // this a peer blocked in a receive would outlive its parent.
    let _ = rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL));
    check_parent()?;
    let [name, address, max_size, cpu, fds @ ..] = args else {
        return Err("usage: __bench-peer FACILITY ADDRESS MAX_SIZE CPU|- [FD...]".to_owned());
    };
    let facility = facility::find(name).ok_or_else(|| format!("no facility {name:?}"))?;
    let max_message_size = max_size
        .parse()
        .map_err(|_| format!("bad size {max_size:?}"))?;
    if cpu != "-" {
        let cpu = cpu.parse().map_err(|_| format!("bad cpu {cpu:?}"))?;
        crate::placement::pin_current_thread(cpu)
            .map_err(|e| format!("pinning to CPU {cpu}: {e}"))?;
    }
    let owned = fds.iter().map(adopt_passed).collect::<Result<_, _>>()?;
    let options = LinkOptions::new(max_message_size);
    let ticket = Ticket::new(address.clone(), owned);
    let mut link = facility
        .connector
        .ok_or_else(|| format!("{name} has no connector"))?
        .join(ticket, &options)
        .map_err(|e| e.to_string())?;
    writeln!(out, "ok")
        .and_then(|()| out.flush())
        .map_err(|e| e.to_string())?;

    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let line = line.map_err(|e| e.to_string())?;
        if line == "quit" {
            return Ok(());
        }
        let job = Job::decode(&line).ok_or_else(|| format!("bad job {line:?}"))?;
        link.set_nonblocking(job.nonblocking)
            .map_err(|e| e.to_string())?;
        let result = match job.implementation {
            Implementation::Unipc => follow(&mut LinkWire(link.as_mut()), &job),
            Implementation::Raw => {
                let mut raw = RawWire::new(
                    link.raw(),
                    facility.properties.shape,
                    job.nonblocking,
                    max_message_size,
                )
                .map_err(|e| e.to_string())?;
                follow(&mut raw as &mut dyn Wire, &job)
            }
        };
        result.map_err(|e| format!("{}: {e}", job.encode()))?;
        writeln!(out, "ok")
            .and_then(|()| out.flush())
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}
